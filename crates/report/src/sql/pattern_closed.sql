-- Full episodes closed by month and attended sessions.
SELECT service_id, SUBSTR(closed_on, 1, 7), sessions_attended, COUNT(*)
FROM episode_summaries
WHERE service_id IN ({services}) AND closed_on BETWEEN '{from}' AND '{to}' AND kind = 'full'
GROUP BY service_id, SUBSTR(closed_on, 1, 7), sessions_attended
