//! SQL generated once from the domain's field lists: one text per entity and
//! operation, portable between SQLite and PostgreSQL (`$N` placeholders, plain joins).

use dcrs_domain::record::{Entity, FieldKind};
use std::sync::Arc;

/// The table holding an entity.
pub(crate) fn table(e: Entity) -> &'static str {
    match e {
        Entity::Organisation => "organisations",
        Entity::Service => "services",
        Entity::ServiceConfiguration => "service_configurations",
        Entity::Worker => "workers",
        Entity::Client => "clients",
        Entity::Referral => "referrals",
        Entity::Episode => "episodes",
        Entity::Assessment => "assessments",
        Entity::Plan => "plans",
        Entity::Goal => "goals",
        Entity::Session => "sessions",
        Entity::OnwardReferral => "onward_referrals",
        Entity::WiderIssue => "wider_issues",
    }
}

/// The internal id column of an entity's table.
pub(crate) fn id_column(e: Entity) -> &'static str {
    match e {
        Entity::Organisation => "org_id",
        Entity::Service => "service_id",
        Entity::ServiceConfiguration => "configuration_id",
        Entity::Worker => "worker_id",
        Entity::Client => "client_id",
        Entity::Referral => "referral_id",
        Entity::Episode => "episode_id",
        Entity::Assessment => "assessment_id",
        Entity::Plan => "plan_id",
        Entity::Goal => "goal_id",
        Entity::Session => "session_id",
        Entity::OnwardReferral => "onward_id",
        Entity::WiderIssue => "wider_issue_id",
    }
}

/// The column holding a reference field's resolved id (`lead_worker_ref` → `lead_worker_id`).
pub(crate) fn parent_column(field: &str) -> String {
    format!("{}_id", field.strip_suffix("_ref").unwrap_or(field))
}

/// The parent that leads from a record toward its client, if it belongs to one.
pub fn client_chain_parent(e: Entity) -> Option<Entity> {
    match e {
        Entity::Referral => Some(Entity::Client),
        Entity::Episode => Some(Entity::Referral),
        Entity::Assessment
        | Entity::Plan
        | Entity::Session
        | Entity::OnwardReferral
        | Entity::WiderIssue => Some(Entity::Episode),
        Entity::Goal => Some(Entity::Plan),
        _ => None,
    }
}

/// The SQL texts of one entity.
#[derive(Debug)]
pub(crate) struct EntitySql {
    /// `SELECT own_ref, id … IN (` : append a placeholder list and `)`.
    pub find_ids: String,
    /// `SELECT id, parents…, values… IN (`.
    pub stored_many: String,
    /// For records that belong to a client: the next record up the chain to the client
    /// and `SELECT parent_id … IN (` to find it.
    pub client_step: Option<(Entity, String)>,
    /// The id and every field of records found by a column of their service's rows
    /// (tenant records only): one statement per column that may be used.
    pub keyed: Vec<KeyedSql>,
    /// The record's own columns of an insert and how each is stored (id, reference,
    /// parent ids, values: every column but the service and the three bookkeeping
    /// columns).
    pub insert_own: Vec<(String, FieldKind)>,
    pub export: Arc<str>,
    /// The export's `SELECT … FROM … JOIN …` without a condition or order, and the
    /// expression of each field in it, for listings that filter on fields.
    pub listing: String,
    pub field_exprs: Vec<String>,
    pub find_id: Arc<str>,
    pub stored: Arc<str>,
    pub insert: Arc<str>,
    pub update: Arc<str>,
    /// Removes one record by id.
    pub delete: Arc<str>,
}

/// Records found by one column of their service's rows.
#[derive(Debug)]
pub(crate) struct KeyedSql {
    pub column: String,
    /// The id and every field, as expressions.
    pub exprs: String,
    /// `FROM … WHERE service_id = $1 AND column IN (`: append a placeholder list and `)`.
    pub from: String,
    /// Where `column` is a parent's, the field that names it: read as the parent's id.
    pub parent_field: Option<usize>,
}

/// The SQL texts of every entity.
#[derive(Debug)]
pub(crate) struct SqlSet {
    entities: Vec<EntitySql>,
}

impl SqlSet {
    pub fn new() -> Self {
        SqlSet {
            entities: Entity::ALL.iter().map(|e| build(*e)).collect(),
        }
    }
    pub fn entity(&self, e: Entity) -> &EntitySql {
        &self.entities[Entity::ALL
            .iter()
            .position(|x| *x == e)
            .expect("every entity has SQL")]
    }
}

/// A list of `n` placeholders starting at `$first`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every field of `e` as it is written in the file, with the `FROM` and joins that
/// name its parents; the field at `raw`, a parent, as the parent's id instead.
fn fields_from(e: Entity, raw: Option<usize>) -> (Vec<String>, String) {
    let t = table(e);
    let mut select = Vec::new();
    let mut joins = String::new();
    for (i, f) in e.fields().iter().enumerate() {
        match f.kind {
            FieldKind::ServiceRef => select.push("s.service_ref".to_string()),
            FieldKind::OwnRef | FieldKind::Text | FieldKind::Int | FieldKind::Real => {
                select.push(format!("t.{}", f.name))
            }
            FieldKind::Ref(_) if raw == Some(i) => {
                select.push(format!("t.{}", parent_column(f.name)))
            }
            FieldKind::Ref(parent) => {
                let alias = format!("p{i}");
                let on_service = if parent.is_tenant() {
                    format!("{alias}.service_id = t.service_id AND ")
                } else {
                    String::new()
                };
                joins.push_str(&format!(
                    " LEFT JOIN {} {alias} ON {on_service}{alias}.{} = t.{}",
                    table(parent),
                    id_column(parent),
                    parent_column(f.name)
                ));
                select.push(format!("{alias}.{}", parent.ref_field()));
            }
        }
    }
    let from = if e.is_tenant() {
        format!("FROM {t} t JOIN services s ON s.service_id = t.service_id{joins}")
    } else {
        format!("FROM {t} t{joins}")
    };
    (select, from)
}

fn build(e: Entity) -> EntitySql {
    let t = table(e);
    let id = id_column(e);
    let own = e.ref_field();
    let tenant = e.is_tenant();

    // Export: every field as it is written in the file.
    let (select, from) = fields_from(e, None);
    let order = if tenant {
        format!("ORDER BY s.service_ref, t.{own}")
    } else {
        format!("ORDER BY t.{own}")
    };
    let base = format!("SELECT {} {from}", select.join(", "));
    let export: Arc<str> = format!("{base} {order}").into();

    // Writes and comparisons: parent id columns, then value columns.
    let parent_cols: Vec<String> = e.ref_fields().map(|(f, _)| parent_column(f.name)).collect();
    let value_cols: Vec<&str> = e.value_fields().map(|f| f.name).collect();
    let data_cols: Vec<String> = parent_cols
        .iter()
        .cloned()
        .chain(value_cols.iter().map(|c| c.to_string()))
        .collect();
    // Tenant statements bind the service id as $1 and the id or reference as $2;
    // organisations and services bind only the id or reference, as $1.
    let (key, key_ref, first) = if tenant {
        (
            format!("service_id = $1 AND {id} = $2"),
            format!("service_id = $1 AND {own} = $2"),
            3,
        )
    } else {
        (format!("{id} = $1"), format!("{own} = $1"), 2)
    };
    let find_id = format!("SELECT {id} FROM {t} WHERE {key_ref}").into();
    let stored = format!(
        "SELECT {} FROM {t} WHERE {key}",
        if data_cols.is_empty() {
            "1".to_string()
        } else {
            data_cols.join(", ")
        }
    )
    .into();

    let mut cols: Vec<String> = Vec::new();
    if tenant {
        cols.push("service_id".into());
    }
    cols.push(id.into());
    cols.push(own.into());
    cols.extend(data_cols.iter().cloned());
    cols.extend([
        "entered_via".to_string(),
        "created_at".into(),
        "updated_at".into(),
    ]);
    let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    let insert = format!(
        "INSERT INTO {t} ({}) VALUES ({})",
        cols.join(", "),
        placeholders.join(", ")
    )
    .into();
    let sets: Vec<String> = data_cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + first))
        .collect();
    let update = format!(
        "UPDATE {t} SET {}, updated_at = ${} WHERE {key}",
        sets.join(", "),
        data_cols.len() + first
    )
    .into();
    let delete = format!("DELETE FROM {t} WHERE {key}").into();
    let service_key = if tenant { "service_id = $1 AND " } else { "" };
    let find_ids = format!("SELECT {own}, {id} FROM {t} WHERE {service_key}{own} IN (");
    let stored_many = format!(
        "SELECT {id}{}{} FROM {t} WHERE {service_key}{id} IN (",
        if data_cols.is_empty() { "" } else { ", " },
        data_cols.join(", ")
    );
    // One step up the chain from a record to its client (goal → plan → episode →
    // referral → client): each step is a lookup on the parent's key, which keeps the
    // planner on the primary keys however stale its statistics are mid-import (a
    // three-way join here was planned as a scan on PostgreSQL).
    let client_step = client_chain_parent(e).map(|p| {
        (
            p,
            format!(
                // No DISTINCT (the caller removes repeats): with it, SQLite answers from
                // the covering index on (service_id, parent), walking every row of the
                // service instead of looking each id up (5 ms a chunk of sessions).
                "SELECT {} FROM {t} WHERE service_id = $1 AND {id} IN (",
                id_column(p)
            ),
        )
    });
    // Rows found by an indexed column: the id first, then every field as exported, but
    // a reference to a parent by that column as the parent's id, for the caller (who
    // has the parents) to name: joined, PostgreSQL planned a hash of every episode of
    // the service to name the parents of each page's sessions (27 ms of a 38 ms page
    // at 100,000 episodes).
    let keyed = std::iter::once((id.to_string(), None))
        .chain(
            e.fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| matches!(f.kind, FieldKind::Ref(_)))
                .map(|(i, f)| (parent_column(f.name), Some(i))),
        )
        .map(|(column, raw)| {
            let (select, from) = fields_from(e, raw);
            KeyedSql {
                exprs: format!("t.{id}, {}", select.join(", ")),
                from: format!("{from} WHERE t.service_id = $1 AND t.{column} IN ("),
                column,
                parent_field: raw,
            }
        })
        .collect();
    let mut insert_own = vec![
        (id.to_string(), FieldKind::Int),
        (own.to_string(), FieldKind::OwnRef),
    ];
    insert_own.extend(parent_cols.iter().map(|c| (c.clone(), FieldKind::Int)));
    insert_own.extend(e.value_fields().map(|f| (f.name.to_string(), f.kind)));
    EntitySql {
        find_ids,
        stored_many,
        client_step,
        keyed,
        insert_own,
        export,
        listing: base,
        field_exprs: select,
        find_id,
        stored,
        insert,
        update,
        delete,
    }
}
