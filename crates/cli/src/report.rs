//! `dcrs report`: produces a report document, writes it, and records the release in the
//! audit log (who, what, which services, which period, which policy).

use crate::operator;
use anyhow::Context;
use clap::Args;
use dcrs_report::{Kind, Period, Policy, PolicyKind, Request};
use dcrs_store::{AuditEntry, Database};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `dcrs report`.
#[derive(Args)]
pub struct ReportArgs {
    /// activity, reach, outcomes, pathway, workforce, data-quality, or pack (all of them).
    kind: String,
    /// Service references, comma-separated, reported together as one scope; `all` (the
    /// default) for every service.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    service: Vec<String>,
    /// Also write one document per service beside the combined one.
    #[arg(long)]
    each_service: bool,
    /// A financial year (2010-11), a quarter (2010-11Q3) or FROM..TO (dates, quarters or
    /// years; only with --policy none).
    #[arg(long)]
    period: String,
    /// json (a file), csv (a folder with one file per table), html (one printable page
    /// with charts) or xlsx (a workbook; a folder of workbooks with --each-service).
    #[arg(long, default_value = "json")]
    format: String,
    /// Where to write: a file for json, html and xlsx, a folder for csv.
    #[arg(long)]
    out: PathBuf,
    /// nhs_sub_national (the default) or none. `none` releases exact figures that may
    /// identify people; it is for a service's own use and is recorded in the audit log.
    #[arg(long, default_value = "nhs_sub_national")]
    policy: String,
    /// Count every service afresh rather than reuse counts of services unchanged since
    /// an earlier report of the same period (the figures are the same; for measuring).
    #[arg(long)]
    fresh: bool,
}

/// Runs the command.
pub async fn run(db: &Database, a: ReportArgs) -> anyhow::Result<ExitCode> {
    let kind = Kind::parse(&a.kind)?;
    let period = Period::parse(&a.period)?;
    let policy = PolicyKind::parse(&a.policy).with_context(|| {
        format!(
            "the policy {:?} is not known; use nhs_sub_national or none",
            a.policy
        )
    })?;
    check_format(&a.format)?;
    let services = if a.service.iter().any(|s| s == "all") {
        None
    } else {
        Some(a.service.clone())
    };
    let req = Request {
        kind,
        services,
        each_service: a.each_service,
        period,
        policy: Policy::of(policy),
        fresh: a.fresh,
    };
    let reports = dcrs_report::run(db, &req, chrono::Utc::now()).await?;
    let single = match reports.first().map(|r| r.scope.services.as_slice()) {
        Some([one]) => Some(one.id),
        _ => None,
    };
    let refs: Vec<String> = reports
        .first()
        .map(|r| {
            r.scope
                .services
                .iter()
                .map(|s| s.service_ref.clone())
                .collect()
        })
        .unwrap_or_default();
    db.audit(&AuditEntry {
        actor: operator(),
        action: if policy == PolicyKind::None {
            "report.release.uncontrolled".into()
        } else {
            "report.release".into()
        },
        service_id: single,
        detail: Some(
            serde_json::json!({
                "report": kind.code(),
                "services": refs,
                "each_service": a.each_service,
                "period": req.period.label,
                "policy": policy.code(),
                "format": a.format,
                "out": a.out.display().to_string(),
                "documents": reports.len(),
            })
            .to_string(),
        ),
        ..Default::default()
    })
    .await?;
    // Written only once the release is in the audit log.
    write_documents(&reports, &a.format, &a.out)?;
    if policy == PolicyKind::None {
        eprintln!(
            "Warning: these figures are not disclosure-controlled (policy none) and may \
             identify people; this release is recorded in the audit log."
        );
    }
    for r in &reports {
        out!("{}", r.title);
        for w in &r.warnings {
            out!("  Warning: {w}");
        }
        out!(
            "  policy {}: {} cells withheld ({} small counts, {} to protect others, {} resting on them){}",
            r.policy.name,
            r.policy.withheld_cells.total(),
            r.policy.withheld_cells.small,
            r.policy.secondary_suppressions,
            r.policy.withheld_cells.resting_on_withheld,
            if r.policy.withheld_tables.is_empty() {
                String::new()
            } else {
                format!(", tables withheld: {}", r.policy.withheld_tables.join(", "))
            }
        );
    }
    out!("Written to {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Refuses a format that is not known, before any work is done.
pub(crate) fn check_format(format: &str) -> anyhow::Result<()> {
    if !["json", "csv", "html", "xlsx"].contains(&format) {
        anyhow::bail!("the format {format:?} is not known; use json, csv, html or xlsx");
    }
    Ok(())
}

/// Writes report documents in a format: a JSON file, a CSV folder, an HTML page, or
/// spreadsheets.
pub(crate) fn write_documents(
    reports: &[dcrs_report::Report],
    format: &str,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let written = match format {
        "json" => {
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(out, dcrs_report::render::json(reports)).map(|_| ())
        }
        "html" => dcrs_report::render::html_file(reports, out).map(|_| ()),
        "xlsx" => dcrs_report::render::xlsx_files(reports, out).map(|_| ()),
        _ => dcrs_report::render::csv(reports, out).map(|_| ()),
    };
    written.with_context(|| format!("could not write {}", out.display()))
}
