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

mod backup;
mod demo;
mod extract;
mod governance;
mod patterns;
mod report;
mod web;

/// The import allocates and frees many small strings; mimalloc measured faster than the
/// system allocator for it (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dcrs_domain::rules::RuleSettings;
use dcrs_domain::types::uk_today;
use dcrs_exchange::{ImportOptions, ImportReport, Progress};
use dcrs_store::{AuditEntry, Database};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The actor named in the audit log for command-line runs: the operator, and the
/// operating-system account that ran the command (its name where the environment gives
/// one, and always its numeric id, which a login cannot choose).
pub(crate) fn operator() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|n| !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_graphic()));
    match name {
        Some(name) => format!("operator (cli, os user {name}, uid {uid})"),
        None => format!("operator (cli, uid {uid})"),
    }
}

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

    /// Folder of secrets kept outside the database (research projects' keys).
    #[arg(long, global = true, env = "DCRS_SECRETS", default_value = "secrets")]
    secrets: PathBuf,

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
    /// Export every record to a directory of dataset CSV files, or with --fhir as one
    /// FHIR R4 Bundle per client.
    Export {
        /// The directory to write (created if needed; dataset files in it are replaced).
        dir: PathBuf,
        /// Write FHIR R4 Bundles (one per client, with index.csv) instead of CSV files.
        #[arg(long)]
        fhir: bool,
    },
    /// Show how many records of each kind are stored.
    Status,
    /// Set up a demonstration: load reference data if none is loaded, then generate and
    /// load the six-service synthetic scenario (or a national one with --clients).
    Demo {
        /// Generate a national deployment of this many clients instead of the scenario.
        #[arg(long)]
        clients: Option<u64>,
        /// How many services share them (default: one per 5,000 clients).
        #[arg(long, requires = "clients")]
        services: Option<u32>,
        /// The reference data directory (default: DCRS_REFDATA, then ../shared/data).
        #[arg(long)]
        refdata: Option<PathBuf>,
        /// The generator's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop once the data and accounts are ready instead of starting the application.
        #[arg(long)]
        no_serve: bool,
        /// Where the application listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Write a synthetic dataset in the import format: the six-service scenario, or a
    /// national deployment with --services/--clients. Needs no database.
    Generate {
        /// The directory to write (created if needed).
        #[arg(long)]
        out: PathBuf,
        /// The seed: the same seed and reference data give the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of services of a national deployment.
        #[arg(long)]
        services: Option<u32>,
        /// Number of clients of a national deployment.
        #[arg(long)]
        clients: Option<u64>,
        /// The reference data directory (default: DCRS_REFDATA, then ../shared/data).
        #[arg(long)]
        refdata: Option<PathBuf>,
    },
    /// Produce a report (analytics.md sections 1-6) as JSON or a folder of CSV files.
    Report(report::ReportArgs),
    /// Implementation patterns (analytics.md section 7): delivery fingerprint, model and
    /// drift per service and quarter, as JSON, CSV, HTML or .xlsx.
    Patterns(patterns::PatternsArgs),
    /// Run the web application.
    Serve(web::ServeArgs),
    /// Research projects: register one, list them, show the release register.
    Project {
        #[command(subcommand)]
        command: extract::ProjectCommand,
    },
    /// Release a pseudonymised research extract of a registered project.
    Extract(extract::ExtractArgs),
    /// User accounts of the web application.
    User {
        #[command(subcommand)]
        command: web::UserCommand,
    },
    /// A consistent copy of the database, written to FILE with its checksum (and sealed
    /// with the key in the secrets folder with --encrypt); taken while the application
    /// runs.
    Backup {
        file: PathBuf,
        /// Seal the copy with `<secrets>/backup.key` (made on first use).
        #[arg(long)]
        encrypt: bool,
    },
    /// Restore a backup into an empty database, then check its audit chains and counts.
    Restore { file: PathBuf },
    /// Erase a client and all their records, with a reason: reports recount, the audit
    /// log's copies of their details are removed (the chains still verify), and a
    /// tombstone without personal data remains.
    Erase(governance::EraseArgs),
    /// Each service's retention period (default 8 years after the last contact): list
    /// with --dry-run the clients whose period has ended, erase them with --apply, or
    /// change a service's period with --set-years.
    Retention(governance::RetentionArgs),
    /// Everything held about one client, for a subject access request: their records,
    /// what was derived from them, who viewed or changed them and when, the releases of
    /// their service's figures (JSON), and their records as a FHIR Bundle.
    SubjectAccess(governance::SubjectAccessArgs),
    /// The possible duplicate clients of a service, with the evidence (the pairs the
    /// data-quality report counts).
    Duplicates(governance::DuplicatesArgs),
    /// Merge two clients of a service found to be one person: every record of --merge
    /// moves to --keep, checked by every rule, and --merge goes.
    Merge(governance::MergeArgs),
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: web::AuditCommand,
    },
    /// Reference data: deprivation indices, postcode and area lookups, census counts.
    Refdata {
        #[command(subcommand)]
        command: RefdataCommand,
    },
}

#[derive(Subcommand)]
enum RefdataCommand {
    /// Load the reference files of a directory (and any named with --file) into the database.
    Load {
        /// The directory (default: DCRS_REFDATA, then ../shared/data).
        dir: Option<PathBuf>,
        /// The IMD year for clients' deciles and quintiles: 2004, 2007, 2010 or 2019.
        #[arg(long)]
        imd_year: Option<i64>,
        /// An extra file in another layout, as KIND=PATH (kinds: imd2019, postcodes, …).
        #[arg(long = "file", value_name = "KIND=PATH")]
        files: Vec<String>,
        /// The column a field is read from, as KIND.FIELD=HEADER.
        #[arg(long = "map", value_name = "KIND.FIELD=HEADER")]
        maps: Vec<String>,
    },
    /// List the reference files loaded, with their checksums, and the rows of each table.
    Status,
    /// Fetch the publishers' files into a directory (needs internet access), recording
    /// the SHA-256 of each in DIR/SHA256SUMS. DCRS_REFDATA_BASE replaces the publishers'
    /// address (a mirror, or a test server).
    Download {
        /// Where to write the files.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    // Everything this program creates (the SQLite database and its -wal and -shm files,
    // exports, FHIR bundles, extracts, secrets) holds health data or keys to it: readable
    // and writable by the account that runs it alone.
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(0o077) };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DCRS_LOG")
                .unwrap_or_else(|_| "warn,sqlx=error".into()),
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
    if let Command::Generate {
        out,
        seed,
        services,
        clients,
        refdata,
    } = &cli.command
    {
        let scale = dcrs_synth::Scale::from_options(*services, *clients)?;
        let options = dcrs_synth::Options { seed: *seed, scale };
        let summary = demo::generate(refdata_dir(refdata.clone()), out.clone(), options).await?;
        demo::print_generated(&summary, out);
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Restore { file } = &cli.command {
        return backup::restore(&cli.database, file, &cli.secrets).await;
    }
    let workload = match cli.command {
        Command::Serve(_) => dcrs_store::Workload::Serving,
        _ => dcrs_store::Workload::Batch,
    };
    let db = Database::connect_for(&cli.database, workload)
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
        Command::Export { dir, fhir: true } => {
            // The release is audited before anything is written: if the entry cannot be
            // written (the database locked, say), nothing leaves the database.
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            db.audit(&AuditEntry {
                actor: operator(),
                action: "export.fhir".into(),
                detail: Some(
                    serde_json::json!({
                        "directory": dir.display().to_string(),
                        "clients": client_count(&db).await?,
                    })
                    .to_string(),
                ),
                ..Default::default()
            })
            .await?;
            let summary = dcrs_exchange::export_fhir(&db, &dir, &now).await?;
            out!(
                "Exported {} FHIR bundles ({} resources) to {}",
                summary.bundles,
                summary.resources,
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Command::Export { dir, fhir: false } => {
            // Audited before anything is written, with the records held at the start.
            let held: i64 = db.counts().await?.iter().map(|(_, n)| n).sum();
            db.audit(&AuditEntry {
                actor: operator(),
                action: "export".into(),
                detail: Some(
                    serde_json::json!({
                        "directory": dir.display().to_string(),
                        "records": held,
                    })
                    .to_string(),
                ),
                ..Default::default()
            })
            .await?;
            let summary = dcrs_exchange::export_dir(&db, &dir).await?;
            let total: u64 = summary.rows.iter().map(|(_, n)| n).sum();
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
        Command::Demo {
            clients,
            services,
            refdata,
            seed,
            no_serve,
            bind,
        } => {
            let scale = dcrs_synth::Scale::from_options(services, clients)?;
            let options = dcrs_synth::Options { seed, scale };
            let code = demo::run(&db, rules, refdata_dir(refdata), options).await?;
            if no_serve || code != ExitCode::SUCCESS {
                code
            } else {
                let settings = dcrs_web::Settings {
                    secrets_dir: cli.secrets.clone(),
                    ..Default::default()
                };
                let app = dcrs_web::App::new(db.clone(), settings).await?;
                out!();
                out!("The application is running at http://{bind}/ (stop it with Ctrl-C).");
                dcrs_web::serve(app, &bind).await?;
                ExitCode::SUCCESS
            }
        }
        Command::Generate { .. } => unreachable!("handled before the database is opened"),
        Command::Report(args) => report::run(&db, args).await?,
        Command::Patterns(args) => patterns::run(&db, args).await?,
        Command::Serve(args) => web::serve(db.clone(), args, cli.secrets.clone()).await?,
        Command::Project { command } => extract::project(&db, &cli.secrets, command).await?,
        Command::Extract(args) => extract::extract(&db, &cli.secrets, args).await?,
        Command::User { command } => web::user(&db, command).await?,
        Command::Audit { command } => web::audit(&db, command).await?,
        Command::Backup { file, encrypt } => {
            backup::backup(&db, &cli.database, &file, encrypt, &cli.secrets).await?
        }
        Command::Restore { .. } => unreachable!("handled before the database is opened"),
        Command::Erase(args) => governance::erase(&db, args).await?,
        Command::Retention(args) => governance::retention(&db, args).await?,
        Command::SubjectAccess(args) => governance::subject_access(&db, args).await?,
        Command::Duplicates(args) => governance::duplicates(&db, args).await?,
        Command::Merge(args) => governance::merge(&db, args).await?,
        Command::Refdata { command } => refdata(&db, command).await?,
    };
    db.close().await;
    Ok(code)
}

/// The reference data directory: the argument, then `DCRS_REFDATA`, then `../shared/data`.
pub(crate) fn refdata_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("DCRS_REFDATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

async fn refdata(db: &Database, command: RefdataCommand) -> anyhow::Result<ExitCode> {
    match command {
        RefdataCommand::Load {
            dir,
            imd_year,
            files,
            maps,
        } => {
            let dir = refdata_dir(dir);
            let mut options = dcrs_refdata::LoadOptions {
                imd_year,
                actor: operator(),
                ..Default::default()
            };
            for f in files {
                let (kind, path) = f.split_once('=').context("--file takes KIND=PATH")?;
                options.files.push((kind.to_string(), PathBuf::from(path)));
            }
            for m in maps {
                let (key, header) = m.split_once('=').context("--map takes KIND.FIELD=HEADER")?;
                let (kind, field) = key
                    .split_once('.')
                    .context("--map takes KIND.FIELD=HEADER")?;
                options
                    .maps
                    .push((kind.to_string(), field.to_string(), header.to_string()));
            }
            let report = dcrs_refdata::load(db, &dir, &options).await?;
            out!(
                "Loaded {} reference file(s) from {}:",
                report.files.len(),
                dir.display()
            );
            for f in &report.files {
                out!("  {:<58} {:>9} rows  sha256 {}", f.file, f.rows, f.sha256);
            }
            print_reference_tables(&report.tables);
            out!(
                "IMD year for clients: {}. Every client's area fields were recomputed.",
                report.imd_year
            );
        }
        RefdataCommand::Download { dir } => {
            let base = std::env::var(dcrs_refdata::download::BASE_ENV).ok();
            let fetched = tokio::task::spawn_blocking(move || {
                dcrs_refdata::download::download(&dir, base.as_deref())
            })
            .await
            .context("the download stopped")??;
            for d in &fetched {
                out!("{:<60} {:>10} bytes  sha256 {}", d.path, d.bytes, d.sha256);
            }
            out!(
                "Downloaded {} file(s); checksums are in SHA256SUMS.",
                fetched.len()
            );
        }
        RefdataCommand::Status => {
            let files = db.reference_files().await?;
            if files.is_empty() {
                out!("No reference data loaded. Load it with: dcrs refdata load ../shared/data");
            }
            for f in &files {
                out!(
                    "{:<58} {:<18} {:>9} rows  {}  sha256 {}",
                    f.file,
                    f.kind,
                    f.rows,
                    f.loaded_at,
                    f.sha256
                );
            }
            print_reference_tables(&db.reference_counts().await?);
            out!("IMD year for clients: {}", db.imd_year().await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_reference_tables(tables: &[(&str, u64)]) {
    for (t, n) in tables {
        out!("  {t:<24} {n:>9}");
    }
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
        actor: operator(),
        only_new: false,
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
    for n in &report.notes {
        out!("note: {n}");
    }
    if !report.rejections.is_empty() {
        out!();
        out!(
            "{} problem(s) found; nothing was imported:",
            report.rejections.len() as u64 + report.not_listed
        );
        for r in &report.rejections {
            out!("  {r}");
        }
        if report.not_listed > 0 {
            out!(
                "  ({} more problem(s) found and not listed; the first {} are above)",
                report.not_listed,
                dcrs_exchange::MAX_LISTED
            );
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

/// Clients stored, for the audit entry of a FHIR export (one bundle each).
async fn client_count(db: &Database) -> anyhow::Result<i64> {
    Ok(db
        .counts()
        .await?
        .into_iter()
        .find(|(e, _)| *e == dcrs_domain::Entity::Client)
        .map_or(0, |(_, n)| n))
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
