-- Workers active at any time in the period, by where they live, their qualification and
-- their FTE. FTE is not summed here: a sum of floating-point values depends on the order
-- the database adds them in, so the program adds them in whole hundredths instead.
SELECT service_id, lives_in_area_served, home_imd_quintile, qualification, COUNT(*),
       CAST(fte AS DOUBLE PRECISION)
FROM workers
WHERE service_id IN ({services}) AND started_on <= '{to}'
  AND (left_on IS NULL OR left_on >= '{from}')
GROUP BY service_id, lives_in_area_served, home_imd_quintile, qualification, fte
