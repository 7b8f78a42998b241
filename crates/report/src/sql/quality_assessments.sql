-- Assessments made in the period: each measure recorded (one column per measure of the
-- field catalogue, written in by quality.rs), and BMI values flagged as out of range.
SELECT service_id, COUNT(*),
  {recorded},
  CAST(SUM(CASE WHEN bmi_flagged <> 0 THEN 1 ELSE 0 END) AS BIGINT)
FROM assessments
WHERE service_id IN ({services}) AND assessed_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id
