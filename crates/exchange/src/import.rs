//! Import: read every file of a directory, row by row, into domain records; write them
//! in one transaction (parents first); then check the cross-record rules for every
//! client the import touched and rewrite what is derived from their records. Anything
//! rejected, or a dry run, rolls the whole transaction back, so an import is
//! all-or-nothing and the stored data are never left half-changed.
//!
//! Rows are streamed in chunks of a few thousand, each written with a few statements
//! (references resolved, stored records compared, new ones inserted in bulk). What the
//! run must remember grows slowly: the clients it touched are kept in a temporary table
//! of the transaction, and the file line of each record written (to name it in a
//! rejection) in memory, about 40 bytes a record.

use chrono::NaiveDate;
use dcrs_domain::field::from_spreadsheet_safe;
use dcrs_domain::record::{Entity, Record, parse_record};
use dcrs_domain::rules::{RuleSettings, check_client, derive_bmi, summarise_episodes};
use dcrs_domain::{FieldSource, Value};
use dcrs_store::{AuditEntry, Database, NewRecord, RecordStore, StoreError, StoreTx};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How to run an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Check everything and report, then write nothing.
    pub dry_run: bool,
    /// Today in UK local time: no record may be dated after it.
    pub today: NaiveDate,
    /// Settings of the cross-record rules.
    pub rules: RuleSettings,
    /// Who runs the import, for the audit trail.
    pub actor: String,
    /// Only add records: a record whose reference is already stored is rejected instead
    /// of updated (the API's create, which must never overwrite).
    pub only_new: bool,
}

/// Where an import has got to, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// `reading` files, then `checking` clients.
    pub phase: &'static str,
    /// Bytes read or clients checked so far.
    pub done: u64,
    /// Bytes or clients in all.
    pub total: u64,
}

/// One rejected row (or file), with everything needed to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The file name, such as `clients.csv`.
    pub file: String,
    /// The line in the file (1 is the header); `None` for a record already stored.
    pub line: Option<u64>,
    /// The record's reference, when known.
    pub record: Option<String>,
    /// The field at fault.
    pub field: String,
    /// Its value.
    pub value: String,
    /// Why, in plain English.
    pub reason: String,
}

/// Every part of a rejection is printed with its control characters escaped: a record
/// reference or a column name in a file can hold a terminal's escape sequences.
impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}", printable(&self.file))?,
            None => write!(f, "{}", printable(&self.file))?,
        }
        if let Some(r) = &self.record {
            write!(f, ", record {}", printable(r))?;
        }
        let field = printable(&self.field);
        let reason = printable(&self.reason);
        if self.value.is_empty() {
            write!(f, ": {field} (blank): {reason}")
        } else {
            write!(f, ": {field} = {:?}: {reason}", self.value)
        }
    }
}

/// Text with its control characters written as escapes (`\u{1b}`), for a terminal.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// Problems listed in a report; past this many, the rest are counted. A file that is not
/// the dataset at all (a header of a million columns, say) would otherwise list one per
/// cell and fill the operator's screen and the memory.
pub const MAX_LISTED: usize = 1_000;

/// Rows added, updated, unchanged and removed (entered in error) for one entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntityCounts {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
}

/// What an import did (or, when rejected or a dry run, would have done).
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Counts per entity, for the files present.
    pub counts: Vec<(Entity, EntityCounts)>,
    /// Every rejected row.
    pub rejections: Vec<Rejection>,
    /// Rows not checked because a record they refer to was rejected.
    pub not_checked: u64,
    /// Problems found beyond the first [`MAX_LISTED`], counted but not listed.
    pub not_listed: u64,
    /// The submission's one-time key was used before: nothing was written, and this is
    /// the answer stored with the first (see [`OnceKey`]).
    pub already: Option<String>,
    /// Rows accepted with a warning (an unknown postcode, a BMI outside 10–90).
    pub warnings: Vec<Rejection>,
    /// Whether the changes were written.
    pub committed: bool,
    /// Things the operator should know that concern the whole run.
    pub notes: Vec<String>,
}

impl ImportReport {
    /// Counts over all entities.
    pub fn totals(&self) -> EntityCounts {
        self.counts
            .iter()
            .fold(EntityCounts::default(), |a, (_, c)| EntityCounts {
                added: a.added + c.added,
                updated: a.updated + c.updated,
                unchanged: a.unchanged + c.unchanged,
                removed: a.removed + c.removed,
            })
    }
}

/// Why an import could not run at all (as opposed to rows being rejected).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The directory could not be read.
    #[error("could not read {0}: {1}")]
    Io(String, std::io::Error),
    /// The directory holds none of the dataset's files.
    #[error(
        "{0} holds none of the dataset's files (organisations.csv, services.csv, clients.csv, …)"
    )]
    NoFiles(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A CSV row as field name → text, for the domain's parser.
struct CsvRow<'a> {
    headers: &'a [String],
    record: &'a csv::StringRecord,
}

impl FieldSource for CsvRow<'_> {
    /// A cell as stored: the apostrophe an export puts before text a spreadsheet would
    /// run as a formula is taken off (`from_spreadsheet_safe`).
    fn field(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .position(|h| h == name)
            .and_then(|i| self.record.get(i))
            .map(from_spreadsheet_safe)
    }
}

/// Imports every dataset file in `dir`. Rows are rejected, not errors: the report lists
/// them and nothing is written unless there are none (and this is not a dry run).
pub async fn import_dir(
    db: &Database,
    dir: &Path,
    options: &ImportOptions,
    mut progress: impl FnMut(Progress),
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let files = find_files(dir, &mut report)?;
    if files.is_empty() && report.rejections.is_empty() {
        return Err(ImportError::NoFiles(dir.display().to_string()));
    }
    let total_bytes: u64 = files
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();

    let mut tx = db.begin().await?;
    tx.start_journal().await?;
    let mut run = Run::new(tx, options, "import", report);
    for (entity, path) in &files {
        let counts = run
            .import_file(*entity, path, total_bytes, &mut progress)
            .await?;
        run.report.counts.push((*entity, counts));
    }
    run.check_clients(&mut progress).await?;

    let Run {
        tx,
        report,
        mut pending_audit,
        ..
    } = run;
    let ok = report.rejections.is_empty();
    let run_entry = |committed: bool| {
        let totals = report.totals();
        AuditEntry {
            actor: options.actor.clone(),
            action: if options.dry_run {
                "import.dry_run".into()
            } else {
                "import".into()
            },
            detail: Some(
                serde_json::json!({
                    "directory": dir.display().to_string(),
                    "committed": committed,
                    "added": totals.added,
                    "updated": totals.updated,
                    "unchanged": totals.unchanged,
                    "rejected": report.rejections.len() as u64 + report.not_listed,
                })
                .to_string(),
            ),
            ..Default::default()
        }
    };
    // What was written and the entry saying so commit together: an import cut off just
    // after it committed cannot leave records without their entry.
    let committed = ok && !options.dry_run;
    let entry = run_entry(committed);
    if committed {
        pending_audit.push(entry);
        tx.commit_audited(&pending_audit).await?;
    } else {
        tx.rollback().await?;
        db.audit(&entry).await?;
    }
    let mut report = report;
    report.committed = committed;
    Ok(report)
}

/// One record from a form or an API request: its fields by name. A field left out is
/// blank.
pub type Fields = HashMap<&'static str, String>;

/// A submission's one-time key (unique for its sender), with what to answer a repeat of
/// it: the address of what the first stored.
#[derive(Debug, Clone)]
pub struct OnceKey {
    /// The key the form or request carried.
    pub key: String,
    /// What a repeat is answered with.
    pub answer: String,
}

/// Writes records given as fields by name (from a form or an API request) through
/// exactly the checks of a file import: every rule of the dataset, across records too,
/// all or nothing. Records added are marked as entered `via` (such as `application`) and
/// each is audited with its values, as each update is with its values before and after.
/// Problems come back as an import's do, named by entity (`file`), record and field, with
/// `line` the record's place among those given of its entity (from 1): each caller words
/// them for its own users (the field on a form, a JSON pointer).
pub async fn write_records(
    db: &Database,
    records: &[(Entity, Vec<Fields>)],
    options: &ImportOptions,
    via: &'static str,
    once: Option<&OnceKey>,
) -> Result<ImportReport, ImportError> {
    let mut tx = db.begin().await?;
    if let Some(answer) = used_before(&mut tx, options, once).await? {
        tx.rollback().await?;
        return Ok(ImportReport {
            already: Some(answer),
            ..Default::default()
        });
    }
    let mut run = Run::new(tx, options, via, ImportReport::default());
    run.tx.start_small_journal();
    let mut ordered: Vec<&(Entity, Vec<Fields>)> = records.iter().collect();
    ordered.sort_by_key(|(e, _)| Entity::ALL.iter().position(|x| x == e));
    for (entity, rows) in ordered {
        let parsed: Vec<Parsed> = rows
            .iter()
            .enumerate()
            .map(|(i, fields)| parse_row(*entity, fields, i as u64 + 1, options.today))
            .collect();
        let mut counts = EntityCounts::default();
        run.take_rows(*entity, parsed, &mut counts).await?;
        run.report.counts.push((*entity, counts));
    }
    run.check_clients(&mut |_| {}).await?;
    run.finish().await
}

/// What the first use of `actor`'s one-time key answered, if it was used before; read
/// without taking the key (a write takes it in its own transaction).
pub async fn answered_before(
    db: &Database,
    actor: &str,
    key: &str,
) -> Result<Option<String>, ImportError> {
    let answer = sqlx::query_scalar("SELECT answer FROM once_keys WHERE once_key = $1")
        .bind(once_key(actor, key))
        .fetch_optional(db.pool())
        .await
        .map_err(StoreError::from)?;
    Ok(answer)
}

/// A one-time key as stored: each user's keys are their own.
fn once_key(actor: &str, key: &str) -> String {
    format!("{actor}:{key}")
}

/// Takes a submission's one-time key, first in the write's own transaction (a second
/// writer with the same key waits for the first to end, then finds it taken): `Some`
/// with what the first answered when the key was used before.
async fn used_before(
    tx: &mut StoreTx,
    options: &ImportOptions,
    once: Option<&OnceKey>,
) -> Result<Option<String>, ImportError> {
    let Some(once) = once else { return Ok(None) };
    let key = once_key(&options.actor, &once.key);
    let taken = sqlx::query(
        "INSERT INTO once_keys (once_key, actor, answer, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (once_key) DO NOTHING",
    )
    .bind(key.clone())
    .bind(options.actor.clone())
    .bind(once.answer.clone())
    .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    .execute(tx.conn())
    .await
    .map_err(StoreError::from)?
    .rows_affected()
        == 1;
    if taken {
        return Ok(None);
    }
    let answer: String = sqlx::query_scalar("SELECT answer FROM once_keys WHERE once_key = $1")
        .bind(key)
        .fetch_one(tx.conn())
        .await
        .map_err(StoreError::from)?;
    Ok(Some(answer))
}

/// The kinds of record that can be removed as entered in error: those no other record
/// refers to.
pub const REMOVABLE: [Entity; 6] = [
    Entity::Assessment,
    Entity::Plan,
    Entity::Session,
    Entity::Goal,
    Entity::OnwardReferral,
    Entity::WiderIssue,
];

/// A record entered in error, to remove: its kind, service and reference, and why.
#[derive(Debug, Clone)]
pub struct Removal {
    pub entity: Entity,
    pub service_ref: String,
    pub record_ref: String,
    /// Why it was entered in error, in the words of whoever removes it.
    pub reason: String,
}

/// Removes records entered in error through the write path: each one's values go into
/// the audit log (action `record.remove`, with the reason), its client's records are
/// checked again against the cross-record rules and their derived fields and summaries
/// rewritten, and the service's reports recount. Refused, with nothing changed, where a
/// record is not found, is of a kind others refer to, or its going would break a rule
/// (a closed episode's last attended session, say).
pub async fn remove_records(
    db: &Database,
    removals: &[Removal],
    options: &ImportOptions,
    once: Option<&OnceKey>,
) -> Result<ImportReport, ImportError> {
    let mut tx = db.begin().await?;
    if let Some(answer) = used_before(&mut tx, options, once).await? {
        tx.rollback().await?;
        return Ok(ImportReport {
            already: Some(answer),
            ..Default::default()
        });
    }
    let mut run = Run::new(tx, options, "application", ImportReport::default());
    run.tx.start_small_journal();
    for r in removals {
        let entity = r.entity;
        let refuse = |run: &mut Run, field: &str, value: &str, reason: String| {
            run.reject(entity, None, Some(&r.record_ref), field, value, reason);
        };
        if !REMOVABLE.contains(&entity) {
            let reason = format!(
                "a {} cannot be removed as entered in error, because other records refer to it; correct it instead",
                entity.label()
            );
            refuse(&mut run, "(record)", &r.record_ref, reason);
            continue;
        }
        let Some(sid) = run
            .tx
            .find_id(Entity::Service, None, &r.service_ref)
            .await?
        else {
            let reason = "no service has this reference".to_string();
            refuse(&mut run, "service_ref", &r.service_ref, reason);
            continue;
        };
        let Some(id) = run.tx.find_id(entity, Some(sid), &r.record_ref).await? else {
            let reason = format!("the service has no {} with this reference", entity.label());
            refuse(&mut run, "(record)", &r.record_ref, reason);
            continue;
        };
        // Its client is checked again once it has gone.
        let clients = run.tx.clients_of(entity, sid, &[id]).await?;
        run.tx.journal_add_clients(sid, &clients).await?;
        // A plan's goals were entered with it and go with it, each audited.
        if entity == Entity::Plan {
            for (goal_ref, goal) in run.tx.child_ids(Entity::Goal, entity, sid, id).await? {
                remove_one(&mut run, Entity::Goal, sid, goal, &goal_ref, &r.reason).await?;
            }
        }
        remove_one(&mut run, entity, sid, id, &r.record_ref, &r.reason).await?;
    }
    if run.report.rejections.is_empty() {
        run.check_clients(&mut |_| {}).await?;
    }
    run.finish().await
}

/// Two clients of one service found to be one person: `merged` goes into `kept`.
#[derive(Debug, Clone)]
pub struct Merge {
    pub service_ref: String,
    /// The client that stays, with their details.
    pub kept: String,
    /// The client whose records move to `kept`, and who then goes.
    pub merged: String,
}

/// Merges two clients of a service through the write path: every referral of `merged`
/// (and so every episode, assessment, plan, goal, session, signposting and wider issue)
/// moves to `kept`, `merged` goes, and `kept`'s records are checked again against the
/// cross-record rules, their derived fields and summaries rewritten, and the service's
/// reports recount. Audited as `client.merge`, with the merged client's details. Refused,
/// with nothing changed, where either is not found, they are the same, either's
/// processing is restricted, or the merged records would break a rule (two episodes
/// open at once, say).
pub async fn merge_clients(
    db: &Database,
    m: &Merge,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let tx = db.begin().await?;
    let mut run = Run::new(tx, options, "application", ImportReport::default());
    run.tx.start_small_journal();
    let refuse = |run: &mut Run, field: &str, value: &str, reason: String| {
        run.reject(Entity::Client, None, Some(&m.merged), field, value, reason);
    };
    let Some(sid) = run
        .tx
        .find_id(Entity::Service, None, &m.service_ref)
        .await?
    else {
        refuse(
            &mut run,
            "service_ref",
            &m.service_ref,
            "no service has this reference".into(),
        );
        return run.finish().await;
    };
    if m.kept == m.merged {
        refuse(
            &mut run,
            "client_ref",
            &m.merged,
            "a client cannot be merged into themselves".into(),
        );
        return run.finish().await;
    }
    let mut ids = Vec::new();
    for r in [&m.kept, &m.merged] {
        match run.tx.find_id(Entity::Client, Some(sid), r).await? {
            Some(id) => ids.push(id),
            None => {
                refuse(
                    &mut run,
                    "client_ref",
                    r,
                    "the service has no client with this reference".into(),
                );
                return run.finish().await;
            }
        }
        if db.restriction(sid, r).await?.is_some() {
            let why = "processing of this client is restricted; lift the restriction first".into();
            refuse(&mut run, "client_ref", r, why);
            return run.finish().await;
        }
    }
    let (kept, merged) = (ids[0], ids[1]);
    let stored = run
        .tx
        .stored_many(Entity::Client, Some(sid), &[merged])
        .await?;
    let details: serde_json::Map<String, serde_json::Value> = stored
        .get(&merged)
        .map(|(_, values)| {
            Entity::Client
                .value_fields()
                .zip(values)
                .map(|(f, v)| (f.name.to_string(), json_value(v)))
                .collect()
        })
        .unwrap_or_default();
    let moved = run.tx.move_referrals(sid, merged, kept).await?;
    run.tx.move_client_notes(sid, &m.merged, &m.kept).await?;
    run.tx.delete(Entity::Client, Some(sid), merged).await?;
    run.tx.journal_add_clients(sid, &[kept]).await?;
    run.pending_audit.push(AuditEntry {
        actor: options.actor.clone(),
        action: "client.merge".into(),
        entity: Some(Entity::Client),
        service_id: Some(sid),
        record_ref: Some(m.kept.clone()),
        detail: Some(
            serde_json::json!({"merged": m.merged, "referrals_moved": moved, "merged_client": details})
                .to_string(),
        ),
    });
    let counts = EntityCounts {
        removed: 1,
        ..Default::default()
    };
    run.report.counts.push((Entity::Client, counts));
    run.check_clients(&mut |_| {}).await?;
    run.finish().await
}

/// Deletes one record with its values kept in the audit log (action `record.remove`,
/// with the reason) and counted as removed.
async fn remove_one(
    run: &mut Run<'_>,
    entity: Entity,
    sid: i64,
    id: i64,
    reference: &str,
    reason: &str,
) -> Result<(), ImportError> {
    let stored = run.tx.stored_many(entity, Some(sid), &[id]).await?;
    let before: serde_json::Map<String, serde_json::Value> = stored
        .get(&id)
        .map(|(_, values)| {
            entity
                .value_fields()
                .zip(values)
                .map(|(f, v)| (f.name.to_string(), json_value(v)))
                .collect()
        })
        .unwrap_or_default();
    run.tx.delete(entity, Some(sid), id).await?;
    run.pending_audit.push(AuditEntry {
        actor: run.options.actor.clone(),
        action: "record.remove".into(),
        entity: Some(entity),
        service_id: Some(sid),
        record_ref: Some(reference.to_string()),
        detail: Some(
            serde_json::json!({"before": before, "after": null, "reason": reason}).to_string(),
        ),
    });
    let counts = EntityCounts {
        removed: 1,
        ..Default::default()
    };
    run.report.counts.push((entity, counts));
    Ok(())
}

/// The dataset files present in `dir`, in import order; unknown `.csv` files are rejected.
fn find_files(
    dir: &Path,
    report: &mut ImportReport,
) -> Result<Vec<(Entity, PathBuf)>, ImportError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| ImportError::Io(dir.display().to_string(), e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ImportError::Io(dir.display().to_string(), e))?;
        names.push(entry.file_name().to_string_lossy().to_string());
    }
    names.sort();
    for name in &names {
        if name.to_ascii_lowercase().ends_with(".csv")
            && !Entity::ALL.iter().any(|e| e.file_name() == name)
        {
            report.rejections.push(Rejection {
                file: name.clone(),
                line: None,
                record: None,
                field: "(file name)".into(),
                value: name.clone(),
                reason: format!(
                    "this is not one of the dataset's files; they are {}",
                    Entity::ALL
                        .iter()
                        .map(|e| e.file_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    let mut files = Vec::new();
    for e in Entity::ALL {
        if !names.iter().any(|n| n == e.file_name()) {
            continue;
        }
        let path = dir.join(e.file_name());
        // A pipe would wait for a writer for ever and a device (a link to /dev/zero, say)
        // never ends: only ordinary files are read. (The metadata follows links.)
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push((e, path)),
            Ok(_) => report.rejections.push(Rejection {
                file: e.file_name().to_string(),
                line: None,
                record: None,
                field: "(file)".into(),
                value: String::new(),
                reason: "this is not an ordinary file (it is a folder, a pipe or a device); \
                         give each dataset file as a file saved on disk"
                    .into(),
            }),
            Err(err) => return Err(ImportError::Io(path.display().to_string(), err)),
        }
    }
    Ok(files)
}

struct Run<'o> {
    tx: StoreTx,
    options: &'o ImportOptions,
    /// `import` for files, `application` for records entered in the web application.
    entered_via: &'static str,
    /// Audit entries of the records written, appended to their chains at the end of the
    /// transaction, so that a chain's head is held only while committing.
    pending_audit: Vec<AuditEntry>,
    report: ImportReport,
    /// Records rejected in this run, so rows that refer to them are not reported twice.
    /// Holds only rejected references, which are few.
    rejected: HashSet<(Entity, String, String)>,
    /// Service references already resolved (a handful per deployment).
    services: HashMap<String, i64>,
    /// The client of each referral, episode and plan this run added, so the clients of
    /// their children are found without asking the database (about 40 bytes a record).
    owners: IdMap<i64>,
    /// The file line each record this run wrote came from (service 0 for organisations
    /// and services), to name the line of a rule broken across records and to catch a
    /// record written twice. Kept in memory: about 40 bytes a record, and much faster
    /// than a temporary table.
    lines: IdMap<u64>,
    /// What this run added where nothing was stored before it.
    added: Added,
    /// Rows added to the current file's table when statistics are next refreshed.
    next_analyze: u64,
    done_bytes: u64,
    /// Optional columns the current file leaves out: a new record has them blank, a
    /// stored one keeps its values (see `Run::check_headers`).
    absent: Vec<&'static str>,
}

/// A map keyed by the kind of a record, its service and its id, all numbers this
/// system chose: hashed by multiplying (as rustc's FxHash), several times faster than
/// the standard hasher, whose resistance to chosen keys is not needed here. A run
/// keeps one entry for each record it writes.
type IdMap<V> = HashMap<(Entity, i64, i64), V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The references this run added to tables that held none of the service's records
/// when the run first came to them (as on every first import of a service's data).
/// There, a reference not among them cannot be stored, so it is not looked up: at a
/// million sessions the lookups took a tenth of PostgreSQL's import. Kept as 64-bit
/// hashes, 8 bytes a record; a hash that matches by chance costs only a lookup.
#[derive(Default)]
struct Added {
    /// Whether the table held none of the service's records (service 0 for
    /// organisations and services) before this run first wrote to it.
    was_empty: HashMap<(Entity, i64), bool>,
    refs: HashSet<u64, BuildHasherDefault<IdHasher>>,
}

impl Added {
    fn key(entity: Entity, service: i64, reference: &str) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        (entity, service, reference).hash(&mut h);
        h.finish()
    }
}

/// One row as the reading thread left it. Nearly every row is a `Row`, so the large
/// variant is the one that is not wasted.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Row(Pending),
    /// Not CSV that can be read (a row of the wrong length, say).
    Unreadable {
        line: Option<u64>,
        reason: String,
    },
    /// Read, but with every field problem found.
    Invalid {
        line: u64,
        own: String,
        service_ref: String,
        errors: Vec<dcrs_domain::FieldError>,
    },
}

/// A stretch of a file: rows up to a chunk's worth of records, and the byte reached.
enum Stretch {
    Rows {
        rows: Vec<Parsed>,
        byte: u64,
    },
    /// The end of the file (or of what could be read of it).
    End,
}

/// Reads and parses a file's rows away from the writes (see `Run::import_reader`).
struct ReadingThread {
    entity: Entity,
    headers: Vec<String>,
    today: NaiveDate,
    /// Where the lines of the file end, to name each row by its line.
    lines: Arc<Mutex<LineIndex>>,
}

/// The line breaks of what a CSV reader has read so far, so that a row is named by the
/// line an editor shows. The reader's own line count is one short after a `\r\n` line end
/// (what Excel writes on Windows) and after a blank line: the position it gives for a
/// row is where the previous row's line end began.
#[derive(Default)]
struct LineIndex {
    /// Offsets of the `\r` and `\n` bytes read and not yet passed, with which each is.
    ends: std::collections::VecDeque<(u64, u8)>,
    /// `\n` bytes passed.
    newlines: u64,
}

impl LineIndex {
    /// The line (from 1) of the row that the reader says begins at `byte`: line-end
    /// bytes at or after `byte` belong to the line ends before the row. Rows are asked
    /// for in order.
    fn line_of(&mut self, mut byte: u64) -> u64 {
        while let Some(&(at, b)) = self.ends.front() {
            if at > byte {
                break;
            }
            if at == byte {
                byte += 1;
            }
            self.newlines += u64::from(b == b'\n');
            self.ends.pop_front();
        }
        self.newlines + 1
    }
}

/// A reader that notes where each line end is in what passes through it.
struct LineCounting<R> {
    inner: R,
    index: Arc<Mutex<LineIndex>>,
    at: u64,
}

impl<R: std::io::Read> std::io::Read for LineCounting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut index = self.index.lock().expect("not poisoned");
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' || *b == b'\r' {
                index.ends.push_back((self.at + i as u64, *b));
            }
        }
        self.at += n as u64;
        Ok(n)
    }
}

impl ReadingThread {
    fn run<R: std::io::Read>(
        self,
        mut reader: csv::Reader<R>,
        sender: tokio::sync::mpsc::Sender<Stretch>,
    ) {
        let mut record = csv::StringRecord::new();
        let mut rows = Vec::with_capacity(CHUNK);
        let mut records = 0;
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = record.position().map_or(0, |p| self.line_of(p.byte()));
                    let parsed = self.parse(&record, line);
                    records += usize::from(matches!(parsed, Parsed::Row(_)));
                    rows.push(parsed);
                }
                Err(e) => {
                    rows.push(Parsed::Unreadable {
                        line: e.position().map(|p| self.line_of(p.byte())),
                        reason: format!("the row could not be read: {}", plain_csv_error(&e)),
                    });
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        break;
                    }
                }
            }
            if records >= CHUNK {
                let byte = record.position().map_or(0, |p| p.byte());
                let full = std::mem::replace(&mut rows, Vec::with_capacity(CHUNK));
                records = 0;
                if sender
                    .blocking_send(Stretch::Rows { rows: full, byte })
                    .is_err()
                {
                    // The import stopped (an error); nobody is waiting for rows.
                    return;
                }
            }
        }
        let byte = reader.position().byte();
        let _ = sender.blocking_send(Stretch::Rows { rows, byte });
        let _ = sender.blocking_send(Stretch::End);
    }

    fn line_of(&self, byte: u64) -> u64 {
        self.lines.lock().expect("not poisoned").line_of(byte)
    }

    /// Reads one row into a record, or every field problem found in it.
    fn parse(&self, record: &csv::StringRecord, line: u64) -> Parsed {
        let row = CsvRow {
            headers: &self.headers,
            record,
        };
        parse_row(self.entity, &row, line, self.today)
    }
}

/// Reads one record's fields, from a file's row or a form, into a record or every field
/// problem found in it.
fn parse_row(entity: Entity, row: &dyn FieldSource, line: u64, today: NaiveDate) -> Parsed {
    let own = row
        .field(entity.ref_field())
        .unwrap_or("")
        .trim()
        .to_string();
    let service_ref = if entity.is_tenant() {
        row.field("service_ref").unwrap_or("").trim().to_string()
    } else {
        String::new()
    };
    match parse_record(entity, row, today) {
        Ok(record) => Parsed::Row(Pending {
            line,
            record,
            service_ref,
        }),
        Err(errors) => Parsed::Invalid {
            line,
            own,
            service_ref,
            errors,
        },
    }
}

/// A row read and parsed, waiting to be written with the rest of its chunk.
struct Pending {
    line: u64,
    record: Record,
    service_ref: String,
}

/// Rows written together: large enough to save round trips, small enough to keep
/// memory flat (a chunk of sessions is about a megabyte).
const CHUNK: usize = 5_000;

/// Clients checked together at the end of a run: each page reads every record of its
/// clients, one statement per kind of record listing the clients' ids.
const CHECK_PAGE: usize = 500;

/// What became of a row that could not be written.
enum Outcome {
    Rejected,
    NotChecked,
}

fn duplicate_reason(entity: Entity, earlier: u64) -> String {
    format!(
        "this {} appears twice in the file (first at line {earlier}); each reference may appear once",
        entity.label()
    )
}

impl<'o> Run<'o> {
    /// Ends a small write: committed with its audit entries when nothing was rejected
    /// (and it is not a dry run), rolled back otherwise. The entries go in with the
    /// commit, so that the audit chain's head is held for as short a time as it can be.
    async fn finish(self) -> Result<ImportReport, ImportError> {
        let Run {
            tx,
            mut report,
            pending_audit,
            options,
            ..
        } = self;
        if report.rejections.is_empty() && !options.dry_run {
            tx.commit_audited(&pending_audit).await?;
            report.committed = true;
        } else {
            tx.rollback().await?;
        }
        Ok(report)
    }

    fn new(
        tx: StoreTx,
        options: &'o ImportOptions,
        entered_via: &'static str,
        report: ImportReport,
    ) -> Self {
        Run {
            tx,
            options,
            entered_via,
            pending_audit: Vec::new(),
            report,
            rejected: HashSet::new(),
            services: HashMap::new(),
            owners: IdMap::default(),
            lines: IdMap::default(),
            added: Added::default(),
            next_analyze: CHUNK as u64,
            done_bytes: 0,
            absent: Vec::new(),
        }
    }

    /// The ids of the stored records among `refs`; where this run found the table
    /// without the service's records, only those of the references it added itself
    /// (see [`Added`]).
    async fn find_stored(
        &mut self,
        entity: Entity,
        service_id: Option<i64>,
        refs: &[String],
    ) -> Result<HashMap<String, i64>, ImportError> {
        let scope = service_id.unwrap_or(0);
        let was_empty = match self.added.was_empty.get(&(entity, scope)) {
            Some(e) => *e,
            None => {
                let e = !self.tx.has_records(entity, service_id).await?;
                self.added.was_empty.insert((entity, scope), e);
                e
            }
        };
        if !was_empty {
            return Ok(self.tx.find_ids(entity, service_id, refs).await?);
        }
        let candidates: Vec<String> = refs
            .iter()
            .filter(|r| self.added.refs.contains(&Added::key(entity, scope, r)))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self.tx.find_ids(entity, service_id, &candidates).await?)
    }

    fn reject(
        &mut self,
        entity: Entity,
        line: Option<u64>,
        record: Option<&str>,
        field: &str,
        value: &str,
        reason: String,
    ) {
        if self.report.rejections.len() >= MAX_LISTED {
            self.report.not_listed += 1;
            return;
        }
        self.report.rejections.push(Rejection {
            file: entity.file_name().to_string(),
            line,
            record: record.map(str::to_string),
            field: field.to_string(),
            value: value.to_string(),
            reason,
        });
    }

    /// Appends the audit entries of what was written (when nothing was rejected).
    async fn import_file(
        &mut self,
        entity: Entity,
        path: &Path,
        total_bytes: u64,
        progress: &mut impl FnMut(Progress),
    ) -> Result<EntityCounts, ImportError> {
        let file = std::fs::File::open(path)
            .map_err(|e| ImportError::Io(path.display().to_string(), e))?;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.import_reader(
            entity,
            std::io::BufReader::new(file),
            size,
            total_bytes,
            progress,
        )
        .await
    }

    async fn import_reader(
        &mut self,
        entity: Entity,
        source: impl std::io::Read + Send + 'static,
        size: u64,
        total_bytes: u64,
        progress: &mut impl FnMut(Progress),
    ) -> Result<EntityCounts, ImportError> {
        let lines = Arc::new(Mutex::new(LineIndex::default()));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(LineCounting {
                inner: source,
                index: lines.clone(),
                at: 0,
            });
        let mut counts = EntityCounts::default();
        let headers: Vec<String> = match reader.headers() {
            Ok(h) => h
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    if i == 0 {
                        s.trim_start_matches('\u{feff}')
                    } else {
                        s
                    }
                })
                .map(|s| s.trim().to_string())
                .collect(),
            Err(e) => {
                self.reject(
                    entity,
                    Some(1),
                    None,
                    "(header)",
                    "",
                    format!("the header row could not be read: {}", plain_csv_error(&e)),
                );
                return Ok(counts);
            }
        };
        if headers.len() > 4 * entity.fields().len() {
            self.reject(
                entity,
                Some(1),
                None,
                "(header)",
                "",
                format!(
                    "the header has {} columns; {} has {}, so this is not that file",
                    headers.len(),
                    entity.file_name(),
                    entity.fields().len()
                ),
            );
            return Ok(counts);
        }
        if !self.check_headers(entity, &headers) {
            return Ok(counts);
        }
        // Rows are read and parsed on a thread of their own, a stretch ahead of the
        // writes, so that the database works while the next stretch is parsed.
        let (sender, mut stretches) = tokio::sync::mpsc::channel(2);
        let reading = ReadingThread {
            entity,
            headers: headers.clone(),
            today: self.options.today,
            lines,
        };
        std::thread::Builder::new()
            .name("dcrs-import-read".into())
            .spawn(move || reading.run(reader, sender))
            .map_err(|e| ImportError::Io(entity.file_name().to_string(), e))?;
        let mut last_byte = 0;
        self.next_analyze = CHUNK as u64;
        loop {
            let Some(stretch) = stretches.recv().await else {
                return Err(ImportError::Io(
                    entity.file_name().to_string(),
                    std::io::Error::other("the thread reading the file stopped unexpectedly"),
                ));
            };
            let Stretch::Rows { rows, byte } = stretch else {
                break;
            };
            self.take_rows(entity, rows, &mut counts).await?;
            if byte.saturating_sub(last_byte) > 256 * 1024 {
                self.done_bytes += byte - last_byte;
                last_byte = byte;
                progress(Progress {
                    phase: "reading",
                    done: self.done_bytes,
                    total: total_bytes,
                });
            }
        }
        // Statistics taken part-way through the file describe only the services whose
        // rows came first (files are usually sorted by service); the client checks after
        // the last file would then plan as if later services had no rows. A few records
        // from the application change no statistics: refreshing them (ANALYZE, which
        // PostgreSQL lets one transaction at a time run on a table) would queue every
        // writer behind the others.
        if counts.added > 0 && self.entered_via == "import" {
            self.tx.refresh_statistics(entity).await?;
        }
        self.done_bytes += size.saturating_sub(last_byte);
        progress(Progress {
            phase: "reading",
            done: self.done_bytes,
            total: total_bytes,
        });
        Ok(counts)
    }

    /// Takes rows read and parsed (from a file or given by a caller): their problems are
    /// recorded, and the good ones written together.
    async fn take_rows(
        &mut self,
        entity: Entity,
        rows: Vec<Parsed>,
        counts: &mut EntityCounts,
    ) -> Result<(), ImportError> {
        let mut chunk: Vec<Pending> = Vec::with_capacity(rows.len());
        for row in rows {
            match row {
                Parsed::Row(p) => chunk.push(p),
                Parsed::Unreadable { line, reason } => {
                    self.reject(entity, line, None, "(row)", "", reason)
                }
                Parsed::Invalid {
                    line,
                    own,
                    service_ref,
                    errors,
                } => {
                    let shown = Some(own.as_str()).filter(|s| !s.is_empty());
                    for e in errors {
                        self.reject(entity, Some(line), shown, &e.field, &e.value, e.reason);
                    }
                    self.rejected.insert((entity, service_ref, own));
                }
            }
        }
        self.flush(entity, &mut chunk, counts).await
    }

    /// Every column must be known and appear once, and every column a record cannot do
    /// without (references and required fields) must be there; returns whether the file
    /// can be read. An optional column may be left out, so that a file written before a
    /// field was added to the dataset still loads: its records are blank there when new
    /// and keep what is stored when updated, so leaving a column out never blanks a field.
    fn check_headers(&mut self, entity: Entity, headers: &[String]) -> bool {
        let mut ok = true;
        let mut seen = HashSet::new();
        self.absent.clear();
        for h in headers {
            if !entity.fields().iter().any(|f| f.name == h) {
                let reason = format!(
                    "{} has no column called this; its columns are {}",
                    entity.file_name(),
                    entity
                        .fields()
                        .iter()
                        .map(|f| f.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.reject(entity, Some(1), None, h, h, reason);
                ok = false;
            } else if !seen.insert(h.as_str()) {
                self.reject(
                    entity,
                    Some(1),
                    None,
                    h,
                    h,
                    "this column appears twice in the header".into(),
                );
                ok = false;
            }
        }
        for f in entity.fields() {
            if headers.iter().any(|h| h == f.name) {
                continue;
            }
            if may_be_left_out(entity, f) {
                self.absent.push(f.name);
                continue;
            }
            self.reject(
                entity,
                Some(1),
                None,
                f.name,
                "",
                format!(
                    "the header has no {} column; a {} cannot be read without it",
                    f.name,
                    entity.label()
                ),
            );
            ok = false;
        }
        ok
    }

    /// A record read from a file that leaves out optional columns, with the stored
    /// values in those columns: read again from its fields, so that every rule of the
    /// record holds for what will be stored.
    fn with_stored_values(
        &self,
        entity: Entity,
        p: &Pending,
        old_values: &[Value],
    ) -> Result<Record, Vec<dcrs_domain::FieldError>> {
        let mut fields: Vec<(&'static str, String)> = Vec::with_capacity(entity.fields().len());
        fields.push((entity.ref_field(), p.record.own_ref().to_string()));
        if entity.is_tenant() {
            fields.push(("service_ref", p.service_ref.clone()));
        }
        for ((f, _), r) in entity.ref_fields().zip(p.record.parent_refs()) {
            fields.push((f.name, r.map(str::to_string).unwrap_or_default()));
        }
        let new_values = p.record.values();
        for ((f, new), old) in entity.value_fields().zip(&new_values).zip(old_values) {
            let v = if self.absent.contains(&f.name) {
                old
            } else {
                new
            };
            fields.push((f.name, v.to_field_text()));
        }
        parse_record(entity, &fields, self.options.today)
    }

    /// Writes a chunk of parsed rows of one file: references resolved, existing records
    /// compared, new ones inserted together; a few statements per chunk, not per row.
    async fn flush(
        &mut self,
        entity: Entity,
        chunk: &mut Vec<Pending>,
        counts: &mut EntityCounts,
    ) -> Result<(), ImportError> {
        if entity == Entity::ServiceConfiguration {
            self.check_target_lsoas(chunk).await?;
        }
        let mut groups: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        for p in chunk.drain(..) {
            groups.entry(p.service_ref.clone()).or_default().push(p);
        }
        for (service_ref, rows) in groups {
            self.flush_service(entity, &service_ref, rows, counts)
                .await?;
        }
        Ok(())
    }

    /// A configuration's target areas must be 2011 LSOAs. The code's shape is checked as
    /// it is read; whether it names a 2011 LSOA needs the reference data, so it is
    /// checked here where it is loaded (a 2001 code split in 2011 has the same shape).
    /// Rows refused are taken out of the chunk.
    async fn check_target_lsoas(&mut self, chunk: &mut Vec<Pending>) -> Result<(), ImportError> {
        let codes: Vec<String> = chunk
            .iter()
            .filter_map(|p| match &p.record {
                Record::ServiceConfiguration(c) => Some(c.target_lsoas.iter()),
                _ => None,
            })
            .flatten()
            .map(|c| c.as_str().to_string())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if codes.is_empty() {
            return Ok(());
        }
        let unknown = self.tx.lsoas_not_in_2011(&codes).await?;
        if unknown.is_empty() {
            return Ok(());
        }
        let mut kept = Vec::with_capacity(chunk.len());
        for p in chunk.drain(..) {
            let Record::ServiceConfiguration(c) = &p.record else {
                kept.push(p);
                continue;
            };
            let bad: Vec<&(String, Vec<String>)> = unknown
                .iter()
                .filter(|(code, _)| c.target_lsoas.iter().any(|t| t.as_str() == code))
                .collect();
            if bad.is_empty() {
                kept.push(p);
                continue;
            }
            let own = c.configuration_ref.clone();
            let value = c
                .target_lsoas
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(";");
            for (code, successors) in bad {
                let reason = if successors.is_empty() {
                    format!("{code} is not a 2011 LSOA code; target_lsoas takes 2011 LSOA codes")
                } else {
                    format!(
                        "{code} is a 2001 LSOA code, not a 2011 one; in 2011 it became {}; target_lsoas takes 2011 LSOA codes",
                        successors.join(", ")
                    )
                };
                self.reject(
                    Entity::ServiceConfiguration,
                    Some(p.line),
                    Some(&own),
                    "target_lsoas",
                    &value,
                    reason,
                );
            }
            self.rejected
                .insert((Entity::ServiceConfiguration, p.service_ref.clone(), own));
        }
        *chunk = kept;
        Ok(())
    }

    async fn flush_service(
        &mut self,
        entity: Entity,
        service_ref: &str,
        rows: Vec<Pending>,
        counts: &mut EntityCounts,
    ) -> Result<(), ImportError> {
        // The service, for tenant records.
        let service_id = if entity.is_tenant() {
            let found = match self.services.get(service_ref).copied() {
                Some(id) => Some(id),
                None => self.tx.find_id(Entity::Service, None, service_ref).await?,
            };
            match found {
                Some(id) => {
                    self.services.insert(service_ref.to_string(), id);
                    Some(id)
                }
                None => {
                    for p in rows {
                        let own = p.record.own_ref().to_string();
                        let o = self.missing_parent(
                            entity,
                            p.line,
                            &own,
                            "service_ref",
                            Entity::Service,
                            service_ref,
                            "",
                        );
                        self.count(o);
                    }
                    return Ok(());
                }
            }
        } else {
            None
        };
        let journal_service = service_id.unwrap_or(0);

        // Parents, resolved within the service, one query per kind of parent.
        let mut resolved: Vec<HashMap<String, i64>> = Vec::new();
        for (k, (_, parent)) in entity.ref_fields().enumerate() {
            let mut refs: Vec<String> = rows
                .iter()
                .filter_map(|p| p.record.parent_refs()[k].map(str::to_string))
                .collect();
            refs.sort();
            refs.dedup();
            let scope = if parent.is_tenant() { service_id } else { None };
            resolved.push(self.tx.find_parent_ids(parent, scope, &refs).await?);
        }
        let mut ready: Vec<(Pending, Vec<Option<i64>>)> = Vec::with_capacity(rows.len());
        let mut first_line: HashMap<String, u64> = HashMap::new();
        'rows: for p in rows {
            let own = p.record.own_ref().to_string();
            let mut parents = Vec::new();
            for (k, ((field, parent), reference)) in
                entity.ref_fields().zip(p.record.parent_refs()).enumerate()
            {
                match reference {
                    None => parents.push(None),
                    Some(r) => match resolved[k].get(r) {
                        Some(id) => parents.push(Some(*id)),
                        None => {
                            let r = r.to_string();
                            let o = self.missing_parent(
                                entity,
                                p.line,
                                &own,
                                field.name,
                                parent,
                                &r,
                                service_ref,
                            );
                            self.count(o);
                            continue 'rows;
                        }
                    },
                }
            }
            if let Some(earlier) = first_line.get(&own) {
                self.reject_duplicate(entity, p.line, &own, *earlier);
                continue;
            }
            first_line.insert(own, p.line);
            ready.push((p, parents));
        }

        // Which are already stored, and were any already written by this run?
        let owns: Vec<String> = ready
            .iter()
            .map(|(p, _)| p.record.own_ref().to_string())
            .collect();
        let existing = self.find_stored(entity, service_id, &owns).await?;
        let existing_ids: Vec<i64> = existing.values().copied().collect();
        let written: HashMap<i64, u64> = existing_ids
            .iter()
            .filter_map(|id| {
                self.lines
                    .get(&(entity, journal_service, *id))
                    .map(|l| (*id, *l))
            })
            .collect();
        let stored = self
            .tx
            .stored_many(entity, service_id, &existing_ids)
            .await?;

        let mut lines: Vec<(i64, u64)> = Vec::new();
        let mut changed: Vec<i64> = Vec::new();
        let mut new_rows: Vec<NewRecord> = Vec::new();
        let mut new_lines: Vec<u64> = Vec::new();
        let mut new_client_parents: Vec<Option<i64>> = Vec::new();
        // The client-defining parent (see `dcrs_store::client_chain_parent`) of each new or changed record.
        let mut client_parent_ids: Vec<i64> = Vec::new();
        for (p, parents) in ready {
            let own = p.record.own_ref().to_string();
            let values = p.record.values();
            let client_parent_id = parents.first().copied().flatten();
            let Some(&id) = existing.get(&own) else {
                client_parent_ids.extend(client_parent_id);
                new_client_parents.push(client_parent_id);
                new_rows.push((own, parents, values));
                new_lines.push(p.line);
                continue;
            };
            if let Some(earlier) = written.get(&id) {
                self.reject_duplicate(entity, p.line, &own, *earlier);
                continue;
            }
            if self.options.only_new {
                let field = entity.ref_field();
                self.reject(
                    entity,
                    Some(p.line),
                    Some(&own),
                    field,
                    &own,
                    format!("a {} with this reference exists already", entity.label()),
                );
                continue;
            }
            let Some((old_parents, old_values)) = stored.get(&id) else {
                continue;
            };
            lines.push((id, p.line));
            let (record, values) = if self.absent.is_empty() {
                (p.record, values)
            } else {
                match self.with_stored_values(entity, &p, old_values) {
                    Ok(r) => {
                        let v = r.values();
                        (r, v)
                    }
                    Err(errors) => {
                        for e in errors {
                            self.reject(
                                entity,
                                Some(p.line),
                                Some(&own),
                                &e.field,
                                &e.value,
                                e.reason,
                            );
                        }
                        continue;
                    }
                }
            };
            if *old_parents == parents && *old_values == values {
                // Nothing changed, so nothing about its client needs checking again.
                counts.unchanged += 1;
                continue;
            }
            if let Some((field, value, reason)) = forbidden_change(&record, old_values) {
                self.reject(entity, Some(p.line), Some(&own), field, value, reason);
                continue;
            }
            // The client the record belonged to before the change is checked too.
            if let Some(sid) = service_id {
                let before = self.tx.clients_of(entity, sid, &[id]).await?;
                self.tx.journal_add_clients(sid, &before).await?;
            }
            self.tx
                .update(entity, service_id, id, &parents, &values)
                .await?;
            let detail = change_detail(entity, old_parents, &parents, old_values, &values);
            let entry = AuditEntry {
                actor: self.options.actor.clone(),
                action: "record.update".into(),
                entity: Some(entity),
                service_id,
                record_ref: Some(own),
                detail: Some(detail),
            };
            // A file import may update millions of records: written as it goes. A few
            // records from the application wait for the end of the transaction.
            if self.entered_via == "import" {
                self.tx.audit(&entry).await?;
            } else {
                self.pending_audit.push(entry);
            }
            changed.push(id);
            client_parent_ids.extend(client_parent_id);
            counts.updated += 1;
        }
        let new_ids = self
            .tx
            .insert_many(entity, service_id, &new_rows, self.entered_via)
            .await?;
        // A new service's audit chain begins with its creation, so that `dcrs audit
        // verify` can expect one chain for every service.
        if entity == Entity::Service {
            for ((own, _, _), id) in new_rows.iter().zip(&new_ids) {
                self.tx
                    .audit(&AuditEntry {
                        actor: self.options.actor.clone(),
                        action: "service.add".into(),
                        entity: Some(Entity::Service),
                        service_id: Some(*id),
                        record_ref: Some(own.clone()),
                        detail: None,
                    })
                    .await?;
            }
        }
        // A record entered in the application is audited one by one, with its values.
        if self.entered_via != "import" {
            for (own, _, values) in &new_rows {
                let after: serde_json::Map<String, serde_json::Value> = entity
                    .value_fields()
                    .zip(values)
                    .map(|(f, v)| (f.name.to_string(), json_value(v)))
                    .collect();
                self.pending_audit.push(AuditEntry {
                    actor: self.options.actor.clone(),
                    action: "record.add".into(),
                    entity: Some(entity),
                    service_id,
                    record_ref: Some(own.clone()),
                    detail: Some(serde_json::json!({"before": null, "after": after}).to_string()),
                });
            }
        }
        counts.added += new_ids.len() as u64;
        let was_empty = self.added.was_empty.get(&(entity, journal_service)) == Some(&true);
        if was_empty {
            self.added.refs.extend(
                new_rows
                    .iter()
                    .map(|(own, _, _)| Added::key(entity, journal_service, own)),
            );
        }
        // Keep the planner's statistics within a factor of two of the table's size, for
        // the lookups by reference in it; where it held none of the service's records,
        // those are skipped (see `Added`) and nothing else reads it until the file ends.
        if !was_empty && counts.added >= self.next_analyze {
            self.tx.refresh_statistics(entity).await?;
            self.next_analyze = counts.added * 2;
        }
        if let (Some(sid), Some(parent)) = (service_id, dcrs_store::client_chain_parent(entity))
            && matches!(entity, Entity::Referral | Entity::Episode | Entity::Plan)
        {
            for (id, p) in new_ids.iter().zip(&new_client_parents) {
                let client = match (parent, p) {
                    (Entity::Client, Some(c)) => Some(*c),
                    (_, Some(pid)) => self.owners.get(&(parent, sid, *pid)).copied(),
                    _ => None,
                };
                if let Some(c) = client {
                    self.owners.insert((entity, sid, *id), c);
                }
            }
        }
        lines.extend(new_ids.iter().copied().zip(new_lines));
        self.lines.extend(
            lines
                .into_iter()
                .map(|(id, line)| ((entity, journal_service, id), line)),
        );
        if let Some(sid) = service_id {
            // The clients these records belong to, found from their distinct parents
            // (ten sessions of one episode need one lookup, not ten).
            let clients = match dcrs_store::client_chain_parent(entity) {
                _ if entity == Entity::Client => {
                    changed.extend(new_ids);
                    changed
                }
                Some(Entity::Client) => {
                    let mut ids = client_parent_ids;
                    ids.sort_unstable();
                    ids.dedup();
                    ids
                }
                Some(parent) => {
                    let mut ids = client_parent_ids;
                    ids.sort_unstable();
                    ids.dedup();
                    let mut clients = Vec::with_capacity(ids.len());
                    let mut unknown = Vec::new();
                    for id in ids {
                        match self.owners.get(&(parent, sid, id)) {
                            Some(c) => clients.push(*c),
                            None => unknown.push(id),
                        }
                    }
                    if !unknown.is_empty() {
                        clients.extend(self.tx.clients_of(parent, sid, &unknown).await?);
                    }
                    clients.sort_unstable();
                    clients.dedup();
                    clients
                }
                None => {
                    changed.extend(new_ids);
                    self.tx.clients_of(entity, sid, &changed).await?
                }
            };
            self.tx.journal_add_clients(sid, &clients).await?;
        }
        Ok(())
    }

    fn reject_duplicate(&mut self, entity: Entity, line: u64, own: &str, earlier: u64) {
        let reason = duplicate_reason(entity, earlier);
        self.reject(
            entity,
            Some(line),
            Some(own),
            entity.ref_field(),
            own,
            reason,
        );
    }

    fn count(&mut self, outcome: Outcome) {
        if let Outcome::NotChecked = outcome {
            self.report.not_checked += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn missing_parent(
        &mut self,
        entity: Entity,
        line: u64,
        own: &str,
        field: &str,
        parent: Entity,
        reference: &str,
        service_ref: &str,
    ) -> Outcome {
        let key_service = if parent.is_tenant() {
            service_ref.to_string()
        } else {
            String::new()
        };
        if self
            .rejected
            .contains(&(parent, key_service, reference.to_string()))
        {
            self.rejected
                .insert((entity, service_ref.to_string(), own.to_string()));
            return Outcome::NotChecked;
        }
        let reason = if parent == Entity::Service {
            "there is no service with this reference, in services.csv or already stored".to_string()
        } else if parent.is_tenant() {
            format!(
                "there is no {} with this reference in service {service_ref}; a reference must point to a record of the same service",
                parent.label()
            )
        } else {
            format!(
                "there is no {} with this reference, in {} or already stored",
                parent.label(),
                parent.file_name()
            )
        };
        self.reject(entity, Some(line), Some(own), field, reference, reason);
        self.rejected
            .insert((entity, service_ref.to_string(), own.to_string()));
        Outcome::Rejected
    }

    /// Checks the cross-record rules for every client touched, and rewrites their
    /// derived values (BMI, episode summaries).
    async fn check_clients(
        &mut self,
        progress: &mut impl FnMut(Progress),
    ) -> Result<(), ImportError> {
        let total = self.tx.journal_client_count().await?;
        // Areas come from a client's postcode: a run that wrote no client (a session,
        // an assessment) leaves them as they were.
        let clients_written = self
            .report
            .counts
            .iter()
            .any(|(e, c)| *e == Entity::Client && c.added + c.updated > 0);
        let have_postcodes = clients_written && self.tx.has_postcodes().await?;
        if clients_written && !have_postcodes && total > 0 {
            self.report.notes.push(
                "No reference data is loaded, so clients' areas and deprivation quintiles are blank; \
                 run `dcrs refdata load` and they are filled in for every client."
                    .into(),
            );
        }
        let mut done = 0;
        // Services that had no summaries before this run: their clients' summaries are
        // written, with nothing to delete first (every client is checked once a run).
        let mut first_summaries: HashMap<i64, bool> = HashMap::new();
        // Summaries stored now and when their statistics were last taken: the deletes
        // are planned from those, so they are taken again each time the table doubles.
        // (A form or API write touches a client or two: no statistics are taken for it,
        // and counting every summary would cost more than the write.)
        let mut summary_rows = if self.entered_via == "import" {
            self.tx.summary_count().await?
        } else {
            0
        };
        let mut analyzed_rows = summary_rows;
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let page = self
                .tx
                .journal_clients_after(after, CHECK_PAGE as i64)
                .await?;
            let Some(last) = page.last() else { break };
            after = *last;
            let mut by_service: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for (sid, cid) in page {
                by_service.entry(sid).or_default().push(cid);
            }
            for (sid, clients) in by_service {
                let replace = match first_summaries.get(&sid) {
                    Some(first) => !first,
                    // A form or API write deletes the client's summaries before writing
                    // them (nothing to delete costs less than asking first).
                    None if self.entered_via != "import" => true,
                    None => {
                        let stored = self.tx.has_summaries(sid).await?;
                        first_summaries.insert(sid, !stored);
                        stored
                    }
                };
                self.tx.lock_clients(sid, &clients).await?;
                let bundles = self.tx.client_bundles(sid, &clients).await?;
                let mut bmi_all = Vec::new();
                let mut summaries = Vec::new();
                for bundle in &bundles {
                    let service_ref = &bundle.client.service_ref;
                    for v in check_client(bundle, &self.options.rules) {
                        let line = match self.tx.find_id(v.entity, Some(sid), &v.record_ref).await?
                        {
                            Some(id) => self.lines.get(&(v.entity, sid, id)).copied(),
                            None => None,
                        };
                        let record = format!("{} in service {service_ref}", v.record_ref);
                        self.reject(v.entity, line, Some(&record), v.field, &v.value, v.reason);
                    }
                    let bmi = derive_bmi(bundle);
                    for b in bmi.iter().filter(|b| b.flagged) {
                        self.report.warnings.push(Rejection {
                            file: Entity::Assessment.file_name().into(),
                            line: None,
                            record: Some(format!("{} in service {service_ref}", b.assessment_ref)),
                            field: "weight_kg".into(),
                            value: b.bmi.map(|x| x.to_string()).unwrap_or_default(),
                            reason: "the BMI worked out from this weight and the latest height is outside 10–90; \
                                     please check both"
                                .into(),
                        });
                    }
                    bmi_all.extend(bmi);
                    summaries.extend(summarise_episodes(bundle));
                }
                let added = self
                    .tx
                    .save_derived_many(sid, &clients, &bmi_all, &summaries, replace)
                    .await?;
                summary_rows = summary_rows.saturating_add_signed(added);
                // Area fields from the postcode; an unknown postcode is accepted with a warning.
                let unknown = if clients_written {
                    self.tx.derive_client_areas(Some((sid, &clients))).await?
                } else {
                    Vec::new()
                };
                if have_postcodes {
                    let service_ref = bundles
                        .first()
                        .map(|b| b.client.service_ref.clone())
                        .unwrap_or_default();
                    for client_ref in unknown {
                        let postcode = bundles
                            .iter()
                            .find(|b| b.client.client_ref == client_ref)
                            .and_then(|b| b.client.postcode.as_ref())
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default();
                        let line = match self
                            .tx
                            .find_id(Entity::Client, Some(sid), &client_ref)
                            .await?
                        {
                            Some(id) => self.lines.get(&(Entity::Client, sid, id)).copied(),
                            None => None,
                        };
                        self.report.warnings.push(Rejection {
                            file: Entity::Client.file_name().into(),
                            line,
                            record: Some(format!("{client_ref} in service {service_ref}")),
                            field: "postcode".into(),
                            value: postcode,
                            reason: "this postcode is not in the postcode lookup, so the client's area and \
                                     deprivation quintile are recorded as unknown"
                                .into(),
                        });
                    }
                }
                done += clients.len() as u64;
                if self.entered_via == "import"
                    && summary_rows >= 2 * analyzed_rows.max(CHECK_PAGE as u64)
                {
                    self.tx.refresh_summary_statistics().await?;
                    analyzed_rows = summary_rows;
                }
                progress(Progress {
                    phase: "checking",
                    done,
                    total,
                });
            }
        }
        // The last refresh above can be far from the end: statistics taken before the
        // last services' summaries (and their clients' derived areas) were written plan
        // those services' report queries as if they had no rows (a dashboard's
        // new-clients count went from 1 ms to 14 ms on PostgreSQL).
        if done > 0 && self.entered_via == "import" {
            self.tx.refresh_summary_statistics().await?;
            self.tx.refresh_statistics(Entity::Client).await?;
        }
        Ok(())
    }
}

/// Changes the standard forbids on an existing record: an episode's kind.
fn forbidden_change(
    new: &Record,
    old_values: &[Value],
) -> Option<(&'static str, &'static str, String)> {
    if let Record::Episode(e) = new {
        let old_kind = old_values.first()?;
        if *old_kind != Value::Text(e.kind.code().to_string()) {
            return Some((
                "kind",
                e.kind.code(),
                format!(
                    "an episode's kind does not change (it was {}); close this episode and open a new one from a new referral",
                    old_kind.to_field_text()
                ),
            ));
        }
    }
    None
}

/// A JSON object of each changed field's value before and after.
fn change_detail(
    entity: Entity,
    old_p: &[Option<i64>],
    new_p: &[Option<i64>],
    old_v: &[Value],
    new_v: &[Value],
) -> String {
    let mut out = serde_json::Map::new();
    for (((f, _), a), b) in entity.ref_fields().zip(old_p).zip(new_p) {
        if a != b {
            out.insert(
                f.name.into(),
                serde_json::json!({"before_id": json_opt(a), "after_id": json_opt(b)}),
            );
        }
    }
    for ((f, a), b) in entity.value_fields().zip(old_v).zip(new_v) {
        if a != b {
            out.insert(
                f.name.into(),
                serde_json::json!({"before": json_value(a), "after": json_value(b)}),
            );
        }
    }
    serde_json::Value::Object(out).to_string()
}

fn json_opt(x: &Option<i64>) -> serde_json::Value {
    x.map_or(serde_json::Value::Null, serde_json::Value::from)
}

fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Real(x) => serde_json::Value::from(*x),
        Value::Text(s) => serde_json::Value::from(s.as_str()),
    }
}

/// A CSV reading problem in words, without the library's jargon.
fn plain_csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            "it is not valid UTF-8 text; save the file as CSV UTF-8".into()
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("it has {len} values but the header has {expected_len} columns")
        }
        csv::ErrorKind::Io(err) => format!("the file could not be read ({err})"),
        _ => "it is not well-formed CSV".into(),
    }
}

/// Whether a file may leave out a column: only an optional field that holds a value
/// (not a reference, which places the record, nor a required field).
fn may_be_left_out(entity: Entity, field: &dcrs_domain::Field) -> bool {
    use dcrs_domain::FieldKind;
    matches!(
        field.kind,
        FieldKind::Text | FieldKind::Int | FieldKind::Real
    ) && dcrs_domain::catalogue::about(entity, field.name).is_some_and(|a| !a.required)
}
