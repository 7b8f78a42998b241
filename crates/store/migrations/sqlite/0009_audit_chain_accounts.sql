-- The audit log becomes a hash chain per service (and one for entries about no service):
-- each entry carries its chain, its position in it, the hash of the entry before and its
-- own hash; audit_heads holds each chain's last position and hash. Entries written
-- before this migration have no chain and are reported as such by `dcrs audit verify`.
ALTER TABLE audit_log ADD COLUMN chain TEXT;
ALTER TABLE audit_log ADD COLUMN seq INTEGER;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_log_chain ON audit_log (chain, seq);
CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);

-- Accounts of the web application. A health trainer or service manager belongs to one
-- service (a health trainer also to its worker record); a commissioner to an
-- organisation; an analyst to every service or a listed set.
CREATE TABLE users (
    user_id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    service_id INTEGER REFERENCES services (service_id),
    worker_ref TEXT,
    org_ref TEXT,
    analyst_services TEXT,
    password_hash TEXT NOT NULL,
    totp_secret TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
);

-- Signed-in sessions: only a hash of the session id is stored. Times are Unix seconds.
CREATE TABLE web_sessions (
    session_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (user_id),
    csrf_token TEXT NOT NULL,
    second_factor_done INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
