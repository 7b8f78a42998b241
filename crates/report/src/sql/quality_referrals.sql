-- Referrals received in the period with their optional fields recorded.
SELECT service_id, COUNT(*),
  CAST(SUM(CASE WHEN referrer_org_id IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN reason IS NOT NULL AND reason <> '' THEN 1 ELSE 0 END) AS BIGINT)
FROM referrals
WHERE service_id IN ({services}) AND received_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id
