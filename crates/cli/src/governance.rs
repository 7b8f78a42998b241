//! Records governance from the command line: erasing a client, and the retention period
//! with what it removes. See `docs/governance.md`.

use crate::operator;
use chrono::NaiveDate;
use clap::Args;
use dcrs_store::{AuditEntry, Database};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct EraseArgs {
    /// The service's reference.
    #[arg(long)]
    service: String,
    /// The client's reference within the service.
    #[arg(long)]
    client: String,
    /// Why the service decided the client's records must go (kept in the audit log and
    /// the tombstone).
    #[arg(long)]
    reason: String,
}

/// Erases one client and all their records.
pub(crate) async fn erase(db: &Database, args: EraseArgs) -> anyhow::Result<ExitCode> {
    let Some(sid) = db.service_id(&args.service).await? else {
        eprintln!(
            "No service has the reference {}. Nothing was erased.",
            args.service
        );
        return Ok(ExitCode::from(2));
    };
    match db
        .erase_client(sid, &args.client, &operator(), &args.reason)
        .await
    {
        Ok(done) => {
            db.compact().await?;
            let records: u64 = done.records.iter().map(|(_, n)| n).sum();
            out!(
                "Erased client {} of {}: {records} records ({}), {} drafts, and the details of {} audit entries.",
                args.client,
                args.service,
                words(&done.records),
                done.drafts,
                done.audit_details
            );
            out!(
                "A tombstone keeps the reference, the time, who and why; `dcrs audit verify` still checks every chain."
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "Client {} of {} was not erased: {e}.",
                args.client, args.service
            );
            Ok(ExitCode::from(2))
        }
    }
}

fn words(records: &[(dcrs_domain::record::Entity, u64)]) -> String {
    records
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(e, n)| format!("{n} {}", e.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Args)]
pub(crate) struct RetentionArgs {
    /// One service (default: every service).
    #[arg(long)]
    service: Option<String>,
    /// Set the service's retention period, in years after the last contact (needs
    /// --service).
    #[arg(long, requires = "service", value_parser = clap::value_parser!(u32).range(1..=100))]
    set_years: Option<u32>,
    /// List the clients whose retention period has ended, without removing anything.
    #[arg(long, conflicts_with = "apply")]
    dry_run: bool,
    /// Erase the clients whose retention period has ended, as `dcrs erase` does.
    #[arg(long)]
    apply: bool,
    /// The day to judge by (default: today).
    #[arg(long)]
    today: Option<NaiveDate>,
}

pub(crate) async fn retention(db: &Database, args: RetentionArgs) -> anyhow::Result<ExitCode> {
    let services: Vec<(String, i64)> = match &args.service {
        Some(r) => match db.service_id(r).await? {
            Some(id) => vec![(r.clone(), id)],
            None => {
                eprintln!("No service has the reference {r}.");
                return Ok(ExitCode::from(2));
            }
        },
        None => db.service_refs().await?,
    };
    if let Some(years) = args.set_years {
        let (r, id) = &services[0];
        db.set_retention_years(*id, years, &operator()).await?;
        out!("Service {r} keeps a client's records {years} years after their last contact.");
        if !args.dry_run && !args.apply {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if !args.dry_run && !args.apply {
        eprintln!(
            "Say --dry-run to list the clients whose retention period has ended, or --apply to erase them."
        );
        return Ok(ExitCode::from(2));
    }
    let today = args
        .today
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let mut total = 0usize;
    let mut failed = 0usize;
    for (r, id) in &services {
        let (years, due) = db.retention_due(*id, today).await?;
        db.audit(&AuditEntry {
            actor: operator(),
            action: if args.apply {
                "retention.apply".into()
            } else {
                "retention.dry_run".into()
            },
            service_id: Some(*id),
            detail: Some(
                serde_json::json!({"years": years, "today": today.to_string(), "due": due.len()})
                    .to_string(),
            ),
            ..Default::default()
        })
        .await?;
        out!(
            "Service {r}: records kept {years} years after the last contact; {} clients due by {}.",
            due.len(),
            today.format("%-d %B %Y")
        );
        for (client, last, ends) in &due {
            if args.apply {
                let reason = format!(
                    "retention period of {years} years after the last contact ({last}) ended on {ends}"
                );
                match db.erase_client(*id, client, &operator(), &reason).await {
                    Ok(done) => {
                        let n: u64 = done.records.iter().map(|(_, n)| n).sum();
                        out!("  erased {client}: last contact {last}, {n} records");
                    }
                    Err(e) => {
                        failed += 1;
                        out!("  NOT erased {client}: {e}");
                    }
                }
            } else {
                out!("  {client}: last contact {last}, period ended {ends}");
            }
        }
        total += due.len();
    }
    if args.apply && total > failed {
        db.compact().await?;
    }
    match (args.apply, failed) {
        (true, 0) => out!("Erased {total} clients."),
        (true, n) => out!(
            "Erased {} clients; {n} could not be erased (see above).",
            total - n
        ),
        (false, _) => {
            out!("{total} clients would be erased; nothing was changed (--apply erases them).")
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Args)]
pub(crate) struct SubjectAccessArgs {
    /// The service's reference.
    #[arg(long)]
    service: String,
    /// The client's reference within the service.
    #[arg(long)]
    client: String,
    /// The folder to write `subject-access.json` and `fhir-bundle.json` into (created if
    /// needed; readable by its owner only).
    #[arg(long)]
    out: std::path::PathBuf,
}

/// Writes everything held about one client: their records, what was derived, who
/// processed them and when, the releases of their service's figures; and their records
/// as a FHIR Bundle. Audited before anything is written.
pub(crate) async fn subject_access(
    db: &Database,
    args: SubjectAccessArgs,
) -> anyhow::Result<ExitCode> {
    let Some(sid) = db.service_id(&args.service).await? else {
        eprintln!("No service has the reference {}.", args.service);
        return Ok(ExitCode::from(2));
    };
    let Some(access) = db.subject_access(sid, &args.client).await? else {
        eprintln!(
            "Service {} has no client with the reference {}.",
            args.service, args.client
        );
        return Ok(ExitCode::from(2));
    };
    db.audit(&AuditEntry {
        actor: operator(),
        action: "subject_access".into(),
        entity: Some(dcrs_domain::record::Entity::Client),
        service_id: Some(sid),
        record_ref: Some(args.client.clone()),
        detail: Some(serde_json::json!({"out": args.out.display().to_string()}).to_string()),
    })
    .await?;
    std::fs::create_dir_all(&args.out)?;
    let json = serde_json::to_string_pretty(&access.to_json())?;
    std::fs::write(args.out.join("subject-access.json"), json)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let bundle = dcrs_exchange::client_fhir(db, &args.service, &args.client, &now).await?;
    if let Some(b) = bundle {
        std::fs::write(
            args.out.join("fhir-bundle.json"),
            serde_json::to_string_pretty(&b)?,
        )?;
    }
    let records: usize = access.records.iter().map(|(_, r)| r.len()).sum();
    out!(
        "Wrote everything held about client {} of {} to {}: {records} records, {} entries of who processed them, {} releases of the service's figures.",
        args.client,
        args.service,
        args.out.display(),
        access.processing.len(),
        access.releases.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The service's reference.
    #[arg(long)]
    service: String,
    /// The client who stays, with their details.
    #[arg(long)]
    keep: String,
    /// The client whose records move to the one kept, and who then goes.
    #[arg(long)]
    merge: String,
}

/// Lists a service's possible duplicate clients with the evidence, or with --keep and
/// --merge merges two of them.
pub(crate) async fn merge(db: &Database, args: MergeArgs) -> anyhow::Result<ExitCode> {
    let options = dcrs_exchange::ImportOptions {
        dry_run: false,
        today: chrono::Local::now().date_naive(),
        rules: Default::default(),
        actor: operator(),
        only_new: false,
    };
    let m = dcrs_exchange::Merge {
        service_ref: args.service.clone(),
        kept: args.keep.clone(),
        merged: args.merge.clone(),
    };
    let report = dcrs_exchange::merge_clients(db, &m, &options).await?;
    if report.committed {
        db.compact().await?;
        out!(
            "Merged client {} into {} of {}: their records are {}'s now, checked by every rule, and the reports count them once.",
            args.merge,
            args.keep,
            args.service,
            args.keep
        );
        return Ok(ExitCode::SUCCESS);
    }
    for r in &report.rejections {
        eprintln!(
            "{} {}: {} = {:?}: {}",
            r.file,
            r.record.as_deref().unwrap_or(""),
            r.field,
            r.value,
            r.reason
        );
    }
    eprintln!(
        "Nothing was merged: the merged records would break the rules above, or a client was not found."
    );
    Ok(ExitCode::from(2))
}

#[derive(Debug, Args)]
pub(crate) struct DuplicatesArgs {
    /// The service's reference.
    #[arg(long)]
    service: String,
}

/// Lists the possible duplicate clients of a service with the evidence, audited.
pub(crate) async fn duplicates(db: &Database, args: DuplicatesArgs) -> anyhow::Result<ExitCode> {
    let Some(sid) = db.service_id(&args.service).await? else {
        eprintln!("No service has the reference {}.", args.service);
        return Ok(ExitCode::from(2));
    };
    let pairs = dcrs_report::quality::duplicate_pairs(db, sid).await?;
    let refs: Vec<[&str; 2]> = pairs
        .iter()
        .map(|p| [p.a.client_ref.as_str(), p.b.client_ref.as_str()])
        .collect();
    db.audit(&AuditEntry {
        actor: operator(),
        action: "view.duplicates".into(),
        service_id: Some(sid),
        detail: Some(serde_json::json!({"records": refs}).to_string()),
        ..Default::default()
    })
    .await?;
    out!(
        "{} possible duplicate pairs in {}.",
        pairs.len(),
        args.service
    );
    for p in &pairs {
        out!("{} and {}: {}", p.a.client_ref, p.b.client_ref, p.why);
    }
    Ok(ExitCode::SUCCESS)
}
