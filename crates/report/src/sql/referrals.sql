-- Referrals received in the period by source.
SELECT service_id, source, COUNT(*)
FROM referrals
WHERE service_id IN ({services}) AND received_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id, source
