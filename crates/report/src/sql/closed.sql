-- Episodes closed in the period by exit reason and kind; full ones also by attended
-- sessions, and by the client's quintile, ethnic group and whether both a baseline and
-- an exit assessment were recorded.
SELECT service_id, 'reason', exit_reason, kind, NULL, COUNT(*)
FROM episode_summaries
WHERE service_id IN ({services}) AND closed_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id, exit_reason, kind
UNION ALL
SELECT service_id, 'sessions', CAST(sessions_attended AS TEXT), NULL, NULL, COUNT(*)
FROM episode_summaries
WHERE service_id IN ({services}) AND closed_on BETWEEN '{from}' AND '{to}' AND kind = 'full'
GROUP BY service_id, sessions_attended
UNION ALL
SELECT es.service_id, 'outcome', CAST(c.imd_quintile AS TEXT), CAST({ethnic_group} AS TEXT),
       CASE WHEN es.baseline_on IS NOT NULL AND es.exit_on IS NOT NULL THEN 'yes' ELSE 'no' END,
       COUNT(*)
FROM episode_summaries es
JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
WHERE es.service_id IN ({services}) AND es.closed_on BETWEEN '{from}' AND '{to}' AND es.kind = 'full'
GROUP BY es.service_id, c.imd_quintile, {ethnic_group},
         CASE WHEN es.baseline_on IS NOT NULL AND es.exit_on IS NOT NULL THEN 'yes' ELSE 'no' END
