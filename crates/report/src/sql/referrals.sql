-- Referrals received in the period by source and month (YYYY-MM; dates are stored as
-- ISO text on both backends).
SELECT service_id, source, SUBSTR(received_on, 1, 7), COUNT(*)
FROM referrals
WHERE service_id IN ({services}) AND received_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id, source, SUBSTR(received_on, 1, 7)
