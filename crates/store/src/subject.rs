//! Everything held about one client, for a subject access request: their records of every
//! kind, what was derived from them, who viewed or changed them and when, and the
//! releases of their service's figures. See `docs/governance.md`.

use crate::{Backend, Condition, Database, StoreResult};
use dcrs_domain::record::Entity;

/// Each kind of a client's records and the field that ties it to its parent's reference:
/// in the order they are found, parents first.
const CHAIN: [(Entity, &str, Entity); 8] = [
    (Entity::Referral, "client_ref", Entity::Client),
    (Entity::Episode, "referral_ref", Entity::Referral),
    (Entity::Assessment, "episode_ref", Entity::Episode),
    (Entity::Plan, "episode_ref", Entity::Episode),
    (Entity::Goal, "plan_ref", Entity::Plan),
    (Entity::Session, "episode_ref", Entity::Episode),
    (Entity::OnwardReferral, "episode_ref", Entity::Episode),
    (Entity::WiderIssue, "episode_ref", Entity::Episode),
];

/// A record as its fields by name, as [`Database::list_records`] gives it.
pub type Fields = Vec<(&'static str, String)>;

/// A client's area as stored: LSOA, local authority, IMD decile and quintile.
type Area = (Option<String>, Option<String>, Option<i64>, Option<i64>);

/// An audit entry as read here: id, when, who, what, detail, and the record it is about.
type Row = (i64, String, String, String, Option<String>, Option<String>);

/// A line of the audit log as a subject access export shows it.
#[derive(Debug, Clone)]
pub struct Processing {
    pub at: String,
    pub actor: String,
    pub action: String,
    /// The kind and reference of the record, when the entry is about one of theirs.
    pub record: Option<(String, String)>,
    /// The values written, for a change to one of their records; nothing for a view (a
    /// list they were on names others too).
    pub detail: Option<String>,
}

/// Everything held about one client of a service.
#[derive(Debug, Clone)]
pub struct SubjectAccess {
    pub service_ref: String,
    pub service_name: String,
    pub client_ref: String,
    /// Each kind's records, each as its fields by name (the import format's).
    pub records: Vec<(Entity, Vec<Fields>)>,
    /// What was worked out from their records and stored: the area and deprivation of
    /// their postcode, each assessment's BMI.
    pub derived: Vec<(String, String)>,
    /// Who viewed or changed their records, and when.
    pub processing: Vec<Processing>,
    /// Releases of the service's figures (aggregate; no record of theirs leaves in one).
    pub releases: Vec<Processing>,
    /// The restriction on processing their records, if there is one.
    pub restricted: Option<crate::Restriction>,
}

impl SubjectAccess {
    /// Every reference of theirs, of every kind.
    pub fn references(&self) -> Vec<(Entity, String)> {
        self.records
            .iter()
            .flat_map(|(e, rows)| {
                rows.iter().filter_map(move |r| {
                    let own = e.ref_field();
                    r.iter()
                        .find(|(k, _)| *k == own)
                        .map(|(_, v)| (*e, v.clone()))
                })
            })
            .collect()
    }

    /// As JSON: `records` by the dataset's file names, `derived`, `processing` and
    /// `releases`.
    pub fn to_json(&self) -> serde_json::Value {
        let records: serde_json::Map<String, serde_json::Value> = self
            .records
            .iter()
            .map(|(e, rows)| {
                let rows: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.clone())))
                            .collect::<serde_json::Map<_, _>>()
                            .into()
                    })
                    .collect();
                (
                    e.file_name().trim_end_matches(".csv").to_string(),
                    rows.into(),
                )
            })
            .collect();
        let line = |p: &Processing| {
            serde_json::json!({
                "at": p.at, "actor": p.actor, "action": p.action,
                "record": p.record.as_ref().map(|(e, r)| serde_json::json!({"kind": e, "reference": r})),
                "detail": p.detail.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
            })
        };
        serde_json::json!({
            "service": {"reference": self.service_ref, "name": self.service_name},
            "client_ref": self.client_ref,
            "records": records,
            "derived": self.derived.iter().map(|(k, v)| serde_json::json!({"what": k, "value": v})).collect::<Vec<_>>(),
            "processing": self.processing.iter().map(line).collect::<Vec<_>>(),
            "releases": self.releases.iter().map(line).collect::<Vec<_>>(),
            "processing_restricted": self.restricted.as_ref().map(|r| serde_json::json!({
                "since": r.at, "by": r.by, "reason": r.reason,
            })),
        })
    }
}

impl Database {
    /// Everything held about a client of a service (see [`SubjectAccess`]); `None` when
    /// the service has no such client.
    pub async fn subject_access(
        &self,
        service_id: i64,
        client_ref: &str,
    ) -> StoreResult<Option<SubjectAccess>> {
        let by = |field: &str, value: &str| [Condition::Equals(field.into(), value.into())];
        let clients = self
            .list_records(
                Entity::Client,
                Some(service_id),
                &by("client_ref", client_ref),
                None,
                1,
            )
            .await?;
        if clients.is_empty() {
            return Ok(None);
        }
        let mut records = vec![(Entity::Client, clients)];
        for (entity, field, parent) in CHAIN {
            let parents: Vec<String> = records
                .iter()
                .filter(|(e, _)| *e == parent)
                .flat_map(|(_, rows)| {
                    rows.iter().filter_map(|r| {
                        r.iter()
                            .find(|(k, _)| *k == parent.ref_field())
                            .map(|(_, v)| v.clone())
                    })
                })
                .collect();
            let mut rows = Vec::new();
            for p in parents {
                rows.extend(
                    self.list_records(entity, Some(service_id), &by(field, &p), None, 100_000)
                        .await?,
                );
            }
            records.push((entity, rows));
        }
        let (service_ref, service_name): (String, String) =
            sqlx::query_as("SELECT service_ref, name FROM services WHERE service_id = $1")
                .bind(service_id)
                .fetch_one(&self.pool)
                .await?;
        let mut derived = Vec::new();
        let area: Option<Area> = sqlx::query_as(
            "SELECT lsoa11cd, lad_cd, imd_decile, imd_quintile FROM clients \
                 WHERE service_id = $1 AND client_ref = $2",
        )
        .bind(service_id)
        .bind(client_ref.to_string())
        .fetch_optional(&self.pool)
        .await?;
        if let Some((lsoa, lad, decile, quintile)) = area {
            let text = |v: Option<String>| v.unwrap_or_else(|| "not known".into());
            let number = |v: Option<i64>| v.map_or("not known".into(), |n| n.to_string());
            derived.push(("Lower-layer super output area (2011)".into(), text(lsoa)));
            derived.push(("Local authority".into(), text(lad)));
            derived.push(("National IMD decile".into(), number(decile)));
            derived.push(("National IMD quintile".into(), number(quintile)));
        }
        let access = SubjectAccess {
            service_ref,
            service_name,
            client_ref: client_ref.to_string(),
            records,
            derived,
            processing: Vec::new(),
            releases: Vec::new(),
            restricted: None,
        };
        let mut refs = access.references();
        // Clients merged into this one: the entries about their own record keep their
        // reference.
        let mut conn = self.pool.acquire().await?;
        for m in crate::merge::merged_clients(&mut conn, service_id, client_ref).await? {
            refs.push((Entity::Client, m));
        }
        drop(conn);
        let mut derived = access.derived.clone();
        for (entity, r) in &refs {
            if *entity != Entity::Assessment {
                continue;
            }
            let bmi: Option<f64> = sqlx::query_scalar(
                "SELECT bmi FROM assessments WHERE service_id = $1 AND assessment_ref = $2",
            )
            .bind(service_id)
            .bind(r.clone())
            .fetch_optional(&self.pool)
            .await?
            .flatten();
            if let Some(b) = bmi {
                derived.push((format!("BMI of assessment {r}"), format!("{b:.1}")));
            }
        }
        let contains = match self.backend {
            Backend::Sqlite => "instr(detail, $2) > 0",
            Backend::Postgres => "strpos(detail, $2) > 0",
        };
        let mut processing: Vec<(i64, Processing)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (entity, r) in &refs {
            // Entries about one of their records, by kind and reference; then entries
            // naming the reference among others (a list viewed), without their detail.
            let own: Vec<Row> = sqlx::query_as(
                "SELECT audit_id, at, actor, action, detail, record_ref FROM audit_log \
                 WHERE service_id = $1 AND record_ref = $2 AND entity = $3",
            )
            .bind(service_id)
            .bind(r.clone())
            .bind(entity.label().to_string())
            .fetch_all(&self.pool)
            .await?;
            let quoted = format!("\"{r}\"");
            let sql = format!(
                "SELECT audit_id, at, actor, action, CAST(NULL AS TEXT), record_ref FROM audit_log \
                 WHERE service_id = $1 AND ({contains} OR record_ref = $3) \
                 AND action LIKE 'view.%'"
            );
            let named: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(service_id)
                .bind(quoted)
                .bind(r.clone())
                .fetch_all(&self.pool)
                .await?;
            for (id, at, actor, action, detail, about) in own.into_iter().chain(named) {
                if !seen.insert(id) {
                    continue;
                }
                // About this record itself, or it among others in a list.
                let mine = about.as_deref() == Some(r.as_str());
                processing.push((
                    id,
                    Processing {
                        at,
                        actor,
                        action: action.clone(),
                        record: mine.then(|| (entity.label().to_string(), r.clone())),
                        detail: detail.filter(|_| action.starts_with("record.")),
                    },
                ));
            }
        }
        processing.sort_by_key(|(id, _)| *id);
        let sql = format!(
            "SELECT audit_id, at, actor, action, detail FROM audit_log \
             WHERE action LIKE 'report.release%' AND (service_id = $1 OR \
             (service_id IS NULL AND {contains})) ORDER BY audit_id"
        );
        let releases: Vec<(i64, String, String, String, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(service_id)
                .bind(format!("\"{}\"", access.service_ref))
                .fetch_all(&self.pool)
                .await?;
        let restricted = self.restriction(service_id, client_ref).await?;
        Ok(Some(SubjectAccess {
            derived,
            restricted,
            processing: processing.into_iter().map(|(_, p)| p).collect(),
            releases: releases
                .into_iter()
                .map(|(_, at, actor, action, detail)| Processing {
                    at,
                    actor,
                    action,
                    record: None,
                    detail,
                })
                .collect(),
            ..access
        }))
    }
}
