//! Erasure of a client: every record of theirs deleted, the personal data in the audit
//! log's details removed while the chains still verify, and a tombstone left with no
//! personal data. See `docs/governance.md`.

use crate::audit::ERASE_ACTION;
use crate::tx::AuditEntry;
use crate::{Backend, Database, RecordStore, StoreError, StoreResult};
use dcrs_domain::record::Entity;
use sqlx::Row;

/// The kinds of a client's records, children before their parents: the order they are
/// deleted in.
const BELOW_CLIENT: [(Entity, Entity); 8] = [
    (Entity::Goal, Entity::Plan),
    (Entity::Assessment, Entity::Episode),
    (Entity::Plan, Entity::Episode),
    (Entity::Session, Entity::Episode),
    (Entity::OnwardReferral, Entity::Episode),
    (Entity::WiderIssue, Entity::Episode),
    (Entity::Episode, Entity::Referral),
    (Entity::Referral, Entity::Client),
];

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    /// Records deleted, by kind, the client included.
    pub records: Vec<(Entity, u64)>,
    /// Audit entries whose detail (the values of the client's records) was removed.
    pub audit_details: u64,
    /// Drafts of forms about the client, deleted.
    pub drafts: u64,
}

/// Why an erasure was not made; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("the service has no client with the reference {0}")]
    NoClient(String),
    #[error("the client {0} was erased already")]
    Erased(String),
    #[error(
        "{0} audit entries about this client were written before audit details were hashed apart (migration 18); \
         their details cannot be removed without breaking the chain, so nothing was erased"
    )]
    OldEntries(i64),
    #[error("enter the reason for the erasure")]
    NoReason,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Database {
    /// Erases a client of a service and every record of theirs, in one transaction:
    /// the records are deleted (children first), their summaries and drafts about them
    /// go, the detail of each audit entry about one of their records is removed (its
    /// hash is kept, so `verify` still proves every chain whole), a tombstone keeps the
    /// reference, when, by whom and why, and the erasure is itself audited
    /// ([`ERASE_ACTION`], listing the entries whose detail it removed). The service's
    /// reports recount. On SQLite, deleted content is overwritten as it goes; call
    /// [`Database::compact`] after the erasures of a run to leave no older copy.
    pub async fn erase_client(
        &self,
        service_id: i64,
        client_ref: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Erasure, EraseError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EraseError::NoReason);
        }
        let mut tx = self.begin().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(tx.conn())
                .await
                .map_err(StoreError::from)?;
        }
        let erased: Option<String> = sqlx::query_scalar(
            "SELECT client_ref FROM erasures WHERE service_id = $1 AND client_ref = $2",
        )
        .bind(service_id)
        .bind(client_ref.to_string())
        .fetch_optional(tx.conn())
        .await
        .map_err(StoreError::from)?;
        if erased.is_some() {
            tx.rollback().await?;
            return Err(EraseError::Erased(client_ref.into()));
        }
        let Some(client_id) = tx
            .find_id(Entity::Client, Some(service_id), client_ref)
            .await?
        else {
            tx.rollback().await?;
            return Err(EraseError::NoClient(client_ref.into()));
        };
        // Every record of the client, by kind: (reference, id), found down the chain.
        let mut found: Vec<(Entity, Vec<(String, i64)>)> =
            vec![(Entity::Client, vec![(client_ref.to_string(), client_id)])];
        for (entity, parent) in BELOW_CLIENT.iter().rev() {
            let parents: Vec<i64> = found
                .iter()
                .filter(|(e, _)| e == parent)
                .flat_map(|(_, rows)| rows.iter().map(|(_, id)| *id))
                .collect();
            let mut rows = Vec::new();
            for p in parents {
                rows.extend(tx.child_ids(*entity, *parent, service_id, p).await?);
            }
            found.push((*entity, rows));
        }
        let refs_of = |wanted: Entity| -> Vec<String> {
            found
                .iter()
                .filter(|(e, _)| *e == wanted)
                .flat_map(|(_, rows)| rows.iter().map(|(r, _)| r.clone()))
                .collect()
        };
        // The audit entries holding the values of these records, and of clients merged
        // into this one (their entries keep their own reference).
        let mut about = Vec::new();
        for (entity, rows) in &found {
            for (reference, _) in rows {
                about.push((entity.label(), reference.clone()));
            }
        }
        for m in crate::merge::merged_clients(tx.conn(), service_id, client_ref).await? {
            about.push(("client", m));
        }
        let mut holding: Vec<i64> = Vec::new();
        let mut old = 0i64;
        for (label, reference) in &about {
            let rows = sqlx::query(
                "SELECT audit_id, detail_hash FROM audit_log WHERE service_id = $1 \
                 AND entity = $2 AND record_ref = $3 AND detail IS NOT NULL",
            )
            .bind(service_id)
            .bind(label.to_string())
            .bind(reference.clone())
            .fetch_all(tx.conn())
            .await
            .map_err(StoreError::from)?;
            for row in rows {
                let id: i64 = row.try_get(0).map_err(StoreError::from)?;
                match row
                    .try_get::<Option<String>, _>(1)
                    .map_err(StoreError::from)?
                {
                    Some(_) => holding.push(id),
                    None => old += 1,
                }
            }
        }
        if old > 0 {
            tx.rollback().await?;
            return Err(EraseError::OldEntries(old));
        }
        // The records, children first; then their summaries and drafts.
        let mut out = Erasure::default();
        let episodes: Vec<i64> = found
            .iter()
            .filter(|(e, _)| *e == Entity::Episode)
            .flat_map(|(_, rows)| rows.iter().map(|(_, id)| *id))
            .collect();
        for id in &episodes {
            sqlx::query("DELETE FROM episode_summaries WHERE service_id = $1 AND episode_id = $2")
                .bind(service_id)
                .bind(*id)
                .execute(tx.conn())
                .await
                .map_err(StoreError::from)?;
        }
        let order = BELOW_CLIENT.iter().map(|(e, _)| *e).chain([Entity::Client]);
        for entity in order {
            let rows: Vec<i64> = found
                .iter()
                .filter(|(e, _)| *e == entity)
                .flat_map(|(_, rows)| rows.iter().map(|(_, id)| *id))
                .collect();
            for id in &rows {
                tx.delete(entity, Some(service_id), *id).await?;
            }
            out.records.push((entity, rows.len() as u64));
        }
        let mut subjects = vec![client_ref.to_string()];
        subjects.extend(refs_of(Entity::Episode));
        for subject in &subjects {
            let gone = sqlx::query("DELETE FROM drafts WHERE service_id = $1 AND subject_ref = $2")
                .bind(service_id)
                .bind(subject.clone())
                .execute(tx.conn())
                .await
                .map_err(StoreError::from)?;
            out.drafts += gone.rows_affected();
            // What a form's one-time key answered is the address of the record saved.
            let pattern = format!("%/{subject}");
            sqlx::query("DELETE FROM once_keys WHERE answer LIKE $1")
                .bind(pattern)
                .execute(tx.conn())
                .await
                .map_err(StoreError::from)?;
        }
        sqlx::query("DELETE FROM restrictions WHERE service_id = $1 AND client_ref = $2")
            .bind(service_id)
            .bind(client_ref.to_string())
            .execute(tx.conn())
            .await
            .map_err(StoreError::from)?;
        for id in &holding {
            sqlx::query("UPDATE audit_log SET detail = NULL WHERE audit_id = $1")
                .bind(*id)
                .execute(tx.conn())
                .await
                .map_err(StoreError::from)?;
        }
        out.audit_details = holding.len() as u64;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        sqlx::query(
            "INSERT INTO erasures (service_id, client_ref, erased_at, erased_by, reason) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(service_id)
        .bind(client_ref.to_string())
        .bind(now)
        .bind(actor.to_string())
        .bind(reason.to_string())
        .execute(tx.conn())
        .await
        .map_err(StoreError::from)?;
        let counts: serde_json::Map<String, serde_json::Value> = out
            .records
            .iter()
            .map(|(e, n)| (e.label().to_string(), (*n).into()))
            .collect();
        let entry = AuditEntry {
            actor: actor.to_string(),
            action: ERASE_ACTION.into(),
            entity: Some(Entity::Client),
            service_id: Some(service_id),
            record_ref: Some(client_ref.to_string()),
            detail: Some(
                serde_json::json!({
                    "reason": reason,
                    "records": counts,
                    "drafts": out.drafts,
                    "erased_details": holding,
                })
                .to_string(),
            ),
        };
        tx.commit_audited(&[entry]).await?;
        Ok(out)
    }

    /// After erasures, leaves no copy of what was erased in the database's files. On
    /// SQLite, an earlier change of a record leaves its old bytes in the page's free
    /// space, where overwriting deleted content at erasure does not reach: the file is
    /// rebuilt from its live rows (`VACUUM`, which holds off writers while it runs) and
    /// the write-ahead log folded back and emptied. On PostgreSQL, erased rows are
    /// already out of every query and dump; their space is reclaimed by autovacuum (or
    /// `VACUUM FULL`, which rewrites the tables).
    pub async fn compact(&self) -> StoreResult<()> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let _gate = self.write_gate().await;
        for sql in ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
            sqlx::query(sql).execute(self.write_pool()).await?;
        }
        Ok(())
    }

    /// The erased clients of a service, as their tombstones: reference, when, by whom
    /// and why, newest first.
    pub async fn erasures(
        &self,
        service_id: i64,
    ) -> StoreResult<Vec<(String, String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT client_ref, erased_at, erased_by, reason FROM erasures \
             WHERE service_id = $1 ORDER BY erased_at DESC, client_ref",
        )
        .bind(service_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// The retention period of a service that has not set one: 8 years after the last
/// contact, the NHS Records Management Code of Practice's period for adult health
/// records.
pub const DEFAULT_RETENTION_YEARS: u32 = 8;

impl Database {
    /// The id of the service with this reference.
    pub async fn service_id(&self, service_ref: &str) -> StoreResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT service_id FROM services WHERE service_ref = $1")
                .bind(service_ref.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every service's reference and id, in order of reference.
    pub async fn service_refs(&self) -> StoreResult<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT service_ref, service_id FROM services ORDER BY service_ref")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// How many years after a client's last contact their records are kept.
    pub async fn retention_years(&self, service_id: i64) -> StoreResult<u32> {
        let set: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(retention_key(service_id))
            .fetch_optional(&self.pool)
            .await?;
        Ok(set
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_RETENTION_YEARS))
    }

    /// Sets a service's retention period, audited (`retention.set`, with the period
    /// before and after).
    pub async fn set_retention_years(
        &self,
        service_id: i64,
        years: u32,
        actor: &str,
    ) -> StoreResult<()> {
        let before = self.retention_years(service_id).await?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(retention_key(service_id))
        .bind(years.to_string())
        .execute(tx.conn())
        .await?;
        let entry = AuditEntry {
            actor: actor.to_string(),
            action: "retention.set".into(),
            service_id: Some(service_id),
            detail: Some(serde_json::json!({"before": before, "after": years}).to_string()),
            ..Default::default()
        };
        tx.commit_audited(&[entry]).await
    }

    /// Each client of a service with the day of their last contact: the latest date on
    /// any of their records (referral received, first contact, assessment, plan,
    /// session, signposting, wider issue, closing), or the day the client was recorded
    /// when they have none. In order of that day, then reference.
    pub async fn last_contacts(
        &self,
        service_id: i64,
    ) -> StoreResult<Vec<(String, chrono::NaiveDate)>> {
        let in_episode = |t: &str, d: &str| {
            format!(
                "SELECT r.client_id, x.{d} AS d FROM {t} x \
                 JOIN episodes e ON e.service_id = x.service_id AND e.episode_id = x.episode_id \
                 JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
                 WHERE x.service_id = $1"
            )
        };
        let dates = [
            "SELECT r.client_id, r.received_on AS d FROM referrals r WHERE r.service_id = $1"
                .to_string(),
            "SELECT r.client_id, e.first_contact_on AS d FROM episodes e \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             WHERE e.service_id = $1"
                .to_string(),
            "SELECT r.client_id, e.closed_on AS d FROM episodes e \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             WHERE e.service_id = $1"
                .to_string(),
            in_episode("assessments", "assessed_on"),
            in_episode("plans", "agreed_on"),
            in_episode("sessions", "held_on"),
            in_episode("onward_referrals", "made_on"),
            in_episode("wider_issues", "noted_on"),
        ]
        .join(" UNION ALL ");
        let sql = format!(
            "SELECT c.client_ref, COALESCE(MAX(d.d), SUBSTR(c.created_at, 1, 10)) AS last \
             FROM clients c LEFT JOIN ({dates}) d ON d.client_id = c.client_id \
             WHERE c.service_id = $1 GROUP BY c.client_ref, c.created_at ORDER BY last, c.client_ref"
        );
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(service_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(r, d)| Some((r, d.parse().ok()?)))
            .collect())
    }
}

/// A client whose retention period has ended or ends by a day: their reference, their
/// last contact, and the day the period ends.
pub type Due = (String, chrono::NaiveDate, chrono::NaiveDate);

impl Database {
    /// The clients of a service whose retention period ends on or before `by`, in order
    /// of last contact; and the service's period in years.
    pub async fn retention_due(
        &self,
        service_id: i64,
        by: chrono::NaiveDate,
    ) -> StoreResult<(u32, Vec<Due>)> {
        let years = self.retention_years(service_id).await?;
        let mut out = Vec::new();
        for (client, last) in self.last_contacts(service_id).await? {
            let ends = last
                .checked_add_months(chrono::Months::new(12 * years))
                .unwrap_or(chrono::NaiveDate::MAX);
            if ends <= by {
                out.push((client, last, ends));
            }
        }
        Ok((years, out))
    }
}

fn retention_key(service_id: i64) -> String {
    format!("retention_years.service.{service_id}")
}
