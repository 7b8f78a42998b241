//! Every figure of the activity, reach, outcomes, pathway, workforce and data-quality
//! reports (analytics.md sections 1–6) on generated data, recomputed here independently
//! of the report code: plain SQL over the base tables (`referrals`, `episodes`,
//! `sessions`, `plans`, `goals`, `assessments`, `clients`, `workers`) and the reference
//! tables (`ref_postcodes`, `ref_lsoa11`, `ref_lsoa01_lsoa11`, `ref_census_ethnicity`),
//! written from the text of analytics.md, dataset.md and docs/reports.md, plus small
//! arithmetic in Rust for medians, means, the Wilson interval and the t interval (the t
//! quantile is found here by integrating the t density; nothing is tabulated) and the
//! name rule for possible duplicate clients.
//!
//! The data: the six-service scenario and a three-service national deployment stored
//! side by side, then given what the data-quality checks look for (late entries,
//! duplicates, BMI out of range; see [`quality_cases`]). Policy `none`, so counts compare
//! exactly and other figures to 1e-6. Checked for a financial year, two quarters and a
//! date range, for all services together and for each service, counted afresh and, for
//! the year, asked again to reuse the kept counts; then for services changed to serve a
//! 2019 district the 2011 census does not know; on SQLite and PostgreSQL. Every numeric
//! cell of every table of the six sections must have a recomputed value, and every
//! recomputed value must be in the report. A figure that differs is listed as `MISMATCH`
//! in the failure.

use chrono::{Datelike, Days, NaiveDate, Utc};
use dcrs_domain::rules::RuleSettings;
use dcrs_exchange::{ImportOptions, import_dir};
use dcrs_refdata::LoadOptions;
use dcrs_report::doc::Unit;
use dcrs_report::{Figure, Kind, Period, Policy, Report, Request, run};
use dcrs_store::Database;
use dcrs_synth::{Options, Scale, generate};
use dcrs_testkit::each_backend;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The periods checked: a whole financial year, a quarter of another year, a quarter
/// before the national services began (their reports are empty), and a date range
/// across the end of a year.
const PERIODS: [&str; 4] = [
    "2010-11",
    "2009-10Q3",
    "2007-08Q1",
    "2009-05-17..2010-02-03",
];

/// The section ids of analytics.md 1–6 as the reports name them.
const SECTIONS: [&str; 6] = [
    "activity",
    "reach",
    "outcomes",
    "pathway",
    "workforce",
    "data-quality",
];

// ---------------------------------------------------------------------------------
// Code lists, written from dataset.md and analytics.md.

/// Referral sources with their groups (dataset.md, "Referral and episode").
const SOURCES: [(&str, &str); 18] = [
    ("self", "community"),
    ("friend_or_family", "community"),
    ("community_organisation", "community"),
    ("outreach_event", "community"),
    ("workplace", "community"),
    ("local_authority_service", "community"),
    ("housing_or_jobcentre", "community"),
    ("gp", "clinical"),
    ("practice_nurse", "clinical"),
    ("health_check", "clinical"),
    ("stop_smoking_service", "clinical"),
    ("pharmacy", "clinical"),
    ("hospital", "clinical"),
    ("mental_health_service", "clinical"),
    ("other_health_professional", "clinical"),
    ("probation", "criminal_justice"),
    ("prison", "criminal_justice"),
    ("other", "other"),
];
const SOURCE_GROUPS: [&str; 4] = ["community", "clinical", "criminal_justice", "other"];
const EXIT_REASONS: [&str; 7] = [
    "completed",
    "disengaged",
    "withdrew",
    "referred_on",
    "moved_away",
    "inappropriate_referral",
    "other",
];
const SEXES: [&str; 4] = ["male", "female", "other", "not_stated"];
const YES_NO_UNKNOWN: [&str; 3] = ["yes", "no", "unknown"];
const QUALIFICATIONS: [&str; 4] = ["none", "in_training", "level3_certificate", "level2_award"];
const AGE_BANDS: [&str; 6] = ["16-24", "25-34", "35-44", "45-54", "55-64", "65+"];
const QUINTILES: [&str; 6] = [
    "Quintile 1 (most deprived)",
    "Quintile 2",
    "Quintile 3",
    "Quintile 4",
    "Quintile 5 (least deprived)",
    "Quintile unknown",
];
const ETHNIC: [&str; 6] = [
    "White",
    "Mixed",
    "Asian",
    "Black",
    "Other",
    "Not stated or not known",
];
const STEPS: [(&str, &str); 7] = [
    ("referred", "Referred"),
    ("seen", "Seen (episode opened)"),
    ("baseline", "Baseline recorded"),
    ("plan", "Plan agreed"),
    ("review", "At least one review session"),
    ("closed", "Closed"),
    ("exit", "Exit assessment recorded"),
];
/// Paired-change measures: (label in the report, whether higher is better). BMI first,
/// derived here from weight and height; the others are assessment columns, in order.
const MEASURES: [(&str, bool); 8] = [
    ("BMI (kg/m²)", false),
    ("Fruit and vegetable portions a day", true),
    ("High-fat snacks a day", false),
    ("Active days a week", true),
    ("Alcohol units a week", false),
    ("Self efficacy (0-10)", true),
    ("General health (0-100)", true),
    ("SWEMWBS raw score (7-35)", true),
];
const MEASURE_COLUMNS: [&str; 7] = [
    "fruit_veg_portions_per_day",
    "high_fat_snacks_per_day",
    "active_days_per_week",
    "alcohol_units_per_week",
    "self_efficacy",
    "general_health",
    "swemwbs_raw",
];
/// A 2019 district that the 2011 census (and its table here) does not have.
const MERGED: &str = "E06000058";
const SMOKING: &str = "Smoking: not smoking at exit, of baseline smokers";

/// The fields whose completeness section 6 must show, per record kind (a referral's with
/// the stored column it is read from): the optional fields of dataset.md (a client's
/// names, NHS number, postcode and GP practice, a referral's referrer and reason, every
/// measure of an assessment except the cigarettes asked of smokers only, a goal's
/// `target_on`) and the client's coded fields that have a "not stated" or "not known"
/// code.
const CLIENT_FIELDS: [&str; 10] = [
    "given_name",
    "family_name",
    "nhs_number",
    "postcode",
    "gp_practice_code",
    "ethnicity",
    "sex",
    "gp_registered",
    "employment",
    "disability",
];
const REFERRAL_FIELDS: [(&str, &str); 2] = [
    ("referrer_org_ref", "referrer_org_id"),
    ("reason", "reason"),
];
const ASSESSMENT_FIELDS: [&str; 11] = [
    "height_cm",
    "weight_kg",
    "waist_cm",
    "fruit_veg_portions_per_day",
    "high_fat_snacks_per_day",
    "active_days_per_week",
    "alcohol_units_per_week",
    "smoking_status",
    "self_efficacy",
    "general_health",
    "swemwbs_raw",
];
/// The NHS pseudo-postcodes for no fixed abode and for an address not known: codes, not
/// places, so two clients carrying one do not share an address.
const PSEUDO_POSTCODES: [&str; 2] = ["ZZ99 3VZ", "ZZ99 3WZ"];
/// The rows of the data-quality checks table.
const POSTCODES_NOT_FOUND: &str = "Client postcodes not found in the reference data";
const BMI_FLAGGED: &str = "Assessments with a BMI outside 10-90";
const DUPLICATES: &str = "Possible duplicate clients";
const LATE: &str = "Records entered through the application more than 30 days after the event";
const OPEN_AT_END: &str = "Episodes open at the period's end";
const OPEN_STALE: &str = "Open episodes with no session in the 90 days before the period's end";

/// The NHS ethnic group (index into [`ETHNIC`]) of a category code column, in SQL.
fn ethnic_group_sql(column: &str) -> String {
    format!(
        "CAST(CASE WHEN {column} IN ('A', 'B', 'C') THEN 0 \
         WHEN {column} IN ('D', 'E', 'F', 'G') THEN 1 \
         WHEN {column} IN ('H', 'J', 'K', 'L') THEN 2 \
         WHEN {column} IN ('M', 'N', 'P') THEN 3 \
         WHEN {column} IN ('R', 'S') THEN 4 ELSE 5 END AS BIGINT)"
    )
}

// ---------------------------------------------------------------------------------
// Statistics, written here.

/// Simpson's rule for `f` over `[a, b]` with `n` (even) intervals.
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        let x = a + h * i as f64;
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(x);
    }
    s * h / 3.0
}

/// The two-sided 95% point of Student's t with `df` degrees of freedom. With
/// t = √df·tan θ the density becomes proportional to cos^(df−1) θ on [0, π/2), so
/// P(|T| ≤ t) = ∫₀^θ cos^(df−1) ÷ ∫₀^(π/2) cos^(df−1); θ is found by Newton's method on
/// Simpson integrals (the integral is concave in θ, so the steps approach from below).
fn t_975(df: u64, cache: &mut HashMap<u64, f64>) -> f64 {
    if let Some(t) = cache.get(&df) {
        return *t;
    }
    let k = (df - 1) as i32;
    let g = |u: f64| u.cos().powi(k);
    const N: usize = 4000;
    let whole = simpson(g, 0.0, std::f64::consts::FRAC_PI_2, N);
    let target = 0.95 * whole;
    let mut theta = (1.5 / (df as f64).sqrt()).atan();
    for _ in 0..100 {
        let step = (simpson(g, 0.0, theta, N) - target) / g(theta);
        theta -= step;
        if step.abs() < 1e-15 {
            break;
        }
    }
    let t = (df as f64).sqrt() * theta.tan();
    cache.insert(df, t);
    t
}

/// The 97.5% point of the standard normal, by bisection on a Simpson integral.
fn z_975() -> f64 {
    let phi = |x: f64| (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (mut lo, mut hi) = (0.0, 10.0);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if simpson(phi, 0.0, mid, 2000) < 0.475 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// A proportion k/n with its 95% Wilson interval; `None` without a denominator. A ratio
/// above 1 is no proportion and has no Wilson interval (the square root's argument is
/// negative), so only the ratio is given.
fn wilson(k: i64, n: i64, z: f64) -> [Option<f64>; 3] {
    if n <= 0 {
        return [None; 3];
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    if p > 1.0 {
        return [Some(p), None, None];
    }
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    [Some(p), Some(centre - half), Some(centre + half)]
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Mean, and with two or more values the 95% t interval and the sample SD.
struct MeanCi {
    mean: Option<f64>,
    low: Option<f64>,
    high: Option<f64>,
    sd: Option<f64>,
}

fn mean_ci(v: &[f64], cache: &mut HashMap<u64, f64>) -> MeanCi {
    let n = v.len();
    if n == 0 {
        return MeanCi {
            mean: None,
            low: None,
            high: None,
            sd: None,
        };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return MeanCi {
            mean: Some(mean),
            low: None,
            high: None,
            sd: None,
        };
    }
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let half = t_975(n as u64 - 1, cache) * sd / (n as f64).sqrt();
    MeanCi {
        mean: Some(mean),
        low: Some(mean - half),
        high: Some(mean + half),
        sd: Some(sd),
    }
}

/// Whole years of age on `on` for someone born on `born` (a 29 February birthday falls
/// on 1 March in other years).
fn age(born: NaiveDate, on: NaiveDate) -> i32 {
    let mut a = on.year() - born.year();
    if (on.month(), on.day()) < (born.month(), born.day()) {
        a -= 1;
    }
    a
}

fn age_band(a: i32) -> usize {
    match a {
        ..=24 => 0,
        25..=34 => 1,
        35..=44 => 2,
        45..=54 => 3,
        55..=64 => 4,
        _ => 5,
    }
}

// ---------------------------------------------------------------------------------
// SQL helpers.

async fn fetch(db: &Database, sql: String) -> Vec<AnyRow> {
    match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_all(db.pool())
        .await
    {
        Ok(r) => r,
        Err(e) => panic!("{e}\n{sql}"),
    }
}

fn int(r: &AnyRow, i: usize) -> Option<i64> {
    r.try_get::<Option<i64>, _>(i).unwrap()
}

fn num(r: &AnyRow, i: usize) -> Option<f64> {
    r.try_get::<Option<f64>, _>(i).unwrap()
}

fn text(r: &AnyRow, i: usize) -> Option<String> {
    r.try_get::<Option<String>, _>(i).unwrap()
}

fn day(r: &AnyRow, i: usize) -> Option<NaiveDate> {
    text(r, i).map(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").unwrap())
}

/// Quintile index 0–4, or 5 for unknown.
fn qi(q: Option<i64>) -> usize {
    match q {
        Some(q @ 1..=5) => (q - 1) as usize,
        _ => 5,
    }
}

/// The scope of one report: its services and the dates of the period, as SQL text.
struct Scope {
    ids: String,
    from: String,
    to: String,
}

impl Scope {
    /// Fills `{s}` (service ids), `{from}` and `{to}`.
    fn sql(&self, template: &str) -> String {
        template
            .replace("{s}", &self.ids)
            .replace("{from}", &self.from)
            .replace("{to}", &self.to)
    }
}

/// Per client of the scope: its national IMD 2019 quintile looked up from its postcode
/// (postcode → 2011 LSOA → the LSOA's IMD 2019 decile, quintile = ⌈decile ÷ 2⌉; NULL
/// when the postcode is blank or not in the lookup) and its ethnic group.
fn client_area_cte() -> String {
    format!(
        "ca AS (SELECT c.service_id, c.client_id, \
                CAST((l.imd2019_decile + 1) / 2 AS BIGINT) AS q, {eg} AS eg \
         FROM clients c \
         LEFT JOIN ref_postcodes p ON p.pcds = c.postcode \
         LEFT JOIN ref_lsoa11 l ON l.lsoa11cd = p.lsoa11cd \
         WHERE c.service_id IN ({{s}}))",
        eg = ethnic_group_sql("c.ethnicity")
    )
}

// ---------------------------------------------------------------------------------
// Expected figures.

/// Recomputed figures, keyed by (table, row, column); `None` where the report should
/// show no number (no denominator, no population, too few values).
#[derive(Default)]
struct Expected {
    figures: BTreeMap<(String, String, String), Option<f64>>,
}

impl Expected {
    fn put(&mut self, table: &str, row: &str, column: &str, value: Option<f64>) {
        let key = (table.to_string(), row.to_string(), column.to_string());
        assert!(
            self.figures.insert(key.clone(), value).is_none(),
            "expected twice: {key:?}"
        );
    }

    fn count(&mut self, table: &str, row: &str, column: &str, value: i64) {
        self.put(table, row, column, Some(value as f64));
    }

    fn none(&mut self, table: &str, row: &str, columns: &[&str]) {
        for c in columns {
            self.put(table, row, c, None);
        }
    }

    /// A share with its interval in the columns `prefix`, `prefix_low`, `prefix_high`.
    fn share(&mut self, table: &str, row: &str, prefix: &str, k: i64, n: i64, z: f64) {
        let [p, lo, hi] = wilson(k, n, z);
        self.put(table, row, prefix, p);
        self.put(table, row, &format!("{prefix}_low"), lo);
        self.put(table, row, &format!("{prefix}_high"), hi);
    }

    /// A breakdown table: each part's count and share of the total, then the total.
    fn breakdown(&mut self, table: &str, parts: &[(String, i64)], total_label: &str, z: f64) {
        let total: i64 = parts.iter().map(|p| p.1).sum();
        for (label, v) in parts {
            self.count(table, label, "count", *v);
            self.share(table, label, "share", *v, total, z);
        }
        self.count(table, total_label, "count", total);
        self.share(table, total_label, "share", total, total, z);
    }
}

/// Everything the six sections show for one scope and period, recomputed.
async fn expected(
    db: &Database,
    sc: &Scope,
    areas: &[String],
    z: f64,
    tq: &mut HashMap<u64, f64>,
) -> Expected {
    let mut x = Expected::default();
    let new = new_clients(db, sc).await;
    let (attended, closed_full) = activity(db, sc, &mut x, new.len() as i64, z).await;
    reach(db, &mut x, &new, areas, z).await;
    outcomes(db, sc, &mut x, closed_full, z, tq).await;
    pathway(db, sc, &mut x, z).await;
    workforce(db, sc, &mut x, attended, z).await;
    quality(db, sc, &mut x, z).await;
    x
}

/// New clients: clients whose earliest first contact (over all their episodes with the
/// service) falls in the period, with (quintile, ethnic group, sex, date of birth, GP
/// registration, first contact).
async fn new_clients(db: &Database, sc: &Scope) -> Vec<AnyRow> {
    let ca = client_area_cte();
    fetch(
        db,
        sc.sql(&format!(
            "WITH {ca}, firsts AS ( \
                 SELECT r.service_id, r.client_id, MIN(e.first_contact_on) AS first_on \
                 FROM episodes e JOIN referrals r \
                   ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
                 WHERE e.service_id IN ({{s}}) GROUP BY r.service_id, r.client_id) \
             SELECT ca.q, ca.eg, c.sex, c.date_of_birth, c.gp_registered, f.first_on \
             FROM firsts f \
             JOIN clients c ON c.service_id = f.service_id AND c.client_id = f.client_id \
             JOIN ca ON ca.service_id = f.service_id AND ca.client_id = f.client_id \
             WHERE f.first_on >= '{{from}}' AND f.first_on <= '{{to}}'"
        )),
    )
    .await
}

/// The financial quarter of an ISO date, written as the reports write it (`2010-11 Q3`):
/// April to June is Q1 of the year that starts in April.
fn quarter_label(date: &str) -> String {
    let year: i32 = date[0..4].parse().unwrap();
    let month: i32 = date[5..7].parse().unwrap();
    let start = if month >= 4 { year } else { year - 1 };
    let number = (month - 4).rem_euclid(12) / 3 + 1;
    format!("{start}-{:02} Q{number}", (start + 1) % 100)
}

/// Referrals by source group and quarter: one row per quarter that overlaps the period
/// (every one of them, even with no referrals), then the period's totals.
async fn referrals_by_quarter(
    db: &Database,
    sc: &Scope,
    x: &mut Expected,
    groups: &[(String, i64)],
) {
    // Every quarter the period touches: walk its months.
    let mut quarters: Vec<String> = Vec::new();
    let (mut y, mut m): (i32, i32) = (
        sc.from[0..4].parse().unwrap(),
        sc.from[5..7].parse().unwrap(),
    );
    while *format!("{y:04}-{m:02}") <= sc.to[0..7] {
        let q = quarter_label(&format!("{y:04}-{m:02}-01"));
        if !quarters.contains(&q) {
            quarters.push(q);
        }
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    let mut counts: HashMap<(String, String), i64> = HashMap::new();
    for r in fetch(
        db,
        sc.sql(
            "SELECT received_on, source FROM referrals \
             WHERE service_id IN ({s}) AND received_on >= '{from}' AND received_on <= '{to}'",
        ),
    )
    .await
    {
        let source = text(&r, 1).unwrap();
        let group = SOURCES.iter().find(|(s, _)| *s == source).unwrap().1;
        *counts
            .entry((quarter_label(&text(&r, 0).unwrap()), group.to_string()))
            .or_default() += 1;
    }
    let t = "referrals_by_quarter";
    for q in &quarters {
        let mut all = 0;
        for g in SOURCE_GROUPS {
            let n = counts
                .get(&(q.clone(), g.to_string()))
                .copied()
                .unwrap_or(0);
            x.count(t, q, g, n);
            all += n;
        }
        x.count(t, q, "all", all);
    }
    for (g, n) in groups {
        x.count(t, "Period", g, *n);
    }
    x.count(t, "Period", "all", groups.iter().map(|g| g.1).sum());
}

/// Section 1: activity. Returns the attended sessions and the full episodes closed.
async fn activity(db: &Database, sc: &Scope, x: &mut Expected, n_new: i64, z: f64) -> (i64, i64) {
    let mut by_source: HashMap<String, i64> = HashMap::new();
    for r in fetch(
        db,
        sc.sql(
            "SELECT source, COUNT(*) FROM referrals \
             WHERE service_id IN ({s}) AND received_on >= '{from}' AND received_on <= '{to}' \
             GROUP BY source",
        ),
    )
    .await
    {
        by_source.insert(text(&r, 0).unwrap(), int(&r, 1).unwrap());
    }
    let referrals: i64 = by_source.values().sum();
    let parts: Vec<(String, i64)> = SOURCES
        .iter()
        .map(|(s, g)| {
            (
                format!("{s} ({g})"),
                by_source.get(*s).copied().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        parts.iter().map(|p| p.1).sum::<i64>(),
        referrals,
        "every stored source is a dataset.md code"
    );
    x.breakdown("referrals_by_source", &parts, "All referrals", z);
    let groups: Vec<(String, i64)> = SOURCE_GROUPS
        .iter()
        .map(|g| {
            let n = SOURCES
                .iter()
                .filter(|(_, sg)| sg == g)
                .map(|(s, _)| by_source.get(*s).copied().unwrap_or(0))
                .sum();
            (g.to_string(), n)
        })
        .collect();
    x.breakdown("referrals_by_group", &groups, "All referrals", z);
    referrals_by_quarter(db, sc, x, &groups).await;

    let mut opened = [0i64; 2];
    for r in fetch(
        db,
        sc.sql(
            "SELECT kind, COUNT(*) FROM episodes WHERE service_id IN ({s}) \
             AND first_contact_on >= '{from}' AND first_contact_on <= '{to}' GROUP BY kind",
        ),
    )
    .await
    {
        match text(&r, 0).as_deref() {
            Some("full") => opened[0] = int(&r, 1).unwrap(),
            Some("brief") => opened[1] = int(&r, 1).unwrap(),
            k => panic!("episode kind {k:?}"),
        }
    }
    let waits: Vec<f64> = fetch(
        db,
        sc.sql(
            "SELECT r.received_on, e.first_contact_on FROM episodes e \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             WHERE e.service_id IN ({s}) \
               AND e.first_contact_on >= '{from}' AND e.first_contact_on <= '{to}'",
        ),
    )
    .await
    .iter()
    .map(|r| (day(r, 1).unwrap() - day(r, 0).unwrap()).num_days() as f64)
    .collect();
    let open_at_end = int(
        &fetch(
            db,
            sc.sql(
                "SELECT COUNT(*) FROM episodes WHERE service_id IN ({s}) \
                 AND first_contact_on <= '{to}' AND (closed_on IS NULL OR closed_on > '{to}')",
            ),
        )
        .await[0],
        0,
    )
    .unwrap();
    let mut sessions: HashMap<String, i64> = HashMap::new();
    for r in fetch(
        db,
        sc.sql(
            "SELECT attended, COUNT(*) FROM sessions WHERE service_id IN ({s}) \
             AND held_on >= '{from}' AND held_on <= '{to}' GROUP BY attended",
        ),
    )
    .await
    {
        sessions.insert(text(&r, 0).unwrap(), int(&r, 1).unwrap());
    }
    let s = |k: &str| sessions.get(k).copied().unwrap_or(0);
    let (attended, dna, cancelled) = (s("yes"), s("did_not_attend"), s("cancelled"));
    assert_eq!(attended + dna + cancelled, sessions.values().sum::<i64>());
    let plans_goals = fetch(
        db,
        sc.sql(
            "SELECT (SELECT COUNT(*) FROM plans WHERE service_id IN ({s}) \
                       AND agreed_on >= '{from}' AND agreed_on <= '{to}'), \
                    (SELECT COUNT(*) FROM goals g JOIN plans p \
                       ON p.service_id = g.service_id AND p.plan_id = g.plan_id \
                     WHERE g.service_id IN ({s}) \
                       AND p.agreed_on >= '{from}' AND p.agreed_on <= '{to}')",
        ),
    )
    .await;
    let (plans, goals) = (
        int(&plans_goals[0], 0).unwrap(),
        int(&plans_goals[0], 1).unwrap(),
    );
    let mut closed: HashMap<(String, String), i64> = HashMap::new();
    for r in fetch(
        db,
        sc.sql(
            "SELECT exit_reason, kind, COUNT(*) FROM episodes WHERE service_id IN ({s}) \
             AND closed_on >= '{from}' AND closed_on <= '{to}' GROUP BY exit_reason, kind",
        ),
    )
    .await
    {
        closed.insert(
            (text(&r, 0).unwrap(), text(&r, 1).unwrap()),
            int(&r, 2).unwrap(),
        );
    }
    let per_closed_full: Vec<f64> = fetch(
        db,
        sc.sql(
            "SELECT (SELECT COUNT(*) FROM sessions s WHERE s.service_id = e.service_id \
                       AND s.episode_id = e.episode_id AND s.attended = 'yes') \
             FROM episodes e WHERE e.service_id IN ({s}) AND e.kind = 'full' \
               AND e.closed_on >= '{from}' AND e.closed_on <= '{to}'",
        ),
    )
    .await
    .iter()
    .map(|r| int(r, 0).unwrap() as f64)
    .collect();
    let closed_full: i64 = EXIT_REASONS
        .iter()
        .map(|r| {
            closed
                .get(&(r.to_string(), "full".into()))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(closed_full, per_closed_full.len() as i64);

    let t = "activity_summary";
    let one = |x: &mut Expected, row: &str, v: Option<f64>| {
        x.put(t, row, "value", v);
        x.none(t, row, &["low", "high"]);
    };
    one(x, "Referrals received", Some(referrals as f64));
    one(x, "New clients", Some(n_new as f64));
    one(x, "Episodes opened", Some((opened[0] + opened[1]) as f64));
    one(x, "Episodes opened: full", Some(opened[0] as f64));
    one(x, "Episodes opened: brief", Some(opened[1] as f64));
    one(x, "Open caseload at period end", Some(open_at_end as f64));
    one(
        x,
        "Sessions recorded",
        Some((attended + dna + cancelled) as f64),
    );
    one(x, "Sessions attended", Some(attended as f64));
    one(x, "Sessions not attended", Some(dna as f64));
    one(x, "Sessions cancelled", Some(cancelled as f64));
    one(
        x,
        "Sessions attended or not attended",
        Some((attended + dna) as f64),
    );
    let [p, lo, hi] = wilson(dna, attended + dna, z);
    x.put(t, "Did-not-attend rate", "value", p);
    x.put(t, "Did-not-attend rate", "low", lo);
    x.put(t, "Did-not-attend rate", "high", hi);
    one(x, "Plans agreed", Some(plans as f64));
    one(
        x,
        "Goals set (on plans agreed in the period)",
        Some(goals as f64),
    );
    one(x, "Full episodes closed", Some(closed_full as f64));
    one(
        x,
        "Median attended sessions per closed full episode",
        median(&per_closed_full),
    );
    one(
        x,
        "Median days from referral to first contact (episodes opened)",
        median(&waits),
    );
    let t = "episodes_closed_by_exit_reason";
    let mut totals = [0i64; 2];
    for reason in EXIT_REASONS {
        let f = closed
            .get(&(reason.into(), "full".into()))
            .copied()
            .unwrap_or(0);
        let b = closed
            .get(&(reason.into(), "brief".into()))
            .copied()
            .unwrap_or(0);
        x.count(t, reason, "full", f);
        x.count(t, reason, "brief", b);
        x.count(t, reason, "all", f + b);
        totals[0] += f;
        totals[1] += b;
    }
    assert_eq!(
        totals[0] + totals[1],
        closed.values().sum::<i64>(),
        "every stored exit reason is a dataset.md code"
    );
    x.count(t, "All closed", "full", totals[0]);
    x.count(t, "All closed", "brief", totals[1]);
    x.count(t, "All closed", "all", totals[0] + totals[1]);
    (attended, closed_full)
}

/// Section 2: reach against need, for the new clients of the scope.
async fn reach(db: &Database, x: &mut Expected, new_clients: &[AnyRow], areas: &[String], z: f64) {
    let n_new = new_clients.len() as i64;
    let mut q = [0i64; 6];
    let mut eth = [0i64; 6];
    let mut sex: HashMap<String, i64> = HashMap::new();
    let mut ages = [0i64; 6];
    let mut gp: HashMap<String, i64> = HashMap::new();
    for r in new_clients {
        q[qi(int(r, 0))] += 1;
        eth[int(r, 1).unwrap() as usize] += 1;
        *sex.entry(text(r, 2).unwrap()).or_default() += 1;
        ages[age_band(age(day(r, 3).unwrap(), day(r, 5).unwrap()))] += 1;
        *gp.entry(text(r, 4).unwrap()).or_default() += 1;
    }
    let known: i64 = q[..5].iter().sum();
    let area_list = areas
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    // Local need: mid-2015 population of the areas' LSOAs by national IMD 2019 quintile.
    let mut pop = [0f64; 5];
    for r in fetch(
        db,
        format!(
            "SELECT CAST((imd2019_decile + 1) / 2 AS BIGINT), CAST(SUM(pop_mid2015) AS BIGINT) \
             FROM ref_lsoa11 WHERE lad19cd IN ({area_list}) GROUP BY (imd2019_decile + 1) / 2"
        ),
    )
    .await
    {
        pop[qi(int(&r, 0))] += int(&r, 1).unwrap() as f64;
    }
    let pop_total: f64 = pop.iter().sum();
    let t = "reach_by_quintile";
    for i in 0..5 {
        let row = QUINTILES[i];
        x.count(t, row, "new_clients", q[i]);
        x.share(t, row, "client_share", q[i], known, z);
        x.put(t, row, "population", Some(pop[i]));
        let ps = (pop_total > 0.0).then(|| pop[i] / pop_total);
        x.put(t, row, "population_share", ps);
        let ratio = match (wilson(q[i], known, z)[0], ps) {
            (Some(cs), Some(ps)) if ps > 0.0 => Some(cs / ps),
            _ => None,
        };
        x.put(t, row, "reach_ratio", ratio);
    }
    x.count(t, "Known quintile", "new_clients", known);
    x.share(t, "Known quintile", "client_share", known, n_new, z);
    x.put(t, "Known quintile", "population", Some(pop_total));
    x.none(t, "Known quintile", &["population_share", "reach_ratio"]);
    x.count(t, "Quintile unknown", "new_clients", q[5]);
    x.share(t, "Quintile unknown", "client_share", q[5], n_new, z);
    x.none(
        t,
        "Quintile unknown",
        &["population", "population_share", "reach_ratio"],
    );
    x.count(t, "All new clients", "new_clients", n_new);
    x.none(
        t,
        "All new clients",
        &[
            "client_share",
            "client_share_low",
            "client_share_high",
            "population",
            "population_share",
            "reach_ratio",
        ],
    );
    let t = "reach_headline";
    let row = "New clients from quintiles 1-2";
    x.count(t, row, "count", q[0] + q[1]);
    x.share(t, row, "share", q[0] + q[1], known, z);
    x.put(t, row, "national_dcrs_2008_11", Some(0.69));

    // Census: 2011 usual residents of the areas served by NHS ethnic group. The census
    // table is keyed by the districts of its time: a 2019 district it does not know (a
    // merger) is counted through the 2011 districts of its LSOAs.
    let mut census = [0f64; 6];
    for r in fetch(
        db,
        format!(
            "SELECT {eg}, CAST(SUM(population) AS BIGINT) FROM ref_census_ethnicity \
             WHERE lad11cd IN ({area_list}) OR lad11cd IN ( \
                 SELECT m.lad11cd FROM ref_lsoa01_lsoa11 m \
                 JOIN ref_lsoa11 l ON l.lsoa11cd = m.lsoa11cd \
                 WHERE l.lad19cd IN ({area_list}) \
                   AND l.lad19cd NOT IN (SELECT lad11cd FROM ref_census_ethnicity)) \
             GROUP BY {eg}",
            eg = ethnic_group_sql("nhs_code")
        ),
    )
    .await
    {
        census[int(&r, 0).unwrap() as usize] += int(&r, 1).unwrap() as f64;
    }
    let census_total: f64 = census[..5].iter().sum();
    let stated: i64 = eth[..5].iter().sum();
    let t = "reach_by_ethnic_group";
    for i in 0..5 {
        let row = ETHNIC[i];
        x.count(t, row, "new_clients", eth[i]);
        x.share(t, row, "client_share", eth[i], stated, z);
        x.put(t, row, "population", Some(census[i]));
        let ps = (census_total > 0.0).then(|| census[i] / census_total);
        x.put(t, row, "population_share", ps);
        let ratio = match (wilson(eth[i], stated, z)[0], ps) {
            (Some(cs), Some(ps)) if ps > 0.0 => Some(cs / ps),
            _ => None,
        };
        x.put(t, row, "reach_ratio", ratio);
    }
    x.count(t, "Stated", "new_clients", stated);
    x.share(t, "Stated", "client_share", stated, n_new, z);
    x.put(t, "Stated", "population", Some(census_total));
    x.none(t, "Stated", &["population_share", "reach_ratio"]);
    x.count(t, ETHNIC[5], "new_clients", eth[5]);
    x.share(t, ETHNIC[5], "client_share", eth[5], n_new, z);
    x.none(
        t,
        ETHNIC[5],
        &["population", "population_share", "reach_ratio"],
    );
    x.count(t, "All new clients", "new_clients", n_new);
    x.none(
        t,
        "All new clients",
        &[
            "client_share",
            "client_share_low",
            "client_share_high",
            "population",
            "population_share",
            "reach_ratio",
        ],
    );
    let parts: Vec<(String, i64)> = SEXES
        .iter()
        .map(|s| (s.to_string(), sex.get(*s).copied().unwrap_or(0)))
        .collect();
    assert_eq!(parts.iter().map(|p| p.1).sum::<i64>(), n_new);
    x.breakdown("new_clients_by_sex", &parts, "All new clients", z);
    let parts: Vec<(String, i64)> = AGE_BANDS
        .iter()
        .zip(ages)
        .map(|(b, n)| (b.to_string(), n))
        .collect();
    x.breakdown("new_clients_by_age_band", &parts, "All new clients", z);
    let parts: Vec<(String, i64)> = YES_NO_UNKNOWN
        .iter()
        .map(|v| {
            (
                format!("GP registered: {v}"),
                gp.get(*v).copied().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(parts.iter().map(|p| p.1).sum::<i64>(), n_new);
    x.breakdown(
        "new_clients_by_gp_registration",
        &parts,
        "All new clients",
        z,
    );
}

/// An episode closed in the period with a baseline and an exit assessment.
struct Pair {
    quintile: usize,
    baseline: Option<Occasion>,
    exit: Option<Occasion>,
}

/// An assessment's values of [`MEASURES`] and its smoking status.
struct Occasion {
    values: [Option<f64>; 8],
    smoking: Option<String>,
}

/// Section 3: outcomes.
async fn outcomes(
    db: &Database,
    sc: &Scope,
    x: &mut Expected,
    closed_full: i64,
    z: f64,
    tq: &mut HashMap<u64, f64>,
) {
    let ca = client_area_cte();
    // Goals given a final status in the period, with the client they belong to.
    const FINAL: [&str; 4] = [
        "fully_achieved",
        "partly_achieved",
        "not_achieved",
        "abandoned",
    ];
    let mut per_goal = [[0i64; 4]; 6];
    let mut per_client: BTreeMap<(i64, i64), (usize, Vec<usize>)> = BTreeMap::new();
    for r in fetch(
        db,
        sc.sql(&format!(
            "WITH {ca} SELECT r.service_id, r.client_id, ca.q, g.status \
             FROM goals g \
             JOIN plans p ON p.service_id = g.service_id AND p.plan_id = g.plan_id \
             JOIN episodes e ON e.service_id = p.service_id AND e.episode_id = p.episode_id \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             JOIN ca ON ca.service_id = r.service_id AND ca.client_id = r.client_id \
             WHERE g.service_id IN ({{s}}) AND g.status <> 'open' \
               AND g.status_on >= '{{from}}' AND g.status_on <= '{{to}}'"
        )),
    )
    .await
    {
        let status = text(&r, 3).unwrap();
        let j = FINAL
            .iter()
            .position(|f| *f == status)
            .unwrap_or_else(|| panic!("goal status {status}"));
        let quintile = qi(int(&r, 2));
        per_goal[quintile][j] += 1;
        per_client
            .entry((int(&r, 0).unwrap(), int(&r, 1).unwrap()))
            .or_insert((quintile, Vec::new()))
            .1
            .push(j);
    }
    let t = "goal_attainment_by_goal";
    let mut all = [0i64; 5];
    for i in 0..7 {
        let (row, v): (&str, [i64; 5]) = if i < 6 {
            let g = per_goal[i];
            (QUINTILES[i], [g[0], g[1], g[2], g[3], g.iter().sum()])
        } else {
            ("All quintiles", all)
        };
        for (c, val) in [
            "fully_achieved",
            "partly_achieved",
            "not_achieved",
            "abandoned",
            "all",
        ]
        .iter()
        .zip(v)
        {
            x.count(t, row, c, val);
        }
        x.share(t, row, "share_fully", v[0], v[4], z);
        if i < 6 {
            for k in 0..5 {
                all[k] += v[k];
            }
        }
    }
    // A client fully achieved when all their finalised goals were fully achieved,
    // partly when at least one was fully or partly achieved, not otherwise.
    let mut clients = [[0i64; 3]; 6];
    for (quintile, statuses) in per_client.values() {
        let j = if statuses.iter().all(|s| *s == 0) {
            0
        } else if statuses.iter().any(|s| *s <= 1) {
            1
        } else {
            2
        };
        clients[*quintile][j] += 1;
    }
    let t = "goal_attainment_by_client";
    let mut all = [0i64; 4];
    for i in 0..7 {
        let (row, v): (&str, [i64; 4]) = if i < 6 {
            let c = clients[i];
            (QUINTILES[i], [c[0], c[1], c[2], c.iter().sum()])
        } else {
            ("All quintiles", all)
        };
        for (c, val) in ["fully", "partly", "not", "all"].iter().zip(v) {
            x.count(t, row, c, val);
        }
        x.share(t, row, "share_fully", v[0], v[3], z);
        x.share(t, row, "share_partly", v[1], v[3], z);
        if i < 6 {
            for k in 0..4 {
                all[k] += v[k];
            }
        }
    }

    // Paired change: episodes closed in the period with a baseline and an exit
    // assessment. BMI (dataset.md; rounded as docs/dataset-decisions.md records) from
    // the weight and the client's latest height recorded on or before the assessment (its own height when it has one; else the latest of any
    // episode of the client with this service).
    let columns: String = MEASURE_COLUMNS
        .iter()
        .map(|c| format!("CAST(a.{c} AS DOUBLE PRECISION)"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = fetch(
        db,
        sc.sql(&format!(
            "WITH {ca} SELECT a.service_id, a.episode_id, a.occasion, ca.q, \
                 CAST(a.weight_kg AS DOUBLE PRECISION), \
                 CAST(COALESCE(a.height_cm, (SELECT h.height_cm FROM assessments h \
                  JOIN episodes he ON he.service_id = h.service_id AND he.episode_id = h.episode_id \
                  JOIN referrals hr ON hr.service_id = he.service_id \
                                   AND hr.referral_id = he.referral_id \
                  WHERE h.service_id = a.service_id AND hr.client_id = r.client_id \
                    AND h.height_cm IS NOT NULL AND h.assessed_on <= a.assessed_on \
                  ORDER BY h.assessed_on DESC, h.assessment_id DESC \
                  LIMIT 1)) AS DOUBLE PRECISION), \
                 a.smoking_status, {columns} \
             FROM assessments a \
             JOIN episodes e ON e.service_id = a.service_id AND e.episode_id = a.episode_id \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             JOIN ca ON ca.service_id = r.service_id AND ca.client_id = r.client_id \
             WHERE a.service_id IN ({{s}}) AND a.occasion IN ('baseline', 'exit') \
               AND e.closed_on >= '{{from}}' AND e.closed_on <= '{{to}}' \
               AND EXISTS (SELECT 1 FROM assessments b WHERE b.service_id = a.service_id \
                           AND b.episode_id = a.episode_id AND b.occasion = 'baseline') \
               AND EXISTS (SELECT 1 FROM assessments b WHERE b.service_id = a.service_id \
                           AND b.episode_id = a.episode_id AND b.occasion = 'exit')"
        )),
    )
    .await;
    let mut paired: BTreeMap<(i64, i64), Pair> = BTreeMap::new();
    for r in &rows {
        let key = (int(r, 0).unwrap(), int(r, 1).unwrap());
        let e = paired.entry(key).or_insert(Pair {
            quintile: qi(int(r, 3)),
            baseline: None,
            exit: None,
        });
        // Rounded to one decimal place, as docs/dataset-decisions.md defines it.
        let bmi = match (num(r, 4), num(r, 5)) {
            (Some(w), Some(h)) => Some((w / (h / 100.0).powi(2) * 10.0).round() / 10.0),
            _ => None,
        };
        let mut v = [None; 8];
        v[0] = bmi;
        for (k, slot) in v.iter_mut().skip(1).enumerate() {
            *slot = num(r, 7 + k);
        }
        let occasion = match text(r, 2).as_deref() {
            Some("baseline") => &mut e.baseline,
            _ => &mut e.exit,
        };
        assert!(occasion.is_none(), "one baseline and one exit per episode");
        *occasion = Some(Occasion {
            values: v,
            smoking: text(r, 6),
        });
    }
    let t = "paired_change";
    let tq_ = "paired_change_by_quintile";
    for (m, (label, higher)) in MEASURES.iter().enumerate() {
        let pairs: Vec<(usize, f64, f64)> = paired
            .values()
            .filter_map(|p| {
                let (b, e) = (p.baseline.as_ref()?, p.exit.as_ref()?);
                Some((p.quintile, b.values[m]?, e.values[m]?))
            })
            .collect();
        let better = |b: f64, e: f64| if *higher { e > b } else { e < b };
        let n = pairs.len() as i64;
        let improved = pairs.iter().filter(|p| better(p.1, p.2)).count() as i64;
        let base: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let exit: Vec<f64> = pairs.iter().map(|p| p.2).collect();
        let diffs: Vec<f64> = pairs.iter().map(|p| p.2 - p.1).collect();
        let d = mean_ci(&diffs, tq);
        x.count(t, label, "n", n);
        x.put(t, label, "baseline_mean", mean_ci(&base, tq).mean);
        x.put(t, label, "exit_mean", mean_ci(&exit, tq).mean);
        x.put(t, label, "mean_difference", d.mean);
        x.put(t, label, "difference_low", d.low);
        x.put(t, label, "difference_high", d.high);
        let effect = match (d.mean, d.sd) {
            (Some(m), Some(sd)) if sd > 0.0 => Some(m / sd),
            _ => None,
        };
        x.put(t, label, "standardised_effect", effect);
        x.count(t, label, "improved", improved);
        x.share(t, label, "share_improved", improved, n, z);
        for (i, qname) in QUINTILES.iter().enumerate() {
            let sub: Vec<&(usize, f64, f64)> = pairs.iter().filter(|p| p.0 == i).collect();
            let row = format!("{label} | {qname}");
            let n = sub.len() as i64;
            let improved = sub.iter().filter(|p| better(p.1, p.2)).count() as i64;
            let d = mean_ci(&sub.iter().map(|p| p.2 - p.1).collect::<Vec<_>>(), tq);
            x.count(tq_, &row, "n", n);
            x.put(tq_, &row, "mean_difference", d.mean);
            x.put(tq_, &row, "difference_low", d.low);
            x.put(tq_, &row, "difference_high", d.high);
            x.count(tq_, &row, "improved", improved);
            x.share(tq_, &row, "share_improved", improved, n, z);
        }
    }
    // Smoking: clients smoking at baseline whose status at exit is recorded.
    let smokers: Vec<(usize, bool)> = paired
        .values()
        .filter_map(|p| {
            let before = p.baseline.as_ref()?.smoking.as_deref()?;
            let after = p.exit.as_ref()?.smoking.as_deref()?;
            (before == "current").then_some((p.quintile, after != "current"))
        })
        .collect();
    let n = smokers.len() as i64;
    let quit = smokers.iter().filter(|s| s.1).count() as i64;
    x.count(t, SMOKING, "n", n);
    x.none(
        t,
        SMOKING,
        &[
            "baseline_mean",
            "exit_mean",
            "mean_difference",
            "difference_low",
            "difference_high",
            "standardised_effect",
        ],
    );
    x.count(t, SMOKING, "improved", quit);
    x.share(t, SMOKING, "share_improved", quit, n, z);
    for (i, qname) in QUINTILES.iter().enumerate() {
        let row = format!("{SMOKING} | {qname}");
        let n = smokers.iter().filter(|s| s.0 == i).count() as i64;
        let quit = smokers.iter().filter(|s| s.0 == i && s.1).count() as i64;
        x.count(tq_, &row, "n", n);
        x.none(
            tq_,
            &row,
            &["mean_difference", "difference_low", "difference_high"],
        );
        x.count(tq_, &row, "improved", quit);
        x.share(tq_, &row, "share_improved", quit, n, z);
    }

    // Outcome data: full episodes closed in the period with a baseline and an exit
    // assessment, by quintile and ethnic group.
    let mut by_q = [[0i64; 2]; 6];
    let mut by_e = [[0i64; 2]; 6];
    for r in fetch(
        db,
        sc.sql(&format!(
            "WITH {ca} SELECT ca.q, ca.eg, \
                 CAST(CASE WHEN EXISTS (SELECT 1 FROM assessments b \
                        WHERE b.service_id = e.service_id AND b.episode_id = e.episode_id \
                          AND b.occasion = 'baseline') \
                      AND EXISTS (SELECT 1 FROM assessments b \
                        WHERE b.service_id = e.service_id AND b.episode_id = e.episode_id \
                          AND b.occasion = 'exit') \
                 THEN 1 ELSE 0 END AS BIGINT) \
             FROM episodes e \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             JOIN ca ON ca.service_id = r.service_id AND ca.client_id = r.client_id \
             WHERE e.service_id IN ({{s}}) AND e.kind = 'full' \
               AND e.closed_on >= '{{from}}' AND e.closed_on <= '{{to}}'"
        )),
    )
    .await
    {
        let j = usize::from(int(&r, 2).unwrap() == 0);
        by_q[qi(int(&r, 0))][j] += 1;
        by_e[int(&r, 1).unwrap() as usize][j] += 1;
    }
    let t = "outcome_data_completeness";
    let mut all = [0i64; 2];
    for i in 0..6 {
        let [w, wo] = by_q[i];
        x.count(t, QUINTILES[i], "closed_full", w + wo);
        x.count(t, QUINTILES[i], "with_outcome_data", w);
        x.share(t, QUINTILES[i], "share", w, w + wo, z);
        all[0] += w;
        all[1] += wo;
        let [w, wo] = by_e[i];
        x.count(t, ETHNIC[i], "closed_full", w + wo);
        x.count(t, ETHNIC[i], "with_outcome_data", w);
        x.share(t, ETHNIC[i], "share", w, w + wo, z);
    }
    let row = "All closed full episodes";
    x.count(t, row, "closed_full", all[0] + all[1]);
    x.count(t, row, "with_outcome_data", all[0]);
    x.share(t, row, "share", all[0], all[0] + all[1], z);
    assert_eq!(all[0] + all[1], closed_full);
}

/// Section 4: the pathway of the period's cohort of referrals.
async fn pathway(db: &Database, sc: &Scope, x: &mut Expected, z: f64) {
    let ca = client_area_cte();
    // Referrals received in the period, leaving out those whose episode is brief; each
    // step as recorded now.
    let has = |table: &str, cond: &str| {
        format!(
            "CAST(CASE WHEN EXISTS (SELECT 1 FROM {table} x WHERE x.service_id = e.service_id \
               AND x.episode_id = e.episode_id {cond}) THEN 1 ELSE 0 END AS BIGINT)"
        )
    };
    let mut by_q = [[0i64; 7]; 6];
    let mut by_e = [[0i64; 7]; 6];
    for r in fetch(
        db,
        sc.sql(&format!(
            "WITH {ca} SELECT ca.q, ca.eg, \
                 CAST(CASE WHEN e.episode_id IS NULL THEN 0 ELSE 1 END AS BIGINT), \
                 {baseline}, {plan}, {review}, \
                 CAST(CASE WHEN e.closed_on IS NULL THEN 0 ELSE 1 END AS BIGINT), \
                 {exit} \
             FROM referrals r \
             LEFT JOIN episodes e ON e.service_id = r.service_id AND e.referral_id = r.referral_id \
             JOIN ca ON ca.service_id = r.service_id AND ca.client_id = r.client_id \
             WHERE r.service_id IN ({{s}}) \
               AND r.received_on >= '{{from}}' AND r.received_on <= '{{to}}' \
               AND (e.kind IS NULL OR e.kind <> 'brief')",
            baseline = has("assessments", "AND x.occasion = 'baseline'"),
            plan = has("plans", ""),
            review = has(
                "sessions",
                "AND x.purpose = 'review' AND x.attended = 'yes'"
            ),
            exit = has("assessments", "AND x.occasion = 'exit'"),
        )),
    )
    .await
    {
        let (quintile, group) = (qi(int(&r, 0)), int(&r, 1).unwrap() as usize);
        by_q[quintile][0] += 1;
        by_e[group][0] += 1;
        // A referral reaches a step only if it reached every step before it.
        let mut still = 1;
        for j in 1..7 {
            let reached = int(&r, j + 1).unwrap() * still;
            still = reached;
            by_q[quintile][j] += reached;
            by_e[group][j] += reached;
        }
    }
    let mut steps = [0i64; 7];
    for row in &by_q {
        for j in 0..7 {
            steps[j] += row[j];
        }
    }
    let t = "pathway_steps";
    for (j, (_, label)) in STEPS.iter().enumerate() {
        x.count(t, label, "referrals", steps[j]);
        x.share(t, label, "share_of_cohort", steps[j], steps[0], z);
        let previous = if j == 0 { steps[0] } else { steps[j - 1] };
        x.share(t, label, "share_of_previous", steps[j], previous, z);
    }
    for (t, names, cells) in [
        ("pathway_by_quintile", &QUINTILES, &by_q),
        ("pathway_by_ethnic_group", &ETHNIC, &by_e),
    ] {
        for (name, row) in names
            .iter()
            .zip(cells.iter())
            .chain(std::iter::once((&"All referrals", &steps)))
        {
            for (j, (id, _)) in STEPS.iter().enumerate() {
                x.count(t, name, id, row[j]);
            }
            x.share(t, name, "share_exit", row[6], row[0], z);
            for (j, (id, _)) in STEPS.iter().enumerate().skip(1) {
                x.share(t, name, &format!("{id}_of_cohort"), row[j], row[0], z);
                x.share(t, name, &format!("{id}_of_previous"), row[j], row[j - 1], z);
            }
        }
    }
}

/// Section 5: workforce.
async fn workforce(db: &Database, sc: &Scope, x: &mut Expected, attended: i64, z: f64) {
    // Workers who started on or before the period's last day and had not left before
    // its first day.
    let workers = fetch(
        db,
        sc.sql(
            "SELECT lives_in_area_served, home_imd_quintile, qualification, \
                    CAST(fte AS DOUBLE PRECISION) \
             FROM workers WHERE service_id IN ({s}) AND started_on <= '{to}' \
               AND (left_on IS NULL OR left_on >= '{from}')",
        ),
    )
    .await;
    let n_workers = workers.len() as i64;
    let fte: f64 = workers.iter().map(|r| num(r, 3).unwrap()).sum();
    let mut lives: HashMap<String, i64> = HashMap::new();
    let mut quals: HashMap<String, i64> = HashMap::new();
    let mut homes = [0i64; 6];
    for r in &workers {
        *lives.entry(text(r, 0).unwrap()).or_default() += 1;
        *quals.entry(text(r, 2).unwrap()).or_default() += 1;
        homes[qi(int(r, 1))] += 1;
    }
    let l = |k: &str| lives.get(k).copied().unwrap_or(0);
    let clients_seen = int(
        &fetch(
            db,
            sc.sql(
                "SELECT COUNT(*) FROM (SELECT DISTINCT r.service_id, r.client_id \
                 FROM sessions s \
                 JOIN episodes e ON e.service_id = s.service_id AND e.episode_id = s.episode_id \
                 JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
                 WHERE s.service_id IN ({s}) AND s.attended = 'yes' \
                   AND s.held_on >= '{from}' AND s.held_on <= '{to}') seen",
            ),
        )
        .await[0],
        0,
    )
    .unwrap();
    let t = "workforce_summary";
    let one = |x: &mut Expected, row: &str, v: Option<f64>| {
        x.put(t, row, "value", v);
        x.none(t, row, &["low", "high"]);
    };
    let three = |x: &mut Expected, row: &str, k: i64, n: i64| {
        let [p, lo, hi] = wilson(k, n, z);
        x.put(t, row, "value", p);
        x.put(t, row, "low", lo);
        x.put(t, row, "high", hi);
    };
    let home_known: i64 = homes[..5].iter().sum();
    one(x, "Workers active", Some(n_workers as f64));
    one(x, "Full-time equivalent", Some(fte));
    one(
        x,
        "Workers with a known answer on living in the area served",
        Some((l("yes") + l("no")) as f64),
    );
    one(
        x,
        "Workers living in the area served",
        Some(l("yes") as f64),
    );
    three(
        x,
        "Share living in the area served",
        l("yes"),
        l("yes") + l("no"),
    );
    one(
        x,
        "Workers with a known home quintile",
        Some(home_known as f64),
    );
    one(
        x,
        "Workers whose home is in quintile 1 or 2",
        Some((homes[0] + homes[1]) as f64),
    );
    three(
        x,
        "Share whose home is in quintile 1 or 2",
        homes[0] + homes[1],
        home_known,
    );
    one(
        x,
        "Clients seen (an attended session in the period)",
        Some(clients_seen as f64),
    );
    one(x, "Sessions attended", Some(attended as f64));
    let per = |n: i64| (fte > 0.0).then(|| n as f64 / fte);
    one(x, "Clients seen per FTE", per(clients_seen));
    one(x, "Sessions attended per FTE", per(attended));
    let parts: Vec<(String, i64)> = QUALIFICATIONS
        .iter()
        .map(|q| (q.to_string(), quals.get(*q).copied().unwrap_or(0)))
        .collect();
    assert_eq!(parts.iter().map(|p| p.1).sum::<i64>(), n_workers);
    x.breakdown("workforce_qualification", &parts, "All workers", z);
    let t = "workforce_homes";
    assert_eq!(YES_NO_UNKNOWN.iter().map(|v| l(v)).sum::<i64>(), n_workers);
    for v in YES_NO_UNKNOWN {
        let row = format!("Lives in area served: {v}");
        x.count(t, &row, "count", l(v));
        x.share(t, &row, "share", l(v), n_workers, z);
    }
    for (i, name) in QUINTILES.iter().enumerate() {
        let row = format!("Home in {}", name.to_lowercase());
        x.count(t, &row, "count", homes[i]);
        x.share(t, &row, "share", homes[i], n_workers, z);
    }
    x.count(t, "All workers", "count", n_workers);
    x.share(t, "All workers", "share", n_workers, n_workers, z);
}

/// Whether a stored text holds something: not NULL and not blank.
fn filled(v: Option<&str>) -> bool {
    v.is_some_and(|t| !t.trim().is_empty())
}

/// Whether a client's field counts as recorded: filled, and not a code that means not
/// stated or not known (ethnicity `Z` and `99`, `not_stated`, GP registration `unknown`,
/// the pseudo-postcode of an address not known).
fn client_field_recorded(field: &str, v: Option<&str>) -> bool {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return false;
    };
    !matches!(
        (field, v),
        ("ethnicity", "Z" | "99")
            | ("sex" | "employment" | "disability", "not_stated")
            | ("gp_registered", "unknown")
            | ("postcode", "ZZ99 3WZ")
    )
}

/// The first `n` letters of a name, in lower case, leaving out spaces, hyphens and
/// apostrophes; `None` for a missing name (or one with no letters).
fn first_letters(name: Option<&str>, n: usize) -> Option<String> {
    let letters: String = name?
        .chars()
        .filter(|c| c.is_alphabetic())
        .take(n)
        .collect::<String>()
        .to_lowercase();
    (!letters.is_empty()).then_some(letters)
}

/// A client as the duplicate rule sees it. Blank values are `None`, and so are the
/// pseudo-postcodes, which name no address two people could share.
struct Person {
    service: i64,
    given: Option<String>,
    family: Option<String>,
    nhs: Option<String>,
    born: String,
    postcode: Option<String>,
}

/// docs/reports.md: two clients of one service are possible duplicates when they share
/// an NHS number, or share a date of birth and a postcode while their family names agree
/// on the first three letters and their given names on the first; a missing name does
/// not rule a match out, two different NHS numbers do.
fn possible_duplicates(a: &Person, b: &Person) -> bool {
    if a.service != b.service {
        return false;
    }
    if let (Some(x), Some(y)) = (&a.nhs, &b.nhs) {
        return x == y;
    }
    let agree = |x: Option<String>, y: Option<String>| x.is_none() || y.is_none() || x == y;
    a.born == b.born
        && a.postcode.is_some()
        && a.postcode == b.postcode
        && agree(
            first_letters(a.family.as_deref(), 3),
            first_letters(b.family.as_deref(), 3),
        )
        && agree(
            first_letters(a.given.as_deref(), 1),
            first_letters(b.given.as_deref(), 1),
        )
}

/// SQL: 1 when the column holds something (not NULL, not blank), else 0, summed.
fn count_filled_sql(column: &str) -> String {
    format!(
        "CAST(SUM(CASE WHEN {column} IS NULL OR TRIM(CAST({column} AS TEXT)) = '' \
         THEN 0 ELSE 1 END) AS BIGINT)"
    )
}

/// Section 6: data quality.
async fn quality(db: &Database, sc: &Scope, x: &mut Expected, z: f64) {
    let t = "field_completeness";
    let field = |x: &mut Expected, kind: &str, name: &str, n: i64, k: i64| {
        let row = format!("{kind} | {name}");
        x.count(t, &row, "records", n);
        x.count(t, &row, "recorded", k);
        x.count(t, &row, "missing", n - k);
        x.put(t, &row, "share_recorded", wilson(k, n, z)[0]);
    };
    // The period's clients (those with an episode opened in the period), with whether
    // their postcode is in the lookup.
    let period_clients = fetch(
        db,
        sc.sql(&format!(
            "SELECT {columns}, CAST(CASE WHEN p.pcds IS NULL THEN 0 ELSE 1 END AS BIGINT) \
             FROM (SELECT DISTINCT r.service_id, r.client_id FROM episodes e \
                   JOIN referrals r \
                     ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
                   WHERE e.service_id IN ({{s}}) \
                     AND e.first_contact_on >= '{{from}}' AND e.first_contact_on <= '{{to}}') pc \
             JOIN clients c ON c.service_id = pc.service_id AND c.client_id = pc.client_id \
             LEFT JOIN ref_postcodes p ON p.pcds = c.postcode",
            columns = CLIENT_FIELDS.map(|f| format!("c.{f}")).join(", ")
        )),
    )
    .await;
    for (i, f) in CLIENT_FIELDS.iter().enumerate() {
        let k = period_clients
            .iter()
            .filter(|r| client_field_recorded(f, text(r, i).as_deref()))
            .count();
        field(x, "client", f, period_clients.len() as i64, k as i64);
    }
    let postcode = CLIENT_FIELDS.iter().position(|f| *f == "postcode").unwrap();
    let not_found = period_clients
        .iter()
        .filter(|r| {
            // The pseudo-postcodes are answers (no fixed abode, not known), not typing
            // errors: docs/reports.md leaves them out of "not found".
            filled(text(r, postcode).as_deref())
                && !text(r, postcode).is_some_and(|p| p.starts_with("ZZ99"))
                && int(r, CLIENT_FIELDS.len()) == Some(0)
        })
        .count();

    // Possible duplicates: clients of the scope's services, as they stand, that match
    // another client of their service. docs/reports.md does not tie them to the period
    // (it does so for completeness only), so every client of the service counts, as the
    // report's own definition says. Candidates, read here, share an NHS number or a date
    // of birth and postcode with another client of the service; the rule then decides.
    let shares = |on: &str| {
        format!(
            "EXISTS (SELECT 1 FROM clients o WHERE o.service_id = c.service_id \
               AND o.client_id <> c.client_id AND {on})"
        )
    };
    let people: Vec<Person> = fetch(
        db,
        sc.sql(&format!(
            "SELECT c.service_id, c.given_name, c.family_name, c.nhs_number, \
                    c.date_of_birth, c.postcode \
             FROM clients c WHERE c.service_id IN ({{s}}) AND ({} OR {})",
            shares("o.nhs_number = c.nhs_number"),
            shares("o.postcode = c.postcode AND o.date_of_birth = c.date_of_birth")
        )),
    )
    .await
    .iter()
    .map(|r| {
        let keep = |v: Option<String>| v.filter(|v| filled(Some(v)));
        Person {
            service: int(r, 0).unwrap(),
            given: keep(text(r, 1)),
            family: keep(text(r, 2)),
            nhs: keep(text(r, 3)),
            born: text(r, 4).unwrap(),
            postcode: keep(text(r, 5)).filter(|p| !PSEUDO_POSTCODES.contains(&p.as_str())),
        }
    })
    .collect();
    let mut by_nhs: HashMap<(i64, &str), Vec<usize>> = HashMap::new();
    let mut by_place: HashMap<(i64, &str, &str), Vec<usize>> = HashMap::new();
    for (i, p) in people.iter().enumerate() {
        if let Some(n) = &p.nhs {
            by_nhs.entry((p.service, n)).or_default().push(i);
        }
        if let Some(pc) = &p.postcode {
            by_place
                .entry((p.service, &p.born, pc))
                .or_default()
                .push(i);
        }
    }
    let duplicates = people
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            let nhs = p
                .nhs
                .as_ref()
                .and_then(|n| by_nhs.get(&(p.service, n.as_str())));
            let place = p
                .postcode
                .as_ref()
                .and_then(|pc| by_place.get(&(p.service, p.born.as_str(), pc.as_str())));
            nhs.into_iter()
                .chain(place)
                .flatten()
                .any(|j| j != i && possible_duplicates(p, &people[*j]))
        })
        .count();

    // Referrals received, assessments made and goals on plans agreed in the period.
    let referrals = fetch(
        db,
        sc.sql(&format!(
            "SELECT COUNT(*), {}, {} FROM referrals WHERE service_id IN ({{s}}) \
               AND received_on >= '{{from}}' AND received_on <= '{{to}}'",
            count_filled_sql(REFERRAL_FIELDS[0].1),
            count_filled_sql(REFERRAL_FIELDS[1].1)
        )),
    )
    .await;
    let n = int(&referrals[0], 0).unwrap();
    for (i, (name, _)) in REFERRAL_FIELDS.iter().enumerate() {
        field(
            x,
            "referral",
            name,
            n,
            int(&referrals[0], 1 + i).unwrap_or(0),
        );
    }
    let assessments = fetch(
        db,
        sc.sql(&format!(
            "SELECT COUNT(*), {} FROM assessments WHERE service_id IN ({{s}}) \
               AND assessed_on >= '{{from}}' AND assessed_on <= '{{to}}'",
            ASSESSMENT_FIELDS.map(count_filled_sql).join(", ")
        )),
    )
    .await;
    let n = int(&assessments[0], 0).unwrap();
    for (i, name) in ASSESSMENT_FIELDS.iter().enumerate() {
        field(
            x,
            "assessment",
            name,
            n,
            int(&assessments[0], 1 + i).unwrap_or(0),
        );
    }
    let goals = fetch(
        db,
        sc.sql(&format!(
            "SELECT COUNT(*), {} FROM goals g JOIN plans p \
               ON p.service_id = g.service_id AND p.plan_id = g.plan_id \
             WHERE g.service_id IN ({{s}}) \
               AND p.agreed_on >= '{{from}}' AND p.agreed_on <= '{{to}}'",
            count_filled_sql("g.target_on")
        )),
    )
    .await;
    field(
        x,
        "goal",
        "target_on",
        int(&goals[0], 0).unwrap(),
        int(&goals[0], 1).unwrap_or(0),
    );

    // BMI (dataset.md, rounded as docs/dataset-decisions.md says) of the assessments
    // made in the period, from the weight and the client's latest height on or before
    // the assessment (its own first); flagged outside 10–90. Every assessment up to the
    // period's end is read, with its client, and the height is found here.
    let rows = fetch(
        db,
        sc.sql(
            "SELECT r.service_id, r.client_id, a.assessed_on, a.assessment_id, \
                    CAST(a.weight_kg AS DOUBLE PRECISION), CAST(a.height_cm AS DOUBLE PRECISION) \
             FROM assessments a \
             JOIN episodes e ON e.service_id = a.service_id AND e.episode_id = a.episode_id \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             WHERE a.service_id IN ({s}) AND a.assessed_on <= '{to}'",
        ),
    )
    .await;
    // Per (service, client): (assessed on, assessment id, height).
    type Heights = Vec<(NaiveDate, i64, f64)>;
    let mut heights: HashMap<(i64, i64), Heights> = HashMap::new();
    for r in &rows {
        if let Some(h) = num(r, 5) {
            heights
                .entry((int(r, 0).unwrap(), int(r, 1).unwrap()))
                .or_default()
                .push((day(r, 2).unwrap(), int(r, 3).unwrap(), h));
        }
    }
    let from = NaiveDate::parse_from_str(&sc.from, "%Y-%m-%d").unwrap();
    let flagged = rows
        .iter()
        .filter(|r| day(r, 2).unwrap() >= from)
        .filter_map(|r| {
            let on = day(r, 2).unwrap();
            let weight = num(r, 4)?;
            let height = num(r, 5).or_else(|| {
                heights
                    .get(&(int(r, 0).unwrap(), int(r, 1).unwrap()))?
                    .iter()
                    .filter(|h| h.0 <= on)
                    .max_by_key(|h| (h.0, h.1))
                    .map(|h| h.2)
            })?;
            let bmi = (weight / (height / 100.0).powi(2) * 10.0).round() / 10.0;
            Some(!(10.0..=90.0).contains(&bmi))
        })
        .filter(|f| *f)
        .count();

    // Late entries: referrals, episodes, assessments and sessions whose event (received,
    // first contact, assessed, held) falls in the period, entered through the
    // application more than 30 days after it (the day of entry in UTC).
    let late = fetch(
        db,
        sc.sql(
            "SELECT received_on, created_at FROM referrals WHERE service_id IN ({s}) \
               AND entered_via = 'application' \
               AND received_on >= '{from}' AND received_on <= '{to}' \
             UNION ALL SELECT first_contact_on, created_at FROM episodes \
             WHERE service_id IN ({s}) AND entered_via = 'application' \
               AND first_contact_on >= '{from}' AND first_contact_on <= '{to}' \
             UNION ALL SELECT assessed_on, created_at FROM assessments \
             WHERE service_id IN ({s}) AND entered_via = 'application' \
               AND assessed_on >= '{from}' AND assessed_on <= '{to}' \
             UNION ALL SELECT held_on, created_at FROM sessions \
             WHERE service_id IN ({s}) AND entered_via = 'application' \
               AND held_on >= '{from}' AND held_on <= '{to}'",
        ),
    )
    .await
    .iter()
    .filter(|r| {
        let entered = chrono::DateTime::parse_from_rfc3339(&text(r, 1).unwrap())
            .unwrap()
            .with_timezone(&Utc)
            .date_naive();
        (entered - day(r, 0).unwrap()).num_days() > 30
    })
    .count();

    // Open at the period's end, and of those, with neither a first contact nor an
    // attended session in the 90 days before it (a contact 90 days before the end is
    // within them).
    let to = NaiveDate::parse_from_str(&sc.to, "%Y-%m-%d").unwrap();
    let since = to - Days::new(90);
    let open = fetch(
        db,
        sc.sql(&format!(
            "SELECT COUNT(*), CAST(SUM(CASE WHEN e.first_contact_on < '{since}' \
                 AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.service_id = e.service_id \
                   AND s.episode_id = e.episode_id AND s.attended = 'yes' \
                   AND s.held_on >= '{since}' AND s.held_on <= '{{to}}') \
                 THEN 1 ELSE 0 END) AS BIGINT) \
             FROM episodes e WHERE e.service_id IN ({{s}}) AND e.first_contact_on <= '{{to}}' \
               AND (e.closed_on IS NULL OR e.closed_on > '{{to}}')"
        )),
    )
    .await;

    let t = "data_quality_checks";
    x.count(t, POSTCODES_NOT_FOUND, "count", not_found as i64);
    x.count(t, BMI_FLAGGED, "count", flagged as i64);
    x.count(t, DUPLICATES, "count", duplicates as i64);
    x.count(t, LATE, "count", late as i64);
    x.count(t, OPEN_AT_END, "count", int(&open[0], 0).unwrap());
    x.count(t, OPEN_STALE, "count", int(&open[0], 1).unwrap_or(0));
}

// ---------------------------------------------------------------------------------
// Comparison.

/// A figure that differs from its recomputation.
#[derive(Debug)]
struct Mismatch {
    scope: String,
    table: String,
    row: String,
    column: String,
    expected: Option<f64>,
    actual: String,
    /// The report's whole row, `column=figure`.
    context: String,
}

/// Compares every numeric cell of the five sections with the recomputed figures;
/// returns the number of figures compared, how many of them are numbers (the rest are
/// expected to show no number) and the mismatches.
fn compare(report: &Report, x: &Expected, scope: &str) -> (usize, usize, Vec<Mismatch>) {
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let mut bad = Vec::new();
    let (mut compared, mut numbers) = (0, 0);
    let mut mismatch =
        |table: &str, row: &str, column: &str, e: Option<f64>, a: String, context: String| {
            bad.push(Mismatch {
                scope: scope.into(),
                table: table.into(),
                row: row.into(),
                column: column.into(),
                expected: e,
                actual: a,
                context,
            })
        };
    for id in SECTIONS {
        let section = report
            .section(id)
            .unwrap_or_else(|| panic!("{scope}: no section {id}"));
        for table in &section.tables {
            assert!(
                table.withheld.is_none(),
                "{scope}: {} withheld under policy none",
                table.id
            );
            for cells in &table.rows {
                // The row's key: its text cells in label columns, joined.
                let key = table
                    .columns
                    .iter()
                    .zip(cells)
                    .filter(|(c, _)| c.unit == Unit::Text)
                    .map(|(_, f)| match f {
                        Figure::Text(t) => t.clone(),
                        other => panic!("{scope}: {}: label {other:?}", table.id),
                    })
                    .collect::<Vec<_>>()
                    .join(" | ");
                let context = table
                    .columns
                    .iter()
                    .zip(cells)
                    .filter(|(c, _)| c.unit != Unit::Text)
                    .map(|(c, f)| format!("{}={}", c.id, f.to_text()))
                    .collect::<Vec<_>>()
                    .join(", ");
                for (column, figure) in table.columns.iter().zip(cells) {
                    if column.unit == Unit::Text {
                        continue;
                    }
                    let k = (table.id.clone(), key.clone(), column.id.clone());
                    assert!(seen.insert(k.clone()), "{scope}: cell twice: {k:?}");
                    let Some(expected) = x.figures.get(&k) else {
                        mismatch(
                            &table.id,
                            &key,
                            &column.id,
                            None,
                            format!("{figure:?} (no recomputation: not covered)"),
                            context.clone(),
                        );
                        continue;
                    };
                    compared += 1;
                    numbers += usize::from(expected.is_some());
                    let ok = match (expected, figure) {
                        (None, f) => f.as_f64().is_none() && *f != Figure::Suppressed,
                        (Some(e), Figure::Int(a)) => *a as f64 == *e,
                        (Some(e), Figure::Num(a)) if column.unit == Unit::Count => *a == *e,
                        (Some(e), Figure::Num(a)) => (a - e).abs() <= 1e-6 * e.abs().max(1.0),
                        _ => false,
                    };
                    if !ok {
                        mismatch(
                            &table.id,
                            &key,
                            &column.id,
                            *expected,
                            format!("{figure:?}"),
                            context.clone(),
                        );
                    }
                }
            }
        }
    }
    for (k, v) in &x.figures {
        if !seen.contains(k) {
            mismatch(
                &k.0,
                &k.1,
                &k.2,
                *v,
                "(not in the report)".into(),
                String::new(),
            );
        }
    }
    (compared, numbers, bad)
}

/// A stored service: id, reference, 2019 districts served.
type Service = (i64, String, Vec<String>);

async fn stored_services(db: &Database) -> Vec<Service> {
    fetch(
        db,
        "SELECT service_id, service_ref, areas_served FROM services ORDER BY service_ref".into(),
    )
    .await
    .iter()
    .map(|r| {
        let areas = text(r, 2)
            .unwrap()
            .split(';')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        (int(r, 0).unwrap(), text(r, 1).unwrap(), areas)
    })
    .collect()
}

/// Recomputes the figures of one scope and period and compares them with each report
/// given for it (the same report asked for more than once): (figures compared, of which
/// numbers, mismatches).
/// A service's dashboard (counted with only the queries its figures need, and again
/// from kept counts) shows the same twelve figures as the service's pack, whose every
/// figure [`check`] compares with the recomputation.
async fn dashboard_agrees(db: &Database, pack: &Report, service: &str, period: &Period) {
    for fresh in [true, false] {
        let d =
            dcrs_report::dashboard(db, service, std::slice::from_ref(period), fresh, Utc::now())
                .await
                .unwrap()
                .remove(0);
        assert_eq!(d.counts.counted, usize::from(fresh));
        for (label, table, row, col) in dcrs_report::DASHBOARD_FIGURES {
            let figure = |r: &Report| {
                r.table(table)
                    .and_then(|t| t.get(row, col))
                    .map(|f| f.to_text())
                    .unwrap_or_else(|| panic!("{label}: no {table} / {row} / {col}"))
            };
            assert_eq!(
                figure(&d),
                figure(pack),
                "{service} {}: the dashboard's {label} differs from the pack's (fresh: {fresh})",
                period.label
            );
        }
    }
}

async fn check(
    db: &Database,
    reports: &[&Report],
    scope: &[&Service],
    name: &str,
    z: f64,
    tq: &mut HashMap<u64, f64>,
) -> (usize, usize, Vec<Mismatch>) {
    let mut areas: Vec<String> = scope.iter().flat_map(|s| s.2.clone()).collect();
    areas.sort();
    areas.dedup();
    let sc = Scope {
        ids: scope
            .iter()
            .map(|s| s.0.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        from: reports[0].period.from.to_string(),
        to: reports[0].period.to.to_string(),
    };
    let x = expected(db, &sc, &areas, z, tq).await;
    if name.ends_with("2010-11 all services") {
        assert_substantial(&x);
    }
    let mut out = (0, 0, Vec::new());
    for (i, report) in reports.iter().enumerate() {
        assert_eq!(report.period, reports[0].period);
        let name = match i {
            0 => name.to_string(),
            _ => format!("{name} (asked again: kept counts)"),
        };
        let (n, numeric, bad) = compare(report, &x, &name);
        out.0 += n;
        out.1 += numeric;
        out.2.extend(bad);
    }
    out
}

/// The recomputation is not vacuous: in the combined scope of a whole year every kind
/// of figure rests on records.
fn assert_substantial(x: &Expected) {
    let mut cells: Vec<(&str, String, &str)> = vec![
        ("activity_summary", "Episodes opened: brief".into(), "value"),
        (
            "activity_summary",
            "Open caseload at period end".into(),
            "value",
        ),
        ("activity_summary", "Sessions cancelled".into(), "value"),
        ("activity_summary", "Did-not-attend rate".into(), "value"),
        (
            "activity_summary",
            "Goals set (on plans agreed in the period)".into(),
            "value",
        ),
        (
            "episodes_closed_by_exit_reason",
            "All closed".into(),
            "brief",
        ),
        ("referrals_by_group", "community".into(), "count"),
        ("referrals_by_group", "clinical".into(), "count"),
        (
            "new_clients_by_gp_registration",
            "GP registered: no".into(),
            "count",
        ),
        (
            "outcome_data_completeness",
            "All closed full episodes".into(),
            "with_outcome_data",
        ),
        ("workforce_summary", "Workers active".into(), "value"),
        ("workforce_summary", "Clients seen per FTE".into(), "value"),
        (
            "field_completeness",
            "client | nhs_number".into(),
            "missing",
        ),
        ("field_completeness", "client | postcode".into(), "missing"),
        ("field_completeness", "client | ethnicity".into(), "missing"),
        (
            "field_completeness",
            "client | given_name".into(),
            "missing",
        ),
        ("field_completeness", "referral | reason".into(), "recorded"),
        (
            "field_completeness",
            "referral | referrer_org_ref".into(),
            "missing",
        ),
        (
            "field_completeness",
            "assessment | waist_cm".into(),
            "missing",
        ),
        ("field_completeness", "goal | target_on".into(), "missing"),
    ];
    for check in [
        POSTCODES_NOT_FOUND,
        BMI_FLAGGED,
        DUPLICATES,
        LATE,
        OPEN_AT_END,
        OPEN_STALE,
    ] {
        cells.push(("data_quality_checks", check.into(), "count"));
    }
    cells.push(("paired_change", SMOKING.into(), "improved"));
    for q in QUINTILES {
        cells.push(("reach_by_quintile", q.into(), "new_clients"));
        cells.push(("goal_attainment_by_goal", q.into(), "all"));
    }
    for (i, e) in ETHNIC.iter().enumerate() {
        cells.push(("reach_by_ethnic_group", e.to_string(), "new_clients"));
        if i < 5 {
            cells.push(("reach_by_ethnic_group", e.to_string(), "population"));
        }
    }
    for c in [
        "fully_achieved",
        "partly_achieved",
        "not_achieved",
        "abandoned",
    ] {
        cells.push(("goal_attainment_by_goal", "All quintiles".into(), c));
    }
    for c in ["fully", "partly", "not"] {
        cells.push(("goal_attainment_by_client", "All quintiles".into(), c));
    }
    for (m, _) in MEASURES {
        cells.push(("paired_change", m.into(), "difference_low"));
        cells.push(("paired_change", m.into(), "improved"));
    }
    for (_, step) in STEPS {
        cells.push(("pathway_steps", step.into(), "referrals"));
    }
    for (table, row, column) in cells {
        let v = x
            .figures
            .get(&(table.to_string(), row.clone(), column.to_string()));
        assert!(
            matches!(v, Some(Some(v)) if *v != 0.0),
            "the deployment gives {table} / {row} / {column} no records: {v:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// The deployment.

/// The generated deployments: the six-service scenario (seed 1; services A–F, FY 2006-07
/// to 2012-13) and a small national deployment (seed 7; three services sharing 3,000
/// clients, FY 2008-09 to 2010-11), stored side by side.
fn deployments() -> Vec<tempfile::TempDir> {
    [
        None,
        Some(Scale {
            services: 3,
            clients: 3000,
        }),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, scale)| {
        let dir = tempfile::tempdir().unwrap();
        let seed = if i == 0 { 1 } else { 7 };
        generate(&shared_data(), dir.path(), &Options { seed, scale }).unwrap();
        dir
    })
    .collect()
}

/// The reference files the reports need, without the 1.77 million postcodes: the IMD
/// 2019 LSOA file, the 2001↔2011 LSOA lookup, the census tables and code lists, and a
/// postcode file holding only the generated clients' postcodes (placed with the
/// generator's reading of the national postcode files).
fn reference_data(data: &[tempfile::TempDir]) -> (tempfile::TempDir, LoadOptions) {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "imd/imd2019_lsoa11_england.csv",
        "geography/lsoa01_lsoa11_lad11_lookup_ew.csv",
        "census/ethnic_group_2011_census_18_categories.csv",
        "census/census2011_ethnic_group_by_la_ew.csv",
        "nhs/nhs_ethnic_category_2001.csv",
    ] {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(shared_data().join(rel), to).unwrap();
    }
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for d in data {
        let mut r = csv::Reader::from_path(d.path().join("clients.csv")).unwrap();
        let at = r
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "postcode")
            .unwrap();
        for row in r.records() {
            let pc = row.unwrap()[at].to_string();
            if !pc.is_empty() {
                wanted.insert(pc);
            }
        }
    }
    let mut geo = dcrs_synth::geo::Geography::load(&shared_data()).unwrap();
    let all: Vec<usize> = (0..geo.lads.len()).collect();
    geo.load_postcodes(&shared_data(), &all).unwrap();
    let mut file = String::from("pcds,lsoa11cd\n");
    let mut placed: HashSet<&str> = HashSet::new();
    for l in &geo.lsoas {
        for p in &l.postcodes {
            let pc = dcrs_synth::geo::postcode_text(p);
            if let Some(pc) = wanted.get(pc) {
                file.push_str(&format!("{pc},{}\n", l.code));
                placed.insert(pc);
            }
        }
    }
    // Only the NHS pseudo-postcodes (no fixed abode, not known) are not in the lookup.
    for pc in &wanted {
        assert!(
            placed.contains(pc.as_str()) || pc.starts_with("ZZ99"),
            "{pc} is not placed"
        );
    }
    let postcodes = dir.path().join("postcodes.csv");
    std::fs::write(&postcodes, file).unwrap();
    let options = LoadOptions {
        files: vec![("postcodes".into(), postcodes)],
        actor: "test".into(),
        ..Default::default()
    };
    (dir, options)
}

/// Text as an SQL literal, or NULL.
fn literal(v: Option<&str>) -> String {
    v.map_or("NULL".into(), |v| format!("'{}'", v.replace('\'', "''")))
}

async fn execute(db: &Database, sql: String) {
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .execute(db.pool())
        .await
    {
        panic!("{e}\n{sql}");
    }
}

/// Gives the imported deployments what section 6 looks for and generated data lack,
/// before any report is made, so that no check rests on zeros alone; the recomputation
/// reads the records as they then stand. Returns a line saying what was done.
///
/// - Follow-up assessments whose weight gives a BMI outside 10–90, imported as updates
///   (the write path derives and flags BMI).
/// - Sessions entered through the application rather than imported: some more than 30
///   days after they were held (31 to 71), some within 30 (0, 1, 15, 29 and 30 days).
///   These and the rest below are plain SQL updates, which move no service's version,
///   so they are made before any report is asked for.
/// - Optional fields filled or emptied: referral reasons and referrers, GP practices, goal
///   target dates, given names, follow-up measures.
/// - Pairs of clients of one service at one postcode, the younger given the older's date
///   of birth, with names and NHS numbers set so that some pairs match and some do not;
///   clients sharing an NHS number within a service and across two services.
async fn quality_cases(
    db: &Database,
    data: &[tempfile::TempDir],
    options: &ImportOptions,
) -> String {
    let mut flagged_rows = 0;
    for d in data {
        let mut reader = csv::Reader::from_path(d.path().join("assessments.csv")).unwrap();
        let headers = reader.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let (occasion, weight) = (col("occasion"), col("weight_kg"));
        let changed = tempfile::tempdir().unwrap();
        let mut writer = csv::Writer::from_path(changed.path().join("assessments.csv")).unwrap();
        writer.write_record(&headers).unwrap();
        let mut follow_ups = 0;
        for row in reader.records() {
            let row = row.unwrap();
            if &row[occasion] != "follow_up" || row[weight].is_empty() {
                continue;
            }
            follow_ups += 1;
            if follow_ups % 20 != 0 {
                continue;
            }
            let mut out: Vec<String> = row.iter().map(String::from).collect();
            out[weight] = if follow_ups % 40 == 0 { "26" } else { "340" }.into();
            writer.write_record(&out).unwrap();
            flagged_rows += 1;
        }
        writer.flush().unwrap();
        drop(writer);
        // Every 50th client with a real postcode moves to one the lookup does not know
        // (accepted with a warning; quintile unknown): "postcodes not found".
        let mut reader = csv::Reader::from_path(d.path().join("clients.csv")).unwrap();
        let headers = reader.headers().unwrap().clone();
        let postcode = headers.iter().position(|h| h == "postcode").unwrap();
        let mut writer = csv::Writer::from_path(changed.path().join("clients.csv")).unwrap();
        writer.write_record(&headers).unwrap();
        for (i, row) in reader.records().enumerate() {
            let row = row.unwrap();
            if i % 50 != 7 || row[postcode].is_empty() || row[postcode].starts_with("ZZ99") {
                continue;
            }
            let mut out: Vec<String> = row.iter().map(String::from).collect();
            out[postcode] = "FY9 9ZZ".into();
            writer.write_record(&out).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        let imported = import_dir(db, changed.path(), options, |_| {})
            .await
            .unwrap();
        assert!(imported.committed && imported.rejections.is_empty());
    }

    let picked = fetch(
        db,
        "SELECT service_id, session_id, held_on FROM sessions \
         WHERE session_id % 397 IN (0, 1) ORDER BY service_id, session_id"
            .into(),
    )
    .await;
    let mut late = 0;
    for r in &picked {
        let (service, id, held) = (int(r, 0).unwrap(), int(r, 1).unwrap(), day(r, 2).unwrap());
        let k = ((id / 397) % 5) as usize;
        let after = if id % 397 == 0 {
            late += 1;
            [31, 41, 51, 61, 71][k]
        } else {
            [30, 0, 15, 29, 1][k]
        };
        execute(
            db,
            format!(
                "UPDATE sessions SET entered_via = 'application', created_at = '{}T10:00:00Z' \
                 WHERE service_id = {service} AND session_id = {id}",
                held + Days::new(after)
            ),
        )
        .await;
    }

    for sql in [
        "UPDATE referrals SET reason = 'Wants help to eat better (synthetic)' \
         WHERE referral_id % 3 = 0",
        "UPDATE referrals SET referrer_org_id = (SELECT MIN(org_id) FROM organisations) \
         WHERE referral_id % 5 = 0",
        "UPDATE clients SET gp_practice_code = 'Y00001' WHERE client_id % 4 = 0",
        "UPDATE clients SET given_name = NULL WHERE client_id % 50 = 7",
        "UPDATE goals SET target_on = NULL WHERE goal_id % 7 = 0",
        "UPDATE assessments SET alcohol_units_per_week = NULL, smoking_status = NULL, \
             cigarettes_per_day = NULL, waist_cm = NULL \
         WHERE occasion = 'follow_up' AND assessment_id % 4 = 0",
    ] {
        execute(db, sql.into()).await;
    }

    // Pairs at one postcode: (service, older, younger) with what the younger is given.
    let pairs = fetch(
        db,
        "SELECT a.service_id, a.client_id, b.client_id, a.date_of_birth, b.date_of_birth, \
                a.given_name, b.given_name, a.family_name, b.family_name, \
                a.nhs_number, b.nhs_number \
         FROM clients a JOIN clients b ON b.service_id = a.service_id \
           AND b.postcode = a.postcode AND b.client_id > a.client_id \
         WHERE a.postcode NOT LIKE 'ZZ99%' \
         ORDER BY a.service_id, a.client_id, b.client_id"
            .into(),
    )
    .await;
    let mut used: HashSet<(i64, i64)> = HashSet::new();
    let mut per_service: HashMap<i64, usize> = HashMap::new();
    let mut made = [0usize; 7];
    for (seen, r) in pairs.iter().enumerate() {
        let service = int(r, 0).unwrap();
        let (a, b) = (int(r, 1).unwrap(), int(r, 2).unwrap());
        let taken = per_service.entry(service).or_default();
        if seen % 5 != 0
            || *taken >= 56
            || used.contains(&(service, a))
            || used.contains(&(service, b))
        {
            continue;
        }
        // (client id, date of birth, given, family, NHS number) of the older and younger.
        let person = |i: usize| {
            (
                int(r, 1 + i).unwrap(),
                text(r, 3 + i).unwrap(),
                text(r, 5 + i),
                text(r, 7 + i),
                text(r, 9 + i),
            )
        };
        let (older, younger) = if person(0).1 <= person(1).1 {
            (person(0), person(1))
        } else {
            (person(1), person(0))
        };
        let scenario = *taken % 7;
        let both_nhs = older.4.is_some() && younger.4.is_some();
        if (scenario == 2 && !both_nhs) || (scenario == 5 && older.4.is_none()) {
            continue;
        }
        let born = ("date_of_birth", Some(older.1.clone()));
        let same_given = ("given_name", older.2.clone());
        let no_nhs = ("nhs_number", None);
        // The columns set on the younger.
        let sets: Vec<(&str, Option<String>)> = match scenario {
            // Same names, one NHS number missing: a match.
            0 => vec![born, same_given, no_nhs],
            // Names and one NHS number missing: a match.
            1 => vec![born, ("given_name", None), ("family_name", None), no_nhs],
            // Same names, two different NHS numbers: no match.
            2 => vec![born, same_given],
            // Given names differing at the first letter: no match.
            3 => vec![born, ("given_name", Some("Zoe".into())), no_nhs],
            // Family names differing within three letters: no match.
            4 => vec![
                born,
                same_given,
                ("family_name", Some("Smith-Synth".into())),
                no_nhs,
            ],
            // The same NHS number, nothing else shared: a match.
            5 => vec![("nhs_number", older.4.clone())],
            // Names in another case and with an apostrophe: a match.
            _ => vec![
                born,
                ("given_name", older.2.as_deref().map(str::to_lowercase)),
                (
                    "family_name",
                    older.3.as_deref().map(|f| {
                        let upper = f.to_uppercase();
                        format!("{}'{}", &upper[..1], &upper[1..])
                    }),
                ),
                no_nhs,
            ],
        };
        execute(
            db,
            format!(
                "UPDATE clients SET {} WHERE service_id = {service} AND client_id = {}",
                sets.iter()
                    .map(|(c, v)| format!("{c} = {}", literal(v.as_deref())))
                    .collect::<Vec<_>>()
                    .join(", "),
                younger.0
            ),
        )
        .await;
        used.insert((service, a));
        used.insert((service, b));
        made[scenario] += 1;
        *taken += 1;
    }
    // An NHS number shared across services is no duplicate: each service's client 10
    // is given the NHS number of the previous service's client 10.
    let tens = fetch(
        db,
        "SELECT service_id, nhs_number FROM clients WHERE client_id = 10 \
           AND nhs_number IS NOT NULL ORDER BY service_id"
            .into(),
    )
    .await;
    for w in tens.windows(2) {
        execute(
            db,
            format!(
                "UPDATE clients SET nhs_number = {} WHERE service_id = {} AND client_id = 10",
                literal(text(&w[0], 1).as_deref()),
                int(&w[1], 0).unwrap()
            ),
        )
        .await;
    }
    format!(
        "{flagged_rows} follow-up weights out of range, {late} sessions entered late and {} \
         within 30 days, duplicate cases {made:?}",
        picked.len() - late
    )
}

#[tokio::test]
async fn every_figure_of_sections_1_to_6_equals_an_independent_recomputation() {
    let started = Instant::now();
    let data = deployments();
    let (refdir, load_options) = reference_data(&data);
    let setup = started.elapsed();
    let z = z_975();
    let mut tq: HashMap<u64, f64> = HashMap::new();
    // The t quantile against the two closed forms of its distribution function:
    // t(0.975, 1) = tan(0.475π) (Cauchy) and t(0.975, 2) = 0.95·√(2 ÷ (1 − 0.95²)).
    let t1 = (0.475 * std::f64::consts::PI).tan();
    assert!(
        (t_975(1, &mut tq) - t1).abs() < 1e-9,
        "{}",
        t_975(1, &mut tq)
    );
    let t2 = 0.95 * (2.0 / (1.0 - 0.95f64 * 0.95)).sqrt();
    assert!(
        (t_975(2, &mut tq) - t2).abs() < 1e-9,
        "{}",
        t_975(2, &mut tq)
    );
    let mut mismatches: Vec<Mismatch> = Vec::new();
    let mut summaries: Vec<String> = Vec::new();
    let mut cases = String::new();
    each_backend!("report_recompute", |t| {
        let began = Instant::now();
        dcrs_refdata::load(&t.db, refdir.path(), &load_options)
            .await
            .unwrap();
        let options = ImportOptions {
            dry_run: false,
            today: Utc::now().date_naive(),
            rules: RuleSettings::default(),
            actor: "test".into(),
            only_new: false,
        };
        for d in &data {
            let imported = import_dir(&t.db, d.path(), &options, |_| {}).await.unwrap();
            assert!(imported.committed && imported.rejections.is_empty());
        }
        // The recomputation uses IMD 2019 and mid-2015 populations, the defaults.
        assert_eq!(t.db.imd_year().await.unwrap(), 2019);
        let population_setting = fetch(
            &t.db,
            "SELECT COUNT(*) FROM settings WHERE key = 'population_year'".into(),
        )
        .await;
        assert_eq!(int(&population_setting[0], 0), Some(0));

        let services = stored_services(&t.db).await;
        assert_eq!(services.len(), 9);
        cases = quality_cases(&t.db, &data, &options).await;
        let (mut compared, mut numbers) = (0, 0);
        for (i, p) in PERIODS.iter().enumerate() {
            let period = Period::parse(p).unwrap();
            let request = |fresh: bool| Request {
                kind: Kind::Pack,
                services: None,
                each_service: true,
                period: period.clone(),
                policy: Policy::NONE,
                fresh,
            };
            // Counted afresh; the first period is then asked for again, and must reuse
            // every service's kept counts with the same figures.
            let reports = run(&t.db, &request(true), Utc::now()).await.unwrap();
            assert_eq!(reports.len(), 1 + services.len());
            let again = match i {
                0 => run(&t.db, &request(false), Utc::now()).await.unwrap(),
                _ => Vec::new(),
            };
            if let Some(a) = again.first() {
                assert_eq!((a.counts.reused, a.counts.counted), (services.len(), 0));
            }
            for (k, report) in reports.iter().enumerate() {
                let mut asked = vec![report];
                if let Some(a) = again.get(k) {
                    let refs = |r: &Report| {
                        r.scope
                            .services
                            .iter()
                            .map(|s| s.service_ref.clone())
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(refs(a), refs(report));
                    asked.push(a);
                }
                assert_eq!(report.period, period, "the period asked for");
                let scope: Vec<&Service> = if k == 0 {
                    services.iter().collect()
                } else {
                    let one = &report.scope.services;
                    assert_eq!(one.len(), 1);
                    vec![services.iter().find(|s| s.1 == one[0].service_ref).unwrap()]
                };
                let name = format!(
                    "{:?} {} {}",
                    t.db.backend(),
                    period.label,
                    if k == 0 { "all services" } else { &scope[0].1 }
                );
                if k > 0 {
                    dashboard_agrees(&t.db, report, &scope[0].1, &period).await;
                }
                let (n, numeric, bad) = check(&t.db, &asked, &scope, &name, z, &mut tq).await;
                compared += n;
                numbers += numeric;
                mismatches.extend(bad);
            }
        }

        // A service that also serves a 2019 district formed after the 2011 census
        // (Bournemouth, Christchurch and Poole, E06000058): its local need and census
        // population come from the district's LSOAs and former districts. The change is
        // imported as an update of the national deployment's S001 and S002.
        let changed = tempfile::tempdir().unwrap();
        let mut reader = csv::Reader::from_path(data[1].path().join("services.csv")).unwrap();
        let headers = reader.headers().unwrap().clone();
        let at = headers.iter().position(|h| h == "areas_served").unwrap();
        let mut writer = csv::Writer::from_path(changed.path().join("services.csv")).unwrap();
        writer.write_record(&headers).unwrap();
        for row in reader.records() {
            let row = row.unwrap();
            let mut out: Vec<String> = row.iter().map(String::from).collect();
            match &row[0] {
                "S001" => out[at] = format!("{};{MERGED}", out[at]),
                "S002" => out[at] = MERGED.into(),
                _ => {}
            }
            writer.write_record(&out).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        assert_eq!(&headers[0], "service_ref");
        let imported = import_dir(&t.db, changed.path(), &options, |_| {})
            .await
            .unwrap();
        assert!(imported.committed && imported.rejections.is_empty());
        let services = stored_services(&t.db).await;
        let refs = ["S001", "S002"];
        let period = Period::parse("2010-11").unwrap();
        let reports = run(
            &t.db,
            &Request {
                kind: Kind::Pack,
                services: Some(refs.iter().map(|r| r.to_string()).collect()),
                each_service: true,
                period,
                policy: Policy::NONE,
                fresh: false,
            },
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(reports.len(), 3);
        for (k, report) in reports.iter().enumerate() {
            let scope: Vec<&Service> = services
                .iter()
                .filter(|s| {
                    if k == 0 {
                        refs.contains(&s.1.as_str())
                    } else {
                        s.1 == refs[k - 1]
                    }
                })
                .collect();
            assert!(scope.iter().any(|s| s.2.contains(&MERGED.to_string())));
            if k == 2 {
                // S002 serves the merged district alone: its census population is that
                // of Bournemouth, Poole and Christchurch in 2011 (the census file's rows).
                let stated = report
                    .table("reach_by_ethnic_group")
                    .and_then(|t| t.get("Stated", "population"))
                    .and_then(Figure::as_f64);
                assert_eq!(stated, Some((183_491 + 147_645 + 47_752) as f64));
            }
            let name = format!(
                "{:?} 2010-11 {} serving {MERGED}",
                t.db.backend(),
                scope
                    .iter()
                    .map(|s| s.1.as_str())
                    .collect::<Vec<_>>()
                    .join("+")
            );
            let (n, numeric, bad) = check(&t.db, &[report], &scope, &name, z, &mut tq).await;
            compared += n;
            numbers += numeric;
            mismatches.extend(bad);
        }
        summaries.push(format!(
            "{:?} {compared} figures ({numbers} numbers, {} shown as no number) in {:.1?}",
            t.db.backend(),
            compared - numbers,
            began.elapsed()
        ));
    });
    let summary = format!(
        "recompute: {}; data generated in {setup:.1?}; for section 6: {cases}",
        summaries.join("; ")
    );
    // MISMATCH: a report figure that differs from its independent recomputation. The
    // message counts them by table and column, then lists each one.
    let mut kinds: BTreeMap<(String, String), (usize, &Mismatch)> = BTreeMap::new();
    for m in &mismatches {
        kinds
            .entry((m.table.clone(), m.column.clone()))
            .or_insert((0, m))
            .0 += 1;
    }
    assert!(
        mismatches.is_empty(),
        "{} figures differ from the recomputation ({summary}).\nBy table / column:\n{}\nEach:\n{}",
        mismatches.len(),
        kinds
            .iter()
            .map(|((t, c), (n, m))| format!(
                "  MISMATCH {n} x {t} / {c}; first: [{}] {}: expected {:?}, report shows {} \
                 (report row: {})",
                m.scope, m.row, m.expected, m.actual, m.context
            ))
            .collect::<Vec<_>>()
            .join("\n"),
        mismatches
            .iter()
            .map(|m| format!(
                "  MISMATCH [{}] {} / {} / {}: expected {:?}, report shows {}",
                m.scope, m.table, m.row, m.column, m.expected, m.actual
            ))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    // Past the harness's output capture, so the one line shows on success.
    let _ = writeln!(std::io::stderr(), "{summary}");
}
