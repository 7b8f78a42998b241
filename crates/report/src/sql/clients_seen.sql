-- Clients with at least one attended session in the period.
SELECT s.service_id, COUNT(DISTINCT es.client_id)
FROM sessions s
JOIN episode_summaries es ON es.service_id = s.service_id AND es.episode_id = s.episode_id
WHERE s.service_id IN ({services}) AND s.held_on BETWEEN '{from}' AND '{to}' AND s.attended = 'yes'
GROUP BY s.service_id
