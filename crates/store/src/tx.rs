//! A write transaction: the one place records are added, changed, and read back for
//! the cross-record rules, with their derived values rewritten alongside.

use crate::sql::{SqlSet, table};
use crate::{RecordStore, StoreError, StoreResult, decode_fields};
use chrono::NaiveDate;
use dcrs_domain::Value;
use dcrs_domain::record::{Entity, FieldKind, Record, parse_record};
use dcrs_domain::rules::{ClientBundle, DerivedBmi, EpisodeSummary};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};
use std::collections::HashMap;
use std::sync::Arc;

/// One line of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// Who acted: a user name, or `operator (cli)` for the command line.
    pub actor: String,
    /// What was done: `import`, `record.add`, `record.update`, `export`…
    pub action: String,
    /// The kind of record, when the entry is about one.
    pub entity: Option<Entity>,
    /// The service the record belongs to.
    pub service_id: Option<i64>,
    /// The record's reference.
    pub record_ref: Option<String>,
    /// A JSON object with details (for an update, each changed field's before and after).
    pub detail: Option<String>,
}

/// How many ids an insert reserves at once; the rest are used by later inserts in the
/// same transaction, so a bulk import touches the counter rarely.
const ID_BLOCK: i64 = 256;

/// A write transaction on either backend.
pub struct StoreTx {
    tx: Transaction<'static, Any>,
    sql: Arc<SqlSet>,
    ids: HashMap<(Entity, i64), (i64, i64)>,
    now: String,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

type AnyQuery = Query<'static, Any, AnyArguments>;

fn q(sql: &Arc<str>) -> AnyQuery {
    sqlx::query(AssertSqlSafe(sql.clone()))
}

fn bind_value(query: AnyQuery, kind: FieldKind, v: &Value) -> AnyQuery {
    match (kind, v) {
        (_, Value::Int(i)) => query.bind(*i),
        (_, Value::Real(x)) => query.bind(*x),
        (_, Value::Text(s)) => query.bind(s.clone()),
        (FieldKind::Int, Value::Null) => query.bind(None::<i64>),
        (FieldKind::Real, Value::Null) => query.bind(None::<f64>),
        (_, Value::Null) => query.bind(None::<String>),
    }
}

fn bind_key(query: AnyQuery, entity: Entity, service_id: Option<i64>) -> AnyQuery {
    if entity.is_tenant() {
        query.bind(service_id.expect("a tenant record has a service"))
    } else {
        query
    }
}

fn bind_data(
    mut query: AnyQuery,
    entity: Entity,
    parents: &[Option<i64>],
    values: &[Value],
) -> AnyQuery {
    for p in parents {
        query = query.bind(*p);
    }
    for (f, v) in entity.value_fields().zip(values) {
        query = bind_value(query, f.kind, v);
    }
    query
}

pub(crate) async fn insert_audit(conn: &mut AnyConnection, e: &AuditEntry) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, entity, service_id, record_ref, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now_text())
    .bind(e.actor.clone())
    .bind(e.action.clone())
    .bind(e.entity.map(|x| x.label().to_string()))
    .bind(e.service_id)
    .bind(e.record_ref.clone())
    .bind(e.detail.clone())
    .execute(conn)
    .await?;
    Ok(())
}

impl StoreTx {
    pub(crate) fn new(tx: Transaction<'static, Any>, sql: Arc<SqlSet>) -> Self {
        StoreTx {
            tx,
            sql,
            ids: HashMap::new(),
            now: now_text(),
        }
    }

    /// Makes every write of this transaction permanent.
    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Undoes every write of this transaction.
    pub async fn rollback(self) -> StoreResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }

    async fn next_id(&mut self, entity: Entity, service_id: i64) -> StoreResult<i64> {
        if let Some((next, end)) = self.ids.get_mut(&(entity, service_id))
            && *next < *end
        {
            *next += 1;
            return Ok(*next - 1);
        }
        let scope = table(entity);
        let updated: Option<i64> = sqlx::query_scalar(
            "UPDATE id_counters SET next_id = next_id + $3 WHERE scope = $1 AND service_id = $2 RETURNING next_id",
        )
        .bind(scope)
        .bind(service_id)
        .bind(ID_BLOCK)
        .fetch_optional(&mut *self.tx)
        .await?;
        let end = match updated {
            Some(end) => end,
            None => {
                sqlx::query(
                    "INSERT INTO id_counters (scope, service_id, next_id) VALUES ($1, $2, $3)",
                )
                .bind(scope)
                .bind(service_id)
                .bind(1 + ID_BLOCK)
                .execute(&mut *self.tx)
                .await?;
                1 + ID_BLOCK
            }
        };
        let start = end - ID_BLOCK;
        self.ids.insert((entity, service_id), (start + 1, end));
        Ok(start)
    }

    /// Prepares the import journal: which records this run wrote (with their file line)
    /// and which clients it touched. Temporary tables, private to this connection.
    pub async fn start_journal(&mut self) -> StoreResult<()> {
        for sql in [
            "CREATE TEMPORARY TABLE IF NOT EXISTS import_lines (entity TEXT NOT NULL, service_id BIGINT NOT NULL, \
             rec_id BIGINT NOT NULL, line BIGINT NOT NULL, PRIMARY KEY (entity, service_id, rec_id))",
            "CREATE TEMPORARY TABLE IF NOT EXISTS import_clients (service_id BIGINT NOT NULL, client_id BIGINT NOT NULL, \
             PRIMARY KEY (service_id, client_id))",
            "DELETE FROM import_lines",
            "DELETE FROM import_clients",
        ] {
            sqlx::query(sql).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Notes that this run wrote a record from `line`; returns the line of an earlier
    /// row of this run that wrote the same record, if there was one.
    pub async fn journal_line(
        &mut self,
        entity: Entity,
        service_id: i64,
        id: i64,
        line: u64,
    ) -> StoreResult<Option<u64>> {
        let inserted = sqlx::query(
            "INSERT INTO import_lines (entity, service_id, rec_id, line) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(entity.label())
        .bind(service_id)
        .bind(id)
        .bind(line as i64)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            Ok(None)
        } else {
            self.journal_lookup(entity, service_id, id).await
        }
    }

    /// The file line this run wrote a record from, if it did.
    pub async fn journal_lookup(
        &mut self,
        entity: Entity,
        service_id: i64,
        id: i64,
    ) -> StoreResult<Option<u64>> {
        let line: Option<i64> = sqlx::query_scalar(
            "SELECT line FROM import_lines WHERE entity = $1 AND service_id = $2 AND rec_id = $3",
        )
        .bind(entity.label())
        .bind(service_id)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(line.map(|l| l as u64))
    }

    /// Notes a client whose records this run changed, to check and re-derive later.
    pub async fn journal_client(&mut self, service_id: i64, client_id: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO import_clients (service_id, client_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(service_id)
            .bind(client_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// How many clients this run touched.
    pub async fn journal_client_count(&mut self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM import_clients")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(n as u64)
    }

    /// The next page of touched clients after `after`, in key order.
    pub async fn journal_clients_after(
        &mut self,
        after: (i64, i64),
        limit: i64,
    ) -> StoreResult<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT service_id, client_id FROM import_clients \
             WHERE service_id > $1 OR (service_id = $1 AND client_id > $2) ORDER BY service_id, client_id LIMIT $3",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn load<T>(
        &mut self,
        entity: Entity,
        service_id: i64,
        client_id: i64,
        pick: impl Fn(Record) -> Option<T>,
    ) -> StoreResult<Vec<T>> {
        let sql = self
            .sql
            .entity(entity)
            .by_client
            .clone()
            .expect("client records can be loaded by client");
        let rows: Vec<AnyRow> = q(&sql)
            .bind(service_id)
            .bind(client_id)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let fields = decode_fields(entity, &row)?;
            let reference = fields.first().map(|f| f.1.clone()).unwrap_or_default();
            // Stored records were valid when written; `NaiveDate::MAX` keeps a record
            // dated "today" readable whatever the clock says now.
            let record = parse_record(entity, &fields, NaiveDate::MAX).map_err(|errors| {
                StoreError::Corrupt {
                    entity: entity.label(),
                    reference,
                    reason: errors
                        .iter()
                        .map(|e| e.reason.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            })?;
            out.extend(pick(record));
        }
        Ok(out)
    }
}

impl RecordStore for StoreTx {
    async fn find_id(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        reference: &str,
    ) -> StoreResult<Option<i64>> {
        let sql = self.sql.entity(entity).find_id.clone();
        Ok(bind_key(q(&sql), entity, service_id)
            .bind(reference.to_string())
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|row| row.try_get::<i64, _>(0))
            .transpose()?)
    }

    async fn stored(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        id: i64,
    ) -> StoreResult<(Vec<Option<i64>>, Vec<Value>)> {
        let sql = self.sql.entity(entity).stored.clone();
        let row = bind_key(q(&sql), entity, service_id)
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await?;
        let n_parents = entity.ref_fields().count();
        let parents = (0..n_parents)
            .map(|i| row.try_get::<Option<i64>, _>(i))
            .collect::<Result<Vec<_>, _>>()?;
        let values = entity
            .value_fields()
            .enumerate()
            .map(|(i, f)| {
                let i = i + n_parents;
                Ok(match f.kind {
                    FieldKind::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
                    FieldKind::Real => row.try_get::<Option<f64>, _>(i)?.map(Value::Real),
                    _ => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
                }
                .unwrap_or(Value::Null))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((parents, values))
    }

    async fn insert(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        reference: &str,
        parents: &[Option<i64>],
        values: &[Value],
        via: &str,
    ) -> StoreResult<i64> {
        let id = self.next_id(entity, service_id.unwrap_or(0)).await?;
        let sql = self.sql.entity(entity).insert.clone();
        let query = bind_key(q(&sql), entity, service_id)
            .bind(id)
            .bind(reference.to_string());
        bind_data(query, entity, parents, values)
            .bind(via.to_string())
            .bind(self.now.clone())
            .bind(self.now.clone())
            .execute(&mut *self.tx)
            .await?;
        Ok(id)
    }

    async fn update(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        id: i64,
        parents: &[Option<i64>],
        values: &[Value],
    ) -> StoreResult<()> {
        let sql = self.sql.entity(entity).update.clone();
        let query = bind_key(q(&sql), entity, service_id).bind(id);
        bind_data(query, entity, parents, values)
            .bind(self.now.clone())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn client_of(
        &mut self,
        entity: Entity,
        service_id: i64,
        id: i64,
    ) -> StoreResult<Option<i64>> {
        if entity == Entity::Client {
            return Ok(Some(id));
        }
        let Some(sql) = self.sql.entity(entity).client_of.clone() else {
            return Ok(None);
        };
        Ok(q(&sql)
            .bind(service_id)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|row| row.try_get::<i64, _>(0))
            .transpose()?)
    }

    async fn client_bundle(
        &mut self,
        service_id: i64,
        client_id: i64,
    ) -> StoreResult<ClientBundle> {
        let mut clients = self
            .load(Entity::Client, service_id, client_id, |r| match r {
                Record::Client(c) => Some(c),
                _ => None,
            })
            .await?;
        let client = clients.pop().ok_or_else(|| StoreError::Corrupt {
            entity: "client",
            reference: format!("internal id {client_id}"),
            reason: "not found".into(),
        })?;
        macro_rules! load {
            ($entity:ident) => {
                self.load(Entity::$entity, service_id, client_id, |r| match r {
                    Record::$entity(x) => Some(x),
                    _ => None,
                })
                .await?
            };
        }
        let mut bundle = ClientBundle {
            client,
            referrals: load!(Referral),
            episodes: Vec::new(),
            assessments: Vec::new(),
            plans: Vec::new(),
            goals: Vec::new(),
            sessions: Vec::new(),
            onward_referrals: Vec::new(),
            wider_issues: Vec::new(),
        };
        // Everything below hangs from a referral's episode: skip the reads when there is none.
        if !bundle.referrals.is_empty() {
            bundle.episodes = load!(Episode);
        }
        if !bundle.episodes.is_empty() {
            bundle.assessments = load!(Assessment);
            bundle.plans = load!(Plan);
            if !bundle.plans.is_empty() {
                bundle.goals = load!(Goal);
            }
            bundle.sessions = load!(Session);
            bundle.onward_referrals = load!(OnwardReferral);
            bundle.wider_issues = load!(WiderIssue);
        }
        Ok(bundle)
    }

    async fn save_derived(
        &mut self,
        service_id: i64,
        client_id: i64,
        bmi: &[DerivedBmi],
        summaries: &[EpisodeSummary],
    ) -> StoreResult<()> {
        for b in bmi {
            sqlx::query(
                "UPDATE assessments SET bmi = $3, bmi_flagged = $4 WHERE service_id = $1 AND assessment_ref = $2 \
                 AND (bmi IS NULL OR bmi <> $3 OR $3 IS NULL OR bmi_flagged <> $4)",
            )
            .bind(service_id)
            .bind(b.assessment_ref.clone())
            .bind(b.bmi)
            .bind(i64::from(b.flagged))
            .execute(&mut *self.tx)
            .await?;
        }
        sqlx::query("DELETE FROM episode_summaries WHERE service_id = $1 AND client_id = $2")
            .bind(service_id)
            .bind(client_id)
            .execute(&mut *self.tx)
            .await?;
        let cols = EpisodeSummary::COLUMNS;
        let placeholders: Vec<String> = (0..cols.len()).map(|i| format!("${}", i + 4)).collect();
        let sql: Arc<str> = format!(
            "INSERT INTO episode_summaries (service_id, episode_id, client_id, {}) \
             SELECT $1, episode_id, $2, {} FROM episodes WHERE service_id = $1 AND episode_ref = $3",
            cols.join(", "),
            placeholders.join(", ")
        )
        .into();
        for s in summaries {
            let mut query = q(&sql)
                .bind(service_id)
                .bind(client_id)
                .bind(s.episode_ref.clone());
            for v in s.values() {
                let kind = if matches!(v, Value::Int(_)) {
                    FieldKind::Int
                } else {
                    FieldKind::Text
                };
                query = bind_value(query, kind, &v);
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn audit(&mut self, entry: &AuditEntry) -> StoreResult<()> {
        insert_audit(&mut self.tx, entry).await
    }
}
