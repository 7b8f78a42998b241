-- The pathway cohort (referrals received in the period whose episode, if any, is not
-- brief) by the client's quintile and ethnic group and the last step of the funnel
-- reached: 1 referred, 2 seen, 3 baseline, 4 plan, 5 review session, 6 closed, 7 exit.
SELECT r.service_id, c.imd_quintile, {ethnic_group} AS eg,
       CASE WHEN es.episode_id IS NULL THEN 1
            WHEN es.baseline_on IS NULL THEN 2
            WHEN es.plan_agreed_on IS NULL THEN 3
            WHEN es.review_sessions = 0 THEN 4
            WHEN es.closed_on IS NULL THEN 5
            WHEN es.exit_on IS NULL THEN 6
            ELSE 7 END AS reached,
       COUNT(*)
FROM referrals r
JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id
LEFT JOIN episodes e ON e.service_id = r.service_id AND e.referral_id = r.referral_id
LEFT JOIN episode_summaries es ON es.service_id = e.service_id AND es.episode_id = e.episode_id
WHERE r.service_id IN ({services}) AND r.received_on BETWEEN '{from}' AND '{to}'
  AND (es.kind IS NULL OR es.kind <> 'brief')
GROUP BY r.service_id, c.imd_quintile, eg, reached
