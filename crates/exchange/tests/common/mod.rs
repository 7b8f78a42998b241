//! What the import and export tests share: the example dataset and the options of a run.

#![allow(dead_code)]

use chrono::NaiveDate;
use dcrs_exchange::{ImportOptions, ImportReport, import_dir};
use dcrs_store::Database;
use std::path::{Path, PathBuf};

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dataset")
}

pub fn options() -> ImportOptions {
    ImportOptions {
        dry_run: false,
        today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        rules: Default::default(),
        actor: "test".into(),
        only_new: false,
    }
}

pub async fn import(db: &Database, dir: &Path) -> ImportReport {
    import_dir(db, dir, &options(), |_| {})
        .await
        .expect("the import runs")
}
