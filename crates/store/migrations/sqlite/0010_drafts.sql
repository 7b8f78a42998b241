-- Forms saved as drafts in the web application, to be finished later: whose, which
-- service, which form and about which record, and the values typed so far (JSON).
CREATE TABLE drafts (
    draft_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (user_id),
    service_id INTEGER NOT NULL REFERENCES services (service_id),
    flow TEXT NOT NULL,
    subject_ref TEXT NOT NULL,
    field_values TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX drafts_user ON drafts (user_id);
