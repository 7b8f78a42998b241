//! Implementation patterns (analytics.md section 7): per service and quarter the delivery
//! fingerprint, the delivery model and the medicalisation index; shifts in each measure,
//! labelled `explained` by a recorded configuration change or `drift`; a retrospective
//! change-point view; and mismatches between the recorded configuration and what the
//! records show.
//!
//! [`run`] returns one [`Report`] (one section per service and an overview), built as a
//! draft like the other reports so that the same disclosure control applies to every
//! count, share and median it shows, and so that it renders as JSON, CSV, HTML and .xlsx.

use crate::data::{self, ServiceInfo, fill, int, rows, text};
use crate::doc::{Cell, CountId, Derivation, Draft, DraftSection, DraftTable, Unit, col};
use crate::drift::{self, Series, Settings};
use crate::{Kind, Period, Policy, Report, ReportError, Request};
use chrono::{DateTime, NaiveDate, Utc};
use dcrs_domain::codes::{ReferralSource, SourceGroup};
use dcrs_domain::types::Quarter;
use dcrs_store::{Backend, Database};
use std::collections::BTreeMap;

/// The fingerprint measures, in analytics.md's order: (id, label, a median rather than
/// a share).
pub const MEASURES: [(&str, &str, bool); 12] = [
    (
        "community_referral_share",
        "Community referral share",
        false,
    ),
    ("clinical_referral_share", "Clinical referral share", false),
    ("deprived_reach", "Deprived reach (quintile 1)", false),
    ("target_area_share", "Target area share", false),
    ("telephone_share", "Telephone share", false),
    ("clinical_venue_share", "Clinical venue share", false),
    ("brief_share", "Brief episode share", false),
    ("plan_rate", "Plan rate", false),
    ("days_to_plan", "Median days to plan", true),
    (
        "sessions_per_episode",
        "Median sessions per closed full episode",
        true,
    ),
    ("local_worker_share", "Local worker share", false),
    ("wider_issue_rate", "Wider issue rate", false),
];

/// The delivery model rules' thresholds (settings; analytics.md's defaults).
#[derive(Debug, Clone, Copy)]
pub struct ModelRules {
    pub telephone_share: f64,
    pub telephone_sessions: f64,
    pub clinical_share: f64,
    pub community_share: f64,
    pub min_referrals: i64,
    pub min_sessions: i64,
}

impl Default for ModelRules {
    fn default() -> Self {
        ModelRules {
            telephone_share: 0.5,
            telephone_sessions: 2.0,
            clinical_share: 0.5,
            community_share: 0.5,
            min_referrals: 20,
            min_sessions: 50,
        }
    }
}

/// What to look at.
#[derive(Debug, Clone)]
pub struct PatternsRequest {
    /// Service references; `None` for every service.
    pub services: Option<Vec<String>>,
    /// The quarters to show; `None` from the first service's start to the last record.
    pub period: Option<Period>,
    /// The disclosure policy.
    pub policy: Policy,
    /// The shift detector's settings.
    pub settings: Settings,
    /// The delivery model's thresholds.
    pub rules: ModelRules,
}

/// A service's configuration as recorded.
#[derive(Debug, Clone)]
pub struct Configuration {
    pub configuration_ref: String,
    pub effective_from: NaiveDate,
    pub fields: Vec<(&'static str, String)>,
    pub targeting: String,
    pub target_lsoas: Vec<String>,
    pub worker_profile: String,
}

/// What one quarter's records count, for one service.
#[derive(Debug, Clone, Default)]
pub struct QuarterCounts {
    /// Referrals by source group (in `SourceGroup::ALL` order).
    pub referrals: [i64; 4],
    pub new_known_quintile: i64,
    pub new_quintile_1: i64,
    pub new_known_area: i64,
    /// New clients in the target areas; `None` when the configuration has none.
    pub new_in_target: Option<i64>,
    pub attended: i64,
    pub telephone: i64,
    pub face_to_face: i64,
    pub face_to_face_clinical: i64,
    pub opened: i64,
    pub brief: i64,
    pub full: i64,
    pub full_with_plan: i64,
    pub with_wider_issue: i64,
    pub days_to_plan: BTreeMap<i64, i64>,
    pub sessions_per_closed: BTreeMap<i64, i64>,
    pub workers_known: i64,
    pub workers_local: i64,
    /// The same workers by the quarter they started (index; 0 for the first quarter or
    /// before): the local worker share counts much the same people every quarter, and
    /// the detector weighs only those who joined since its reference.
    pub workers_by_start: drift::Team,
}

impl QuarterCounts {
    fn total_referrals(&self) -> i64 {
        self.referrals.iter().sum()
    }

    /// Measure `m`'s numerator and denominator, for shares.
    pub fn share(&self, m: usize) -> Option<(i64, i64)> {
        let pair = match MEASURES[m].0 {
            "community_referral_share" => (self.referrals[0], self.total_referrals()),
            "clinical_referral_share" => (self.referrals[1], self.total_referrals()),
            "deprived_reach" => (self.new_quintile_1, self.new_known_quintile),
            "target_area_share" => (self.new_in_target?, self.new_known_area),
            "telephone_share" => (self.telephone, self.attended),
            "clinical_venue_share" => (self.face_to_face_clinical, self.face_to_face),
            "brief_share" => (self.brief, self.opened),
            "plan_rate" => (self.full_with_plan, self.full),
            "local_worker_share" => (self.workers_local, self.workers_known),
            "wider_issue_rate" => (self.with_wider_issue, self.opened),
            _ => return None,
        };
        Some(pair)
    }

    /// Measure `m`'s values, for medians.
    pub fn values(&self, m: usize) -> Option<&BTreeMap<i64, i64>> {
        match MEASURES[m].0 {
            "days_to_plan" => Some(&self.days_to_plan),
            "sessions_per_episode" => Some(&self.sessions_per_closed),
            _ => None,
        }
    }

    /// Measure `m`'s value, exactly.
    pub fn value(&self, m: usize) -> Option<f64> {
        if let Some(v) = self.values(m) {
            return crate::data::median_of(v);
        }
        let (k, n) = self.share(m)?;
        (n > 0).then(|| k as f64 / n as f64)
    }

    fn add(&mut self, o: &QuarterCounts) {
        for (a, b) in self.referrals.iter_mut().zip(o.referrals) {
            *a += b;
        }
        self.new_known_quintile += o.new_known_quintile;
        self.new_quintile_1 += o.new_quintile_1;
        self.new_known_area += o.new_known_area;
        self.new_in_target = match (self.new_in_target, o.new_in_target) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.attended += o.attended;
        self.telephone += o.telephone;
        self.face_to_face += o.face_to_face;
        self.face_to_face_clinical += o.face_to_face_clinical;
        self.opened += o.opened;
        self.brief += o.brief;
        self.full += o.full;
        self.full_with_plan += o.full_with_plan;
        self.with_wider_issue += o.with_wider_issue;
        for (k, v) in &o.days_to_plan {
            *self.days_to_plan.entry(*k).or_default() += v;
        }
        for (k, v) in &o.sessions_per_closed {
            *self.sessions_per_closed.entry(*k).or_default() += v;
        }
        self.workers_known += o.workers_known;
        self.workers_local += o.workers_local;
        for (q, (k, n)) in &o.workers_by_start {
            let e = self.workers_by_start.entry(*q).or_default();
            e.0 += k;
            e.1 += n;
        }
    }
}

/// The delivery model of a fingerprint (analytics.md section 7's rules, first match).
pub fn delivery_model(c: &QuarterCounts, rules: &ModelRules) -> &'static str {
    if c.total_referrals() < rules.min_referrals || c.attended < rules.min_sessions {
        return "insufficient_data";
    }
    let v = |id: &str| {
        let m = MEASURES.iter().position(|x| x.0 == id).expect("a measure");
        c.value(m)
    };
    let at_least = |id: &str, t: f64| v(id).is_some_and(|x| x >= t);
    if at_least("telephone_share", rules.telephone_share)
        && v("sessions_per_episode").is_some_and(|x| x <= rules.telephone_sessions)
    {
        "telephone_triage"
    } else if at_least("clinical_referral_share", rules.clinical_share)
        || at_least("clinical_venue_share", rules.clinical_share)
    {
        "primary_care"
    } else if at_least("community_referral_share", rules.community_share) {
        "community_peer"
    } else {
        "mixed"
    }
}

/// The medicalisation index: the mean of the clinical referral, clinical venue,
/// telephone and brief shares (of those that can be computed).
pub fn medicalisation(c: &QuarterCounts) -> Option<f64> {
    let ids = [
        "clinical_referral_share",
        "clinical_venue_share",
        "telephone_share",
        "brief_share",
    ];
    let v: Vec<f64> = ids
        .iter()
        .filter_map(|id| c.value(MEASURES.iter().position(|x| x.0 == *id)?))
        .collect();
    (v.len() == ids.len()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// One service's quarters, counts and configurations, exactly.
#[derive(Debug, Clone)]
pub struct ServiceSeries {
    pub service: ServiceInfo,
    pub quarters: Vec<Quarter>,
    pub counts: Vec<QuarterCounts>,
    pub configurations: Vec<Configuration>,
    /// Population share of national quintile 1 in the areas served.
    pub quintile_1_population: Option<f64>,
    /// Whether the quarters run to the latest record, so that the episodes opened in the
    /// last quarter have not all had time to agree a plan.
    pub open_end: bool,
}

impl ServiceSeries {
    /// The series of measure `m`.
    pub fn series(&self, m: usize) -> Series {
        let mut series = self.all_quarters(m);
        // Plans of the latest quarter's episodes are still to come: leave it out.
        if self.open_end && matches!(MEASURES[m].0, "plan_rate" | "days_to_plan") {
            match &mut series {
                Series::Share(v) => {
                    v.pop();
                }
                Series::Median(v) => {
                    v.pop();
                }
                Series::Team(v) => {
                    v.pop();
                }
            }
        }
        series
    }

    fn all_quarters(&self, m: usize) -> Series {
        if MEASURES[m].0 == "local_worker_share" {
            Series::Team(
                self.counts
                    .iter()
                    .map(|c| Some(c.workers_by_start.clone()).filter(|t| !t.is_empty()))
                    .collect(),
            )
        } else if MEASURES[m].2 {
            Series::Median(
                self.counts
                    .iter()
                    .map(|c| c.values(m).filter(|v| !v.is_empty()).cloned())
                    .collect(),
            )
        } else {
            Series::Share(self.counts.iter().map(|c| c.share(m)).collect())
        }
    }

    /// The configuration in force on a date.
    pub fn configuration_on(&self, date: NaiveDate) -> Option<&Configuration> {
        self.configurations
            .iter()
            .filter(|c| c.effective_from <= date)
            .max_by_key(|c| c.effective_from)
    }

    /// Indices of the quarters with enough data for a delivery model.
    pub fn sufficient(&self, rules: &ModelRules) -> Vec<usize> {
        (0..self.counts.len())
            .filter(|&i| delivery_model(&self.counts[i], rules) != "insufficient_data")
            .collect()
    }

    /// Counts pooled over some quarters.
    pub fn pooled(&self, quarters: &[usize]) -> QuarterCounts {
        let mut all = QuarterCounts::default();
        for &q in quarters {
            all.add(&self.counts[q]);
        }
        all
    }

    /// The model of the first and of the last four quarters with enough data, pooled.
    pub fn start_and_follow_up(&self, rules: &ModelRules) -> (&'static str, &'static str) {
        let ok = self.sufficient(rules);
        let first: Vec<usize> = ok.iter().take(4).copied().collect();
        let last: Vec<usize> = ok.iter().rev().take(4).copied().collect();
        (
            delivery_model(&self.pooled(&first), rules),
            delivery_model(&self.pooled(&last), rules),
        )
    }
}

fn days_to_plan_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "CAST(julianday(plan_agreed_on) - julianday(first_contact_on) AS INTEGER)"
        }
        Backend::Postgres => "(CAST(plan_agreed_on AS DATE) - CAST(first_contact_on AS DATE))",
    }
}

fn month_quarter(month: &str) -> Option<Quarter> {
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .ok()
        .map(Quarter::containing)
}

/// Reads every service's quarterly counts from the records.
pub async fn read(
    db: &Database,
    services: &[ServiceInfo],
    period: Option<&Period>,
) -> Result<Vec<ServiceSeries>, ReportError> {
    let ids: Vec<i64> = services.iter().map(|s| s.id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (from, to) = match period {
        Some(p) => (p.from, p.to),
        None => span(db, &ids).await?,
    };
    let quarters: Vec<Quarter> = {
        let mut q = Quarter::containing(from);
        let mut all = Vec::new();
        while q.first_day() <= to {
            all.push(q);
            q = q.next();
        }
        all
    };
    let (from, to) = (
        quarters.first().map_or(from, |q| q.first_day()),
        quarters.last().map_or(to, |q| q.last_day()),
    );
    let index = |q: Quarter| quarters.iter().position(|x| *x == q);
    let q = |sql: &str| {
        fill(sql, &ids, from, to).replace("{days_to_plan}", days_to_plan_sql(db.backend()))
    };
    let mut counts: BTreeMap<i64, Vec<QuarterCounts>> = ids
        .iter()
        .map(|&i| (i, vec![QuarterCounts::default(); quarters.len()]))
        .collect();
    let mut configs: BTreeMap<i64, Vec<Configuration>> = BTreeMap::new();
    for r in rows(db, q(include_str!("sql/pattern_configurations.sql"))).await? {
        let t = |i| text(&r, i).map(Option::unwrap_or_default);
        let names = [
            "provider_model",
            "funding",
            "senior_buy_in",
            "primary_referral_routes",
            "worker_profile",
            "targeting",
            "target_lsoas",
            "formal_performance_management",
            "interaction_model",
        ];
        let mut fields = Vec::new();
        for (i, name) in names.iter().enumerate() {
            fields.push((*name, t(3 + i)?));
        }
        let effective = t(2)?;
        configs
            .entry(int(&r, 0)?.unwrap_or(0))
            .or_default()
            .push(Configuration {
                configuration_ref: t(1)?,
                effective_from: NaiveDate::parse_from_str(&effective, "%Y-%m-%d")
                    .unwrap_or(NaiveDate::MIN),
                targeting: t(8)?,
                target_lsoas: t(9)?
                    .split(';')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                worker_profile: t(7)?,
                fields,
            });
    }
    let quarter_of = |month: &str| month_quarter(month).and_then(index);
    macro_rules! slot {
        ($sid:expr, $month:expr) => {
            quarter_of($month).and_then(|i| counts.get_mut(&$sid).map(|v| &mut v[i]))
        };
    }
    for r in rows(db, q(include_str!("sql/referrals.sql"))).await? {
        let sid = int(&r, 0)?.unwrap_or(0);
        let Some(source) = text(&r, 1)?.and_then(|s| ReferralSource::parse(&s)) else {
            continue;
        };
        let month = text(&r, 2)?.unwrap_or_default();
        let n = int(&r, 3)?.unwrap_or(0);
        let g = SourceGroup::ALL
            .iter()
            .position(|g| *g == source.group())
            .expect("every source has a group");
        if let Some(c) = slot!(sid, &month) {
            c.referrals[g] += n;
        }
    }
    // Target areas need the configuration in force in the quarter.
    let targets = |sid: i64, qi: usize| -> Option<(String, Vec<String>)> {
        let day = quarters[qi].last_day();
        let c = configs
            .get(&sid)?
            .iter()
            .filter(|c| c.effective_from <= day)
            .max_by_key(|c| c.effective_from)?;
        Some((c.targeting.clone(), c.target_lsoas.clone()))
    };
    let areas: BTreeMap<i64, Vec<String>> = services
        .iter()
        .map(|s| (s.id, s.areas_served.clone()))
        .collect();
    for r in rows(db, q(include_str!("sql/pattern_new_clients.sql"))).await? {
        let sid = int(&r, 0)?.unwrap_or(0);
        let month = text(&r, 1)?.unwrap_or_default();
        let quintile = int(&r, 2)?;
        let lsoa = text(&r, 3)?;
        let lad = text(&r, 4)?;
        let n = int(&r, 5)?.unwrap_or(0);
        let Some(qi) = month_quarter(&month).and_then(index) else {
            continue;
        };
        let target = targets(sid, qi);
        let served = areas.get(&sid);
        let Some(c) = counts.get_mut(&sid).map(|v| &mut v[qi]) else {
            continue;
        };
        if quintile.is_some() {
            c.new_known_quintile += n;
            if quintile == Some(1) {
                c.new_quintile_1 += n;
            }
        }
        if let Some(lsoa) = &lsoa {
            c.new_known_area += n;
            let in_served = lad
                .as_ref()
                .is_some_and(|l| served.is_some_and(|s| s.contains(l)));
            let hit = match target.as_ref().map(|(t, l)| (t.as_str(), l)) {
                Some(("deprived_areas_local", list)) => Some(list.contains(lsoa)),
                Some(("most_deprived_20pct", _)) => Some(in_served && quintile == Some(1)),
                Some(("universal", _)) => Some(in_served),
                _ => None,
            };
            if let Some(hit) = hit {
                *c.new_in_target.get_or_insert(0) += if hit { n } else { 0 };
            }
        } else if let Some((t, _)) = &target
            && t != "specific_groups"
        {
            c.new_in_target.get_or_insert(0);
        }
    }
    for r in rows(db, q(include_str!("sql/pattern_sessions.sql"))).await? {
        let sid = int(&r, 0)?.unwrap_or(0);
        let month = text(&r, 1)?.unwrap_or_default();
        let mode = text(&r, 2)?.unwrap_or_default();
        let venue = text(&r, 3)?.unwrap_or_default();
        let n = int(&r, 4)?.unwrap_or(0);
        if let Some(c) = slot!(sid, &month) {
            c.attended += n;
            match mode.as_str() {
                "telephone" => c.telephone += n,
                "face_to_face" => {
                    c.face_to_face += n;
                    if matches!(venue.as_str(), "gp_practice" | "health_centre" | "pharmacy") {
                        c.face_to_face_clinical += n;
                    }
                }
                _ => {}
            }
        }
    }
    for r in rows(db, q(include_str!("sql/pattern_episodes.sql"))).await? {
        let sid = int(&r, 0)?.unwrap_or(0);
        let month = text(&r, 1)?.unwrap_or_default();
        let kind = text(&r, 2)?.unwrap_or_default();
        let days = int(&r, 3)?;
        let wider = int(&r, 4)?.unwrap_or(0) > 0;
        let n = int(&r, 5)?.unwrap_or(0);
        if let Some(c) = slot!(sid, &month) {
            c.opened += n;
            if wider {
                c.with_wider_issue += n;
            }
            if kind == "brief" {
                c.brief += n;
            } else {
                c.full += n;
                if let Some(d) = days {
                    c.full_with_plan += n;
                    *c.days_to_plan.entry(d).or_default() += n;
                }
            }
        }
    }
    for r in rows(db, q(include_str!("sql/pattern_closed.sql"))).await? {
        let sid = int(&r, 0)?.unwrap_or(0);
        let month = text(&r, 1)?.unwrap_or_default();
        let sessions = int(&r, 2)?.unwrap_or(0);
        let n = int(&r, 3)?.unwrap_or(0);
        if let Some(c) = slot!(sid, &month) {
            *c.sessions_per_closed.entry(sessions).or_default() += n;
        }
    }
    for r in rows(db, q(include_str!("sql/pattern_workers.sql"))).await? {
        let sid = int(&r, 0)?.unwrap_or(0);
        let date = |i| -> Result<Option<NaiveDate>, ReportError> {
            Ok(text(&r, i)?.and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok()))
        };
        let (Some(started), left) = (date(1)?, date(2)?) else {
            continue;
        };
        let lives = text(&r, 3)?.unwrap_or_default();
        let Some(v) = counts.get_mut(&sid) else {
            continue;
        };
        let joined = index(Quarter::containing(started)).unwrap_or(0);
        for (i, quarter) in quarters.iter().enumerate() {
            let active =
                started <= quarter.last_day() && left.is_none_or(|l| l >= quarter.first_day());
            if active && lives != "unknown" && !lives.is_empty() {
                let local = i64::from(lives == "yes");
                let c = &mut v[i];
                c.workers_known += 1;
                c.workers_local += local;
                let cohort = c.workers_by_start.entry(joined).or_default();
                cohort.0 += local;
                cohort.1 += 1;
            }
        }
    }
    let all_areas: Vec<String> = {
        let mut a: Vec<String> = services
            .iter()
            .flat_map(|s| s.areas_served.clone())
            .collect();
        a.sort();
        a.dedup();
        a
    };
    let area_data = data::Areas::read(db, &all_areas).await?;
    Ok(services
        .iter()
        .map(|s| {
            let need = area_data.need(&s.areas_served);
            let total: f64 = need.by_quintile.iter().sum();
            ServiceSeries {
                service: s.clone(),
                quarters: quarters.clone(),
                counts: counts.remove(&s.id).unwrap_or_default(),
                configurations: configs.remove(&s.id).unwrap_or_default(),
                quintile_1_population: (total > 0.0).then(|| need.by_quintile[0] / total),
                open_end: period.is_none(),
            }
        })
        .collect())
}

/// From the first service's start to the last referral, session or closure recorded.
async fn span(db: &Database, ids: &[i64]) -> Result<(NaiveDate, NaiveDate), ReportError> {
    let sql = fill(
        "SELECT MIN(started_on), \
         (SELECT MAX(received_on) FROM referrals WHERE service_id IN ({services})), \
         (SELECT MAX(held_on) FROM sessions WHERE service_id IN ({services})) \
         FROM services WHERE service_id IN ({services})",
        ids,
        NaiveDate::MIN,
        NaiveDate::MIN,
    );
    let r = rows(db, sql).await?;
    let d = |i| -> Result<Option<NaiveDate>, ReportError> {
        Ok(r.first()
            .map(|r| text(r, i))
            .transpose()?
            .flatten()
            .and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok()))
    };
    let start = d(0)?.unwrap_or(NaiveDate::MIN);
    let end = [d(1)?, d(2)?].into_iter().flatten().max().unwrap_or(start);
    Ok((start, end.max(start)))
}

/// A shift with its label.
#[derive(Debug, Clone)]
pub struct LabelledShift {
    pub measure: usize,
    pub shift: drift::Shift,
    /// The recorded change it is put down to, when there is one: its change event's.
    pub explained_by: Option<String>,
    /// Its change event (index into [`Changes::events`]).
    pub event: usize,
}

/// One change in a service: the flags it raised on one or more measures, grouped
/// (analytics.md section 7: a flag on any measure the change moves is a true flag of
/// that change, so changes are what is counted).
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    /// The earliest estimated start of its flags.
    pub start: usize,
    /// The latest quarter one of its flags was detected.
    pub end: usize,
    /// The measures it moved, in analytics.md's order.
    pub measures: Vec<usize>,
    /// Its flags (indices into [`Changes::shifts`]).
    pub flags: Vec<usize>,
    /// The recorded change it is put down to: one whose quarter is within one quarter
    /// of the estimated start of one of its flags. `None`: drift.
    pub explained_by: Option<String>,
}

/// Every measure's shifts, labelled, and the change events they make up.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub shifts: Vec<LabelledShift>,
    pub events: Vec<ChangeEvent>,
}

/// Every measure's shifts, grouped into change events and labelled: `explained` when
/// the estimated start of one of the event's flags is within one quarter of a recorded
/// configuration change (not the first configuration), `drift` otherwise. A reference
/// level is made of quarters with enough data for a delivery model.
pub fn changes(s: &ServiceSeries, settings: &Settings, rules: &ModelRules) -> Changes {
    let recorded: Vec<(usize, &Configuration)> = s
        .configurations
        .iter()
        .skip(1)
        .filter_map(|c| {
            let q = Quarter::containing(c.effective_from);
            s.quarters.iter().position(|x| *x == q).map(|i| (i, c))
        })
        .collect();
    let sufficient = s.sufficient(rules);
    let mut found: Vec<(usize, drift::Shift)> = Vec::new();
    for m in 0..MEASURES.len() {
        for shift in drift::detect_where(&s.series(m), settings, |q| sufficient.contains(&q)) {
            found.push((m, shift));
        }
    }
    found.sort_by_key(|(m, sh)| (sh.detected, *m));
    let flags: Vec<(usize, &drift::Shift)> = found.iter().map(|(m, sh)| (*m, sh)).collect();
    let grouped = drift::events(&flags);
    let mut events = Vec::new();
    let mut event_of = vec![0; found.len()];
    for (e, g) in grouped.iter().enumerate() {
        let explained_by = g
            .flags
            .iter()
            .filter_map(|&i| {
                recorded
                    .iter()
                    .map(|(q, c)| (q.abs_diff(found[i].1.began), c))
                    .filter(|(d, _)| *d <= 1)
                    .min_by_key(|(d, _)| *d)
            })
            .min_by_key(|(d, _)| *d)
            .map(|(_, c)| c.configuration_ref.clone());
        let mut measures: Vec<usize> = g.flags.iter().map(|&i| found[i].0).collect();
        measures.sort();
        measures.dedup();
        for &i in &g.flags {
            event_of[i] = e;
        }
        events.push(ChangeEvent {
            start: g.start,
            end: g.end,
            measures,
            flags: g.flags.clone(),
            explained_by,
        });
    }
    let shifts = found
        .into_iter()
        .enumerate()
        .map(|(i, (measure, shift))| LabelledShift {
            measure,
            shift,
            explained_by: events[event_of[i]].explained_by.clone(),
            event: event_of[i],
        })
        .collect();
    Changes { shifts, events }
}

/// Every measure's shifts, labelled by their change events (see [`changes`]).
pub fn shifts(s: &ServiceSeries, settings: &Settings, rules: &ModelRules) -> Vec<LabelledShift> {
    changes(s, settings, rules).shifts
}

/// A mismatch between what a configuration says and what a quarter's records show.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub quarter: usize,
    pub configuration_ref: String,
    pub recorded: String,
    pub measure: usize,
    /// The level the configuration implies, and a sentence saying why.
    pub expected: f64,
    pub reason: String,
}

/// Recorded against measured, for each quarter with enough data for a model.
pub fn mismatches(s: &ServiceSeries, rules: &ModelRules) -> Vec<Mismatch> {
    let pos = |id: &str| MEASURES.iter().position(|x| x.0 == id).expect("a measure");
    let mut out = Vec::new();
    for q in s.sufficient(rules) {
        let Some(config) = s.configuration_on(s.quarters[q].last_day()) else {
            continue;
        };
        let c = &s.counts[q];
        if config.targeting == "most_deprived_20pct"
            && let (Some(reach), Some(pop)) =
                (c.value(pos("deprived_reach")), s.quintile_1_population)
            && reach < pop
        {
            out.push(Mismatch {
                quarter: q,
                configuration_ref: config.configuration_ref.clone(),
                recorded: recorded_as("targeting", "most_deprived_20pct"),
                measure: pos("deprived_reach"),
                expected: pop,
                reason:
                    "deprived reach is below the quintile 1 population share of the areas served"
                        .into(),
            });
        }
        if config.worker_profile == "person_next_door"
            && let Some(local) = c.value(pos("local_worker_share"))
            && local < 0.5
        {
            out.push(Mismatch {
                quarter: q,
                configuration_ref: config.configuration_ref.clone(),
                recorded: recorded_as("worker_profile", "person_next_door"),
                measure: pos("local_worker_share"),
                expected: 0.5,
                reason: "fewer than half the active workers live in the area served".into(),
            });
        }
        let interaction = config
            .fields
            .iter()
            .find(|f| f.0 == "interaction_model")
            .map_or("", |f| f.1.as_str());
        if interaction == "telephone_assessment_and_referral"
            && let Some(t) = c.value(pos("telephone_share"))
            && t < rules.telephone_share
        {
            out.push(Mismatch {
                quarter: q,
                configuration_ref: config.configuration_ref.clone(),
                recorded: recorded_as("interaction_model", "telephone_assessment_and_referral"),
                measure: pos("telephone_share"),
                expected: rules.telephone_share,
                reason: "fewer than half the attended sessions were by telephone".into(),
            });
        }
    }
    out
}

/// The smallest published denominator a share is shown on under disclosure control:
/// rounding each count to the nearest 5 moves a share by up to 4 ÷ n, which at 50 is
/// under half the smallest change the detector flags (0.1), and far more below it (11 of
/// 12 local workers would show as 10 of 10, 100%).
pub const MIN_SHARE_DENOMINATOR: i64 = 50;

/// Registers a share's counts and returns its cell.
fn share_cell(d: &mut Draft, k: i64, n: i64) -> Cell {
    let num = d.count(k);
    let den = d.count(n);
    Cell::Fraction {
        num,
        den,
        min_den: MIN_SHARE_DENOMINATOR,
    }
}

/// The size of a shift (the change of a share, or the relative change of a median, from
/// the level before to the level after) and its evidence (the detector's z), as cells
/// worked out again from the published counts under control where they can be.
fn size_and_evidence(d: &mut Draft, s: &ServiceSeries, l: &LabelledShift) -> [Cell; 2] {
    let m = l.measure;
    let sh = &l.shift;
    let before = s.pooled(&sh.reference);
    let after = s.pooled(&sh.after);
    if let (Some(v0), Some(v1)) = (before.values(m), after.values(m)) {
        let n0 = d.count(v0.values().sum());
        let n1 = d.count(v1.values().sum());
        let (m0, m1) = (
            crate::data::median_of(v0).unwrap_or(f64::NAN),
            crate::data::median_of(v1).unwrap_or(f64::NAN),
        );
        return [
            Cell::Derived {
                rests_on: vec![n0, n1],
                value: Some((m1 - m0) / m0.abs().max(1.0)),
                derivation: Derivation::MedianChange {
                    before: m0,
                    after: m1,
                },
            },
            Cell::Derived {
                rests_on: vec![n0, n1],
                value: Some(sh.z),
                derivation: Derivation::Exact,
            },
        ];
    }
    let window = s.pooled(&sh.window);
    let (Some((k0, n0)), Some((k1, n1)), Some((kw, nw))) =
        (before.share(m), after.share(m), window.share(m))
    else {
        return [Cell::Reference(None), Cell::Reference(None)];
    };
    let ids = |d: &mut Draft, a: i64, b: i64, c: i64, e: i64| {
        vec![d.count(a), d.count(b), d.count(c), d.count(e)]
    };
    let level = ids(d, k0, n0, k1, n1);
    let test = ids(d, k0, n0, kw, nw);
    let team = MEASURES[m].0 == "local_worker_share";
    let share = |k: i64, n: i64| if n > 0 { k as f64 / n as f64 } else { f64::NAN };
    [
        Cell::Derived {
            rests_on: level,
            value: Some(share(k1, n1) - share(k0, n0)),
            derivation: Derivation::ShareDifference,
        },
        Cell::Derived {
            rests_on: test,
            value: Some(sh.z),
            // A team's evidence rests on who joined, which no published count shows.
            derivation: if team {
                Derivation::Exact
            } else {
                Derivation::ShareZ
            },
        },
    ]
}

/// A measure's level over some quarters, as a controlled cell.
fn level_cell(d: &mut Draft, s: &ServiceSeries, m: usize, quarters: &[usize]) -> Cell {
    let pooled = s.pooled(quarters);
    if let Some(values) = pooled.values(m) {
        let n: CountId = d.count(values.values().sum());
        Cell::Median {
            n,
            value: crate::data::median_of(values),
        }
    } else {
        match pooled.share(m) {
            Some((k, n)) => share_cell(d, k, n),
            None => Cell::Reference(None),
        }
    }
}

fn safe_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// One service's section.
fn section(d: &mut Draft, s: &ServiceSeries, req: &PatternsRequest) -> DraftSection {
    let id = safe_id(&s.service.service_ref);
    let label = |q: usize| s.quarters[q].to_string();
    // The fingerprint by quarter.
    let mut columns = vec![
        col("quarter", "Quarter", Unit::Text),
        col("referrals", "Referrals", Unit::Count),
        col("sessions_attended", "Sessions attended", Unit::Count),
    ];
    for (mid, mlabel, median) in MEASURES {
        columns.push(col(
            mid,
            mlabel,
            if median { Unit::Days } else { Unit::Proportion },
        ));
    }
    columns.push(col("delivery_model", "Delivery model", Unit::Text));
    columns.push(col(
        "medicalisation_index",
        "Medicalisation index",
        Unit::Number,
    ));
    let mut rows = Vec::new();
    for (q, c) in s.counts.iter().enumerate() {
        let referrals = d.count(c.total_referrals());
        let mut row = vec![
            Cell::Label(label(q)),
            Cell::Count(referrals),
            Cell::Count(d.count(c.attended)),
        ];
        for m in 0..MEASURES.len() {
            row.push(level_cell(d, s, m, &[q]));
        }
        row.push(Cell::Label(delivery_model(c, &req.rules).into()));
        row.push(Cell::Stat {
            n: referrals,
            value: medicalisation(c),
        });
        rows.push(row);
    }
    let fingerprint = DraftTable {
        id: format!("{id}_fingerprint"),
        title: format!("{}: delivery fingerprint by quarter", s.service.service_ref),
        columns,
        rows,
        note: Some("Shares are of the quarter's records; medians in days or sessions. Quarters with fewer than 20 referrals or 50 attended sessions have no delivery model (not enough data).".into()),
    };
    // Start-up and follow-up.
    let (start, follow) = s.start_and_follow_up(&req.rules);
    let ok = s.sufficient(&req.rules);
    let models = DraftTable {
        id: format!("{id}_models"),
        title: format!(
            "{}: delivery model at start-up and follow-up",
            s.service.service_ref
        ),
        columns: vec![
            col("when", "When", Unit::Text),
            col("quarters", "Quarters (pooled)", Unit::Text),
            col("delivery_model", "Delivery model", Unit::Text),
        ],
        rows: vec![
            vec![
                Cell::Label("Start-up".into()),
                Cell::Label(quarter_span(
                    s,
                    &ok.iter().take(4).copied().collect::<Vec<_>>(),
                )),
                Cell::Label(start.into()),
            ],
            vec![
                Cell::Label("Follow-up".into()),
                Cell::Label(quarter_span(
                    s,
                    &ok.iter().rev().take(4).rev().copied().collect::<Vec<_>>(),
                )),
                Cell::Label(follow.into()),
            ],
        ],
        note: None,
    };
    // Shifts, and the changes they make up.
    let found = changes(s, &req.settings, &req.rules);
    let mut shift_rows = Vec::new();
    for l in &found.shifts {
        let (mid, _, _) = MEASURES[l.measure];
        let [size, evidence] = size_and_evidence(d, s, l);
        shift_rows.push(vec![
            Cell::Label(mid.into()),
            Cell::Label(label(l.shift.detected)),
            Cell::Label(label(l.shift.began)),
            level_cell(d, s, l.measure, &l.shift.reference),
            level_cell(d, s, l.measure, &l.shift.after),
            Cell::Label(
                if l.explained_by.is_some() {
                    "explained"
                } else {
                    "drift"
                }
                .into(),
            ),
            Cell::Label(l.explained_by.clone().unwrap_or_default()),
            Cell::Whole(l.event as i64 + 1),
            size,
            evidence,
        ]);
    }
    let event_rows = found
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            vec![
                Cell::Whole(i as i64 + 1),
                Cell::Label(label(e.start)),
                Cell::Label(label(e.end)),
                Cell::Label(
                    e.measures
                        .iter()
                        .map(|&m| MEASURES[m].0)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                Cell::Whole(e.flags.len() as i64),
                Cell::Label(
                    if e.explained_by.is_some() {
                        "explained"
                    } else {
                        "drift"
                    }
                    .into(),
                ),
                Cell::Label(e.explained_by.clone().unwrap_or_default()),
            ]
        })
        .collect();
    let event_table = DraftTable {
        id: format!("{id}_changes"),
        title: format!(
            "{}: changes (shifts grouped into the changes that moved them)",
            s.service.service_ref
        ),
        columns: vec![
            col("change", "Change", Unit::Count),
            col("start", "Estimated start", Unit::Text),
            col("last_detected", "Last flag detected in", Unit::Text),
            col("measures", "Measures moved", Unit::Text),
            col("flags", "Flags", Unit::Count),
            col("label", "Label", Unit::Text),
            col("explained_by", "Recorded change", Unit::Text),
        ],
        rows: event_rows,
        note: Some("A change moves several measures together, and a gradual change moves a measure again once watching resumes: flags whose estimated starts fall within one quarter of a change's latest flag, or that carry on a flag of the same measure, are one change. A change is explained when one of its flags began within one quarter of a recorded configuration change.".into()),
    };
    let shift_table = DraftTable {
        id: format!("{id}_shifts"),
        title: format!("{}: shifts detected quarter by quarter", s.service.service_ref),
        columns: vec![
            col("measure", "Measure", Unit::Text),
            col("detected", "Detected in", Unit::Text),
            col("began", "Estimated start", Unit::Text),
            col("level_before", "Level before", Unit::Number),
            col("level_after", "Level after", Unit::Number),
            col("label", "Label", Unit::Text),
            col("explained_by", "Recorded change", Unit::Text),
            col("change", "Change", Unit::Count),
            col("size", "Size", Unit::Number),
            col("z", "Evidence (z)", Unit::Number),
        ],
        rows: shift_rows,
        note: Some("Each flag carries the label of its change: explained when one of the change's flags began within one quarter of a recorded configuration change; drift when no recorded change explains it. Size: the change of a share from the level before to the level after, or of a median relative to the level before. Evidence: the z statistic of the test that flagged it (two-proportion for shares, rank-sum for medians, joiners against the reference team for the local worker share). Under disclosure control both are worked out from the published counts, or shown as * where they rest on counts or values not shown.".into()),
    };
    // Change points.
    let mut cp_rows = Vec::new();
    for (m, (mid, _, _)) in MEASURES.iter().enumerate() {
        for cp in drift::change_points(&s.series(m), &req.settings) {
            cp_rows.push(vec![
                Cell::Label((*mid).into()),
                Cell::Label(label(cp.at)),
                level_cell(d, s, m, &cp.before),
                level_cell(d, s, m, &cp.after),
            ]);
        }
    }
    let cp_table = DraftTable {
        id: format!("{id}_change_points"),
        title: format!(
            "{}: change points over the whole series",
            s.service.service_ref
        ),
        columns: vec![
            col("measure", "Measure", Unit::Text),
            col("quarter", "First quarter of the new level", Unit::Text),
            col("level_before", "Level before", Unit::Number),
            col("level_after", "Level after", Unit::Number),
        ],
        rows: cp_rows,
        note: None,
    };
    // Configuration timeline.
    let mut cfg_columns = vec![
        col("configuration_ref", "Configuration", Unit::Text),
        col("effective_from", "Effective from", Unit::Text),
    ];
    let names: Vec<&str> = s
        .configurations
        .first()
        .map(|c| c.fields.iter().map(|f| f.0).collect())
        .unwrap_or_default();
    for n in &names {
        cfg_columns.push(col(n, &crate::words::said(n), Unit::Text));
    }
    let cfg_rows = s
        .configurations
        .iter()
        .map(|c| {
            let mut r = vec![
                Cell::Label(c.configuration_ref.clone()),
                Cell::Label(c.effective_from.to_string()),
            ];
            r.extend(c.fields.iter().map(|f| Cell::Label(f.1.clone())));
            r
        })
        .collect();
    let cfg_table = DraftTable {
        id: format!("{id}_configuration"),
        title: format!(
            "{}: configuration timeline as recorded",
            s.service.service_ref
        ),
        columns: cfg_columns,
        rows: cfg_rows,
        note: None,
    };
    // Mismatches.
    let mm_rows = mismatches(s, &req.rules)
        .into_iter()
        .map(|m| {
            vec![
                Cell::Label(label(m.quarter)),
                Cell::Label(m.configuration_ref.clone()),
                Cell::Label(m.recorded.clone()),
                Cell::Label(MEASURES[m.measure].0.into()),
                level_cell(d, s, m.measure, &[m.quarter]),
                Cell::Reference(Some(m.expected)),
                Cell::Label(m.reason.clone()),
            ]
        })
        .collect();
    let mm_table = DraftTable {
        id: format!("{id}_mismatches"),
        title: format!(
            "{}: recorded configuration against measured fingerprint",
            s.service.service_ref
        ),
        columns: vec![
            col("quarter", "Quarter", Unit::Text),
            col("configuration_ref", "Configuration", Unit::Text),
            col("recorded", "Recorded", Unit::Text),
            col("measure", "Measure", Unit::Text),
            col("measured", "Measured", Unit::Proportion),
            col("expected", "At least", Unit::Proportion),
            col("reason", "Why it does not match", Unit::Text),
        ],
        rows: mm_rows,
        note: None,
    };
    DraftSection {
        id: format!("service-{id}"),
        title: format!("{} {}", s.service.service_ref, s.service.name),
        definitions: definitions(),
        tables: vec![
            models,
            fingerprint,
            event_table,
            shift_table,
            cp_table,
            cfg_table,
            mm_table,
        ],
    }
}

/// A configuration's field and code as recorded, in words: "Targeting: Most deprived 20%".
fn recorded_as(field: &str, code: &str) -> String {
    format!(
        "{}: {}",
        crate::words::said(field),
        crate::words::said(code)
    )
}

fn quarter_span(s: &ServiceSeries, q: &[usize]) -> String {
    match (q.first(), q.last()) {
        (Some(a), Some(b)) => format!("{} to {}", s.quarters[*a], s.quarters[*b]),
        _ => "none with enough data".into(),
    }
}

fn definitions() -> Vec<String> {
    vec![
        "Fingerprint measures as section 7 of the analytics specification defines them, per calendar quarter of the financial year: referral shares by the received date; reach and target area share of new clients by their first contact; session shares of attended sessions held in the quarter; brief share, plan rate, days to plan and wider issue rate of episodes opened (first contact) in the quarter; sessions per episode of full episodes closed in the quarter; local worker share of workers active at any time in the quarter.".into(),
        "Clinical venues: GP practice, health centre, pharmacy. Target areas follow the configuration in force on the quarter's last day: the listed LSOAs where it targets local deprived areas, the LSOAs of the areas served in national quintile 1 where it targets the most deprived 20%, all areas served where it is universal, and none where it targets specific groups.".into(),
        "Delivery model, first rule that matches: telephone triage (telephone share at least 0.5 and median sessions at most 2), primary care (clinical referral or clinical venue share at least 0.5), community peer support (community referral share at least 0.5), otherwise mixed; not enough data below 20 referrals or 50 attended sessions. Start-up and follow-up pool the first and last four quarters with enough data.".into(),
        "Medicalisation index: the mean of the clinical referral, clinical venue, telephone and brief shares.".into(),
        "Shifts: each measure is watched against the service's own reference level: its first four quarters with enough data for a delivery model and at least 10 records; after a shift, the four such quarters after the one it began in. Shares are compared by a two-proportion z; medians by a rank-sum (Mann-Whitney) z with ties corrected for, and sized on medians interpolated within whole numbers; the local worker share by the workers who joined since the reference, against the reference team's share. A shift needs a change of at least 0.1 in a share or 20% in a median over two consecutive quarters with |z| of at least 3 (2.5 for the local worker share), or twice that change in one quarter with |z| of at least 4.5 (3.5). The estimated start is the first quarter of the run that moved with some evidence of its own. Flags are grouped into changes, which are what the overview counts. Levels before and after pool the quarters of each level. Under disclosure control a share is shown only on a published denominator of at least 50. See docs/patterns.md.".into(),
        "Change points: binary segmentation of the whole series, splitting where the evidence (z at least 4) and the change (as above) are largest, each side keeping at least two quarters. When the quarters run to the latest record, the plan rate and days to plan of the last quarter are left out of both (its episodes have not all had time to agree a plan).".into(),
    ]
}

/// The overview of every service: start-up and follow-up models and what was found.
/// A delivery model in words, in the middle of a sentence.
fn model_words(code: &str) -> String {
    match code {
        "insufficient_data" => "too little recorded to tell".into(),
        other => crate::words::said(other).to_lowercase(),
    }
}

/// What the records say of a service, in one sentence: its model at start-up and
/// lately, each change detected with the configuration change it is put down to or none,
/// and the quarters whose records do not match the configuration in force.
pub fn in_a_sentence(s: &ServiceSeries, req: &PatternsRequest) -> String {
    let name = format!("{} {}", s.service.service_ref, s.service.name);
    let (start, follow) = s.start_and_follow_up(&req.rules);
    let ok = s.sufficient(&req.rules);
    let (Some(&first), Some(&last)) = (ok.first(), ok.last()) else {
        return format!(
            "{name}: too few referrals and sessions in any quarter to say which model it delivers."
        );
    };
    let mut out = if start == follow {
        format!(
            "{name} delivered {} from {} to {}",
            model_words(start),
            s.quarters[first],
            s.quarters[last]
        )
    } else {
        format!(
            "{name} moved from {} (its first quarters with enough data, from {}) to {} (its latest, to {})",
            model_words(start),
            s.quarters[first],
            model_words(follow),
            s.quarters[last]
        )
    };
    let found = changes(s, &req.settings, &req.rules);
    let told: Vec<String> = found
        .events
        .iter()
        .map(|e| {
            let from = s.quarters[e.start];
            match &e.explained_by {
                Some(c) => format!("a change from {from} that configuration {c} records"),
                None => format!("a change from {from} that no configuration change records"),
            }
        })
        .collect();
    match told.as_slice() {
        [] => out.push_str(", with no change detected"),
        [one] => out.push_str(&format!(", with {one}")),
        [init @ .., last] => out.push_str(&format!(", with {} and {last}", init.join(", "))),
    }
    // No semicolons: a page reads a text cell with one as a list of codes.
    match mismatches(s, &req.rules).len() {
        0 => {}
        1 => out.push_str(", and in 1 quarter its records do not match its configuration"),
        n => out.push_str(&format!(
            ", and in {n} quarters its records do not match its configuration"
        )),
    }
    out.push('.');
    out
}

fn overview(d: &mut Draft, all: &[ServiceSeries], req: &PatternsRequest) -> DraftSection {
    let sentences = DraftTable {
        id: "overview_sentences".into(),
        title: "Each service in a sentence".into(),
        columns: vec![
            col("service", "Service", Unit::Text),
            col("summary", "What its records show", Unit::Text),
        ],
        rows: all
            .iter()
            .map(|s| {
                vec![
                    Cell::Label(s.service.service_ref.clone()),
                    Cell::Label(in_a_sentence(s, req)),
                ]
            })
            .collect(),
        note: None,
    };
    let mut rows = Vec::new();
    for s in all {
        let (start, follow) = s.start_and_follow_up(&req.rules);
        let found = changes(s, &req.settings, &req.rules);
        let drifts = found
            .events
            .iter()
            .filter(|e| e.explained_by.is_none())
            .count();
        let latest = s
            .sufficient(&req.rules)
            .last()
            .map(|&q| delivery_model(&s.counts[q], &req.rules))
            .unwrap_or("insufficient_data");
        let idx_first = s
            .sufficient(&req.rules)
            .first()
            .and_then(|&q| medicalisation(&s.counts[q]));
        let idx_last = s
            .sufficient(&req.rules)
            .last()
            .and_then(|&q| medicalisation(&s.counts[q]));
        let n_first = d.count(
            s.sufficient(&req.rules)
                .first()
                .map_or(0, |&q| s.counts[q].total_referrals()),
        );
        let n_last = d.count(
            s.sufficient(&req.rules)
                .last()
                .map_or(0, |&q| s.counts[q].total_referrals()),
        );
        rows.push(vec![
            Cell::Label(s.service.service_ref.clone()),
            Cell::Label(start.into()),
            Cell::Label(follow.into()),
            Cell::Label(latest.into()),
            Cell::Stat {
                n: n_first,
                value: idx_first,
            },
            Cell::Stat {
                n: n_last,
                value: idx_last,
            },
            Cell::Whole((found.events.len() - drifts) as i64),
            Cell::Whole(drifts as i64),
            Cell::Whole(found.shifts.len() as i64),
            Cell::Whole(mismatches(s, &req.rules).len() as i64),
        ]);
    }
    DraftSection {
        id: "overview".into(),
        title: "Services side by side".into(),
        definitions: definitions(),
        tables: vec![
            sentences,
            DraftTable {
                id: "overview".into(),
                title: "Delivery models, medicalisation and shifts by service".into(),
                columns: vec![
                    col("service", "Service", Unit::Text),
                    col("start_model", "Start-up model", Unit::Text),
                    col("follow_up_model", "Follow-up model", Unit::Text),
                    col("latest_model", "Latest quarter's model", Unit::Text),
                    col(
                        "medicalisation_first",
                        "Medicalisation, first quarter",
                        Unit::Number,
                    ),
                    col(
                        "medicalisation_last",
                        "Medicalisation, latest quarter",
                        Unit::Number,
                    ),
                    col("changes_explained", "Changes explained", Unit::Count),
                    col("changes_drift", "Changes unexplained (drift)", Unit::Count),
                    col("flags", "Shift flags", Unit::Count),
                    col(
                        "mismatch_quarters",
                        "Recorded-against-measured mismatches",
                        Unit::Count,
                    ),
                ],
                rows,
                note: None,
            },
        ],
    }
}

/// The patterns document for the requested services.
pub async fn run(
    db: &Database,
    req: &PatternsRequest,
    now: DateTime<Utc>,
) -> Result<Report, ReportError> {
    let services = data::services(db, req.services.as_deref()).await?;
    let all = read(db, &services, req.period.as_ref()).await?;
    let period = match (all.first(), &req.period) {
        (_, Some(p)) => p.clone(),
        (Some(s), None) if !s.quarters.is_empty() => {
            let (a, b) = (s.quarters[0], *s.quarters.last().expect("not empty"));
            Period {
                from: a.first_day(),
                to: b.last_day(),
                label: format!("{a} to {b}"),
                whole: false,
            }
        }
        _ => Period::parse("2010-11").expect("a year"),
    };
    let mut draft = Draft::default();
    let first = overview(&mut draft, &all, req);
    draft.sections.push(first);
    for s in &all {
        let sec = section(&mut draft, s, req);
        draft.sections.push(sec);
    }
    let request = Request {
        kind: Kind::Patterns,
        services: req.services.clone(),
        each_service: false,
        period,
        policy: req.policy,
        fresh: true,
    };
    let reference = db
        .reference_files()
        .await?
        .into_iter()
        .map(|f| crate::ReferenceFile {
            file: f.file,
            kind: f.kind,
            sha256: f.sha256,
        })
        .collect();
    let imd_year = db.imd_year().await?;
    let mut report = crate::finish(&request, &draft, services, now, imd_year, reference);
    // Rows as named fields in JSON: the fingerprint has seventeen columns.
    for t in report.sections.iter_mut().flat_map(|s| s.tables.iter_mut()) {
        t.named_rows = true;
    }
    Ok(report)
}

/// The exact series of the requested services (for the charts and for tests).
pub async fn series(
    db: &Database,
    services: Option<&[String]>,
    period: Option<&Period>,
) -> Result<Vec<ServiceSeries>, ReportError> {
    let services = data::services(db, services).await?;
    read(db, &services, period).await
}
