//! Every figure of the activity, reach, outcomes, pathway and workforce reports
//! (analytics.md sections 1–5) on generated data, recomputed here independently of the
//! report code: plain SQL over the base tables (`referrals`, `episodes`, `sessions`,
//! `plans`, `goals`, `assessments`, `clients`, `workers`) and the reference tables
//! (`ref_postcodes`, `ref_lsoa11`, `ref_lsoa01_lsoa11`, `ref_census_ethnicity`), written
//! from the text of analytics.md and dataset.md, plus small arithmetic in Rust for
//! medians, means, the Wilson interval and the t interval (the t quantile is found here
//! by integrating the t density; nothing is tabulated).
//!
//! The data: the six-service scenario and a three-service national deployment stored
//! side by side. Policy `none`, so counts compare exactly and other figures to 1e-6.
//! Checked for a financial year, two quarters and a date range, for all services
//! together and for each service, then for services changed to serve a 2019 district
//! the 2011 census does not know; on SQLite and PostgreSQL. Every numeric cell of every
//! table of the five sections must have a recomputed value, and every recomputed value
//! must be in the report. A figure that differs is listed as `MISMATCH` in the failure.

use chrono::{Datelike, NaiveDate, Utc};
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

/// The section ids of analytics.md 1–5 as the reports name them.
const SECTIONS: [&str; 5] = ["activity", "reach", "outcomes", "pathway", "workforce"];

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

/// Everything the five sections show for one scope and period, recomputed.
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

/// Recomputes one report's figures for the services of its scope and compares them:
/// (figures compared, of which numbers, mismatches).
async fn check(
    db: &Database,
    report: &Report,
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
        from: report.period.from.to_string(),
        to: report.period.to.to_string(),
    };
    let x = expected(db, &sc, &areas, z, tq).await;
    if name.ends_with("2010-11 all services") {
        assert_substantial(&x);
    }
    compare(report, &x, name)
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
    ];
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

#[tokio::test]
async fn every_figure_of_sections_1_to_5_equals_an_independent_recomputation() {
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
        let (mut compared, mut numbers) = (0, 0);
        for p in PERIODS {
            let period = Period::parse(p).unwrap();
            let reports = run(
                &t.db,
                &Request {
                    kind: Kind::Pack,
                    services: None,
                    each_service: true,
                    period: period.clone(),
                    policy: Policy::NONE,
                    fresh: false,
                },
                Utc::now(),
            )
            .await
            .unwrap();
            assert_eq!(reports.len(), 1 + services.len());
            for (k, report) in reports.iter().enumerate() {
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
                let (n, numeric, bad) = check(&t.db, report, &scope, &name, z, &mut tq).await;
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
            let (n, numeric, bad) = check(&t.db, report, &scope, &name, z, &mut tq).await;
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
        "recompute: {}; data generated in {setup:.1?}",
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
