//! `dcrs serve`, `dcrs user add` and `dcrs audit verify`.

use crate::operator;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use dcrs_store::{AuditEntry, Database};
use dcrs_web::users::{NewUser, check, insert};
use std::io::BufRead;
use std::process::ExitCode;

/// Arguments of `dcrs serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: String,
    /// The service is reached over TLS (through a proxy): mark cookies Secure.
    #[arg(long, env = "DCRS_BEHIND_TLS")]
    behind_tls: bool,
    /// Minutes of inactivity after which a session ends.
    #[arg(long, default_value_t = 30)]
    idle_minutes: i64,
    /// Require a second factor (TOTP) of roles that see identifiable records.
    #[arg(long, env = "DCRS_REQUIRE_SECOND_FACTOR")]
    require_second_factor: bool,
    /// Requests come through a trusted proxy that appends the client's address to
    /// X-Forwarded-For: throttle sign-ins by that address. Only set it when every request
    /// passes through such a proxy, or clients could choose their own address.
    #[arg(long, env = "DCRS_BEHIND_PROXY")]
    behind_proxy: bool,
    /// Seconds a service's dashboard figures are shown before they are counted again (0:
    /// count them on every view). The page says when they were counted.
    #[arg(long, default_value_t = 60)]
    dashboard_max_age: u64,
}

/// Runs the web application.
pub async fn serve(
    db: Database,
    a: ServeArgs,
    secrets: std::path::PathBuf,
) -> anyhow::Result<ExitCode> {
    let settings = dcrs_web::Settings {
        secrets_dir: secrets,
        secure_cookies: a.behind_tls,
        idle_minutes: a.idle_minutes.max(1),
        require_second_factor: a.require_second_factor,
        behind_proxy: a.behind_proxy,
        dashboard_max_age: std::time::Duration::from_secs(a.dashboard_max_age),
        ..Default::default()
    };
    let app = dcrs_web::App::new(db, settings).await?;
    eprintln!("dcrs is serving on http://{}/ (stop with Ctrl-C)", a.bind);
    dcrs_web::serve(app, &a.bind).await?;
    Ok(ExitCode::SUCCESS)
}

/// `dcrs user …`.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Add an account (the first admin; admins add the rest in the application). The
    /// password is read from standard input, one line.
    Add {
        #[arg(long)]
        username: String,
        /// The person's name.
        #[arg(long)]
        name: String,
        /// health_trainer, service_manager, commissioner, analyst or admin.
        #[arg(long, default_value = "admin")]
        role: String,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        worker: Option<String>,
        #[arg(long)]
        org: Option<String>,
        /// Analysts: service references, comma-separated (default: every service).
        #[arg(long)]
        services: Option<String>,
    },
}

/// Runs `dcrs user`.
pub async fn user(db: &Database, c: UserCommand) -> anyhow::Result<ExitCode> {
    let UserCommand::Add {
        username,
        name,
        role,
        service,
        worker,
        org,
        services,
    } = c;
    eprintln!(
        "Password for {username} (at least {} characters), then Enter:",
        dcrs_web::users::MIN_PASSWORD
    );
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let n = NewUser {
        username,
        display_name: name,
        role,
        service_ref: service,
        worker_ref: worker,
        org_ref: org,
        analyst_services: services,
        password: password.trim_end_matches(['\r', '\n']).to_string(),
    };
    match check(db, &n).await? {
        Err(errors) => {
            for e in errors {
                eprintln!("{}: {}", e.field, e.message);
            }
            Ok(ExitCode::from(1))
        }
        Ok(u) => {
            let hash = dcrs_web::auth::hash_password(n.password.clone()).await?;
            let id = insert(db, &u, &hash, false).await?;
            db.audit(&AuditEntry {
                actor: operator(),
                action: "user.add".into(),
                service_id: u.service_id,
                record_ref: Some(u.username.clone()),
                detail: Some(
                    serde_json::json!({"before": null, "after": {"user_id": id, "username": u.username, "role": u.role.code()}})
                        .to_string(),
                ),
                ..Default::default()
            })
            .await?;
            out!("Added {} ({})", u.username, u.role.label());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `dcrs audit …`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every hash chain of the audit log; exits 1 when any entry was edited,
    /// deleted or reordered, or a chain that must exist is missing.
    Verify {
        /// Also check against an anchor file written earlier by `dcrs audit anchor`:
        /// entries cut off the end of a chain are found only this way.
        #[arg(long, value_name = "FILE")]
        against: Option<std::path::PathBuf>,
    },
    /// Write each chain's last position and hash to FILE (or standard output with -),
    /// to keep outside the database (another machine, a printed copy).
    Anchor {
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
}

/// Runs `dcrs audit verify` and `dcrs audit anchor`.
pub async fn audit(db: &Database, c: AuditCommand) -> anyhow::Result<ExitCode> {
    let against = match c {
        AuditCommand::Anchor { file } => {
            let text = dcrs_store::AuditAnchor::to_text(&db.audit_anchors().await?);
            if file.as_os_str() == "-" {
                print!("{text}");
            } else {
                std::fs::write(&file, text)
                    .with_context(|| format!("writing {}", file.display()))?;
                out!("Wrote the head of every audit chain to {}.", file.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
        AuditCommand::Verify { against } => against,
    };
    let v = match against {
        Some(file) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let anchors = dcrs_store::AuditAnchor::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            db.verify_audit_against(&anchors).await?
        }
        None => db.verify_audit().await?,
    };
    out!(
        "{} chains, {} entries checked{}",
        v.chains,
        v.entries,
        if v.unchained > 0 {
            format!(
                "; {} entries from before the chain began are not covered",
                v.unchained
            )
        } else {
            String::new()
        }
    );
    if v.erased_details > 0 {
        out!(
            "{} entries hold no detail: each was removed by a recorded erasure, and its hash still checks.",
            v.erased_details
        );
    }
    if v.intact() {
        out!("The audit log is intact.");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &v.problems {
            out!("BROKEN: {p}");
        }
        Ok(ExitCode::from(1))
    }
}
