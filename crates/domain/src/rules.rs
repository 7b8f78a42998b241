//! Rules across records (dataset.md, "Cross-record rules") and the values derived from
//! a client's records (BMI, the episode summary). Everything here is a pure function of
//! one client's records, so the same code checks an import, a web form and an API call.

use crate::codes::*;
use crate::record::*;
use crate::types::age_on;
use chrono::{Months, NaiveDate};
use std::collections::HashMap;

/// Every record about one client within one service.
#[derive(Debug, Clone)]
pub struct ClientBundle {
    pub client: Client,
    pub referrals: Vec<Referral>,
    pub episodes: Vec<Episode>,
    pub assessments: Vec<Assessment>,
    pub plans: Vec<Plan>,
    pub goals: Vec<Goal>,
    pub sessions: Vec<Session>,
    pub onward_referrals: Vec<OnwardReferral>,
    pub wider_issues: Vec<WiderIssue>,
}

impl ClientBundle {
    /// A client with no other records yet.
    pub fn new(client: Client) -> Self {
        ClientBundle {
            client,
            referrals: Vec::new(),
            episodes: Vec::new(),
            assessments: Vec::new(),
            plans: Vec::new(),
            goals: Vec::new(),
            sessions: Vec::new(),
            onward_referrals: Vec::new(),
            wider_issues: Vec::new(),
        }
    }
}

/// Settings the rules depend on.
#[derive(Debug, Clone, Copy)]
pub struct RuleSettings {
    /// The youngest age a client may be on a referral's date (16 by default).
    pub min_age: i32,
    /// The oldest age (110).
    pub max_age: i32,
    /// How long after an episode closes follow-up sessions and assessments may fall.
    pub follow_up_months: u32,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            min_age: 16,
            max_age: 110,
            follow_up_months: 18,
        }
    }
}

/// A broken cross-record rule, attached to the record that breaks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The kind of record.
    pub entity: Entity,
    /// Its reference.
    pub record_ref: String,
    /// The field at fault.
    pub field: &'static str,
    /// The value of that field.
    pub value: String,
    /// Why, in plain English.
    pub reason: String,
}

struct Checker {
    out: Vec<Violation>,
}

impl Checker {
    fn fail(
        &mut self,
        entity: Entity,
        record_ref: &str,
        field: &'static str,
        value: impl ToString,
        reason: String,
    ) {
        self.out.push(Violation {
            entity,
            record_ref: record_ref.to_string(),
            field,
            value: value.to_string(),
            reason,
        });
    }
}

/// The window in which an episode's records may be dated.
struct Window {
    follow_up_months: u32,
    first_contact: NaiveDate,
    closed: Option<NaiveDate>,
    follow_up_end: Option<NaiveDate>,
}

impl Window {
    fn describe_in(&self) -> String {
        match self.closed {
            Some(c) => format!(
                "between the episode's first contact ({}) and its close ({c})",
                self.first_contact
            ),
            None => format!(
                "on or after the episode's first contact ({})",
                self.first_contact
            ),
        }
    }
    fn describe_follow_up(&self) -> String {
        match self.follow_up_end {
            Some(e) => format!(
                "between the episode's first contact ({}) and {} months after it closed ({e})",
                self.first_contact, self.follow_up_months
            ),
            None => format!(
                "on or after the episode's first contact ({})",
                self.first_contact
            ),
        }
    }
    fn within(&self, d: NaiveDate) -> bool {
        d >= self.first_contact && self.closed.is_none_or(|c| d <= c)
    }
    fn within_follow_up(&self, d: NaiveDate) -> bool {
        d >= self.first_contact && self.follow_up_end.is_none_or(|e| d <= e)
    }
}

/// Checks every cross-record rule for one client's records.
pub fn check_client(b: &ClientBundle, s: &RuleSettings) -> Vec<Violation> {
    let mut c = Checker { out: Vec::new() };
    let dob = b.client.date_of_birth;
    let referrals: HashMap<&str, &Referral> = b
        .referrals
        .iter()
        .map(|r| (r.referral_ref.as_str(), r))
        .collect();

    for r in &b.referrals {
        let age = age_on(dob, r.received_on);
        if r.received_on < dob {
            c.fail(
                Entity::Referral,
                &r.referral_ref,
                "received_on",
                r.received_on,
                format!("the referral is dated before the client's date of birth ({dob})"),
            );
        } else if age < s.min_age || age > s.max_age {
            c.fail(Entity::Referral, &r.referral_ref, "received_on", r.received_on, format!(
                "the client was {age} on the referral date; clients must be aged {} to {} (date of birth {dob})",
                s.min_age, s.max_age
            ));
        }
    }

    let mut episodes_by_referral: HashMap<&str, &str> = HashMap::new();
    let mut open: Vec<&Episode> = Vec::new();
    let mut windows: HashMap<&str, (Window, &Episode)> = HashMap::new();
    for e in &b.episodes {
        if let Some(first) = episodes_by_referral.insert(&e.referral_ref, &e.episode_ref) {
            c.fail(Entity::Episode, &e.episode_ref, "referral_ref", &e.referral_ref, format!(
                "referral {} already led to episode {first}; a referral leads to at most one episode",
                e.referral_ref
            ));
        }
        if let Some(r) = referrals.get(e.referral_ref.as_str())
            && e.first_contact_on < r.received_on
        {
            c.fail(
                Entity::Episode,
                &e.episode_ref,
                "first_contact_on",
                e.first_contact_on,
                format!(
                    "the first contact is before the referral was received ({})",
                    r.received_on
                ),
            );
        }
        if e.closed_on.is_none() {
            open.push(e);
        }
        let follow_up_end = e.closed_on.map(|d| {
            d.checked_add_months(Months::new(s.follow_up_months))
                .unwrap_or(d)
        });
        windows.insert(
            &e.episode_ref,
            (
                Window {
                    follow_up_months: s.follow_up_months,
                    first_contact: e.first_contact_on,
                    closed: e.closed_on,
                    follow_up_end,
                },
                e,
            ),
        );
    }
    if open.len() > 1 {
        open.sort_by_key(|e| (e.first_contact_on, e.episode_ref.clone()));
        let first = open[0];
        for e in &open[1..] {
            c.fail(
                Entity::Episode,
                &e.episode_ref,
                "closed_on",
                "",
                format!(
                    "the client already has an open episode ({}); close it before opening another",
                    first.episode_ref
                ),
            );
        }
    }

    // Sessions.
    let mut attended: HashMap<&str, usize> = HashMap::new();
    for x in &b.sessions {
        let Some((w, _)) = windows.get(x.episode_ref.as_str()) else {
            continue;
        };
        if x.attended == Attendance::Yes {
            *attended.entry(&x.episode_ref).or_default() += 1;
        }
        let follow_up = x.purpose == SessionPurpose::FollowUp;
        let ok = if follow_up {
            w.within_follow_up(x.held_on)
        } else {
            w.within(x.held_on)
        };
        if !ok {
            let range = if follow_up {
                w.describe_follow_up()
            } else {
                w.describe_in()
            };
            let extra = if !follow_up && w.closed.is_some_and(|c| x.held_on > c) {
                "; only sessions with purpose follow_up may fall after the episode closed"
            } else {
                ""
            };
            c.fail(
                Entity::Session,
                &x.session_ref,
                "held_on",
                x.held_on,
                format!("the session must be held {range}{extra}"),
            );
        }
    }

    // Assessments.
    let mut baselines: HashMap<&str, &Assessment> = HashMap::new();
    let mut exits: Vec<&Assessment> = Vec::new();
    for a in &b.assessments {
        let Some((w, _)) = windows.get(a.episode_ref.as_str()) else {
            continue;
        };
        match a.occasion {
            Occasion::FollowUp => {
                if !w.within_follow_up(a.assessed_on) {
                    c.fail(
                        Entity::Assessment,
                        &a.assessment_ref,
                        "assessed_on",
                        a.assessed_on,
                        format!(
                            "a follow-up assessment must be dated {}",
                            w.describe_follow_up()
                        ),
                    );
                }
            }
            occ => {
                if !w.within(a.assessed_on) {
                    c.fail(
                        Entity::Assessment,
                        &a.assessment_ref,
                        "assessed_on",
                        a.assessed_on,
                        format!("a {occ} assessment must be dated {}", w.describe_in()),
                    );
                }
                if occ == Occasion::Baseline {
                    if let Some(other) = baselines.insert(&a.episode_ref, a) {
                        c.fail(Entity::Assessment, &a.assessment_ref, "occasion", "baseline", format!(
                            "episode {} already has a baseline assessment ({}); an episode has one baseline",
                            a.episode_ref, other.assessment_ref
                        ));
                    }
                } else {
                    exits.push(a);
                }
            }
        }
    }
    let mut exit_seen: HashMap<&str, &str> = HashMap::new();
    for a in exits {
        if let Some(other) = exit_seen.insert(&a.episode_ref, &a.assessment_ref) {
            c.fail(Entity::Assessment, &a.assessment_ref, "occasion", "exit", format!(
                "episode {} already has an exit assessment ({other}); an episode has one exit assessment",
                a.episode_ref
            ));
        }
        match baselines.get(a.episode_ref.as_str()) {
            None => c.fail(Entity::Assessment, &a.assessment_ref, "occasion", "exit", format!(
                "an exit assessment needs a baseline assessment in the same episode ({}), and there is none",
                a.episode_ref
            )),
            Some(base) if a.assessed_on < base.assessed_on => c.fail(Entity::Assessment, &a.assessment_ref,
                "assessed_on", a.assessed_on, format!(
                    "the exit assessment is dated before the baseline ({})", base.assessed_on)),
            Some(_) => {}
        }
    }

    // Plans and goals.
    let mut plan_episode: HashMap<&str, &str> = HashMap::new();
    for p in &b.plans {
        plan_episode.insert(&p.plan_ref, &p.episode_ref);
        let Some((w, e)) = windows.get(p.episode_ref.as_str()) else {
            continue;
        };
        if e.kind == EpisodeKind::Brief {
            c.fail(
                Entity::Plan,
                &p.plan_ref,
                "episode_ref",
                &p.episode_ref,
                format!(
                    "episode {} is a brief contact, which has no plan; a plan needs a full episode",
                    p.episode_ref
                ),
            );
        }
        if !w.within(p.agreed_on) {
            c.fail(
                Entity::Plan,
                &p.plan_ref,
                "agreed_on",
                p.agreed_on,
                format!("the plan must be agreed {}", w.describe_in()),
            );
        }
    }
    let mut finalised_goals: HashMap<&str, usize> = HashMap::new();
    for g in &b.goals {
        let Some(ep) = plan_episode.get(g.plan_ref.as_str()) else {
            continue;
        };
        let Some((w, _)) = windows.get(ep) else {
            continue;
        };
        if g.status != GoalStatus::Open {
            *finalised_goals.entry(ep).or_default() += 1;
            if let Some(d) = g.status_on
                && !w.within_follow_up(d)
            {
                c.fail(
                    Entity::Goal,
                    &g.goal_ref,
                    "status_on",
                    d,
                    format!("the goal's status date must be {}", w.describe_follow_up()),
                );
            }
        }
    }

    // Onward referrals and wider issues fall in the episode or its follow-up window.
    for o in &b.onward_referrals {
        if let Some((w, _)) = windows.get(o.episode_ref.as_str())
            && !w.within_follow_up(o.made_on)
        {
            c.fail(
                Entity::OnwardReferral,
                &o.onward_ref,
                "made_on",
                o.made_on,
                format!(
                    "the onward referral must be dated {}",
                    w.describe_follow_up()
                ),
            );
        }
    }
    for x in &b.wider_issues {
        if let Some((w, _)) = windows.get(x.episode_ref.as_str())
            && !w.within_follow_up(x.noted_on)
        {
            c.fail(
                Entity::WiderIssue,
                &x.wider_issue_ref,
                "noted_on",
                x.noted_on,
                format!("the wider issue must be noted {}", w.describe_follow_up()),
            );
        }
    }

    // Episode-level rules that need the children.
    for e in &b.episodes {
        if e.kind == EpisodeKind::Brief {
            let n = attended.get(e.episode_ref.as_str()).copied().unwrap_or(0);
            if n > 1 {
                c.fail(
                    Entity::Episode,
                    &e.episode_ref,
                    "kind",
                    "brief",
                    format!(
                        "a brief episode has at most one attended session, and this one has {n}; \
                     for one-to-one work, close it and open a full episode from a new referral"
                    ),
                );
            }
        }
        if e.kind == EpisodeKind::Full
            && e.exit_reason == Some(ExitReason::Completed)
            && finalised_goals
                .get(e.episode_ref.as_str())
                .copied()
                .unwrap_or(0)
                == 0
        {
            c.fail(
                Entity::Episode,
                &e.episode_ref,
                "exit_reason",
                "completed",
                "a full episode can only be completed when at least one goal has a final status \
                 (achieved, partly achieved, not achieved or abandoned)"
                    .to_string(),
            );
        }
    }
    c.out
}

/// A BMI worked out for an assessment, with whether it falls outside 10–90.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedBmi {
    pub assessment_ref: String,
    pub bmi: Option<f64>,
    pub flagged: bool,
}

/// Body mass index from a weight in kilograms and a height in centimetres, rounded to one
/// decimal place (the one formula the import, the pages and the reports use).
pub fn bmi(weight_kg: f64, height_cm: f64) -> f64 {
    (weight_kg / (height_cm / 100.0).powi(2) * 10.0).round() / 10.0
}

/// BMI for each assessment with a weight: the weight over the square of the client's
/// latest height recorded on or before the assessment (its own height first when both
/// fall on the same day), rounded to one decimal place.
pub fn derive_bmi(b: &ClientBundle) -> Vec<DerivedBmi> {
    let mut heights: Vec<(NaiveDate, bool, crate::measure::HeightCm)> = Vec::new();
    b.assessments
        .iter()
        .map(|a| {
            let height = a.height_cm.or_else(|| {
                heights.clear();
                heights.extend(b.assessments.iter().filter_map(|o| {
                    o.height_cm
                        .filter(|_| o.assessed_on <= a.assessed_on)
                        .map(|h| (o.assessed_on, o.assessment_ref == a.assessment_ref, h))
                }));
                heights
                    .iter()
                    .copied()
                    .max_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)))
                    .map(|(_, _, h)| h)
            });
            let bmi = match (a.weight_kg, height) {
                (Some(w), Some(h)) => Some(bmi(w.get(), h.get())),
                _ => None,
            };
            DerivedBmi {
                assessment_ref: a.assessment_ref.clone(),
                bmi,
                flagged: bmi.is_some_and(|x| !(10.0..=90.0).contains(&x)),
            }
        })
        .collect()
}

/// One row per episode, kept up to date on every write, from which reports count.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeSummary {
    pub episode_ref: String,
    pub client_ref: String,
    pub referral_ref: String,
    pub referral_received_on: NaiveDate,
    pub source_group: SourceGroup,
    pub kind: EpisodeKind,
    pub first_contact_on: NaiveDate,
    pub closed_on: Option<NaiveDate>,
    pub exit_reason: Option<ExitReason>,
    pub baseline_on: Option<NaiveDate>,
    pub exit_on: Option<NaiveDate>,
    pub plan_agreed_on: Option<NaiveDate>,
    pub goals: i64,
    pub goals_final: i64,
    pub goals_fully: i64,
    pub goals_partly: i64,
    pub sessions_attended: i64,
    pub sessions_dna: i64,
    pub sessions_telephone: i64,
    pub sessions_face_to_face: i64,
    pub sessions_clinical_venue: i64,
    pub review_sessions: i64,
    pub last_attended_on: Option<NaiveDate>,
    pub wider_issues: i64,
    pub onward_referrals: i64,
}

impl EpisodeSummary {
    /// Column names of the stored summary, in the order of [`EpisodeSummary::values`].
    pub const COLUMNS: [&'static str; 24] = [
        "client_ref",
        "referral_ref",
        "referral_received_on",
        "source_group",
        "kind",
        "first_contact_on",
        "closed_on",
        "exit_reason",
        "baseline_on",
        "exit_on",
        "plan_agreed_on",
        "goals",
        "goals_final",
        "goals_fully",
        "goals_partly",
        "sessions_attended",
        "sessions_dna",
        "sessions_telephone",
        "sessions_face_to_face",
        "sessions_clinical_venue",
        "review_sessions",
        "last_attended_on",
        "wider_issues",
        "onward_referrals",
    ];

    /// The stored values.
    pub fn values(&self) -> Vec<Value> {
        let d = |x: Option<NaiveDate>| x.map_or(Value::Null, |d| Value::Text(d.to_string()));
        vec![
            Value::Text(self.client_ref.clone()),
            Value::Text(self.referral_ref.clone()),
            Value::Text(self.referral_received_on.to_string()),
            Value::Text(self.source_group.code().into()),
            Value::Text(self.kind.code().into()),
            Value::Text(self.first_contact_on.to_string()),
            d(self.closed_on),
            self.exit_reason
                .map_or(Value::Null, |r| Value::Text(r.code().into())),
            d(self.baseline_on),
            d(self.exit_on),
            d(self.plan_agreed_on),
            Value::Int(self.goals),
            Value::Int(self.goals_final),
            Value::Int(self.goals_fully),
            Value::Int(self.goals_partly),
            Value::Int(self.sessions_attended),
            Value::Int(self.sessions_dna),
            Value::Int(self.sessions_telephone),
            Value::Int(self.sessions_face_to_face),
            Value::Int(self.sessions_clinical_venue),
            Value::Int(self.review_sessions),
            d(self.last_attended_on),
            Value::Int(self.wider_issues),
            Value::Int(self.onward_referrals),
        ]
    }
}

/// The summary of each episode of a client whose referral is present.
pub fn summarise_episodes(b: &ClientBundle) -> Vec<EpisodeSummary> {
    let referrals: HashMap<&str, &Referral> = b
        .referrals
        .iter()
        .map(|r| (r.referral_ref.as_str(), r))
        .collect();
    b.episodes
        .iter()
        .filter_map(|e| {
            let r = referrals.get(e.referral_ref.as_str())?;
            let ep = e.episode_ref.as_str();
            let occasion_on = |occ| {
                b.assessments
                    .iter()
                    .filter(|a| a.episode_ref == ep && a.occasion == occ)
                    .map(|a| a.assessed_on)
                    .min()
            };
            let plans: Vec<&Plan> = b.plans.iter().filter(|p| p.episode_ref == ep).collect();
            let goals: Vec<&Goal> = b
                .goals
                .iter()
                .filter(|g| plans.iter().any(|p| p.plan_ref == g.plan_ref))
                .collect();
            let sessions: Vec<&Session> =
                b.sessions.iter().filter(|s| s.episode_ref == ep).collect();
            let attended: Vec<&&Session> = sessions
                .iter()
                .filter(|s| s.attended == Attendance::Yes)
                .collect();
            let count = |n: usize| n as i64;
            Some(EpisodeSummary {
                episode_ref: e.episode_ref.clone(),
                client_ref: b.client.client_ref.clone(),
                referral_ref: r.referral_ref.clone(),
                referral_received_on: r.received_on,
                source_group: r.source.group(),
                kind: e.kind,
                first_contact_on: e.first_contact_on,
                closed_on: e.closed_on,
                exit_reason: e.exit_reason,
                baseline_on: occasion_on(Occasion::Baseline),
                exit_on: occasion_on(Occasion::Exit),
                plan_agreed_on: plans.iter().map(|p| p.agreed_on).min(),
                goals: count(goals.len()),
                goals_final: count(
                    goals
                        .iter()
                        .filter(|g| g.status != GoalStatus::Open)
                        .count(),
                ),
                goals_fully: count(
                    goals
                        .iter()
                        .filter(|g| g.status == GoalStatus::FullyAchieved)
                        .count(),
                ),
                goals_partly: count(
                    goals
                        .iter()
                        .filter(|g| g.status == GoalStatus::PartlyAchieved)
                        .count(),
                ),
                sessions_attended: count(attended.len()),
                sessions_dna: count(
                    sessions
                        .iter()
                        .filter(|s| s.attended == Attendance::DidNotAttend)
                        .count(),
                ),
                sessions_telephone: count(
                    attended
                        .iter()
                        .filter(|s| s.mode == SessionMode::Telephone)
                        .count(),
                ),
                sessions_face_to_face: count(
                    attended
                        .iter()
                        .filter(|s| s.mode == SessionMode::FaceToFace)
                        .count(),
                ),
                sessions_clinical_venue: count(
                    attended
                        .iter()
                        .filter(|s| {
                            s.mode == SessionMode::FaceToFace
                                && matches!(
                                    s.venue,
                                    Venue::GpPractice | Venue::HealthCentre | Venue::Pharmacy
                                )
                        })
                        .count(),
                ),
                review_sessions: count(
                    attended
                        .iter()
                        .filter(|s| s.purpose == SessionPurpose::Review)
                        .count(),
                ),
                last_attended_on: attended.iter().map(|s| s.held_on).max(),
                wider_issues: count(
                    b.wider_issues
                        .iter()
                        .filter(|w| w.episode_ref == ep)
                        .count(),
                ),
                onward_referrals: count(
                    b.onward_referrals
                        .iter()
                        .filter(|o| o.episode_ref == ep)
                        .count(),
                ),
            })
        })
        .collect()
}
