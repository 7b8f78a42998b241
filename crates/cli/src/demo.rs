//! `dcrs demo`: one command from an empty directory to a working demonstration. It loads
//! the reference data if none is loaded, then generates and loads the six-service
//! synthetic scenario (or, with `--clients`, a national deployment) unless it is already
//! there. Running it again changes nothing.

use crate::{operator, print_counts};
use anyhow::{Context, bail};
use dcrs_domain::Entity;
use dcrs_domain::rules::RuleSettings;
use dcrs_domain::types::uk_today;
use dcrs_exchange::ImportOptions;
use dcrs_store::{AuditEntry, Database};
use dcrs_synth::{Options, Summary};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Runs the generator off the async threads.
pub(crate) async fn generate(
    refdata: PathBuf,
    out: PathBuf,
    options: Options,
) -> anyhow::Result<Summary> {
    let summary =
        tokio::task::spawn_blocking(move || dcrs_synth::generate(&refdata, &out, &options))
            .await
            .context("the generator stopped")??;
    Ok(summary)
}

/// What `dcrs generate` wrote.
pub(crate) fn print_generated(summary: &Summary, dir: &Path) {
    out!("SYNTHETIC DATA: made-up services, workers and clients; no real people.");
    for (r, name) in &summary.services {
        if summary.services.len() <= 12 {
            out!("  {r:<5} {name}");
        }
    }
    if summary.services.len() > 12 {
        out!("  {} services", summary.services.len());
    }
    for (e, n) in &summary.rows {
        out!("{:<26} {n:>9}", e.file_name());
    }
    out!(
        "Wrote {} and scenario.json (the truth about every scripted change) to {}",
        if summary.scenario {
            "the six-service scenario"
        } else {
            "a national deployment"
        },
        dir.display()
    );
}

/// The service references a generation makes.
fn service_refs(options: &Options) -> Vec<String> {
    match options.scale {
        None => ["A", "B", "C", "D", "E", "F"].map(String::from).to_vec(),
        Some(s) => (1..=s.services).map(|i| format!("S{i:03}")).collect(),
    }
}

pub(crate) async fn run(
    db: &Database,
    rules: RuleSettings,
    refdata: PathBuf,
    options: Options,
) -> anyhow::Result<ExitCode> {
    out!("SYNTHETIC DEMONSTRATION DATA: made-up services, workers and clients; no real people.");
    if db.reference_files().await?.is_empty() {
        if !refdata.join("imd/imd2019_lsoa11_england.csv").is_file() {
            bail!(
                "no reference data is loaded and none was found in {}.\n\
                 The demonstration places its clients in real areas, so it needs England's \
                 reference data first:\n  \
                 1. get the reference data directory (the project's ../shared/data, or \
                 `dcrs refdata download DIR` where the internet is reachable);\n  \
                 2. run `dcrs refdata load DIR`, or set DCRS_REFDATA=DIR;\n  \
                 3. run `dcrs demo` again.",
                refdata.display()
            );
        }
        out!("Loading reference data from {} …", refdata.display());
        let started = Instant::now();
        let report = dcrs_refdata::load(
            db,
            &refdata,
            &dcrs_refdata::LoadOptions {
                actor: operator(),
                ..Default::default()
            },
        )
        .await?;
        out!(
            "Loaded {} reference files in {:.0} s.",
            report.files.len(),
            started.elapsed().as_secs_f64()
        );
    } else {
        out!("Reference data: already loaded.");
    }

    let wanted = service_refs(&options);
    let mut present = HashSet::new();
    db.for_each_row(Entity::Service, |fields| {
        if let Some((_, r)) = fields.into_iter().find(|(k, _)| *k == "service_ref") {
            present.insert(r);
        }
    })
    .await?;
    if wanted.iter().all(|r| present.contains(r)) {
        out!("The demonstration data are already loaded; nothing was changed.");
    } else {
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        let summary = generate(refdata, dir.path().to_path_buf(), options).await?;
        let generated = started.elapsed();
        let report = dcrs_exchange::import_dir(
            db,
            dir.path(),
            &ImportOptions {
                dry_run: false,
                today: uk_today(chrono::Utc::now()),
                rules,
                actor: operator(),
                only_new: false,
            },
            |_| {},
        )
        .await?;
        if !report.rejections.is_empty() {
            for r in report.rejections.iter().take(20) {
                eprintln!("  {r}");
            }
            bail!(
                "the generated data were rejected ({} problems); this is a bug in dcrs",
                report.rejections.len()
            );
        }
        let t = report.totals();
        out!(
            "Generated {} in {:.1} s and loaded it in {:.1} s: {} added, {} updated, {} unchanged.",
            if summary.scenario {
                "the six-service scenario (FY 2006-07 to 2012-13)"
            } else {
                "a national deployment (FY 2008-09 to 2010-11)"
            },
            generated.as_secs_f64(),
            (started.elapsed() - generated).as_secs_f64(),
            t.added,
            t.updated,
            t.unchanged
        );
        if !report.warnings.is_empty() {
            out!(
                "{} clients have a postcode the lookup cannot place (as in real records); their quintile is unknown.",
                report.warnings.len()
            );
        }
        if summary.services.len() <= 12 {
            for (r, name) in &summary.services {
                out!("  {r:<5} {name}");
            }
        }
    }
    out!();
    print_counts(db).await?;
    out!();
    accounts(db, &wanted[0]).await?;
    out!();
    out!("Try: dcrs export exported/   (writes the dataset back out as CSV)");
    Ok(ExitCode::SUCCESS)
}

/// One account per role on the first demonstration service, each with a new password
/// printed here (the data are synthetic; these accounts exist for trying the product).
async fn accounts(db: &Database, service_ref: &str) -> anyhow::Result<()> {
    let worker: Option<String> = sqlx::query_scalar(
        "SELECT w.worker_ref FROM workers w JOIN services s ON s.service_id = w.service_id \
         WHERE s.service_ref = $1 AND w.role = 'health_trainer' AND w.left_on IS NULL ORDER BY w.worker_ref LIMIT 1",
    )
    .bind(service_ref.to_string())
    .fetch_optional(db.pool())
    .await?;
    let org: Option<String> = sqlx::query_scalar(
        "SELECT o.org_ref FROM services s JOIN organisations o ON o.org_id = s.commissioner_org_id WHERE s.service_ref = $1",
    )
    .bind(service_ref.to_string())
    .fetch_optional(db.pool())
    .await?;
    let wanted = [
        ("demo-trainer", "Demo health trainer", "health_trainer"),
        ("demo-manager", "Demo service manager", "service_manager"),
        ("demo-commissioner", "Demo commissioner", "commissioner"),
        ("demo-analyst", "Demo analyst", "analyst"),
        ("demo-admin", "Demo admin", "admin"),
    ];
    out!("Accounts (synthetic; passwords are new each time dcrs demo runs):");
    for (username, name, role) in wanted {
        let password = format!(
            "demo-{}",
            dcrs_web::auth::hex(&dcrs_web::auth::random_bytes::<6>())
        );
        let hash = dcrs_web::auth::hash_password(password.clone()).await?;
        match dcrs_web::users::by_username(db, username).await? {
            Some(u) => {
                sqlx::query("UPDATE users SET password_hash = $1, failed_logins = 0, locked_until = NULL, disabled = 0 WHERE user_id = $2")
                    .bind(hash)
                    .bind(u.user_id)
                    .execute(db.pool())
                    .await?;
            }
            None => {
                let n = dcrs_web::users::NewUser {
                    username: username.into(),
                    display_name: name.into(),
                    role: role.into(),
                    service_ref: matches!(role, "health_trainer" | "service_manager")
                        .then(|| service_ref.to_string()),
                    worker_ref: (role == "health_trainer").then(|| worker.clone()).flatten(),
                    org_ref: (role == "commissioner").then(|| org.clone()).flatten(),
                    analyst_services: None,
                    password: password.clone(),
                };
                match dcrs_web::users::check(db, &n).await? {
                    Ok(u) => {
                        dcrs_web::users::insert(db, &u, &hash, false).await?;
                    }
                    Err(problems) => {
                        let why: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
                        out!("  {username}: not created ({})", why.join("; "));
                        continue;
                    }
                }
            }
        }
        db.audit(&AuditEntry {
            actor: operator(),
            action: "user.demo_password".into(),
            record_ref: Some(username.into()),
            ..Default::default()
        })
        .await?;
        out!("  {:<18} {:<16} {password}", username, role);
    }
    Ok(())
}
