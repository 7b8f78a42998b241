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
    SourceGroup, YesNoUnknown,
};
use dcrs_store::{Backend, Database};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

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
    // Kept beside the SQL generated from it (age_band_sql).
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

/// Counts of new clients by each characteristic the reach report shows.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct NewClients {
    /// By national quintile 1–5, then unknown.
    pub quintile: [i64; 6],
    /// By ethnic group (index into [`ETHNIC_GROUPS`]).
    pub ethnic_group: [i64; 6],
    /// By sex, in the order of [`Sex::ALL`].
    pub sex: [i64; 4],
    /// By age band at first contact (index into [`AGE_BANDS`]).
    pub age_band: [i64; 6],
    /// By GP registration, in the order of [`YesNoUnknown::ALL`].
    pub gp: [i64; 3],
}

/// Sums over the episodes with both values of one measure.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct MeasureSums {
    /// Episodes with both values.
    pub n: i64,
    /// Sum of baseline values.
    pub baseline: f64,
    /// Sum of exit values.
    pub exit: f64,
    /// Sum of differences (exit − baseline).
    pub diff: f64,
    /// Sum of squared differences.
    pub diff2: f64,
    /// Episodes whose value improved.
    pub improved: i64,
}

/// Paired change of the episodes of one quintile group.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct PairedSums {
    /// One per [`MEASURES`].
    pub measures: [MeasureSums; 8],
    /// Clients smoking at baseline with a status at exit.
    pub smokers: i64,
    /// Of them, not smoking at exit.
    pub quit: i64,
}

/// Workers active in the period with the same answers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkerGroup {
    /// Lives in the area served.
    pub lives_in_area: String,
    /// Quintile of the worker's home.
    pub home_quintile: Option<u8>,
    /// Qualification.
    pub qualification: String,
    /// How many.
    pub n: i64,
    /// Their full-time equivalents, each to the nearest hundredth, summed in
    /// hundredths: whole numbers, so the total does not depend on the order of adding.
    pub fte_hundredths: i64,
}

/// Everything one scope's reports count, for one period, as counts and sums (the
/// database does the counting, so a scope of many services adds its services' facts).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    /// Referrals received, by source.
    pub referrals: BTreeMap<String, i64>,
    /// Referrals received, by month (`YYYY-MM`) and source group (in the order of
    /// `SourceGroup::ALL`).
    pub referrals_by_month: BTreeMap<String, [i64; 4]>,
    /// Clients whose first-ever first contact falls in the period.
    pub new_clients: NewClients,
    /// Episodes opened, by kind (full, brief).
    pub opened: [i64; 2],
    /// Episodes opened, by days from referral to first contact.
    pub days_to_first_contact: BTreeMap<i64, i64>,
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
    /// Episodes closed, by exit reason code and kind (full, brief).
    pub closed: BTreeMap<String, [i64; 2]>,
    /// Full episodes closed in the period, by attended sessions.
    pub sessions_per_closed_full: BTreeMap<i64, i64>,
    /// Full episodes closed in the period by (quintile index, ethnic group, has outcome
    /// data).
    pub closed_full: [[[i64; 2]; 6]; 6],
    /// Goals finalised in the period by quintile index and status (fully, partly, not,
    /// abandoned).
    pub goals: [[i64; 4]; 6],
    /// Clients with finalised goals by quintile index and class (fully, partly, not).
    pub goal_clients: [[i64; 3]; 6],
    /// Paired change by quintile index.
    pub paired: [PairedSums; 6],
    /// The pathway cohort by (quintile index, ethnic group, last step reached 1–7).
    pub pathway: [[[i64; 7]; 6]; 6],
    /// Workers active in the period.
    pub workers: Vec<WorkerGroup>,
}

fn add<const N: usize>(a: &mut [i64; N], b: &[i64; N]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

fn add_map<K: Ord + Clone>(a: &mut BTreeMap<K, i64>, b: &BTreeMap<K, i64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

impl Facts {
    /// Adds another service's facts to these.
    pub fn merge(&mut self, o: &Facts) {
        add_map(&mut self.referrals, &o.referrals);
        for (k, v) in &o.referrals_by_month {
            add(self.referrals_by_month.entry(k.clone()).or_default(), v);
        }
        let (n, m) = (&mut self.new_clients, &o.new_clients);
        add(&mut n.quintile, &m.quintile);
        add(&mut n.ethnic_group, &m.ethnic_group);
        add(&mut n.sex, &m.sex);
        add(&mut n.age_band, &m.age_band);
        add(&mut n.gp, &m.gp);
        add(&mut self.opened, &o.opened);
        add_map(&mut self.days_to_first_contact, &o.days_to_first_contact);
        self.open_at_end += o.open_at_end;
        add(&mut self.sessions, &o.sessions);
        self.clients_seen += o.clients_seen;
        self.plans_agreed += o.plans_agreed;
        self.goals_set += o.goals_set;
        for (k, v) in &o.closed {
            add(self.closed.entry(k.clone()).or_default(), v);
        }
        add_map(
            &mut self.sessions_per_closed_full,
            &o.sessions_per_closed_full,
        );
        for q in 0..6 {
            for e in 0..6 {
                add(&mut self.closed_full[q][e], &o.closed_full[q][e]);
                add(&mut self.pathway[q][e], &o.pathway[q][e]);
            }
        }
        for q in 0..6 {
            add(&mut self.goals[q], &o.goals[q]);
            add(&mut self.goal_clients[q], &o.goal_clients[q]);
            let (p, r) = (&mut self.paired[q], &o.paired[q]);
            for (a, b) in p.measures.iter_mut().zip(&r.measures) {
                a.n += b.n;
                a.baseline += b.baseline;
                a.exit += b.exit;
                a.diff += b.diff;
                a.diff2 += b.diff2;
                a.improved += b.improved;
            }
            p.smokers += r.smokers;
            p.quit += r.quit;
        }
        self.workers.extend(o.workers.iter().cloned());
    }
}

/// The median of a distribution given as value → how many.
pub fn median_of(counts: &BTreeMap<i64, i64>) -> Option<f64> {
    let n: i64 = counts.values().sum();
    if n == 0 {
        return None;
    }
    // The values at positions (n-1)/2 and n/2 (0-based), averaged.
    let at = |k: i64| {
        let mut seen = 0;
        for (v, c) in counts {
            seen += c;
            if seen > k {
                return *v as f64;
            }
        }
        unreachable!("k is below the total")
    };
    Some((at((n - 1) / 2) + at(n / 2)) / 2.0)
}

/// The index of a quintile (0–4), or 5 for unknown.
pub fn quintile_index(q: Option<u8>) -> usize {
    q.map_or(5, |q| usize::from(q) - 1)
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
    /// The areas served as a person reads them: "Blackpool (E06000009)", or the code
    /// alone where the reference data do not name it. Pages only; files keep the codes.
    #[serde(skip)]
    pub areas_named: Vec<String>,
}

/// The names of the districts the services serve, by code, from the reference data.
async fn area_names(
    db: &Database,
    rows: &[sqlx::any::AnyRow],
) -> Result<std::collections::HashMap<String, String>, ReportError> {
    let mut codes: Vec<String> = Vec::new();
    for r in rows {
        let areas: String = r.try_get(3).map_err(store)?;
        codes.extend(
            areas
                .split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        );
    }
    codes.sort();
    codes.dedup();
    if codes.is_empty() {
        return Ok(Default::default());
    }
    let marks: Vec<String> = (1..=codes.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT lad_cd, lad_nm FROM ref_lad_region WHERE lad_cd IN ({})",
        marks.join(", ")
    );
    let mut q = sqlx::query_as::<_, (String, Option<String>)>(sqlx::AssertSqlSafe(sql));
    for c in &codes {
        q = q.bind(c.clone());
    }
    let found = q.fetch_all(db.pool()).await.map_err(store)?;
    Ok(found
        .into_iter()
        .filter_map(|(code, name)| Some((code, name?)))
        .collect())
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
    let names = area_names(db, &rows).await?;
    let named = |code: &String| match names.get(code) {
        Some(name) => format!("{name} ({code})"),
        None => code.clone(),
    };
    let all: Vec<ServiceInfo> = rows
        .iter()
        .map(|r| {
            let areas_served: Vec<String> = r
                .try_get::<String, _>(3)?
                .split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            Ok(ServiceInfo {
                id: r.try_get(0)?,
                service_ref: r.try_get(1)?,
                name: r.try_get(2)?,
                areas_named: areas_served.iter().map(named).collect(),
                areas_served,
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

/// Puts the service ids and the period's dates into a query.
pub(crate) fn fill(sql: &str, ids: &[i64], from: NaiveDate, to: NaiveDate) -> String {
    let services: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    sql.replace("{services}", &services.join(", "))
        .replace("{from}", &from.format("%Y-%m-%d").to_string())
        .replace("{to}", &to.format("%Y-%m-%d").to_string())
}

pub(crate) async fn rows(db: &Database, sql: String) -> Result<Vec<AnyRow>, ReportError> {
    let (sql, dates) = dates_as_parameters(&sql);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for d in dates {
        q = q.bind(d);
    }
    q.fetch_all(db.pool()).await.map_err(store)
}

/// Turns each quoted date (`'2010-04-01'`) of a filled statement into a parameter, `$1`
/// for the first date met, `$2` for the next different one, and so on, returning the
/// dates to bind in that order. The statements' text then depends on the services
/// alone, not on the period: the driver prepares each once per connection and
/// PostgreSQL can keep its plan, where a statement written out with its dates was
/// planned on every run (planning took as long as running for a dashboard's queries).
/// On SQLite a `$N` is named by its first place in the text, so the numbering follows
/// that order. Report statements hold no other quoted dates.
pub(crate) fn dates_as_parameters(sql: &str) -> (String, Vec<String>) {
    let is_date = |b: &[u8]| {
        b.len() == 10
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                _ => c.is_ascii_digit(),
            })
    };
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut dates: Vec<String> = Vec::new();
    let mut last = 0;
    let mut i = 0;
    while i + 12 <= bytes.len() {
        if bytes[i] == b'\'' && bytes[i + 11] == b'\'' && is_date(&bytes[i + 1..i + 11]) {
            let date = &sql[i + 1..i + 11];
            let n = match dates.iter().position(|d| d == date) {
                Some(k) => k + 1,
                None => {
                    dates.push(date.to_string());
                    dates.len()
                }
            };
            out.push_str(&sql[last..i]);
            out.push_str(&format!("${n}"));
            i += 12;
            last = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[last..]);
    (out, dates)
}

/// The rows of `sql` if `wanted`, else none (without asking the database).
pub(crate) async fn rows_if(
    wanted: bool,
    db: &Database,
    sql: String,
) -> Result<Vec<AnyRow>, ReportError> {
    if wanted {
        rows(db, sql).await
    } else {
        Ok(Vec::new())
    }
}

pub(crate) fn text(r: &AnyRow, i: usize) -> Result<Option<String>, ReportError> {
    r.try_get(i).map_err(store)
}

pub(crate) fn int(r: &AnyRow, i: usize) -> Result<Option<i64>, ReportError> {
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

/// SQL for the ethnic group of `c.ethnicity`, generated from [`ethnic_group`] so the
/// grouping is written once.
fn ethnic_group_sql() -> String {
    let mut case = String::from("CASE");
    for g in 0..5 {
        let codes: Vec<String> = Ethnicity::ALL
            .iter()
            .filter(|e| ethnic_group(**e) == g)
            .map(|e| format!("'{}'", e.code()))
            .collect();
        case.push_str(&format!(
            " WHEN c.ethnicity IN ({}) THEN {g}",
            codes.join(", ")
        ));
    }
    case.push_str(" ELSE 5 END");
    case
}

/// SQL for the age band (index into [`AGE_BANDS`]) at first contact, from the ISO dates:
/// whole years, less one when the birthday has not come yet that year.
fn age_band_sql() -> String {
    let age = "(CAST(substr(es.first_contact_on, 1, 4) AS INTEGER) \
               - CAST(substr(c.date_of_birth, 1, 4) AS INTEGER) \
               - CASE WHEN substr(es.first_contact_on, 6, 5) < substr(c.date_of_birth, 6, 5) \
                 THEN 1 ELSE 0 END)";
    let mut case = String::from("CASE");
    for (i, top) in [24, 34, 44, 54, 64].iter().enumerate() {
        debug_assert_eq!(age_band(*top), i);
        case.push_str(&format!(" WHEN {age} <= {top} THEN {i}"));
    }
    case.push_str(" ELSE 5 END");
    case
}

/// SQL for the paired sums of every measure, in [`MEASURES`] order: six columns each.
fn measures_sql() -> String {
    MEASURES
        .iter()
        .map(|(m, _, higher)| {
            let both = format!("b.{m} IS NOT NULL AND e.{m} IS NOT NULL");
            let better = if *higher { ">" } else { "<" };
            format!(
                "SUM(CASE WHEN {both} THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN {both} THEN CAST(b.{m} AS DOUBLE PRECISION) ELSE 0 END), \
                 SUM(CASE WHEN {both} THEN CAST(e.{m} AS DOUBLE PRECISION) ELSE 0 END), \
                 SUM(CASE WHEN {both} THEN CAST(e.{m} - b.{m} AS DOUBLE PRECISION) ELSE 0 END), \
                 SUM(CASE WHEN {both} THEN CAST((e.{m} - b.{m}) * (e.{m} - b.{m}) AS DOUBLE PRECISION) ELSE 0 END), \
                 SUM(CASE WHEN {both} AND e.{m} {better} b.{m} THEN 1 ELSE 0 END)"
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// SQL for the days from referral to first contact of an episode summary.
fn days_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "CAST(julianday(first_contact_on) - julianday(referral_received_on) AS INTEGER)"
        }
        Backend::Postgres => {
            "(CAST(first_contact_on AS DATE) - CAST(referral_received_on AS DATE))"
        }
    }
}

fn key_int(t: Option<String>) -> Option<i64> {
    t.and_then(|t| t.trim().parse().ok())
}

/// Reads the facts of every service in `ids` for the period `from..=to`.
/// Which counts to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every count a report can show.
    All,
    /// Only those behind [`crate::DASHBOARD_FIGURES`]: the rest stay at zero, so such
    /// counts are never kept for reuse by a report.
    Dashboard,
}

pub async fn facts(
    db: &Database,
    ids: &[i64],
    from: NaiveDate,
    to: NaiveDate,
    scope: Scope,
) -> Result<BTreeMap<i64, Facts>, ReportError> {
    let all = scope == Scope::All;
    let mut out: BTreeMap<i64, Facts> = ids.iter().map(|&i| (i, Facts::default())).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let eg = ethnic_group_sql();
    let q = |sql: &str| {
        fill(sql, ids, from, to)
            .replace("{ethnic_group}", &eg)
            .replace("{age_band}", &age_band_sql())
            .replace("{measures}", &measures_sql())
            .replace("{days_to_first_contact}", days_sql(db.backend()))
    };
    let sid = |r: &AnyRow| -> Result<i64, ReportError> { r.try_get(0).map_err(store) };
    let n_at = |r: &AnyRow, i: usize| -> Result<i64, ReportError> { Ok(int(r, i)?.unwrap_or(0)) };

    for r in rows(db, q(include_str!("sql/referrals.sql"))).await? {
        if let Some(source) = text(&r, 1)?.and_then(|s| ReferralSource::parse(&s)) {
            let f = out.entry(sid(&r)?).or_default();
            let n = n_at(&r, 3)?;
            *f.referrals.entry(source.code().to_string()).or_default() += n;
            let group = SourceGroup::ALL
                .iter()
                .position(|g| *g == source.group())
                .expect("every source has a group");
            let month = text(&r, 2)?.unwrap_or_default();
            f.referrals_by_month.entry(month).or_default()[group] += n;
        }
    }
    for r in rows(db, q(include_str!("sql/pathway.sql"))).await? {
        let q = quintile_index(quintile(&r, 1)?);
        let g = int(&r, 2)?.map_or(5, |g| g.clamp(0, 5) as usize);
        let reached = int(&r, 3)?.map_or(1, |s| s.clamp(1, 7) as usize);
        out.entry(sid(&r)?).or_default().pathway[q][g][reached - 1] += n_at(&r, 4)?;
    }
    for r in rows(db, q(include_str!("sql/new_clients.sql"))).await? {
        let f = &mut out.entry(sid(&r)?).or_default().new_clients;
        let key = text(&r, 2)?;
        let n = n_at(&r, 3)?;
        match text(&r, 1)?.as_deref() {
            Some("quintile") => {
                let q = key_int(key)
                    .and_then(|q| u8::try_from(q).ok())
                    .filter(|q| (1..=5).contains(q));
                f.quintile[quintile_index(q)] += n;
            }
            Some("ethnic_group") => {
                f.ethnic_group[key_int(key).map_or(5, |g| g.clamp(0, 5) as usize)] += n
            }
            Some("age_band") => f.age_band[key_int(key).map_or(0, |a| a.clamp(0, 5) as usize)] += n,
            Some("sex") => {
                let s = key.and_then(|k| Sex::parse(&k)).unwrap_or(Sex::NotStated);
                f.sex[Sex::ALL.iter().position(|x| *x == s).unwrap_or(3)] += n;
            }
            Some("gp") => {
                let g = key
                    .and_then(|k| YesNoUnknown::parse(&k))
                    .unwrap_or(YesNoUnknown::Unknown);
                f.gp[YesNoUnknown::ALL.iter().position(|x| *x == g).unwrap_or(2)] += n;
            }
            _ => {}
        }
    }
    for r in rows(db, q(include_str!("sql/opened.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        let key = text(&r, 2)?;
        let n = n_at(&r, 3)?;
        match text(&r, 1)?.as_deref() {
            Some("kind") => {
                let full = key.as_deref() == Some(EpisodeKind::Full.code());
                f.opened[usize::from(!full)] += n;
            }
            Some("days") => {
                if let Some(d) = key_int(key) {
                    *f.days_to_first_contact.entry(d).or_default() += n;
                }
            }
            _ => {}
        }
    }
    for r in rows(db, q(include_str!("sql/closed.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        let n = n_at(&r, 5)?;
        match text(&r, 1)?.as_deref() {
            Some("reason") => {
                let reason = text(&r, 2)?
                    .and_then(|s| ExitReason::parse(&s))
                    .unwrap_or(ExitReason::Other);
                let full = text(&r, 3)?.as_deref() == Some(EpisodeKind::Full.code());
                f.closed.entry(reason.code().to_string()).or_default()[usize::from(!full)] += n;
            }
            Some("sessions") => {
                if let Some(s) = key_int(text(&r, 2)?) {
                    *f.sessions_per_closed_full.entry(s).or_default() += n;
                }
            }
            Some("outcome") => {
                let q = key_int(text(&r, 2)?)
                    .and_then(|q| u8::try_from(q).ok())
                    .filter(|q| (1..=5).contains(q));
                let g = key_int(text(&r, 3)?).map_or(5, |g| g.clamp(0, 5) as usize);
                let with = text(&r, 4)?.as_deref() == Some("yes");
                f.closed_full[quintile_index(q)][g][usize::from(with)] += n;
            }
            _ => {}
        }
    }
    for r in rows(db, q(include_str!("sql/open_count.sql"))).await? {
        out.entry(sid(&r)?).or_default().open_at_end += n_at(&r, 1)?;
    }
    for r in rows(db, q(include_str!("sql/sessions.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        let n = n_at(&r, 2)?;
        match text(&r, 1)?.and_then(|s| Attendance::parse(&s)) {
            Some(Attendance::Yes) => f.sessions[0] += n,
            Some(Attendance::DidNotAttend) => f.sessions[1] += n,
            Some(Attendance::Cancelled) => f.sessions[2] += n,
            None => {}
        }
    }
    for r in rows_if(all, db, q(include_str!("sql/clients_seen.sql"))).await? {
        out.entry(sid(&r)?).or_default().clients_seen = n_at(&r, 1)?;
    }
    for r in rows_if(all, db, q(include_str!("sql/plans.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        f.plans_agreed = n_at(&r, 1)?;
        f.goals_set = n_at(&r, 2)?;
    }
    const STATUS: [GoalStatus; 4] = [
        GoalStatus::FullyAchieved,
        GoalStatus::PartlyAchieved,
        GoalStatus::NotAchieved,
        GoalStatus::Abandoned,
    ];
    for r in rows(db, q(include_str!("sql/goals.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        let qi = quintile_index(
            key_int(text(&r, 2)?)
                .and_then(|q| u8::try_from(q).ok())
                .filter(|q| (1..=5).contains(q)),
        );
        let n = n_at(&r, 4)?;
        match text(&r, 1)?.as_deref() {
            Some("goal") => {
                let status = text(&r, 3)?.and_then(|s| GoalStatus::parse(&s));
                if let Some(j) = STATUS.iter().position(|s| Some(*s) == status) {
                    f.goals[qi][j] += n;
                }
            }
            Some("client") => {
                let class = key_int(text(&r, 3)?).map_or(2, |c| c.clamp(0, 2) as usize);
                f.goal_clients[qi][class] += n;
            }
            _ => {}
        }
    }
    for r in rows_if(all, db, q(include_str!("sql/paired.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        let p = &mut f.paired[quintile_index(quintile(&r, 1)?)];
        for (m, sums) in p.measures.iter_mut().enumerate() {
            let c = 2 + m * 6;
            sums.n += n_at(&r, c)?;
            sums.baseline += real(&r, c + 1)?.unwrap_or(0.0);
            sums.exit += real(&r, c + 2)?.unwrap_or(0.0);
            sums.diff += real(&r, c + 3)?.unwrap_or(0.0);
            sums.diff2 += real(&r, c + 4)?.unwrap_or(0.0);
            sums.improved += n_at(&r, c + 5)?;
        }
        let c = 2 + MEASURES.len() * 6;
        p.smokers += n_at(&r, c)?;
        p.quit += n_at(&r, c + 1)?;
    }
    for r in rows_if(all, db, q(include_str!("sql/workers.sql"))).await? {
        let f = out.entry(sid(&r)?).or_default();
        let group = WorkerGroup {
            lives_in_area: text(&r, 1)?
                .and_then(|s| YesNoUnknown::parse(&s))
                .unwrap_or(YesNoUnknown::Unknown)
                .code()
                .to_string(),
            home_quintile: quintile(&r, 2)?,
            qualification: text(&r, 3)?
                .and_then(|s| Qualification::parse(&s))
                .unwrap_or(Qualification::None)
                .code()
                .to_string(),
            n: n_at(&r, 4)?,
            fte_hundredths: 0,
        };
        // One row per FTE value: each worker's FTE to the nearest hundredth, times how
        // many have it, added as integers.
        let each = (real(&r, 5)?.unwrap_or(0.0) * 100.0).round() as i64;
        let hundredths = each * group.n;
        match f.workers.iter_mut().find(|w| {
            (&w.lives_in_area, w.home_quintile, &w.qualification)
                == (
                    &group.lives_in_area,
                    group.home_quintile,
                    &group.qualification,
                )
        }) {
            Some(w) => {
                w.n += group.n;
                w.fte_hundredths += hundredths;
            }
            None => f.workers.push(WorkerGroup {
                fte_hundredths: hundredths,
                ..group
            }),
        }
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

/// The reference figures behind local need, read once for every district a request
/// covers; [`Areas::need`] adds them up for one scope.
#[derive(Debug, Clone, Default)]
pub struct Areas {
    population: String,
    by_quintile: BTreeMap<String, [f64; 5]>,
    census_districts: BTreeMap<String, std::collections::BTreeSet<String>>,
    census: BTreeMap<String, [f64; 6]>,
}

impl Areas {
    /// Reads the population by quintile and the census counts of the districts `areas`.
    pub async fn read(db: &Database, areas: &[String]) -> Result<Areas, ReportError> {
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
        let mut out = Areas {
            population: population.replace("pop_", ""),
            ..Areas::default()
        };
        let quoted = |codes: &mut dyn Iterator<Item = &String>| -> Vec<String> {
            // District codes are letters and digits only; anything else is left out.
            codes
                .filter(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(|a| format!("'{a}'"))
                .collect()
        };
        let codes = quoted(&mut areas.iter());
        if codes.is_empty() {
            return Ok(out);
        }
        let list = codes.join(", ");
        let year = db.imd_year().await?;
        let sql = include_str!("sql/population.sql")
            .replace("{population}", population)
            .replace("{year}", &year.to_string())
            .replace("{areas}", &list);
        for r in rows(db, sql).await? {
            if let (Some(lad), Some(q)) = (text(&r, 0)?, quintile(&r, 1)?) {
                out.by_quintile.entry(lad).or_default()[usize::from(q) - 1] +=
                    int(&r, 2)?.unwrap_or(0) as f64;
            }
        }
        // A district is its own census area too (when its code did not change).
        for a in areas {
            out.census_districts
                .entry(a.clone())
                .or_default()
                .insert(a.clone());
        }
        let sql = include_str!("sql/census_districts.sql").replace("{areas}", &list);
        for r in rows(db, sql).await? {
            if let (Some(lad19), Some(lad11)) = (text(&r, 0)?, text(&r, 1)?) {
                out.census_districts.entry(lad19).or_default().insert(lad11);
            }
        }
        let all: std::collections::BTreeSet<&String> =
            out.census_districts.values().flatten().collect();
        let districts = quoted(&mut all.into_iter());
        if !districts.is_empty() {
            let sql = include_str!("sql/census.sql").replace("{districts}", &districts.join(", "));
            for r in rows(db, sql).await? {
                let Some(lad11) = text(&r, 0)? else { continue };
                let group = text(&r, 1)?
                    .and_then(|t| Ethnicity::parse(&t))
                    .map(ethnic_group)
                    .unwrap_or(5);
                out.census.entry(lad11).or_default()[group] += int(&r, 2)?.unwrap_or(0) as f64;
            }
        }
        Ok(out)
    }

    /// The local need of a scope serving these districts (each counted once).
    pub fn need(&self, areas: &[String]) -> Need {
        let areas: std::collections::BTreeSet<&String> = areas.iter().collect();
        let mut need = Need {
            population: self.population.clone(),
            ..Need::default()
        };
        for a in &areas {
            if let Some(p) = self.by_quintile.get(*a) {
                for (n, v) in need.by_quintile.iter_mut().zip(p) {
                    *n += v;
                }
            }
        }
        let districts: std::collections::BTreeSet<&String> = areas
            .iter()
            .filter_map(|a| self.census_districts.get(*a))
            .flatten()
            .collect();
        for d in districts {
            if let Some(c) = self.census.get(d) {
                for (n, v) in need.by_ethnic_group.iter_mut().zip(c) {
                    *n += v;
                }
            }
        }
        need
    }
}

/// How a report's counts were obtained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheUse {
    /// Services whose counts were reused: nothing of theirs changed since they were made.
    pub reused: usize,
    /// Services counted afresh.
    pub counted: usize,
}

/// Bump when the meaning or shape of kept counts changes without their SQL changing.
const COUNTS_REVISION: u32 = 1;

/// Every query the counts come from: kept counts made by other SQL are not reused.
const COUNTING_SQL: &[&str] = &[
    include_str!("sql/census.sql"),
    include_str!("sql/census_districts.sql"),
    include_str!("sql/clients_seen.sql"),
    include_str!("sql/closed.sql"),
    include_str!("sql/goals.sql"),
    include_str!("sql/new_clients.sql"),
    include_str!("sql/open_count.sql"),
    include_str!("sql/opened.sql"),
    include_str!("sql/paired.sql"),
    include_str!("sql/pathway.sql"),
    include_str!("sql/plans.sql"),
    include_str!("sql/population.sql"),
    include_str!("sql/quality_assessments.sql"),
    include_str!("sql/quality_clients.sql"),
    include_str!("sql/quality_dob_postcode.sql"),
    include_str!("sql/quality_goals.sql"),
    include_str!("sql/quality_late.sql"),
    include_str!("sql/quality_nhs_duplicates.sql"),
    include_str!("sql/quality_open.sql"),
    include_str!("sql/quality_referrals.sql"),
    include_str!("sql/referrals.sql"),
    include_str!("sql/sessions.sql"),
    include_str!("sql/workers.sql"),
];

/// Identifies how kept counts were made: the revision above and a hash (FNV-1a) of the
/// SQL, so counts kept by another version of the program are counted again.
fn counts_format() -> String {
    // The SQL written by the program, and the rules applied to rows in it, count too.
    let generated = [
        ethnic_group_sql(),
        age_band_sql(),
        measures_sql(),
        crate::quality::assessments_sql(),
        days_sql(Backend::Sqlite).to_string(),
        days_sql(Backend::Postgres).to_string(),
        crate::quality::RULES.to_string(),
    ];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in COUNTING_SQL
        .iter()
        .copied()
        .chain(generated.iter().map(String::as_str))
        .flat_map(|s| s.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{COUNTS_REVISION}-{h:016x}")
}

/// Kept counts with the format they were made in.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope<T> {
    format: String,
    counts: T,
}

/// Counts kept per service and period, reused while the service's version stands.
pub trait Kept: Sized + serde::Serialize + serde::de::DeserializeOwned {
    /// The table that keeps them.
    const TABLE: &'static str;
}

impl Kept for Facts {
    const TABLE: &'static str = "report_facts";
}

/// The counts of every service in `ids`, reusing those kept from an earlier report of
/// the same period where the service's version has not moved since (every write to a
/// service moves it, in the write's own transaction), and counting the rest with
/// `count`. With `fresh`, everything is counted afresh. Counts made are kept for next
/// time; a failure to keep them (a busy database) only costs the next report the time.
pub async fn cached<T: Kept, F, Fut>(
    db: &Database,
    ids: &[i64],
    from: NaiveDate,
    to: NaiveDate,
    fresh: bool,
    keep_counted: bool,
    count: F,
) -> Result<(BTreeMap<i64, T>, CacheUse), ReportError>
where
    F: FnOnce(Vec<i64>) -> Fut,
    Fut: std::future::Future<Output = Result<BTreeMap<i64, T>, ReportError>>,
{
    if ids.is_empty() {
        return Ok((BTreeMap::new(), CacheUse::default()));
    }
    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let list = list.join(", ");
    // Each service's version, with its kept counts when they were made at that version,
    // in one statement (one snapshot). The versions are read before counting: counts
    // made after a concurrent write are kept under the older version, never reused.
    let kept = if fresh {
        "CAST(NULL AS TEXT) FROM services s \
         LEFT JOIN service_versions v ON v.service_id = s.service_id"
            .to_string()
    } else {
        format!(
            "k.facts FROM services s \
             LEFT JOIN service_versions v ON v.service_id = s.service_id \
             LEFT JOIN {} k ON k.service_id = s.service_id AND k.period_from = '{from}' \
             AND k.period_to = '{to}' AND k.version = COALESCE(v.version, 0)",
            T::TABLE
        )
    };
    let found = rows(
        db,
        format!(
            "SELECT s.service_id, COALESCE(v.version, 0), {kept} WHERE s.service_id IN ({list})"
        ),
    )
    .await?;
    let mut versions: BTreeMap<i64, i64> = BTreeMap::new();
    let mut out = BTreeMap::new();
    let format = counts_format();
    for r in &found {
        let (id, v, text): (i64, i64, Option<String>) = (
            r.try_get(0).map_err(store)?,
            r.try_get(1).map_err(store)?,
            r.try_get(2).map_err(store)?,
        );
        versions.insert(id, v);
        if let Some(text) = text
            && let Ok(e) = serde_json::from_str::<Envelope<T>>(&text)
            && e.format == format
        {
            out.insert(id, e.counts);
        }
    }
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !out.contains_key(id))
        .collect();
    let usage = CacheUse {
        reused: out.len(),
        counted: missing.len(),
    };
    if !missing.is_empty() {
        let counted = count(missing).await?;
        if keep_counted {
            keep(db, &counted, &versions, from, to).await;
        }
        out.extend(counted);
    }
    Ok((out, usage))
}

/// Keeps counts for reuse; errors are ignored (the counts are only a saving).
async fn keep<T: Kept>(
    db: &Database,
    counted: &BTreeMap<i64, T>,
    versions: &BTreeMap<i64, i64>,
    from: NaiveDate,
    to: NaiveDate,
) {
    // Keeping counts is worth no wait: while another write of this process is under
    // way, this report leaves them (the next report counts again).
    let Some(_gate) = db.try_write_gate() else {
        return;
    };
    let Ok(mut conn) = db.write_pool().acquire().await else {
        return;
    };
    let sqlite = db.backend() == Backend::Sqlite;
    // Another process (a long import) may hold SQLite's lock: try briefly, then leave them.
    if sqlite {
        let _ = sqlx::query("PRAGMA busy_timeout = 100")
            .execute(&mut *conn)
            .await;
    }
    let attempt = async {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let format = counts_format();
        for (id, f) in counted {
            let text = serde_json::to_string(&Envelope {
                format: format.clone(),
                counts: f,
            })
            .unwrap_or_default();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {} (service_id, period_from, period_to, version, facts) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (service_id, period_from, period_to) \
                 DO UPDATE SET version = excluded.version, facts = excluded.facts",
                T::TABLE
            )))
            .bind(*id)
            .bind(from.to_string())
            .bind(to.to_string())
            .bind(versions.get(id).copied().unwrap_or(0))
            .bind(text)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    };
    if let Err(e) = attempt.await {
        tracing::debug!("report counts not kept for reuse: {e}");
    }
    if sqlite {
        // Back to the pool's setting (Database::connect) for the connection's next user.
        let _ = sqlx::query("PRAGMA busy_timeout = 10000")
            .execute(&mut *conn)
            .await;
    }
}

#[cfg(test)]
mod parameter_tests {
    use super::dates_as_parameters;

    #[test]
    fn each_different_date_becomes_one_parameter_in_order_of_first_use() {
        let (sql, dates) = dates_as_parameters(
            "SELECT 1 WHERE a BETWEEN '2010-04-01' AND '2011-03-31' AND b <> 'yes' \
             OR c = '2010-04-01' OR d = '2010-4-01' OR e = '20100401'",
        );
        assert_eq!(
            sql,
            "SELECT 1 WHERE a BETWEEN $1 AND $2 AND b <> 'yes' \
             OR c = $1 OR d = '2010-4-01' OR e = '20100401'"
        );
        assert_eq!(dates, ["2010-04-01", "2011-03-31"]);
        assert_eq!(dates_as_parameters("'2010-04-01'").0, "$1");
        assert_eq!(dates_as_parameters("x '2010-04-0'").1.len(), 0);
    }
}
