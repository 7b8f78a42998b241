-- Population of each district served by national IMD quintile (the index year in use).
SELECT l.lad19cd, q.imd_quintile, CAST(SUM(l.{population}) AS BIGINT)
FROM ref_lsoa11 l
JOIN ref_lsoa11_imd q ON q.lsoa11cd = l.lsoa11cd AND q.year = {year}
WHERE l.lad19cd IN ({areas})
GROUP BY l.lad19cd, q.imd_quintile
