-- Goals on plans agreed in the period with a target date recorded.
SELECT g.service_id, COUNT(*),
  CAST(SUM(CASE WHEN g.target_on IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT)
FROM goals g
JOIN plans p ON p.service_id = g.service_id AND p.plan_id = g.plan_id
WHERE g.service_id IN ({services}) AND p.agreed_on BETWEEN '{from}' AND '{to}'
GROUP BY g.service_id
