-- Clients sharing an NHS number with another client of the same service.
SELECT c.service_id, c.client_id
FROM clients c
JOIN (SELECT service_id, nhs_number FROM clients
      WHERE service_id IN ({services}) AND nhs_number IS NOT NULL AND nhs_number <> ''
      GROUP BY service_id, nhs_number HAVING COUNT(*) > 1) d
  ON d.service_id = c.service_id AND d.nhs_number = c.nhs_number
