-- Episodes opened by month of first contact, kind, whether a plan was agreed (and how
-- many days after first contact) and whether any wider issue was recorded.
SELECT service_id, SUBSTR(first_contact_on, 1, 7), kind,
       CASE WHEN plan_agreed_on IS NULL THEN NULL ELSE {days_to_plan} END,
       CASE WHEN wider_issues > 0 THEN 1 ELSE 0 END, COUNT(*)
FROM episode_summaries
WHERE service_id IN ({services}) AND first_contact_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id, SUBSTR(first_contact_on, 1, 7), kind,
         CASE WHEN plan_agreed_on IS NULL THEN NULL ELSE {days_to_plan} END,
         CASE WHEN wider_issues > 0 THEN 1 ELSE 0 END
