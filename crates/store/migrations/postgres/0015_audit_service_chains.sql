-- From this version every service has an audit chain from its creation, so that
-- `dcrs audit verify` can tell a chain deleted whole. Services stored before it get
-- their chain opened once, the first time this version opens the database (see
-- `audit::open_service_chains`); this setting says that is still to do.
INSERT INTO settings (key, value) VALUES ('audit_service_chains', 'pending');
