-- Records of events in the period entered through the application (not by import)
-- more than 30 days after the event. created_at is an RFC 3339 timestamp; its first ten
-- characters are the UTC date; the gap is worked out in the program, the same way on
-- both backends.
SELECT service_id, event_on, created_at FROM (
  SELECT service_id, received_on AS event_on, created_at FROM referrals
   WHERE service_id IN ({services}) AND received_on BETWEEN '{from}' AND '{to}' AND entered_via <> 'import'
  UNION ALL
  SELECT service_id, first_contact_on, created_at FROM episodes
   WHERE service_id IN ({services}) AND first_contact_on BETWEEN '{from}' AND '{to}' AND entered_via <> 'import'
  UNION ALL
  SELECT service_id, assessed_on, created_at FROM assessments
   WHERE service_id IN ({services}) AND assessed_on BETWEEN '{from}' AND '{to}' AND entered_via <> 'import'
  UNION ALL
  SELECT service_id, held_on, created_at FROM sessions
   WHERE service_id IN ({services}) AND held_on BETWEEN '{from}' AND '{to}' AND entered_via <> 'import'
) x
