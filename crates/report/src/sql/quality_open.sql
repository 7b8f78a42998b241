-- Episodes open at the end of the period, and those of them with neither a first
-- contact nor an attended session in the 90 days before it ({stale} to {to}).
SELECT es.service_id, COUNT(*),
  CAST(SUM(CASE WHEN es.first_contact_on < '{stale}'
                 AND NOT EXISTS (SELECT 1 FROM sessions s
                                 WHERE s.service_id = es.service_id AND s.episode_id = es.episode_id
                                   AND s.attended = 'yes' AND s.held_on BETWEEN '{stale}' AND '{to}')
            THEN 1 ELSE 0 END) AS BIGINT)
FROM episode_summaries es
WHERE es.service_id IN ({services}) AND es.first_contact_on <= '{to}'
  AND (es.closed_on IS NULL OR es.closed_on > '{to}')
GROUP BY es.service_id
