-- Goals given a final status in the period by the client's quintile and status; and the
-- clients with such goals by quintile and class (0 all fully achieved, 1 at least one
-- fully or partly, 2 otherwise).
SELECT g.service_id, 'goal', CAST(c.imd_quintile AS TEXT), g.status, COUNT(*)
FROM goals g
JOIN plans p ON p.service_id = g.service_id AND p.plan_id = g.plan_id
JOIN episode_summaries es ON es.service_id = p.service_id AND es.episode_id = p.episode_id
JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
WHERE g.service_id IN ({services}) AND g.status <> 'open' AND g.status_on BETWEEN '{from}' AND '{to}'
GROUP BY g.service_id, c.imd_quintile, g.status
UNION ALL
SELECT service_id, 'client', CAST(q AS TEXT), CAST(class AS TEXT), COUNT(*) FROM (
  SELECT g.service_id, es.client_id, c.imd_quintile AS q,
         CASE WHEN SUM(CASE WHEN g.status = 'fully_achieved' THEN 0 ELSE 1 END) = 0 THEN 0
              WHEN SUM(CASE WHEN g.status IN ('fully_achieved', 'partly_achieved') THEN 1 ELSE 0 END) > 0 THEN 1
              ELSE 2 END AS class
  FROM goals g
  JOIN plans p ON p.service_id = g.service_id AND p.plan_id = g.plan_id
  JOIN episode_summaries es ON es.service_id = p.service_id AND es.episode_id = p.episode_id
  JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
  WHERE g.service_id IN ({services}) AND g.status <> 'open' AND g.status_on BETWEEN '{from}' AND '{to}'
  GROUP BY g.service_id, es.client_id, c.imd_quintile
) x
GROUP BY service_id, q, class
