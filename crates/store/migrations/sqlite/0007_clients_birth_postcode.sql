-- Possible duplicate clients (the data-quality report) are found by date of birth and
-- postcode within a service; this index lets the database group them without reading
-- every client row.
CREATE INDEX IF NOT EXISTS clients_birth_postcode ON clients (service_id, date_of_birth, postcode);
