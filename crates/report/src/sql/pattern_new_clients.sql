-- New clients (first-ever first contact with the service) by month of first contact,
-- national IMD quintile, 2011 LSOA and district, for the fingerprint's reach measures.
WITH nc AS MATERIALIZED (
  SELECT es.service_id, SUBSTR(es.first_contact_on, 1, 7) AS m, c.imd_quintile AS q,
         c.lsoa11cd AS lsoa, c.lad_cd AS lad
  FROM episode_summaries es
  JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
  WHERE es.service_id IN ({services}) AND es.first_contact_on BETWEEN '{from}' AND '{to}'
    AND NOT EXISTS (SELECT 1 FROM episode_summaries f
                    WHERE f.service_id = es.service_id AND f.client_id = es.client_id
                      AND f.first_contact_on <= es.first_contact_on
                      AND (f.first_contact_on < es.first_contact_on OR f.episode_id < es.episode_id))
)
SELECT service_id, m, q, lsoa, lad, COUNT(*) FROM nc GROUP BY service_id, m, q, lsoa, lad
