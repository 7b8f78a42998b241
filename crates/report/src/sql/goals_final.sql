-- Goals given a final status in the period, with their client and the client's quintile.
SELECT g.service_id, es.client_id, g.status, c.imd_quintile
FROM goals g
JOIN plans p ON p.service_id = g.service_id AND p.plan_id = g.plan_id
JOIN episode_summaries es ON es.service_id = p.service_id AND es.episode_id = p.episode_id
JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
WHERE g.service_id IN ({services}) AND g.status <> 'open'
  AND g.status_on BETWEEN '{from}' AND '{to}'
