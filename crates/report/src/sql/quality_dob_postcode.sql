-- Clients sharing a date of birth and postcode with another client of the same service,
-- with their names (compared in the program, never logged) and NHS numbers. The
-- pseudo-postcodes (ZZ99: no fixed abode, not known) name no address to share.
SELECT c.service_id, c.client_id, c.date_of_birth, c.postcode, c.given_name, c.family_name, c.nhs_number
FROM clients c
JOIN (SELECT service_id, date_of_birth, postcode FROM clients
      WHERE service_id IN ({services}) AND postcode IS NOT NULL AND postcode <> ''
        AND postcode NOT LIKE 'ZZ99%'
      GROUP BY service_id, date_of_birth, postcode HAVING COUNT(*) > 1) d
  ON d.service_id = c.service_id AND d.date_of_birth = c.date_of_birth AND d.postcode = c.postcode
ORDER BY c.service_id, c.date_of_birth, c.postcode, c.client_id
