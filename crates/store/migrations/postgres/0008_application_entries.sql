-- Records entered through the application rather than by import, by service and event
-- date, for the data-quality count of late entries. Partial indexes: imported records,
-- the great majority, are not in them, so imports pay nothing for them.
CREATE INDEX referrals_by_application ON referrals (service_id, received_on) WHERE entered_via <> 'import';
CREATE INDEX episodes_by_application ON episodes (service_id, first_contact_on) WHERE entered_via <> 'import';
CREATE INDEX assessments_by_application ON assessments (service_id, assessed_on) WHERE entered_via <> 'import';
CREATE INDEX sessions_by_application ON sessions (service_id, held_on) WHERE entered_via <> 'import';
