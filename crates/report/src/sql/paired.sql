-- Episodes closed in the period with a baseline and an exit assessment, by the client's
-- quintile: for each measure with both values, how many, the sums of the baseline, exit,
-- difference and squared difference, and how many improved ({measures} is generated
-- from the measure list); then smokers at baseline and those not smoking at exit.
SELECT es.service_id, c.imd_quintile, {measures},
  SUM(CASE WHEN b.smoking_status = 'current' AND e.smoking_status IS NOT NULL THEN 1 ELSE 0 END),
  SUM(CASE WHEN b.smoking_status = 'current' AND e.smoking_status IS NOT NULL
           AND e.smoking_status <> 'current' THEN 1 ELSE 0 END)
FROM episode_summaries es
JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
JOIN assessments b ON b.service_id = es.service_id AND b.episode_id = es.episode_id AND b.occasion = 'baseline'
JOIN assessments e ON e.service_id = es.service_id AND e.episode_id = es.episode_id AND e.occasion = 'exit'
WHERE es.service_id IN ({services}) AND es.closed_on BETWEEN '{from}' AND '{to}'
  AND es.baseline_on IS NOT NULL AND es.exit_on IS NOT NULL
GROUP BY es.service_id, c.imd_quintile
