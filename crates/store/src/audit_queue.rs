//! Group commit of audit entries written on their own (views, releases, sign-ins).
//!
//! Every page a person opens is audited before it is shown, so under load most write
//! transactions would be one audit entry each, and on SQLite each would take the one
//! writer's turn. Instead, entries wait in a queue; one task writes whatever has
//! gathered while it waited for its turn, in one transaction, and answers every caller
//! after the commit. Nothing is shown before its entry is stored: a caller returns only
//! when its own entry has committed, or with the error that stopped it.

use crate::{AuditEntry, StoreResult, WriteGate};
use sqlx::AnyPool;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// At most this many entries go into one transaction.
const BATCH: usize = 256;

type Reply = oneshot::Sender<StoreResult<()>>;

/// The sending end, kept by the database handle; the task ends when every handle is gone.
pub(crate) type Queue = mpsc::UnboundedSender<(AuditEntry, Reply)>;

/// Starts the writing task on the current runtime.
pub(crate) fn start<G, F>(pool: AnyPool, gate: G) -> Queue
where
    G: Fn() -> F + Send + 'static,
    F: Future<Output = WriteGate> + Send,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(AuditEntry, Reply)>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            // Entries that arrive while this one waits for the turn go with it.
            let turn = gate().await;
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(x) => batch.push(x),
                    Err(_) => break,
                }
            }
            let entries: Vec<&AuditEntry> = batch.iter().map(|(e, _)| e).collect();
            match write(&pool, &entries).await {
                Ok(()) => {
                    drop(turn);
                    for (_, reply) in batch {
                        let _ = reply.send(Ok(()));
                    }
                }
                Err(_) => {
                    // Each entry on its own, so that every caller gets its own answer.
                    for (e, reply) in batch {
                        let _ = reply.send(write(&pool, &[&e]).await);
                    }
                    drop(turn);
                }
            }
        }
    });
    tx
}

/// Writes `entries` in one transaction, in order.
pub(crate) async fn write(pool: &AnyPool, entries: &[&AuditEntry]) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    crate::tx::insert_audit_many(&mut tx, entries).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends `entry` to the queue and waits for its commit; `None` if the task is gone.
pub(crate) async fn submit(queue: &Queue, entry: &AuditEntry) -> Option<StoreResult<()>> {
    let (reply, answer) = oneshot::channel();
    queue.send((entry.clone(), reply)).ok()?;
    answer.await.ok()
}
