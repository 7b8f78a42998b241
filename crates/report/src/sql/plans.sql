-- Plans agreed in the period and the goals set on them.
SELECT p.service_id, COUNT(DISTINCT p.plan_id), COUNT(g.goal_id)
FROM plans p
LEFT JOIN goals g ON g.service_id = p.service_id AND g.plan_id = p.plan_id
WHERE p.service_id IN ({services}) AND p.agreed_on BETWEEN '{from}' AND '{to}'
GROUP BY p.service_id
