//! The code list each coded field of the dataset takes, with the words a person reads
//! for every code: the one place forms, pages and documents find them, so that a form
//! cannot offer a list the parser refuses (as the client form once offered disability
//! `unknown` where the standard says `not_stated`).
//!
//! `tests/standard.rs` checks this table against the parser from the outside: every code
//! listed here for a field is accepted in it, and every coded field of every entity is
//! listed.

use crate::codes::*;
use crate::record::Entity;

/// A code list as data: every code, in the standard's order, with its words.
#[derive(Clone, Copy)]
pub struct Codes {
    /// The list's name (its type in `codes.rs`).
    pub name: &'static str,
    list: fn() -> Vec<(&'static str, &'static str)>,
    /// Whether the field holds several codes separated by `;`.
    pub several: bool,
}

impl Codes {
    /// Every code with its words, in the standard's order.
    pub fn words(&self) -> Vec<(&'static str, &'static str)> {
        (self.list)()
    }

    /// The words for one code (any letter case), or `None` when it is not in the list.
    pub fn words_for(&self, code: &str) -> Option<&'static str> {
        self.words()
            .into_iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(code.trim()))
            .map(|(_, w)| w)
    }
}

macro_rules! list {
    ($t:ty) => {
        Codes {
            name: stringify!($t),
            list: <$t as CodeList>::all_words,
            several: false,
        }
    };
    ($t:ty, several) => {
        Codes {
            name: stringify!($t),
            list: <$t as CodeList>::all_words,
            several: true,
        }
    };
}

/// The code list of a field of an entity, or `None` for a field that is not coded.
pub fn codes_of(entity: Entity, field: &str) -> Option<Codes> {
    use Entity as E;
    Some(match (entity, field) {
        (E::Organisation, "kind") => list!(OrgKind),
        (E::ServiceConfiguration, "provider_model") => list!(ProviderModel),
        (E::ServiceConfiguration, "funding") => list!(Funding),
        (E::ServiceConfiguration, "senior_buy_in") => list!(SeniorBuyIn),
        (E::ServiceConfiguration, "primary_referral_routes") => list!(ReferralSource, several),
        (E::ServiceConfiguration, "worker_profile") => list!(WorkerProfile),
        (E::ServiceConfiguration, "targeting") => list!(Targeting),
        (E::ServiceConfiguration, "formal_performance_management") => list!(YesNo),
        (E::ServiceConfiguration, "interaction_model") => list!(InteractionModel),
        (E::Worker, "role") => list!(WorkerRole),
        (E::Worker, "sex") => list!(Sex),
        (E::Worker, "age_band") => list!(AgeBand),
        (E::Worker, "lives_in_area_served") => list!(YesNoUnknown),
        (E::Worker, "qualification") => list!(Qualification),
        (E::Client, "sex") => list!(Sex),
        (E::Client, "ethnicity") => list!(Ethnicity),
        (E::Client, "gp_registered") => list!(YesNoUnknown),
        (E::Client, "employment") => list!(Employment),
        (E::Client, "disability") => list!(YesNoNotStated),
        // Only a client who agrees may be recorded at all (the parser refuses `no` with
        // that reason), so `yes` is the only answer a form offers.
        (E::Client, "consent_to_record") => Codes {
            name: "YesNo",
            list: || vec![(YesNo::Yes.code(), YesNo::Yes.words())],
            several: false,
        },
        (E::Client, "consent_to_share_with_gp") => list!(YesNo),
        (E::Referral, "source") => list!(ReferralSource),
        (E::Episode, "kind") => list!(EpisodeKind),
        (E::Episode, "primary_issue") => list!(PrimaryIssue),
        (E::Episode, "exit_reason") => list!(ExitReason),
        (E::Assessment, "occasion") => list!(Occasion),
        (E::Assessment, "smoking_status") => list!(SmokingStatus),
        (E::Goal, "domain") => list!(GoalDomain),
        (E::Goal, "status") => list!(GoalStatus),
        (E::Session, "mode") => list!(SessionMode),
        (E::Session, "venue") => list!(Venue),
        (E::Session, "purpose") => list!(SessionPurpose),
        (E::Session, "attended") => list!(Attendance),
        (E::OnwardReferral, "action") => list!(OnwardAction),
        (E::OnwardReferral, "destination") => list!(OnwardDestination),
        (E::OnwardReferral, "outcome") => list!(OnwardOutcome),
        (E::WiderIssue, "issue") => list!(WiderIssueKind),
        _ => return None,
    })
}

/// Every code list of the standard with its words, for the test that each code has words
/// and for documents that print the lists.
pub fn all_lists() -> Vec<Codes> {
    vec![
        list!(OrgKind),
        list!(ProviderModel),
        list!(Funding),
        list!(SeniorBuyIn),
        list!(WorkerProfile),
        list!(Targeting),
        list!(YesNo),
        list!(YesNoUnknown),
        list!(YesNoNotStated),
        list!(InteractionModel),
        list!(WorkerRole),
        list!(Sex),
        list!(AgeBand),
        list!(Qualification),
        list!(Ethnicity),
        list!(Employment),
        list!(ReferralSource),
        list!(SourceGroup),
        list!(EpisodeKind),
        list!(PrimaryIssue),
        list!(ExitReason),
        list!(Occasion),
        list!(SmokingStatus),
        list!(GoalDomain),
        list!(GoalStatus),
        list!(SessionMode),
        list!(Venue),
        list!(SessionPurpose),
        list!(Attendance),
        list!(OnwardAction),
        list!(OnwardDestination),
        list!(OnwardOutcome),
        list!(WiderIssueKind),
    ]
}

/// What a field holds, as the parser checks it.
#[derive(Clone, Copy)]
pub enum Shape {
    /// A record reference: the record's own, its service's, or a parent's.
    Reference,
    /// Free text or an identifier, up to a number of characters.
    Text {
        /// The most characters accepted ([`crate::field::text_limit`]).
        max: usize,
    },
    /// A date, written `YYYY-MM-DD` in files.
    Date,
    /// A number in a range, the range of its measure type in [`crate::measure`].
    Number {
        /// The smallest accepted value.
        min: f64,
        /// The largest accepted value.
        max: f64,
        /// Whether only whole numbers are accepted.
        whole: bool,
    },
    /// One code of a list (or several, separated by `;`).
    Code(Codes),
}

/// What a field of the dataset is: the one description forms, the OpenAPI document, the
/// import format document, the extract and the data-quality counts read.
/// `tests/catalogue.rs` checks it against the parser: a required field left empty is
/// refused, an optional one is not, a number outside its range is refused and its edges
/// are accepted.
#[derive(Clone, Copy)]
pub struct About {
    /// The entity the field belongs to.
    pub entity: Entity,
    /// The column name in files and in the database.
    pub name: &'static str,
    /// What a person reads beside it, in sentence case ("Height").
    pub label: &'static str,
    /// A short hint, where the label is not enough.
    pub hint: Option<&'static str>,
    /// The unit of a number, as a person writes it ("cm", "kg").
    pub unit: Option<&'static str>,
    /// Whether a record is refused without it (on its own; some fields are required only
    /// with others, which the hint says).
    pub required: bool,
    /// Whether it is recorded only in some cases (cigarettes for a current smoker, an
    /// exit reason once closed), so that its absence says nothing of data quality.
    pub conditional: bool,
    /// What it holds.
    pub shape: Shape,
}

impl About {
    /// The label with its unit, for a form or a table heading: "Height (cm)".
    pub fn label_with_unit(&self) -> String {
        match self.unit {
            Some(u) => format!("{} ({u})", self.label),
            None => self.label.to_string(),
        }
    }
}

fn number<M: crate::measure::Ranged>() -> Shape {
    Shape::Number {
        min: M::min(),
        max: M::max(),
        whole: M::WHOLE,
    }
}

/// Describes one field; `None` for a name that is not a field of the entity.
pub fn about(entity: Entity, name: &str) -> Option<About> {
    use crate::measure::*;
    use Entity as E;
    let field = entity.fields().iter().find(|f| f.name == name)?;
    let text = || Shape::Text {
        max: crate::field::text_limit(name),
    };
    let shape = match field.kind {
        crate::record::FieldKind::OwnRef
        | crate::record::FieldKind::ServiceRef
        | crate::record::FieldKind::Ref(_) => Shape::Reference,
        _ => match codes_of(entity, name) {
            Some(c) => Shape::Code(c),
            None => match name {
                "height_cm" => number::<HeightCm>(),
                "weight_kg" => number::<WeightKg>(),
                "waist_cm" => number::<WaistCm>(),
                "fruit_veg_portions_per_day" => number::<PortionsPerDay>(),
                "high_fat_snacks_per_day" => number::<SnacksPerDay>(),
                "active_days_per_week" => number::<ActiveDays>(),
                "alcohol_units_per_week" => number::<AlcoholUnits>(),
                "cigarettes_per_day" => number::<CigarettesPerDay>(),
                "self_efficacy" => number::<SelfEfficacy>(),
                "general_health" => number::<GeneralHealth>(),
                "swemwbs_raw" => number::<SwemwbsRaw>(),
                "duration_min" => number::<DurationMin>(),
                "fte" => number::<Fte>(),
                "home_imd_quintile" => number::<ImdQuintile>(),
                n if n.ends_with("_on") || n == "effective_from" || n == "date_of_birth" => {
                    Shape::Date
                }
                _ => text(),
            },
        },
    };
    let (label, hint, unit, required): (&str, Option<&str>, Option<&str>, bool) =
        match (entity, name) {
            (_, "service_ref") => ("Service", None, None, true),
            (E::Organisation, "org_ref") => ("Organisation reference", None, None, true),
            (E::Organisation, "name") => ("Name", None, None, true),
            (E::Organisation, "kind") => ("Kind of organisation", None, None, true),
            (E::Organisation, "ods_code") => ("ODS code", Some("If it has one"), None, false),
            (E::Service, "name") => ("Name", None, None, true),
            (E::Service, "commissioner_org_ref") => ("Commissioner", None, None, true),
            (E::Service, "areas_served") => (
                "Areas served",
                Some("Local authority district codes, separated by ;"),
                None,
                true,
            ),
            (E::Service, "started_on") => ("Date the service started", None, None, true),
            (E::Service, "ended_on") => ("Date the service ended", None, None, false),
            (E::ServiceConfiguration, "configuration_ref") => {
                ("Configuration reference", None, None, true)
            }
            (E::ServiceConfiguration, "effective_from") => ("In force from", None, None, true),
            (E::ServiceConfiguration, "provider_model") => ("Provider model", None, None, true),
            (E::ServiceConfiguration, "funding") => ("Funding", None, None, true),
            (E::ServiceConfiguration, "senior_buy_in") => ("Senior buy-in", None, None, true),
            (E::ServiceConfiguration, "primary_referral_routes") => (
                "Main referral routes",
                Some("One or more, separated by ;"),
                None,
                true,
            ),
            (E::ServiceConfiguration, "worker_profile") => ("Worker profile", None, None, true),
            (E::ServiceConfiguration, "targeting") => ("Targeting", None, None, true),
            (E::ServiceConfiguration, "target_lsoas") => (
                "Target areas (2011 LSOAs)",
                Some("Needed when targeting is local deprived areas, and only then"),
                None,
                false,
            ),
            (E::ServiceConfiguration, "formal_performance_management") => {
                ("Formal performance management", None, None, true)
            }
            (E::ServiceConfiguration, "interaction_model") => {
                ("Interaction model", None, None, true)
            }
            (E::ServiceConfiguration, "notes") => ("Notes", None, None, false),
            (E::Worker, "worker_ref") => ("Worker reference", None, None, true),
            (E::Worker, "display_name") => ("Name", None, None, true),
            (E::Worker, "role") => ("Role", None, None, true),
            (E::Worker, "sex") => ("Sex", None, None, true),
            (E::Worker, "age_band") => ("Age band", None, None, true),
            (E::Worker, "lives_in_area_served") => ("Lives in the area served", None, None, true),
            (E::Worker, "home_imd_quintile") => (
                "Home area deprivation quintile",
                Some("1 is the most deprived fifth of England"),
                None,
                false,
            ),
            (E::Worker, "qualification") => ("Qualification", None, None, true),
            (E::Worker, "started_on") => ("Date they started", None, None, true),
            (E::Worker, "left_on") => ("Date they left", None, None, false),
            (E::Worker, "fte") => (
                "Full-time equivalent",
                Some("From 0.1 to 1.0, like 0.6 for three days a week"),
                None,
                true,
            ),
            (E::Client, "client_ref") => ("Client reference", None, None, true),
            (E::Client, "given_name") => ("First name", None, None, false),
            (E::Client, "family_name") => ("Last name", None, None, false),
            (E::Client, "nhs_number") => (
                "NHS number",
                Some("10 digits, if the client knows it"),
                None,
                false,
            ),
            (E::Client, "date_of_birth") => ("Date of birth", None, None, true),
            (E::Client, "sex") => ("Sex", None, None, true),
            (E::Client, "ethnicity") => ("Ethnic group", None, None, true),
            (E::Client, "postcode") => (
                "Postcode",
                Some("Where the client lives. Leave empty if they have no address."),
                None,
                false,
            ),
            (E::Client, "gp_registered") => ("Registered with a GP", None, None, true),
            (E::Client, "gp_practice_code") => ("GP practice code", Some("If known"), None, false),
            (E::Client, "employment") => ("Employment", None, None, true),
            (E::Client, "disability") => ("Disability", None, None, true),
            (E::Client, "consent_to_record") => (
                "Consents to their information being recorded",
                None,
                None,
                true,
            ),
            (E::Client, "consent_to_share_with_gp") => {
                ("Consents to sharing with their GP", None, None, true)
            }
            (E::Referral, "referral_ref") => ("Referral reference", None, None, true),
            (E::Referral, "client_ref") => ("Client", None, None, true),
            (E::Referral, "received_on") => ("Date the referral was received", None, None, true),
            (E::Referral, "source") => ("Who referred them", None, None, true),
            (E::Referral, "referrer_org_ref") => ("Referring organisation", None, None, false),
            (E::Referral, "reason") => ("Referral reason, in a few words", None, None, false),
            (E::Episode, "episode_ref") => ("Episode reference", None, None, true),
            (E::Episode, "referral_ref") => ("Referral", None, None, true),
            (E::Episode, "lead_worker_ref") => ("Lead health trainer", None, None, true),
            (E::Episode, "kind") => (
                "Kind of support",
                Some("Full: one-to-one work towards a plan. Brief: a single contact."),
                None,
                true,
            ),
            (E::Episode, "first_contact_on") => ("Date of first contact", None, None, true),
            (E::Episode, "primary_issue") => ("Main reason for support", None, None, true),
            (E::Episode, "closed_on") => ("Date the episode closed", None, None, false),
            (E::Episode, "exit_reason") => (
                "Why the episode closed",
                Some("Needed when the episode is closed"),
                None,
                false,
            ),
            (E::Assessment, "assessment_ref") => ("Assessment reference", None, None, true),
            (E::Assessment, "episode_ref") => ("Episode", None, None, true),
            (E::Assessment, "occasion") => ("Occasion", None, None, true),
            (E::Assessment, "assessed_on") => ("Date of the assessment", None, None, true),
            (E::Assessment, "height_cm") => (
                "Height",
                Some("Leave empty to use the last height recorded"),
                Some("cm"),
                false,
            ),
            (E::Assessment, "weight_kg") => ("Weight", None, Some("kg"), false),
            (E::Assessment, "waist_cm") => ("Waist", None, Some("cm"), false),
            (E::Assessment, "fruit_veg_portions_per_day") => {
                ("Fruit and vegetable portions a day", None, None, false)
            }
            (E::Assessment, "high_fat_snacks_per_day") => {
                ("High-fat snacks a day", None, None, false)
            }
            (E::Assessment, "active_days_per_week") => (
                "Days a week with 30 minutes' activity",
                Some("Days with at least 30 minutes of moderate activity, 0 to 7"),
                None,
                false,
            ),
            (E::Assessment, "alcohol_units_per_week") => {
                ("Alcohol units a week", Some("UK units"), None, false)
            }
            (E::Assessment, "smoking_status") => ("Smoking", None, None, false),
            (E::Assessment, "cigarettes_per_day") => (
                "Cigarettes a day",
                Some("Only if they smoke now"),
                None,
                false,
            ),
            (E::Assessment, "self_efficacy") => (
                "Confidence to make changes",
                Some("0 (not at all confident) to 10"),
                None,
                false,
            ),
            (E::Assessment, "general_health") => (
                "General health today",
                Some("0 (worst imaginable) to 100 (best imaginable)"),
                None,
                false,
            ),
            (E::Assessment, "swemwbs_raw") => (
                "Wellbeing score (SWEMWBS)",
                Some("The sum of the 7 answers, each 1 to 5: 7 to 35"),
                None,
                false,
            ),
            (E::Plan, "plan_ref") => ("Plan reference", None, None, true),
            (E::Plan, "episode_ref") => ("Episode", None, None, true),
            (E::Plan, "agreed_on") => ("Date the plan was agreed", None, None, true),
            (E::Goal, "goal_ref") => ("Goal reference", None, None, true),
            (E::Goal, "plan_ref") => ("Plan", None, None, true),
            (E::Goal, "domain") => ("Area", None, None, true),
            (E::Goal, "description") => ("What they will do", None, None, true),
            (E::Goal, "target_on") => ("By when", None, None, false),
            (E::Goal, "status") => ("Status", None, None, true),
            (E::Goal, "status_on") => (
                "Date the status was reached",
                Some("Needed once the goal is no longer open"),
                None,
                false,
            ),
            (E::Session, "session_ref") => ("Session reference", None, None, true),
            (E::Session, "episode_ref") => ("Episode", None, None, true),
            (E::Session, "worker_ref") => ("Health trainer", None, None, true),
            (E::Session, "held_on") => ("Date of the session", None, None, true),
            (E::Session, "duration_min") => ("Length", None, Some("minutes"), true),
            (E::Session, "mode") => ("How it was held", None, None, true),
            (E::Session, "venue") => ("Where", None, None, true),
            (E::Session, "purpose") => ("What it was for", None, None, true),
            (E::Session, "attended") => ("Did the client attend", None, None, true),
            (E::OnwardReferral, "onward_ref") => ("Reference", None, None, true),
            (E::OnwardReferral, "episode_ref") => ("Episode", None, None, true),
            (E::OnwardReferral, "made_on") => ("Date", None, None, true),
            (E::OnwardReferral, "action") => ("Signposted or referred", None, None, true),
            (E::OnwardReferral, "destination") => ("To which service", None, None, true),
            (E::OnwardReferral, "outcome") => ("Outcome so far", None, None, true),
            (E::WiderIssue, "wider_issue_ref") => ("Reference", None, None, true),
            (E::WiderIssue, "episode_ref") => ("Episode", None, None, true),
            (E::WiderIssue, "noted_on") => ("Date noted", None, None, true),
            (E::WiderIssue, "issue") => ("Issue", None, None, true),
            (_, n) => unreachable!("{entity:?}.{n} has no description in the catalogue"),
        };
    let conditional = matches!(
        name,
        "cigarettes_per_day"
            | "target_lsoas"
            | "exit_reason"
            | "closed_on"
            | "status_on"
            | "left_on"
            | "ended_on"
    );
    Some(About {
        entity,
        name: field.name,
        label,
        hint,
        unit,
        required,
        conditional,
        shape,
    })
}

/// Every field of an entity, described, in file order.
pub fn fields_of(entity: Entity) -> Vec<About> {
    entity
        .fields()
        .iter()
        .filter_map(|f| about(entity, f.name))
        .collect()
}

/// The measures of an assessment, in file order: every field after its date (numbers,
/// and smoking status with them). Forms, the data-quality counts and the extract list
/// them from here, so a new measure needs no list of its own in any of them.
pub fn assessment_measures() -> Vec<About> {
    fields_of(Entity::Assessment)
        .into_iter()
        .skip_while(|a| a.name != "assessed_on")
        .skip(1)
        .collect()
}

/// The field reference of the import format document (`docs/import-format.md`, between
/// its markers), written from this catalogue; a test holds the document to it.
pub fn field_reference() -> String {
    let mut out = String::new();
    for e in Entity::ALL {
        out.push_str(&format!(
            "\n### `{}`\n\n| field | what it holds | needed | values |\n| --- | --- | --- | --- |\n",
            e.file_name()
        ));
        for a in fields_of(e) {
            let what = match a.hint {
                Some(h) => format!("{}. {h}", a.label),
                None => a.label.to_string(),
            };
            let needed = if a.required {
                "required"
            } else if a.conditional {
                "when it applies"
            } else {
                "optional"
            };
            let values = match a.shape {
                Shape::Reference => "a reference".to_string(),
                Shape::Text { max } => format!("text, up to {max} characters"),
                Shape::Date => "a date, `YYYY-MM-DD`".to_string(),
                Shape::Number { min, max, whole } => format!(
                    "{} from {min} to {max}{}",
                    if whole { "a whole number" } else { "a number" },
                    a.unit.map(|u| format!(" {u}")).unwrap_or_default()
                ),
                Shape::Code(c) => {
                    let codes: Vec<String> = c
                        .words()
                        .iter()
                        .map(|(code, words)| format!("`{code}` {words}"))
                        .collect();
                    format!(
                        "{}{}",
                        if c.several {
                            "one or more, separated by `;`: "
                        } else {
                            ""
                        },
                        codes.join("; ")
                    )
                }
            };
            out.push_str(&format!(
                "| `{}` | {} | {needed} | {} |\n",
                a.name,
                what.replace('|', "\\|"),
                values.replace('|', "\\|")
            ));
        }
    }
    out
}
