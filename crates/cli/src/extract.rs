//! `dcrs project …` (register research projects, list them and the release register) and
//! `dcrs extract` (release a pseudonymised extract). See `docs/extracts.md`.

use crate::operator;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use dcrs_domain::types::uk_today;
use dcrs_extract::{Dates, Format, NewProject, Request};
use dcrs_store::Database;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `dcrs project …`.
#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Register a research project and write its new secret to the secrets folder.
    Add {
        #[arg(long)]
        name: String,
        /// What the data are for, as approved.
        #[arg(long)]
        purpose: String,
        /// Who approved it (person or committee, and reference).
        #[arg(long)]
        approver: String,
        /// Last day extracts may be released (YYYY-MM-DD).
        #[arg(long)]
        ends: String,
    },
    /// List the projects.
    List,
    /// Show the release register.
    Releases,
}

/// Arguments of `dcrs extract`.
#[derive(Args)]
pub struct ExtractArgs {
    /// The registered project.
    #[arg(long)]
    project: String,
    /// csv or parquet.
    #[arg(long, default_value = "csv")]
    format: String,
    /// shift (per-client offset, intervals kept) or month.
    #[arg(long, default_value = "shift")]
    dates: String,
    /// Service references, comma-separated (default: every service).
    #[arg(long)]
    service: Option<String>,
    /// Directory to write the files to (created if needed).
    #[arg(long)]
    out: PathBuf,
}

pub async fn project(db: &Database, secrets: &Path, c: ProjectCommand) -> anyhow::Result<ExitCode> {
    let today = uk_today(chrono::Utc::now());
    match c {
        ProjectCommand::Add {
            name,
            purpose,
            approver,
            ends,
        } => {
            let n = NewProject {
                name,
                purpose,
                approver,
                ends_on: ends,
            };
            let p = dcrs_extract::register(db, secrets, &n, &operator(), today).await?;
            println!(
                "Registered project {} (ends {}). Its secret is in {}: keep a safe copy; without it no \
                 further release of this project can use the same pseudonyms.",
                p.name,
                p.ends_on,
                dcrs_extract::secret_path(secrets, &p.name).display()
            );
        }
        ProjectCommand::List => {
            for p in dcrs_extract::projects(db).await? {
                println!(
                    "{}\tends {}\tapproved by {}\t{}",
                    p.name, p.ends_on, p.approver, p.purpose
                );
            }
        }
        ProjectCommand::Releases => {
            for r in dcrs_extract::register_entries(db).await? {
                println!(
                    "#{} {} {} by {}: {} rows; {}",
                    r.release_id, r.released_at, r.project, r.released_by, r.total_rows, r.files
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn extract(db: &Database, secrets: &Path, a: ExtractArgs) -> anyhow::Result<ExitCode> {
    let Some(format) = Format::parse(&a.format) else {
        bail!("--format must be csv or parquet, not {:?}", a.format);
    };
    let Some(dates) = Dates::parse(&a.dates) else {
        bail!("--dates must be shift or month, not {:?}", a.dates);
    };
    let req = Request {
        project: a.project,
        format,
        dates,
        services: a
            .service
            .map(|s| s.split(',').map(|x| x.trim().to_string()).collect()),
        actor: operator(),
        today: uk_today(chrono::Utc::now()),
    };
    let release = dcrs_extract::release(db, secrets, &req).await?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for f in &release.files {
        let path = a.out.join(&f.name);
        std::fs::write(&path, &f.bytes).with_context(|| format!("writing {}", path.display()))?;
        println!("{:<20} {:>8} rows  sha256 {}", f.name, f.rows, f.sha256);
    }
    for g in &release.generalisation {
        println!("generalised: {g}");
    }
    println!(
        "Release {} of project {} recorded in the register; smallest group {}.",
        release.release_id, release.project, release.smallest_group
    );
    Ok(ExitCode::SUCCESS)
}
