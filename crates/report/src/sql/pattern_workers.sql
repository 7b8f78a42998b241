-- Every worker's dates and whether they live in the area served.
SELECT service_id, started_on, left_on, lives_in_area_served
FROM workers
WHERE service_id IN ({services}) AND started_on <= '{to}'
