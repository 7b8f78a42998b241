//! `dcrs`, the operator's command line. It acts as the system operator: every run that
//! reads personal data or changes records is written to the audit log.

/// Prints a line to standard output; when the reader has gone away (`dcrs status | head`)
/// stops quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod demo;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dcrs_domain::rules::RuleSettings;
use dcrs_domain::types::uk_today;
use dcrs_exchange::{ImportOptions, ImportReport, Progress};
use dcrs_store::{AuditEntry, Database};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The actor named in the audit log for command-line runs.
const OPERATOR: &str = "operator (cli)";

#[derive(Parser)]
#[command(
    name = "dcrs",
    version,
    about = "Health trainer data collection and reporting system"
)]
struct Cli {
    /// Database: sqlite://PATH (the default is dcrs.db in the working directory) or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "DCRS_DATABASE_URL", default_value = dcrs_store::DEFAULT_URL)]
    database: String,

    /// The youngest age a client may be on the date of a referral.
    #[arg(long, global = true, default_value_t = 16)]
    min_age: i32,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import a directory of dataset CSV files (all-or-nothing).
    Import {
        /// The directory holding organisations.csv, services.csv, clients.csv, …
        dir: PathBuf,
        /// Check and report without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export every record to a directory of dataset CSV files.
    Export {
        /// The directory to write (created if needed; dataset files in it are replaced).
        dir: PathBuf,
    },
    /// Show how many records of each kind are stored.
    Status,
    /// Load the built-in example dataset (synthetic) and print what it holds.
    Demo,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DCRS_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dcrs: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&cli.database)
        .await
        .with_context(|| format!("could not open the database {}", redact_url(&cli.database)))?;
    let rules = RuleSettings {
        min_age: cli.min_age,
        ..RuleSettings::default()
    };
    let code = match cli.command {
        Command::Import { dir, dry_run } => {
            let report = import(&db, &dir, dry_run, rules).await?;
            print_report(&report, dry_run);
            if report.rejections.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Export { dir } => {
            let summary = dcrs_exchange::export_dir(&db, &dir).await?;
            let total: u64 = summary.rows.iter().map(|(_, n)| n).sum();
            db.audit(&AuditEntry {
                actor: OPERATOR.into(),
                action: "export".into(),
                detail: Some(format!(
                    "{{\"directory\":{:?},\"records\":{total}}}",
                    dir.display().to_string()
                )),
                ..Default::default()
            })
            .await?;
            for (entity, n) in &summary.rows {
                out!("{:<26} {n:>9}", entity.file_name());
            }
            out!("Exported {total} records to {}", dir.display());
            ExitCode::SUCCESS
        }
        Command::Status => {
            print_counts(&db).await?;
            ExitCode::SUCCESS
        }
        Command::Demo => demo::run(&db, rules).await?,
    };
    db.close().await;
    Ok(code)
}

/// Runs an import with a progress bar on a terminal (indicatif hides it otherwise).
async fn import(
    db: &Database,
    dir: &Path,
    dry_run: bool,
    rules: RuleSettings,
) -> anyhow::Result<ImportReport> {
    let options = ImportOptions {
        dry_run,
        today: uk_today(chrono::Utc::now()),
        rules,
        actor: OPERATOR.into(),
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {percent:>3}%  {elapsed}")
            .expect("a valid template"),
    );
    let report = dcrs_exchange::import_dir(db, dir, &options, |p: Progress| {
        bar.set_message(p.phase);
        bar.set_length(p.total.max(1));
        bar.set_position(p.done);
    })
    .await?;
    bar.finish_and_clear();
    Ok(report)
}

fn print_report(report: &ImportReport, dry_run: bool) {
    out!(
        "{:<26} {:>9} {:>9} {:>9}",
        "file",
        "added",
        "updated",
        "unchanged"
    );
    for (entity, c) in &report.counts {
        out!(
            "{:<26} {:>9} {:>9} {:>9}",
            entity.file_name(),
            c.added,
            c.updated,
            c.unchanged
        );
    }
    let t = report.totals();
    out!(
        "{:<26} {:>9} {:>9} {:>9}",
        "total",
        t.added,
        t.updated,
        t.unchanged
    );
    for w in &report.warnings {
        out!("warning: {w}");
    }
    if !report.rejections.is_empty() {
        out!();
        out!(
            "{} problem(s) found; nothing was imported:",
            report.rejections.len()
        );
        for r in &report.rejections {
            out!("  {r}");
        }
        if report.not_checked > 0 {
            out!(
                "  ({} more row(s) were not checked because they refer to a rejected record)",
                report.not_checked
            );
        }
    } else if dry_run {
        out!("Dry run: no problems found; nothing was written.");
    } else {
        out!("Imported.");
    }
}

async fn print_counts(db: &Database) -> anyhow::Result<()> {
    for (entity, n) in db.counts().await? {
        out!("{:<26} {n:>9}", entity.file_name());
    }
    Ok(())
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
