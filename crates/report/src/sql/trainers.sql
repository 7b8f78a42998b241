-- One service's figures per worker: the episodes each leads (opened in the period, full
-- ones closed in it, open at its end, and of those the ones with neither a first contact
-- nor an attended session in the 90 days before it, {stale} to {to}), and the sessions
-- each held in the period by whether the client came. Each is the service's figure
-- (analytics.md) with the episode's lead worker or the session's worker in place of the
-- service, so the rows add up to the service's figures.
SELECT e.lead_worker_id, 'opened', COUNT(*)
FROM episode_summaries es
JOIN episodes e ON e.service_id = es.service_id AND e.episode_id = es.episode_id
WHERE es.service_id IN ({services}) AND es.first_contact_on BETWEEN '{from}' AND '{to}'
GROUP BY e.lead_worker_id
UNION ALL
SELECT e.lead_worker_id, 'closed_full', COUNT(*)
FROM episode_summaries es
JOIN episodes e ON e.service_id = es.service_id AND e.episode_id = es.episode_id
WHERE es.service_id IN ({services}) AND es.closed_on BETWEEN '{from}' AND '{to}' AND es.kind = 'full'
GROUP BY e.lead_worker_id
UNION ALL
SELECT e.lead_worker_id, 'open', COUNT(*)
FROM episode_summaries es
JOIN episodes e ON e.service_id = es.service_id AND e.episode_id = es.episode_id
WHERE es.service_id IN ({services}) AND es.first_contact_on <= '{to}'
  AND (es.closed_on IS NULL OR es.closed_on > '{to}')
GROUP BY e.lead_worker_id
UNION ALL
SELECT e.lead_worker_id, 'idle', COUNT(*)
FROM episode_summaries es
JOIN episodes e ON e.service_id = es.service_id AND e.episode_id = es.episode_id
WHERE es.service_id IN ({services}) AND es.first_contact_on < '{stale}'
  AND (es.closed_on IS NULL OR es.closed_on > '{to}')
  AND NOT EXISTS (SELECT 1 FROM sessions s
                  WHERE s.service_id = es.service_id AND s.episode_id = es.episode_id
                    AND s.attended = 'yes' AND s.held_on BETWEEN '{stale}' AND '{to}')
GROUP BY e.lead_worker_id
UNION ALL
SELECT worker_id, attended, COUNT(*)
FROM sessions
WHERE service_id IN ({services}) AND held_on BETWEEN '{from}' AND '{to}'
GROUP BY worker_id, attended
