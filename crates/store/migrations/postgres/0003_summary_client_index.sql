-- Lets the summaries of a set of clients be found without scanning.
CREATE INDEX episode_summaries_client ON episode_summaries (service_id, client_id);
