-- Attended sessions by month, mode and venue.
SELECT service_id, SUBSTR(held_on, 1, 7), mode, venue, COUNT(*)
FROM sessions
WHERE service_id IN ({services}) AND held_on BETWEEN '{from}' AND '{to}' AND attended = 'yes'
GROUP BY service_id, SUBSTR(held_on, 1, 7), mode, venue
