//! The data standard (`spec/dataset.md`) checked from the outside: every column, code
//! list, range, date rule and cross-record rule is exercised at its edges through the
//! public API (`parse_record`, `rules::check_client`, `rules::derive_bmi`,
//! `rules::summarise_episodes`).
//!
//! The expected columns and code lists are written out by hand from dataset.md, never
//! taken from the program's own enums, so that a code list that drifts from the
//! standard makes a test fail. Each row or bundle starts from one known-good base and
//! is broken in exactly one way, so a rejection can only come from the rule under test.

use chrono::NaiveDate;
use dcrs_domain::codes::{
    AgeBand, Attendance, CodeList, Employment, EpisodeKind, Ethnicity, ExitReason, Funding,
    GoalDomain, GoalStatus, InteractionModel, Occasion, OnwardAction, OnwardDestination,
    OnwardOutcome, OrgKind, PrimaryIssue, ProviderModel, Qualification, ReferralSource,
    SeniorBuyIn, SessionMode, SessionPurpose, Sex, SmokingStatus, SourceGroup, Targeting, Venue,
    WiderIssueKind, WorkerProfile, WorkerRole, YesNo, YesNoNotStated, YesNoUnknown,
};
use dcrs_domain::measure::{DurationMin, HeightCm, Ranged, WeightKg};
use dcrs_domain::record::{
    Assessment, Client, Episode, Goal, OnwardReferral, Plan, Referral, Session, WiderIssue,
};
use dcrs_domain::rules::{EpisodeSummary, check_client, derive_bmi, summarise_episodes};
use dcrs_domain::{ClientBundle, Entity, FieldError, Record, RuleSettings, parse_record};
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------
// Helpers for single records
// ---------------------------------------------------------------------------------

/// The "today" every record is parsed against (UK local date).
const TODAY: &str = "2024-06-30";
/// The day after [`TODAY`].
const TOMORROW: &str = "2024-07-01";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

fn today() -> NaiveDate {
    day(TODAY)
}

type Row = Vec<(&'static str, String)>;

fn row(pairs: &[(&'static str, &str)]) -> Row {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// One valid row per entity. Every optional field is blank, so the base rows also show
/// that nothing optional is required.
fn base_row(e: Entity) -> Row {
    match e {
        Entity::Organisation => row(&[
            ("org_ref", "O1"),
            ("name", "NHS Blackpool"),
            ("kind", "pct"),
            ("ods_code", ""),
        ]),
        Entity::Service => row(&[
            ("service_ref", "S1"),
            ("name", "Blackpool Health Trainers"),
            ("commissioner_org_ref", "O1"),
            ("areas_served", "E06000009"),
            ("started_on", "2008-04-01"),
            ("ended_on", ""),
        ]),
        Entity::ServiceConfiguration => row(&[
            ("configuration_ref", "CF1"),
            ("service_ref", "S1"),
            ("effective_from", "2008-04-01"),
            ("provider_model", "single_third_sector"),
            ("funding", "nhs_commissioner"),
            ("senior_buy_in", "yes"),
            ("primary_referral_routes", "gp;self"),
            ("worker_profile", "person_next_door"),
            ("targeting", "universal"),
            ("target_lsoas", ""),
            ("formal_performance_management", "yes"),
            ("interaction_model", "one_to_one_behaviour_change"),
            ("notes", ""),
        ]),
        Entity::Worker => row(&[
            ("worker_ref", "W1"),
            ("service_ref", "S1"),
            ("display_name", "Pat"),
            ("role", "health_trainer"),
            ("sex", "female"),
            ("age_band", "25-34"),
            ("lives_in_area_served", "yes"),
            ("home_imd_quintile", ""),
            ("qualification", "level3_certificate"),
            ("started_on", "2008-05-01"),
            ("left_on", ""),
            ("fte", "1.0"),
        ]),
        Entity::Client => row(&[
            ("client_ref", "C1"),
            ("service_ref", "S1"),
            ("given_name", ""),
            ("family_name", ""),
            ("nhs_number", ""),
            ("date_of_birth", "1970-03-15"),
            ("sex", "male"),
            ("ethnicity", "A"),
            ("postcode", ""),
            ("gp_registered", "yes"),
            ("gp_practice_code", ""),
            ("employment", "employed"),
            ("disability", "no"),
            ("consent_to_record", "yes"),
            ("consent_to_share_with_gp", "yes"),
        ]),
        Entity::Referral => row(&[
            ("referral_ref", "R1"),
            ("service_ref", "S1"),
            ("client_ref", "C1"),
            ("received_on", "2020-01-10"),
            ("source", "gp"),
            ("referrer_org_ref", ""),
            ("reason", ""),
        ]),
        Entity::Episode => row(&[
            ("episode_ref", "E1"),
            ("service_ref", "S1"),
            ("referral_ref", "R1"),
            ("lead_worker_ref", "W1"),
            ("kind", "full"),
            ("first_contact_on", "2020-01-20"),
            ("primary_issue", "weight"),
            ("closed_on", ""),
            ("exit_reason", ""),
        ]),
        Entity::Assessment => row(&[
            ("assessment_ref", "A1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("occasion", "baseline"),
            ("assessed_on", "2020-01-20"),
            ("height_cm", ""),
            ("weight_kg", ""),
            ("waist_cm", ""),
            ("fruit_veg_portions_per_day", ""),
            ("high_fat_snacks_per_day", ""),
            ("active_days_per_week", ""),
            ("alcohol_units_per_week", ""),
            ("smoking_status", ""),
            ("cigarettes_per_day", ""),
            ("self_efficacy", ""),
            ("general_health", ""),
            ("swemwbs_raw", ""),
        ]),
        Entity::Plan => row(&[
            ("plan_ref", "P1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("agreed_on", "2020-02-01"),
        ]),
        Entity::Goal => row(&[
            ("goal_ref", "G1"),
            ("service_ref", "S1"),
            ("plan_ref", "P1"),
            ("domain", "diet"),
            (
                "description",
                "I will eat five portions of fruit and veg a day",
            ),
            ("target_on", ""),
            ("status", "open"),
            ("status_on", ""),
        ]),
        Entity::Session => row(&[
            ("session_ref", "X1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("worker_ref", "W1"),
            ("held_on", "2020-01-20"),
            ("duration_min", "45"),
            ("mode", "face_to_face"),
            ("venue", "gp_practice"),
            ("purpose", "assessment"),
            ("attended", "yes"),
        ]),
        Entity::OnwardReferral => row(&[
            ("onward_ref", "OR1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("made_on", "2020-02-01"),
            ("action", "signposted"),
            ("destination", "exercise_referral"),
            ("outcome", "unknown"),
        ]),
        Entity::WiderIssue => row(&[
            ("wider_issue_ref", "WI1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("noted_on", "2020-02-01"),
            ("issue", "debt_or_money"),
        ]),
    }
}

/// The row with one field changed; panics if the field is not a column of the row, so
/// a typo in a test cannot pass silently.
fn set(mut r: Row, field: &str, value: &str) -> Row {
    let slot = r
        .iter_mut()
        .find(|(k, _)| *k == field)
        .unwrap_or_else(|| panic!("the base row has no column {field}"));
    slot.1 = value.to_string();
    r
}

fn base_with(e: Entity, changes: &[(&str, &str)]) -> Row {
    changes
        .iter()
        .fold(base_row(e), |r, (field, value)| set(r, field, value))
}

fn parse(e: Entity, r: &Row) -> Result<Record, Vec<FieldError>> {
    parse_record(e, r, today())
}

#[track_caller]
fn accept(e: Entity, r: &Row, what: &str) -> Record {
    match parse(e, r) {
        Ok(rec) => {
            assert_eq!(rec.entity(), e, "{what}");
            rec
        }
        Err(errs) => panic!("{what}: the {e:?} row should be accepted, got {errs:#?}\nrow: {r:?}"),
    }
}

/// Asserts the row is rejected and that every error names `field` with a reason.
#[track_caller]
fn reject(e: Entity, r: &Row, field: &str, what: &str) -> Vec<FieldError> {
    match parse(e, r) {
        Ok(rec) => panic!("{what}: the {e:?} row should be rejected on {field}, got {rec:?}"),
        Err(errs) => {
            assert!(!errs.is_empty(), "{what}: an error list must not be empty");
            for x in &errs {
                assert_eq!(
                    x.field, field,
                    "{what}: every error should name {field}, got {errs:#?}"
                );
                assert!(
                    !x.reason.trim().is_empty(),
                    "{what}: an error needs a reason"
                );
            }
            errs
        }
    }
}

/// The stored text of a field of a parsed record (as it would be exported).
fn stored(rec: &Record, field: &str) -> String {
    rec.to_fields()
        .into_iter()
        .find(|(k, _)| *k == field)
        .unwrap_or_else(|| panic!("record has no field {field}"))
        .1
}

// ---------------------------------------------------------------------------------
// The standard, written out by hand from dataset.md
// ---------------------------------------------------------------------------------

/// The columns of each file (dataset.md; every tenant file also carries `service_ref`).
const COLUMNS: &[(Entity, &[&str])] = &[
    (
        Entity::Organisation,
        &["org_ref", "name", "kind", "ods_code"],
    ),
    (
        Entity::Service,
        &[
            "service_ref",
            "name",
            "commissioner_org_ref",
            "areas_served",
            "started_on",
            "ended_on",
        ],
    ),
    (
        Entity::ServiceConfiguration,
        &[
            "configuration_ref",
            "service_ref",
            "effective_from",
            "provider_model",
            "funding",
            "senior_buy_in",
            "primary_referral_routes",
            "worker_profile",
            "targeting",
            "target_lsoas",
            "formal_performance_management",
            "interaction_model",
            "notes",
        ],
    ),
    (
        Entity::Worker,
        &[
            "worker_ref",
            "service_ref",
            "display_name",
            "role",
            "sex",
            "age_band",
            "lives_in_area_served",
            "home_imd_quintile",
            "qualification",
            "started_on",
            "left_on",
            "fte",
        ],
    ),
    (
        Entity::Client,
        &[
            "client_ref",
            "service_ref",
            "given_name",
            "family_name",
            "nhs_number",
            "date_of_birth",
            "sex",
            "ethnicity",
            "postcode",
            "gp_registered",
            "gp_practice_code",
            "employment",
            "disability",
            "consent_to_record",
            "consent_to_share_with_gp",
        ],
    ),
    (
        Entity::Referral,
        &[
            "referral_ref",
            "service_ref",
            "client_ref",
            "received_on",
            "source",
            "referrer_org_ref",
            "reason",
        ],
    ),
    (
        Entity::Episode,
        &[
            "episode_ref",
            "service_ref",
            "referral_ref",
            "lead_worker_ref",
            "kind",
            "first_contact_on",
            "primary_issue",
            "closed_on",
            "exit_reason",
        ],
    ),
    (
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
    ),
    (
        Entity::Plan,
        &["plan_ref", "service_ref", "episode_ref", "agreed_on"],
    ),
    (
        Entity::Goal,
        &[
            "goal_ref",
            "service_ref",
            "plan_ref",
            "domain",
            "description",
            "target_on",
            "status",
            "status_on",
        ],
    ),
    (
        Entity::Session,
        &[
            "session_ref",
            "service_ref",
            "episode_ref",
            "worker_ref",
            "held_on",
            "duration_min",
            "mode",
            "venue",
            "purpose",
            "attended",
        ],
    ),
    (
        Entity::OnwardReferral,
        &[
            "onward_ref",
            "service_ref",
            "episode_ref",
            "made_on",
            "action",
            "destination",
            "outcome",
        ],
    ),
    (
        Entity::WiderIssue,
        &[
            "wider_issue_ref",
            "service_ref",
            "episode_ref",
            "noted_on",
            "issue",
        ],
    ),
];

/// Fields a record is rejected without ("Required" in dataset.md: everything not
/// marked optional, conditional or derived).
const REQUIRED: &[(Entity, &[&str])] = &[
    (Entity::Organisation, &["org_ref", "name", "kind"]),
    (
        Entity::Service,
        &[
            "service_ref",
            "name",
            "commissioner_org_ref",
            "areas_served",
            "started_on",
        ],
    ),
    (
        Entity::ServiceConfiguration,
        &[
            "configuration_ref",
            "service_ref",
            "effective_from",
            "provider_model",
            "funding",
            "senior_buy_in",
            "primary_referral_routes",
            "worker_profile",
            "targeting",
            "formal_performance_management",
            "interaction_model",
        ],
    ),
    (
        Entity::Worker,
        &[
            "worker_ref",
            "service_ref",
            "display_name",
            "role",
            "sex",
            "age_band",
            "lives_in_area_served",
            "qualification",
            "started_on",
            "fte",
        ],
    ),
    (
        Entity::Client,
        &[
            "client_ref",
            "service_ref",
            "date_of_birth",
            "sex",
            "ethnicity",
            "gp_registered",
            "employment",
            "disability",
            "consent_to_record",
            "consent_to_share_with_gp",
        ],
    ),
    (
        Entity::Referral,
        &[
            "referral_ref",
            "service_ref",
            "client_ref",
            "received_on",
            "source",
        ],
    ),
    (
        Entity::Episode,
        &[
            "episode_ref",
            "service_ref",
            "referral_ref",
            "lead_worker_ref",
            "kind",
            "first_contact_on",
            "primary_issue",
        ],
    ),
    (
        Entity::Assessment,
        &[
            "assessment_ref",
            "service_ref",
            "episode_ref",
            "occasion",
            "assessed_on",
        ],
    ),
    (
        Entity::Plan,
        &["plan_ref", "service_ref", "episode_ref", "agreed_on"],
    ),
    (
        Entity::Goal,
        &[
            "goal_ref",
            "service_ref",
            "plan_ref",
            "domain",
            "description",
            "status",
        ],
    ),
    (
        Entity::Session,
        &[
            "session_ref",
            "service_ref",
            "episode_ref",
            "worker_ref",
            "held_on",
            "duration_min",
            "mode",
            "venue",
            "purpose",
            "attended",
        ],
    ),
    (
        Entity::OnwardReferral,
        &[
            "onward_ref",
            "service_ref",
            "episode_ref",
            "made_on",
            "action",
            "destination",
            "outcome",
        ],
    ),
    (
        Entity::WiderIssue,
        &[
            "wider_issue_ref",
            "service_ref",
            "episode_ref",
            "noted_on",
            "issue",
        ],
    ),
];

const YES_NO: &[&str] = &["yes", "no"];
const YES_NO_UNKNOWN: &[&str] = &["yes", "no", "unknown"];
const YES_NO_NOT_STATED: &[&str] = &["yes", "no", "not_stated"];
const SEX: &[&str] = &["male", "female", "other", "not_stated"];
const ORG_KIND: &[&str] = &[
    "pct",
    "local_authority",
    "nhs_trust",
    "gp_practice",
    "third_sector",
    "private",
    "other",
];
const PROVIDER_MODEL: &[&str] = &[
    "single_third_sector",
    "multiple_third_sector",
    "nhs_in_house",
    "nhs_and_third_sector",
    "external_provider",
    "local_authority_in_house",
];
const FUNDING: &[&str] = &[
    "nhs_commissioner",
    "local_authority",
    "non_health_public",
    "gp_commissioner",
    "mixed",
    "other",
];
const SENIOR_BUY_IN: &[&str] = &["yes", "no", "champion_left"];
const WORKER_PROFILE: &[&str] = &["person_next_door", "work_ready_preferred", "mixed_rebadged"];
const TARGETING: &[&str] = &[
    "deprived_areas_local",
    "most_deprived_20pct",
    "specific_groups",
    "universal",
];
const INTERACTION_MODEL: &[&str] = &[
    "one_to_one_behaviour_change",
    "one_to_one_plus_brief_contacts",
    "early_plan_prioritised",
    "telephone_assessment_and_referral",
    "group_based",
];
const WORKER_ROLE: &[&str] = &[
    "health_trainer",
    "senior_health_trainer",
    "champion_volunteer",
    "team_leader",
];
const AGE_BAND: &[&str] = &["16-24", "25-34", "35-44", "45-54", "55-64", "65+"];
const QUALIFICATION: &[&str] = &["none", "in_training", "level3_certificate", "level2_award"];
const ETHNICITY: &[&str] = &[
    "A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z", "99",
];
const EMPLOYMENT: &[&str] = &[
    "employed",
    "unemployed",
    "student",
    "retired",
    "long_term_sick_or_disabled",
    "carer",
    "other",
    "not_stated",
];
/// Referral sources with their group (dataset.md, "Referral sources and their groups").
const REFERRAL_SOURCE_GROUPS: &[(&str, &str)] = &[
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
const REFERRAL_SOURCE: &[&str] = &[
    "self",
    "friend_or_family",
    "community_organisation",
    "outreach_event",
    "workplace",
    "local_authority_service",
    "housing_or_jobcentre",
    "gp",
    "practice_nurse",
    "health_check",
    "stop_smoking_service",
    "pharmacy",
    "hospital",
    "mental_health_service",
    "other_health_professional",
    "probation",
    "prison",
    "other",
];
const EPISODE_KIND: &[&str] = &["full", "brief"];
const PRIMARY_ISSUE: &[&str] = &[
    "diet",
    "physical_activity",
    "weight",
    "smoking",
    "alcohol",
    "emotional_wellbeing",
    "sexual_health",
    "local_issue",
    "other",
];
const EXIT_REASON: &[&str] = &[
    "completed",
    "disengaged",
    "withdrew",
    "referred_on",
    "moved_away",
    "inappropriate_referral",
    "other",
];
const OCCASION: &[&str] = &["baseline", "exit", "follow_up"];
const SMOKING_STATUS: &[&str] = &["never", "ex", "current"];
const GOAL_DOMAIN: &[&str] = &[
    "diet",
    "physical_activity",
    "weight",
    "smoking",
    "alcohol",
    "wellbeing",
    "social",
    "other",
];
const GOAL_STATUS: &[&str] = &[
    "open",
    "fully_achieved",
    "partly_achieved",
    "not_achieved",
    "abandoned",
];
const SESSION_MODE: &[&str] = &[
    "face_to_face",
    "telephone",
    "video",
    "text_message",
    "group",
];
const VENUE: &[&str] = &[
    "community_venue",
    "gp_practice",
    "health_centre",
    "pharmacy",
    "client_home",
    "workplace",
    "leisure_centre",
    "prison_or_probation",
    "remote",
    "other",
];
const SESSION_PURPOSE: &[&str] = &[
    "assessment",
    "plan_setting",
    "support",
    "review",
    "follow_up",
    "brief_intervention",
];
const ATTENDED: &[&str] = &["yes", "did_not_attend", "cancelled"];
const ONWARD_ACTION: &[&str] = &["signposted", "referred"];
const ONWARD_DESTINATION: &[&str] = &[
    "stop_smoking",
    "weight_management",
    "exercise_referral",
    "alcohol_service",
    "mental_health",
    "welfare_or_debt_advice",
    "housing",
    "employment_support",
    "community_group",
    "gp",
    "other",
];
const ONWARD_OUTCOME: &[&str] = &["unknown", "attended", "did_not_attend"];
const WIDER_ISSUE: &[&str] = &[
    "housing",
    "debt_or_money",
    "isolation",
    "employment",
    "caring",
    "food_insecurity",
    "other",
];

/// Every code-list field of every entity with the codes dataset.md allows.
/// `consent_to_record` is a yes/no field of which only `yes` may be recorded.
const CODE_FIELDS: &[(Entity, &str, &[&str])] = &[
    (Entity::Organisation, "kind", ORG_KIND),
    (
        Entity::ServiceConfiguration,
        "provider_model",
        PROVIDER_MODEL,
    ),
    (Entity::ServiceConfiguration, "funding", FUNDING),
    (Entity::ServiceConfiguration, "senior_buy_in", SENIOR_BUY_IN),
    (
        Entity::ServiceConfiguration,
        "primary_referral_routes",
        REFERRAL_SOURCE,
    ),
    (
        Entity::ServiceConfiguration,
        "worker_profile",
        WORKER_PROFILE,
    ),
    (Entity::ServiceConfiguration, "targeting", TARGETING),
    (
        Entity::ServiceConfiguration,
        "formal_performance_management",
        YES_NO,
    ),
    (
        Entity::ServiceConfiguration,
        "interaction_model",
        INTERACTION_MODEL,
    ),
    (Entity::Worker, "role", WORKER_ROLE),
    (Entity::Worker, "sex", SEX),
    (Entity::Worker, "age_band", AGE_BAND),
    (Entity::Worker, "lives_in_area_served", YES_NO_UNKNOWN),
    (Entity::Worker, "qualification", QUALIFICATION),
    (Entity::Client, "sex", SEX),
    (Entity::Client, "ethnicity", ETHNICITY),
    (Entity::Client, "gp_registered", YES_NO_UNKNOWN),
    (Entity::Client, "employment", EMPLOYMENT),
    (Entity::Client, "disability", YES_NO_NOT_STATED),
    (Entity::Client, "consent_to_record", &["yes"]),
    (Entity::Client, "consent_to_share_with_gp", YES_NO),
    (Entity::Referral, "source", REFERRAL_SOURCE),
    (Entity::Episode, "kind", EPISODE_KIND),
    (Entity::Episode, "primary_issue", PRIMARY_ISSUE),
    (Entity::Episode, "exit_reason", EXIT_REASON),
    (Entity::Assessment, "occasion", OCCASION),
    (Entity::Assessment, "smoking_status", SMOKING_STATUS),
    (Entity::Goal, "domain", GOAL_DOMAIN),
    (Entity::Goal, "status", GOAL_STATUS),
    (Entity::Session, "mode", SESSION_MODE),
    (Entity::Session, "venue", VENUE),
    (Entity::Session, "purpose", SESSION_PURPOSE),
    (Entity::Session, "attended", ATTENDED),
    (Entity::OnwardReferral, "action", ONWARD_ACTION),
    (Entity::OnwardReferral, "destination", ONWARD_DESTINATION),
    (Entity::OnwardReferral, "outcome", ONWARD_OUTCOME),
    (Entity::WiderIssue, "issue", WIDER_ISSUE),
];

/// The base row with a code field set to `code`, plus whatever the standard requires
/// alongside that code (a close date with an exit reason, a status date with a final
/// goal status, target LSOAs with local area targeting).
fn row_with_code(e: Entity, field: &str, code: &str) -> Row {
    let r = set(base_row(e), field, code);
    match (e, field) {
        (Entity::Episode, "exit_reason") => set(r, "closed_on", "2020-06-15"),
        (Entity::Goal, "status") if code != "open" => set(r, "status_on", "2020-06-01"),
        (Entity::ServiceConfiguration, "targeting") if code == "deprived_areas_local" => {
            set(r, "target_lsoas", "E01012736")
        }
        _ => r,
    }
}

// ---------------------------------------------------------------------------------
// Columns, base rows and required fields
// ---------------------------------------------------------------------------------

#[test]
fn every_entity_has_exactly_the_columns_of_the_standard() {
    assert_eq!(COLUMNS.len(), 13);
    for e in Entity::ALL {
        let expected: BTreeSet<&str> = COLUMNS
            .iter()
            .find(|(x, _)| *x == e)
            .unwrap_or_else(|| panic!("no expected columns for {e:?}"))
            .1
            .iter()
            .copied()
            .collect();
        let program: BTreeSet<&str> = e.fields().iter().map(|f| f.name).collect();
        assert_eq!(program, expected, "columns of {}", e.file_name());
        let base: BTreeSet<&str> = base_row(e).iter().map(|(k, _)| *k).collect();
        assert_eq!(base, expected, "the test's base row for {e:?}");
        // Tenant entities carry service_ref; organisations are shared.
        assert_eq!(
            e.fields().iter().any(|f| f.name == "service_ref"),
            e != Entity::Organisation,
            "{e:?} service_ref column"
        );
    }
}

#[test]
fn a_valid_base_row_of_every_entity_is_accepted_with_optional_fields_blank() {
    for e in Entity::ALL {
        let rec = accept(e, &base_row(e), "base row");
        assert_eq!(rec.own_ref(), base_row(e)[0].1, "{e:?} own reference");
        if e.is_tenant() {
            assert_eq!(rec.service_ref(), Some("S1"), "{e:?} service_ref");
        }
    }
}

#[test]
fn optional_fields_filled_with_valid_values_are_accepted() {
    let cases: &[(Entity, &[(&str, &str)])] = &[
        (Entity::Organisation, &[("ods_code", "5HP")]),
        (Entity::Service, &[("ended_on", "2012-03-31")]),
        (
            Entity::ServiceConfiguration,
            &[("notes", "Re-commissioned to a single provider")],
        ),
        (
            Entity::Worker,
            &[("home_imd_quintile", "2"), ("left_on", "2012-03-31")],
        ),
        (
            Entity::Client,
            &[
                ("given_name", "J"),
                ("family_name", "S"),
                ("nhs_number", "9434765919"),
                ("postcode", "FY1 5DW"),
                ("gp_practice_code", "P81001"),
            ],
        ),
        (
            Entity::Referral,
            &[("referrer_org_ref", "O2"), ("reason", "weight")],
        ),
        (
            Entity::Episode,
            &[("closed_on", "2020-06-15"), ("exit_reason", "completed")],
        ),
        (
            Entity::Assessment,
            &[
                ("height_cm", "172.5"),
                ("weight_kg", "88.2"),
                ("waist_cm", "101"),
                ("fruit_veg_portions_per_day", "2.5"),
                ("high_fat_snacks_per_day", "3"),
                ("active_days_per_week", "2"),
                ("alcohol_units_per_week", "14.5"),
                ("smoking_status", "current"),
                ("cigarettes_per_day", "15"),
                ("self_efficacy", "6"),
                ("general_health", "55"),
                ("swemwbs_raw", "21"),
            ],
        ),
        (Entity::Goal, &[("target_on", "2020-04-01")]),
    ];
    for (e, changes) in cases {
        let rec = accept(*e, &base_with(*e, changes), "optional fields filled");
        for (field, value) in *changes {
            let got = stored(&rec, field);
            // Numbers are compared as numbers (172.5 may be written back as 172.5).
            match (got.parse::<f64>(), value.parse::<f64>()) {
                (Ok(a), Ok(b)) if !field.ends_with("_code") => {
                    assert_eq!(a, b, "{e:?}.{field}")
                }
                _ => assert_eq!(&got, value, "{e:?}.{field}"),
            }
        }
    }
}

#[test]
fn every_required_field_left_blank_is_rejected_naming_the_field() {
    assert_eq!(REQUIRED.len(), 13);
    for (e, fields) in REQUIRED {
        for field in *fields {
            let what = format!("{e:?}.{field} blank");
            let errs = reject(*e, &set(base_row(*e), field, ""), field, &what);
            assert_eq!(errs[0].value, "", "{what}: the value is reported as blank");
            // Only spaces is the same as blank.
            reject(*e, &set(base_row(*e), field, "   "), field, &what);
        }
    }
}

// ---------------------------------------------------------------------------------
// Code lists
// ---------------------------------------------------------------------------------

#[test]
fn every_code_of_every_code_list_is_accepted_and_stored_as_written() {
    for (e, field, codes) in CODE_FIELDS {
        for code in *codes {
            let what = format!("{e:?}.{field} = {code}");
            let rec = accept(*e, &row_with_code(*e, field, code), &what);
            assert_eq!(&stored(&rec, field), code, "{what}");
        }
    }
}

#[test]
fn a_code_outside_each_code_list_is_rejected_naming_the_field() {
    for (e, field, codes) in CODE_FIELDS {
        // A made-up code, a label instead of a code, and a code with a typo.
        let typo = format!("{}x", codes[0]);
        for wrong in ["not_a_code", "Not stated", typo.as_str()] {
            let what = format!("{e:?}.{field} = {wrong}");
            let errs = reject(*e, &row_with_code(*e, field, wrong), field, &what);
            assert!(
                errs.iter().any(|x| x.value.contains(wrong)),
                "{what}: the error should carry the value, got {errs:#?}"
            );
        }
    }
}

#[test]
fn codes_from_one_list_are_not_accepted_in_another() {
    // Plausible mix-ups: a referral source as a goal domain, a goal domain as a
    // primary issue, the episode's `completed` as a goal status.
    let cases: &[(Entity, &str, &str)] = &[
        (Entity::Goal, "domain", "emotional_wellbeing"),
        (Entity::Episode, "primary_issue", "wellbeing"),
        (Entity::Goal, "status", "completed"),
        (Entity::Session, "attended", "attended"),
        (Entity::OnwardReferral, "outcome", "yes"),
        (Entity::Client, "gp_registered", "not_stated"),
        (Entity::Client, "disability", "unknown"),
        (Entity::Client, "consent_to_share_with_gp", "unknown"),
        (Entity::Worker, "age_band", "16-25"),
        (Entity::Worker, "age_band", "65-74"),
        (Entity::Referral, "source", "self_referral"),
        (Entity::Session, "venue", "home"),
    ];
    for (e, field, wrong) in cases {
        reject(
            *e,
            &row_with_code(*e, field, wrong),
            field,
            &format!("{e:?}.{field} = {wrong}"),
        );
    }
}

/// The program's code lists hold exactly the standard's codes: no more (a code the
/// standard does not have would be accepted) and no fewer.
#[test]
fn the_programs_code_lists_are_exactly_the_standards() {
    fn same<C: CodeList>(name: &str, expected: &[&str]) {
        let program: BTreeSet<&str> = C::all_codes().into_iter().collect();
        let standard: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(program, standard, "code list {name}");
    }
    same::<OrgKind>("organisation kind", ORG_KIND);
    same::<ProviderModel>("provider_model", PROVIDER_MODEL);
    same::<Funding>("funding", FUNDING);
    same::<SeniorBuyIn>("senior_buy_in", SENIOR_BUY_IN);
    same::<WorkerProfile>("worker_profile", WORKER_PROFILE);
    same::<Targeting>("targeting", TARGETING);
    same::<YesNo>("yes/no", YES_NO);
    same::<YesNoUnknown>("yes/no/unknown", YES_NO_UNKNOWN);
    same::<YesNoNotStated>("yes/no/not_stated", YES_NO_NOT_STATED);
    same::<InteractionModel>("interaction_model", INTERACTION_MODEL);
    same::<WorkerRole>("role", WORKER_ROLE);
    same::<Sex>("sex", SEX);
    same::<AgeBand>("age_band", AGE_BAND);
    same::<Qualification>("qualification", QUALIFICATION);
    same::<Ethnicity>("ethnicity", ETHNICITY);
    same::<Employment>("employment", EMPLOYMENT);
    same::<ReferralSource>("referral source", REFERRAL_SOURCE);
    same::<SourceGroup>(
        "source group",
        &["community", "clinical", "criminal_justice", "other"],
    );
    same::<EpisodeKind>("episode kind", EPISODE_KIND);
    same::<PrimaryIssue>("primary_issue", PRIMARY_ISSUE);
    same::<ExitReason>("exit_reason", EXIT_REASON);
    same::<Occasion>("occasion", OCCASION);
    same::<SmokingStatus>("smoking_status", SMOKING_STATUS);
    same::<GoalDomain>("goal domain", GOAL_DOMAIN);
    same::<GoalStatus>("goal status", GOAL_STATUS);
    same::<SessionMode>("mode", SESSION_MODE);
    same::<Venue>("venue", VENUE);
    same::<SessionPurpose>("purpose", SESSION_PURPOSE);
    same::<Attendance>("attended", ATTENDED);
    same::<OnwardAction>("action", ONWARD_ACTION);
    same::<OnwardDestination>("destination", ONWARD_DESTINATION);
    same::<OnwardOutcome>("outcome", ONWARD_OUTCOME);
    same::<WiderIssueKind>("wider issue", WIDER_ISSUE);
}

#[test]
fn every_referral_source_belongs_to_the_group_in_the_standard() {
    assert_eq!(REFERRAL_SOURCE_GROUPS.len(), REFERRAL_SOURCE.len());
    for (code, group) in REFERRAL_SOURCE_GROUPS {
        let source = ReferralSource::parse(code).unwrap_or_else(|| panic!("source {code}"));
        assert_eq!(source.group().code(), *group, "group of {code}");
    }
}

#[test]
fn primary_referral_routes_take_a_semicolon_list_of_referral_sources() {
    let e = Entity::ServiceConfiguration;
    let f = "primary_referral_routes";
    let rec = accept(e, &set(base_row(e), f, "self; gp;probation"), "a list");
    let routes: BTreeSet<String> = stored(&rec, f).split(';').map(str::to_string).collect();
    let expected: BTreeSet<String> = ["self", "gp", "probation"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(routes, expected);
    reject(e, &set(base_row(e), f, "gp;nonsense"), f, "one bad item");
    reject(e, &set(base_row(e), f, "gp;;self"), f, "an empty item");
}

#[test]
fn ethnicity_accepts_the_nhs_categories_and_rejects_the_letters_the_nhs_skips() {
    let e = Entity::Client;
    for code in [
        "A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z", "99",
    ] {
        let rec = accept(e, &set(base_row(e), "ethnicity", code), code);
        assert_eq!(stored(&rec, "ethnicity"), code);
    }
    for code in ["I", "O", "Q", "T", "U", "Y", "98", "0", "AA"] {
        reject(e, &set(base_row(e), "ethnicity", code), "ethnicity", code);
    }
}

#[test]
fn a_client_who_does_not_consent_to_being_recorded_is_rejected() {
    let e = Entity::Client;
    let errs = reject(
        e,
        &set(base_row(e), "consent_to_record", "no"),
        "consent_to_record",
        "consent no",
    );
    assert!(errs[0].reason.contains("recorded"), "{errs:?}");
    reject(
        e,
        &set(base_row(e), "consent_to_record", "unknown"),
        "consent_to_record",
        "consent unknown",
    );
}

// ---------------------------------------------------------------------------------
// Numeric ranges
// ---------------------------------------------------------------------------------

/// (entity, field, min, max, just below min, just above max, whole number).
const RANGES: &[(Entity, &str, &str, &str, &str, &str, bool)] = &[
    (
        Entity::Assessment,
        "height_cm",
        "100",
        "250",
        "99.9",
        "250.1",
        false,
    ),
    (
        Entity::Assessment,
        "weight_kg",
        "25",
        "350",
        "24.9",
        "350.1",
        false,
    ),
    (
        Entity::Assessment,
        "waist_cm",
        "40",
        "250",
        "39.9",
        "250.1",
        false,
    ),
    (
        Entity::Assessment,
        "fruit_veg_portions_per_day",
        "0",
        "20",
        "-0.1",
        "20.1",
        false,
    ),
    (
        Entity::Assessment,
        "high_fat_snacks_per_day",
        "0",
        "20",
        "-0.1",
        "20.1",
        false,
    ),
    (
        Entity::Assessment,
        "active_days_per_week",
        "0",
        "7",
        "-1",
        "8",
        true,
    ),
    (
        Entity::Assessment,
        "alcohol_units_per_week",
        "0",
        "300",
        "-0.1",
        "300.1",
        false,
    ),
    (
        Entity::Assessment,
        "cigarettes_per_day",
        "0",
        "100",
        "-1",
        "101",
        true,
    ),
    (
        Entity::Assessment,
        "self_efficacy",
        "0",
        "10",
        "-1",
        "11",
        true,
    ),
    (
        Entity::Assessment,
        "general_health",
        "0",
        "100",
        "-1",
        "101",
        true,
    ),
    (
        Entity::Assessment,
        "swemwbs_raw",
        "7",
        "35",
        "6",
        "36",
        true,
    ),
    (
        Entity::Session,
        "duration_min",
        "1",
        "480",
        "0",
        "481",
        true,
    ),
    (Entity::Worker, "fte", "0.1", "1.0", "0.09", "1.01", false),
    (
        Entity::Worker,
        "home_imd_quintile",
        "1",
        "5",
        "0",
        "6",
        true,
    ),
];

/// The base row with a numeric field set; cigarettes are only recorded for a current
/// smoker, so that row also says so.
fn row_with_number(e: Entity, field: &str, value: &str) -> Row {
    let r = set(base_row(e), field, value);
    if field == "cigarettes_per_day" {
        set(r, "smoking_status", "current")
    } else {
        r
    }
}

#[test]
fn every_range_accepts_its_minimum_and_maximum() {
    for (e, field, min, max, _, _, _) in RANGES {
        for value in [min, max] {
            let what = format!("{e:?}.{field} = {value}");
            let rec = accept(*e, &row_with_number(*e, field, value), &what);
            let got: f64 = stored(&rec, field)
                .parse()
                .unwrap_or_else(|_| panic!("{what}: stored value is not a number"));
            assert_eq!(got, value.parse::<f64>().unwrap(), "{what}: stored value");
        }
    }
}

#[test]
fn every_range_rejects_a_value_just_below_its_minimum_and_just_above_its_maximum() {
    for (e, field, _, _, below, above, _) in RANGES {
        for value in [below, above] {
            let what = format!("{e:?}.{field} = {value}");
            reject(*e, &row_with_number(*e, field, value), field, &what);
        }
    }
}

#[test]
fn every_numeric_field_rejects_text_that_is_not_a_number() {
    for (e, field, ..) in RANGES {
        for value in ["abc", "12kg", "1,5", "NaN", "inf"] {
            let what = format!("{e:?}.{field} = {value}");
            reject(*e, &row_with_number(*e, field, value), field, &what);
        }
    }
}

#[test]
fn whole_number_fields_reject_a_fraction() {
    for (e, field, min, max, _, _, whole) in RANGES {
        if !whole {
            continue;
        }
        // Halfway between min and max, so only the fraction is wrong.
        let mid = (min.parse::<f64>().unwrap() + max.parse::<f64>().unwrap()) / 2.0;
        let value = format!("{}.5", mid.floor());
        let what = format!("{e:?}.{field} = {value}");
        reject(*e, &row_with_number(*e, field, &value), field, &what);
    }
}

#[test]
fn optional_measures_may_be_blank_but_duration_and_fte_are_required() {
    // Every assessment measure is optional ("any of"); the base row leaves all blank.
    accept(
        Entity::Assessment,
        &base_row(Entity::Assessment),
        "no measures",
    );
    accept(
        Entity::Worker,
        &set(base_row(Entity::Worker), "home_imd_quintile", ""),
        "quintile blank",
    );
    reject(
        Entity::Session,
        &set(base_row(Entity::Session), "duration_min", ""),
        "duration_min",
        "duration blank",
    );
    reject(
        Entity::Worker,
        &set(base_row(Entity::Worker), "fte", ""),
        "fte",
        "fte blank",
    );
}

#[test]
fn cigarettes_per_day_is_only_recorded_for_current_smokers() {
    let e = Entity::Assessment;
    let with = |status: &str| {
        base_with(
            e,
            &[("smoking_status", status), ("cigarettes_per_day", "10")],
        )
    };
    let rec = accept(e, &with("current"), "current smoker");
    assert_eq!(stored(&rec, "cigarettes_per_day"), "10");
    for status in ["never", "ex", ""] {
        let errs = reject(
            e,
            &with(status),
            "cigarettes_per_day",
            &format!("smoking_status {status:?}"),
        );
        assert!(errs[0].reason.contains("current"), "{errs:?}");
    }
    // A non-smoker with no cigarette count is fine.
    accept(
        e,
        &set(base_row(e), "smoking_status", "never"),
        "never, blank count",
    );
}

// ---------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------

/// Dates of things that have happened: never after today. The extra changes keep the
/// row otherwise valid (a close needs an exit reason, a status date a final status).
/// A date field with the other changes that keep its row valid.
type DateField = (
    Entity,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const EVENT_DATES: &[DateField] = &[
    (Entity::Service, "started_on", &[]),
    (Entity::ServiceConfiguration, "effective_from", &[]),
    (Entity::Worker, "started_on", &[]),
    (Entity::Client, "date_of_birth", &[]),
    (Entity::Referral, "received_on", &[]),
    (Entity::Episode, "first_contact_on", &[]),
    (
        Entity::Episode,
        "closed_on",
        &[("exit_reason", "completed")],
    ),
    (Entity::Assessment, "assessed_on", &[]),
    (Entity::Plan, "agreed_on", &[]),
    (Entity::Goal, "status_on", &[("status", "fully_achieved")]),
    (Entity::Session, "held_on", &[]),
    (Entity::OnwardReferral, "made_on", &[]),
    (Entity::WiderIssue, "noted_on", &[]),
];

const MALFORMED_DATES: &[&str] = &[
    "2020-02-30",
    "2020-13-01",
    "2020-00-10",
    "15/03/2020",
    "2020/03/15",
    "2020-3-5",
    "20200315",
    "yesterday",
];

#[test]
fn a_malformed_date_is_rejected_naming_the_field() {
    let planned: &[DateField] = &[
        (Entity::Service, "ended_on", &[]),
        (Entity::Worker, "left_on", &[]),
        (Entity::Goal, "target_on", &[]),
    ];
    for (e, field, extra) in EVENT_DATES.iter().chain(planned) {
        for bad in MALFORMED_DATES {
            let r = set(base_with(*e, extra), field, bad);
            reject(*e, &r, field, &format!("{e:?}.{field} = {bad}"));
        }
    }
}

#[test]
fn an_event_date_after_today_is_rejected_and_today_is_accepted() {
    for (e, field, extra) in EVENT_DATES {
        let base = base_with(*e, extra);
        let rec = accept(
            *e,
            &set(base.clone(), field, TODAY),
            &format!("{e:?}.{field} today"),
        );
        assert_eq!(stored(&rec, field), TODAY);
        for future in [TOMORROW, "2100-01-01"] {
            let errs = reject(
                *e,
                &set(base.clone(), field, future),
                field,
                &format!("{e:?}.{field} = {future}"),
            );
            assert!(errs[0].reason.contains("future"), "{errs:?}");
        }
    }
}

#[test]
fn a_goal_target_date_may_lie_in_the_future() {
    let e = Entity::Goal;
    let rec = accept(e, &set(base_row(e), "target_on", "2030-01-01"), "target");
    assert_eq!(stored(&rec, "target_on"), "2030-01-01");
}

// ---------------------------------------------------------------------------------
// Identifiers, postcodes, areas
// ---------------------------------------------------------------------------------

#[test]
fn a_valid_nhs_number_is_accepted_with_spaces_and_stored_as_ten_digits() {
    let e = Entity::Client;
    for written in ["9434765919", "943 476 5919", " 943 476 5919 "] {
        let rec = accept(e, &set(base_row(e), "nhs_number", written), written);
        assert_eq!(stored(&rec, "nhs_number"), "9434765919");
    }
}

#[test]
fn an_nhs_number_with_a_wrong_check_digit_or_length_is_rejected() {
    let e = Entity::Client;
    // 9434765919 is valid, so changing only its last digit must fail the check.
    for last in 0..=9 {
        if last == 9 {
            continue;
        }
        let n = format!("943476591{last}");
        reject(e, &set(base_row(e), "nhs_number", &n), "nhs_number", &n);
    }
    for bad in ["943476591", "94347659190", "94347659x9", "abcdefghij"] {
        reject(e, &set(base_row(e), "nhs_number", bad), "nhs_number", bad);
    }
}

#[test]
fn a_postcode_is_normalised_to_upper_case_with_one_space() {
    let e = Entity::Client;
    for (written, normal) in [
        ("fy15dw", "FY1 5DW"),
        ("FY1 5DW", "FY1 5DW"),
        (" Fy1   5dW ", "FY1 5DW"),
        ("sw1a1aa", "SW1A 1AA"),
        ("m11aa", "M1 1AA"),
    ] {
        let rec = accept(e, &set(base_row(e), "postcode", written), written);
        assert_eq!(stored(&rec, "postcode"), normal, "{written}");
    }
    // Blank means no fixed abode or not given.
    let rec = accept(e, &base_row(e), "blank postcode");
    assert_eq!(stored(&rec, "postcode"), "");
}

#[test]
fn a_postcode_that_is_not_a_uk_postcode_is_rejected() {
    let e = Entity::Client;
    for bad in [
        "not a postcode",
        "12345",
        "FY1",
        "FY1 5D",
        "FY1 DW5",
        "FYZZ1 5DW",
        "FY1-5DW",
    ] {
        reject(e, &set(base_row(e), "postcode", bad), "postcode", bad);
    }
}

#[test]
fn areas_served_accepts_english_district_codes_and_lists_of_them() {
    let e = Entity::Service;
    for code in ["E06000009", "E07000117", "E08000025", "E09000001"] {
        let rec = accept(e, &set(base_row(e), "areas_served", code), code);
        assert_eq!(stored(&rec, "areas_served"), code);
    }
    let rec = accept(
        e,
        &set(base_row(e), "areas_served", "E08000025;E08000028"),
        "a list",
    );
    let areas: BTreeSet<String> = stored(&rec, "areas_served")
        .split(';')
        .map(str::to_string)
        .collect();
    assert_eq!(
        areas,
        BTreeSet::from(["E08000025".to_string(), "E08000028".to_string()])
    );
}

#[test]
fn areas_served_rejects_lsoa_welsh_and_malformed_codes() {
    let e = Entity::Service;
    for bad in [
        "E01012736",
        "W06000001",
        "S12000033",
        "E10000017",
        "E0600009",
        "E060000090",
        "E06A00009",
        "E08000025;W06000001",
        "Blackpool",
    ] {
        reject(
            e,
            &set(base_row(e), "areas_served", bad),
            "areas_served",
            bad,
        );
    }
}

#[test]
fn target_lsoas_are_required_with_local_targeting_and_rejected_with_any_other() {
    let e = Entity::ServiceConfiguration;
    let targeted = |targeting: &str, lsoas: &str| {
        base_with(e, &[("targeting", targeting), ("target_lsoas", lsoas)])
    };
    let rec = accept(
        e,
        &targeted("deprived_areas_local", "E01012736;E01012737"),
        "local with LSOAs",
    );
    assert_eq!(stored(&rec, "target_lsoas"), "E01012736;E01012737");
    reject(
        e,
        &targeted("deprived_areas_local", ""),
        "target_lsoas",
        "local without LSOAs",
    );
    reject(
        e,
        &targeted("deprived_areas_local", "E06000009"),
        "target_lsoas",
        "local with a district code instead of an LSOA",
    );
    for other in ["most_deprived_20pct", "specific_groups", "universal"] {
        accept(e, &targeted(other, ""), other);
        reject(
            e,
            &targeted(other, "E01012736"),
            "target_lsoas",
            &format!("{other} with LSOAs"),
        );
    }
}

// ---------------------------------------------------------------------------------
// Rules within one record
// ---------------------------------------------------------------------------------

#[test]
fn a_closed_episode_without_an_exit_reason_is_rejected() {
    let e = Entity::Episode;
    let errs = reject(
        e,
        &set(base_row(e), "closed_on", "2020-06-15"),
        "exit_reason",
        "closed, no reason",
    );
    assert!(errs[0].reason.contains("exit reason"), "{errs:?}");
}

#[test]
fn an_exit_reason_without_a_close_date_is_rejected() {
    let e = Entity::Episode;
    reject(
        e,
        &set(base_row(e), "exit_reason", "completed"),
        "closed_on",
        "reason, not closed",
    );
}

#[test]
fn an_episode_closed_before_its_first_contact_is_rejected_and_on_the_same_day_accepted() {
    let e = Entity::Episode;
    let closed = |on: &str| base_with(e, &[("closed_on", on), ("exit_reason", "withdrew")]);
    accept(e, &closed("2020-01-20"), "closed on the first contact day");
    reject(
        e,
        &closed("2020-01-19"),
        "closed_on",
        "closed the day before",
    );
}

#[test]
fn a_goal_with_a_final_status_needs_a_status_date() {
    let e = Entity::Goal;
    for status in [
        "fully_achieved",
        "partly_achieved",
        "not_achieved",
        "abandoned",
    ] {
        reject(
            e,
            &set(base_row(e), "status", status),
            "status_on",
            &format!("{status} without status_on"),
        );
        accept(
            e,
            &base_with(e, &[("status", status), ("status_on", "2020-05-01")]),
            status,
        );
    }
    // An open goal needs no status date.
    accept(e, &base_row(e), "open without status_on");
}

#[test]
fn every_problem_in_a_row_is_reported_not_just_the_first() {
    let e = Entity::Session;
    let r = base_with(
        e,
        &[
            ("held_on", "2020-02-30"),
            ("duration_min", "481"),
            ("mode", "carrier_pigeon"),
        ],
    );
    let errs = parse(e, &r).expect_err("three problems");
    let fields: BTreeSet<&str> = errs.iter().map(|x| x.field.as_str()).collect();
    assert_eq!(fields, BTreeSet::from(["held_on", "duration_min", "mode"]));
}

// ---------------------------------------------------------------------------------
// Cross-record rules
// ---------------------------------------------------------------------------------

fn client(dob: &str) -> Client {
    Client {
        client_ref: "C1".into(),
        service_ref: "S1".into(),
        given_name: None,
        family_name: None,
        nhs_number: None,
        date_of_birth: day(dob),
        sex: Sex::Female,
        ethnicity: Ethnicity::A,
        postcode: None,
        gp_registered: YesNoUnknown::Yes,
        gp_practice_code: None,
        employment: Employment::Employed,
        disability: YesNoNotStated::No,
        consent_to_record: YesNo::Yes,
        consent_to_share_with_gp: YesNo::Yes,
    }
}

fn referral(r: &str, on: &str, source: ReferralSource) -> Referral {
    Referral {
        referral_ref: r.into(),
        service_ref: "S1".into(),
        client_ref: "C1".into(),
        received_on: day(on),
        source,
        referrer_org_ref: None,
        reason: None,
    }
}

fn episode(
    r: &str,
    referral: &str,
    kind: EpisodeKind,
    first: &str,
    closed: Option<(&str, ExitReason)>,
) -> Episode {
    Episode {
        episode_ref: r.into(),
        service_ref: "S1".into(),
        referral_ref: referral.into(),
        lead_worker_ref: "W1".into(),
        kind,
        first_contact_on: day(first),
        primary_issue: PrimaryIssue::Weight,
        closed_on: closed.map(|(d, _)| day(d)),
        exit_reason: closed.map(|(_, x)| x),
    }
}

fn assessment(r: &str, ep: &str, occasion: Occasion, on: &str) -> Assessment {
    // Read from its fields, as a file row is: a measure added to the standard is then
    // blank here without this helper changing.
    let fields = [
        ("assessment_ref", r),
        ("service_ref", "S1"),
        ("episode_ref", ep),
        ("occasion", occasion.code()),
        ("assessed_on", on),
    ];
    match parse_record(Entity::Assessment, &fields, day("2030-01-01")) {
        Ok(Record::Assessment(a)) => a,
        other => panic!("{r}: {other:?}"),
    }
}

fn measured(mut a: Assessment, height: Option<f64>, weight: Option<f64>) -> Assessment {
    a.height_cm = height.map(|h| HeightCm::from_number(h).expect("a height in range"));
    a.weight_kg = weight.map(|w| WeightKg::from_number(w).expect("a weight in range"));
    a
}

fn plan(r: &str, ep: &str, on: &str) -> Plan {
    Plan {
        plan_ref: r.into(),
        service_ref: "S1".into(),
        episode_ref: ep.into(),
        agreed_on: day(on),
    }
}

fn goal(r: &str, plan: &str, status: GoalStatus, status_on: Option<&str>) -> Goal {
    Goal {
        goal_ref: r.into(),
        service_ref: "S1".into(),
        plan_ref: plan.into(),
        domain: GoalDomain::Diet,
        description: "Five a day".into(),
        target_on: None,
        status,
        status_on: status_on.map(day),
    }
}

fn session(
    r: &str,
    ep: &str,
    on: &str,
    purpose: SessionPurpose,
    mode: SessionMode,
    venue: Venue,
    attended: Attendance,
) -> Session {
    Session {
        session_ref: r.into(),
        service_ref: "S1".into(),
        episode_ref: ep.into(),
        worker_ref: "W1".into(),
        held_on: day(on),
        duration_min: DurationMin::from_number(45.0).unwrap(),
        mode,
        venue,
        purpose,
        attended,
    }
}

/// A valid history for one client (born 1980-05-15):
///
/// - R1 (gp, 2020-01-10) → E1, a full episode, first contact 2020-01-20, closed
///   2020-06-15 as completed; so its follow-up window ends on 2021-12-15.
///   Baseline A1 on the first contact, exit A2 on the close day, follow-up A3 six
///   months later; plan P1 (2020-01-27) with G1 fully achieved, G2 open, G3 partly
///   achieved; sessions X1–X5 (X3 missed, X4 on the close day, X5 a follow-up after
///   close); one onward referral and one wider issue.
/// - R2 (self, 2021-03-01) → E2, a brief episode with one attended session, closed as
///   completed on the same day without a plan.
fn valid_bundle() -> ClientBundle {
    use Attendance::{DidNotAttend, Yes};
    use SessionMode::{FaceToFace, Telephone};
    use SessionPurpose as P;
    ClientBundle {
        client: client("1980-05-15"),
        referrals: vec![
            referral("R1", "2020-01-10", ReferralSource::Gp),
            referral("R2", "2021-03-01", ReferralSource::SelfReferral),
        ],
        episodes: vec![
            episode(
                "E1",
                "R1",
                EpisodeKind::Full,
                "2020-01-20",
                Some(("2020-06-15", ExitReason::Completed)),
            ),
            episode(
                "E2",
                "R2",
                EpisodeKind::Brief,
                "2021-03-05",
                Some(("2021-03-05", ExitReason::Completed)),
            ),
        ],
        assessments: vec![
            measured(
                assessment("A1", "E1", Occasion::Baseline, "2020-01-20"),
                Some(170.0),
                Some(85.0),
            ),
            measured(
                assessment("A2", "E1", Occasion::Exit, "2020-06-15"),
                None,
                Some(80.0),
            ),
            measured(
                assessment("A3", "E1", Occasion::FollowUp, "2020-12-15"),
                None,
                Some(78.0),
            ),
        ],
        plans: vec![plan("P1", "E1", "2020-01-27")],
        goals: vec![
            goal("G1", "P1", GoalStatus::FullyAchieved, Some("2020-06-01")),
            goal("G2", "P1", GoalStatus::Open, None),
            goal("G3", "P1", GoalStatus::PartlyAchieved, Some("2020-06-10")),
        ],
        sessions: vec![
            session(
                "X1",
                "E1",
                "2020-01-20",
                P::Assessment,
                FaceToFace,
                Venue::GpPractice,
                Yes,
            ),
            session(
                "X2",
                "E1",
                "2020-03-02",
                P::Support,
                Telephone,
                Venue::GpPractice,
                Yes,
            ),
            session(
                "X3",
                "E1",
                "2020-04-06",
                P::Review,
                FaceToFace,
                Venue::Pharmacy,
                DidNotAttend,
            ),
            session(
                "X4",
                "E1",
                "2020-06-15",
                P::Review,
                FaceToFace,
                Venue::HealthCentre,
                Yes,
            ),
            session(
                "X5",
                "E1",
                "2020-12-15",
                P::FollowUp,
                Telephone,
                Venue::Remote,
                Yes,
            ),
            session(
                "X6",
                "E2",
                "2021-03-05",
                P::BriefIntervention,
                FaceToFace,
                Venue::Pharmacy,
                Yes,
            ),
        ],
        onward_referrals: vec![OnwardReferral {
            onward_ref: "O1".into(),
            service_ref: "S1".into(),
            episode_ref: "E1".into(),
            made_on: day("2020-03-02"),
            action: OnwardAction::Referred,
            destination: OnwardDestination::ExerciseReferral,
            outcome: OnwardOutcome::Attended,
        }],
        wider_issues: vec![WiderIssue {
            wider_issue_ref: "WI1".into(),
            service_ref: "S1".into(),
            episode_ref: "E1".into(),
            noted_on: day("2020-02-03"),
            issue: WiderIssueKind::DebtOrMoney,
        }],
    }
}

fn session_mut<'a>(b: &'a mut ClientBundle, r: &str) -> &'a mut Session {
    b.sessions
        .iter_mut()
        .find(|x| x.session_ref == r)
        .expect("session")
}
fn assessment_mut<'a>(b: &'a mut ClientBundle, r: &str) -> &'a mut Assessment {
    b.assessments
        .iter_mut()
        .find(|x| x.assessment_ref == r)
        .expect("assessment")
}
fn episode_mut<'a>(b: &'a mut ClientBundle, r: &str) -> &'a mut Episode {
    b.episodes
        .iter_mut()
        .find(|x| x.episode_ref == r)
        .expect("episode")
}
fn goal_mut<'a>(b: &'a mut ClientBundle, r: &str) -> &'a mut Goal {
    b.goals.iter_mut().find(|x| x.goal_ref == r).expect("goal")
}
fn referral_mut<'a>(b: &'a mut ClientBundle, r: &str) -> &'a mut Referral {
    b.referrals
        .iter_mut()
        .find(|x| x.referral_ref == r)
        .expect("referral")
}

/// The valid bundle changed by `change`.
fn broken(change: impl FnOnce(&mut ClientBundle)) -> ClientBundle {
    let mut b = valid_bundle();
    change(&mut b);
    b
}

#[track_caller]
fn assert_valid(b: &ClientBundle, what: &str) {
    let v = check_client(b, &RuleSettings::default());
    assert!(v.is_empty(), "{what}: expected no violations, got {v:#?}");
}

/// Asserts exactly one violation, on the given record and field, whose reason
/// mentions every word in `words` (case-insensitive).
#[track_caller]
fn assert_one_violation(
    b: &ClientBundle,
    entity: Entity,
    record_ref: &str,
    field: &str,
    words: &[&str],
) {
    assert_one_violation_with(
        b,
        &RuleSettings::default(),
        entity,
        record_ref,
        field,
        words,
    );
}

#[track_caller]
fn assert_one_violation_with(
    b: &ClientBundle,
    s: &RuleSettings,
    entity: Entity,
    record_ref: &str,
    field: &str,
    words: &[&str],
) {
    let v = check_client(b, s);
    assert_eq!(v.len(), 1, "expected exactly one violation, got {v:#?}");
    let v = &v[0];
    assert_eq!(
        (v.entity, v.record_ref.as_str(), v.field),
        (entity, record_ref, field),
        "{v:#?}"
    );
    let reason = v.reason.to_lowercase();
    for w in words {
        assert!(
            reason.contains(&w.to_lowercase()),
            "the reason {:?} should mention {w:?}",
            v.reason
        );
    }
}

#[test]
fn the_hand_built_bundle_breaks_no_rule() {
    let b = valid_bundle();
    assert_valid(&b, "valid bundle");
    // The things the other tests rely on being valid really are in it.
    let e2 = &b.episodes[1];
    assert_eq!(
        (e2.kind, e2.exit_reason),
        (EpisodeKind::Brief, Some(ExitReason::Completed))
    );
    assert!(b.plans.iter().all(|p| p.episode_ref != "E2"));
}

// Ages and dates of birth.

#[test]
fn a_client_aged_16_on_the_referral_date_is_accepted_and_15_rejected() {
    // R1 is received on 2020-01-10: the 16th birthday is that day.
    let b = broken(|b| b.client.date_of_birth = day("2004-01-10"));
    assert_valid(&b, "16 on the referral date");
    // One day younger: still 15 on 2020-01-10 (and 17 on R2's date, which is fine).
    let b = broken(|b| b.client.date_of_birth = day("2004-01-11"));
    assert_one_violation(&b, Entity::Referral, "R1", "received_on", &["15", "16"]);
}

#[test]
fn a_client_aged_110_on_the_referral_date_is_accepted_and_111_rejected() {
    // R2 is received on 2021-03-01; R1 (2020-01-10) is younger still.
    let b = broken(|b| b.client.date_of_birth = day("1911-03-01"));
    assert_valid(&b, "110 on R2's date");
    let b = broken(|b| b.client.date_of_birth = day("1910-03-01"));
    assert_one_violation(&b, Entity::Referral, "R2", "received_on", &["111", "110"]);
}

#[test]
fn the_minimum_age_is_a_setting() {
    let b = broken(|b| b.client.date_of_birth = day("2004-01-10"));
    let eighteen = RuleSettings {
        min_age: 18,
        ..RuleSettings::default()
    };
    // 16 on R1's date and 17 on R2's date: both too young when the minimum is 18.
    let v = check_client(&b, &eighteen);
    let refs: BTreeSet<&str> = v.iter().map(|x| x.record_ref.as_str()).collect();
    assert_eq!(refs, BTreeSet::from(["R1", "R2"]), "{v:#?}");
    assert!(
        v.iter()
            .all(|x| x.field == "received_on" && x.reason.contains("18"))
    );
}

#[test]
fn a_referral_dated_before_the_clients_birth_is_rejected() {
    let b = broken(|b| referral_mut(b, "R1").received_on = day("1980-05-14"));
    // Not merely "aged -1": the reason says the referral predates the birth.
    assert_one_violation(
        &b,
        Entity::Referral,
        "R1",
        "received_on",
        &["before", "birth"],
    );
}

// Referrals and episodes.

#[test]
fn a_first_contact_before_the_referral_was_received_is_rejected() {
    let b = broken(|b| episode_mut(b, "E1").first_contact_on = day("2020-01-09"));
    assert_one_violation(&b, Entity::Episode, "E1", "first_contact_on", &["referral"]);
    // On the day the referral arrives is fine.
    let b = broken(|b| episode_mut(b, "E1").first_contact_on = day("2020-01-10"));
    assert_valid(&b, "first contact on the referral day");
}

#[test]
fn a_referral_leads_to_at_most_one_episode() {
    let b = broken(|b| {
        b.episodes.push(episode(
            "E3",
            "R1",
            EpisodeKind::Full,
            "2020-07-01",
            Some(("2020-08-01", ExitReason::Withdrew)),
        ))
    });
    assert_one_violation(
        &b,
        Entity::Episode,
        "E3",
        "referral_ref",
        &["R1", "one episode"],
    );
}

#[test]
fn a_client_has_at_most_one_open_episode() {
    // One open episode (E2) alongside a closed one is fine.
    let b = broken(|b| {
        let e = episode_mut(b, "E2");
        e.closed_on = None;
        e.exit_reason = None;
    });
    assert_valid(&b, "one open episode");
    // Both open: the later one is at fault.
    let b = broken(|b| {
        for r in ["E1", "E2"] {
            let e = episode_mut(b, r);
            e.closed_on = None;
            e.exit_reason = None;
        }
    });
    assert_one_violation(&b, Entity::Episode, "E2", "closed_on", &["open", "E1"]);
}

// Sessions.

#[test]
fn a_session_before_the_first_contact_is_rejected() {
    let b = broken(|b| session_mut(b, "X2").held_on = day("2020-01-19"));
    assert_one_violation(&b, Entity::Session, "X2", "held_on", &["first contact"]);
    // Even a follow-up session may not come before the first contact.
    let b = broken(|b| session_mut(b, "X5").held_on = day("2020-01-19"));
    assert_one_violation(&b, Entity::Session, "X5", "held_on", &["first contact"]);
}

#[test]
fn a_non_follow_up_session_on_the_close_day_is_accepted_and_the_day_after_rejected() {
    // X4 (a review) is on the close day in the valid bundle.
    assert_eq!(
        session_mut(&mut valid_bundle(), "X4").held_on,
        day("2020-06-15")
    );
    let b = broken(|b| session_mut(b, "X4").held_on = day("2020-06-16"));
    assert_one_violation(
        &b,
        Entity::Session,
        "X4",
        "held_on",
        &["follow_up", "close"],
    );
}

#[test]
fn a_follow_up_session_18_months_after_close_is_accepted_and_a_day_later_rejected() {
    // E1 closed 2020-06-15, so the window ends on 2021-12-15.
    let b = broken(|b| session_mut(b, "X5").held_on = day("2021-12-15"));
    assert_valid(&b, "follow-up session on the last day of the window");
    let b = broken(|b| session_mut(b, "X5").held_on = day("2021-12-16"));
    assert_one_violation(
        &b,
        Entity::Session,
        "X5",
        "held_on",
        &["18 months", "2021-12-15"],
    );
}

#[test]
fn a_brief_episode_may_have_one_attended_session_but_not_two() {
    use SessionPurpose::Support;
    let extra = |attended| {
        broken(move |b| {
            b.sessions.push(session(
                "X7",
                "E2",
                "2021-03-05",
                Support,
                SessionMode::Telephone,
                Venue::Remote,
                attended,
            ))
        })
    };
    // A missed or cancelled second contact is not an attended session.
    assert_valid(&extra(Attendance::DidNotAttend), "brief + did_not_attend");
    assert_valid(&extra(Attendance::Cancelled), "brief + cancelled");
    assert_one_violation(
        &extra(Attendance::Yes),
        Entity::Episode,
        "E2",
        "kind",
        &["brief", "2"],
    );
}

#[test]
fn a_brief_episode_with_a_plan_is_rejected() {
    let b = broken(|b| b.plans.push(plan("P2", "E2", "2021-03-05")));
    assert_one_violation(&b, Entity::Plan, "P2", "episode_ref", &["brief", "plan"]);
}

// Assessments.

#[test]
fn baseline_and_exit_assessments_fall_within_the_episode() {
    let b = broken(|b| assessment_mut(b, "A1").assessed_on = day("2020-01-19"));
    assert_one_violation(
        &b,
        Entity::Assessment,
        "A1",
        "assessed_on",
        &["baseline", "first contact"],
    );
    let b = broken(|b| assessment_mut(b, "A2").assessed_on = day("2020-06-16"));
    assert_one_violation(
        &b,
        Entity::Assessment,
        "A2",
        "assessed_on",
        &["exit", "2020-06-15"],
    );
}

#[test]
fn a_follow_up_assessment_18_months_after_close_is_accepted_and_a_day_later_rejected() {
    let b = broken(|b| assessment_mut(b, "A3").assessed_on = day("2021-12-15"));
    assert_valid(&b, "follow-up assessment on the last day of the window");
    let b = broken(|b| assessment_mut(b, "A3").assessed_on = day("2021-12-16"));
    assert_one_violation(
        &b,
        Entity::Assessment,
        "A3",
        "assessed_on",
        &["follow-up", "2021-12-15"],
    );
}

#[test]
fn an_exit_assessment_without_a_baseline_is_rejected() {
    let b = broken(|b| b.assessments.retain(|a| a.assessment_ref != "A1"));
    assert_one_violation(&b, Entity::Assessment, "A2", "occasion", &["baseline"]);
}

#[test]
fn an_episode_has_at_most_one_baseline() {
    let b = broken(|b| {
        b.assessments
            .push(assessment("A4", "E1", Occasion::Baseline, "2020-02-01"))
    });
    assert_one_violation(
        &b,
        Entity::Assessment,
        "A4",
        "occasion",
        &["baseline", "A1"],
    );
}

#[test]
fn an_episode_has_at_most_one_exit_assessment() {
    let b = broken(|b| {
        b.assessments
            .push(assessment("A5", "E1", Occasion::Exit, "2020-06-15"))
    });
    assert_one_violation(&b, Entity::Assessment, "A5", "occasion", &["exit", "A2"]);
}

#[test]
fn follow_up_assessments_may_repeat() {
    let b = broken(|b| {
        b.assessments
            .push(assessment("A6", "E1", Occasion::FollowUp, "2021-06-15"))
    });
    assert_valid(&b, "two follow-ups");
}

// Plans and goals.

#[test]
fn a_plan_agreed_before_the_first_contact_or_after_close_is_rejected() {
    let b = broken(|b| b.plans[0].agreed_on = day("2020-01-19"));
    assert_one_violation(&b, Entity::Plan, "P1", "agreed_on", &["first contact"]);
    let b = broken(|b| b.plans[0].agreed_on = day("2020-06-16"));
    assert_one_violation(&b, Entity::Plan, "P1", "agreed_on", &["close"]);
    let b = broken(|b| b.plans[0].agreed_on = day("2020-01-20"));
    assert_valid(&b, "plan agreed at the first contact");
}

#[test]
fn a_goal_status_date_must_fall_in_the_episode_or_its_follow_up_window() {
    for ok in ["2020-01-20", "2020-09-01", "2021-12-15"] {
        let b = broken(|b| goal_mut(b, "G1").status_on = Some(day(ok)));
        assert_valid(&b, &format!("status_on {ok}"));
    }
    let b = broken(|b| goal_mut(b, "G1").status_on = Some(day("2020-01-19")));
    assert_one_violation(&b, Entity::Goal, "G1", "status_on", &["2020-01-20"]);
    let b = broken(|b| goal_mut(b, "G1").status_on = Some(day("2021-12-16")));
    assert_one_violation(&b, Entity::Goal, "G1", "status_on", &["2021-12-15"]);
}

#[test]
fn a_full_episode_completed_with_only_open_goals_is_rejected() {
    let reopen = |b: &mut ClientBundle| {
        for g in &mut b.goals {
            g.status = GoalStatus::Open;
            g.status_on = None;
        }
    };
    let b = broken(reopen);
    assert_one_violation(
        &b,
        Entity::Episode,
        "E1",
        "exit_reason",
        &["completed", "goal"],
    );
    // Without any plan or goal at all, the same.
    let b = broken(|b| {
        b.plans.clear();
        b.goals.clear();
    });
    assert_one_violation(&b, Entity::Episode, "E1", "exit_reason", &["goal"]);
    // With another exit reason, open goals are fine.
    let b = broken(|b| {
        reopen(b);
        episode_mut(b, "E1").exit_reason = Some(ExitReason::Disengaged);
    });
    assert_valid(&b, "disengaged with open goals");
    // One abandoned goal is enough to complete.
    let b = broken(|b| {
        reopen(b);
        let g = goal_mut(b, "G2");
        g.status = GoalStatus::Abandoned;
        g.status_on = Some(day("2020-06-15"));
    });
    assert_valid(&b, "completed with one abandoned goal");
}

#[test]
fn a_brief_episode_completed_without_a_plan_is_accepted() {
    let b = broken(|b| {
        // Only the brief episode and its records.
        b.referrals.retain(|r| r.referral_ref == "R2");
        b.episodes.retain(|e| e.episode_ref == "E2");
        b.assessments.clear();
        b.plans.clear();
        b.goals.clear();
        b.sessions.retain(|s| s.episode_ref == "E2");
        b.onward_referrals.clear();
        b.wider_issues.clear();
    });
    assert_eq!(b.episodes[0].exit_reason, Some(ExitReason::Completed));
    assert_valid(&b, "brief completed, no plan");
}

// ---------------------------------------------------------------------------------
// Derived values
// ---------------------------------------------------------------------------------

fn bmi_bundle(assessments: Vec<Assessment>) -> ClientBundle {
    ClientBundle {
        assessments,
        ..valid_bundle()
    }
}

fn bmi_of(b: &ClientBundle, r: &str) -> (Option<f64>, bool) {
    let all = derive_bmi(b);
    assert_eq!(all.len(), b.assessments.len(), "one result per assessment");
    let x = all
        .iter()
        .find(|x| x.assessment_ref == r)
        .unwrap_or_else(|| panic!("no BMI row for {r}"));
    (x.bmi, x.flagged)
}

#[test]
fn bmi_uses_the_latest_height_on_or_before_the_assessment() {
    let b = bmi_bundle(vec![
        // Listed out of date order on purpose.
        measured(
            assessment("H3", "E1", Occasion::FollowUp, "2020-09-01"),
            Some(100.0),
            None,
        ),
        measured(
            assessment("W", "E1", Occasion::Exit, "2020-06-01"),
            None,
            Some(80.0),
        ),
        measured(
            assessment("H1", "E1", Occasion::Baseline, "2020-01-20"),
            Some(150.0),
            None,
        ),
        measured(
            assessment("H2", "E1", Occasion::FollowUp, "2020-03-01"),
            Some(200.0),
            None,
        ),
    ]);
    // 80 / 2.0² = 20.0 with the 200 cm height of 2020-03-01; the 150 cm height is
    // older and the 100 cm one was recorded after the weight, so neither is used.
    assert_eq!(bmi_of(&b, "W"), (Some(20.0), false));
    // Assessments without a weight have no BMI.
    assert_eq!(bmi_of(&b, "H1"), (None, false));
    assert_eq!(bmi_of(&b, "H3"), (None, false));
}

#[test]
fn bmi_uses_a_height_recorded_on_the_same_day_and_none_when_no_height_precedes() {
    let b = bmi_bundle(vec![
        measured(
            assessment("W", "E1", Occasion::Baseline, "2020-01-20"),
            None,
            Some(80.0),
        ),
        measured(
            assessment("H", "E1", Occasion::FollowUp, "2020-01-20"),
            Some(200.0),
            None,
        ),
        measured(
            assessment("EARLY", "E1", Occasion::FollowUp, "2020-01-19"),
            None,
            Some(80.0),
        ),
    ]);
    assert_eq!(bmi_of(&b, "W"), (Some(20.0), false));
    assert_eq!(bmi_of(&b, "EARLY"), (None, false));
}

#[test]
fn bmi_outside_10_to_90_is_flagged() {
    // (height, weight, expected BMI to one decimal, flagged)
    let cases = [
        (200.0, 80.0, 20.0, false),
        (100.0, 90.0, 90.0, false), // 90 / 1² = 90.0, the top of the range
        (100.0, 90.1, 90.1, true),  // just above
        (200.0, 40.0, 10.0, false), // 40 / 4 = 10.0, the bottom
        (200.0, 39.5, 9.9, true),   // 39.5 / 4 = 9.875 → 9.9
        (100.0, 350.0, 350.0, true), // largest weight, smallest height
        (250.0, 25.0, 4.0, true),   // smallest weight, largest height
        (172.0, 88.0, 29.7, false), // 88 / 1.72² = 29.746 → 29.7
    ];
    for (h, w, expected, flagged) in cases {
        let b = bmi_bundle(vec![measured(
            assessment("A", "E1", Occasion::Baseline, "2020-01-20"),
            Some(h),
            Some(w),
        )]);
        let (bmi, flag) = bmi_of(&b, "A");
        let bmi = bmi.expect("a BMI");
        assert!(
            (bmi - expected).abs() < 1e-9,
            "{w} kg / {h} cm: BMI {bmi}, expected {expected}"
        );
        assert_eq!(flag, flagged, "{w} kg / {h} cm: BMI {bmi} flagged?");
    }
}

/// The valid bundle plus three more E1 sessions, so that every count below has a
/// session that must be counted and one that must not.
fn summary_bundle() -> ClientBundle {
    use SessionPurpose::Support;
    broken(|b| {
        b.sessions.extend([
            session(
                "X8",
                "E1",
                "2020-04-20",
                Support,
                SessionMode::Telephone,
                Venue::Remote,
                Attendance::Cancelled,
            ),
            session(
                "X9",
                "E1",
                "2020-05-04",
                Support,
                SessionMode::FaceToFace,
                Venue::ClientHome,
                Attendance::Yes,
            ),
            session(
                "X10",
                "E1",
                "2020-05-11",
                Support,
                SessionMode::Telephone,
                Venue::Remote,
                Attendance::DidNotAttend,
            ),
        ])
    })
}

fn summary_of<'a>(all: &'a [EpisodeSummary], r: &str) -> &'a EpisodeSummary {
    all.iter()
        .find(|s| s.episode_ref == r)
        .unwrap_or_else(|| panic!("no summary for {r}"))
}

#[test]
fn episode_summaries_count_sessions_goals_and_dates_as_worked_out_by_hand() {
    let b = summary_bundle();
    assert_valid(&b, "summary bundle");
    let all = summarise_episodes(&b);
    assert_eq!(all.len(), 2);

    // E1's sessions:
    //   X1  yes           face_to_face gp_practice    assessment  2020-01-20
    //   X2  yes           telephone    gp_practice    support     2020-03-02
    //   X3  did_not_attend face_to_face pharmacy      review      2020-04-06
    //   X4  yes           face_to_face health_centre  review      2020-06-15
    //   X5  yes           telephone    remote         follow_up   2020-12-15
    //   X8  cancelled     telephone    remote         support     2020-04-20
    //   X9  yes           face_to_face client_home    support     2020-05-04
    //   X10 did_not_attend telephone   remote         support     2020-05-11
    // Attended: X1 X2 X4 X5 X9 = 5. Did not attend: X3 X10 = 2 (X8 was cancelled).
    // Telephone among attended (analytics.md telephone_share): X2 X5 = 2.
    // Face to face among attended: X1 X4 X9 = 3; of those at a GP practice, health
    // centre or pharmacy: X1 X4 = 2 (X2 was by telephone, X3 was missed).
    // Attended reviews: X4 = 1. Last attended: X5 on 2020-12-15.
    let e1 = summary_of(&all, "E1");
    assert_eq!(e1.client_ref, "C1");
    assert_eq!(e1.referral_ref, "R1");
    assert_eq!(e1.referral_received_on, day("2020-01-10"));
    assert_eq!(e1.source_group, SourceGroup::Clinical);
    assert_eq!(e1.kind, EpisodeKind::Full);
    assert_eq!(e1.first_contact_on, day("2020-01-20"));
    assert_eq!(e1.closed_on, Some(day("2020-06-15")));
    assert_eq!(e1.exit_reason, Some(ExitReason::Completed));
    assert_eq!(e1.baseline_on, Some(day("2020-01-20")));
    assert_eq!(e1.exit_on, Some(day("2020-06-15")));
    assert_eq!(e1.plan_agreed_on, Some(day("2020-01-27")));
    // G1 fully achieved, G2 open, G3 partly achieved.
    assert_eq!(
        (e1.goals, e1.goals_final, e1.goals_fully, e1.goals_partly),
        (3, 2, 1, 1)
    );
    assert_eq!(e1.sessions_attended, 5, "attended");
    assert_eq!(e1.sessions_dna, 2, "did not attend");
    assert_eq!(e1.sessions_telephone, 2, "telephone");
    assert_eq!(e1.sessions_face_to_face, 3, "face to face");
    assert_eq!(e1.sessions_clinical_venue, 2, "clinical venue face to face");
    assert_eq!(e1.review_sessions, 1, "reviews");
    assert_eq!(e1.last_attended_on, Some(day("2020-12-15")));
    assert_eq!((e1.wider_issues, e1.onward_referrals), (1, 1));

    // E2: one attended face-to-face brief intervention at a pharmacy, self-referred.
    let e2 = summary_of(&all, "E2");
    assert_eq!(e2.referral_ref, "R2");
    assert_eq!(e2.source_group, SourceGroup::Community);
    assert_eq!(e2.kind, EpisodeKind::Brief);
    assert_eq!(
        (e2.baseline_on, e2.exit_on, e2.plan_agreed_on),
        (None, None, None)
    );
    assert_eq!((e2.goals, e2.goals_final), (0, 0));
    assert_eq!(
        (
            e2.sessions_attended,
            e2.sessions_dna,
            e2.sessions_telephone,
            e2.sessions_face_to_face,
            e2.sessions_clinical_venue,
            e2.review_sessions,
        ),
        (1, 0, 0, 1, 1, 0)
    );
    assert_eq!(e2.last_attended_on, Some(day("2021-03-05")));
    assert_eq!((e2.wider_issues, e2.onward_referrals), (0, 0));
}

#[test]
fn references_that_a_web_address_cannot_carry_are_refused() {
    for e in Entity::ALL {
        let own = e.ref_field();
        for bad in [".", ".."] {
            let errs = reject(e, &set(base_row(e), own, bad), own, "a dot reference");
            assert!(errs[0].reason.contains("'.' or '..'"), "{errs:?}");
        }
        // Dots inside a reference are fine.
        accept(e, &set(base_row(e), own, "A.1"), "a reference with a dot");
    }
}

#[test]
fn every_free_text_field_has_a_length_limit() {
    let cases: [(Entity, &str, usize); 9] = [
        (Entity::Organisation, "name", 200),
        (Entity::Organisation, "ods_code", 12),
        (Entity::Service, "name", 200),
        (Entity::Worker, "display_name", 100),
        (Entity::Client, "given_name", 100),
        (Entity::Client, "family_name", 100),
        (Entity::Goal, "description", 500),
        (Entity::ServiceConfiguration, "notes", 2_000),
        (Entity::Client, "client_ref", 64),
    ];
    for (e, field, limit) in cases {
        // At the limit: accepted wherever the field takes any letters.
        let at = "a".repeat(limit);
        if !field.ends_with("code") {
            accept(e, &set(base_row(e), field, &at), "at the limit");
        }
        // Ten megabytes: refused, and the message quotes only the start of the value.
        let huge = "a".repeat(10 << 20);
        let errs = reject(e, &set(base_row(e), field, &huge), field, "too long");
        assert!(
            errs[0].value.chars().count() < 50,
            "{}",
            errs[0].value.len()
        );
        assert!(
            errs[0].reason.contains(&format!("at most {limit}")),
            "{}",
            errs[0].reason
        );
    }
}

#[test]
fn the_catalogue_gives_each_coded_field_exactly_the_standards_list() {
    for (e, field, codes) in CODE_FIELDS {
        let listed = dcrs_domain::catalogue::codes_of(*e, field)
            .unwrap_or_else(|| panic!("{e:?}.{field} has no code list in the catalogue"));
        let listed: Vec<&str> = listed.words().iter().map(|(c, _)| *c).collect();
        assert_eq!(&listed, codes, "{e:?}.{field}");
    }
    // And no field is coded in the catalogue that the standard leaves uncoded.
    for e in Entity::ALL {
        for f in e.fields() {
            if dcrs_domain::catalogue::codes_of(e, f.name).is_some() {
                assert!(
                    CODE_FIELDS
                        .iter()
                        .any(|(ce, cf, _)| *ce == e && *cf == f.name),
                    "{e:?}.{} is coded in the catalogue but not in the standard",
                    f.name
                );
            }
        }
    }
}

#[test]
fn every_code_of_every_code_list_has_words_a_person_reads() {
    for list in dcrs_domain::catalogue::all_lists() {
        let words = list.words();
        let mut seen = BTreeSet::new();
        for (code, w) in &words {
            let what = format!("{}: {code} reads {w:?}", list.name);
            assert!(!w.trim().is_empty(), "{what}");
            assert!(
                w.chars().next().unwrap().is_uppercase() || w.starts_with(char::is_numeric),
                "{what}"
            );
            assert!(!w.contains('_'), "{what}: words, not a code");
            assert!(w != code || !code.contains('_'), "{what}");
            assert!(seen.insert(*w), "{what}: two codes read the same");
        }
    }
    // A few that people meet, as the NHS writes them.
    let e = dcrs_domain::catalogue::codes_of(Entity::Client, "ethnicity").unwrap();
    assert_eq!(e.words_for("J"), Some("Asian or Asian British: Pakistani"));
    assert_eq!(e.words_for("99"), Some("Not known"));
    let d = dcrs_domain::catalogue::codes_of(Entity::Client, "disability").unwrap();
    assert_eq!(d.words_for("not_stated"), Some("Not stated"));
    let s = dcrs_domain::catalogue::codes_of(Entity::Referral, "source").unwrap();
    assert_eq!(s.words_for("gp"), Some("GP"));
    assert_eq!(
        s.words_for("stop_smoking_service"),
        Some("Stop smoking service")
    );
}

#[test]
fn the_catalogue_describes_every_field_and_marks_required_as_the_standard_does() {
    use dcrs_domain::catalogue::{Shape, fields_of};
    for e in Entity::ALL {
        let described = fields_of(e);
        assert_eq!(
            described.len(),
            e.fields().len(),
            "{e:?}: every field described"
        );
        let required: &[&str] = REQUIRED.iter().find(|(x, _)| *x == e).unwrap().1;
        for a in &described {
            let what = format!("{e:?}.{}", a.name);
            assert!(!a.label.trim().is_empty(), "{what}: a label");
            assert!(!a.label.contains('_'), "{what}: the label is words");
            assert_eq!(
                a.required,
                required.contains(&a.name),
                "{what}: required as dataset.md says"
            );
            // And as the parser has it: the base row with this field blank.
            let blank = parse(e, &set(base_row(e), a.name, ""));
            if a.required {
                let errs = blank.expect_err(&what);
                assert!(errs.iter().any(|x| x.field == a.name), "{what}: {errs:?}");
            } else if let Err(errs) = blank {
                assert!(
                    errs.iter().all(|x| x.field != a.name),
                    "{what}: optional, yet refused blank: {errs:?}"
                );
            }
            if let Shape::Code(c) = a.shape {
                assert!(
                    CODE_FIELDS
                        .iter()
                        .any(|(ce, cf, _)| *ce == e && *cf == a.name),
                    "{what}: coded in the catalogue ({})",
                    c.name
                );
            }
        }
    }
}

#[test]
fn the_catalogue_ranges_are_the_ones_the_parser_enforces() {
    use dcrs_domain::catalogue::{Shape, fields_of};
    let mut numbers = 0;
    for e in Entity::ALL {
        for a in fields_of(e) {
            let Shape::Number { min, max, whole } = a.shape else {
                continue;
            };
            numbers += 1;
            let what = format!("{e:?}.{}", a.name);
            // Cigarettes are recorded only for a current smoker.
            let base = if a.name == "cigarettes_per_day" {
                base_with(e, &[("smoking_status", "current")])
            } else {
                base_row(e)
            };
            let step = if whole { 1.0 } else { 0.01 };
            for ok in [min, max] {
                let r = set(base.clone(), a.name, &ok.to_string());
                accept(e, &r, &format!("{what} at {ok}"));
            }
            for bad in [min - step, max + step] {
                let r = set(base.clone(), a.name, &format!("{bad}"));
                reject(e, &r, a.name, &format!("{what} at {bad}"));
            }
            if whole {
                let r = set(base.clone(), a.name, &format!("{}", min + 0.5));
                reject(e, &r, a.name, &format!("{what}: whole numbers only"));
            }
        }
    }
    // dataset.md's numbers: 12 measures and limits of assessments, sessions and workers.
    assert_eq!(numbers, 14);
}

#[test]
fn the_assessment_measures_are_every_field_after_the_date() {
    let names: Vec<&str> = dcrs_domain::catalogue::assessment_measures()
        .iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(
        names,
        [
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
        ]
    );
}
