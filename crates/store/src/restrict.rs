//! Restriction of processing (UK GDPR Article 18): a client marked restricted stays
//! stored, but leaves the capture worklists and research extracts until the mark is
//! lifted. See `docs/governance.md`.

use crate::tx::AuditEntry;
use crate::{Database, RecordStore, StoreResult};
use dcrs_domain::record::Entity;

/// A client's restriction: when, by whom and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    pub at: String,
    pub by: String,
    pub reason: String,
}

impl Database {
    /// The restriction on a client of a service, if there is one.
    pub async fn restriction(
        &self,
        service_id: i64,
        client_ref: &str,
    ) -> StoreResult<Option<Restriction>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT restricted_at, restricted_by, reason FROM restrictions \
             WHERE service_id = $1 AND client_ref = $2",
        )
        .bind(service_id)
        .bind(client_ref.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(at, by, reason)| Restriction { at, by, reason }))
    }

    /// Marks a client's processing restricted, or lifts the mark (`restrict` false),
    /// audited (`client.restrict` or `client.restrict.lift`, with the reason). `false`
    /// when the service has no such client or the mark is already as asked.
    pub async fn set_restriction(
        &self,
        service_id: i64,
        client_ref: &str,
        restrict: bool,
        actor: &str,
        reason: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        if tx
            .find_id(Entity::Client, Some(service_id), client_ref)
            .await?
            .is_none()
        {
            tx.rollback().await?;
            return Ok(false);
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let changed = match restrict {
            true => sqlx::query(
                "INSERT INTO restrictions (service_id, client_ref, restricted_at, restricted_by, reason) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (service_id, client_ref) DO NOTHING",
            )
            .bind(service_id)
            .bind(client_ref.to_string())
            .bind(now)
            .bind(actor.to_string())
            .bind(reason.to_string()),
            false => sqlx::query(
                "DELETE FROM restrictions WHERE service_id = $1 AND client_ref = $2",
            )
            .bind(service_id)
            .bind(client_ref.to_string()),
        }
        .execute(tx.conn())
        .await?
        .rows_affected()
            == 1;
        if !changed {
            tx.rollback().await?;
            return Ok(false);
        }
        let entry = AuditEntry {
            actor: actor.to_string(),
            action: if restrict {
                "client.restrict".into()
            } else {
                "client.restrict.lift".into()
            },
            entity: Some(Entity::Client),
            service_id: Some(service_id),
            record_ref: Some(client_ref.to_string()),
            detail: Some(serde_json::json!({"reason": reason}).to_string()),
        };
        tx.commit_audited(&[entry]).await?;
        Ok(true)
    }
}
