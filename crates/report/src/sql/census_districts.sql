-- The 2011 districts (the census's areas) that the LSOAs of each 2019 district served
-- belonged to: the same code where nothing changed, the old ones where districts merged.
SELECT DISTINCT l.lad19cd, x.lad11cd
FROM ref_lsoa01_lsoa11 x
JOIN ref_lsoa11 l ON l.lsoa11cd = x.lsoa11cd
WHERE l.lad19cd IN ({areas}) AND x.lad11cd IS NOT NULL
