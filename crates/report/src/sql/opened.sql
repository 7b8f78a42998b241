-- Episodes opened in the period by kind, and by days from referral to first contact.
SELECT service_id, 'kind', kind, COUNT(*)
FROM episode_summaries
WHERE service_id IN ({services}) AND first_contact_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id, kind
UNION ALL
SELECT service_id, 'days', CAST({days_to_first_contact} AS TEXT), COUNT(*)
FROM episode_summaries
WHERE service_id IN ({services}) AND first_contact_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id, {days_to_first_contact}
