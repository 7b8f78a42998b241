//! The entities of the dataset (dataset.md): their fields in the order of the file
//! format, the typed record of each, and how a record is read from text and turned
//! into stored values. Single-record rules (a closed episode has an exit reason,
//! cigarettes only for current smokers…) live here; rules across records are in
//! [`crate::rules`].

use crate::codes::*;
use crate::field::{FieldError, FieldSource, Reader};
use crate::measure::*;
use crate::types::{LadCode, LsoaCode, NhsNumber, Postcode};
use chrono::NaiveDate;

/// The kinds of record, in the order they are imported (parents before children).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    /// A commissioning or referring organisation.
    Organisation,
    /// A local health trainer service.
    Service,
    /// A dated configuration of a service's commissioned model.
    ServiceConfiguration,
    /// A health trainer or other worker.
    Worker,
    /// A client.
    Client,
    /// A referral to the service.
    Referral,
    /// A period of support.
    Episode,
    /// A measurement occasion.
    Assessment,
    /// A Personal Health Plan.
    Plan,
    /// A goal in a plan.
    Goal,
    /// A contact.
    Session,
    /// Signposting or an onward referral.
    OnwardReferral,
    /// A wider issue in the client's life.
    WiderIssue,
}

/// How a field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// The record's own external reference.
    OwnRef,
    /// The `service_ref` of a tenant record.
    ServiceRef,
    /// A reference to another record (resolved within the service for tenant records).
    Ref(Entity),
    /// Text: free text, codes, dates, `;` lists.
    Text,
    /// A whole number.
    Int,
    /// A number with a fraction.
    Real,
}

/// A field of an entity: its CSV column name and how it is stored.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Column name in files and in the database.
    pub name: &'static str,
    /// How it is stored.
    pub kind: FieldKind,
}

const fn f(name: &'static str, kind: FieldKind) -> Field {
    Field { name, kind }
}

use FieldKind::{Int, OwnRef, Real, Ref, ServiceRef, Text};

const ORGANISATION: &[Field] = &[
    f("org_ref", OwnRef),
    f("name", Text),
    f("kind", Text),
    f("ods_code", Text),
];
const SERVICE: &[Field] = &[
    f("service_ref", OwnRef),
    f("name", Text),
    f("commissioner_org_ref", Ref(Entity::Organisation)),
    f("areas_served", Text),
    f("started_on", Text),
    f("ended_on", Text),
];
const SERVICE_CONFIGURATION: &[Field] = &[
    f("configuration_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("effective_from", Text),
    f("provider_model", Text),
    f("funding", Text),
    f("senior_buy_in", Text),
    f("primary_referral_routes", Text),
    f("worker_profile", Text),
    f("targeting", Text),
    f("target_lsoas", Text),
    f("formal_performance_management", Text),
    f("interaction_model", Text),
    f("notes", Text),
];
const WORKER: &[Field] = &[
    f("worker_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("display_name", Text),
    f("role", Text),
    f("sex", Text),
    f("age_band", Text),
    f("lives_in_area_served", Text),
    f("home_imd_quintile", Int),
    f("qualification", Text),
    f("started_on", Text),
    f("left_on", Text),
    f("fte", Real),
];
const CLIENT: &[Field] = &[
    f("client_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("given_name", Text),
    f("family_name", Text),
    f("nhs_number", Text),
    f("date_of_birth", Text),
    f("sex", Text),
    f("ethnicity", Text),
    f("postcode", Text),
    f("gp_registered", Text),
    f("gp_practice_code", Text),
    f("employment", Text),
    f("disability", Text),
    f("consent_to_record", Text),
    f("consent_to_share_with_gp", Text),
];
const REFERRAL: &[Field] = &[
    f("referral_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("client_ref", Ref(Entity::Client)),
    f("received_on", Text),
    f("source", Text),
    f("referrer_org_ref", Ref(Entity::Organisation)),
    f("reason", Text),
];
const EPISODE: &[Field] = &[
    f("episode_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("referral_ref", Ref(Entity::Referral)),
    f("lead_worker_ref", Ref(Entity::Worker)),
    f("kind", Text),
    f("first_contact_on", Text),
    f("primary_issue", Text),
    f("closed_on", Text),
    f("exit_reason", Text),
];
const ASSESSMENT: &[Field] = &[
    f("assessment_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("episode_ref", Ref(Entity::Episode)),
    f("occasion", Text),
    f("assessed_on", Text),
    f("height_cm", Real),
    f("weight_kg", Real),
    f("waist_cm", Real),
    f("fruit_veg_portions_per_day", Real),
    f("high_fat_snacks_per_day", Real),
    f("active_days_per_week", Int),
    f("alcohol_units_per_week", Real),
    f("smoking_status", Text),
    f("cigarettes_per_day", Int),
    f("self_efficacy", Int),
    f("general_health", Int),
    f("swemwbs_raw", Int),
];
const PLAN: &[Field] = &[
    f("plan_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("episode_ref", Ref(Entity::Episode)),
    f("agreed_on", Text),
];
const GOAL: &[Field] = &[
    f("goal_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("plan_ref", Ref(Entity::Plan)),
    f("domain", Text),
    f("description", Text),
    f("target_on", Text),
    f("status", Text),
    f("status_on", Text),
];
const SESSION: &[Field] = &[
    f("session_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("episode_ref", Ref(Entity::Episode)),
    f("worker_ref", Ref(Entity::Worker)),
    f("held_on", Text),
    f("duration_min", Int),
    f("mode", Text),
    f("venue", Text),
    f("purpose", Text),
    f("attended", Text),
];
const ONWARD_REFERRAL: &[Field] = &[
    f("onward_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("episode_ref", Ref(Entity::Episode)),
    f("made_on", Text),
    f("action", Text),
    f("destination", Text),
    f("outcome", Text),
];
const WIDER_ISSUE: &[Field] = &[
    f("wider_issue_ref", OwnRef),
    f("service_ref", ServiceRef),
    f("episode_ref", Ref(Entity::Episode)),
    f("noted_on", Text),
    f("issue", Text),
];

impl Entity {
    /// Every entity, parents before children.
    pub const ALL: [Entity; 13] = [
        Entity::Organisation,
        Entity::Service,
        Entity::ServiceConfiguration,
        Entity::Worker,
        Entity::Client,
        Entity::Referral,
        Entity::Episode,
        Entity::Assessment,
        Entity::Plan,
        Entity::Goal,
        Entity::Session,
        Entity::OnwardReferral,
        Entity::WiderIssue,
    ];

    /// The fields, in file order.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Entity::Organisation => ORGANISATION,
            Entity::Service => SERVICE,
            Entity::ServiceConfiguration => SERVICE_CONFIGURATION,
            Entity::Worker => WORKER,
            Entity::Client => CLIENT,
            Entity::Referral => REFERRAL,
            Entity::Episode => EPISODE,
            Entity::Assessment => ASSESSMENT,
            Entity::Plan => PLAN,
            Entity::Goal => GOAL,
            Entity::Session => SESSION,
            Entity::OnwardReferral => ONWARD_REFERRAL,
            Entity::WiderIssue => WIDER_ISSUE,
        }
    }

    /// The import/export file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Entity::Organisation => "organisations.csv",
            Entity::Service => "services.csv",
            Entity::ServiceConfiguration => "service_configurations.csv",
            Entity::Worker => "workers.csv",
            Entity::Client => "clients.csv",
            Entity::Referral => "referrals.csv",
            Entity::Episode => "episodes.csv",
            Entity::Assessment => "assessments.csv",
            Entity::Plan => "plans.csv",
            Entity::Goal => "goals.csv",
            Entity::Session => "sessions.csv",
            Entity::OnwardReferral => "onward_referrals.csv",
            Entity::WiderIssue => "wider_issues.csv",
        }
    }

    /// A word for the record in messages ("client", "onward referral").
    pub fn label(self) -> &'static str {
        match self {
            Entity::Organisation => "organisation",
            Entity::Service => "service",
            Entity::ServiceConfiguration => "service configuration",
            Entity::Worker => "worker",
            Entity::Client => "client",
            Entity::Referral => "referral",
            Entity::Episode => "episode",
            Entity::Assessment => "assessment",
            Entity::Plan => "plan",
            Entity::Goal => "goal",
            Entity::Session => "session",
            Entity::OnwardReferral => "onward referral",
            Entity::WiderIssue => "wider issue",
        }
    }

    /// The name of the record's own reference field.
    pub fn ref_field(self) -> &'static str {
        self.fields()[0].name
    }

    /// Whether the record belongs to one service (everything but organisations and services).
    pub fn is_tenant(self) -> bool {
        !matches!(self, Entity::Organisation | Entity::Service)
    }

    /// The fields whose values are stored as they are (not references).
    pub fn value_fields(self) -> impl Iterator<Item = &'static Field> {
        self.fields()
            .iter()
            .filter(|f| matches!(f.kind, Text | Int | Real))
    }

    /// The fields that refer to other records.
    pub fn ref_fields(self) -> impl Iterator<Item = (&'static Field, Entity)> {
        self.fields().iter().filter_map(|f| match f.kind {
            Ref(e) => Some((f, e)),
            _ => None,
        })
    }
}

/// A stored scalar value, the same on every database backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Blank.
    Null,
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Real(f64),
    /// Text.
    Text(String),
}

impl Value {
    /// The value as written in the file format (blank for null; numbers in their
    /// shortest exact form, so a value always writes the same way).
    pub fn to_field_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Int(i) => i.to_string(),
            Value::Real(x) => x.to_string(),
            Value::Text(s) => s.clone(),
        }
    }
}

fn text(s: impl AsRef<str>) -> Value {
    Value::Text(s.as_ref().to_string())
}
fn opt_text<S: AsRef<str>>(s: &Option<S>) -> Value {
    s.as_ref().map_or(Value::Null, text)
}
fn code<C: CodeList>(c: C) -> Value {
    text(c.as_code())
}
fn opt_code<C: CodeList>(c: Option<C>) -> Value {
    c.map_or(Value::Null, code)
}
fn date(d: NaiveDate) -> Value {
    text(d.to_string())
}
fn opt_date(d: Option<NaiveDate>) -> Value {
    d.map_or(Value::Null, date)
}
fn opt_measure<M: Ranged>(x: Option<M>) -> Value {
    x.map_or(Value::Null, M::to_value)
}
fn join<T>(items: &[T], f: impl Fn(&T) -> &str) -> String {
    items.iter().map(f).collect::<Vec<_>>().join(";")
}

/// An organisation (shared by all services).
#[derive(Debug, Clone, PartialEq)]
pub struct Organisation {
    pub org_ref: String,
    pub name: String,
    pub kind: OrgKind,
    pub ods_code: Option<String>,
}

/// A local health trainer service.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub service_ref: String,
    pub name: String,
    pub commissioner_org_ref: String,
    pub areas_served: Vec<LadCode>,
    pub started_on: NaiveDate,
    pub ended_on: Option<NaiveDate>,
}

/// The commissioned model of a service from a date.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfiguration {
    pub configuration_ref: String,
    pub service_ref: String,
    pub effective_from: NaiveDate,
    pub provider_model: ProviderModel,
    pub funding: Funding,
    pub senior_buy_in: SeniorBuyIn,
    pub primary_referral_routes: Vec<ReferralSource>,
    pub worker_profile: WorkerProfile,
    pub targeting: Targeting,
    pub target_lsoas: Vec<LsoaCode>,
    pub formal_performance_management: YesNo,
    pub interaction_model: InteractionModel,
    pub notes: Option<String>,
}

/// A worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    pub worker_ref: String,
    pub service_ref: String,
    pub display_name: String,
    pub role: WorkerRole,
    pub sex: Sex,
    pub age_band: AgeBand,
    pub lives_in_area_served: YesNoUnknown,
    pub home_imd_quintile: Option<ImdQuintile>,
    pub qualification: Qualification,
    pub started_on: NaiveDate,
    pub left_on: Option<NaiveDate>,
    pub fte: Fte,
}

/// A client.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub client_ref: String,
    pub service_ref: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub nhs_number: Option<NhsNumber>,
    pub date_of_birth: NaiveDate,
    pub sex: Sex,
    pub ethnicity: Ethnicity,
    pub postcode: Option<Postcode>,
    pub gp_registered: YesNoUnknown,
    pub gp_practice_code: Option<String>,
    pub employment: Employment,
    pub disability: YesNoNotStated,
    pub consent_to_record: YesNo,
    pub consent_to_share_with_gp: YesNo,
}

/// A referral.
#[derive(Debug, Clone, PartialEq)]
pub struct Referral {
    pub referral_ref: String,
    pub service_ref: String,
    pub client_ref: String,
    pub received_on: NaiveDate,
    pub source: ReferralSource,
    pub referrer_org_ref: Option<String>,
    pub reason: Option<String>,
}

/// An episode of support.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub episode_ref: String,
    pub service_ref: String,
    pub referral_ref: String,
    pub lead_worker_ref: String,
    pub kind: EpisodeKind,
    pub first_contact_on: NaiveDate,
    pub primary_issue: PrimaryIssue,
    pub closed_on: Option<NaiveDate>,
    pub exit_reason: Option<ExitReason>,
}

/// A measurement occasion.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub assessment_ref: String,
    pub service_ref: String,
    pub episode_ref: String,
    pub occasion: Occasion,
    pub assessed_on: NaiveDate,
    pub height_cm: Option<HeightCm>,
    pub weight_kg: Option<WeightKg>,
    pub waist_cm: Option<WaistCm>,
    pub fruit_veg_portions_per_day: Option<PortionsPerDay>,
    pub high_fat_snacks_per_day: Option<SnacksPerDay>,
    pub active_days_per_week: Option<ActiveDays>,
    pub alcohol_units_per_week: Option<AlcoholUnits>,
    pub smoking_status: Option<SmokingStatus>,
    pub cigarettes_per_day: Option<CigarettesPerDay>,
    pub self_efficacy: Option<SelfEfficacy>,
    pub general_health: Option<GeneralHealth>,
    pub swemwbs_raw: Option<SwemwbsRaw>,
}

/// A Personal Health Plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub plan_ref: String,
    pub service_ref: String,
    pub episode_ref: String,
    pub agreed_on: NaiveDate,
}

/// A goal of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub goal_ref: String,
    pub service_ref: String,
    pub plan_ref: String,
    pub domain: GoalDomain,
    pub description: String,
    pub target_on: Option<NaiveDate>,
    pub status: GoalStatus,
    pub status_on: Option<NaiveDate>,
}

/// A session (contact).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub session_ref: String,
    pub service_ref: String,
    pub episode_ref: String,
    pub worker_ref: String,
    pub held_on: NaiveDate,
    pub duration_min: DurationMin,
    pub mode: SessionMode,
    pub venue: Venue,
    pub purpose: SessionPurpose,
    pub attended: Attendance,
}

/// Signposting or an onward referral.
#[derive(Debug, Clone, PartialEq)]
pub struct OnwardReferral {
    pub onward_ref: String,
    pub service_ref: String,
    pub episode_ref: String,
    pub made_on: NaiveDate,
    pub action: OnwardAction,
    pub destination: OnwardDestination,
    pub outcome: OnwardOutcome,
}

/// A wider issue noted during an episode.
#[derive(Debug, Clone, PartialEq)]
pub struct WiderIssue {
    pub wider_issue_ref: String,
    pub service_ref: String,
    pub episode_ref: String,
    pub noted_on: NaiveDate,
    pub issue: WiderIssueKind,
}

/// Any record of the dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Organisation(Organisation),
    Service(Service),
    ServiceConfiguration(ServiceConfiguration),
    Worker(Worker),
    Client(Client),
    Referral(Referral),
    Episode(Episode),
    Assessment(Assessment),
    Plan(Plan),
    Goal(Goal),
    Session(Session),
    OnwardReferral(OnwardReferral),
    WiderIssue(WiderIssue),
}

/// Reads one record of `entity` from text fields; `today` is the latest date an event
/// may carry. Every field problem is returned, not just the first.
pub fn parse_record(
    entity: Entity,
    src: &dyn FieldSource,
    today: NaiveDate,
) -> Result<Record, Vec<FieldError>> {
    let mut r = Reader::new(src, today);
    let r = &mut r;
    match entity {
        Entity::Organisation => {
            let org_ref = r.reference("org_ref");
            let name = r.required_text("name");
            let kind = r.code("kind");
            let ods_code = r.text("ods_code");
            take(r, src, today).finish(|| {
                Record::Organisation(Organisation {
                    org_ref,
                    name,
                    kind: kind.unwrap(),
                    ods_code,
                })
            })
        }
        Entity::Service => {
            let service_ref = r.reference("service_ref");
            let name = r.required_text("name");
            let commissioner_org_ref = r.reference("commissioner_org_ref");
            let areas_served = r.list("areas_served", true, LadCode::parse);
            let started_on = r.date("started_on");
            let ended_on = r.opt_planned_date("ended_on");
            if let (Some(s), Some(e)) = (started_on, ended_on)
                && e < s
            {
                r.fail(
                    "ended_on",
                    e.to_string(),
                    format!("a service cannot end before it started ({s})"),
                );
            }
            take(r, src, today).finish(|| {
                Record::Service(Service {
                    service_ref,
                    name,
                    commissioner_org_ref,
                    areas_served,
                    started_on: started_on.unwrap(),
                    ended_on,
                })
            })
        }
        Entity::ServiceConfiguration => {
            let configuration_ref = r.reference("configuration_ref");
            let service_ref = r.reference("service_ref");
            let effective_from = r.date("effective_from");
            let provider_model = r.code("provider_model");
            let funding = r.code("funding");
            let senior_buy_in = r.code("senior_buy_in");
            let primary_referral_routes = r.codes("primary_referral_routes");
            let worker_profile = r.code("worker_profile");
            let targeting = r.code("targeting");
            let target_lsoas = r.list("target_lsoas", false, LsoaCode::parse);
            match targeting {
                Some(Targeting::DeprivedAreasLocal) if r.raw("target_lsoas").is_empty() => r.fail(
                    "target_lsoas",
                    "",
                    "targeting is deprived_areas_local, so the target LSOAs must be listed (separated by ';')",
                ),
                Some(t) if t != Targeting::DeprivedAreasLocal && !target_lsoas.is_empty() => r.fail(
                    "target_lsoas",
                    r.raw("target_lsoas").to_string(),
                    format!("target LSOAs are only given when targeting is deprived_areas_local, not {t}"),
                ),
                _ => {}
            }
            let formal_performance_management = r.code("formal_performance_management");
            let interaction_model = r.code("interaction_model");
            let notes = r.text("notes");
            take(r, src, today).finish(|| {
                Record::ServiceConfiguration(ServiceConfiguration {
                    configuration_ref,
                    service_ref,
                    effective_from: effective_from.unwrap(),
                    provider_model: provider_model.unwrap(),
                    funding: funding.unwrap(),
                    senior_buy_in: senior_buy_in.unwrap(),
                    primary_referral_routes,
                    worker_profile: worker_profile.unwrap(),
                    targeting: targeting.unwrap(),
                    target_lsoas,
                    formal_performance_management: formal_performance_management.unwrap(),
                    interaction_model: interaction_model.unwrap(),
                    notes,
                })
            })
        }
        Entity::Worker => {
            let worker_ref = r.reference("worker_ref");
            let service_ref = r.reference("service_ref");
            let display_name = r.required_text("display_name");
            let role = r.code("role");
            let sex = r.code("sex");
            let age_band = r.code("age_band");
            let lives_in_area_served = r.code("lives_in_area_served");
            let home_imd_quintile = r.measure::<ImdQuintile>("home_imd_quintile");
            let qualification = r.code("qualification");
            let started_on = r.date("started_on");
            let left_on = r.opt_planned_date("left_on");
            if let (Some(s), Some(l)) = (started_on, left_on)
                && l < s
            {
                r.fail(
                    "left_on",
                    l.to_string(),
                    format!("a worker cannot leave before they started ({s})"),
                );
            }
            let fte = r.required_measure::<Fte>("fte");
            take(r, src, today).finish(|| {
                Record::Worker(Worker {
                    worker_ref,
                    service_ref,
                    display_name,
                    role: role.unwrap(),
                    sex: sex.unwrap(),
                    age_band: age_band.unwrap(),
                    lives_in_area_served: lives_in_area_served.unwrap(),
                    home_imd_quintile,
                    qualification: qualification.unwrap(),
                    started_on: started_on.unwrap(),
                    left_on,
                    fte: fte.unwrap(),
                })
            })
        }
        Entity::Client => {
            let client_ref = r.reference("client_ref");
            let service_ref = r.reference("service_ref");
            let given_name = r.text("given_name");
            let family_name = r.text("family_name");
            let nhs_raw = r.raw("nhs_number");
            let nhs_number = if nhs_raw.is_empty() {
                None
            } else {
                NhsNumber::parse(nhs_raw)
                    .map_err(|e| r.fail("nhs_number", nhs_raw, e))
                    .ok()
            };
            let date_of_birth = r.date("date_of_birth");
            let sex = r.code("sex");
            let ethnicity = r.code("ethnicity");
            let pc_raw = r.raw("postcode");
            let postcode = if pc_raw.is_empty() {
                None
            } else {
                Postcode::parse(pc_raw)
                    .map_err(|e| r.fail("postcode", pc_raw, e))
                    .ok()
            };
            let gp_registered = r.code("gp_registered");
            let gp_practice_code = r.text("gp_practice_code").map(|s| s.to_ascii_uppercase());
            let employment = r.code("employment");
            let disability = r.code("disability");
            let consent_to_record = r.code("consent_to_record");
            if consent_to_record == Some(YesNo::No) {
                r.fail(
                    "consent_to_record",
                    "no",
                    "a client who has not agreed to their details being recorded must not be recorded",
                );
            }
            let consent_to_share_with_gp = r.code("consent_to_share_with_gp");
            take(r, src, today).finish(|| {
                Record::Client(Client {
                    client_ref,
                    service_ref,
                    given_name,
                    family_name,
                    nhs_number,
                    date_of_birth: date_of_birth.unwrap(),
                    sex: sex.unwrap(),
                    ethnicity: ethnicity.unwrap(),
                    postcode,
                    gp_registered: gp_registered.unwrap(),
                    gp_practice_code,
                    employment: employment.unwrap(),
                    disability: disability.unwrap(),
                    consent_to_record: consent_to_record.unwrap(),
                    consent_to_share_with_gp: consent_to_share_with_gp.unwrap(),
                })
            })
        }
        Entity::Referral => {
            let referral_ref = r.reference("referral_ref");
            let service_ref = r.reference("service_ref");
            let client_ref = r.reference("client_ref");
            let received_on = r.date("received_on");
            let source = r.code("source");
            let referrer_org_ref = r.opt_reference("referrer_org_ref");
            let reason = r.text("reason");
            take(r, src, today).finish(|| {
                Record::Referral(Referral {
                    referral_ref,
                    service_ref,
                    client_ref,
                    received_on: received_on.unwrap(),
                    source: source.unwrap(),
                    referrer_org_ref,
                    reason,
                })
            })
        }
        Entity::Episode => {
            let episode_ref = r.reference("episode_ref");
            let service_ref = r.reference("service_ref");
            let referral_ref = r.reference("referral_ref");
            let lead_worker_ref = r.reference("lead_worker_ref");
            let kind = r.code("kind");
            let first_contact_on = r.date("first_contact_on");
            let primary_issue = r.code("primary_issue");
            let closed_on = r.opt_date("closed_on");
            let exit_reason = r.opt_code::<ExitReason>("exit_reason");
            if closed_on.is_some() && exit_reason.is_none() && r.raw("exit_reason").is_empty() {
                r.fail("exit_reason", "", "a closed episode needs an exit reason");
            }
            if closed_on.is_none() && exit_reason.is_some() && r.raw("closed_on").is_empty() {
                r.fail(
                    "closed_on",
                    "",
                    "an exit reason is given, so the date the episode closed is needed too",
                );
            }
            if let (Some(f), Some(c)) = (first_contact_on, closed_on)
                && c < f
            {
                r.fail(
                    "closed_on",
                    c.to_string(),
                    format!("an episode cannot close before its first contact ({f})"),
                );
            }
            take(r, src, today).finish(|| {
                Record::Episode(Episode {
                    episode_ref,
                    service_ref,
                    referral_ref,
                    lead_worker_ref,
                    kind: kind.unwrap(),
                    first_contact_on: first_contact_on.unwrap(),
                    primary_issue: primary_issue.unwrap(),
                    closed_on,
                    exit_reason,
                })
            })
        }
        Entity::Assessment => {
            let assessment_ref = r.reference("assessment_ref");
            let service_ref = r.reference("service_ref");
            let episode_ref = r.reference("episode_ref");
            let occasion = r.code("occasion");
            let assessed_on = r.date("assessed_on");
            let height_cm = r.measure::<HeightCm>("height_cm");
            let weight_kg = r.measure::<WeightKg>("weight_kg");
            let waist_cm = r.measure::<WaistCm>("waist_cm");
            let fruit_veg_portions_per_day =
                r.measure::<PortionsPerDay>("fruit_veg_portions_per_day");
            let high_fat_snacks_per_day = r.measure::<SnacksPerDay>("high_fat_snacks_per_day");
            let active_days_per_week = r.measure::<ActiveDays>("active_days_per_week");
            let alcohol_units_per_week = r.measure::<AlcoholUnits>("alcohol_units_per_week");
            let smoking_status = r.opt_code::<SmokingStatus>("smoking_status");
            let cigarettes_per_day = r.measure::<CigarettesPerDay>("cigarettes_per_day");
            if cigarettes_per_day.is_some() && smoking_status != Some(SmokingStatus::Current) {
                r.fail(
                    "cigarettes_per_day",
                    r.raw("cigarettes_per_day").to_string(),
                    "cigarettes per day is only recorded when smoking status is current",
                );
            }
            let self_efficacy = r.measure::<SelfEfficacy>("self_efficacy");
            let general_health = r.measure::<GeneralHealth>("general_health");
            let swemwbs_raw = r.measure::<SwemwbsRaw>("swemwbs_raw");
            take(r, src, today).finish(|| {
                Record::Assessment(Assessment {
                    assessment_ref,
                    service_ref,
                    episode_ref,
                    occasion: occasion.unwrap(),
                    assessed_on: assessed_on.unwrap(),
                    height_cm,
                    weight_kg,
                    waist_cm,
                    fruit_veg_portions_per_day,
                    high_fat_snacks_per_day,
                    active_days_per_week,
                    alcohol_units_per_week,
                    smoking_status,
                    cigarettes_per_day,
                    self_efficacy,
                    general_health,
                    swemwbs_raw,
                })
            })
        }
        Entity::Plan => {
            let plan_ref = r.reference("plan_ref");
            let service_ref = r.reference("service_ref");
            let episode_ref = r.reference("episode_ref");
            let agreed_on = r.date("agreed_on");
            take(r, src, today).finish(|| {
                Record::Plan(Plan {
                    plan_ref,
                    service_ref,
                    episode_ref,
                    agreed_on: agreed_on.unwrap(),
                })
            })
        }
        Entity::Goal => {
            let goal_ref = r.reference("goal_ref");
            let service_ref = r.reference("service_ref");
            let plan_ref = r.reference("plan_ref");
            let domain = r.code("domain");
            let description = r.required_text("description");
            let target_on = r.opt_planned_date("target_on");
            let status = r.code("status");
            let status_on = r.opt_date("status_on");
            if matches!(status, Some(s) if s != GoalStatus::Open)
                && status_on.is_none()
                && r.raw("status_on").is_empty()
            {
                r.fail(
                    "status_on",
                    "",
                    "the goal has a final status, so the date it was reached (status_on) is needed",
                );
            }
            take(r, src, today).finish(|| {
                Record::Goal(Goal {
                    goal_ref,
                    service_ref,
                    plan_ref,
                    domain: domain.unwrap(),
                    description,
                    target_on,
                    status: status.unwrap(),
                    status_on,
                })
            })
        }
        Entity::Session => {
            let session_ref = r.reference("session_ref");
            let service_ref = r.reference("service_ref");
            let episode_ref = r.reference("episode_ref");
            let worker_ref = r.reference("worker_ref");
            let held_on = r.date("held_on");
            let duration_min = r.required_measure::<DurationMin>("duration_min");
            let mode = r.code("mode");
            let venue = r.code("venue");
            let purpose = r.code("purpose");
            let attended = r.code("attended");
            take(r, src, today).finish(|| {
                Record::Session(Session {
                    session_ref,
                    service_ref,
                    episode_ref,
                    worker_ref,
                    held_on: held_on.unwrap(),
                    duration_min: duration_min.unwrap(),
                    mode: mode.unwrap(),
                    venue: venue.unwrap(),
                    purpose: purpose.unwrap(),
                    attended: attended.unwrap(),
                })
            })
        }
        Entity::OnwardReferral => {
            let onward_ref = r.reference("onward_ref");
            let service_ref = r.reference("service_ref");
            let episode_ref = r.reference("episode_ref");
            let made_on = r.date("made_on");
            let action = r.code("action");
            let destination = r.code("destination");
            let outcome = r.code("outcome");
            take(r, src, today).finish(|| {
                Record::OnwardReferral(OnwardReferral {
                    onward_ref,
                    service_ref,
                    episode_ref,
                    made_on: made_on.unwrap(),
                    action: action.unwrap(),
                    destination: destination.unwrap(),
                    outcome: outcome.unwrap(),
                })
            })
        }
        Entity::WiderIssue => {
            let wider_issue_ref = r.reference("wider_issue_ref");
            let service_ref = r.reference("service_ref");
            let episode_ref = r.reference("episode_ref");
            let noted_on = r.date("noted_on");
            let issue = r.code("issue");
            take(r, src, today).finish(|| {
                Record::WiderIssue(WiderIssue {
                    wider_issue_ref,
                    service_ref,
                    episode_ref,
                    noted_on: noted_on.unwrap(),
                    issue: issue.unwrap(),
                })
            })
        }
    }
}

/// Moves the reader out of its slot so `finish` can consume it.
fn take<'a>(r: &mut Reader<'a>, src: &'a dyn FieldSource, today: NaiveDate) -> Reader<'a> {
    std::mem::replace(r, Reader::new(src, today))
}

impl Record {
    /// Which entity this is.
    pub fn entity(&self) -> Entity {
        match self {
            Record::Organisation(_) => Entity::Organisation,
            Record::Service(_) => Entity::Service,
            Record::ServiceConfiguration(_) => Entity::ServiceConfiguration,
            Record::Worker(_) => Entity::Worker,
            Record::Client(_) => Entity::Client,
            Record::Referral(_) => Entity::Referral,
            Record::Episode(_) => Entity::Episode,
            Record::Assessment(_) => Entity::Assessment,
            Record::Plan(_) => Entity::Plan,
            Record::Goal(_) => Entity::Goal,
            Record::Session(_) => Entity::Session,
            Record::OnwardReferral(_) => Entity::OnwardReferral,
            Record::WiderIssue(_) => Entity::WiderIssue,
        }
    }

    /// The record's own external reference.
    pub fn own_ref(&self) -> &str {
        match self {
            Record::Organisation(x) => &x.org_ref,
            Record::Service(x) => &x.service_ref,
            Record::ServiceConfiguration(x) => &x.configuration_ref,
            Record::Worker(x) => &x.worker_ref,
            Record::Client(x) => &x.client_ref,
            Record::Referral(x) => &x.referral_ref,
            Record::Episode(x) => &x.episode_ref,
            Record::Assessment(x) => &x.assessment_ref,
            Record::Plan(x) => &x.plan_ref,
            Record::Goal(x) => &x.goal_ref,
            Record::Session(x) => &x.session_ref,
            Record::OnwardReferral(x) => &x.onward_ref,
            Record::WiderIssue(x) => &x.wider_issue_ref,
        }
    }

    /// The service a tenant record belongs to (`None` for organisations and services).
    pub fn service_ref(&self) -> Option<&str> {
        Some(match self {
            Record::Organisation(_) | Record::Service(_) => return None,
            Record::ServiceConfiguration(x) => &x.service_ref,
            Record::Worker(x) => &x.service_ref,
            Record::Client(x) => &x.service_ref,
            Record::Referral(x) => &x.service_ref,
            Record::Episode(x) => &x.service_ref,
            Record::Assessment(x) => &x.service_ref,
            Record::Plan(x) => &x.service_ref,
            Record::Goal(x) => &x.service_ref,
            Record::Session(x) => &x.service_ref,
            Record::OnwardReferral(x) => &x.service_ref,
            Record::WiderIssue(x) => &x.service_ref,
        })
    }

    /// The references to other records, in the order of [`Entity::ref_fields`].
    pub fn parent_refs(&self) -> Vec<Option<&str>> {
        match self {
            Record::Organisation(_)
            | Record::ServiceConfiguration(_)
            | Record::Worker(_)
            | Record::Client(_) => {
                vec![]
            }
            Record::Service(x) => vec![Some(&x.commissioner_org_ref)],
            Record::Referral(x) => vec![Some(&x.client_ref), x.referrer_org_ref.as_deref()],
            Record::Episode(x) => vec![Some(&x.referral_ref), Some(&x.lead_worker_ref)],
            Record::Assessment(x) => vec![Some(&x.episode_ref)],
            Record::Plan(x) => vec![Some(&x.episode_ref)],
            Record::Goal(x) => vec![Some(&x.plan_ref)],
            Record::Session(x) => vec![Some(&x.episode_ref), Some(&x.worker_ref)],
            Record::OnwardReferral(x) => vec![Some(&x.episode_ref)],
            Record::WiderIssue(x) => vec![Some(&x.episode_ref)],
        }
    }

    /// The stored values, in the order of [`Entity::value_fields`].
    pub fn values(&self) -> Vec<Value> {
        match self {
            Record::Organisation(x) => vec![text(&x.name), code(x.kind), opt_text(&x.ods_code)],
            Record::Service(x) => vec![
                text(&x.name),
                text(join(&x.areas_served, LadCode::as_str)),
                date(x.started_on),
                opt_date(x.ended_on),
            ],
            Record::ServiceConfiguration(x) => vec![
                date(x.effective_from),
                code(x.provider_model),
                code(x.funding),
                code(x.senior_buy_in),
                text(join(&x.primary_referral_routes, |c| c.code())),
                code(x.worker_profile),
                code(x.targeting),
                if x.target_lsoas.is_empty() {
                    Value::Null
                } else {
                    text(join(&x.target_lsoas, LsoaCode::as_str))
                },
                code(x.formal_performance_management),
                code(x.interaction_model),
                opt_text(&x.notes),
            ],
            Record::Worker(x) => vec![
                text(&x.display_name),
                code(x.role),
                code(x.sex),
                code(x.age_band),
                code(x.lives_in_area_served),
                opt_measure(x.home_imd_quintile),
                code(x.qualification),
                date(x.started_on),
                opt_date(x.left_on),
                x.fte.to_value(),
            ],
            Record::Client(x) => vec![
                opt_text(&x.given_name),
                opt_text(&x.family_name),
                opt_text(&x.nhs_number.as_ref().map(NhsNumber::as_str)),
                date(x.date_of_birth),
                code(x.sex),
                code(x.ethnicity),
                opt_text(&x.postcode.as_ref().map(Postcode::as_str)),
                code(x.gp_registered),
                opt_text(&x.gp_practice_code),
                code(x.employment),
                code(x.disability),
                code(x.consent_to_record),
                code(x.consent_to_share_with_gp),
            ],
            Record::Referral(x) => vec![date(x.received_on), code(x.source), opt_text(&x.reason)],
            Record::Episode(x) => vec![
                code(x.kind),
                date(x.first_contact_on),
                code(x.primary_issue),
                opt_date(x.closed_on),
                opt_code(x.exit_reason),
            ],
            Record::Assessment(x) => vec![
                code(x.occasion),
                date(x.assessed_on),
                opt_measure(x.height_cm),
                opt_measure(x.weight_kg),
                opt_measure(x.waist_cm),
                opt_measure(x.fruit_veg_portions_per_day),
                opt_measure(x.high_fat_snacks_per_day),
                opt_measure(x.active_days_per_week),
                opt_measure(x.alcohol_units_per_week),
                opt_code(x.smoking_status),
                opt_measure(x.cigarettes_per_day),
                opt_measure(x.self_efficacy),
                opt_measure(x.general_health),
                opt_measure(x.swemwbs_raw),
            ],
            Record::Plan(x) => vec![date(x.agreed_on)],
            Record::Goal(x) => vec![
                code(x.domain),
                text(&x.description),
                opt_date(x.target_on),
                code(x.status),
                opt_date(x.status_on),
            ],
            Record::Session(x) => vec![
                date(x.held_on),
                x.duration_min.to_value(),
                code(x.mode),
                code(x.venue),
                code(x.purpose),
                code(x.attended),
            ],
            Record::OnwardReferral(x) => {
                vec![
                    date(x.made_on),
                    code(x.action),
                    code(x.destination),
                    code(x.outcome),
                ]
            }
            Record::WiderIssue(x) => vec![date(x.noted_on), code(x.issue)],
        }
    }

    /// The record as file fields (name, text), in file order.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut values = self.values().into_iter();
        let mut parents = self.parent_refs().into_iter();
        self.entity()
            .fields()
            .iter()
            .map(|f| {
                let v = match f.kind {
                    OwnRef => self.own_ref().to_string(),
                    ServiceRef => self.service_ref().unwrap_or_default().to_string(),
                    Ref(_) => parents.next().flatten().unwrap_or_default().to_string(),
                    _ => values
                        .next()
                        .expect("a value for each value field")
                        .to_field_text(),
                };
                (f.name, v)
            })
            .collect()
    }
}
