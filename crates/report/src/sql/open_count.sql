-- Episodes open at the end of the period.
SELECT service_id, COUNT(*)
FROM episode_summaries
WHERE service_id IN ({services}) AND first_contact_on <= '{to}'
  AND (closed_on IS NULL OR closed_on > '{to}')
GROUP BY service_id
