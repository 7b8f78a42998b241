-- One-time keys of form submissions and API requests: a repeat of a key (a reload after
-- the answer was lost, a double tap) answers with what the first stored instead of
-- storing it again. Written in the same transaction as the records.
CREATE TABLE once_keys (
    once_key TEXT NOT NULL PRIMARY KEY,
    actor TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at TEXT NOT NULL
);
