-- 2011 Census usual residents of the areas served by NHS ethnic category. The areas are
-- 2019 districts; the census uses 2011 codes, found through the LSOAs of each district.
SELECT ce.nhs_code, CAST(SUM(ce.population) AS BIGINT)
FROM ref_census_ethnicity ce
WHERE ce.lad11cd IN ({areas})
   OR ce.lad11cd IN (SELECT DISTINCT x.lad11cd FROM ref_lsoa01_lsoa11 x
                     JOIN ref_lsoa11 l ON l.lsoa11cd = x.lsoa11cd
                     WHERE l.lad19cd IN ({areas}) AND x.lad11cd IS NOT NULL)
GROUP BY ce.nhs_code
