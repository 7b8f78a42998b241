-- Indexes by date for the reports: each report reads one period's records, so it finds
-- them by service and date instead of scanning the service's whole history. The session
-- index carries attendance and episode so that session counts never touch the table.
CREATE INDEX referrals_received ON referrals (service_id, received_on);
CREATE INDEX sessions_held ON sessions (service_id, held_on, attended, episode_id);
CREATE INDEX plans_agreed ON plans (service_id, agreed_on);
CREATE INDEX goals_status ON goals (service_id, status_on);
CREATE INDEX assessments_assessed ON assessments (service_id, assessed_on);
-- Whether a client was seen before an episode: by client and first contact (this also
-- serves every lookup the client-only index served).
CREATE INDEX episode_summaries_client_first ON episode_summaries (service_id, client_id, first_contact_on);
DROP INDEX episode_summaries_client;
