//! `dcrs backup FILE` and `dcrs restore FILE`: a consistent copy of the database that
//! proves itself whole when it comes back.
//!
//! A backup file is a line `dcrs-backup 1`, a line of JSON (the backend, when it was
//! taken, the SHA-256 of what follows, whether that is encrypted, and the records and
//! audit entries it holds), then the copy: for SQLite the database as `VACUUM INTO`
//! writes it (a snapshot taken inside one read transaction, so the application may go on
//! writing meanwhile); for PostgreSQL what `pg_dump --format=custom` writes (its own
//! snapshot). With `--encrypt` the copy is sealed with ChaCha20-Poly1305 under
//! `<secrets>/backup.key`. A restore refuses a file whose checksum or seal does not
//! match, writes only into an empty database, and then checks the audit chains and the
//! record counts against the header.

use crate::operator;
use anyhow::{Context, bail};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use dcrs_extract::secret_file;
use dcrs_store::{AuditEntry, Backend, Database};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const MAGIC: &str = "dcrs-backup 1";

/// What a backup holds, written before the copy.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    backend: String,
    taken_at: String,
    sha256: String,
    encrypted: bool,
    records: Vec<(String, i64)>,
    audit_entries: i64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    secret_file::hex(&sha2::Sha256::digest(bytes))
}

/// The backup key in the secrets folder, made on first use (readable by its owner only).
fn backup_key(secrets: &Path, create: bool) -> anyhow::Result<ChaCha20Poly1305> {
    let path = secrets.join("backup.key");
    let hex = match secret_file::read_hex(&path) {
        Ok(hex) => hex,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            std::fs::create_dir_all(secrets)
                .with_context(|| format!("creating {}", secrets.display()))?;
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            secret_file::create(&path, &key)
                .with_context(|| format!("writing {}", path.display()))?;
            secret_file::hex(&key)
        }
        Err(e) => bail!("cannot read the backup key {}: {e}", path.display()),
    };
    let key = secret_file::from_hex(&hex)
        .and_then(|k| Key::try_from(k.as_slice()).ok())
        .with_context(|| format!("{} is not 64 hex digits", path.display()))?;
    Ok(ChaCha20Poly1305::new(&key))
}

/// The number of records of each kind and of audit entries.
async fn holdings(db: &Database) -> anyhow::Result<(Vec<(String, i64)>, i64)> {
    let records = db
        .counts()
        .await?
        .into_iter()
        .map(|(e, n)| (e.file_name().trim_end_matches(".csv").to_string(), n))
        .collect();
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(db.pool())
        .await?;
    Ok((records, audit))
}

/// A program the PostgreSQL path needs, or a plain refusal naming it.
fn needs(program: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .with_context(|| {
            format!("{program} is not installed; it comes with PostgreSQL's client programs (Debian: postgresql-client)")
        })
}

/// `dcrs backup FILE [--encrypt]`.
pub async fn backup(
    db: &Database,
    url: &str,
    file: &Path,
    encrypt: bool,
    secrets: &Path,
) -> anyhow::Result<ExitCode> {
    if file.exists() {
        bail!(
            "{} exists already; a backup never overwrites a file",
            file.display()
        );
    }
    let cipher = if encrypt {
        Some(backup_key(secrets, true)?)
    } else {
        None
    };
    // Audited before anything is copied out, as every release is.
    db.audit(&AuditEntry {
        actor: operator(),
        action: "backup".into(),
        detail: Some(
            serde_json::json!({"file": file.display().to_string(), "encrypted": encrypt})
                .to_string(),
        ),
        ..Default::default()
    })
    .await?;
    let work = tempfile::tempdir().context("a temporary folder for the copy")?;
    let copy = work.path().join("copy");
    let (records, audit_entries) = match db.backend() {
        Backend::Sqlite => {
            sqlx::query("VACUUM INTO $1")
                .bind(copy.display().to_string())
                .execute(db.pool())
                .await
                .context("copying the database (VACUUM INTO)")?;
            // The counts are the copy's own, so they match what comes back exactly.
            let snapshot = Database::connect(&format!("sqlite://{}", copy.display())).await?;
            let held = holdings(&snapshot).await?;
            snapshot.close().await;
            held
        }
        Backend::Postgres => {
            let pg_dump = needs("pg_dump")?;
            // The counts and the dump see one snapshot: it is exported from a
            // transaction that counts, and pg_dump is given it.
            let mut tx = db.pool().begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut *tx)
                .await?;
            let mut records = Vec::new();
            for e in dcrs_domain::Entity::ALL {
                let table = e.file_name().trim_end_matches(".csv");
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM {table}"
                )))
                .fetch_one(&mut *tx)
                .await?;
                records.push((table.to_string(), n));
            }
            let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
                .fetch_one(&mut *tx)
                .await?;
            let status = std::process::Command::new(pg_dump)
                .args(["--format=custom", "--no-owner", "--snapshot"])
                .arg(&snapshot)
                .arg("--file")
                .arg(&copy)
                .arg("--dbname")
                .arg(url)
                .status()
                .context("running pg_dump")?;
            tx.rollback().await?;
            if !status.success() {
                bail!("pg_dump failed ({status}); nothing was written");
            }
            (records, audit)
        }
    };
    let plain = std::fs::read(&copy).context("reading the copy")?;
    let body = match &cipher {
        Some(c) => {
            let mut nonce = [0u8; 12];
            getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let sealed = c
                .encrypt(&Nonce::from(nonce), plain.as_slice())
                .map_err(|_| anyhow::anyhow!("sealing the copy failed"))?;
            [nonce.as_slice(), sealed.as_slice()].concat()
        }
        None => plain,
    };
    let header = Header {
        backend: match db.backend() {
            Backend::Sqlite => "sqlite".into(),
            Backend::Postgres => "postgres".into(),
        },
        taken_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        sha256: sha256_hex(&body),
        encrypted: encrypt,
        records,
        audit_entries,
    };
    let mut bytes = format!("{MAGIC}\n{}\n", serde_json::to_string(&header)?).into_bytes();
    bytes.extend_from_slice(&body);
    // Written beside its name first, so a half-written backup never has the name.
    let partial = file.with_extension("partial");
    std::fs::write(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, file).with_context(|| format!("naming {}", file.display()))?;
    let total: i64 = header.records.iter().map(|(_, n)| n).sum();
    out!(
        "Backed up {total} records and {} audit entries to {} ({} bytes, sha256 {}{}).",
        header.audit_entries,
        file.display(),
        bytes.len(),
        header.sha256,
        if encrypt { ", encrypted" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `dcrs restore FILE`, into the empty database at `url`. Runs before the database is
/// opened (opening would make it).
pub async fn restore(url: &str, file: &Path, secrets: &Path) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut lines = bytes.splitn(3, |b| *b == b'\n');
    let (Some(magic), Some(header), Some(body)) = (lines.next(), lines.next(), lines.next()) else {
        bail!("{} is not a dcrs backup", file.display());
    };
    if magic != MAGIC.as_bytes() {
        bail!(
            "{} is not a dcrs backup (it does not begin with {MAGIC:?})",
            file.display()
        );
    }
    let header: Header = serde_json::from_slice(header)
        .with_context(|| format!("{}: its header cannot be read", file.display()))?;
    if sha256_hex(body) != header.sha256 {
        bail!(
            "{} has been changed or damaged since it was taken (its checksum does not match); nothing was restored",
            file.display()
        );
    }
    let plain = if header.encrypted {
        let cipher = backup_key(secrets, false)?;
        if body.len() < 12 {
            bail!("{} is too short to be an encrypted backup", file.display());
        }
        let (nonce, sealed) = body.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("12 bytes");
        cipher
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| anyhow::anyhow!("{} does not open with the backup key in {}: the key is not the one it was sealed with, or the file was changed", file.display(), secrets.display()))?
    } else {
        body.to_vec()
    };
    let sqlite = url.starts_with("sqlite:");
    match (header.backend.as_str(), sqlite) {
        ("sqlite", true) => {
            let path = url
                .trim_start_matches("sqlite:")
                .trim_start_matches("//")
                .split('?')
                .next()
                .unwrap_or_default();
            let empty = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
            if !empty {
                bail!(
                    "{path} exists and is not empty; a backup is restored into an empty database only"
                );
            }
            std::fs::write(path, &plain).with_context(|| format!("writing {path}"))?;
        }
        ("postgres", false) => {
            let pg_restore = needs("pg_restore")?;
            let work = tempfile::tempdir()?;
            let dump = work.path().join("dump");
            std::fs::write(&dump, &plain)?;
            ensure_empty_postgres(url).await?;
            let status = std::process::Command::new(pg_restore)
                .args(["--no-owner", "--exit-on-error", "--dbname"])
                .arg(url)
                .arg(&dump)
                .status()
                .context("running pg_restore")?;
            if !status.success() {
                bail!("pg_restore failed ({status})");
            }
        }
        (backend, _) => bail!("this is a {backend} backup; restore it into a {backend} database"),
    }
    let db = Database::connect(url).await?;
    let (records, audit_entries) = holdings(&db).await?;
    let v = db.verify_audit().await?;
    db.audit(&AuditEntry {
        actor: operator(),
        action: "restore".into(),
        detail: Some(
            serde_json::json!({"file": file.display().to_string(), "taken_at": header.taken_at})
                .to_string(),
        ),
        ..Default::default()
    })
    .await?;
    db.close().await;
    let mut whole = v.intact();
    for p in &v.problems {
        out!("BROKEN: {p}");
    }
    if records != header.records || audit_entries != header.audit_entries {
        whole = false;
        out!(
            "The restored counts differ from the backup's: {records:?} and {audit_entries} audit entries, against {:?} and {}.",
            header.records,
            header.audit_entries
        );
    }
    let total: i64 = records.iter().map(|(_, n)| n).sum();
    if whole {
        out!(
            "Restored {total} records and {audit_entries} audit entries taken {}; the counts match the backup and the audit log is intact.",
            header.taken_at
        );
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}

/// A PostgreSQL database restored into must hold no tables.
async fn ensure_empty_postgres(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .with_context(|| "connecting to the database to restore into")?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await?;
    if tables > 0 {
        bail!(
            "the database holds {tables} tables; a backup is restored into an empty database only"
        );
    }
    Ok(())
}
