-- Sessions held in the period by whether the client came.
SELECT service_id, attended, COUNT(*)
FROM sessions
WHERE service_id IN ({services}) AND held_on BETWEEN '{from}' AND '{to}'
GROUP BY service_id, attended
