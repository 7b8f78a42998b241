-- Episodes opened or closed in the period, with the client's characteristics and the
-- client's first-ever first contact with the service (to find new clients): whether an
-- earlier episode exists, found through the client index.
SELECT es.service_id, es.client_id, es.kind, es.first_contact_on, es.referral_received_on,
       es.closed_on, es.exit_reason, es.baseline_on, es.exit_on, es.sessions_attended,
       c.imd_quintile, c.ethnicity, c.sex, c.date_of_birth, c.gp_registered,
       CASE WHEN EXISTS (SELECT 1 FROM episode_summaries f
         WHERE f.service_id = es.service_id AND f.client_id = es.client_id
           AND f.first_contact_on < es.first_contact_on) THEN 1 ELSE 0 END AS seen_before
FROM episode_summaries es
JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
WHERE es.service_id IN ({services})
  AND (es.first_contact_on BETWEEN '{from}' AND '{to}' OR es.closed_on BETWEEN '{from}' AND '{to}')
