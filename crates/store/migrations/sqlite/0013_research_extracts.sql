-- Research projects and the register of extracts released for them. A project's secret
-- (the key of its pseudonyms and date offsets) is kept in a file outside the database;
-- only its SHA-256 is here, to notice a wrong or replaced file.
CREATE TABLE research_projects (
    project_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL,
    approver TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL
);
CREATE TABLE extract_releases (
    release_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES research_projects (project_id),
    released_by TEXT NOT NULL,
    released_at TEXT NOT NULL,
    purpose TEXT NOT NULL,
    -- [{"name", "rows", "sha256"}]
    files TEXT NOT NULL,
    total_rows INTEGER NOT NULL,
    -- services, format, dates, generalisation applied, smallest group, k
    detail TEXT NOT NULL
);
CREATE INDEX extract_releases_project ON extract_releases (project_id);
