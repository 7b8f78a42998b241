//! A small migration runner: numbered SQL files per backend, applied in order, each
//! recorded with a checksum so that an edited migration is refused. Written by hand
//! because sqlx's runner needs its macros (a heavy build) to embed the files.

use crate::{Backend, StoreError, StoreResult};
use sqlx::{AnyPool, AssertSqlSafe, Row};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "core",
        sqlite: include_str!("../migrations/sqlite/0001_core.sql"),
        postgres: include_str!("../migrations/postgres/0001_core.sql"),
    },
    Migration {
        version: 2,
        name: "refdata",
        sqlite: include_str!("../migrations/sqlite/0002_refdata.sql"),
        postgres: include_str!("../migrations/postgres/0002_refdata.sql"),
    },
    Migration {
        version: 3,
        name: "summary_client_index",
        sqlite: include_str!("../migrations/sqlite/0003_summary_client_index.sql"),
        postgres: include_str!("../migrations/postgres/0003_summary_client_index.sql"),
    },
    Migration {
        version: 4,
        name: "report_indexes",
        sqlite: include_str!("../migrations/sqlite/0004_report_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0004_report_indexes.sql"),
    },
    Migration {
        version: 5,
        name: "report_cache",
        sqlite: include_str!("../migrations/sqlite/0005_report_cache.sql"),
        postgres: include_str!("../migrations/postgres/0005_report_cache.sql"),
    },
    Migration {
        version: 6,
        name: "report_quality_cache",
        sqlite: include_str!("../migrations/sqlite/0006_report_quality_cache.sql"),
        postgres: include_str!("../migrations/postgres/0006_report_quality_cache.sql"),
    },
    Migration {
        version: 7,
        name: "clients_birth_postcode",
        sqlite: include_str!("../migrations/sqlite/0007_clients_birth_postcode.sql"),
        postgres: include_str!("../migrations/postgres/0007_clients_birth_postcode.sql"),
    },
    Migration {
        version: 8,
        name: "application_entries",
        sqlite: include_str!("../migrations/sqlite/0008_application_entries.sql"),
        postgres: include_str!("../migrations/postgres/0008_application_entries.sql"),
    },
    Migration {
        version: 9,
        name: "audit_chain_accounts",
        sqlite: include_str!("../migrations/sqlite/0009_audit_chain_accounts.sql"),
        postgres: include_str!("../migrations/postgres/0009_audit_chain_accounts.sql"),
    },
    Migration {
        version: 10,
        name: "drafts",
        sqlite: include_str!("../migrations/sqlite/0010_drafts.sql"),
        postgres: include_str!("../migrations/postgres/0010_drafts.sql"),
    },
    Migration {
        version: 11,
        name: "account_safety",
        sqlite: include_str!("../migrations/sqlite/0011_account_safety.sql"),
        postgres: include_str!("../migrations/postgres/0011_account_safety.sql"),
    },
    Migration {
        version: 12,
        name: "api_tokens",
        sqlite: include_str!("../migrations/sqlite/0012_api_tokens.sql"),
        postgres: include_str!("../migrations/postgres/0012_api_tokens.sql"),
    },
    Migration {
        version: 13,
        name: "research_extracts",
        sqlite: include_str!("../migrations/sqlite/0013_research_extracts.sql"),
        postgres: include_str!("../migrations/postgres/0013_research_extracts.sql"),
    },
    Migration {
        version: 14,
        name: "second_factor_failures",
        sqlite: include_str!("../migrations/sqlite/0014_second_factor_failures.sql"),
        postgres: include_str!("../migrations/postgres/0014_second_factor_failures.sql"),
    },
    Migration {
        version: 15,
        name: "audit_service_chains",
        sqlite: include_str!("../migrations/sqlite/0015_audit_service_chains.sql"),
        postgres: include_str!("../migrations/postgres/0015_audit_service_chains.sql"),
    },
    Migration {
        version: 16,
        name: "once_keys",
        sqlite: include_str!("../migrations/sqlite/0016_once_keys.sql"),
        postgres: include_str!("../migrations/postgres/0016_once_keys.sql"),
    },
    Migration {
        version: 17,
        name: "caseload_index",
        sqlite: include_str!("../migrations/sqlite/0017_caseload_index.sql"),
        postgres: include_str!("../migrations/postgres/0017_caseload_index.sql"),
    },
    Migration {
        version: 18,
        name: "erasure",
        sqlite: include_str!("../migrations/sqlite/0018_erasure.sql"),
        postgres: include_str!("../migrations/postgres/0018_erasure.sql"),
    },
    Migration {
        version: 19,
        name: "restrictions",
        sqlite: include_str!("../migrations/sqlite/0019_restrictions.sql"),
        postgres: include_str!("../migrations/postgres/0019_restrictions.sql"),
    },
    Migration {
        version: 20,
        name: "audit_by_record",
        sqlite: include_str!("../migrations/sqlite/0020_audit_by_record.sql"),
        postgres: include_str!("../migrations/postgres/0020_audit_by_record.sql"),
    },
];

/// FNV-1a, enough to notice an edited file.
fn checksum(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> StoreResult<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY, \
         name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied = sqlx::query("SELECT version, checksum FROM schema_migrations ORDER BY version")
        .fetch_all(pool)
        .await?;
    for row in &applied {
        let version: i64 = row.try_get(0)?;
        let sum: String = row.try_get(1)?;
        let Some(m) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(StoreError::UnknownMigration(version));
        };
        let text = if backend == Backend::Sqlite {
            m.sqlite
        } else {
            m.postgres
        };
        if checksum(text) != sum {
            return Err(StoreError::MigrationChanged(format!(
                "{:04}_{}",
                m.version, m.name
            )));
        }
    }
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > applied.len() as i64)
    {
        let text = if backend == Backend::Sqlite {
            m.sqlite
        } else {
            m.postgres
        };
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(text)).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(m.version)
            .bind(m.name)
            .bind(checksum(text))
            .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    Ok(())
}
