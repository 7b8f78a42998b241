//! Storage for the dataset on SQLite (embedded, the default) and PostgreSQL, through
//! one SQL text run by sqlx's `Any` driver. The backend is chosen once, from the
//! database URL. Each backend has its own folder of append-only migrations.
//!
//! The importer, the web application and the reports use the [`RecordStore`] trait; the
//! SQL for each entity is generated from the field lists of the domain crate, so a new
//! field is declared once.

mod audit;
mod audit_queue;
mod erase;
mod merge;
mod migrate;
pub mod pages;
mod refdata;
mod restrict;
mod sql;
mod subject;
mod tx;

pub use audit::{AuditAnchor, AuditVerification, ERASE_ACTION};
pub use erase::{DEFAULT_RETENTION_YEARS, Due, EraseError, Erasure};
pub use refdata::{IMD_YEAR, LoadedFile, REFERENCE_TABLES};
pub use restrict::Restriction;
pub use sql::client_chain_parent;
pub use subject::{Processing, SubjectAccess};
pub use tx::{AuditEntry, NewRecord, StoreTx};

use dcrs_domain::Value;
use dcrs_domain::record::{Entity, FieldKind};
use dcrs_domain::rules::{ClientBundle, DerivedBmi, EpisodeSummary};
use futures_util::TryStreamExt;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::sync::Arc;

/// What can go wrong in storage. Messages never carry record contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one this program understands.
    #[error(
        "the database address {0:?} is not understood; use sqlite://PATH or postgres://USER@HOST/DB"
    )]
    BadUrl(String),
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// An applied migration no longer matches the program's copy.
    #[error("migration {0} was changed after it was applied; migrations are append-only")]
    MigrationChanged(String),
    /// The database has migrations this program does not know (it is older than the data).
    #[error("the database was set up by a newer version of dcrs (migration {0} is unknown here)")]
    UnknownMigration(i64),
    /// A listing asked to filter on a field the entity does not have.
    #[error("a {0} has no field {1:?}")]
    NoField(&'static str, String),
    /// A stored value could not be read back as a record (a corrupted database).
    #[error("a stored {entity} ({reference}) could not be read back: {reason}")]
    Corrupt {
        entity: &'static str,
        reference: String,
        reason: String,
    },
}

/// A condition on one field of a listing (`Database::list_records`); values are compared
/// as they are written in files, so dates compare in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The field equals the value.
    Equals(String, String),
    /// The field is the value or later.
    From(String, String),
    /// The field is the value or earlier.
    To(String, String),
}

/// Result of a storage operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded database, one file.
    Sqlite,
    /// PostgreSQL, for a national multi-service deployment.
    Postgres,
}

/// A connection pool to a migrated database.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    sql: Arc<sql::SqlSet>,
    /// SQLite has one writer at a time. Writers of this process queue here, in order of
    /// arrival, before they ask SQLite for its write lock: waiting inside SQLite means
    /// its busy handler, which sleeps in steps of up to 100 ms and holds a connection
    /// meanwhile. PostgreSQL locks rows, so it has no gate.
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// SQLite: the one connection that writes, so that a writer never waits for a
    /// connection behind readers. PostgreSQL writes through the main pool.
    writer: Option<AnyPool>,
    /// PostgreSQL: the connections small writes take their ids through (see
    /// `StoreTx::take_ids`).
    id_pool: Option<tx::IdSource>,
    /// Audit entries written on their own go through one task that commits them in
    /// groups (`audit_queue`); started on first use, on the runtime of that use.
    audit_queue: Arc<std::sync::OnceLock<audit_queue::Queue>>,
}

/// What a process does with the database, which decides how PostgreSQL plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Workload {
    /// Commands: imports, reports, exports. Each statement is planned for its values,
    /// which matters when a whole year of a national deployment is counted.
    #[default]
    Batch,
    /// The web server: many short statements, each planned once per connection.
    Serving,
}

/// A write made straight on the pool, outside a [`StoreTx`]: it waits for this process's
/// turn to write first (see [`Database::write_gate`]).
pub trait WriteQuery: Sized {
    /// Runs the statement on `db`'s pool in the writers' queue.
    fn execute_write(
        self,
        db: &Database,
    ) -> impl std::future::Future<Output = Result<sqlx::any::AnyQueryResult, sqlx::Error>> + Send;
}

impl<'q> WriteQuery for sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    async fn execute_write(self, db: &Database) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
        let _gate = db.write_gate().await;
        self.execute(db.write_pool()).await
    }
}

/// How long a writer waits in the queue before trying SQLite's lock itself.
const GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits for the turn to write at `gate` (none on PostgreSQL).
async fn gated(gate: Option<Arc<tokio::sync::Mutex<()>>>) -> WriteGate {
    let gate = gate?;
    // A writer that waits this long is stuck behind something (a long import); it goes
    // on to SQLite's own lock, whose busy timeout then decides, as it would without
    // the gate.
    match tokio::time::timeout(GATE_WAIT, gate.lock_owned()).await {
        Ok(g) => Some(g),
        Err(_) => {
            tracing::warn!("waited {GATE_WAIT:?} for the turn to write; going on to SQLite's lock");
            None
        }
    }
}

/// A place in the queue of this process's SQLite writers (see [`Database::write_gate`]).
pub type WriteGate = Option<tokio::sync::OwnedMutexGuard<()>>;

/// The URL used when none is given: `dcrs.db` in the working directory.
pub const DEFAULT_URL: &str = "sqlite://dcrs.db";

impl Database {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_for(url, Workload::Batch).await
    }

    /// Opens the database for a kind of work (see [`Workload`]).
    pub async fn connect_for(url: &str, workload: Workload) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(url)?;
        let options = AnyPoolOptions::new()
            // SQLite: four readers (the writer has a connection of its own, below).
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        // Each commit reaches the disk before it is acknowledged: NORMAL
                        // could lose the last commits a trainer was told were saved in a
                        // power cut (measured cost in docs/BENCHMARKS.md).
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        // The import journal is a temporary table; keep it off disk.
                        conn.execute("PRAGMA temp_store = MEMORY").await?;
                        // 64 MB of page cache per connection (the default is 2 MB): a large
                        // import otherwise spills its pages to the WAL and reads them back.
                        conn.execute("PRAGMA cache_size = -65536").await?;
                    } else if workload == Workload::Serving {
                        // A server runs the same short statements again and again (a
                        // dashboard's counts differ only in their parameters): each is
                        // planned once per connection. Custom plans, PostgreSQL's usual
                        // choice for them, cost as much to make as to run.
                        conn.execute("SET plan_cache_mode = force_generic_plan")
                            .await?;
                    }
                    Ok(())
                })
            });
        if backend == Backend::Sqlite {
            create_private(&url);
        }
        let pool = options.clone().connect(&url).await?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        migrate::run(&pool, backend).await?;
        audit::open_service_chains(&pool).await?;
        let (writer, id_pool) = match backend {
            Backend::Sqlite => (Some(options.max_connections(1).connect(&url).await?), None),
            // Small writes take their ids through connections of their own: a write
            // holding one of the main pool's connections must never wait for another
            // (with 400 users every connection was held by a write waiting for one).
            Backend::Postgres => {
                let ids = options.max_connections(2).connect_lazy(&url)?;
                (None, Some(tx::IdSource::new(ids)))
            }
        };
        Ok(Database {
            pool,
            backend,
            sql: Arc::new(sql::SqlSet::new()),
            gate: (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(()))),
            writer,
            id_pool,
            audit_queue: Arc::new(std::sync::OnceLock::new()),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for modules (such as reports) that run their own read queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once, so two
    /// writers queue rather than fail.
    pub async fn begin(&self) -> StoreResult<StoreTx> {
        let gate = self.write_gate().await;
        let tx = match self.backend {
            Backend::Sqlite => self.write_pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        let tx = StoreTx::new(tx, self.sql.clone(), self.backend);
        let tx = match &self.id_pool {
            Some(pool) => tx.with_id_pool(pool),
            None => tx,
        };
        Ok(tx.gated(gate))
    }

    /// The pool that writes go through: one connection on SQLite (take its turn with
    /// [`Database::write_gate`] first), the main pool on PostgreSQL.
    pub fn write_pool(&self) -> &AnyPool {
        self.writer.as_ref().unwrap_or(&self.pool)
    }

    /// Waits for this process's turn to write (SQLite; at once on PostgreSQL). A write
    /// made straight on the pool holds the returned value until it has committed.
    pub async fn write_gate(&self) -> WriteGate {
        gated(self.gate.clone()).await
    }

    /// The turn to write if nobody holds it now (always on PostgreSQL), for writes that
    /// are worth making only if they cost no wait, such as keeping report counts.
    pub fn try_write_gate(&self) -> Option<WriteGate> {
        match &self.gate {
            Some(g) => g.clone().try_lock_owned().ok().map(Some),
            None => Some(None),
        }
    }

    /// Streams every record of `entity` as file fields, ordered by service and reference
    /// so that the same data always export the same way.
    pub async fn for_each_row(
        &self,
        entity: Entity,
        mut each: impl FnMut(Vec<(&'static str, String)>),
    ) -> StoreResult<u64> {
        let q = self.sql.entity(entity).export.clone();
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(q)).fetch(&self.pool);
        let mut n = 0;
        while let Some(row) = rows.try_next().await? {
            each(decode_fields(entity, &row)?);
            n += 1;
        }
        Ok(n)
    }

    /// One page of an entity's records as file fields, in order of reference: those of one
    /// service (tenant records), with references after `after`, matching every condition.
    /// Conditions are on text and reference fields (numbers are not compared as text).
    pub async fn list_records(
        &self,
        entity: Entity,
        service_id: Option<i64>,
        conditions: &[Condition],
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Vec<(&'static str, String)>>> {
        let sql = self.sql.entity(entity);
        let own = format!("t.{}", entity.ref_field());
        let service_id = service_id.filter(|_| entity.is_tenant());
        // The service id (a number) is $1 when there is one; text values follow.
        let mut wheres = Vec::new();
        if service_id.is_some() {
            wheres.push("t.service_id = $1".to_string());
        }
        let mut texts: Vec<String> = Vec::new();
        let place = |v: &str, texts: &mut Vec<String>| {
            texts.push(v.to_string());
            format!("${}", texts.len() + usize::from(service_id.is_some()))
        };
        if let Some(a) = after {
            wheres.push(format!("{own} > {}", place(a, &mut texts)));
        }
        for c in conditions {
            let (field, op, value) = match c {
                Condition::Equals(f, v) => (f, "=", v),
                Condition::From(f, v) => (f, ">=", v),
                Condition::To(f, v) => (f, "<=", v),
            };
            let i = entity
                .fields()
                .iter()
                .position(|x| x.name == field.as_str())
                .ok_or_else(|| StoreError::NoField(entity.label(), field.clone()))?;
            let p = place(value, &mut texts);
            wheres.push(format!("{} {op} {p}", sql.field_exprs[i]));
        }
        let mut q = sql.listing.clone();
        if !wheres.is_empty() {
            q.push_str(" WHERE ");
            q.push_str(&wheres.join(" AND "));
        }
        q.push_str(&format!(" ORDER BY {own} LIMIT {}", limit.max(0)));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(q));
        if let Some(id) = service_id {
            query = query.bind(id);
        }
        for t in texts {
            query = query.bind(t);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|r| decode_fields(entity, r)).collect()
    }

    /// A page of a service's clients in order of reference: (internal id, reference).
    pub async fn client_page(
        &self,
        service_id: i64,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT client_id, client_ref FROM clients WHERE service_id = $1 AND client_ref > $2 \
             ORDER BY client_ref LIMIT $3",
        )
        .bind(service_id)
        .bind(after.unwrap_or("").to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every record about these clients of one service (a few hundred at a time), read
    /// in one transaction that takes no write lock.
    pub async fn client_bundles(
        &self,
        service_id: i64,
        clients: &[i64],
    ) -> StoreResult<Vec<dcrs_domain::ClientBundle>> {
        let tx = self.pool.begin().await?;
        let mut tx = StoreTx::new(tx, self.sql.clone(), self.backend);
        let bundles = tx.client_bundles(service_id, clients).await?;
        tx.rollback().await?;
        Ok(bundles)
    }

    /// How many records of each entity are stored.
    pub async fn counts(&self) -> StoreResult<Vec<(Entity, i64)>> {
        let mut out = Vec::new();
        for e in Entity::ALL {
            let q = format!("SELECT COUNT(*) FROM {}", sql::table(e));
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .fetch_one(&self.pool)
                .await?;
            out.push((e, n));
        }
        Ok(out)
    }

    /// Writes one audit entry, returning once it has committed. Entries from callers
    /// that arrive together share a transaction (see `audit_queue`).
    pub async fn audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let queue = self.audit_queue.get_or_init(|| {
            let gate = self.gate.clone();
            audit_queue::start(self.write_pool().clone(), move || {
                let gate = gate.clone();
                async move { gated(gate).await }
            })
        });
        match audit_queue::submit(queue, entry).await {
            Some(done) => done,
            // The task is gone (its runtime ended): write the entry here.
            None => {
                let _gate = self.write_gate().await;
                audit_queue::write(self.write_pool(), &[entry]).await
            }
        }
    }

    /// Checks every audit chain: positions run 1, 2, 3… without a gap, each entry names
    /// the hash of the one before, each hash matches the entry's fields, entries were
    /// written in the order of their positions, and each chain's last entry is its
    /// recorded head. Any edit, deletion or reordering made directly in the database
    /// breaks one of these.
    pub async fn verify_audit(&self) -> StoreResult<AuditVerification> {
        audit::verify(&self.pool).await
    }

    /// As [`Database::verify_audit`], and also against chain heads kept outside the
    /// database (an anchor file from [`Database::audit_anchors`]).
    pub async fn verify_audit_against(
        &self,
        anchors: &[AuditAnchor],
    ) -> StoreResult<AuditVerification> {
        let mut v = audit::verify(&self.pool).await?;
        audit::check_anchors(&self.pool, anchors, &mut v).await?;
        Ok(v)
    }

    /// Every audit chain's head now, for an operator to keep outside the database.
    pub async fn audit_anchors(&self) -> StoreResult<Vec<AuditAnchor>> {
        audit::anchors(&self.pool).await
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        if let Some(w) = &self.writer {
            w.close().await;
        }
        self.pool.close().await;
    }
}

/// Creates a new SQLite database file readable and writable by its owner alone. SQLite
/// gives the -wal and -shm files it makes beside it the same permissions. A file that
/// exists is left as it is; one that cannot be made here is left for SQLite to report.
fn create_private(url: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" || std::path::Path::new(path).exists() {
        return;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let _ = options.open(path);
}

fn normalise_url(url: &str) -> StoreResult<(Backend, String)> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        if path.is_empty() {
            return Err(StoreError::BadUrl(url.to_string()));
        }
        let url = if path.contains('?') {
            format!("sqlite://{path}")
        } else {
            format!("sqlite://{path}?mode=rwc")
        };
        Ok((Backend::Sqlite, url))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_string()))
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}

/// Reads one exported row (service_ref, own ref, values and parent refs as text).
fn decode_fields(entity: Entity, row: &AnyRow) -> StoreResult<Vec<(&'static str, String)>> {
    entity
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let v = match f.kind {
                FieldKind::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
                FieldKind::Real => row.try_get::<Option<f64>, _>(i)?.map(Value::Real),
                _ => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
            };
            Ok((f.name, v.unwrap_or(Value::Null).to_field_text()))
        })
        .collect()
}

/// What the importer, the web application and the API need from storage, inside one
/// transaction. Implemented by [`StoreTx`] for both backends.
#[allow(async_fn_in_trait)]
pub trait RecordStore {
    /// The internal id of the record with this reference (within the service for tenant records).
    async fn find_id(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        reference: &str,
    ) -> StoreResult<Option<i64>>;
    /// The stored parent ids and values of a record, in the order of the domain's field lists.
    async fn stored(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        id: i64,
    ) -> StoreResult<(Vec<Option<i64>>, Vec<Value>)>;
    /// Adds a record; returns its new id.
    async fn insert(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        reference: &str,
        parents: &[Option<i64>],
        values: &[Value],
        via: &str,
    ) -> StoreResult<i64>;
    /// Replaces a record's parents and values.
    async fn update(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        id: i64,
        parents: &[Option<i64>],
        values: &[Value],
    ) -> StoreResult<()>;
    /// The client a tenant record belongs to, if any.
    async fn client_of(
        &mut self,
        entity: Entity,
        service_id: i64,
        id: i64,
    ) -> StoreResult<Option<i64>>;
    /// Every record about one client.
    async fn client_bundle(&mut self, service_id: i64, client_id: i64)
    -> StoreResult<ClientBundle>;
    /// Stores the values derived from a client's records (BMI, episode summaries).
    async fn save_derived(
        &mut self,
        service_id: i64,
        client_id: i64,
        bmi: &[DerivedBmi],
        summaries: &[EpisodeSummary],
    ) -> StoreResult<()>;
    /// Records an audit entry in this transaction.
    async fn audit(&mut self, entry: &AuditEntry) -> StoreResult<()>;
}
