//! Every figure of the delivery fingerprint tables of the implementation patterns report
//! (analytics.md section 7), on a generated two-service national deployment, recomputed
//! here independently of the report code: plain SQL over the base tables (`referrals`,
//! `clients`, `episodes`, `plans`, `sessions`, `wider_issues`, `workers`), with the
//! financial quarters, the medians, the day differences, the delivery model rules and the
//! medicalisation index worked out in Rust from the definitions. Nothing of
//! `dcrs_report` is called but `patterns::run` (and `Period`, `Policy` and the output's
//! data types).
//!
//! Policy `none`, so counts compare exactly and shares, medians and the index to 1e-6
//! (shares are published with six decimals). Every quarter from 2008-09 Q1 to 2010-11 Q4
//! of every service, on SQLite and PostgreSQL. A figure that differs is listed as
//! `MISMATCH` in the failure.

mod common;

use chrono::{Days, Months, NaiveDate, Utc};
use dcrs_report::patterns::{PatternsRequest, run};
use dcrs_report::{Figure, Period, Policy};
use dcrs_store::Database;
use dcrs_testkit::each_backend;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------
// Code lists, written out from dcrs_domain::codes (`ReferralSource::group`, `Venue`).

/// Referral sources of the community group.
const COMMUNITY: [&str; 7] = [
    "self",
    "friend_or_family",
    "community_organisation",
    "outreach_event",
    "workplace",
    "local_authority_service",
    "housing_or_jobcentre",
];

/// Referral sources of the clinical group (`other_health_professional` included, as
/// `ReferralSource::group` has it).
const CLINICAL: [&str; 8] = [
    "gp",
    "practice_nurse",
    "health_check",
    "stop_smoking_service",
    "pharmacy",
    "hospital",
    "mental_health_service",
    "other_health_professional",
];

/// Venues in clinical settings.
const CLINICAL_VENUES: [&str; 3] = ["gp_practice", "health_centre", "pharmacy"];

/// The fingerprint's columns after the quarter, in order. `target_area_share` is in the
/// table but is not recomputed here (it needs the recorded target areas of each
/// configuration); every other column is.
const COLUMNS: [&str; 16] = [
    "referrals",
    "sessions_attended",
    "community_referral_share",
    "clinical_referral_share",
    "deprived_reach",
    "target_area_share",
    "telephone_share",
    "clinical_venue_share",
    "brief_share",
    "plan_rate",
    "days_to_plan",
    "sessions_per_episode",
    "local_worker_share",
    "wider_issue_rate",
    "delivery_model",
    "medicalisation_index",
];

/// The column not checked (see [`COLUMNS`]).
const SKIPPED: &str = "target_area_share";

/// The period asked for, as financial years: 2008-09 to 2010-11.
const FIRST_YEAR: i32 = 2008;
const LAST_YEAR: i32 = 2010;

// ---------------------------------------------------------------------------------
// Financial quarters, from ISO dates.

/// A financial quarter: the calendar year its financial year starts in, and 1–4
/// (Q1 = April–June).
type Quarter = (i32, u32);

/// The quarter of an ISO date (only its `YYYY-MM` is read).
fn quarter_of(iso: &str) -> Quarter {
    let year: i32 = iso[0..4].parse().unwrap();
    let month: u32 = iso[5..7].parse().unwrap();
    if month >= 4 {
        (year, (month - 4) / 3 + 1)
    } else {
        (year - 1, 4)
    }
}

/// A quarter's first and last days.
fn bounds((year, q): Quarter) -> (NaiveDate, NaiveDate) {
    let first = if q <= 3 {
        NaiveDate::from_ymd_opt(year, 4 + 3 * (q - 1), 1).unwrap()
    } else {
        NaiveDate::from_ymd_opt(year + 1, 1, 1).unwrap()
    };
    let last = first
        .checked_add_months(Months::new(3))
        .unwrap()
        .checked_sub_days(Days::new(1))
        .unwrap();
    (first, last)
}

/// As the report writes it: `2009-10 Q3`.
fn label((year, q): Quarter) -> String {
    format!("{year}-{:02} Q{q}", (year + 1) % 100)
}

/// Every quarter of the period, in order.
fn quarters() -> Vec<Quarter> {
    (FIRST_YEAR..=LAST_YEAR)
        .flat_map(|y| (1..=4).map(move |q| (y, q)))
        .collect()
}

fn day(iso: &str) -> NaiveDate {
    NaiveDate::parse_from_str(iso, "%Y-%m-%d").unwrap()
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

fn text(r: &AnyRow, i: usize) -> Option<String> {
    r.try_get::<Option<String>, _>(i).unwrap()
}

/// `'a', 'b', …` for an `IN` list.
fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------
// The recomputation.

/// What one service's quarter holds, counted from the base tables.
#[derive(Debug, Default, Clone)]
struct Tally {
    referrals: i64,
    community: i64,
    clinical: i64,
    new_known_quintile: i64,
    new_quintile_1: i64,
    attended: i64,
    telephone: i64,
    face_to_face: i64,
    face_to_face_clinical: i64,
    opened: i64,
    brief: i64,
    full: i64,
    full_with_plan: i64,
    with_wider_issue: i64,
    days_to_plan: Vec<i64>,
    sessions_per_closed: Vec<i64>,
    workers_known: i64,
    workers_local: i64,
}

fn share(k: i64, n: i64) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

/// The median; of an even count, the mean of the two middle values.
fn median(values: &[i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    })
}

/// An expected cell.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Count(i64),
    /// A share, median or index; `None` is `n/a`.
    Value(Option<f64>),
    Text(String),
}

impl Tally {
    /// The expected cell of each checked column, by column id.
    fn expected(&self) -> BTreeMap<&'static str, Expect> {
        let community_share = share(self.community, self.referrals);
        let clinical_share = share(self.clinical, self.referrals);
        let telephone_share = share(self.telephone, self.attended);
        let clinical_venue_share = share(self.face_to_face_clinical, self.face_to_face);
        let brief_share = share(self.brief, self.opened);
        let sessions_per_episode = median(&self.sessions_per_closed);
        let at_least = |v: Option<f64>, t: f64| v.is_some_and(|x| x >= t);
        let model = if self.referrals < 20 || self.attended < 50 {
            "insufficient_data"
        } else if at_least(telephone_share, 0.5) && sessions_per_episode.is_some_and(|x| x <= 2.0) {
            "telephone_triage"
        } else if at_least(clinical_share, 0.5) || at_least(clinical_venue_share, 0.5) {
            "primary_care"
        } else if at_least(community_share, 0.5) {
            "community_peer"
        } else {
            "mixed"
        };
        let index = match (
            clinical_share,
            clinical_venue_share,
            telephone_share,
            brief_share,
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => Some((a + b + c + d) / 4.0),
            _ => None,
        };
        BTreeMap::from([
            ("referrals", Expect::Count(self.referrals)),
            ("sessions_attended", Expect::Count(self.attended)),
            ("community_referral_share", Expect::Value(community_share)),
            ("clinical_referral_share", Expect::Value(clinical_share)),
            (
                "deprived_reach",
                Expect::Value(share(self.new_quintile_1, self.new_known_quintile)),
            ),
            ("telephone_share", Expect::Value(telephone_share)),
            ("clinical_venue_share", Expect::Value(clinical_venue_share)),
            ("brief_share", Expect::Value(brief_share)),
            (
                "plan_rate",
                Expect::Value(share(self.full_with_plan, self.full)),
            ),
            ("days_to_plan", Expect::Value(median(&self.days_to_plan))),
            ("sessions_per_episode", Expect::Value(sessions_per_episode)),
            (
                "local_worker_share",
                Expect::Value(share(self.workers_local, self.workers_known)),
            ),
            (
                "wider_issue_rate",
                Expect::Value(share(self.with_wider_issue, self.opened)),
            ),
            ("delivery_model", Expect::Text(model.into())),
            ("medicalisation_index", Expect::Value(index)),
        ])
    }
}

/// Every service's tallies by quarter of the period, keyed by service id.
async fn recompute(db: &Database) -> BTreeMap<i64, BTreeMap<Quarter, Tally>> {
    let qs = quarters();
    let mut all: BTreeMap<i64, BTreeMap<Quarter, Tally>> = BTreeMap::new();
    for r in fetch(db, "SELECT service_id FROM services".into()).await {
        all.insert(
            int(&r, 0).unwrap(),
            qs.iter().map(|q| (*q, Tally::default())).collect(),
        );
    }
    // The tally of a service's quarter, when the quarter is in the period.
    fn at<'a>(
        all: &'a mut BTreeMap<i64, BTreeMap<Quarter, Tally>>,
        service: i64,
        iso: &str,
    ) -> Option<&'a mut Tally> {
        all.get_mut(&service)
            .expect("a stored service")
            .get_mut(&quarter_of(iso))
    }

    // Referrals received, by month, all and by source group.
    let sql = format!(
        "SELECT service_id, substr(received_on, 1, 7) AS month, COUNT(*) AS n, \
                CAST(SUM(CASE WHEN source IN ({community}) THEN 1 ELSE 0 END) AS BIGINT), \
                CAST(SUM(CASE WHEN source IN ({clinical}) THEN 1 ELSE 0 END) AS BIGINT) \
         FROM referrals \
         GROUP BY service_id, substr(received_on, 1, 7)",
        community = list(&COMMUNITY),
        clinical = list(&CLINICAL),
    );
    for r in fetch(db, sql).await {
        if let Some(t) = at(&mut all, int(&r, 0).unwrap(), &text(&r, 1).unwrap()) {
            t.referrals += int(&r, 2).unwrap();
            t.community += int(&r, 3).unwrap();
            t.clinical += int(&r, 4).unwrap();
        }
    }

    // New clients: each client's earliest episode (by first contact, then lowest
    // episode id), with the client's IMD quintile.
    let sql = "SELECT e.service_id, e.first_contact_on, c.imd_quintile \
               FROM episodes e \
               JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
               JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id \
               WHERE NOT EXISTS ( \
                   SELECT 1 FROM episodes e2 \
                   JOIN referrals r2 \
                     ON r2.service_id = e2.service_id AND r2.referral_id = e2.referral_id \
                   WHERE r2.service_id = r.service_id AND r2.client_id = r.client_id \
                     AND (e2.first_contact_on < e.first_contact_on \
                          OR (e2.first_contact_on = e.first_contact_on \
                              AND e2.episode_id < e.episode_id)))";
    let mut new_clients = 0;
    for r in fetch(db, sql.into()).await {
        new_clients += 1;
        let quintile = int(&r, 2);
        if let Some(t) = at(&mut all, int(&r, 0).unwrap(), &text(&r, 1).unwrap())
            && quintile.is_some()
        {
            t.new_known_quintile += 1;
            if quintile == Some(1) {
                t.new_quintile_1 += 1;
            }
        }
    }
    // Every client with an episode has exactly one earliest.
    let sql = "SELECT COUNT(*) FROM clients c \
               WHERE EXISTS ( \
                   SELECT 1 FROM referrals r \
                   JOIN episodes e ON e.service_id = r.service_id AND e.referral_id = r.referral_id \
                   WHERE r.service_id = c.service_id AND r.client_id = c.client_id)";
    let clients = fetch(db, sql.into()).await;
    assert_eq!(
        Some(new_clients),
        int(&clients[0], 0),
        "one earliest episode per client seen"
    );

    // Attended sessions, by month: all, by telephone, face to face, and face to face in
    // a clinical venue.
    let sql = format!(
        "SELECT service_id, substr(held_on, 1, 7) AS month, COUNT(*) AS n, \
                CAST(SUM(CASE WHEN mode = 'telephone' THEN 1 ELSE 0 END) AS BIGINT), \
                CAST(SUM(CASE WHEN mode = 'face_to_face' THEN 1 ELSE 0 END) AS BIGINT), \
                CAST(SUM(CASE WHEN mode = 'face_to_face' AND venue IN ({venues}) \
                              THEN 1 ELSE 0 END) AS BIGINT) \
         FROM sessions \
         WHERE attended = 'yes' \
         GROUP BY service_id, substr(held_on, 1, 7)",
        venues = list(&CLINICAL_VENUES),
    );
    for r in fetch(db, sql).await {
        if let Some(t) = at(&mut all, int(&r, 0).unwrap(), &text(&r, 1).unwrap()) {
            t.attended += int(&r, 2).unwrap();
            t.telephone += int(&r, 3).unwrap();
            t.face_to_face += int(&r, 4).unwrap();
            t.face_to_face_clinical += int(&r, 5).unwrap();
        }
    }

    // Episodes by first contact: kind, the first plan agreed, and how many wider issues.
    let sql = "SELECT e.service_id, e.kind, e.first_contact_on, \
                      (SELECT MIN(p.agreed_on) FROM plans p \
                       WHERE p.service_id = e.service_id AND p.episode_id = e.episode_id), \
                      (SELECT COUNT(*) FROM wider_issues w \
                       WHERE w.service_id = e.service_id AND w.episode_id = e.episode_id) \
               FROM episodes e";
    for r in fetch(db, sql.into()).await {
        let first = text(&r, 2).unwrap();
        let Some(t) = at(&mut all, int(&r, 0).unwrap(), &first) else {
            continue;
        };
        t.opened += 1;
        match text(&r, 1).unwrap().as_str() {
            "brief" => t.brief += 1,
            "full" => {
                t.full += 1;
                if let Some(agreed) = text(&r, 3) {
                    t.full_with_plan += 1;
                    t.days_to_plan.push((day(&agreed) - day(&first)).num_days());
                }
            }
            other => panic!("episode kind {other}"),
        }
        if int(&r, 4).unwrap() > 0 {
            t.with_wider_issue += 1;
        }
    }

    // Full episodes by closing date, with their attended sessions (all of them).
    let sql = "SELECT e.service_id, e.closed_on, \
                      (SELECT COUNT(*) FROM sessions s \
                       WHERE s.service_id = e.service_id AND s.episode_id = e.episode_id \
                         AND s.attended = 'yes') \
               FROM episodes e \
               WHERE e.kind = 'full' AND e.closed_on IS NOT NULL";
    for r in fetch(db, sql.into()).await {
        if let Some(t) = at(&mut all, int(&r, 0).unwrap(), &text(&r, 1).unwrap()) {
            t.sessions_per_closed.push(int(&r, 2).unwrap());
        }
    }

    // Workers active at any time in each quarter, by whether they live in the area.
    let sql = "SELECT service_id, started_on, left_on, lives_in_area_served FROM workers";
    for r in fetch(db, sql.into()).await {
        let service = int(&r, 0).unwrap();
        let started = day(&text(&r, 1).unwrap());
        let left = text(&r, 2).map(|d| day(&d));
        let lives = text(&r, 3).unwrap();
        for (q, t) in all.get_mut(&service).unwrap().iter_mut() {
            let (first, last) = bounds(*q);
            let active = started <= last && left.is_none_or(|l| l >= first);
            if !active {
                continue;
            }
            match lives.as_str() {
                "yes" => {
                    t.workers_known += 1;
                    t.workers_local += 1;
                }
                "no" => t.workers_known += 1,
                _ => {}
            }
        }
    }
    all
}

// ---------------------------------------------------------------------------------
// The comparison.

/// The report's table id of a service: its reference lowercased, anything not a letter
/// or digit made `_`.
fn table_id(service_ref: &str) -> String {
    let id: String = service_ref
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{id}_fingerprint")
}

fn matches(expect: &Expect, got: Option<&Figure>) -> bool {
    match (expect, got) {
        (Expect::Count(v), Some(Figure::Int(g))) => v == g,
        (Expect::Value(None), Some(Figure::NotApplicable)) => true,
        (Expect::Value(Some(v)), Some(f)) => f.as_f64().is_some_and(|g| (g - v).abs() <= 1e-6),
        (Expect::Text(v), Some(Figure::Text(g))) => v == g,
        _ => false,
    }
}

/// What one backend's check found.
struct Outcome {
    checked: usize,
    /// Checked figures with a value (not `n/a`).
    with_value: usize,
    mismatches: Vec<String>,
}

async fn check(db: &Database, backend: &str) -> Outcome {
    let req = PatternsRequest {
        services: None,
        period: Some(Period::parse("2008-09..2010-11").unwrap()),
        policy: Policy::NONE,
        settings: Default::default(),
        rules: Default::default(),
    };
    let report = run(db, &req, Utc::now()).await.unwrap();
    let expected = recompute(db).await;
    let services: BTreeMap<i64, String> =
        fetch(db, "SELECT service_id, service_ref FROM services".into())
            .await
            .iter()
            .map(|r| (int(r, 0).unwrap(), text(r, 1).unwrap()))
            .collect();
    assert_eq!(services.len(), 2, "{backend}: the generated services");

    // One fingerprint table per service, and no other.
    let found: BTreeSet<String> = report
        .sections
        .iter()
        .flat_map(|s| &s.tables)
        .map(|t| t.id.clone())
        .filter(|id| id.ends_with("_fingerprint"))
        .collect();
    let wanted: BTreeSet<String> = services.values().map(|r| table_id(r)).collect();
    assert_eq!(found, wanted, "{backend}: the fingerprint tables");

    let labels: Vec<String> = quarters().into_iter().map(label).collect();
    let mut out = Outcome {
        checked: 0,
        with_value: 0,
        mismatches: Vec::new(),
    };
    for (id, service_ref) in &services {
        let tid = table_id(service_ref);
        let table = report.table(&tid).unwrap();
        let columns: Vec<&str> = table.columns.iter().map(|c| c.id.as_str()).collect();
        let mut want_columns = vec!["quarter"];
        want_columns.extend(COLUMNS);
        assert_eq!(columns, want_columns, "{backend}: {tid}'s columns");
        let rows: Vec<String> = table
            .rows
            .iter()
            .map(|r| match r.first() {
                Some(Figure::Text(t)) => t.clone(),
                other => panic!("{backend}: {tid} row label {other:?}"),
            })
            .collect();
        assert_eq!(rows, labels, "{backend}: {tid}'s quarters");
        for (q, tally) in &expected[id] {
            let row = label(*q);
            let cells = tally.expected();
            for column in COLUMNS.iter().filter(|c| **c != SKIPPED) {
                let want = &cells[column];
                let got = table.get(&row, column);
                out.checked += 1;
                if !matches!(want, Expect::Value(None)) {
                    out.with_value += 1;
                }
                if !matches(want, got) {
                    out.mismatches.push(format!(
                        "MISMATCH {backend} {tid} {row} {column}: expected {want:?}, report has {got:?} ({tally:?})"
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn every_fingerprint_figure_equals_an_independent_recomputation() {
    let shared = common::shared();
    // The full reference data, so that every generated client's postcode is found and
    // deprived reach has figures to compare.
    let load_options = dcrs_refdata::LoadOptions {
        actor: "test".into(),
        ..Default::default()
    };
    let data = tempfile::tempdir().unwrap();
    dcrs_synth::generate(
        &shared,
        data.path(),
        &dcrs_synth::Options {
            seed: 5,
            scale: Some(dcrs_synth::Scale {
                services: 2,
                clients: 2500,
            }),
        },
    )
    .unwrap();

    let mut mismatches: Vec<String> = Vec::new();
    let mut total = 0;
    let mut backends = 0;
    each_backend!("patterns_recompute", |t| {
        let backend = format!("{:?}", t.db.backend());
        dcrs_refdata::load(&t.db, &shared, &load_options)
            .await
            .unwrap();
        let imported =
            dcrs_exchange::import_dir(&t.db, data.path(), &common::import_options(), |_| {})
                .await
                .unwrap();
        assert!(
            imported.rejections.is_empty(),
            "{backend}: {:?}",
            imported.rejections
        );
        let out = check(&t.db, &backend).await;
        // Every checked cell of every row: 2 services × 12 quarters × 15 columns.
        assert_eq!(out.checked, 2 * 12 * (COLUMNS.len() - 1), "{backend}");
        assert!(
            out.with_value * 10 > out.checked * 9,
            "{backend}: nearly every figure has a value ({} of {})",
            out.with_value,
            out.checked
        );
        println!(
            "{backend}: {} fingerprint figures checked ({} with a value, the rest n/a), {} mismatches",
            out.checked,
            out.with_value,
            out.mismatches.len()
        );
        total += out.checked;
        backends += 1;
        mismatches.extend(out.mismatches);
    });
    println!("{total} figures checked on {backends} backend(s)");
    assert!(
        mismatches.is_empty(),
        "{} figures differ from the recomputation:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // Both backends: 720 figures. With PostgreSQL skipped (outside CI only) the one
    // backend's 360 are checked above, cell by cell.
    if backends == 2 {
        assert!(total > 500, "{total} figures checked");
    }
}
