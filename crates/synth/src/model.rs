//! How a service behaves and how that behaviour becomes records. A [`Behaviour`] holds
//! the levels of the delivery fingerprint (analytics.md section 7) the generator aims
//! at in a quarter, plus the national calibration figures (section 9); [`ServiceGen`]
//! turns a service's behaviour timeline into clients, referrals, episodes, sessions and
//! the rest, one client at a time, so memory does not grow with the number of clients.

use crate::geo::{Geography, postcode_text};
use crate::out::Out;
use crate::rng::{Cumulative, Rng};
use chrono::{Datelike, Months, NaiveDate};
use dcrs_domain::Entity;
use dcrs_domain::types::Quarter;

/// The fingerprint measures of analytics.md section 7, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    CommunityReferralShare,
    ClinicalReferralShare,
    DeprivedReach,
    TargetAreaShare,
    TelephoneShare,
    ClinicalVenueShare,
    BriefShare,
    PlanRate,
    DaysToPlan,
    SessionsPerEpisode,
    LocalWorkerShare,
    WiderIssueRate,
}

impl Measure {
    pub const ALL: [Measure; 12] = [
        Measure::CommunityReferralShare,
        Measure::ClinicalReferralShare,
        Measure::DeprivedReach,
        Measure::TargetAreaShare,
        Measure::TelephoneShare,
        Measure::ClinicalVenueShare,
        Measure::BriefShare,
        Measure::PlanRate,
        Measure::DaysToPlan,
        Measure::SessionsPerEpisode,
        Measure::LocalWorkerShare,
        Measure::WiderIssueRate,
    ];

    /// The measure's name in analytics.md.
    pub fn name(self) -> &'static str {
        match self {
            Measure::CommunityReferralShare => "community_referral_share",
            Measure::ClinicalReferralShare => "clinical_referral_share",
            Measure::DeprivedReach => "deprived_reach",
            Measure::TargetAreaShare => "target_area_share",
            Measure::TelephoneShare => "telephone_share",
            Measure::ClinicalVenueShare => "clinical_venue_share",
            Measure::BriefShare => "brief_share",
            Measure::PlanRate => "plan_rate",
            Measure::DaysToPlan => "days_to_plan",
            Measure::SessionsPerEpisode => "sessions_per_episode",
            Measure::LocalWorkerShare => "local_worker_share",
            Measure::WiderIssueRate => "wider_issue_rate",
        }
    }

    /// Medians rather than shares.
    pub fn is_median(self) -> bool {
        matches!(self, Measure::DaysToPlan | Measure::SessionsPerEpisode)
    }
}

/// Which clinical referrers dominate a service's clinical referrals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClinicalMix {
    /// GPs and practice nurses.
    GeneralPractice,
    /// NHS Health Checks (CVD risk assessment) and stop-smoking services.
    CvdAndSmoking,
}

/// What a service does in a quarter: referral volume and the fingerprint levels it aims at.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Referrals per quarter (scenario services; national services get exact counts).
    pub volume: f64,
    pub community: f64,
    pub clinical: f64,
    pub clinical_mix: ClinicalMix,
    /// Relative chance of living in an LSOA of each national quintile (index 0 = Q1),
    /// on top of population.
    pub skew: [f64; 5],
    /// Extra weight on the configured target LSOAs (`deprived_areas_local`).
    pub target_boost: f64,
    pub telephone: f64,
    pub clinical_venue: f64,
    pub brief: f64,
    pub plan_rate: f64,
    /// Median days from first contact to plan.
    pub days_to_plan: f64,
    /// Median attended sessions per full episode.
    pub sessions: f64,
    /// Share of new hires living in the area served.
    pub local_worker: f64,
    pub wider: f64,
}

impl Behaviour {
    /// The level between `self` and `to`, a fraction `t` of the way.
    pub fn toward(&self, to: &Behaviour, t: f64) -> Behaviour {
        let m = |a: f64, b: f64| a + (b - a) * t;
        let mut skew = [0.0; 5];
        for (i, s) in skew.iter_mut().enumerate() {
            *s = m(self.skew[i], to.skew[i]);
        }
        Behaviour {
            volume: m(self.volume, to.volume),
            community: m(self.community, to.community),
            clinical: m(self.clinical, to.clinical),
            clinical_mix: if t < 0.5 {
                self.clinical_mix
            } else {
                to.clinical_mix
            },
            skew,
            target_boost: m(self.target_boost, to.target_boost),
            telephone: m(self.telephone, to.telephone),
            clinical_venue: m(self.clinical_venue, to.clinical_venue),
            brief: m(self.brief, to.brief),
            plan_rate: m(self.plan_rate, to.plan_rate),
            days_to_plan: m(self.days_to_plan, to.days_to_plan),
            sessions: m(self.sessions, to.sessions),
            local_worker: m(self.local_worker, to.local_worker),
            wider: m(self.wider, to.wider),
        }
    }
}

/// A service's commissioned model as recorded in `service_configurations.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub provider_model: &'static str,
    pub funding: &'static str,
    pub senior_buy_in: &'static str,
    pub routes: &'static str,
    pub worker_profile: &'static str,
    pub targeting: &'static str,
    pub formal_performance_management: &'static str,
    pub interaction_model: &'static str,
    pub notes: &'static str,
}

/// A scripted change to a service: from `starts` (a quarter's first day) its behaviour
/// moves to `behaviour`, at once or over `ramp_quarters` quarters. A recorded change
/// also writes a new configuration row.
#[derive(Debug, Clone)]
pub struct Change {
    pub id: String,
    pub starts: NaiveDate,
    pub ramp_quarters: u32,
    pub description: &'static str,
    pub config: Option<Config>,
    pub behaviour: Behaviour,
    /// Share of the workforce replaced on the change date (re-tendering, re-badging).
    pub turnover: f64,
}

/// Everything needed to generate one service.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub service_ref: String,
    pub name: String,
    pub description: String,
    pub org_ref: String,
    pub org_name: String,
    /// Indices of the local authorities served.
    pub lads: Vec<usize>,
    /// A nearby authority some clients come from.
    pub neighbour: Option<usize>,
    /// The LSOAs of `deprived_areas_local` targeting (indices).
    pub target_lsoas: Vec<usize>,
    pub started: NaiveDate,
    pub base: Behaviour,
    pub base_config: Config,
    pub changes: Vec<Change>,
    /// Exact number of first referrals (new clients) to generate, spread evenly over
    /// quarters (national scale); `None` draws each quarter's count around `volume`.
    pub exact_clients: Option<u64>,
}

/// Share of clients from a neighbouring authority, with no postcode, and with a postcode
/// the lookup cannot place.
pub const NEIGHBOUR_SHARE: f64 = 0.03;
pub const BLANK_POSTCODE_SHARE: f64 = 0.01;
pub const UNKNOWN_POSTCODE_SHARE: f64 = 0.015;
/// Share of clients with a baseline assessment on a full episode.
pub const BASELINE_RATE: f64 = 0.85;
/// Chance of an exit assessment on a closed full episode with a baseline, for clients in
/// quintile 5 and for the rest (national figures: outcome data for 45% against 29%).
pub const EXIT_RATE_Q5: f64 = 0.45 / BASELINE_RATE;
pub const EXIT_RATE_OTHER: f64 = 0.29 / BASELINE_RATE;
/// Chance that a client is referred again after an episode.
pub const REREFERRAL_RATE: f64 = 0.05;

impl ServicePlan {
    /// The behaviour in force on `date`.
    pub fn behaviour_on(&self, date: NaiveDate) -> Behaviour {
        let mut b = self.base.clone();
        for c in &self.changes {
            if date < c.starts {
                break;
            }
            let t = if c.ramp_quarters == 0 {
                1.0
            } else {
                let done = quarters_between(c.starts, date) + 1;
                (f64::from(done) / f64::from(c.ramp_quarters)).min(1.0)
            };
            b = b.toward(&c.behaviour, t);
        }
        b
    }

    /// The configuration in force on `date` (the latest recorded one).
    pub fn config_on(&self, date: NaiveDate) -> &Config {
        let mut c = &self.base_config;
        for ch in &self.changes {
            if ch.starts <= date
                && let Some(cfg) = &ch.config
            {
                c = cfg;
            }
        }
        c
    }

    /// Weights of drawing each LSOA of the areas served (and of the neighbour) under a
    /// behaviour.
    fn area_weights(
        &self,
        geo: &Geography,
        b: &Behaviour,
        lad: usize,
        boost: bool,
    ) -> Vec<(usize, f64)> {
        geo.lads[lad]
            .lsoas
            .iter()
            .map(|i| {
                let l = &geo.lsoas[*i];
                let mut w = l.pop * b.skew[usize::from(l.quintile - 1)];
                if boost && self.target_lsoas.binary_search(i).is_ok() {
                    w *= b.target_boost;
                }
                (*i, w)
            })
            .collect()
    }

    fn residence(&self, geo: &Geography, b: &Behaviour) -> Residence {
        let boost = self.config_targets_local();
        let area: Vec<(usize, f64)> = self
            .lads
            .iter()
            .flat_map(|l| self.area_weights(geo, b, *l, boost))
            .collect();
        let neighbour: Vec<(usize, f64)> = self
            .neighbour
            .map(|n| self.area_weights(geo, b, n, false))
            .unwrap_or_default();
        Residence {
            area_table: Cumulative::new(area.iter().map(|x| x.1)),
            area,
            neighbour_table: if neighbour.is_empty() {
                None
            } else {
                Some(Cumulative::new(neighbour.iter().map(|x| x.1)))
            },
            neighbour,
        }
    }

    fn config_targets_local(&self) -> bool {
        self.base_config.targeting == "deprived_areas_local"
            || self.changes.iter().any(|c| {
                c.config
                    .as_ref()
                    .is_some_and(|k| k.targeting == "deprived_areas_local")
            })
    }

    /// The fingerprint a behaviour aims at: every measure's expected level (shares as
    /// probabilities, medians as the median the generator draws around), given the
    /// configuration in force and the expected share of local workers.
    pub fn intended(
        &self,
        geo: &Geography,
        b: &Behaviour,
        config: &Config,
        local_workers: f64,
    ) -> Vec<(Measure, f64)> {
        let r = self.residence(geo, b);
        let total = |v: &[(usize, f64)], f: &dyn Fn(usize) -> bool| -> (f64, f64) {
            let all: f64 = v.iter().map(|x| x.1).sum();
            let hit: f64 = v.iter().filter(|x| f(x.0)).map(|x| x.1).sum();
            (hit, all)
        };
        let known_share = |f: &dyn Fn(usize) -> bool, from_neighbour: bool| -> f64 {
            let (ah, aa) = total(&r.area, f);
            let p_area = if aa > 0.0 { ah / aa } else { 0.0 };
            if r.neighbour.is_empty() {
                return p_area;
            }
            let (nh, na) = total(&r.neighbour, f);
            let p_nb = if from_neighbour && na > 0.0 {
                nh / na
            } else {
                0.0
            };
            let w = NEIGHBOUR_SHARE / (1.0 - BLANK_POSTCODE_SHARE - UNKNOWN_POSTCODE_SHARE);
            (1.0 - w) * p_area + w * p_nb
        };
        let q1 = |i: usize| geo.lsoas[i].quintile == 1;
        let mut out = vec![
            (Measure::CommunityReferralShare, b.community),
            (Measure::ClinicalReferralShare, b.clinical),
            (Measure::DeprivedReach, known_share(&q1, true)),
        ];
        let target = match config.targeting {
            "deprived_areas_local" => Some(known_share(
                &|i| self.target_lsoas.binary_search(&i).is_ok(),
                false,
            )),
            "most_deprived_20pct" => Some(known_share(&q1, false)),
            "universal" => Some(known_share(&|_| true, false)),
            _ => None,
        };
        if let Some(t) = target {
            out.push((Measure::TargetAreaShare, t));
        }
        out.extend([
            (Measure::TelephoneShare, b.telephone),
            (Measure::ClinicalVenueShare, b.clinical_venue),
            (Measure::BriefShare, b.brief),
            (Measure::PlanRate, b.plan_rate),
            (Measure::DaysToPlan, b.days_to_plan.round()),
            (Measure::SessionsPerEpisode, b.sessions.round()),
            (Measure::LocalWorkerShare, local_workers),
            (Measure::WiderIssueRate, b.wider),
        ]);
        out
    }
}

/// The delivery model section 7's rules give a fingerprint (default thresholds).
pub fn delivery_model(f: &[(Measure, f64)]) -> &'static str {
    let get = |m: Measure| f.iter().find(|x| x.0 == m).map(|x| x.1).unwrap_or(0.0);
    if get(Measure::TelephoneShare) >= 0.5 && get(Measure::SessionsPerEpisode) <= 2.0 {
        "telephone_triage"
    } else if get(Measure::ClinicalReferralShare) >= 0.5 || get(Measure::ClinicalVenueShare) >= 0.5
    {
        "primary_care"
    } else if get(Measure::CommunityReferralShare) >= 0.5 {
        "community_peer"
    } else {
        "mixed"
    }
}

struct Residence {
    area: Vec<(usize, f64)>,
    area_table: Cumulative,
    neighbour: Vec<(usize, f64)>,
    neighbour_table: Option<Cumulative>,
}

/// Whole quarters from the quarter of `a` to the quarter of `b`.
pub fn quarters_between(a: NaiveDate, b: NaiveDate) -> u32 {
    let qa = a.year() * 4 + (a.month0() as i32) / 3;
    let qb = b.year() * 4 + (b.month0() as i32) / 3;
    (qb - qa).max(0) as u32
}

/// The financial-year quarter a date falls in, as text (`2009-10 Q3`).
pub fn quarter_label(d: NaiveDate) -> String {
    Quarter::containing(d).to_string()
}

fn days(d: NaiveDate, n: i64) -> NaiveDate {
    d + chrono::Duration::days(n)
}

/// A worker on a service's roster.
#[derive(Debug, Clone)]
struct Worker {
    reference: String,
    started: NaiveDate,
    left: Option<NaiveDate>,
}

impl Worker {
    fn active(&self, d: NaiveDate) -> bool {
        self.started <= d && self.left.is_none_or(|l| d <= l)
    }
}

/// Whether a worker starting on `on` should live locally to keep the team's share of
/// local workers as close as its size allows to `target`: with teams of ten or so, drawing
/// each hire at random would leave the share a coin toss away from what the service does.
fn keeps_share(team: &[(Worker, bool)], on: NaiveDate, target: f64) -> bool {
    let active: Vec<bool> = team
        .iter()
        .filter(|(w, _)| w.active(on))
        .map(|(_, local)| *local)
        .collect();
    let n = active.len() as f64 + 1.0;
    let local = active.iter().filter(|l| **l).count() as f64;
    ((local + 1.0) / n - target).abs() <= (local / n - target).abs()
}

/// How a client's goals turn out across their plans.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Attainment {
    Fully,
    Partly,
    Not,
}

const GIVEN_NAMES: &[&str] = &[
    "Alex", "Sam", "Jo", "Chris", "Pat", "Kim", "Lee", "Robin", "Jamie", "Terry", "Morgan",
    "Casey", "Jordan", "Ashley", "Charlie", "Frankie", "Drew", "Riley", "Toni", "Jess",
];
const SYLLABLES: &[&str] = &[
    "ba", "ko", "ri", "ta", "me", "lu", "so", "ne", "vi", "da", "pe", "zo", "fa", "gi", "hu", "mo",
];

/// Generates one service's records into `out`.
pub struct ServiceGen<'a> {
    pub plan: &'a ServicePlan,
    pub geo: &'a Geography,
    pub end: NaiveDate,
    rng: Rng,
    workers: Vec<Worker>,
    counters: [u64; 13],
    nhs_base: u64,
    nhs_next: u64,
}

impl<'a> ServiceGen<'a> {
    /// `nhs_base` is the first of this service's block of synthetic NHS numbers.
    pub fn new(
        plan: &'a ServicePlan,
        geo: &'a Geography,
        end: NaiveDate,
        rng: Rng,
        nhs_base: u64,
    ) -> Self {
        ServiceGen {
            plan,
            geo,
            end,
            rng,
            workers: Vec::new(),
            counters: [0; 13],
            nhs_base,
            nhs_next: 0,
        }
    }

    /// The first synthetic NHS number base not yet used (for the next service).
    pub fn nhs_next(&self) -> u64 {
        self.nhs_base + self.nhs_next
    }

    fn next_ref(&mut self, e: Entity, prefix: &str, width: usize) -> String {
        let i = Entity::ALL.iter().position(|x| *x == e).expect("entity");
        self.counters[i] += 1;
        format!("{prefix}{:0width$}", self.counters[i])
    }

    /// Writes the service, its organisation, configurations and workforce.
    pub fn write_service(&mut self, out: &mut Out) -> Result<(), crate::SynthError> {
        let p = self.plan;
        out.write(Entity::Organisation, &[&p.org_ref, &p.org_name, "pct", ""])?;
        let areas: Vec<&str> = p
            .lads
            .iter()
            .map(|l| self.geo.lads[*l].code.as_str())
            .collect();
        out.write(
            Entity::Service,
            &[
                &p.service_ref,
                &p.name,
                &p.org_ref,
                &areas.join(";"),
                &p.started.to_string(),
                "",
            ],
        )?;
        let mut configs = vec![(p.started, &p.base_config)];
        for c in &p.changes {
            if let Some(cfg) = &c.config {
                configs.push((c.starts, cfg));
            }
        }
        let targets: Vec<&str> = p
            .target_lsoas
            .iter()
            .map(|i| self.geo.lsoas[*i].code.as_str())
            .collect();
        let targets = targets.join(";");
        for (n, (from, c)) in configs.iter().enumerate() {
            let t = if c.targeting == "deprived_areas_local" {
                targets.as_str()
            } else {
                ""
            };
            out.write(
                Entity::ServiceConfiguration,
                &[
                    &format!("{}-CFG{}", p.service_ref, n + 1),
                    &p.service_ref,
                    &from.to_string(),
                    c.provider_model,
                    c.funding,
                    c.senior_buy_in,
                    c.routes,
                    c.worker_profile,
                    c.targeting,
                    t,
                    c.formal_performance_management,
                    c.interaction_model,
                    c.notes,
                ],
            )?;
        }
        self.roster(out)
    }

    /// The configuration reference a recorded change wrote.
    pub fn configuration_ref(plan: &ServicePlan, change: &Change) -> Option<String> {
        let n = plan
            .changes
            .iter()
            .filter(|c| c.config.is_some())
            .position(|c| std::ptr::eq(c, change))?;
        change.config.as_ref()?;
        Some(format!("{}-CFG{}", plan.service_ref, n + 2))
    }

    /// Builds and writes the workforce: an initial team sized to the referral volume,
    /// ordinary turnover (about 10% a year, replaced at once), and the replacements a
    /// change with turnover brings.
    fn roster(&mut self, out: &mut Out) -> Result<(), crate::SynthError> {
        let plan = self.plan;
        let mut rng = self.rng.fork(0x574B);
        let volume = plan
            .exact_clients
            .map(|c| c as f64 / 12.0)
            .unwrap_or(plan.base.volume);
        let team = ((volume / 10.0).round() as usize).clamp(4, 40);
        let mut rows: Vec<(Worker, bool)> = Vec::new();
        for _ in 0..team {
            let local = keeps_share(&rows, plan.started, plan.base.local_worker);
            rows.push((self.new_worker(plan.started), local));
        }
        let mut q = plan.started;
        while q <= self.end {
            let q_end = Quarter::containing(q).last_day().min(self.end);
            let b = plan.behaviour_on(q);
            for c in &plan.changes {
                if c.turnover > 0.0 && c.starts >= q && c.starts <= q_end {
                    let leave = days(c.starts, -1);
                    let mut hires = 0;
                    for (w, _) in rows.iter_mut() {
                        if w.left.is_none() && rng.chance(c.turnover) {
                            w.left = Some(leave);
                            hires += 1;
                        }
                    }
                    for _ in 0..hires {
                        let local = keeps_share(&rows, c.starts, c.behaviour.local_worker);
                        rows.push((self.new_worker(c.starts), local));
                    }
                }
            }
            let span = (q_end - q).num_days();
            let mut hires = Vec::new();
            for (w, _) in rows.iter_mut() {
                if w.left.is_none() && w.started < q && rng.chance(0.025) {
                    let d = days(q, rng.range(0, span.max(1) - 1));
                    w.left = Some(d);
                    hires.push(days(d, 1));
                }
            }
            for d in hires {
                let local = keeps_share(&rows, d, b.local_worker);
                rows.push((self.new_worker(d), local));
            }
            q = days(q_end, 1);
        }
        for (w, local) in &rows {
            self.write_worker(out, &mut rng, w, *local)?;
        }
        self.workers = rows.into_iter().map(|x| x.0).collect();
        Ok(())
    }

    fn new_worker(&mut self, started: NaiveDate) -> Worker {
        Worker {
            reference: self.next_ref(Entity::Worker, "W", 3),
            started,
            left: None,
        }
    }

    fn write_worker(
        &self,
        out: &mut Out,
        rng: &mut Rng,
        w: &Worker,
        local: bool,
    ) -> Result<(), crate::SynthError> {
        let first = w.reference == "W001";
        let role = if first {
            "team_leader"
        } else {
            rng.choose(&[
                ("health_trainer", 0.8),
                ("senior_health_trainer", 0.13),
                ("champion_volunteer", 0.07),
            ])
        };
        let sex = rng.choose(&[("female", 0.7), ("male", 0.29), ("not_stated", 0.01)]);
        let age = rng.choose(&[
            ("16-24", 0.12),
            ("25-34", 0.28),
            ("35-44", 0.27),
            ("45-54", 0.22),
            ("55-64", 0.1),
            ("65+", 0.01),
        ]);
        let quintile = if local {
            let q = rng.choose(&[
                ("1", 0.45),
                ("2", 0.25),
                ("3", 0.15),
                ("4", 0.1),
                ("5", 0.05),
            ]);
            q.to_string()
        } else if rng.chance(0.6) {
            rng.choose(&[("1", 0.15), ("2", 0.2), ("3", 0.25), ("4", 0.2), ("5", 0.2)])
                .to_string()
        } else {
            String::new()
        };
        let qual = rng.choose(&[
            ("level3_certificate", 0.6),
            ("in_training", 0.2),
            ("level2_award", 0.15),
            ("none", 0.05),
        ]);
        let fte = rng.choose(&[("1", 0.55), ("0.8", 0.2), ("0.6", 0.15), ("0.5", 0.1)]);
        let name = format!("Trainer {} (synthetic)", &w.reference[1..]);
        out.write(
            Entity::Worker,
            &[
                &w.reference,
                &self.plan.service_ref,
                &name,
                role,
                sex,
                age,
                if local { "yes" } else { "no" },
                &quintile,
                qual,
                &w.started.to_string(),
                &w.left.map(|d| d.to_string()).unwrap_or_default(),
                fte,
            ],
        )
    }

    /// Generates every client of the service, quarter by quarter.
    pub fn write_clients(&mut self, out: &mut Out) -> Result<(), crate::SynthError> {
        let plan = self.plan;
        let mut rng = self.rng.fork(0xC11E);
        let first_q = Quarter::containing(plan.started);
        let quarters = quarters_between(plan.started, self.end) + 1;
        let mut q = first_q;
        let mut made = 0u64;
        let mut residence: Option<(Behaviour, Residence)> = None;
        for qi in 0..quarters {
            let from = q.first_day().max(plan.started);
            let to = q.last_day().min(self.end);
            let b = plan.behaviour_on(from);
            let n = match plan.exact_clients {
                Some(total) => {
                    let target = total * u64::from(qi + 1) / u64::from(quarters);
                    let n = target - made;
                    made = target;
                    n
                }
                None => {
                    let active = (to - from).num_days() + 1;
                    let span = (q.last_day() - q.first_day()).num_days() + 1;
                    u64::from(rng.poisson(b.volume * active as f64 / span as f64))
                }
            };
            if residence.as_ref().is_none_or(|(rb, _)| *rb != b) {
                residence = Some((b.clone(), plan.residence(self.geo, &b)));
            }
            let res = &residence.as_ref().expect("set above").1;
            let span = (to - from).num_days();
            for _ in 0..n {
                let received = days(from, rng.range(0, span));
                self.client(out, &mut rng, res, received)?;
            }
            q = q.next();
        }
        Ok(())
    }

    fn nhs_number(&mut self) -> String {
        loop {
            let base = self.nhs_base + self.nhs_next;
            self.nhs_next += 1;
            let digits: Vec<u64> = format!("{base:09}")
                .bytes()
                .map(|b| u64::from(b - b'0'))
                .collect();
            let sum: u64 = digits.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
            let check = match 11 - sum % 11 {
                11 => 0,
                10 => continue,
                c => c,
            };
            return format!("{base:09}{check}");
        }
    }

    fn client(
        &mut self,
        out: &mut Out,
        rng: &mut Rng,
        res: &Residence,
        received: NaiveDate,
    ) -> Result<(), crate::SynthError> {
        let geo = self.geo;
        let client_ref = self.next_ref(Entity::Client, "C", 6);
        let n = self.counters[4];
        // Where they live.
        let roll = rng.unit();
        let (postcode, quintile, lad): (String, Option<u8>, usize) = if roll < BLANK_POSTCODE_SHARE
        {
            (String::new(), None, self.plan.lads[0])
        } else if roll < BLANK_POSTCODE_SHARE + UNKNOWN_POSTCODE_SHARE {
            // The NHS pseudo-postcodes for "no fixed abode" and "address not known".
            let pc = if rng.chance(0.5) {
                "ZZ99 3VZ"
            } else {
                "ZZ99 3WZ"
            };
            (pc.to_string(), None, self.plan.lads[0])
        } else {
            let nb = roll < BLANK_POSTCODE_SHARE + UNKNOWN_POSTCODE_SHARE + NEIGHBOUR_SHARE;
            let i = match (&res.neighbour_table, nb) {
                (Some(t), true) => res.neighbour[t.draw(rng)].0,
                _ => res.area[res.area_table.draw(rng)].0,
            };
            let l = &geo.lsoas[i];
            (
                postcode_text(rng.pick(&l.postcodes)).to_string(),
                Some(l.quintile),
                l.lad,
            )
        };
        let sex = rng.choose(&[
            ("female", 0.59),
            ("male", 0.405),
            ("other", 0.002),
            ("not_stated", 0.003),
        ]);
        let age = rng.normal_in(44.0, 15.0, 16.0, 88.0) as u32;
        let dob = received
            .checked_sub_months(Months::new(age * 12 + rng.range(0, 11) as u32))
            .map(|d| days(d, -rng.range(0, 27)))
            .expect("a date of birth");
        let ethnic = &geo.lads[lad].ethnic;
        let ethnicity = if rng.chance(0.05) {
            "Z"
        } else if rng.chance(0.02) {
            "99"
        } else if ethnic.is_empty() {
            "A"
        } else {
            rng.choose(ethnic)
        };
        let nhs = if rng.chance(0.92) {
            self.nhs_number()
        } else {
            String::new()
        };
        let given = *rng.pick(GIVEN_NAMES);
        let family = format!(
            "Synth-{}{}{}",
            SYLLABLES[(n % 16) as usize].to_uppercase(),
            SYLLABLES[((n / 16) % 16) as usize],
            SYLLABLES[((n / 256) % 16) as usize]
        );
        let gp = rng.choose(&[("yes", 0.9), ("no", 0.07), ("unknown", 0.03)]);
        let employment = rng.choose(&[
            ("employed", 0.42),
            ("unemployed", 0.18),
            ("student", 0.04),
            ("retired", 0.16),
            ("long_term_sick_or_disabled", 0.1),
            ("carer", 0.04),
            ("other", 0.02),
            ("not_stated", 0.04),
        ]);
        let disability = rng.choose(&[("yes", 0.2), ("no", 0.72), ("not_stated", 0.08)]);
        let share = if rng.chance(0.9) { "yes" } else { "no" };
        out.write(
            Entity::Client,
            &[
                &client_ref,
                &self.plan.service_ref,
                given,
                &family,
                &nhs,
                &dob.to_string(),
                sex,
                ethnicity,
                &postcode,
                gp,
                "",
                employment,
                disability,
                "yes",
                share,
            ],
        )?;
        let attainment = rng.choose(&[
            (Attainment::Fully, 0.47),
            (Attainment::Partly, 0.23),
            (Attainment::Not, 0.30),
        ]);
        let sexm = sex == "male";
        let mut date = received;
        loop {
            let b = self.plan.behaviour_on(date);
            let closed =
                self.referral(out, rng, &b, &client_ref, date, quintile, attainment, sexm)?;
            match closed {
                Some(c) if rng.chance(REREFERRAL_RATE) => {
                    let next = days(c, rng.range(30, 400));
                    if next > self.end {
                        break;
                    }
                    date = next;
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn referral_source(&self, rng: &mut Rng, b: &Behaviour) -> &'static str {
        let u = rng.unit();
        if u < b.community {
            rng.choose(&[
                ("self", 0.45),
                ("friend_or_family", 0.15),
                ("community_organisation", 0.2),
                ("outreach_event", 0.1),
                ("workplace", 0.03),
                ("local_authority_service", 0.04),
                ("housing_or_jobcentre", 0.03),
            ])
        } else if u < b.community + b.clinical {
            match b.clinical_mix {
                ClinicalMix::GeneralPractice => rng.choose(&[
                    ("gp", 0.6),
                    ("practice_nurse", 0.2),
                    ("health_check", 0.08),
                    ("stop_smoking_service", 0.04),
                    ("pharmacy", 0.03),
                    ("hospital", 0.02),
                    ("mental_health_service", 0.02),
                    ("other_health_professional", 0.01),
                ]),
                ClinicalMix::CvdAndSmoking => rng.choose(&[
                    ("health_check", 0.45),
                    ("stop_smoking_service", 0.3),
                    ("gp", 0.15),
                    ("practice_nurse", 0.05),
                    ("pharmacy", 0.05),
                ]),
            }
        } else if rng.chance(0.3) {
            rng.choose(&[("probation", 0.8), ("prison", 0.2)])
        } else {
            "other"
        }
    }

    fn worker_on(&self, rng: &mut Rng, d: NaiveDate, preferred: Option<&str>) -> String {
        if let Some(p) = preferred
            && self.workers.iter().any(|w| w.reference == p && w.active(d))
        {
            return p.to_string();
        }
        let active: Vec<&Worker> = self.workers.iter().filter(|w| w.active(d)).collect();
        if active.is_empty() {
            return self.workers[0].reference.clone();
        }
        rng.pick(&active).reference.clone()
    }

    /// A referral and what follows it; returns the date the episode closed, if it did.
    #[allow(clippy::too_many_arguments)]
    fn referral(
        &mut self,
        out: &mut Out,
        rng: &mut Rng,
        b: &Behaviour,
        client_ref: &str,
        received: NaiveDate,
        quintile: Option<u8>,
        attainment: Attainment,
        male: bool,
    ) -> Result<Option<NaiveDate>, crate::SynthError> {
        let sref = self.plan.service_ref.clone();
        let referral_ref = self.next_ref(Entity::Referral, "R", 6);
        let source = self.referral_source(rng, b);
        out.write(
            Entity::Referral,
            &[
                &referral_ref,
                &sref,
                client_ref,
                &received.to_string(),
                source,
                "",
                "",
            ],
        )?;
        if !rng.chance(0.85) {
            return Ok(None);
        }
        let first = days(received, rng.around(10.0, 0.8, 0));
        if first > self.end {
            return Ok(None);
        }
        let episode_ref = self.next_ref(Entity::Episode, "E", 6);
        let lead = self.worker_on(rng, first, None);
        let issue = rng.choose(&[
            ("diet", 0.55),
            ("physical_activity", 0.23),
            ("weight", 0.08),
            ("smoking", 0.05),
            ("alcohol", 0.03),
            ("emotional_wellbeing", 0.04),
            ("other", 0.02),
        ]);
        let brief = rng.chance(b.brief);
        let mut sessions: Vec<(NaiveDate, &'static str, &'static str)> = Vec::new();
        let closed;
        let exit_reason;
        let mut plan_on = None;
        if brief {
            sessions.push((first, "brief_intervention", "yes"));
            closed = Some(first);
            exit_reason = if rng.chance(0.9) {
                "completed"
            } else {
                "referred_on"
            };
        } else {
            let k = rng.around(b.sessions, 0.35, 1);
            let has_plan = rng.chance(b.plan_rate);
            let dtp = rng.around(b.days_to_plan, 0.6, 0);
            let mut d = first;
            sessions.push((d, "assessment", "yes"));
            if has_plan {
                plan_on = Some(days(first, dtp));
                if dtp > 0 && k >= 2 {
                    d = days(first, dtp);
                    sessions.push((d, "plan_setting", "yes"));
                }
            }
            while (sessions.iter().filter(|s| s.2 == "yes").count() as i64) < k {
                let gap = rng.around(12.0, 0.4, 3);
                if rng.chance(0.12) {
                    sessions.push((days(d, gap / 2 + 1), "support", "did_not_attend"));
                } else if rng.chance(0.05) {
                    sessions.push((days(d, gap / 2 + 1), "support", "cancelled"));
                }
                d = days(d, gap);
                let attended = sessions.iter().filter(|s| s.2 == "yes").count() as i64 + 1;
                let purpose = if attended == k || attended % 4 == 0 {
                    "review"
                } else {
                    "support"
                };
                sessions.push((d, purpose, "yes"));
            }
            let last = sessions.iter().map(|s| s.0).max().unwrap_or(first);
            let close = days(last.max(plan_on.unwrap_or(first)), rng.around(5.0, 0.6, 0));
            if close > self.end {
                closed = None;
                exit_reason = "";
            } else {
                closed = Some(close);
                exit_reason = if has_plan {
                    match attainment {
                        Attainment::Fully | Attainment::Partly if rng.chance(0.9) => "completed",
                        Attainment::Not if rng.chance(0.45) => "completed",
                        _ => rng.choose(&[
                            ("disengaged", 0.6),
                            ("withdrew", 0.15),
                            ("referred_on", 0.1),
                            ("moved_away", 0.08),
                            ("other", 0.07),
                        ]),
                    }
                } else {
                    rng.choose(&[
                        ("disengaged", 0.5),
                        ("withdrew", 0.15),
                        ("referred_on", 0.15),
                        ("moved_away", 0.08),
                        ("inappropriate_referral", 0.07),
                        ("other", 0.05),
                    ])
                };
            }
        }
        sessions.retain(|s| s.0 <= self.end);
        if plan_on.is_some_and(|p| p > self.end) {
            plan_on = None;
        }
        out.write(
            Entity::Episode,
            &[
                &episode_ref,
                &sref,
                &referral_ref,
                &lead,
                if brief { "brief" } else { "full" },
                &first.to_string(),
                issue,
                &closed.map(|d| d.to_string()).unwrap_or_default(),
                exit_reason,
            ],
        )?;
        // Sessions.
        for (d, purpose, attended) in &sessions {
            self.session(out, rng, b, &episode_ref, &lead, *d, purpose, attended)?;
        }
        // Assessments.
        if !brief {
            let weight_focused = matches!(issue, "diet" | "weight");
            if rng.chance(BASELINE_RATE) {
                let exit_p = if quintile == Some(5) {
                    EXIT_RATE_Q5
                } else {
                    EXIT_RATE_OTHER
                };
                let exit_on = closed.filter(|_| rng.chance(exit_p));
                self.assessments(out, rng, &episode_ref, first, exit_on, weight_focused, male)?;
            }
        }
        // Plan and goals.
        if let Some(p) = plan_on {
            let plan_ref = self.next_ref(Entity::Plan, "P", 6);
            out.write(
                Entity::Plan,
                &[&plan_ref, &sref, &episode_ref, &p.to_string()],
            )?;
            let goals = rng.choose(&[(1, 0.3), (2, 0.45), (3, 0.25)]);
            for g in 0..goals {
                let domain = if g == 0 {
                    match issue {
                        "diet" => "diet",
                        "physical_activity" => "physical_activity",
                        "weight" => "weight",
                        "smoking" => "smoking",
                        "alcohol" => "alcohol",
                        "emotional_wellbeing" => "wellbeing",
                        _ => "other",
                    }
                } else {
                    rng.choose(&[
                        ("diet", 0.3),
                        ("physical_activity", 0.35),
                        ("wellbeing", 0.15),
                        ("social", 0.1),
                        ("weight", 0.1),
                    ])
                };
                let status = match closed {
                    None => "open",
                    Some(_) => match attainment {
                        Attainment::Fully => "fully_achieved",
                        Attainment::Partly if g == 0 => "partly_achieved",
                        Attainment::Partly => rng.choose(&[
                            ("fully_achieved", 0.4),
                            ("partly_achieved", 0.3),
                            ("not_achieved", 0.3),
                        ]),
                        Attainment::Not if exit_reason == "completed" => "not_achieved",
                        Attainment::Not => rng.choose(&[("not_achieved", 0.4), ("abandoned", 0.6)]),
                    },
                };
                let status_on = if status == "open" {
                    String::new()
                } else {
                    closed.map(|d| d.to_string()).unwrap_or_default()
                };
                let target = days(p, rng.range(42, 90));
                let goal_ref = self.next_ref(Entity::Goal, "G", 6);
                out.write(
                    Entity::Goal,
                    &[
                        &goal_ref,
                        &sref,
                        &plan_ref,
                        domain,
                        goal_text(domain, g),
                        &target.to_string(),
                        status,
                        &status_on,
                    ],
                )?;
            }
        }
        // Signposting and onward referrals.
        let onward_p = if brief { 0.5 } else { 0.3 };
        if rng.chance(onward_p) {
            let made = sessions.last().map(|s| s.0).unwrap_or(first);
            let destination = match issue {
                "smoking" => "stop_smoking",
                "alcohol" => "alcohol_service",
                "weight" | "diet" if rng.chance(0.5) => "weight_management",
                "emotional_wellbeing" => "mental_health",
                _ => rng.choose(&[
                    ("exercise_referral", 0.3),
                    ("community_group", 0.3),
                    ("welfare_or_debt_advice", 0.15),
                    ("employment_support", 0.1),
                    ("housing", 0.05),
                    ("gp", 0.1),
                ]),
            };
            let action = if rng.chance(0.6) {
                "signposted"
            } else {
                "referred"
            };
            let outcome =
                rng.choose(&[("unknown", 0.6), ("attended", 0.3), ("did_not_attend", 0.1)]);
            let r = self.next_ref(Entity::OnwardReferral, "O", 6);
            out.write(
                Entity::OnwardReferral,
                &[
                    &r,
                    &sref,
                    &episode_ref,
                    &made.to_string(),
                    action,
                    destination,
                    outcome,
                ],
            )?;
        }
        // Wider issues.
        if rng.chance(b.wider) {
            let n = if rng.chance(0.3) { 2 } else { 1 };
            for _ in 0..n {
                let issue = rng.choose(&[
                    ("housing", 0.2),
                    ("debt_or_money", 0.25),
                    ("isolation", 0.2),
                    ("employment", 0.15),
                    ("caring", 0.08),
                    ("food_insecurity", 0.07),
                    ("other", 0.05),
                ]);
                let noted = rng.pick(&sessions).0;
                let r = self.next_ref(Entity::WiderIssue, "WI", 6);
                out.write(
                    Entity::WiderIssue,
                    &[&r, &sref, &episode_ref, &noted.to_string(), issue],
                )?;
            }
        }
        Ok(closed)
    }

    #[allow(clippy::too_many_arguments)]
    fn session(
        &mut self,
        out: &mut Out,
        rng: &mut Rng,
        b: &Behaviour,
        episode_ref: &str,
        lead: &str,
        d: NaiveDate,
        purpose: &str,
        attended: &str,
    ) -> Result<(), crate::SynthError> {
        let worker = self.worker_on(rng, d, Some(lead));
        let (mode, venue) = if rng.chance(b.telephone) {
            ("telephone", "remote")
        } else {
            let mode = if purpose != "brief_intervention" && rng.chance(0.03) {
                "group"
            } else {
                "face_to_face"
            };
            let venue = if rng.chance(b.clinical_venue) {
                rng.choose(&[
                    ("gp_practice", 0.6),
                    ("health_centre", 0.25),
                    ("pharmacy", 0.15),
                ])
            } else {
                rng.choose(&[
                    ("community_venue", 0.55),
                    ("client_home", 0.15),
                    ("leisure_centre", 0.12),
                    ("workplace", 0.05),
                    ("other", 0.13),
                ])
            };
            (mode, venue)
        };
        let minutes = match (purpose, mode) {
            (_, "telephone") => rng.range(10, 30),
            ("brief_intervention", _) => rng.range(10, 25),
            ("assessment", _) => rng.range(40, 70),
            _ => rng.range(25, 60),
        };
        let r = self.next_ref(Entity::Session, "S", 7);
        out.write(
            Entity::Session,
            &[
                &r,
                &self.plan.service_ref,
                episode_ref,
                &worker,
                &d.to_string(),
                &minutes.to_string(),
                mode,
                venue,
                purpose,
                attended,
            ],
        )
    }

    /// Baseline, and exit when `exit_on` is set, with a follow-up for some.
    #[allow(clippy::too_many_arguments)]
    fn assessments(
        &mut self,
        out: &mut Out,
        rng: &mut Rng,
        episode_ref: &str,
        first: NaiveDate,
        exit_on: Option<NaiveDate>,
        weight_focused: bool,
        male: bool,
    ) -> Result<(), crate::SynthError> {
        let sref = self.plan.service_ref.clone();
        let height = if male {
            rng.normal_in(176.0, 7.0, 150.0, 205.0)
        } else {
            rng.normal_in(162.0, 6.5, 140.0, 190.0)
        }
        .round();
        let h2 = (height / 100.0).powi(2);
        let bmi0 = if weight_focused {
            rng.normal_in(34.0, 5.0, 20.0, 48.0)
        } else {
            rng.normal_in(28.5, 5.0, 17.0, 45.0)
        };
        let fall = if weight_focused {
            rng.normal_in(1.8, 1.5, -2.5, 6.1)
        } else {
            rng.normal_in(0.5, 1.0, -2.5, 3.5)
        };
        let smoker = rng.chance(0.22);
        let base = Measures {
            height: Some(height),
            weight: bmi0 * h2,
            waist: rng
                .chance(0.6)
                .then(|| (bmi0 * 2.6 + rng.normal_in(15.0, 6.0, 0.0, 40.0)).round()),
            fruit_veg: rng.range(0, 5),
            snacks: rng.range(0, 5),
            active: rng.range(0, 4),
            alcohol: if rng.chance(0.3) { 0 } else { rng.range(1, 30) },
            smoking: if smoker {
                "current"
            } else if rng.chance(0.3) {
                "ex"
            } else {
                "never"
            },
            cigarettes: smoker.then(|| rng.range(5, 25)),
            efficacy: rng.range(2, 7),
            health: rng.range(35, 80),
            swemwbs: rng.range(14, 27),
        };
        let a = self.next_ref(Entity::Assessment, "A", 6);
        base.write(out, &a, &sref, episode_ref, "baseline", first)?;
        let Some(exit_on) = exit_on else {
            return Ok(());
        };
        let quit = smoker && rng.chance(0.3);
        let exit = Measures {
            height: None,
            weight: (bmi0 - fall) * h2,
            waist: base.waist.map(|w| (w - fall * 2.0).round()),
            fruit_veg: (base.fruit_veg + rng.range(0, 3)).min(20),
            snacks: (base.snacks - rng.range(0, 2)).max(0),
            active: (base.active + rng.range(0, 3)).min(7),
            alcohol: (base.alcohol - rng.range(0, 5)).max(0),
            smoking: if quit { "ex" } else { base.smoking },
            cigarettes: if quit {
                None
            } else {
                base.cigarettes.map(|c| (c - rng.range(0, 5)).max(1))
            },
            efficacy: (base.efficacy + rng.range(0, 3)).min(10),
            health: (base.health + rng.range(-5, 15)).min(100),
            swemwbs: (base.swemwbs + rng.range(-2, 6)).clamp(7, 35),
        };
        let a = self.next_ref(Entity::Assessment, "A", 6);
        exit.write(out, &a, &sref, episode_ref, "exit", exit_on)?;
        if rng.chance(0.15) {
            let d = days(exit_on, rng.range(90, 180));
            if d <= self.end {
                let a = self.next_ref(Entity::Assessment, "A", 6);
                let mut f = exit;
                f.weight += rng.normal_in(0.8, 1.5, -3.0, 5.0) * h2;
                f.write(out, &a, &sref, episode_ref, "follow_up", d)?;
                let r = self.next_ref(Entity::Session, "S", 7);
                let worker = self.worker_on(rng, d, None);
                out.write(
                    Entity::Session,
                    &[
                        &r,
                        &sref,
                        episode_ref,
                        &worker,
                        &d.to_string(),
                        "15",
                        "telephone",
                        "remote",
                        "follow_up",
                        "yes",
                    ],
                )?;
            }
        }
        Ok(())
    }
}

struct Measures {
    height: Option<f64>,
    weight: f64,
    waist: Option<f64>,
    fruit_veg: i64,
    snacks: i64,
    active: i64,
    alcohol: i64,
    smoking: &'static str,
    cigarettes: Option<i64>,
    efficacy: i64,
    health: i64,
    swemwbs: i64,
}

/// The assessment fields the generator fills, by name: a measure added to the standard
/// is left empty until the generator learns to make it.
static ASSESSMENT: std::sync::LazyLock<crate::out::Layout> = std::sync::LazyLock::new(|| {
    crate::out::Layout::of(
        Entity::Assessment,
        &[
            "assessment_ref",
            "service_ref",
            "episode_ref",
            "occasion",
            "assessed_on",
            "height_cm",
            "weight_kg",
            "waist_cm",
            "fruit_veg_portions_per_day",
            "high_fat_snacks_per_day",
            "active_days_per_week",
            "alcohol_units_per_week",
            "smoking_status",
            "cigarettes_per_day",
            "self_efficacy",
            "general_health",
            "swemwbs_raw",
        ],
    )
});

impl Measures {
    fn write(
        &self,
        out: &mut Out,
        r: &str,
        sref: &str,
        episode: &str,
        occasion: &str,
        on: NaiveDate,
    ) -> Result<(), crate::SynthError> {
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.0}")).unwrap_or_default();
        out.write_named(
            Entity::Assessment,
            &ASSESSMENT,
            &[
                r,
                sref,
                episode,
                occasion,
                &on.to_string(),
                &opt(self.height),
                &format!("{:.1}", self.weight),
                &opt(self.waist),
                &self.fruit_veg.to_string(),
                &self.snacks.to_string(),
                &self.active.to_string(),
                &self.alcohol.to_string(),
                self.smoking,
                &self.cigarettes.map(|c| c.to_string()).unwrap_or_default(),
                &self.efficacy.to_string(),
                &self.health.to_string(),
                &self.swemwbs.to_string(),
            ],
        )
    }
}

fn goal_text(domain: &str, n: u32) -> &'static str {
    match (domain, n % 2) {
        ("diet", 0) => "Eat five portions of fruit and vegetables on five days a week",
        ("diet", _) => "Swap crisps for fruit at work, Monday to Friday",
        ("physical_activity", 0) => "Walk for 30 minutes on three days a week",
        ("physical_activity", _) => "Go to the Tuesday swimming session every week",
        ("weight", 0) => "Lose 3 kg by my next review",
        ("weight", _) => "Weigh myself once a week and write it down",
        ("smoking", _) => "Set a quit date with the stop-smoking service",
        ("alcohol", _) => "Keep two alcohol-free days each week",
        ("wellbeing", _) => "Do something I enjoy, outside the house, twice a week",
        ("social", _) => "Join the community allotment group",
        _ => "Sort out the thing that worries me most, with help",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_count_calendar_quarters() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(quarters_between(d("2009-10-01"), d("2009-12-31")), 0);
        assert_eq!(quarters_between(d("2009-10-01"), d("2010-01-01")), 1);
        assert_eq!(quarter_label(d("2010-01-05")), "2009-10 Q4");
    }

    #[test]
    fn delivery_model_follows_the_rules_in_order() {
        use Measure::*;
        let f = |v: &[(Measure, f64)]| delivery_model(v);
        assert_eq!(
            f(&[
                (TelephoneShare, 0.6),
                (SessionsPerEpisode, 2.0),
                (ClinicalReferralShare, 0.9)
            ]),
            "telephone_triage"
        );
        assert_eq!(
            f(&[
                (TelephoneShare, 0.6),
                (SessionsPerEpisode, 3.0),
                (ClinicalReferralShare, 0.5)
            ]),
            "primary_care"
        );
        assert_eq!(f(&[(ClinicalVenueShare, 0.5)]), "primary_care");
        assert_eq!(f(&[(CommunityReferralShare, 0.5)]), "community_peer");
        assert_eq!(f(&[(CommunityReferralShare, 0.49)]), "mixed");
    }
}
