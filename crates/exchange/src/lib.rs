//! Import and export in the dataset's CSV format (dataset.md, "CSV import format"):
//! one file per entity, a header row of field names, UTF-8.

mod export;
mod fhir;
mod import;

pub use export::{ExportError, ExportSummary, export_dir};
pub use fhir::{FhirSummary, client_fhir, export_fhir};
pub use import::{
    EntityCounts, Fields, ImportError, ImportOptions, ImportReport, MAX_LISTED, Merge, OnceKey,
    Progress, REMOVABLE, Rejection, Removal, answered_before, import_dir, merge_clients, printable,
    remove_records, write_records,
};
