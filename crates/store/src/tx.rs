//! A write transaction: the one place records are added, changed, and read back for
//! the cross-record rules, with their derived values rewritten alongside.

use crate::sql::{SqlSet, placeholders, table};
use crate::{RecordStore, StoreError, StoreResult};
use chrono::NaiveDate;
use dcrs_domain::Value;
use dcrs_domain::record::{Entity, FieldKind, Record, parse_record};
use dcrs_domain::rules::{ClientBundle, DerivedBmi, EpisodeSummary};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// One line of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// Who acted: a user name, or `operator (cli, os user …)` for the command line.
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

/// Rewrites a statement whose placeholders `$1, $2, …` each appear once, in order, for
/// the backend. SQLite looks up every named parameter (`$N`, `?N`) by a linear search,
/// so a statement with thousands of them costs time in the square of their number;
/// anonymous `?` parameters bind by position and cost nothing extra.
pub(crate) fn sequential(backend: crate::Backend, sql: String) -> String {
    if backend != crate::Backend::Sqlite {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Rows in one bulk insert statement: each statement carries its rows in a few text
/// values, so its size is not bound by the databases' parameter limits.
const BULK_ROWS: usize = 5_000;

/// `INSERT … SELECT` of a batch of rows: the `fixed` columns bound once for every row,
/// the `columns` passed as text, on SQLite one JSON array of rows, on PostgreSQL one
/// array per column, expanded by `unnest`. Binding every value separately cost more
/// than the database's own work (each went through the `Any` driver's conversions), and
/// PostgreSQL expands arrays faster than JSON. On SQLite `jsonb_each` hands each row over
/// already parsed: with `json_each`, every column taken from a row parsed its text again.
fn bulk_insert_sql(
    backend: crate::Backend,
    table: &str,
    fixed: &[&str],
    columns: &[(String, FieldKind)],
) -> String {
    let mut select: Vec<String> = (1..=fixed.len()).map(|n| format!("${n}")).collect();
    let first = fixed.len() + 1;
    select.extend(
        columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| match backend {
                crate::Backend::Sqlite => format!("x.value ->> {i}"),
                // Expanded in the select list, side by side: in `FROM unnest(…)` each array
                // is first copied into a tuple store (10% slower at 100,000 sessions).
                crate::Backend::Postgres => {
                    let t = match kind {
                        FieldKind::Int => "bigint",
                        FieldKind::Real => "double precision",
                        _ => "text",
                    };
                    format!("unnest(${}::{t}[])", first + i)
                }
            }),
    );
    let source = match backend {
        crate::Backend::Sqlite => format!(" FROM jsonb_each(${first}) AS x"),
        crate::Backend::Postgres => String::new(),
    };
    let names: Vec<&str> = fixed
        .iter()
        .copied()
        .chain(columns.iter().map(|(c, _)| c.as_str()))
        .collect();
    sequential(
        backend,
        format!(
            "INSERT INTO {table} ({}) SELECT {}{source}",
            names.join(", "),
            select.join(", ")
        ),
    )
}

/// A value of a row to write, borrowed from where it is held.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl<'a> From<&'a Value> for Cell<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => Cell::Null,
            Value::Int(i) => Cell::Int(*i),
            Value::Real(x) => Cell::Real(*x),
            Value::Text(s) => Cell::Text(s),
        }
    }
}

/// A row of a bulk write, read without copying its values.
trait BulkRow {
    fn cells<'a>(&'a self, out: &mut Vec<Cell<'a>>);
}

impl BulkRow for Vec<Value> {
    fn cells<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend(self.iter().map(Cell::from));
    }
}

/// A new record's row: its id, reference, parents' ids and values.
struct NewRow<'a> {
    id: i64,
    record: &'a NewRecord,
}

impl BulkRow for NewRow<'_> {
    fn cells<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        let (own, parents, values) = self.record;
        out.push(Cell::Int(self.id));
        out.push(Cell::Text(own));
        out.extend(parents.iter().map(|p| p.map_or(Cell::Null, Cell::Int)));
        out.extend(values.iter().map(Cell::from));
    }
}

/// Appends a value as JSON.
fn push_json_value(out: &mut String, v: Cell<'_>) {
    use std::fmt::Write;
    match v {
        Cell::Null => out.push_str("null"),
        Cell::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // Writing a number as JSON cannot fail.
        Cell::Real(x) => out.push_str(&serde_json::to_string(&x).unwrap_or_default()),
        Cell::Text(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if u32::from(c) < 0x20 => {
                        let _ = write!(out, "\\u{:04x}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
    }
}

/// Appends a value as an element of a PostgreSQL array literal: text quoted, with `"`
/// and `\` escaped by a backslash; a blank as `NULL`.
fn push_array_element(out: &mut String, v: Cell<'_>) {
    use std::fmt::Write;
    match v {
        Cell::Null => out.push_str("NULL"),
        Cell::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Cell::Real(x) => {
            let _ = write!(out, "{x:?}");
        }
        Cell::Text(s) => {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
}

/// A record to insert: its reference, parent ids and values.
pub type NewRecord = (String, Vec<Option<i64>>, Vec<Value>);

/// Items in one `IN (…)` list.
pub(crate) const IN_LIST: usize = 500;

/// Bound parameters in one multi-row statement. Statements with many parameters are
/// written with anonymous placeholders on SQLite (see [`sequential`]); with them, loading
/// the 1.77 million postcodes took 12 s with 500 or 30,000 parameters a statement, so
/// the size matters little there. On PostgreSQL round trips dominate, so statements are
/// large, well below its limit of 65,535.
pub(crate) fn max_params(backend: crate::Backend) -> usize {
    match backend {
        crate::Backend::Sqlite => 5_000,
        crate::Backend::Postgres => 30_000,
    }
}

fn read_value(row: &AnyRow, i: usize, kind: FieldKind) -> Result<Value, sqlx::Error> {
    Ok(match kind {
        FieldKind::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
        FieldKind::Real => row.try_get::<Option<f64>, _>(i)?.map(Value::Real),
        _ => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
    }
    .unwrap_or(Value::Null))
}

/// Reads a stored row back into a record. Stored records were valid when written;
/// `NaiveDate::MAX` as "today" keeps a record dated today readable whatever the clock says.
/// The kinds of a client's records and the column each is found by, parents first.
const BUNDLE: [(Entity, &str); 9] = [
    (Entity::Client, "client_id"),
    (Entity::Referral, "client_id"),
    (Entity::Episode, "referral_id"),
    (Entity::Assessment, "episode_id"),
    (Entity::Plan, "episode_id"),
    (Entity::Goal, "plan_id"),
    (Entity::Session, "episode_id"),
    (Entity::OnwardReferral, "episode_id"),
    (Entity::WiderIssue, "episode_id"),
];

/// At most this many clients' records are read in one statement (see
/// [`StoreTx::bundle_rows`]).
const SMALL_BUNDLE: usize = 16;

/// A stored row: its id and each field as text.
type StoredRow = (i64, Vec<(&'static str, String)>);

/// Stored rows of `entity` that cannot be read back.
fn corrupt_rows(entity: Entity, reason: String) -> StoreError {
    StoreError::Corrupt {
        entity: entity.label(),
        reference: String::new(),
        reason,
    }
}

/// The reference of a stored row's parent, from its id.
fn parent_name(
    entity: Entity,
    names: &HashMap<i64, String>,
    field: &str,
    id: Option<i64>,
) -> StoreResult<String> {
    id.and_then(|k| names.get(&k))
        .cloned()
        .ok_or_else(|| corrupt_rows(entity, format!("a stored row's {field} was not found")))
}

/// Rows read back as one JSON array of arrays (the id, then every field; a parent's id
/// where `parent_field` is, named from `names`).
fn decode_json_rows(
    entity: Entity,
    parent_field: Option<usize>,
    text: &str,
    names: &HashMap<i64, String>,
) -> StoreResult<Vec<StoredRow>> {
    let corrupt = |reason: String| corrupt_rows(entity, reason);
    let name = |field: &str, id: Option<i64>| parent_name(entity, names, field, id);
    let parsed: Vec<Vec<serde_json::Value>> = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("stored rows could not be read back: {e}")))?;
    let mut decoded = Vec::with_capacity(parsed.len());
    for row in parsed {
        let mut values = row.into_iter();
        let id = values
            .next()
            .and_then(|v| v.as_i64())
            .ok_or_else(|| corrupt("a stored row was read back without its id".into()))?;
        let fields = entity
            .fields()
            .iter()
            .zip(values)
            .enumerate()
            .map(|(i, (f, v))| {
                let text = match v {
                    _ if Some(i) == parent_field => name(f.name, v.as_i64())?,
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                Ok((f.name, text))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        decoded.push((id, fields));
    }
    Ok(decoded)
}

/// Stored rows as records of their kind, in order of reference.
fn picked<T>(
    entity: Entity,
    mut decoded: Vec<StoredRow>,
    pick: impl Fn(Record) -> Option<T>,
) -> StoreResult<Vec<(i64, T)>> {
    decoded.sort_by(|a, b| a.1[0].1.cmp(&b.1[0].1));
    let mut out = Vec::with_capacity(decoded.len());
    for (id, fields) in decoded {
        if let Some(x) = pick(parse_stored(entity, fields)?) {
            out.push((id, x));
        }
    }
    Ok(out)
}

fn parse_stored(entity: Entity, fields: Vec<(&'static str, String)>) -> StoreResult<Record> {
    parse_record(entity, &fields, NaiveDate::MAX).map_err(|errors| StoreError::Corrupt {
        entity: entity.label(),
        reference: fields.first().map(|f| f.1.clone()).unwrap_or_default(),
        reason: errors
            .iter()
            .map(|e| e.reason.clone())
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// A write transaction on either backend.
pub struct StoreTx {
    tx: Transaction<'static, Any>,
    sql: Arc<SqlSet>,
    ids: HashMap<(Entity, i64), (i64, i64)>,
    now: String,
    backend: crate::Backend,
    /// Services whose records this transaction changed, and whether it changed what
    /// every service's figures rest on (reference data, settings): their report
    /// versions move on at commit, so no report reuses counts made before the change.
    changed: BTreeSet<i64>,
    changed_all: bool,
    /// The ids of the clients, episodes and assessments read by the last
    /// [`StoreTx::client_bundles`], by service and reference: what is derived from
    /// those bundles is written against them without looking them up again.
    bundle_ids: HashMap<(Entity, i64, String), i64>,
    /// On PostgreSQL, whether this transaction's role may switch off the per-row
    /// foreign key checks around [`StoreTx::insert_many`] (see there).
    batch_key_checks: bool,
    /// Services whose row this transaction has locked against deletion.
    locked_services: BTreeSet<i64>,
    /// The clients a small write touched, kept here instead of in the journal table
    /// (see [`StoreTx::start_small_journal`]).
    small_journal: Option<BTreeSet<(i64, i64)>>,
    /// On PostgreSQL, where a small write takes its ids from (see [`StoreTx::take_ids`]).
    id_pool: Option<IdSource>,
    /// This process's turn to write on SQLite, given back after the transaction ends
    /// (declared after `tx`, so dropped after it).
    _gate: crate::WriteGate,
}

/// How many ids a small write on PostgreSQL takes at once for its process (see
/// [`IdSource`]).
const SMALL_ID_BLOCK: i64 = 64;

/// Where small writes on PostgreSQL take their ids: blocks of [`SMALL_ID_BLOCK`], each
/// taken in a statement of its own, committed at once, through connections kept for
/// that (held until the write's commit, a counter's row lock would queue every save of
/// a service behind the one before), and then handed out by this process from memory.
/// Ids a process took and did not use (it stopped, or a write rolled back) are skipped,
/// as ids may be: they identify records, and say nothing of their order.
/// The next id and the end (exclusive) of each block in hand, by counter and service.
type IdBlocks = HashMap<(&'static str, i64), (i64, i64)>;

#[derive(Clone, Debug)]
pub(crate) struct IdSource {
    pub(crate) pool: sqlx::AnyPool,
    /// The ids in hand by counter and service: the next, and the end (exclusive).
    blocks: Arc<std::sync::Mutex<IdBlocks>>,
}

impl IdSource {
    pub(crate) fn new(pool: sqlx::AnyPool) -> Self {
        IdSource {
            pool,
            blocks: Default::default(),
        }
    }

    /// `n` consecutive ids from the block in hand, if it has that many.
    fn take(&self, scope: &'static str, service_id: i64, n: i64) -> Option<i64> {
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        let (next, end) = blocks.get_mut(&(scope, service_id))?;
        if *end - *next < n {
            return None;
        }
        *next += n;
        Some(*next - n)
    }

    /// Keeps the rest of a new block for the writes after this one.
    fn keep(&self, scope: &'static str, service_id: i64, next: i64, end: i64) {
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        blocks.insert((scope, service_id), (next, end));
    }
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) type AnyQuery = Query<'static, Any, AnyArguments>;

fn q(sql: &Arc<str>) -> AnyQuery {
    sqlx::query(AssertSqlSafe(sql.clone()))
}

pub(crate) fn bind_value(query: AnyQuery, kind: FieldKind, v: &Value) -> AnyQuery {
    match (kind, v) {
        (_, Value::Int(i)) => query.bind(*i),
        (_, Value::Real(x)) => query.bind(*x),
        (_, Value::Text(s)) => query.bind(s.clone()),
        (FieldKind::Int, Value::Null) => query.bind(None::<i64>),
        (FieldKind::Real, Value::Null) => bind_null_real(query),
        (_, Value::Null) => query.bind(None::<String>),
    }
}

/// Binds a null float. sqlx 0.9's `Any` driver sends a null `f64` to PostgreSQL as a
/// `float4` (and a null `f32` as a `float8`), so a cached statement first run with a
/// null would then refuse a real value; binding the null as `f32` gives `float8`.
fn bind_null_real(query: AnyQuery) -> AnyQuery {
    query.bind(None::<f32>)
}

/// Binds an optional float (see [`bind_null_real`]).
fn bind_opt_real(query: AnyQuery, x: Option<f64>) -> AnyQuery {
    match x {
        Some(x) => query.bind(x),
        None => bind_null_real(query),
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

/// The chain an entry belongs to. Each service has two: one for its writes (records,
/// accounts, configuration) and one for what was read or released (views, reports,
/// sign-ins), so that people reading never wait behind a write holding its chain; entries
/// about no service have their own pair.
pub(crate) fn audit_chain(service_id: Option<i64>, action: &str) -> String {
    let reads = [
        "view.",
        "report.",
        "patterns.",
        "access.",
        "auth.",
        "draft.",
    ]
    .iter()
    .any(|p| action.starts_with(p));
    let base = match service_id {
        Some(id) => format!("service:{id}"),
        None => "system".into(),
    };
    if reads { format!("{base}:reads") } else { base }
}

/// The hash of an entry: SHA-256 over the previous entry's hash and every field of this
/// one, written as a JSON array so that no two different entries read the same. `detail`
/// is the detail as chained: its own hash ([`detail_hash`]) for entries written since
/// migration 18, so that it can be erased and the chain still checked; the detail itself
/// for older entries.
#[allow(clippy::too_many_arguments)]
pub(crate) fn audit_hash(
    prev_hash: &str,
    chain: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    entity: Option<&str>,
    service_id: Option<i64>,
    record_ref: Option<&str>,
    detail: Option<&str>,
) -> String {
    use sha2::Digest;
    let text = serde_json::json!([
        prev_hash, chain, seq, at, actor, action, entity, service_id, record_ref, detail
    ])
    .to_string();
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of an audit entry's detail, kept beside it: SHA-256 of its text.
pub(crate) fn detail_hash(detail: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(detail.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes several audit entries, in order, in the caller's transaction: each chain's
/// head is taken once (in the order of the chains' names, so that two writers never
/// wait on each other's heads crosswise), the entries go in as one statement per 32
/// (SQLite finds a numbered parameter by a linear search, so not many more),
/// and each head is moved once. The same entries, positions and hashes as writing them
/// one at a time, in a handful of statements instead of three an entry.
pub(crate) async fn insert_audit_many(
    conn: &mut AnyConnection,
    entries: &[&AuditEntry],
) -> StoreResult<()> {
    append_audit(conn, entries, None).await
}

/// The report versions a transaction moves on at commit: those of some services, or of
/// every service.
pub(crate) enum Versions<'a> {
    Of(&'a BTreeSet<i64>),
    All,
}

impl Versions<'_> {
    /// The statement, its parameters numbered from `$first`.
    fn statement(&self, first: usize) -> String {
        let rows = match self {
            Versions::All => "SELECT service_id, 1 FROM services WHERE true".to_string(),
            Versions::Of(ids) => {
                let rows: Vec<String> = (0..ids.len())
                    .map(|i| format!("(${}, 1)", first + i))
                    .collect();
                format!("VALUES {}", rows.join(", "))
            }
        };
        format!(
            "INSERT INTO service_versions (service_id, version) {rows} \
             ON CONFLICT (service_id) DO UPDATE SET version = service_versions.version + 1"
        )
    }

    fn bind(&self, mut query: AnyQuery) -> AnyQuery {
        if let Versions::Of(ids) = self {
            for id in ids.iter() {
                query = query.bind(*id);
            }
        }
        query
    }
}

/// Appends `entries` to their chains. With `versions` (PostgreSQL only), the report
/// versions move on in the same statement as the last entries go in, which also moves
/// the first chain's head: from taking the heads to committing, the transaction holds
/// them (and the services' version rows) for two statements and the commit, instead of
/// one statement for each step. Under load, a writer holding a head waits for its turn
/// on the server between statements, and every writer of the service waits with it.
async fn append_audit(
    conn: &mut AnyConnection,
    entries: &[&AuditEntry],
    versions: Option<&Versions<'_>>,
) -> StoreResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let chains: Vec<String> = entries
        .iter()
        .map(|e| audit_chain(e.service_id, &e.action))
        .collect();
    let mut wanted: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for c in &chains {
        *wanted.entry(c.as_str()).or_default() += 1;
    }
    // Each chain's position before this batch, and its last hash.
    let mut heads: HashMap<&str, (i64, String)> = HashMap::new();
    let take = "UPDATE audit_heads SET seq = seq + $2 WHERE chain = $1 RETURNING seq, hash";
    for (&chain, &n) in &wanted {
        let mut head: Option<(i64, String)> = sqlx::query_as(take)
            .bind(chain.to_string())
            .bind(n)
            .fetch_optional(&mut *conn)
            .await?;
        if head.is_none() {
            sqlx::query("INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, 0, '') ON CONFLICT (chain) DO NOTHING")
                .bind(chain.to_string())
                .execute(&mut *conn)
                .await?;
            head = sqlx::query_as(take)
                .bind(chain.to_string())
                .bind(n)
                .fetch_optional(&mut *conn)
                .await?;
        }
        let (last, hash) = head.ok_or_else(|| {
            StoreError::Sql(sqlx::Error::Protocol(
                "the audit chain head could not be taken".into(),
            ))
        })?;
        heads.insert(chain, (last - n, hash));
    }
    struct Row {
        at: String,
        entity: Option<String>,
        detail_hash: Option<String>,
        chain: String,
        seq: i64,
        prev: String,
        hash: String,
    }
    let mut rows = Vec::with_capacity(entries.len());
    for (e, chain) in entries.iter().zip(&chains) {
        let head = heads.get_mut(chain.as_str()).expect("taken above");
        let seq = head.0 + 1;
        let at = now_text();
        let entity = e.entity.map(|x| x.label().to_string());
        let detail_hash = e.detail.as_deref().map(detail_hash);
        let hash = audit_hash(
            &head.1,
            chain,
            seq,
            &at,
            &e.actor,
            &e.action,
            entity.as_deref(),
            e.service_id,
            e.record_ref.as_deref(),
            detail_hash.as_deref(),
        );
        rows.push(Row {
            at,
            entity,
            detail_hash,
            chain: chain.clone(),
            seq,
            prev: std::mem::replace(&mut head.1, hash.clone()),
            hash,
        });
        head.0 = seq;
    }
    let mut heads: Vec<(&str, String)> = heads.into_iter().map(|(c, (_, h))| (c, h)).collect();
    let parts = entries.iter().zip(rows).collect::<Vec<_>>();
    let chunks: Vec<_> = parts.chunks(32).collect();
    for (k, part) in chunks.iter().enumerate() {
        let values: Vec<String> = (0..part.len())
            .map(|i| {
                let p: Vec<String> = (1..=12).map(|k| format!("${}", i * 12 + k)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let mut sql = format!(
            "INSERT INTO audit_log (at, actor, action, entity, service_id, record_ref, detail, \
             detail_hash, chain, seq, prev_hash, hash) VALUES {}",
            values.join(", ")
        );
        // The last statement of entries also moves the versions and the first head.
        let fold = versions.filter(|_| k + 1 == chunks.len());
        let next = part.len() * 12 + 1;
        if let Some(v) = fold {
            sql = format!(
                "WITH entries AS ({sql}), versions AS ({}) \
                 UPDATE audit_heads SET hash = ${} WHERE chain = ${}",
                v.statement(next + 2),
                next,
                next + 1
            );
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (e, r) in part.iter() {
            query = query
                .bind(r.at.clone())
                .bind(e.actor.clone())
                .bind(e.action.clone())
                .bind(r.entity.clone())
                .bind(e.service_id)
                .bind(e.record_ref.clone())
                .bind(e.detail.clone())
                .bind(r.detail_hash.clone())
                .bind(r.chain.clone())
                .bind(r.seq)
                .bind(r.prev.clone())
                .bind(r.hash.clone());
        }
        if let Some(v) = fold {
            let (chain, hash) = heads.remove(0);
            query = v.bind(query.bind(hash).bind(chain.to_string()));
        }
        query.execute(&mut *conn).await?;
    }
    for (chain, hash) in heads {
        sqlx::query("UPDATE audit_heads SET hash = $1 WHERE chain = $2")
            .bind(hash)
            .bind(chain.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Appends an entry to its chain. The caller's transaction holds the chain's head row
/// from the update until it commits, so two writers cannot take the same position.
pub(crate) async fn insert_audit(conn: &mut AnyConnection, e: &AuditEntry) -> StoreResult<()> {
    insert_audit_many(conn, &[e]).await
}

impl StoreTx {
    pub(crate) fn new(
        tx: Transaction<'static, Any>,
        sql: Arc<SqlSet>,
        backend: crate::Backend,
    ) -> Self {
        StoreTx {
            tx,
            sql,
            ids: HashMap::new(),
            now: now_text(),
            backend,
            changed: BTreeSet::new(),
            changed_all: false,
            bundle_ids: HashMap::new(),
            batch_key_checks: false,
            locked_services: BTreeSet::new(),
            small_journal: None,
            id_pool: None,
            _gate: None,
        }
    }

    /// The transaction's connection: for the modules of this crate, and for crates that
    /// keep tables of their own (the research register) and must write a row of them in
    /// the same transaction as its audit entry.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// A statement whose placeholders each appear once, in order (see [`sequential`]).
    pub(crate) fn sequential_query(&self, sql: String) -> AnyQuery {
        sqlx::query(AssertSqlSafe(sequential(self.backend, sql)))
    }

    /// The backend of this transaction.
    pub(crate) fn backend(&self) -> crate::Backend {
        self.backend
    }

    /// Notes that this transaction changes records of a service.
    pub(crate) fn touch(&mut self, service_id: Option<i64>) {
        if let Some(s) = service_id {
            self.changed.insert(s);
        }
    }

    pub(crate) fn gated(mut self, gate: crate::WriteGate) -> Self {
        self._gate = gate;
        self
    }

    /// Notes that this transaction changes what every service's figures rest on.
    pub(crate) fn touch_all(&mut self) {
        self.changed_all = true;
    }

    /// Writes `entries` to the audit log and commits: the same as [`RecordStore::audit`]
    /// for each, then [`StoreTx::commit`], in fewer statements (see [`append_audit`]).
    pub async fn commit_audited(mut self, entries: &[AuditEntry]) -> StoreResult<()> {
        let entries: Vec<&AuditEntry> = entries.iter().collect();
        let folded = self.backend == crate::Backend::Postgres
            && !entries.is_empty()
            && (self.changed_all || !self.changed.is_empty());
        if !folded {
            insert_audit_many(&mut self.tx, &entries).await?;
            return self.commit().await;
        }
        let changed = std::mem::take(&mut self.changed);
        let versions = if std::mem::take(&mut self.changed_all) {
            Versions::All
        } else {
            Versions::Of(&changed)
        };
        append_audit(&mut self.tx, &entries, Some(&versions)).await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Makes every write of this transaction permanent, moving on the report version of
    /// each service it changed in the same transaction.
    pub async fn commit(mut self) -> StoreResult<()> {
        let changed = std::mem::take(&mut self.changed);
        let versions = if self.changed_all {
            Some(Versions::All)
        } else {
            (!changed.is_empty()).then_some(Versions::Of(&changed))
        };
        if let Some(v) = versions {
            let sql = v.statement(1);
            v.bind(sqlx::query(AssertSqlSafe(sql)))
                .execute(&mut *self.tx)
                .await?;
        }
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
        let updated = self.take_ids(scope, service_id, ID_BLOCK).await?;
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

    /// Prepares the import journal: the clients this run touched, to check at the end. A
    /// temporary table, private to this connection (the importer keeps the file line of
    /// each record it wrote in memory).
    pub async fn start_journal(&mut self) -> StoreResult<()> {
        for sql in [
            "CREATE TEMPORARY TABLE IF NOT EXISTS import_clients (service_id BIGINT NOT NULL, client_id BIGINT NOT NULL, \
             PRIMARY KEY (service_id, client_id))",
            "DELETE FROM import_clients",
        ] {
            sqlx::query(sql).execute(&mut *self.tx).await?;
        }
        // Every statement of an import finds rows by key, a few hundred ids or
        // references at a time. PostgreSQL's planner prices that many index probes
        // above reading the whole table, or hashing all of it to join, while it holds
        // some tens of thousands of rows; it then read or hashed every client, referral
        // and episode of the service once for each page of clients checked (at a
        // million sessions, 120 ms a statement where key lookups take 49 ms). Parallel
        // workers only add their start-up to statements this small.
        if self.backend == crate::Backend::Postgres {
            for setting in [
                "SET LOCAL enable_seqscan = off",
                "SET LOCAL enable_hashjoin = off",
                "SET LOCAL enable_mergejoin = off",
                "SET LOCAL max_parallel_workers_per_gather = 0",
            ] {
                sqlx::query(setting).execute(&mut *self.tx).await?;
            }
            self.batch_key_checks = self.may_set_replication_role().await?;
        }
        Ok(())
    }

    /// Moves a counter of ids on by `n`, returning its new end (`None` if the counter
    /// is not there yet). A small write on PostgreSQL does it in a statement of its
    /// own, committed at once: held until the write's commit, the counter's row lock
    /// queued every save of a service behind the one before (ids a rolled-back write
    /// took are skipped, as ids may be).
    async fn take_ids(&mut self, scope: &str, service_id: i64, n: i64) -> StoreResult<Option<i64>> {
        let sql = "UPDATE id_counters SET next_id = next_id + $3 WHERE scope = $1 AND service_id = $2 RETURNING next_id";
        let query = sqlx::query_scalar(sql).bind(scope).bind(service_id).bind(n);
        Ok(match (&self.small_journal, &self.id_pool) {
            (Some(_), Some(source)) => query.fetch_optional(&source.pool).await?,
            _ => query.fetch_optional(&mut *self.tx).await?,
        })
    }

    /// `n` consecutive ids for a small write on PostgreSQL from the process's blocks,
    /// taking a new block when the one in hand has too few (`None` when there is no
    /// such source, or the counter is not there yet).
    async fn ids_from_blocks(
        &mut self,
        scope: &'static str,
        service_id: i64,
        n: i64,
    ) -> StoreResult<Option<i64>> {
        let Some(source) = self
            .id_pool
            .clone()
            .filter(|_| self.small_journal.is_some())
        else {
            return Ok(None);
        };
        if let Some(start) = source.take(scope, service_id, n) {
            return Ok(Some(start));
        }
        let block = n.max(SMALL_ID_BLOCK);
        let Some(end) = self.take_ids(scope, service_id, block).await? else {
            return Ok(None);
        };
        let start = end - block;
        source.keep(scope, service_id, start + n, end);
        Ok(Some(start))
    }

    /// Prepares the journal of a small write (a form or an API request: a record or a
    /// few): the clients it touches are kept in memory, and none of an import's
    /// settings for large batches are made. On PostgreSQL the journal table and those
    /// settings took a dozen statements (3 ms) of a session's save.
    pub fn start_small_journal(&mut self) {
        self.small_journal = Some(BTreeSet::new());
    }

    /// Gives a PostgreSQL transaction the source that small writes take ids from.
    pub(crate) fn with_id_pool(mut self, source: &IdSource) -> Self {
        if self.backend == crate::Backend::Postgres {
            self.id_pool = Some(source.clone());
        }
        self
    }

    /// Whether the role may set `session_replication_role`: a superuser, or, from
    /// PostgreSQL 15, a role granted `SET ON PARAMETER session_replication_role`.
    async fn may_set_replication_role(&mut self) -> StoreResult<bool> {
        let version: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
            .fetch_one(&mut *self.tx)
            .await?;
        let sql = if version.parse::<i64>().unwrap_or(0) >= 150_000 {
            "SELECT has_parameter_privilege('session_replication_role', 'SET')"
        } else {
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        };
        Ok(sqlx::query_scalar::<_, bool>(sql)
            .fetch_optional(&mut *self.tx)
            .await?
            .unwrap_or(false))
    }

    /// Notes a client whose records this run changed, to check and re-derive later.
    pub async fn journal_client(&mut self, service_id: i64, client_id: i64) -> StoreResult<()> {
        if let Some(j) = &mut self.small_journal {
            j.insert((service_id, client_id));
            return Ok(());
        }
        sqlx::query("INSERT INTO import_clients (service_id, client_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(service_id)
            .bind(client_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// How many clients this run touched.
    pub async fn journal_client_count(&mut self) -> StoreResult<u64> {
        if let Some(j) = &self.small_journal {
            return Ok(j.len() as u64);
        }
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
        if let Some(j) = &self.small_journal {
            use std::ops::Bound::{Excluded, Unbounded};
            return Ok(j
                .range((Excluded(after), Unbounded))
                .take(limit.max(0) as usize)
                .copied()
                .collect());
        }
        let rows = sqlx::query(
            "SELECT service_id, client_id FROM import_clients \
             WHERE (service_id, client_id) > ($1, $2) ORDER BY service_id, client_id LIMIT $3",
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

    /// Refreshes the planner's statistics for an entity's table on PostgreSQL, so that
    /// batches keep using the indexes as a table fills within one transaction (the
    /// statistics include this transaction's own rows). SQLite needs none.
    pub async fn refresh_statistics(&mut self, entity: Entity) -> StoreResult<()> {
        self.analyze(table(entity)).await
    }

    /// Refreshes the statistics of the episode summaries (see [`Self::refresh_statistics`]).
    pub async fn refresh_summary_statistics(&mut self) -> StoreResult<()> {
        self.analyze("episode_summaries").await
    }

    async fn analyze(&mut self, table: &str) -> StoreResult<()> {
        if self.backend == crate::Backend::Postgres {
            sqlx::query(AssertSqlSafe(format!("ANALYZE {table}")))
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Reserves `n` consecutive ids for new records of `entity` in a service.
    async fn reserve_ids(&mut self, entity: Entity, service_id: i64, n: i64) -> StoreResult<i64> {
        let scope = table(entity);
        if let Some(start) = self.ids_from_blocks(scope, service_id, n).await? {
            return Ok(start);
        }
        let end = self.take_ids(scope, service_id, n).await?;
        match end {
            Some(end) => Ok(end - n),
            None => {
                sqlx::query(
                    "INSERT INTO id_counters (scope, service_id, next_id) VALUES ($1, $2, $3)",
                )
                .bind(scope)
                .bind(service_id)
                .bind(1 + n)
                .execute(&mut *self.tx)
                .await?;
                Ok(1)
            }
        }
    }

    /// Whether any record of this kind is stored (of the service, for tenant records).
    pub async fn has_records(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
    ) -> StoreResult<bool> {
        // A small write looks up each reference it adds: that costs a lookup or two,
        // where this question cost a scan of the table on PostgreSQL under load.
        if self.small_journal.is_some() {
            return Ok(true);
        }
        let t = table(entity);
        let query = match service_id.filter(|_| entity.is_tenant()) {
            Some(sid) => sqlx::query(AssertSqlSafe(format!(
                "SELECT 1 FROM {t} WHERE service_id = $1 LIMIT 1"
            )))
            .bind(sid),
            None => sqlx::query(AssertSqlSafe(format!("SELECT 1 FROM {t} LIMIT 1"))),
        };
        Ok(query.fetch_optional(&mut *self.tx).await?.is_some())
    }

    /// The ids of the records with these references (within the service for tenant records).
    pub async fn find_ids(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        refs: &[String],
    ) -> StoreResult<HashMap<String, i64>> {
        self.find_ids_locking(entity, service_id, refs, "").await
    }

    /// The ids of the records with these references, as [`Self::find_ids`], locked
    /// until the transaction ends against deletion and changes of key, as a foreign
    /// key's check locks the row it finds (on SQLite, whose writers take turns, there
    /// is nothing to lock). Rows inserted by [`Self::insert_many`] must take their
    /// parents from here.
    pub async fn find_parent_ids(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        refs: &[String],
    ) -> StoreResult<HashMap<String, i64>> {
        let lock = match self.backend {
            crate::Backend::Sqlite => "",
            crate::Backend::Postgres => " FOR KEY SHARE",
        };
        self.find_ids_locking(entity, service_id, refs, lock).await
    }

    async fn find_ids_locking(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        refs: &[String],
        lock: &str,
    ) -> StoreResult<HashMap<String, i64>> {
        let mut out = HashMap::with_capacity(refs.len());
        let first = if entity.is_tenant() { 2 } else { 1 };
        for part in refs.chunks(IN_LIST) {
            let sql = format!(
                "{}{}){lock}",
                self.sql.entity(entity).find_ids,
                placeholders(first, part.len())
            );
            let mut query = bind_key(self.sequential_query(sql), entity, service_id);
            for r in part {
                query = query.bind(r.clone());
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                out.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
            }
        }
        Ok(out)
    }

    /// The stored parent ids and values of several records.
    pub async fn stored_many(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        ids: &[i64],
    ) -> StoreResult<HashMap<i64, (Vec<Option<i64>>, Vec<Value>)>> {
        let mut out = HashMap::with_capacity(ids.len());
        let first = if entity.is_tenant() { 2 } else { 1 };
        let n_parents = entity.ref_fields().count();
        for part in ids.chunks(IN_LIST) {
            let sql = format!(
                "{}{})",
                self.sql.entity(entity).stored_many,
                placeholders(first, part.len())
            );
            let mut query = bind_key(self.sequential_query(sql), entity, service_id);
            for id in part {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                let id: i64 = row.try_get(0)?;
                let parents = (0..n_parents)
                    .map(|i| row.try_get::<Option<i64>, _>(i + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                let values = entity
                    .value_fields()
                    .enumerate()
                    .map(|(i, f)| read_value(&row, i + 1 + n_parents, f.kind))
                    .collect::<Result<Vec<_>, _>>()?;
                out.insert(id, (parents, values));
            }
        }
        Ok(out)
    }

    /// Adds several records of one service in multi-row statements; returns their ids
    /// in the order given.
    pub async fn insert_many(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        rows: &[NewRecord],
        via: &str,
    ) -> StoreResult<Vec<i64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.touch(service_id);
        let start = self
            .reserve_ids(entity, service_id.unwrap_or(0), rows.len() as i64)
            .await?;
        let ids: Vec<i64> = (start..start + rows.len() as i64).collect();
        let columns = self.sql.entity(entity).insert_own.clone();
        let mut fixed = Vec::new();
        if let Some(sid) = service_id.filter(|_| entity.is_tenant()) {
            fixed.push(("service_id", FieldKind::Int, Value::Int(sid)));
        }
        fixed.push(("entered_via", FieldKind::Text, Value::Text(via.to_string())));
        fixed.push(("created_at", FieldKind::Text, Value::Text(self.now.clone())));
        fixed.push(("updated_at", FieldKind::Text, Value::Text(self.now.clone())));
        let table_rows: Vec<NewRow> = rows
            .iter()
            .zip(&ids)
            .map(|(record, id)| NewRow { id: *id, record })
            .collect();
        // PostgreSQL checks each row's foreign keys with a query of its own, which at a
        // million sessions took as long as writing the rows and their indexes. Every
        // parent here came from `find_parent_ids`, which found it in this transaction
        // and locked it as those checks would (the service's row is locked below), so
        // where the role may, the checks are switched off for this statement alone;
        // every other statement, and every other writer, is still checked.
        let service = service_id.filter(|_| entity.is_tenant());
        self.bulk_insert_unchecked(table(entity), service, &fixed, &columns, &table_rows)
            .await?;
        Ok(ids)
    }

    /// Whether bulk inserts go without PostgreSQL's per-row key checks (see
    /// [`Self::insert_many`]); their rows' parents must be locked first.
    fn unchecked_inserts(&self) -> bool {
        self.batch_key_checks && self.backend == crate::Backend::Postgres
    }

    /// [`Self::bulk_insert`], without the per-row key checks where
    /// [`Self::unchecked_inserts`] (the service's row locked here, every other parent
    /// by the caller).
    async fn bulk_insert_unchecked(
        &mut self,
        table: &str,
        service_id: Option<i64>,
        fixed: &[(&str, FieldKind, Value)],
        columns: &[(String, FieldKind)],
        rows: &[impl BulkRow],
    ) -> StoreResult<()> {
        let unchecked = self.unchecked_inserts();
        if unchecked {
            if let Some(sid) = service_id {
                self.lock_service(sid).await?;
            }
            self.set_key_checks(false).await?;
        }
        self.bulk_insert(table, fixed, columns, rows).await?;
        if unchecked {
            self.set_key_checks(true).await?;
        }
        Ok(())
    }

    /// Locks a service's row until the transaction ends, as a foreign key's check
    /// would (once a transaction).
    async fn lock_service(&mut self, service_id: i64) -> StoreResult<()> {
        if self.locked_services.insert(service_id) {
            sqlx::query("SELECT 1 FROM services WHERE service_id = $1 FOR KEY SHARE")
                .bind(service_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Locks records of a service by id until the transaction ends, as foreign keys'
    /// checks would.
    async fn lock_ids(&mut self, entity: Entity, service_id: i64, ids: &[i64]) -> StoreResult<()> {
        for part in ids.chunks(IN_LIST) {
            let sql = format!(
                "SELECT 1 FROM {} WHERE service_id = $1 AND {} IN ({}) FOR KEY SHARE",
                table(entity),
                crate::sql::id_column(entity),
                placeholders(2, part.len())
            );
            let mut query = self.sequential_query(sql).bind(service_id);
            for id in part {
                query = query.bind(*id);
            }
            query.fetch_all(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Switches PostgreSQL's foreign-key checks off or on again for the rest of the
    /// transaction (see [`Self::insert_many`]).
    async fn set_key_checks(&mut self, on: bool) -> StoreResult<()> {
        let role = if on { "origin" } else { "replica" };
        sqlx::query(AssertSqlSafe(format!(
            "SET LOCAL session_replication_role = {role}"
        )))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Inserts rows into a table in statements of [`BULK_ROWS`] (see [`bulk_insert_sql`]).
    async fn bulk_insert(
        &mut self,
        table: &str,
        fixed: &[(&str, FieldKind, Value)],
        columns: &[(String, FieldKind)],
        rows: &[impl BulkRow],
    ) -> StoreResult<()> {
        let names: Vec<&str> = fixed.iter().map(|f| f.0).collect();
        let sql = bulk_insert_sql(self.backend, table, &names, columns);
        let mut cells = Vec::with_capacity(columns.len());
        let mut sizes = vec![rows.len().min(BULK_ROWS) * 8; columns.len()];
        for part in rows.chunks(BULK_ROWS) {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
            for (_, kind, value) in fixed {
                query = bind_value(query, *kind, value);
            }
            match self.backend {
                // One JSON array of rows.
                crate::Backend::Sqlite => {
                    let mut json = String::from("[");
                    for (r, row) in part.iter().enumerate() {
                        if r > 0 {
                            json.push(',');
                        }
                        json.push('[');
                        cells.clear();
                        row.cells(&mut cells);
                        for (i, v) in cells.iter().enumerate() {
                            if i > 0 {
                                json.push(',');
                            }
                            push_json_value(&mut json, *v);
                        }
                        json.push(']');
                    }
                    json.push(']');
                    query = query.bind(json);
                }
                // One array per column.
                crate::Backend::Postgres => {
                    // Sized from the last statement's, so that they are not grown
                    // (copied) a dozen times each.
                    let mut arrays: Vec<String> = sizes
                        .iter()
                        .map(|n| {
                            let mut a = String::with_capacity(n + n / 8 + 2);
                            a.push('{');
                            a
                        })
                        .collect();
                    for (r, row) in part.iter().enumerate() {
                        cells.clear();
                        row.cells(&mut cells);
                        for (c, v) in cells.iter().enumerate() {
                            if r > 0 {
                                arrays[c].push(',');
                            }
                            push_array_element(&mut arrays[c], *v);
                        }
                    }
                    for (mut a, size) in arrays.into_iter().zip(&mut sizes) {
                        a.push('}');
                        *size = a.len();
                        query = query.bind(a);
                    }
                }
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Removes one record, by id (a record entered in error). The caller has checked
    /// that nothing refers to it and journals its client to be checked again.
    pub async fn delete(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        id: i64,
    ) -> StoreResult<()> {
        self.touch(service_id);
        let sql = self.sql.entity(entity).delete.clone();
        bind_key(q(&sql), entity, service_id)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The records of `child` whose parent `parent` is the record `parent_id` of the
    /// service (a plan's goals, say), as reference and id, in reference order.
    pub async fn child_ids(
        &mut self,
        child: Entity,
        parent: Entity,
        service_id: i64,
        parent_id: i64,
    ) -> StoreResult<Vec<(String, i64)>> {
        let own = child.ref_field();
        let sql = format!(
            "SELECT {own}, {id} FROM {t} WHERE service_id = $1 AND {p} = $2 ORDER BY {own}",
            id = crate::sql::id_column(child),
            t = table(child),
            p = crate::sql::id_column(parent),
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(service_id)
            .bind(parent_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// The clients that these records belong to.
    pub async fn clients_of(
        &mut self,
        entity: Entity,
        service_id: i64,
        ids: &[i64],
    ) -> StoreResult<Vec<i64>> {
        if self.small_journal.is_some() && ids.len() <= SMALL_BUNDLE {
            return self.clients_of_few(entity, service_id, ids).await;
        }
        let mut entity = entity;
        let mut ids = ids.to_vec();
        while entity != Entity::Client {
            let Some((parent, prefix)) = self.sql.entity(entity).client_step.clone() else {
                return Ok(Vec::new());
            };
            let mut next = Vec::new();
            for part in ids.chunks(IN_LIST) {
                let sql = format!("{prefix}{})", placeholders(2, part.len()));
                let mut query = self.sequential_query(sql).bind(service_id);
                for id in part {
                    query = query.bind(*id);
                }
                for row in query.fetch_all(&mut *self.tx).await? {
                    next.push(row.try_get::<i64, _>(0)?);
                }
            }
            next.sort_unstable();
            next.dedup();
            entity = parent;
            ids = next;
        }
        Ok(ids)
    }

    /// [`StoreTx::clients_of`] for the few records of a small write: every step up to
    /// the client in one statement, each step's lookup nested in the next.
    async fn clients_of_few(
        &mut self,
        entity: Entity,
        service_id: i64,
        ids: &[i64],
    ) -> StoreResult<Vec<i64>> {
        if entity == Entity::Client || ids.is_empty() {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            return Ok(ids);
        }
        // Numbered parameters, each bound once: `$1` (the service) recurs.
        let mut sql = placeholders(2, ids.len());
        let mut step = entity;
        while step != Entity::Client {
            let Some((parent, prefix)) = self.sql.entity(step).client_step.clone() else {
                return Ok(Vec::new());
            };
            sql = format!("{prefix}{sql})");
            step = parent;
        }
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(service_id);
        for id in ids {
            query = query.bind(*id);
        }
        let mut out = Vec::new();
        for row in query.fetch_all(&mut *self.tx).await? {
            out.push(row.try_get::<i64, _>(0)?);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Notes clients to check again at the end of the run.
    pub async fn journal_add_clients(
        &mut self,
        service_id: i64,
        clients: &[i64],
    ) -> StoreResult<()> {
        if let Some(j) = &mut self.small_journal {
            j.extend(clients.iter().map(|c| (service_id, *c)));
            return Ok(());
        }
        for part in clients.chunks(max_params(self.backend) / 2) {
            let tuples: Vec<String> = (0..part.len())
                .map(|r| format!("({})", placeholders(r * 2 + 1, 2)))
                .collect();
            let sql = format!(
                "INSERT INTO import_clients (service_id, client_id) VALUES {} ON CONFLICT DO NOTHING",
                tuples.join(", ")
            );
            let mut query = self.sequential_query(sql);
            for c in part {
                query = query.bind(service_id).bind(*c);
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Records of one kind whose `column` holds one of `keys`, with their ids, in
    /// reference order (so that rules report in the same order on every backend). Each
    /// step of [`Self::client_bundles`] is one such lookup on an indexed column: with
    /// the clients' episodes found in a subquery instead, PostgreSQL hashed every
    /// episode of the service for every batch.
    ///
    /// Where `column` is a parent's, `names` gives the reference of each key.
    /// The statement that finds records of `entity` by `column` (their id or a parent's).
    fn keyed(&self, entity: Entity, column: &str) -> &crate::sql::KeyedSql {
        self.sql
            .entity(entity)
            .keyed
            .iter()
            .find(|k| k.column == column)
            .expect("records are found only by their id or a parent's")
    }

    /// Every record of a few clients of a service, in one statement: for each kind in
    /// [`BUNDLE`], its rows as one JSON array (as [`decode_json_rows`] reads them). Each
    /// kind is found through its parents' keys, as [`StoreTx::load_by`] finds them.
    async fn bundle_rows(
        &mut self,
        service_id: i64,
        clients: &[i64],
    ) -> StoreResult<Vec<(Entity, String)>> {
        let ids = placeholders(2, clients.len());
        let below = |parent: Entity, column: &str, keys: &str| {
            format!(
                "SELECT {} FROM {} WHERE service_id = $1 AND {column} IN ({keys})",
                crate::sql::id_column(parent),
                table(parent)
            )
        };
        let referrals = below(Entity::Referral, "client_id", &ids);
        let episodes = below(Entity::Episode, "referral_id", &referrals);
        let plans = below(Entity::Plan, "episode_id", &episodes);
        let columns: Vec<String> = BUNDLE
            .iter()
            .map(|&(entity, column)| {
                let keys = match column {
                    "client_id" => &ids,
                    "referral_id" => &referrals,
                    "episode_id" => &episodes,
                    _ => &plans,
                };
                let k = self.keyed(entity, column);
                let (exprs, from) = (&k.exprs, &k.from);
                match self.backend {
                    crate::Backend::Sqlite => {
                        format!("(SELECT json_group_array(json_array({exprs})) {from}{keys}))")
                    }
                    crate::Backend::Postgres => format!(
                        "(SELECT COALESCE(json_agg(json_build_array({exprs})), '[]')::text \
                         {from}{keys}))"
                    ),
                }
            })
            .collect();
        // Numbered parameters, each bound once: `$1` (the service) recurs.
        let sql = format!("SELECT {}", columns.join(", "));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(service_id);
        for c in clients {
            query = query.bind(*c);
        }
        let row = query.fetch_one(&mut *self.tx).await?;
        let mut out = Vec::with_capacity(BUNDLE.len());
        for (i, (entity, _)) in BUNDLE.iter().enumerate() {
            out.push((*entity, row.try_get::<String, _>(i)?));
        }
        Ok(out)
    }

    async fn load_by<T>(
        &mut self,
        entity: Entity,
        service_id: i64,
        column: &str,
        keys: &[i64],
        names: &HashMap<i64, String>,
        pick: impl Fn(Record) -> Option<T>,
    ) -> StoreResult<Vec<(i64, T)>> {
        let keyed = self
            .sql
            .entity(entity)
            .keyed
            .iter()
            .find(|k| k.column == column)
            .expect("records are found only by their id or a parent's");
        let (exprs, from, parent_field) =
            (keyed.exprs.clone(), keyed.from.clone(), keyed.parent_field);
        let name = |field: &str, id: Option<i64>| parent_name(entity, names, field, id);
        // SQLite hands rows over one at a time from its own thread, so its rows come as
        // one JSON array; PostgreSQL's come as rows, which it sends faster than it
        // builds JSON (5 ms against 11 ms for a page of 5,000 sessions).
        let select = match self.backend {
            crate::Backend::Sqlite => format!("json_group_array(json_array({exprs}))"),
            crate::Backend::Postgres => exprs,
        };
        let mut decoded = Vec::new();
        for part in keys.chunks(IN_LIST) {
            let sql = format!("SELECT {select} {from}{})", placeholders(2, part.len()));
            let mut query = self.sequential_query(sql).bind(service_id);
            for k in part {
                query = query.bind(*k);
            }
            match self.backend {
                crate::Backend::Sqlite => {
                    let text: String = query.fetch_one(&mut *self.tx).await?.try_get(0)?;
                    decoded.extend(decode_json_rows(entity, parent_field, &text, names)?);
                }
                crate::Backend::Postgres => {
                    let rows = query.fetch_all(&mut *self.tx).await?;
                    for row in rows {
                        let id: i64 = row.try_get(0)?;
                        let fields = entity
                            .fields()
                            .iter()
                            .enumerate()
                            .map(|(i, f)| {
                                let text = match f.kind {
                                    _ if Some(i) == parent_field => {
                                        name(f.name, row.try_get(i + 1)?)?
                                    }
                                    FieldKind::Int => row
                                        .try_get::<Option<i64>, _>(i + 1)?
                                        .map_or_else(String::new, |x| x.to_string()),
                                    FieldKind::Real => row
                                        .try_get::<Option<f64>, _>(i + 1)?
                                        .map_or_else(String::new, |x| x.to_string()),
                                    _ => {
                                        row.try_get::<Option<String>, _>(i + 1)?.unwrap_or_default()
                                    }
                                };
                                Ok((f.name, text))
                            })
                            .collect::<StoreResult<Vec<_>>>()?;
                        decoded.push((id, fields));
                    }
                }
            }
        }
        picked(entity, decoded, pick)
    }

    /// On PostgreSQL, locks these clients of a service (in key order) until this
    /// transaction ends, so that two writes about one client are checked and derived
    /// one after the other: the second then reads what the first stored, instead of
    /// writing summaries that leave it out (or, with 400 users saving at once, failing
    /// on the first's summary rows). SQLite has one writer and needs none. Only small
    /// writes take these locks: a lock on each of an import's million clients would
    /// write every client's row again.
    pub async fn lock_clients(&mut self, service_id: i64, clients: &[i64]) -> StoreResult<()> {
        if self.backend != crate::Backend::Postgres
            || self.small_journal.is_none()
            || clients.is_empty()
        {
            return Ok(());
        }
        for part in clients.chunks(max_params(self.backend) - 1) {
            let sql = format!(
                "SELECT client_id FROM clients WHERE service_id = $1 AND client_id IN ({}) \
                 ORDER BY client_id FOR UPDATE",
                placeholders(2, part.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(service_id);
            for c in part {
                query = query.bind(*c);
            }
            query.fetch_all(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Every record about each of these clients of one service (at most a few hundred
    /// at a time), read in one query per kind of record, from the clients down.
    pub async fn client_bundles(
        &mut self,
        service_id: i64,
        clients: &[i64],
    ) -> StoreResult<Vec<ClientBundle>> {
        // A form or an API request touches a client or two: every kind of their records
        // comes in one statement, instead of one statement a kind.
        let prefetched = if self.small_journal.is_some() && clients.len() <= SMALL_BUNDLE {
            self.bundle_rows(service_id, clients).await?
        } else {
            Vec::new()
        };
        macro_rules! load {
            ($entity:ident, $column:expr, $keys:expr, $names:expr) => {{
                let pick = |r| match r {
                    Record::$entity(x) => Some(x),
                    _ => None,
                };
                match prefetched.iter().find(|(e, _)| *e == Entity::$entity) {
                    Some((entity, text)) => {
                        let parent = self.keyed(*entity, $column).parent_field;
                        picked(
                            *entity,
                            decode_json_rows(*entity, parent, text, $names)?,
                            pick,
                        )?
                    }
                    None => {
                        self.load_by(Entity::$entity, service_id, $column, $keys, $names, pick)
                            .await?
                    }
                }
            }};
        }
        self.bundle_ids.clear();
        let found = load!(Client, "client_id", clients, &HashMap::new());
        let mut bundles: Vec<ClientBundle> = Vec::with_capacity(found.len());
        let mut client_names = HashMap::with_capacity(found.len());
        for (id, c) in found {
            self.bundle_ids
                .insert((Entity::Client, service_id, c.client_ref.clone()), id);
            client_names.insert(id, c.client_ref.clone());
            bundles.push(ClientBundle::new(c));
        }
        let index: HashMap<String, usize> = bundles
            .iter()
            .enumerate()
            .map(|(i, b)| (b.client.client_ref.clone(), i))
            .collect();
        let mut referral_ids = Vec::new();
        let mut referral_names = HashMap::new();
        let mut by_referral: HashMap<String, usize> = HashMap::new();
        for (id, r) in load!(Referral, "client_id", clients, &client_names) {
            if let Some(&i) = index.get(&r.client_ref) {
                referral_ids.push(id);
                referral_names.insert(id, r.referral_ref.clone());
                by_referral.insert(r.referral_ref.clone(), i);
                bundles[i].referrals.push(r);
            }
        }
        if referral_ids.is_empty() {
            return Ok(bundles);
        }
        let mut episode_ids = Vec::new();
        let mut episode_names = HashMap::new();
        let mut by_episode: HashMap<String, usize> = HashMap::new();
        for (id, e) in load!(Episode, "referral_id", &referral_ids, &referral_names) {
            if let Some(&i) = by_referral.get(&e.referral_ref) {
                episode_ids.push(id);
                episode_names.insert(id, e.episode_ref.clone());
                self.bundle_ids
                    .insert((Entity::Episode, service_id, e.episode_ref.clone()), id);
                by_episode.insert(e.episode_ref.clone(), i);
                bundles[i].episodes.push(e);
            }
        }
        if episode_ids.is_empty() {
            return Ok(bundles);
        }
        for (id, a) in load!(Assessment, "episode_id", &episode_ids, &episode_names) {
            if let Some(&i) = by_episode.get(&a.episode_ref) {
                self.bundle_ids.insert(
                    (Entity::Assessment, service_id, a.assessment_ref.clone()),
                    id,
                );
                bundles[i].assessments.push(a);
            }
        }
        let mut plan_ids = Vec::new();
        let mut plan_names = HashMap::new();
        let mut by_plan: HashMap<String, usize> = HashMap::new();
        for (id, p) in load!(Plan, "episode_id", &episode_ids, &episode_names) {
            if let Some(&i) = by_episode.get(&p.episode_ref) {
                plan_ids.push(id);
                plan_names.insert(id, p.plan_ref.clone());
                by_plan.insert(p.plan_ref.clone(), i);
                bundles[i].plans.push(p);
            }
        }
        if !plan_ids.is_empty() {
            for (_, g) in load!(Goal, "plan_id", &plan_ids, &plan_names) {
                if let Some(&i) = by_plan.get(&g.plan_ref) {
                    bundles[i].goals.push(g);
                }
            }
        }
        for (_, x) in load!(Session, "episode_id", &episode_ids, &episode_names) {
            if let Some(&i) = by_episode.get(&x.episode_ref) {
                bundles[i].sessions.push(x);
            }
        }
        for (_, x) in load!(OnwardReferral, "episode_id", &episode_ids, &episode_names) {
            if let Some(&i) = by_episode.get(&x.episode_ref) {
                bundles[i].onward_referrals.push(x);
            }
        }
        for (_, x) in load!(WiderIssue, "episode_id", &episode_ids, &episode_names) {
            if let Some(&i) = by_episode.get(&x.episode_ref) {
                bundles[i].wider_issues.push(x);
            }
        }
        Ok(bundles)
    }

    /// The ids of records of a service by reference, from the last bundles read where
    /// they are there, else from the database.
    async fn bundle_ids_of(
        &mut self,
        entity: Entity,
        service_id: i64,
        refs: &[String],
    ) -> StoreResult<HashMap<String, i64>> {
        let mut out = HashMap::with_capacity(refs.len());
        let mut missing = Vec::new();
        for r in refs {
            match self.bundle_ids.get(&(entity, service_id, r.clone())) {
                Some(id) => {
                    out.insert(r.clone(), *id);
                }
                None => missing.push(r.clone()),
            }
        }
        if !missing.is_empty() {
            out.extend(self.find_ids(entity, Some(service_id), &missing).await?);
        }
        Ok(out)
    }

    /// Whether any episode summary of the service is stored.
    pub async fn has_summaries(&mut self, service_id: i64) -> StoreResult<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM episode_summaries WHERE service_id = $1 LIMIT 1")
                .bind(service_id)
                .fetch_optional(&mut *self.tx)
                .await?
                .is_some(),
        )
    }

    /// How many episode summaries are stored, of every service.
    pub async fn summary_count(&mut self) -> StoreResult<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM episode_summaries")
            .fetch_one(&mut *self.tx)
            .await?
            .try_get(0)?;
        Ok(n as u64)
    }

    /// Rewrites what is derived from several clients' records: the BMI of each
    /// assessment and one summary row per episode, replacing the clients' stored
    /// summaries unless the caller knows they have none (`replace` false). Returns how
    /// many more summaries are stored than before.
    pub async fn save_derived_many(
        &mut self,
        service_id: i64,
        clients: &[i64],
        bmi: &[DerivedBmi],
        summaries: &[EpisodeSummary],
        replace: bool,
    ) -> StoreResult<i64> {
        let mut added = summaries.len() as i64;
        self.touch(Some(service_id));
        // BMI: one UPDATE per batch, with the values in a CASE.
        let refs: Vec<String> = bmi.iter().map(|b| b.assessment_ref.clone()).collect();
        let ids = self
            .bundle_ids_of(Entity::Assessment, service_id, &refs)
            .await?;
        for part in bmi.chunks(IN_LIST / 3) {
            let mut cases_bmi = String::new();
            let mut cases_flag = String::new();
            let mut list = Vec::new();
            let mut n = 2;
            let mut binds: Vec<(i64, Option<f64>, i64)> = Vec::new();
            for b in part {
                let Some(id) = ids.get(&b.assessment_ref) else {
                    continue;
                };
                cases_bmi.push_str(&format!(" WHEN ${n} THEN ${}", n + 1));
                cases_flag.push_str(&format!(" WHEN ${n} THEN ${}", n + 2));
                list.push(format!("${n}"));
                n += 3;
                binds.push((*id, b.bmi, i64::from(b.flagged)));
            }
            if binds.is_empty() {
                continue;
            }
            let sql = format!(
                "UPDATE assessments SET bmi = CASE assessment_id{cases_bmi} END, \
                 bmi_flagged = CASE assessment_id{cases_flag} END \
                 WHERE service_id = $1 AND assessment_id IN ({})",
                list.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(service_id);
            for (id, value, flag) in binds {
                query = bind_opt_real(query.bind(id), value).bind(flag);
            }
            query.execute(&mut *self.tx).await?;
        }

        for part in clients.chunks(IN_LIST).filter(|_| replace) {
            let sql = format!(
                "DELETE FROM episode_summaries WHERE service_id = $1 AND client_id IN ({})",
                placeholders(2, part.len())
            );
            let mut query = self.sequential_query(sql).bind(service_id);
            for c in part {
                query = query.bind(*c);
            }
            added -= query.execute(&mut *self.tx).await?.rows_affected() as i64;
        }
        let episode_refs: Vec<String> = summaries.iter().map(|s| s.episode_ref.clone()).collect();
        let episode_ids = self
            .bundle_ids_of(Entity::Episode, service_id, &episode_refs)
            .await?;
        let client_refs: Vec<String> = summaries.iter().map(|s| s.client_ref.clone()).collect();
        let client_ids = self
            .bundle_ids_of(Entity::Client, service_id, &client_refs)
            .await?;
        if let Some(first) = summaries.first() {
            // Counts are whole numbers; the rest (references, codes, dates) text.
            let mut columns = vec![
                ("episode_id".to_string(), FieldKind::Int),
                ("client_id".to_string(), FieldKind::Int),
            ];
            columns.extend(
                EpisodeSummary::COLUMNS
                    .iter()
                    .zip(first.values())
                    .map(|(c, v)| {
                        let kind = if matches!(v, Value::Int(_)) {
                            FieldKind::Int
                        } else {
                            FieldKind::Text
                        };
                        (c.to_string(), kind)
                    }),
            );
            let rows: Vec<Vec<Value>> = summaries
                .iter()
                .map(|s| {
                    let id = |x: Option<&i64>| x.map_or(Value::Null, |i| Value::Int(*i));
                    let mut row = vec![
                        id(episode_ids.get(&s.episode_ref)),
                        id(client_ids.get(&s.client_ref)),
                    ];
                    row.extend(s.values());
                    row
                })
                .collect();
            // As for records (see `insert_many`), without a check of each row's keys
            // where the role may: the rows' clients and episodes are locked first, as
            // those checks would lock them.
            if self.unchecked_inserts() {
                let mut ids: Vec<i64> = client_ids.values().copied().collect();
                ids.sort_unstable();
                self.lock_ids(Entity::Client, service_id, &ids).await?;
                let mut ids: Vec<i64> = episode_ids.values().copied().collect();
                ids.sort_unstable();
                self.lock_ids(Entity::Episode, service_id, &ids).await?;
            }
            self.bulk_insert_unchecked(
                "episode_summaries",
                Some(service_id),
                &[("service_id", FieldKind::Int, Value::Int(service_id))],
                &columns,
                &rows,
            )
            .await?;
        }
        Ok(added)
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
        self.touch(service_id);
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
        self.touch(service_id);
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
        Ok(self.clients_of(entity, service_id, &[id]).await?.pop())
    }

    async fn client_bundle(
        &mut self,
        service_id: i64,
        client_id: i64,
    ) -> StoreResult<ClientBundle> {
        self.client_bundles(service_id, &[client_id])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt {
                entity: "client",
                reference: format!("internal id {client_id}"),
                reason: "not found".into(),
            })
    }

    async fn save_derived(
        &mut self,
        service_id: i64,
        client_id: i64,
        bmi: &[DerivedBmi],
        summaries: &[EpisodeSummary],
    ) -> StoreResult<()> {
        self.save_derived_many(service_id, &[client_id], bmi, summaries, true)
            .await?;
        Ok(())
    }

    async fn audit(&mut self, entry: &AuditEntry) -> StoreResult<()> {
        insert_audit(&mut self.tx, entry).await
    }
}
