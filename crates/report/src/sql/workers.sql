-- Workers active at any time in the period, by where they live and their qualification.
SELECT service_id, lives_in_area_served, home_imd_quintile, qualification, COUNT(*),
       SUM(CAST(fte AS DOUBLE PRECISION))
FROM workers
WHERE service_id IN ({services}) AND started_on <= '{to}'
  AND (left_on IS NULL OR left_on >= '{from}')
GROUP BY service_id, lives_in_area_served, home_imd_quintile, qualification
