//! Import and export in the dataset's CSV format (dataset.md, "CSV import format"):
//! one file per entity, a header row of field names, UTF-8.

mod export;
mod fhir;
mod import;

pub use export::{ExportError, ExportSummary, export_dir};
pub use fhir::{FhirSummary, client_fhir, export_fhir};
pub use import::{
    EntityCounts, ImportError, ImportOptions, ImportReport, Progress, Rejection, import_dir,
    import_texts,
};

/// Temporary phase timings (profiling aid).
pub mod prof {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static T: Mutex<Vec<(&'static str, Duration, u64)>> = Mutex::new(Vec::new());
    pub fn add(name: &'static str, since: Instant) {
        let d = since.elapsed();
        let mut t = T.lock().unwrap();
        if let Some(e) = t.iter_mut().find(|e| e.0 == name) {
            e.1 += d;
            e.2 += 1;
        } else {
            t.push((name, d, 1));
        }
    }
    pub fn dump() {
        let mut t = T.lock().unwrap();
        for (n, d, c) in t.iter() {
            eprintln!("PROF {n:<24} {:>8.3} s  {c:>8}", d.as_secs_f64());
        }
        t.clear();
    }
}
