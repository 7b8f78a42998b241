-- Assessments made in the period: each measure recorded, and BMI values flagged as out
-- of range.
SELECT service_id, COUNT(*),
  CAST(SUM(CASE WHEN height_cm IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN weight_kg IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN waist_cm IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN fruit_veg_portions_per_day IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN high_fat_snacks_per_day IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN active_days_per_week IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN alcohol_units_per_week IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN smoking_status IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN self_efficacy IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN general_health IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN swemwbs_raw IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
  CAST(SUM(CASE WHEN bmi_flagged <> 0 THEN 1 ELSE 0 END) AS BIGINT)
FROM assessments
WHERE service_id IN ({services}) AND assessed_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id
