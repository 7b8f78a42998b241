-- Clients with an episode opened in the period: how many, and how many have each field
-- recorded (a code meaning "not stated" or "not known", such as the pseudo-postcode
-- ZZ99 3WZ, counts as not recorded).
SELECT c.service_id, COUNT(*),
  CAST(SUM(CASE WHEN c.given_name IS NOT NULL AND c.given_name <> '' THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.family_name IS NOT NULL AND c.family_name <> '' THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.nhs_number IS NOT NULL AND c.nhs_number <> '' THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.postcode IS NOT NULL AND c.postcode <> '' AND c.postcode <> 'ZZ99 3WZ' THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.ethnicity NOT IN ('Z', '99') THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.sex <> 'not_stated' THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.gp_registered <> 'unknown' THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.employment <> 'not_stated' THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.disability <> 'not_stated' THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.gp_practice_code IS NOT NULL AND c.gp_practice_code <> '' THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN c.postcode IS NOT NULL AND c.postcode <> '' AND c.postcode NOT LIKE 'ZZ99%'
                AND c.lsoa11cd IS NULL THEN 1 ELSE 0 END) AS BIGINT)
FROM clients c
WHERE c.service_id IN ({services})
  AND (c.service_id, c.client_id) IN (
      SELECT es.service_id, es.client_id FROM episode_summaries es
      WHERE es.service_id IN ({services}) AND es.first_contact_on BETWEEN '{from}' AND '{to}')
GROUP BY c.service_id
