-- 2011 Census usual residents of 2011 districts by NHS ethnic category.
SELECT lad11cd, nhs_code, CAST(SUM(population) AS BIGINT)
FROM ref_census_ethnicity
WHERE lad11cd IN ({districts})
GROUP BY lad11cd, nhs_code
