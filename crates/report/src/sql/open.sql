-- Episodes open at the end of the period.
SELECT service_id, first_contact_on, last_attended_on
FROM episode_summaries
WHERE service_id IN ({services}) AND first_contact_on <= '{to}'
  AND (closed_on IS NULL OR closed_on > '{to}')
