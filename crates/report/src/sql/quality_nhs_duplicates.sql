-- Clients sharing an NHS number with another client of the same service.
SELECT service_id, CAST(SUM(n) AS BIGINT) FROM (
  SELECT service_id, nhs_number, COUNT(*) AS n FROM clients
  WHERE service_id IN ({services}) AND nhs_number IS NOT NULL AND nhs_number <> ''
  GROUP BY service_id, nhs_number HAVING COUNT(*) > 1
) x
GROUP BY service_id
