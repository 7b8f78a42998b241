-- Referrals received in the period, with the client's area and ethnic group and how far
-- the referral got (its episode's summary, when one was opened).
SELECT r.service_id, r.source, c.imd_quintile, c.ethnicity,
       es.kind, es.baseline_on, es.plan_agreed_on, es.review_sessions, es.closed_on, es.exit_on
FROM referrals r
JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id
LEFT JOIN episodes e ON e.service_id = r.service_id AND e.referral_id = r.referral_id
LEFT JOIN episode_summaries es ON es.service_id = e.service_id AND es.episode_id = e.episode_id
WHERE r.service_id IN ({services}) AND r.received_on BETWEEN '{from}' AND '{to}'
