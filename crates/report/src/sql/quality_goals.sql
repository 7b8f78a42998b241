-- Goals on plans agreed in the period with a target date recorded.
SELECT p.service_id, COUNT(g.goal_id),
  CAST(SUM(CASE WHEN g.target_on IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT)
FROM plans p
JOIN goals g ON g.service_id = p.service_id AND g.plan_id = p.plan_id
WHERE p.service_id IN ({services}) AND p.agreed_on BETWEEN '{from}' AND '{to}'
GROUP BY p.service_id
