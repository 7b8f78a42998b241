-- Workers active at any time in the period.
SELECT service_id, lives_in_area_served, home_imd_quintile, qualification, fte
FROM workers
WHERE service_id IN ({services}) AND started_on <= '{to}'
  AND (left_on IS NULL OR left_on >= '{from}')
