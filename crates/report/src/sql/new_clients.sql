-- New clients: first-ever first contact with the service in the period (the earliest
-- episode of the client, the lowest id breaking a tie), counted by each characteristic
-- the reach report breaks them down by.
WITH nc AS MATERIALIZED (
  SELECT es.service_id, c.imd_quintile AS q, {ethnic_group} AS eg, c.sex AS sex,
         c.gp_registered AS gp, {age_band} AS age
  FROM episode_summaries es
  JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
  WHERE es.service_id IN ({services}) AND es.first_contact_on BETWEEN '{from}' AND '{to}'
    AND NOT EXISTS (SELECT 1 FROM episode_summaries f
                    WHERE f.service_id = es.service_id AND f.client_id = es.client_id
                      AND f.first_contact_on <= es.first_contact_on
                      AND (f.first_contact_on < es.first_contact_on OR f.episode_id < es.episode_id))
)
SELECT service_id, 'quintile', CAST(q AS TEXT), COUNT(*) FROM nc GROUP BY service_id, q
UNION ALL SELECT service_id, 'ethnic_group', CAST(eg AS TEXT), COUNT(*) FROM nc GROUP BY service_id, eg
UNION ALL SELECT service_id, 'sex', sex, COUNT(*) FROM nc GROUP BY service_id, sex
UNION ALL SELECT service_id, 'gp', gp, COUNT(*) FROM nc GROUP BY service_id, gp
UNION ALL SELECT service_id, 'age_band', CAST(age AS TEXT), COUNT(*) FROM nc GROUP BY service_id, age
