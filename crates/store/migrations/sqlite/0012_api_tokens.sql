-- Access tokens for scripts using the JSON API. Only the SHA-256 of a token is kept (it is
-- shown once, when made). A token acts as the user who made it, never beyond their role and
-- services, and can be narrowed to reading only and to some of those services.
CREATE TABLE api_tokens (
    token_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (user_id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- `read` or `write` (write includes read).
    access TEXT NOT NULL,
    -- Service references separated by `;`, or NULL for all the user's services.
    services TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
