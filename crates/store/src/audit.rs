//! Verification of the audit log's hash chains (one per service, one for entries about
//! no service). See [`crate::Database::verify_audit`].

use crate::tx::{AuditEntry, audit_hash, detail_hash, insert_audit};
use crate::{StoreError, StoreResult};
use sqlx::AnyPool;
use std::collections::BTreeMap;

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct AuditVerification {
    /// Chains checked.
    pub chains: usize,
    /// Entries checked.
    pub entries: usize,
    /// Entries written before the chain was introduced (not covered by it).
    pub unchained: i64,
    /// Entries whose detail was erased with a client (the hash of the detail kept, so the
    /// chain still checks), each named by the erasure that removed it.
    pub erased_details: usize,
    /// Every break found, in words: which chain, which position, what is wrong.
    pub problems: Vec<String>,
}

impl AuditVerification {
    /// Whether every chain is intact.
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

type Row = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i64,
    String,
    String,
);

pub(crate) async fn verify(pool: &AnyPool) -> StoreResult<AuditVerification> {
    let mut out = AuditVerification {
        unchained: sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE chain IS NULL")
            .fetch_one(pool)
            .await?,
        ..Default::default()
    };
    // Once the chain began, every entry is in a chain: one outside it was slipped in.
    let forged: Vec<i64> = sqlx::query_scalar(
        "SELECT audit_id FROM audit_log WHERE chain IS NULL AND audit_id > \
         (SELECT COALESCE(MIN(audit_id), 0) FROM audit_log WHERE chain IS NOT NULL) \
         AND EXISTS (SELECT 1 FROM audit_log WHERE chain IS NOT NULL) ORDER BY audit_id",
    )
    .fetch_all(pool)
    .await?;
    for id in forged {
        out.problems.push(format!(
            "audit id {id}: outside every chain, written after the chains began: the entry was inserted directly"
        ));
        out.unchained -= 1;
    }
    let heads: BTreeMap<String, (i64, String)> =
        sqlx::query_as::<_, (String, i64, String)>("SELECT chain, seq, hash FROM audit_heads")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|(c, s, h)| (c, (s, h)))
            .collect();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT audit_id, at, actor, action, entity, service_id, record_ref, detail, detail_hash, \
         chain, seq, prev_hash, hash FROM audit_log WHERE chain IS NOT NULL ORDER BY chain, seq",
    )
    .fetch_all(pool)
    .await?;
    // The entries whose detail an erasure removed, as the erasures' own entries list them.
    let mut erased: std::collections::HashSet<i64> = std::collections::HashSet::new();
    for r in rows.iter().filter(|r| r.3 == ERASE_ACTION) {
        let listed =
            r.7.as_deref()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                .and_then(|d| d.get("erased_details").cloned())
                .and_then(|ids| serde_json::from_value::<Vec<i64>>(ids).ok())
                .unwrap_or_default();
        erased.extend(listed);
    }
    let mut by_chain: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for r in rows {
        by_chain.entry(r.9.clone()).or_default().push(r);
    }
    for chain in heads.keys() {
        by_chain.entry(chain.clone()).or_default();
    }
    // Which chains must exist: one for each service's writes from its creation, and
    // the system chain once there is any service or account. A chain deleted whole,
    // head and all, is missed by the checks below, which follow the chains there are.
    let services: Vec<(i64, String)> =
        sqlx::query_as("SELECT service_id, service_ref FROM services ORDER BY service_id")
            .fetch_all(pool)
            .await?;
    let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?;
    for (id, service_ref) in &services {
        if !by_chain.contains_key(&format!("service:{id}")) {
            out.problems.push(format!(
                "chain service:{id} (service {service_ref}) is missing: every service has a chain from its creation, so it was deleted"
            ));
        }
    }
    if (!services.is_empty() || accounts > 0) && !by_chain.contains_key("system") {
        out.problems.push(
            "the system chain is missing: the records and accounts held were put there by entries in it, so it was deleted"
                .into(),
        );
    }
    out.chains = by_chain.len();
    for (chain, entries) in &by_chain {
        let mut prev_hash = String::new();
        let mut prev_id = i64::MIN;
        for (i, r) in entries.iter().enumerate() {
            out.entries += 1;
            let (
                id,
                at,
                actor,
                action,
                entity,
                service_id,
                record_ref,
                detail,
                kept_hash,
                _,
                seq,
                prev,
                hash,
            ) = r;
            // Since migration 18 the chain covers the detail's hash, kept beside it; the
            // detail, while there, must still match that hash.
            let chained = match (kept_hash, detail) {
                (Some(h), Some(d)) => {
                    if detail_hash(d) != *h {
                        out.problems.push(format!(
                            "chain {chain}, position {seq} (audit id {id}): its detail does not match the detail's hash: the detail was edited"
                        ));
                    }
                    Some(h.as_str())
                }
                (Some(h), None) => {
                    out.erased_details += 1;
                    if !erased.contains(id) {
                        out.problems.push(format!(
                            "chain {chain}, position {seq} (audit id {id}): its detail was removed, and no erasure records removing it"
                        ));
                    }
                    Some(h.as_str())
                }
                (None, d) => d.as_deref(),
            };
            let expected_seq = i as i64 + 1;
            if *seq != expected_seq {
                out.problems.push(format!(
                    "chain {chain}: position {expected_seq} is missing (the next entry is at {seq}): an entry was deleted"
                ));
            }
            if *prev != prev_hash {
                out.problems.push(format!(
                    "chain {chain}, position {seq}: it does not follow the entry before it (deleted or reordered)"
                ));
            }
            let recomputed = audit_hash(
                prev,
                chain,
                *seq,
                at,
                actor,
                action,
                entity.as_deref(),
                *service_id,
                record_ref.as_deref(),
                chained,
            );
            if recomputed != *hash {
                out.problems.push(format!(
                    "chain {chain}, position {seq} (audit id {id}): its contents do not match its hash: the entry was edited"
                ));
            }
            if *id <= prev_id {
                out.problems.push(format!(
                    "chain {chain}, position {seq} (audit id {id}): written before the entry it follows: reordered"
                ));
            }
            prev_hash = hash.clone();
            prev_id = *id;
        }
        let last = entries.last().map(|r| (r.10, r.12.clone()));
        match (heads.get(chain), last) {
            (Some((seq, hash)), Some((last_seq, last_hash)))
                if *seq != last_seq || *hash != last_hash =>
            {
                out.problems.push(format!(
                    "chain {chain}: its last entry is at position {last_seq} but the chain's head says {seq}: entries at the end were deleted"
                ));
            }
            (Some((seq, _)), None) if *seq > 0 => out.problems.push(format!(
                "chain {chain}: every entry is missing (the head says {seq})"
            )),
            (None, Some(_)) => out
                .problems
                .push(format!("chain {chain}: its head record is missing")),
            _ => {}
        }
    }
    Ok(out)
}

/// The action of the entry that records a client's erasure; its detail lists, as
/// `erased_details`, the audit ids whose detail it removed.
pub const ERASE_ACTION: &str = "client.erase";

/// Each chain's head as an operator keeps it outside the database: `chain seq hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAnchor {
    /// The chain.
    pub chain: String,
    /// Its last position when the anchor was taken.
    pub seq: i64,
    /// The hash of the entry at that position.
    pub hash: String,
}

impl AuditAnchor {
    /// The anchor file's text: a line of comment, then one line per chain.
    pub fn to_text(anchors: &[AuditAnchor]) -> String {
        let mut text = String::from(
            "# dcrs audit anchor: each chain's last position and hash; keep this file outside the database\n",
        );
        for a in anchors {
            text.push_str(&format!("{} {} {}\n", a.chain, a.seq, a.hash));
        }
        text
    }

    /// Reads an anchor file written by [`AuditAnchor::to_text`].
    pub fn parse(text: &str) -> Result<Vec<AuditAnchor>, String> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            let [chain, seq, hash] = parts.as_slice() else {
                return Err(format!(
                    "line {}: expected a chain, a position and a hash",
                    i + 1
                ));
            };
            let seq = seq
                .parse()
                .map_err(|_| format!("line {}: {seq:?} is not a position", i + 1))?;
            out.push(AuditAnchor {
                chain: chain.to_string(),
                seq,
                hash: hash.to_string(),
            });
        }
        Ok(out)
    }
}

/// Every chain's head now.
pub(crate) async fn anchors(pool: &AnyPool) -> StoreResult<Vec<AuditAnchor>> {
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT chain, seq, hash FROM audit_heads ORDER BY chain")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(chain, seq, hash)| AuditAnchor { chain, seq, hash })
        .collect())
}

/// Checks the log against heads kept outside it: each anchored chain must still hold
/// the anchored entry, unchanged. Entries cut off the end of a chain (with its head
/// moved back to match) or a chain deleted whole are found this way.
pub(crate) async fn check_anchors(
    pool: &AnyPool,
    anchors: &[AuditAnchor],
    out: &mut AuditVerification,
) -> StoreResult<()> {
    for a in anchors {
        let found: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE chain = $1 AND seq = $2")
                .bind(a.chain.clone())
                .bind(a.seq)
                .fetch_optional(pool)
                .await?;
        match found {
            Some(hash) if hash == a.hash => {}
            Some(_) => out.problems.push(format!(
                "chain {}, position {}: not the entry the anchor records: the chain was rewritten",
                a.chain, a.seq
            )),
            None => out.problems.push(format!(
                "chain {}: the anchor records position {}, which is no longer in the log: entries at the end were deleted",
                a.chain, a.seq
            )),
        }
    }
    Ok(())
}

/// Opens an audit chain for each service that has none, once: when a database made
/// before every service had a chain from its creation is first opened by this version
/// (migration 15 leaves the setting `pending`). Later, a service without a chain is one
/// whose chain was deleted, and `verify` says so.
pub(crate) async fn open_service_chains(pool: &AnyPool) -> StoreResult<()> {
    let pending: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'audit_service_chains'")
            .fetch_optional(pool)
            .await?;
    if pending.as_deref() != Some("pending") {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE settings SET value = 'done' WHERE key = 'audit_service_chains' AND value = 'pending'",
    )
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        // Another process did it first.
        return Ok(());
    }
    let services: Vec<(i64, String)> = sqlx::query_as(
        "SELECT service_id, service_ref FROM services s WHERE NOT EXISTS \
         (SELECT 1 FROM audit_heads h WHERE h.chain = 'service:' || CAST(s.service_id AS TEXT)) \
         ORDER BY service_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, service_ref) in services {
        insert_audit(
            &mut tx,
            &AuditEntry {
                actor: "dcrs (upgrade)".into(),
                action: "audit.chain.opened".into(),
                entity: None,
                service_id: Some(id),
                record_ref: Some(service_ref),
                detail: None,
            },
        )
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}
