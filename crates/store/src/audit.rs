//! Verification of the audit log's hash chains (one per service, one for entries about
//! no service). See [`crate::Database::verify_audit`].

use crate::StoreResult;
use crate::tx::audit_hash;
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
        "SELECT audit_id, at, actor, action, entity, service_id, record_ref, detail, chain, \
         seq, prev_hash, hash FROM audit_log WHERE chain IS NOT NULL ORDER BY chain, seq",
    )
    .fetch_all(pool)
    .await?;
    let mut by_chain: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for r in rows {
        by_chain.entry(r.8.clone()).or_default().push(r);
    }
    for chain in heads.keys() {
        by_chain.entry(chain.clone()).or_default();
    }
    out.chains = by_chain.len();
    for (chain, entries) in &by_chain {
        let mut prev_hash = String::new();
        let mut prev_id = i64::MIN;
        for (i, r) in entries.iter().enumerate() {
            out.entries += 1;
            let (id, at, actor, action, entity, service_id, record_ref, detail, _, seq, prev, hash) =
                r;
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
                detail.as_deref(),
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
        let last = entries.last().map(|r| (r.9, r.11.clone()));
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
