//! `dcrs patterns`: the implementation patterns of analytics.md section 7 for some
//! services, written as JSON, CSV, HTML or .xlsx, and recorded in the audit log like a
//! report release.

use crate::operator;
use crate::report::{check_format, write_documents};
use anyhow::Context;
use clap::Args;
use dcrs_report::patterns::{ModelRules, PatternsRequest};
use dcrs_report::{Period, Policy, PolicyKind};
use dcrs_store::{AuditEntry, Database};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `dcrs patterns`.
#[derive(Args)]
pub struct PatternsArgs {
    /// Service references, comma-separated; `all` (the default) for every service.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    service: Vec<String>,
    /// FROM..TO (dates, quarters or years); by default from the first service's start to
    /// the last record.
    #[arg(long)]
    period: Option<String>,
    /// json, csv (a folder), html or xlsx.
    #[arg(long, default_value = "json")]
    format: String,
    /// Where to write.
    #[arg(long)]
    out: PathBuf,
    /// nhs_sub_national (the default) or none (exact figures; recorded in the audit log).
    #[arg(long, default_value = "nhs_sub_national")]
    policy: String,
}

/// Runs the command.
pub async fn run(db: &Database, a: PatternsArgs) -> anyhow::Result<ExitCode> {
    check_format(&a.format)?;
    let policy = PolicyKind::parse(&a.policy).with_context(|| {
        format!(
            "the policy {:?} is not known; use nhs_sub_national or none",
            a.policy
        )
    })?;
    let period = a.period.as_deref().map(Period::parse).transpose()?;
    let services = if a.service.iter().any(|s| s == "all") {
        None
    } else {
        Some(a.service.clone())
    };
    let req = PatternsRequest {
        services,
        period,
        policy: Policy::of(policy),
        settings: Default::default(),
        rules: ModelRules::default(),
    };
    let report = dcrs_report::patterns::run(db, &req, chrono::Utc::now()).await?;
    let refs: Vec<String> = report
        .scope
        .services
        .iter()
        .map(|s| s.service_ref.clone())
        .collect();
    db.audit(&AuditEntry {
        actor: operator(),
        action: if policy == PolicyKind::None {
            "patterns.release.uncontrolled".into()
        } else {
            "patterns.release".into()
        },
        service_id: match report.scope.services.as_slice() {
            [one] => Some(one.id),
            _ => None,
        },
        detail: Some(
            serde_json::json!({
                "services": refs,
                "period": report.period.label,
                "policy": policy.code(),
                "format": a.format,
                "out": a.out.display().to_string(),
            })
            .to_string(),
        ),
        ..Default::default()
    })
    .await?;
    // Written only once the release is in the audit log.
    write_documents(std::slice::from_ref(&report), &a.format, &a.out)?;
    if policy == PolicyKind::None {
        eprintln!(
            "Warning: these figures are not disclosure-controlled (policy none) and may \
             identify people; this release is recorded in the audit log."
        );
    }
    out!("{}", report.title);
    out!("Written to {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
