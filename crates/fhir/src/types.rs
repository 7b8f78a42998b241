//! The FHIR R4 types this project writes: a few data types, the seven resources and the
//! Bundle. Written by hand because the Rust FHIR crates are stale or not R4; only the
//! elements the dataset fills are here. Every coded element is an enum, so a resource
//! cannot hold a code outside its value set: an external validator checks structure
//! and types, and this file is what keeps the codes right.

use serde::{Deserialize, Serialize};

/// Declares a FHIR code (a `code` element bound to a required value set): an enum that
/// serialises as its code.
macro_rules! fhir_code {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $code)] $variant),+ }

        impl $name {
            /// The code as written in FHIR.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
        }
    };
}

fhir_code!(
    /// Bundle.type.
    BundleType { Collection => "collection", Document => "document", Searchset => "searchset" });
fhir_code!(
    /// Patient.gender (administrative-gender).
    AdministrativeGender { Male => "male", Female => "female", Other => "other", Unknown => "unknown" });
fhir_code!(
    /// EpisodeOfCare.status (episode-of-care-status).
    EpisodeOfCareStatus { Planned => "planned", Waitlist => "waitlist", Active => "active",
      OnHold => "onhold", Finished => "finished", Cancelled => "cancelled",
      EnteredInError => "entered-in-error" });
fhir_code!(
    /// ServiceRequest.status and CarePlan.status (request-status).
    RequestStatus { Draft => "draft", Active => "active", OnHold => "on-hold", Revoked => "revoked",
      Completed => "completed", EnteredInError => "entered-in-error", Unknown => "unknown" });
fhir_code!(
    /// ServiceRequest.intent (request-intent).
    RequestIntent { Proposal => "proposal", Plan => "plan", Directive => "directive", Order => "order",
      OriginalOrder => "original-order", ReflexOrder => "reflex-order", FillerOrder => "filler-order",
      InstanceOrder => "instance-order", Option => "option" });
fhir_code!(
    /// CarePlan.intent (care-plan-intent).
    CarePlanIntent { Proposal => "proposal", Plan => "plan", Order => "order", Option => "option" });
fhir_code!(
    /// Encounter.status (encounter-status).
    EncounterStatus { Planned => "planned", Arrived => "arrived", Triaged => "triaged",
      InProgress => "in-progress", OnLeave => "onleave", Finished => "finished",
      Cancelled => "cancelled", EnteredInError => "entered-in-error", Unknown => "unknown" });
fhir_code!(
    /// Observation.status (observation-status).
    ObservationStatus { Registered => "registered", Preliminary => "preliminary", Final => "final",
      Amended => "amended", Corrected => "corrected", Cancelled => "cancelled",
      EnteredInError => "entered-in-error", Unknown => "unknown" });
fhir_code!(
    /// Goal.lifecycleStatus (goal-status).
    GoalLifecycleStatus { Proposed => "proposed", Planned => "planned", Accepted => "accepted",
      Active => "active", OnHold => "on-hold", Completed => "completed", Cancelled => "cancelled",
      EnteredInError => "entered-in-error", Rejected => "rejected" });
fhir_code!(
    /// HumanName.use (name-use).
    NameUse { Usual => "usual", Official => "official", Temp => "temp", Nickname => "nickname",
      Anonymous => "anonymous", Old => "old", Maiden => "maiden" });

/// A code from a code system (a `Coding`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coding {
    pub system: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// A concept: codings and, or, text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CodeableConcept {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CodeableConcept {
    /// A concept of one coding.
    pub fn of(coding: Coding) -> Self {
        CodeableConcept {
            coding: vec![coding],
            text: None,
        }
    }
    /// A concept of text only.
    pub fn text(text: &str) -> Self {
        CodeableConcept {
            coding: vec![],
            text: Some(text.to_string()),
        }
    }
}

/// An identifier in a namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identifier {
    pub system: String,
    pub value: String,
}

/// A reference to another resource (by its full URL in the bundle), or to something
/// outside the bundle by identifier, with a display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Reference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Reference {
    /// A reference to a resource in the bundle.
    pub fn to(full_url: &str) -> Self {
        Reference {
            reference: Some(full_url.to_string()),
            ..Default::default()
        }
    }
}

/// A time span (dates as `YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// A measured amount in UCUM units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    pub value: f64,
    pub unit: String,
    pub system: String,
    pub code: String,
}

/// A person's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanName {
    #[serde(rename = "use")]
    pub use_: NameUse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
}

/// An address (only the postcode is held).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub postal_code: String,
}

/// An extension holding a concept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    pub url: String,
    pub value_codeable_concept: CodeableConcept,
}

/// Profiles a resource claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub profile: Vec<String>,
}

/// A client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    pub id: String,
    pub meta: Meta,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    pub gender: AdministrativeGender,
    pub birth_date: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub general_practitioner: Vec<Reference>,
}

/// An episode of support.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpisodeOfCare {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    pub identifier: Vec<Identifier>,
    pub status: EpisodeOfCareStatus,
    #[serde(rename = "type")]
    pub type_: Vec<CodeableConcept>,
    pub patient: Reference,
    pub managing_organization: Reference,
    pub period: Period,
    pub referral_request: Vec<Reference>,
    pub care_manager: Reference,
}

/// A referral to the service, or an onward referral or signposting from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRequest {
    pub id: String,
    pub identifier: Vec<Identifier>,
    pub status: RequestStatus,
    pub intent: RequestIntent,
    pub category: Vec<CodeableConcept>,
    pub code: CodeableConcept,
    pub subject: Reference,
    pub authored_on: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performer: Option<Vec<Reference>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason_code: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supporting_info: Vec<Reference>,
}

/// A session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encounter {
    pub id: String,
    pub identifier: Vec<Identifier>,
    pub status: EncounterStatus,
    pub class: Coding,
    #[serde(rename = "type")]
    pub type_: Vec<CodeableConcept>,
    pub subject: Reference,
    pub episode_of_care: Vec<Reference>,
    pub participant: Vec<EncounterParticipant>,
    pub period: Period,
    pub length: Quantity,
}

/// Who took part in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncounterParticipant {
    pub individual: Reference,
}

/// One measure of an assessment, or a wider issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub id: String,
    pub status: ObservationStatus,
    pub category: Vec<CodeableConcept>,
    pub code: CodeableConcept,
    pub subject: Reference,
    pub effective_date_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_quantity: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_codeable_concept: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived_from: Vec<Reference>,
}

/// A Personal Health Plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CarePlan {
    pub id: String,
    pub identifier: Vec<Identifier>,
    pub status: RequestStatus,
    pub intent: CarePlanIntent,
    pub category: Vec<CodeableConcept>,
    pub subject: Reference,
    pub created: String,
    pub goal: Vec<Reference>,
    pub supporting_info: Vec<Reference>,
}

/// A goal of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Goal {
    pub id: String,
    pub identifier: Vec<Identifier>,
    pub lifecycle_status: GoalLifecycleStatus,
    pub achievement_status: CodeableConcept,
    pub category: Vec<CodeableConcept>,
    pub description: CodeableConcept,
    pub subject: Reference,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<GoalTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_date: Option<String>,
}

/// When a goal is due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalTarget {
    pub due_date: String,
}

/// Any resource of a client's bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType")]
pub enum Resource {
    Patient(Patient),
    EpisodeOfCare(EpisodeOfCare),
    ServiceRequest(ServiceRequest),
    Encounter(Encounter),
    Observation(Observation),
    CarePlan(CarePlan),
    Goal(Goal),
}

/// One entry of a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    pub full_url: String,
    pub resource: Resource,
}

/// A client's records as one bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "Bundle")]
pub struct Bundle {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: BundleType,
    pub timestamp: String,
    pub entry: Vec<BundleEntry>,
}
