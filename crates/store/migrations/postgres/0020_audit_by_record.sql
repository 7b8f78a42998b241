-- The audit entries about one record, found without reading the service's whole log:
-- an erasure empties the details of every entry about the client's records, and a
-- subject access request lists them (docs/governance.md).
CREATE INDEX audit_log_record ON audit_log (service_id, record_ref);
