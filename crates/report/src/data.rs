//! Reads what the reports count from the live tables, for every service in a request at
//! once, into per-service [`Facts`]; a scope's facts are the merge of its services'.
//! The episode summaries are kept up to date by every write (dcrs-store), so there is
//! no rebuild step between a write and a report.
//!
//! The SQL is in `sql/*.sql`. Values put into it are typed (service ids, dates written
//! by the program, district codes checked against their pattern), never user text.

use crate::ReportError;
use chrono::NaiveDate;
use dcrs_domain::codes::{
    Attendance, EpisodeKind, Ethnicity, ExitReason, GoalStatus, Qualification, ReferralSource, Sex,
    SmokingStatus, YesNoUnknown,
};
use dcrs_domain::types::age_on;
use dcrs_store::Database;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, HashSet};

/// The paired-change measures of analytics.md section 3, in report order: (column,
/// label, whether a higher value is an improvement).
pub const MEASURES: [(&str, &str, bool); 8] = [
    ("bmi", "BMI (kg/m²)", false),
    (
        "fruit_veg_portions_per_day",
        "Fruit and vegetable portions a day",
        true,
    ),
    ("high_fat_snacks_per_day", "High-fat snacks a day", false),
    ("active_days_per_week", "Active days a week", true),
    ("alcohol_units_per_week", "Alcohol units a week", false),
    ("self_efficacy", "Self efficacy (0-10)", true),
    ("general_health", "General health (0-100)", true),
    ("swemwbs_raw", "SWEMWBS raw score (7-35)", true),
];

/// The NHS ethnic groups of the reports, by category code (analytics.md section 2).
pub const ETHNIC_GROUPS: [&str; 6] = [
    "White",
    "Mixed",
    "Asian",
    "Black",
    "Other",
    "Not stated or not known",
];

/// The group (index into [`ETHNIC_GROUPS`]) of an NHS ethnic category.
pub fn ethnic_group(e: Ethnicity) -> usize {
    use Ethnicity::*;
    match e {
        A | B | C => 0,
        D | E | F | G => 1,
        H | J | K | L => 2,
        M | N | P => 3,
        R | S => 4,
        Z | NotKnown => 5,
    }
}

/// Age bands at first contact.
pub const AGE_BANDS: [&str; 6] = ["16-24", "25-34", "35-44", "45-54", "55-64", "65+"];

fn age_band(age: i32) -> usize {
    match age {
        ..=24 => 0,
        25..=34 => 1,
        35..=44 => 2,
        45..=54 => 3,
        55..=64 => 4,
        _ => 5,
    }
}

/// The steps of the pathway (analytics.md section 4).
pub const STEPS: [&str; 7] = [
    "Referred",
    "Seen (episode opened)",
    "Baseline recorded",
    "Plan agreed",
    "At least one review session",
    "Closed",
    "Exit assessment recorded",
];

/// A new client of the period.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// National IMD quintile, when the postcode was found.
    pub quintile: Option<u8>,
    /// Index into [`ETHNIC_GROUPS`].
    pub ethnic_group: usize,
    /// Sex.
    pub sex: Sex,
    /// Index into [`AGE_BANDS`] at first contact.
    pub age_band: usize,
    /// Registered with a GP.
    pub gp: YesNoUnknown,
}

/// An episode closed in the period with a baseline and an exit assessment.
#[derive(Debug, Clone)]
pub struct Paired {
    /// The client's quintile.
    pub quintile: Option<u8>,
    /// Baseline values of [`MEASURES`].
    pub baseline: [Option<f64>; 8],
    /// Exit values.
    pub exit: [Option<f64>; 8],
    /// Smoking status at baseline and exit.
    pub smoking: (Option<SmokingStatus>, Option<SmokingStatus>),
}

/// A worker active in the period.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Lives in the area served.
    pub lives_in_area: YesNoUnknown,
    /// Quintile of the worker's home.
    pub home_quintile: Option<u8>,
    /// Qualification.
    pub qualification: Qualification,
    /// Full-time equivalent.
    pub fte: f64,
}

/// Everything one scope's reports count, for one period.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Referrals received, by source.
    pub referrals: BTreeMap<ReferralSource, i64>,
    /// Clients whose first-ever first contact falls in the period.
    pub new_clients: Vec<NewClient>,
    /// Episodes opened, by kind (full, brief).
    pub opened: [i64; 2],
    /// Days from referral to first contact, per episode opened.
    pub days_to_first_contact: Vec<f64>,
    /// Episodes open at the period's end.
    pub open_at_end: i64,
    /// Sessions held, by attendance (attended, did not attend, cancelled).
    pub sessions: [i64; 3],
    /// Clients with an attended session in the period.
    pub clients_seen: i64,
    /// Plans agreed in the period.
    pub plans_agreed: i64,
    /// Goals on plans agreed in the period.
    pub goals_set: i64,
    /// Episodes closed, by exit reason and kind (full, brief).
    pub closed: BTreeMap<ExitReason, [i64; 2]>,
    /// Attended sessions of each full episode closed in the period.
    pub sessions_per_closed_full: Vec<f64>,
    /// Full episodes closed in the period: (quintile, ethnic group, has outcome data).
    pub closed_full: Vec<(Option<u8>, usize, bool)>,
    /// Goals finalised in the period: (service, client, status, quintile).
    pub goals_final: Vec<(i64, i64, GoalStatus, Option<u8>)>,
    /// Paired assessments of episodes closed in the period.
    pub paired: Vec<Paired>,
    /// Referrals of the pathway cohort: (quintile, ethnic group, steps reached).
    pub pathway: Vec<(Option<u8>, usize, [bool; 7])>,
    /// Workers active in the period.
    pub workers: Vec<Worker>,
}

impl Facts {
    /// Adds another service's facts to these.
    pub fn merge(&mut self, o: &Facts) {
        for (k, v) in &o.referrals {
            *self.referrals.entry(*k).or_default() += v;
        }
        self.new_clients.extend(o.new_clients.iter().cloned());
        for i in 0..2 {
            self.opened[i] += o.opened[i];
        }
        self.days_to_first_contact.extend(&o.days_to_first_contact);
        self.open_at_end += o.open_at_end;
        for i in 0..3 {
            self.sessions[i] += o.sessions[i];
        }
        self.clients_seen += o.clients_seen;
        self.plans_agreed += o.plans_agreed;
        self.goals_set += o.goals_set;
        for (k, v) in &o.closed {
            let e = self.closed.entry(*k).or_default();
            e[0] += v[0];
            e[1] += v[1];
        }
        self.sessions_per_closed_full
            .extend(&o.sessions_per_closed_full);
        self.closed_full.extend(o.closed_full.iter().cloned());
        self.goals_final.extend(o.goals_final.iter().cloned());
        self.paired.extend(o.paired.iter().cloned());
        self.pathway.extend(o.pathway.iter().cloned());
        self.workers.extend(o.workers.iter().cloned());
    }
}

/// A service in a report's scope.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceInfo {
    /// Internal id.
    #[serde(skip)]
    pub id: i64,
    /// Reference.
    pub service_ref: String,
    /// Name.
    pub name: String,
    /// 2019 district codes of the areas served.
    pub areas_served: Vec<String>,
}

/// The services with these references (all services when `None`), in reference order.
pub async fn services(
    db: &Database,
    refs: Option<&[String]>,
) -> Result<Vec<ServiceInfo>, ReportError> {
    let rows = sqlx::query(
        "SELECT service_id, service_ref, name, areas_served FROM services ORDER BY service_ref",
    )
    .fetch_all(db.pool())
    .await
    .map_err(store)?;
    let all: Vec<ServiceInfo> = rows
        .iter()
        .map(|r| {
            Ok(ServiceInfo {
                id: r.try_get(0)?,
                service_ref: r.try_get(1)?,
                name: r.try_get(2)?,
                areas_served: r
                    .try_get::<String, _>(3)?
                    .split(';')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(store)?;
    let Some(refs) = refs else {
        return Ok(all);
    };
    let mut out = Vec::new();
    for r in refs {
        match all.iter().find(|s| &s.service_ref == r) {
            Some(s) if !out.iter().any(|o: &ServiceInfo| o.id == s.id) => out.push(s.clone()),
            Some(_) => {}
            None => return Err(ReportError::UnknownService(r.clone())),
        }
    }
    Ok(out)
}

pub(crate) fn store(e: sqlx::Error) -> ReportError {
    ReportError::Store(dcrs_store::StoreError::Sql(e))
}

fn fill(sql: &str, ids: &[i64], from: NaiveDate, to: NaiveDate) -> String {
    let services: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    sql.replace("{services}", &services.join(", "))
        .replace("{from}", &from.format("%Y-%m-%d").to_string())
        .replace("{to}", &to.format("%Y-%m-%d").to_string())
}

async fn rows(db: &Database, sql: String) -> Result<Vec<AnyRow>, ReportError> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(db.pool())
        .await
        .map_err(store)
}

fn date(r: &AnyRow, i: usize) -> Result<Option<NaiveDate>, ReportError> {
    let t: Option<String> = r.try_get(i).map_err(store)?;
    Ok(t.and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok()))
}

fn text(r: &AnyRow, i: usize) -> Result<Option<String>, ReportError> {
    r.try_get(i).map_err(store)
}

fn int(r: &AnyRow, i: usize) -> Result<Option<i64>, ReportError> {
    r.try_get(i).map_err(store)
}

fn real(r: &AnyRow, i: usize) -> Result<Option<f64>, ReportError> {
    // Whole-number measures are stored as integers; read either.
    match r.try_get::<Option<f64>, _>(i) {
        Ok(v) => Ok(v),
        Err(_) => Ok(int(r, i)?.map(|v| v as f64)),
    }
}

fn quintile(r: &AnyRow, i: usize) -> Result<Option<u8>, ReportError> {
    Ok(int(r, i)?
        .and_then(|q| u8::try_from(q).ok())
        .filter(|q| (1..=5).contains(q)))
}

fn ethnicity(r: &AnyRow, i: usize) -> Result<usize, ReportError> {
    Ok(text(r, i)?
        .and_then(|t| Ethnicity::parse(&t))
        .map(ethnic_group)
        .unwrap_or(5))
}

/// Reads the facts of every service in `ids` for the period `from..=to`.
pub async fn facts(
    db: &Database,
    ids: &[i64],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<i64, Facts>, ReportError> {
    let mut out: BTreeMap<i64, Facts> = ids.iter().map(|&i| (i, Facts::default())).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let q = |sql: &str| fill(sql, ids, from, to);
    let sid = |r: &AnyRow| -> Result<i64, ReportError> { r.try_get(0).map_err(store) };

    for r in rows(db, q(include_str!("sql/referrals.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        let Some(source) = text(&r, 1)?.and_then(|s| ReferralSource::parse(&s)) else {
            continue;
        };
        *f.referrals.entry(source).or_default() += 1;
        let kind = text(&r, 4)?;
        if kind.as_deref() == Some(EpisodeKind::Brief.code()) {
            continue;
        }
        let seen = kind.is_some();
        let mut steps = [
            true,
            seen,
            seen && date(&r, 5)?.is_some(),
            seen && date(&r, 6)?.is_some(),
            seen && int(&r, 7)?.unwrap_or(0) > 0,
            seen && date(&r, 8)?.is_some(),
            seen && date(&r, 9)?.is_some(),
        ];
        // A funnel: a referral reaches a step only if it reached every step before it,
        // so each step is a subset of the one before.
        for j in 1..steps.len() {
            steps[j] = steps[j] && steps[j - 1];
        }
        f.pathway.push((quintile(&r, 2)?, ethnicity(&r, 3)?, steps));
    }

    let mut counted_new: HashSet<(i64, i64)> = HashSet::new();
    for r in rows(db, q(include_str!("sql/episodes.sql"))).await? {
        let service = sid(&r)?;
        let client: i64 = int(&r, 1)?.unwrap_or_default();
        let f = out.entry(service).or_default();
        let full = text(&r, 2)?.as_deref() == Some(EpisodeKind::Full.code());
        let first = date(&r, 3)?;
        let referred = date(&r, 4)?;
        let closed = date(&r, 5)?;
        let q5 = quintile(&r, 10)?;
        let eg = ethnicity(&r, 11)?;
        if let Some(first) = first.filter(|d| (from..=to).contains(d)) {
            f.opened[usize::from(!full)] += 1;
            if let Some(referred) = referred {
                f.days_to_first_contact
                    .push((first - referred).num_days() as f64);
            }
            let seen_before = int(&r, 15)?.unwrap_or(0) != 0;
            if !seen_before && counted_new.insert((service, client)) {
                let dob = date(&r, 13)?;
                f.new_clients.push(NewClient {
                    quintile: q5,
                    ethnic_group: eg,
                    sex: text(&r, 12)?
                        .and_then(|s| Sex::parse(&s))
                        .unwrap_or(Sex::NotStated),
                    age_band: age_band(dob.map(|d| age_on(d, first)).unwrap_or(0)),
                    gp: text(&r, 14)?
                        .and_then(|s| YesNoUnknown::parse(&s))
                        .unwrap_or(YesNoUnknown::Unknown),
                });
            }
        }
        if closed.is_some_and(|d| (from..=to).contains(&d)) {
            let reason = text(&r, 6)?
                .and_then(|s| ExitReason::parse(&s))
                .unwrap_or(ExitReason::Other);
            f.closed.entry(reason).or_default()[usize::from(!full)] += 1;
            if full {
                f.sessions_per_closed_full
                    .push(int(&r, 9)?.unwrap_or(0) as f64);
                let outcome = date(&r, 7)?.is_some() && date(&r, 8)?.is_some();
                f.closed_full.push((q5, eg, outcome));
            }
        }
    }

    for r in rows(db, q(include_str!("sql/open.sql"))).await? {
        out.entry(sid(&r)?).or_default().open_at_end += 1;
    }

    for r in rows(db, q(include_str!("sql/sessions.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        let n = int(&r, 2)?.unwrap_or(0);
        match text(&r, 1)?.and_then(|s| Attendance::parse(&s)) {
            Some(Attendance::Yes) => f.sessions[0] += n,
            Some(Attendance::DidNotAttend) => f.sessions[1] += n,
            Some(Attendance::Cancelled) => f.sessions[2] += n,
            None => {}
        }
    }
    for r in rows(db, q(include_str!("sql/clients_seen.sql"))).await? {
        out.entry(sid(&r)?).or_default().clients_seen = int(&r, 1)?.unwrap_or(0);
    }
    for r in rows(db, q(include_str!("sql/plans.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        f.plans_agreed = int(&r, 1)?.unwrap_or(0);
        f.goals_set = int(&r, 2)?.unwrap_or(0);
    }
    for r in rows(db, q(include_str!("sql/goals_final.sql"))).await? {
        let service = sid(&r)?;
        let status = text(&r, 2)?
            .and_then(|s| GoalStatus::parse(&s))
            .unwrap_or(GoalStatus::Open);
        let item = (service, int(&r, 1)?.unwrap_or(0), status, quintile(&r, 3)?);
        out.entry(service).or_default().goals_final.push(item);
    }

    // Two rows per episode, baseline before exit (the query orders them).
    let mut current: Option<(i64, i64, Paired)> = None;
    let assessments = rows(db, q(include_str!("sql/paired.sql"))).await?;
    for r in &assessments {
        let service = sid(r)?;
        let episode = int(r, 1)?.unwrap_or(0);
        let values: [Option<f64>; 8] = [
            real(r, 4)?,
            real(r, 5)?,
            real(r, 6)?,
            real(r, 7)?,
            real(r, 8)?,
            real(r, 9)?,
            real(r, 10)?,
            real(r, 11)?,
        ];
        let smoking = text(r, 12)?.and_then(|s| SmokingStatus::parse(&s));
        let baseline = text(r, 3)?.as_deref() == Some("baseline");
        match current.as_mut() {
            Some((s, e, p)) if *s == service && *e == episode => {
                if baseline {
                    p.baseline = values;
                    p.smoking.0 = smoking;
                } else {
                    p.exit = values;
                    p.smoking.1 = smoking;
                }
            }
            _ => {
                if let Some((s, _, p)) = current.take() {
                    out.entry(s).or_default().paired.push(p);
                }
                let mut p = Paired {
                    quintile: quintile(r, 2)?,
                    baseline: [None; 8],
                    exit: [None; 8],
                    smoking: (None, None),
                };
                if baseline {
                    p.baseline = values;
                    p.smoking.0 = smoking;
                } else {
                    p.exit = values;
                    p.smoking.1 = smoking;
                }
                current = Some((service, episode, p));
            }
        }
    }
    if let Some((s, _, p)) = current.take() {
        out.entry(s).or_default().paired.push(p);
    }

    for r in rows(db, q(include_str!("sql/workers.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        f.workers.push(Worker {
            lives_in_area: text(&r, 1)?
                .and_then(|s| YesNoUnknown::parse(&s))
                .unwrap_or(YesNoUnknown::Unknown),
            home_quintile: quintile(&r, 2)?,
            qualification: text(&r, 3)?
                .and_then(|s| Qualification::parse(&s))
                .unwrap_or(Qualification::None),
            fte: real(&r, 4)?.unwrap_or(0.0),
        });
    }
    Ok(out)
}

/// Population of the areas served by national quintile, and by NHS ethnic group (2011
/// Census), for a set of 2019 districts.
#[derive(Debug, Clone, Default)]
pub struct Need {
    /// Population by quintile 1–5 (index 0–4).
    pub by_quintile: [f64; 5],
    /// Census population by ethnic group (index into [`ETHNIC_GROUPS`], the last unused).
    pub by_ethnic_group: [f64; 6],
    /// Which population estimate was used.
    pub population: String,
}

/// Reads the local need of the districts `areas`.
pub async fn need(db: &Database, areas: &[String]) -> Result<Need, ReportError> {
    let population = match sqlx::query_scalar::<_, String>(
        "SELECT value FROM settings WHERE key = 'population_year'",
    )
    .fetch_optional(db.pool())
    .await
    .map_err(store)?
    .as_deref()
    {
        Some("mid2019") => "pop_mid2019",
        _ => "pop_mid2015",
    };
    let year = db.imd_year().await?;
    let mut need = Need {
        population: population.replace("pop_", ""),
        ..Need::default()
    };
    // District codes are letters and digits only; anything else is left out.
    let codes: Vec<String> = areas
        .iter()
        .filter(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|a| format!("'{a}'"))
        .collect();
    if codes.is_empty() {
        return Ok(need);
    }
    let areas = codes.join(", ");
    let sql = include_str!("sql/population.sql")
        .replace("{population}", population)
        .replace("{year}", &year.to_string())
        .replace("{areas}", &areas);
    for r in rows(db, sql).await? {
        if let Some(q) = quintile(&r, 0)? {
            need.by_quintile[usize::from(q) - 1] += int(&r, 1)?.unwrap_or(0) as f64;
        }
    }
    let sql = include_str!("sql/census.sql").replace("{areas}", &areas);
    for r in rows(db, sql).await? {
        let group = text(&r, 0)?
            .and_then(|t| Ethnicity::parse(&t))
            .map(ethnic_group)
            .unwrap_or(5);
        need.by_ethnic_group[group] += int(&r, 1)?.unwrap_or(0) as f64;
    }
    Ok(need)
}
