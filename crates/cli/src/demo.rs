//! `dcrs demo`: loads the small synthetic example dataset kept in the repository
//! (`examples/dataset`), so the system can be tried with one command. Importing it
//! again changes nothing.

use crate::{OPERATOR, print_counts};
use dcrs_domain::Entity;
use dcrs_domain::rules::RuleSettings;
use dcrs_domain::types::uk_today;
use dcrs_exchange::ImportOptions;
use dcrs_store::Database;
use std::process::ExitCode;

macro_rules! example_files {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../../examples/dataset/", $name)))),+]
    };
}

/// The example files, built into the binary so the demo runs from any directory.
const FILES: &[(&str, &str)] = example_files!(
    "organisations.csv",
    "services.csv",
    "service_configurations.csv",
    "workers.csv",
    "clients.csv",
    "referrals.csv",
    "episodes.csv",
    "assessments.csv",
    "plans.csv",
    "goals.csv",
    "sessions.csv",
    "onward_referrals.csv",
    "wider_issues.csv",
);

pub(crate) async fn run(db: &Database, rules: RuleSettings) -> anyhow::Result<ExitCode> {
    debug_assert_eq!(FILES.len(), Entity::ALL.len());
    let dir = tempfile::tempdir()?;
    for (name, text) in FILES {
        std::fs::write(dir.path().join(name), text)?;
    }
    let options = ImportOptions {
        dry_run: false,
        today: uk_today(chrono::Utc::now()),
        rules,
        actor: OPERATOR.into(),
    };
    let report = dcrs_exchange::import_dir(db, dir.path(), &options, |_| {}).await?;
    if !report.rejections.is_empty() {
        for r in &report.rejections {
            eprintln!("  {r}");
        }
        anyhow::bail!("the example dataset was rejected; this is a bug in dcrs");
    }
    let t = report.totals();
    out!("SYNTHETIC EXAMPLE DATA: two made-up services (Blackpool and Wokingham); no real people.");
    out!(
        "Loaded: {} added, {} updated, {} unchanged.",
        t.added,
        t.updated,
        t.unchanged
    );
    out!();
    print_counts(db).await?;
    out!();
    out!("Try: dcrs export exported/   (writes the dataset back out as CSV)");
    Ok(ExitCode::SUCCESS)
}
