//! Merging two clients of a service found to be one person: the storage steps. The
//! rules are checked again by the write path (`dcrs_exchange::merge_clients`).

use crate::tx::StoreTx;
use crate::{StoreError, StoreResult};

impl StoreTx {
    /// Moves every referral of client `from` (and so everything below it) to client
    /// `to`, and drops `from`'s episode summaries (the write path writes `to`'s again).
    /// Returns how many referrals moved.
    pub async fn move_referrals(
        &mut self,
        service_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<u64> {
        self.touch(Some(service_id));
        let moved = sqlx::query(
            "UPDATE referrals SET client_id = $1 WHERE service_id = $2 AND client_id = $3",
        )
        .bind(to)
        .bind(service_id)
        .bind(from)
        .execute(self.conn())
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        sqlx::query("DELETE FROM episode_summaries WHERE service_id = $1 AND client_id = $2")
            .bind(service_id)
            .bind(from)
            .execute(self.conn())
            .await
            .map_err(StoreError::from)?;
        Ok(moved)
    }

    /// Drafts and restrictions about client `from` move to `to`'s reference.
    pub async fn move_client_notes(
        &mut self,
        service_id: i64,
        from: &str,
        to: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE drafts SET subject_ref = $1 WHERE service_id = $2 AND subject_ref = $3",
        )
        .bind(to.to_string())
        .bind(service_id)
        .bind(from.to_string())
        .execute(self.conn())
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }
}

/// The clients merged into `client_ref`, directly or through others merged before, as
/// the `client.merge` entries of the audit log record them: the entries about their own
/// records keep their references.
pub(crate) async fn merged_clients(
    conn: &mut sqlx::AnyConnection,
    service_id: i64,
    client_ref: &str,
) -> StoreResult<Vec<String>> {
    let mut found: Vec<String> = Vec::new();
    let mut into = vec![client_ref.to_string()];
    while let Some(kept) = into.pop() {
        let merges: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT detail FROM audit_log WHERE service_id = $1 AND action = 'client.merge' \
             AND record_ref = $2",
        )
        .bind(service_id)
        .bind(kept)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
        for detail in merges.into_iter().flatten() {
            let merged = serde_json::from_str::<serde_json::Value>(&detail)
                .ok()
                .and_then(|d| d["merged"].as_str().map(String::from));
            if let Some(m) = merged
                && m != client_ref
                && !found.contains(&m)
            {
                found.push(m.clone());
                into.push(m);
            }
        }
    }
    Ok(found)
}
