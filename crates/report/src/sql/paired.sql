-- Baseline and exit assessments of episodes closed in the period that have both.
SELECT es.service_id, es.episode_id, c.imd_quintile, a.occasion, a.bmi,
       a.fruit_veg_portions_per_day, a.high_fat_snacks_per_day, a.active_days_per_week,
       a.alcohol_units_per_week, a.self_efficacy, a.general_health, a.swemwbs_raw,
       a.smoking_status
FROM episode_summaries es
JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id
JOIN assessments a ON a.service_id = es.service_id AND a.episode_id = es.episode_id
WHERE es.service_id IN ({services}) AND es.closed_on BETWEEN '{from}' AND '{to}'
  AND es.baseline_on IS NOT NULL AND es.exit_on IS NOT NULL
  AND a.occasion IN ('baseline', 'exit')
ORDER BY es.service_id, es.episode_id, a.occasion
