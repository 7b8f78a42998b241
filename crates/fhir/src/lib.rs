//! FHIR R4: one Bundle per client, holding every record of theirs as the resource FHIR
//! has for it, with UK Core conventions where they apply.
//!
//! | Dataset | FHIR |
//! |---|---|
//! | client | Patient (UK Core profile; NHS number identifier; ethnic category extension; GP practice by ODS code) |
//! | referral | ServiceRequest (intent `order`) |
//! | episode | EpisodeOfCare |
//! | session | Encounter |
//! | assessment | one Observation per measure (LOINC where a standard code exists, else the project's own code system); BMI as its own Observation derived from height and weight |
//! | plan | CarePlan |
//! | goal | Goal (with `achievementStatus`) |
//! | onward referral, signposting | ServiceRequest (intent `order` or `proposal`) |
//! | wider issue | Observation (social history) |
//!
//! Ids are stable: a UUID made from the service, the kind of record and its reference,
//! so exporting the same data twice gives the same bundles. Codes of the dataset's own
//! lists travel in the project's code systems (`PROJECT/CodeSystem/<list>`) beside the
//! standard code wherever one exists, so nothing of the record is lost in translation.

pub mod types;

use chrono::NaiveDate;
use dcrs_domain::codes::*;
use dcrs_domain::record::{Assessment, Client, Episode};
use dcrs_domain::rules::{ClientBundle, derive_bmi};
use sha2::{Digest, Sha256};
use types::*;

/// The base address of the project's own code systems and identifier namespaces.
pub const PROJECT: &str = "https://health-trainers.example.org/fhir";
const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const UCUM: &str = "http://unitsofmeasure.org";
const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const UK_CORE_PATIENT: &str = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient";
const ETHNIC_EXTENSION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory";
const ETHNIC_SYSTEM: &str = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const GOAL_ACHIEVEMENT: &str = "http://terminology.hl7.org/CodeSystem/goal-achievement";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// The service a client belongs to, as the bundle names it.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub service_ref: String,
    pub name: String,
}

fn project(list: &str, code: &str) -> Coding {
    Coding {
        system: format!("{PROJECT}/CodeSystem/{list}"),
        code: code.to_string(),
        display: None,
    }
}

fn project_concept(list: &str, code: &str) -> CodeableConcept {
    CodeableConcept::of(project(list, code))
}

fn ident(kind: &str, service: &str, reference: &str) -> Identifier {
    Identifier {
        system: format!("{PROJECT}/Id/{kind}"),
        value: format!("{service}/{reference}"),
    }
}

/// A stable UUID for a record: SHA-256 of its service, kind and reference, laid out as
/// a version 8 (custom) UUID.
pub fn stable_uuid(service: &str, kind: &str, reference: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!("{service}\u{1f}{kind}\u{1f}{reference}").as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Observation categories used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    VitalSigns,
    SocialHistory,
    Survey,
}

impl Category {
    fn concept(self) -> CodeableConcept {
        let code = match self {
            Category::VitalSigns => "vital-signs",
            Category::SocialHistory => "social-history",
            Category::Survey => "survey",
        };
        CodeableConcept::of(Coding {
            system: OBSERVATION_CATEGORY.into(),
            code: code.into(),
            display: None,
        })
    }
}

/// What FHIR adds to an assessment measure of the dataset's catalogue, which names every
/// measure, its unit and its order: a LOINC code where a standard one exists, the UCUM
/// unit of a count or score, and the Observation category. A measure added to the
/// catalogue is exported with the project's code (its field name), its catalogue unit
/// and the social-history category until it is given more here. BMI, derived and not
/// a field, is here alone.
#[derive(Debug, Clone, Copy)]
struct MeasureCoding {
    /// The field name, which is also the project's code.
    name: &'static str,
    loinc: Option<(&'static str, &'static str)>,
    ucum: (&'static str, &'static str),
    category: Category,
}

const BMI: &str = "bmi";

fn measure_coding(name: &'static str, unit: Option<&'static str>) -> MeasureCoding {
    use Category::*;
    let (loinc, ucum, category) = match name {
        "height_cm" => (Some(("8302-2", "Body height")), None, VitalSigns),
        "weight_kg" => (Some(("29463-7", "Body weight")), None, VitalSigns),
        BMI => (
            Some(("39156-5", "Body mass index (BMI) [Ratio]")),
            Some(("kg/m2", "kg/m2")),
            VitalSigns,
        ),
        "waist_cm" => (
            Some(("8280-0", "Waist Circumference at umbilicus by Tape measure")),
            None,
            VitalSigns,
        ),
        "smoking_status" => (
            Some(("72166-2", "Tobacco smoking status")),
            None,
            SocialHistory,
        ),
        "fruit_veg_portions_per_day" => (
            None,
            Some(("{portions}/d", "portions per day")),
            SocialHistory,
        ),
        "high_fat_snacks_per_day" => (None, Some(("{snacks}/d", "snacks per day")), SocialHistory),
        "active_days_per_week" => (None, Some(("d/wk", "days per week")), SocialHistory),
        "alcohol_units_per_week" => (None, Some(("{units}/wk", "units per week")), SocialHistory),
        "cigarettes_per_day" => (
            None,
            Some(("{cigarettes}/d", "cigarettes per day")),
            SocialHistory,
        ),
        "self_efficacy" | "general_health" | "swemwbs_raw" => (None, None, Survey),
        _ => (None, None, SocialHistory),
    };
    MeasureCoding {
        name,
        loinc,
        ucum: ucum
            .or(unit.map(|u| (u, u)))
            .unwrap_or(("{score}", "score")),
        category,
    }
}

impl MeasureCoding {
    /// The code: LOINC where a standard code exists, else the project's own.
    fn coding(self) -> Coding {
        match self.loinc {
            Some((code, display)) => Coding {
                system: LOINC.into(),
                code: code.into(),
                display: Some(display.into()),
            },
            None => project("measure", self.name),
        }
    }
}

/// Smoking status as SNOMED CT, with the project's code beside it.
fn smoking(s: SmokingStatus) -> CodeableConcept {
    let (code, display) = match s {
        SmokingStatus::Never => ("266919005", "Never smoked tobacco"),
        SmokingStatus::Ex => ("8517006", "Ex-smoker"),
        SmokingStatus::Current => ("77176002", "Smoker"),
    };
    CodeableConcept {
        coding: vec![
            Coding {
                system: SNOMED.into(),
                code: code.into(),
                display: Some(display.into()),
            },
            project("smoking-status", s.code()),
        ],
        text: None,
    }
}

fn gender(s: Sex) -> AdministrativeGender {
    match s {
        Sex::Male => AdministrativeGender::Male,
        Sex::Female => AdministrativeGender::Female,
        Sex::Other => AdministrativeGender::Other,
        Sex::NotStated => AdministrativeGender::Unknown,
    }
}

/// Goal status at close as FHIR's lifecycle and achievement, with the dataset's code
/// kept beside the standard one.
fn goal_status(s: GoalStatus) -> (GoalLifecycleStatus, CodeableConcept) {
    let (life, achievement) = match s {
        GoalStatus::Open => (GoalLifecycleStatus::Active, "in-progress"),
        GoalStatus::FullyAchieved => (GoalLifecycleStatus::Completed, "achieved"),
        GoalStatus::PartlyAchieved => (GoalLifecycleStatus::Completed, "improving"),
        GoalStatus::NotAchieved => (GoalLifecycleStatus::Completed, "not-achieved"),
        GoalStatus::Abandoned => (GoalLifecycleStatus::Cancelled, "not-achieved"),
    };
    (
        life,
        CodeableConcept {
            coding: vec![
                Coding {
                    system: GOAL_ACHIEVEMENT.into(),
                    code: achievement.into(),
                    display: None,
                },
                project("goal-status", s.code()),
            ],
            text: None,
        },
    )
}

/// Session mode as the encounter class (v3 ActCode).
fn encounter_class(mode: SessionMode, venue: Venue) -> Coding {
    let (code, display) = match (mode, venue) {
        (SessionMode::Telephone | SessionMode::Video | SessionMode::TextMessage, _) => {
            ("VR", "virtual")
        }
        (_, Venue::ClientHome) => ("HH", "home health"),
        _ => ("AMB", "ambulatory"),
    };
    Coding {
        system: ACT_CODE.into(),
        code: code.into(),
        display: Some(display.into()),
    }
}

struct Builder<'a> {
    service: &'a ServiceInfo,
    entries: Vec<BundleEntry>,
}

impl Builder<'_> {
    fn url(&self, kind: &str, reference: &str) -> String {
        format!(
            "urn:uuid:{}",
            stable_uuid(&self.service.service_ref, kind, reference)
        )
    }

    fn id(&self, kind: &str, reference: &str) -> String {
        stable_uuid(&self.service.service_ref, kind, reference)
    }

    fn push(&mut self, kind: &str, reference: &str, resource: Resource) {
        let full_url = self.url(kind, reference);
        self.entries.push(BundleEntry { full_url, resource });
    }

    fn ident(&self, kind: &str, reference: &str) -> Vec<Identifier> {
        vec![ident(kind, &self.service.service_ref, reference)]
    }

    /// The service, by identifier and name (it is not a resource of the bundle).
    fn service(&self) -> Reference {
        Reference {
            reference: None,
            identifier: Some(ident(
                "service",
                &self.service.service_ref,
                &self.service.service_ref,
            )),
            display: Some(self.service.name.clone()),
        }
    }

    fn worker(&self, worker_ref: &str) -> Reference {
        Reference {
            reference: None,
            identifier: Some(ident("worker", &self.service.service_ref, worker_ref)),
            display: Some(format!("Health trainer {worker_ref}")),
        }
    }

    fn patient(&mut self, c: &Client) {
        let mut identifier = Vec::new();
        if let Some(n) = &c.nhs_number {
            identifier.push(Identifier {
                system: NHS_NUMBER.into(),
                value: n.as_str().to_string(),
            });
        }
        identifier.extend(self.ident("client", &c.client_ref));
        let name = if c.given_name.is_some() || c.family_name.is_some() {
            vec![HumanName {
                use_: NameUse::Usual,
                family: c.family_name.clone(),
                given: c.given_name.iter().cloned().collect(),
            }]
        } else {
            vec![]
        };
        let patient = Patient {
            id: self.id("client", &c.client_ref),
            meta: Meta {
                profile: vec![UK_CORE_PATIENT.into()],
            },
            extension: vec![Extension {
                url: ETHNIC_EXTENSION.into(),
                value_codeable_concept: CodeableConcept::of(Coding {
                    system: ETHNIC_SYSTEM.into(),
                    code: c.ethnicity.code().into(),
                    display: None,
                }),
            }],
            identifier,
            name,
            gender: gender(c.sex),
            birth_date: date(c.date_of_birth),
            address: c
                .postcode
                .iter()
                .map(|p| Address {
                    postal_code: p.as_str().to_string(),
                })
                .collect(),
            general_practitioner: c
                .gp_practice_code
                .iter()
                .map(|code| Reference {
                    reference: None,
                    identifier: Some(Identifier {
                        system: ODS.into(),
                        value: code.clone(),
                    }),
                    display: None,
                })
                .collect(),
        };
        self.push("client", &c.client_ref, Resource::Patient(patient));
    }

    fn episode(&mut self, e: &Episode, patient: &Reference) {
        let mut extension = Vec::new();
        if let Some(reason) = e.exit_reason {
            extension.push(Extension {
                url: format!("{PROJECT}/StructureDefinition/exit-reason"),
                value_codeable_concept: project_concept("exit-reason", reason.code()),
            });
        }
        let eoc = EpisodeOfCare {
            id: self.id("episode", &e.episode_ref),
            extension,
            identifier: self.ident("episode", &e.episode_ref),
            status: if e.closed_on.is_some() {
                EpisodeOfCareStatus::Finished
            } else {
                EpisodeOfCareStatus::Active
            },
            type_: vec![
                project_concept("episode-kind", e.kind.code()),
                project_concept("primary-issue", e.primary_issue.code()),
            ],
            patient: patient.clone(),
            managing_organization: self.service(),
            period: Period {
                start: Some(date(e.first_contact_on)),
                end: e.closed_on.map(date),
            },
            referral_request: vec![Reference::to(&self.url("referral", &e.referral_ref))],
            care_manager: self.worker(&e.lead_worker_ref),
        };
        self.push("episode", &e.episode_ref, Resource::EpisodeOfCare(eoc));
    }

    #[allow(clippy::too_many_arguments)]
    fn observation(
        &mut self,
        a: &Assessment,
        measure: MeasureCoding,
        patient: &Reference,
        quantity: Option<f64>,
        concept: Option<CodeableConcept>,
        derived_from: Vec<Reference>,
    ) {
        let key = format!("{}/{}", a.assessment_ref, measure.name);
        let (unit_code, unit) = measure.ucum;
        let mut code = CodeableConcept::of(measure.coding());
        if code.coding[0].system == LOINC {
            code.coding.push(project("measure", measure.name));
        }
        code.text = Some(format!("{} ({})", measure.name, a.occasion.code()));
        let obs = Observation {
            id: self.id("observation", &key),
            status: ObservationStatus::Final,
            category: vec![measure.category.concept()],
            code,
            subject: patient.clone(),
            effective_date_time: date(a.assessed_on),
            value_quantity: quantity.map(|value| Quantity {
                value,
                unit: unit.into(),
                system: UCUM.into(),
                code: unit_code.into(),
            }),
            value_codeable_concept: concept,
            derived_from,
        };
        self.push("observation", &key, Resource::Observation(obs));
    }

    /// One Observation per measure recorded, in the catalogue's order with numbers
    /// before codes, then BMI derived from height and weight.
    fn assessment(&mut self, a: &Assessment, bmi: Option<f64>, patient: &Reference) {
        let record = dcrs_domain::Record::Assessment(a.clone());
        let values: Vec<(&'static str, dcrs_domain::Value)> = dcrs_domain::Entity::Assessment
            .value_fields()
            .map(|f| f.name)
            .zip(record.values())
            .collect();
        let measures = dcrs_domain::catalogue::assessment_measures();
        let value_of = |name: &str| {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        for m in &measures {
            let quantity = match value_of(m.name) {
                Some(dcrs_domain::Value::Real(x)) => x,
                Some(dcrs_domain::Value::Int(i)) => i as f64,
                _ => continue,
            };
            let coding = measure_coding(m.name, m.unit);
            self.observation(a, coding, patient, Some(quantity), None, vec![]);
        }
        for m in &measures {
            let Some(dcrs_domain::Value::Text(code)) = value_of(m.name) else {
                continue;
            };
            let concept = match a.smoking_status {
                Some(s) if m.name == "smoking_status" => smoking(s),
                _ => project_concept(m.name, &code),
            };
            let coding = measure_coding(m.name, m.unit);
            self.observation(a, coding, patient, None, Some(concept), vec![]);
        }
        if let Some(v) = bmi {
            let weight = format!("{}/weight_kg", a.assessment_ref);
            let from = vec![Reference::to(&self.url("observation", &weight))];
            self.observation(a, measure_coding(BMI, None), patient, Some(v), None, from);
        }
    }
}

/// The bundle of one client's records. `timestamp` is when it was made (RFC 3339).
pub fn client_bundle(b: &ClientBundle, service: &ServiceInfo, timestamp: &str) -> Bundle {
    let mut out = Builder {
        service,
        entries: Vec::new(),
    };
    let c = &b.client;
    out.patient(c);
    let patient = Reference::to(&out.url("client", &c.client_ref));
    let episodes_of = |referral: &str| -> Vec<&Episode> {
        b.episodes
            .iter()
            .filter(|e| e.referral_ref == referral)
            .collect()
    };
    for r in &b.referrals {
        let has_episode = !episodes_of(&r.referral_ref).is_empty();
        let sr = ServiceRequest {
            id: out.id("referral", &r.referral_ref),
            identifier: out.ident("referral", &r.referral_ref),
            status: if has_episode {
                RequestStatus::Completed
            } else {
                RequestStatus::Active
            },
            intent: RequestIntent::Order,
            category: vec![project_concept("referral-source", r.source.code())],
            code: project_concept("service", "health-trainer-support"),
            subject: patient.clone(),
            authored_on: date(r.received_on),
            requester: r.referrer_org_ref.as_ref().map(|o| Reference {
                reference: None,
                identifier: Some(Identifier {
                    system: format!("{PROJECT}/Id/organisation"),
                    value: o.clone(),
                }),
                display: None,
            }),
            performer: Some(vec![out.service()]),
            reason_code: r.reason.iter().map(|t| CodeableConcept::text(t)).collect(),
            supporting_info: vec![],
        };
        out.push("referral", &r.referral_ref, Resource::ServiceRequest(sr));
    }
    for e in &b.episodes {
        out.episode(e, &patient);
    }
    let bmis = derive_bmi(b);
    for a in &b.assessments {
        let bmi = bmis
            .iter()
            .find(|d| d.assessment_ref == a.assessment_ref)
            .and_then(|d| d.bmi)
            .filter(|_| a.weight_kg.is_some());
        out.assessment(a, bmi, &patient);
    }
    for p in &b.plans {
        let closed = b
            .episodes
            .iter()
            .find(|e| e.episode_ref == p.episode_ref)
            .is_some_and(|e| e.closed_on.is_some());
        let goals: Vec<Reference> = b
            .goals
            .iter()
            .filter(|g| g.plan_ref == p.plan_ref)
            .map(|g| Reference::to(&out.url("goal", &g.goal_ref)))
            .collect();
        let cp = CarePlan {
            id: out.id("plan", &p.plan_ref),
            identifier: out.ident("plan", &p.plan_ref),
            status: if closed {
                RequestStatus::Completed
            } else {
                RequestStatus::Active
            },
            intent: CarePlanIntent::Plan,
            category: vec![project_concept("care-plan", "personal-health-plan")],
            subject: patient.clone(),
            created: date(p.agreed_on),
            goal: goals,
            supporting_info: vec![Reference::to(&out.url("episode", &p.episode_ref))],
        };
        out.push("plan", &p.plan_ref, Resource::CarePlan(cp));
    }
    for g in &b.goals {
        let (life, achievement) = goal_status(g.status);
        let goal = Goal {
            id: out.id("goal", &g.goal_ref),
            identifier: out.ident("goal", &g.goal_ref),
            lifecycle_status: life,
            achievement_status: achievement,
            category: vec![project_concept("goal-domain", g.domain.code())],
            description: CodeableConcept::text(&g.description),
            subject: patient.clone(),
            target: g
                .target_on
                .iter()
                .map(|d| GoalTarget { due_date: date(*d) })
                .collect(),
            status_date: g.status_on.map(date),
        };
        out.push("goal", &g.goal_ref, Resource::Goal(goal));
    }
    for s in &b.sessions {
        let enc = Encounter {
            id: out.id("session", &s.session_ref),
            identifier: out.ident("session", &s.session_ref),
            status: match s.attended {
                Attendance::Yes => EncounterStatus::Finished,
                Attendance::DidNotAttend | Attendance::Cancelled => EncounterStatus::Cancelled,
            },
            class: encounter_class(s.mode, s.venue),
            type_: vec![
                project_concept("session-purpose", s.purpose.code()),
                project_concept("session-mode", s.mode.code()),
                project_concept("venue", s.venue.code()),
                project_concept("attendance", s.attended.code()),
            ],
            subject: patient.clone(),
            episode_of_care: vec![Reference::to(&out.url("episode", &s.episode_ref))],
            participant: vec![EncounterParticipant {
                individual: out.worker(&s.worker_ref),
            }],
            period: Period {
                start: Some(date(s.held_on)),
                end: Some(date(s.held_on)),
            },
            length: Quantity {
                value: s.duration_min.get() as f64,
                unit: "min".into(),
                system: UCUM.into(),
                code: "min".into(),
            },
        };
        out.push("session", &s.session_ref, Resource::Encounter(enc));
    }
    for o in &b.onward_referrals {
        let sr = ServiceRequest {
            id: out.id("onward", &o.onward_ref),
            identifier: out.ident("onward", &o.onward_ref),
            status: RequestStatus::Completed,
            intent: match o.action {
                OnwardAction::Referred => RequestIntent::Order,
                OnwardAction::Signposted => RequestIntent::Proposal,
            },
            category: vec![
                project_concept("onward-action", o.action.code()),
                project_concept("onward-outcome", o.outcome.code()),
            ],
            code: project_concept("onward-destination", o.destination.code()),
            subject: patient.clone(),
            authored_on: date(o.made_on),
            requester: Some(out.service()),
            performer: None,
            reason_code: vec![],
            supporting_info: vec![Reference::to(&out.url("episode", &o.episode_ref))],
        };
        out.push("onward", &o.onward_ref, Resource::ServiceRequest(sr));
    }
    for w in &b.wider_issues {
        let obs = Observation {
            id: out.id("wider-issue", &w.wider_issue_ref),
            status: ObservationStatus::Final,
            category: vec![Category::SocialHistory.concept()],
            code: project_concept("observation", "wider-issue"),
            subject: patient.clone(),
            effective_date_time: date(w.noted_on),
            value_quantity: None,
            value_codeable_concept: Some(project_concept("wider-issue", w.issue.code())),
            derived_from: vec![],
        };
        out.push(
            "wider-issue",
            &w.wider_issue_ref,
            Resource::Observation(obs),
        );
    }
    Bundle {
        id: stable_uuid(&service.service_ref, "bundle", &c.client_ref),
        type_: BundleType::Collection,
        timestamp: timestamp.to_string(),
        entry: out.entries,
    }
}
