-- Episodes opened or closed in the period, with the client's characteristics and the
-- client's first-ever first contact with the service (to find new clients).
SELECT es.service_id, es.client_id, es.kind, es.first_contact_on, es.referral_received_on,
       es.closed_on, es.exit_reason, es.baseline_on, es.exit_on, es.sessions_attended,
       c.imd_quintile, c.ethnicity, c.sex, c.date_of_birth, c.gp_registered,
       (SELECT MIN(f.first_contact_on) FROM episode_summaries f
         WHERE f.service_id = es.service_id AND f.client_id = es.client_id) AS client_first
FROM episode_summaries es
JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
WHERE es.service_id IN ({services})
  AND (es.first_contact_on BETWEEN '{from}' AND '{to}' OR es.closed_on BETWEEN '{from}' AND '{to}')
