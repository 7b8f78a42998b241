-- The audit entries about one record, found without reading the service's whole log:
-- an erasure empties the details of every entry about the client's records, and a
-- subject access request lists them (docs/governance.md). Only entries about a kind of
-- record (`entity` set) are indexed: views of pages, the bulk of the log, are not.
CREATE INDEX audit_log_record ON audit_log (service_id, record_ref) WHERE entity IS NOT NULL;
