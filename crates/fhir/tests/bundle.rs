//! One client with a record of every kind, turned into a Bundle: pinned by a snapshot,
//! every reference resolving inside the bundle, ids stable, and codes that cannot be
//! anything but their value set's.

use chrono::NaiveDate;
use dcrs_domain::record::{Entity, Record, parse_record};
use dcrs_domain::rules::ClientBundle;
use dcrs_fhir::types::{self, Resource};
use dcrs_fhir::{ServiceInfo, client_bundle};
use std::collections::HashSet;

fn record(entity: Entity, fields: &[(&'static str, &str)]) -> Record {
    let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let fields: Vec<(&'static str, String)> =
        fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
    parse_record(entity, &fields, today).unwrap_or_else(|e| panic!("{entity:?}: {e:?}"))
}

macro_rules! take {
    ($variant:ident, $entity:ident, $fields:expr) => {
        match record(Entity::$entity, $fields) {
            Record::$variant(x) => x,
            _ => unreachable!(),
        }
    };
}

/// A client with two referrals (one not yet seen), a closed full episode, baseline and
/// exit assessments, a plan of two goals, an attended and a missed session, an onward
/// referral and a wider issue.
fn client() -> ClientBundle {
    let mut b = ClientBundle::new(take!(
        Client,
        Client,
        &[
            ("client_ref", "C1"),
            ("service_ref", "S1"),
            ("given_name", "Ann"),
            ("family_name", "Example"),
            ("nhs_number", "9000000017"),
            ("date_of_birth", "1980-05-01"),
            ("sex", "female"),
            ("ethnicity", "A"),
            ("postcode", "FY1 5DW"),
            ("gp_registered", "yes"),
            ("gp_practice_code", "P81001"),
            ("employment", "employed"),
            ("disability", "no"),
            ("consent_to_record", "yes"),
            ("consent_to_share_with_gp", "yes"),
        ]
    ));
    b.referrals.push(take!(
        Referral,
        Referral,
        &[
            ("referral_ref", "R1"),
            ("service_ref", "S1"),
            ("client_ref", "C1"),
            ("received_on", "2010-05-03"),
            ("source", "gp"),
            ("reason", "wants to lose weight"),
        ]
    ));
    b.referrals.push(take!(
        Referral,
        Referral,
        &[
            ("referral_ref", "R2"),
            ("service_ref", "S1"),
            ("client_ref", "C1"),
            ("received_on", "2011-02-01"),
            ("source", "self"),
        ]
    ));
    b.episodes.push(take!(
        Episode,
        Episode,
        &[
            ("episode_ref", "E1"),
            ("service_ref", "S1"),
            ("referral_ref", "R1"),
            ("lead_worker_ref", "W1"),
            ("kind", "full"),
            ("first_contact_on", "2010-05-10"),
            ("primary_issue", "weight"),
            ("closed_on", "2010-09-01"),
            ("exit_reason", "completed"),
        ]
    ));
    b.assessments.push(take!(
        Assessment,
        Assessment,
        &[
            ("assessment_ref", "A1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("occasion", "baseline"),
            ("assessed_on", "2010-05-10"),
            ("height_cm", "165"),
            ("weight_kg", "82.5"),
            ("waist_cm", "96"),
            ("fruit_veg_portions_per_day", "2"),
            ("high_fat_snacks_per_day", "3"),
            ("active_days_per_week", "1"),
            ("alcohol_units_per_week", "12"),
            ("smoking_status", "current"),
            ("cigarettes_per_day", "10"),
            ("self_efficacy", "4"),
            ("general_health", "55"),
            ("swemwbs_raw", "19"),
        ]
    ));
    b.assessments.push(take!(
        Assessment,
        Assessment,
        &[
            ("assessment_ref", "A2"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("occasion", "exit"),
            ("assessed_on", "2010-08-30"),
            ("weight_kg", "78"),
            ("smoking_status", "ex"),
            ("swemwbs_raw", "24"),
        ]
    ));
    b.plans.push(take!(
        Plan,
        Plan,
        &[
            ("plan_ref", "P1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("agreed_on", "2010-05-17"),
        ]
    ));
    b.goals.push(take!(
        Goal,
        Goal,
        &[
            ("goal_ref", "G1"),
            ("service_ref", "S1"),
            ("plan_ref", "P1"),
            ("domain", "diet"),
            ("description", "Five portions of fruit and vegetables a day"),
            ("target_on", "2010-08-01"),
            ("status", "fully_achieved"),
            ("status_on", "2010-09-01"),
        ]
    ));
    b.goals.push(take!(
        Goal,
        Goal,
        &[
            ("goal_ref", "G2"),
            ("service_ref", "S1"),
            ("plan_ref", "P1"),
            ("domain", "smoking"),
            ("description", "Stop smoking"),
            ("status", "partly_achieved"),
            ("status_on", "2010-09-01"),
        ]
    ));
    b.sessions.push(take!(
        Session,
        Session,
        &[
            ("session_ref", "X1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("worker_ref", "W1"),
            ("held_on", "2010-05-10"),
            ("duration_min", "45"),
            ("mode", "face_to_face"),
            ("venue", "community_venue"),
            ("purpose", "assessment"),
            ("attended", "yes"),
        ]
    ));
    b.sessions.push(take!(
        Session,
        Session,
        &[
            ("session_ref", "X2"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("worker_ref", "W1"),
            ("held_on", "2010-06-07"),
            ("duration_min", "30"),
            ("mode", "telephone"),
            ("venue", "remote"),
            ("purpose", "support"),
            ("attended", "did_not_attend"),
        ]
    ));
    b.onward_referrals.push(take!(
        OnwardReferral,
        OnwardReferral,
        &[
            ("onward_ref", "O1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("made_on", "2010-06-01"),
            ("action", "referred"),
            ("destination", "stop_smoking"),
            ("outcome", "attended"),
        ]
    ));
    b.wider_issues.push(take!(
        WiderIssue,
        WiderIssue,
        &[
            ("wider_issue_ref", "WI1"),
            ("service_ref", "S1"),
            ("episode_ref", "E1"),
            ("noted_on", "2010-06-01"),
            ("issue", "housing"),
        ]
    ));
    b
}

fn service() -> ServiceInfo {
    ServiceInfo {
        service_ref: "S1".into(),
        name: "North Health Trainers".into(),
    }
}

#[test]
fn a_clients_bundle_is_pinned_by_a_snapshot() {
    let bundle = client_bundle(&client(), &service(), "2026-11-26T12:00:00Z");
    insta::assert_json_snapshot!("client_bundle", bundle);
}

#[test]
fn every_record_is_there_and_every_reference_resolves_in_the_bundle() {
    let bundle = client_bundle(&client(), &service(), "2026-11-26T12:00:00Z");
    let count = |f: fn(&Resource) -> bool| bundle.entry.iter().filter(|e| f(&e.resource)).count();
    assert_eq!(count(|r| matches!(r, Resource::Patient(_))), 1);
    assert_eq!(
        count(|r| matches!(r, Resource::ServiceRequest(_))),
        3,
        "two referrals, one onward"
    );
    assert_eq!(count(|r| matches!(r, Resource::EpisodeOfCare(_))), 1);
    assert_eq!(count(|r| matches!(r, Resource::Encounter(_))), 2);
    assert_eq!(count(|r| matches!(r, Resource::CarePlan(_))), 1);
    assert_eq!(count(|r| matches!(r, Resource::Goal(_))), 2);
    // Baseline: 12 measures and a BMI; exit: weight, smoking, SWEMWBS and a BMI (from the
    // baseline height); a wider issue.
    assert_eq!(count(|r| matches!(r, Resource::Observation(_))), 13 + 4 + 1);

    let urls: HashSet<&str> = bundle.entry.iter().map(|e| e.full_url.as_str()).collect();
    assert_eq!(urls.len(), bundle.entry.len(), "full URLs are unique");
    let text = serde_json::to_value(&bundle).unwrap();
    let mut refs = Vec::new();
    collect_refs(&text, &mut refs);
    assert!(refs.len() > 20);
    for r in &refs {
        assert!(
            urls.contains(r.as_str()),
            "{r} does not resolve in the bundle"
        );
    }

    // The exit BMI: 78 kg over the baseline's 165 cm.
    let bmi: Vec<f64> = bundle
        .entry
        .iter()
        .filter_map(|e| match &e.resource {
            Resource::Observation(o) if o.code.coding[0].code == "39156-5" => {
                o.value_quantity.as_ref().map(|q| q.value)
            }
            _ => None,
        })
        .collect();
    assert_eq!(bmi, [30.3, 28.7]);
}

fn collect_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "reference" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    collect_refs(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[test]
fn ids_are_stable_and_differ_between_services() {
    let a = client_bundle(&client(), &service(), "2026-11-26T12:00:00Z");
    let b = client_bundle(&client(), &service(), "2027-01-01T00:00:00Z");
    assert_eq!(a.entry, b.entry, "the same records give the same resources");
    let other = ServiceInfo {
        service_ref: "S2".into(),
        name: "South".into(),
    };
    let c = client_bundle(&client(), &other, "2026-11-26T12:00:00Z");
    assert_ne!(a.id, c.id, "C1 of another service is another patient");
}

#[test]
fn coded_fields_cannot_hold_an_invalid_code() {
    // Every status and coded element is an enum: a code outside its value set does not
    // even read back into the types.
    let bundle = client_bundle(&client(), &service(), "2026-11-26T12:00:00Z");
    let mut text = serde_json::to_value(&bundle).unwrap();
    let back: types::Bundle = serde_json::from_value(text.clone()).unwrap();
    assert_eq!(back, bundle, "a bundle reads back as it was written");
    for (pointer, bad) in [
        ("/entry/0/resource/gender", "woman"),
        ("/type", "batch-of-things"),
    ] {
        let saved = text.pointer(pointer).unwrap().clone();
        *text.pointer_mut(pointer).unwrap() = serde_json::json!(bad);
        assert!(
            serde_json::from_value::<types::Bundle>(text.clone()).is_err(),
            "{pointer} = {bad} was accepted"
        );
        *text.pointer_mut(pointer).unwrap() = saved;
    }
    for bad in ["done", "complete", "FINISHED"] {
        assert!(serde_json::from_value::<types::EncounterStatus>(serde_json::json!(bad)).is_err());
    }
    assert!(
        serde_json::from_value::<types::GoalLifecycleStatus>(serde_json::json!("achieved"))
            .is_err()
    );
    assert_eq!(types::EpisodeOfCareStatus::Finished.code(), "finished");
}
