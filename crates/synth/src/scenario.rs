//! The six-service demonstration scenario (analytics.md section 9): services A to F,
//! FY 2006-07 to 2012-13, following the start-up → follow-up comparisons of the 2014
//! case studies. Each scripted change is written to `scenario.json` with its quarter,
//! whether it was recorded as a configuration change, and the levels it moves.

use crate::SynthError;
use crate::geo::Geography;
use crate::model::{Behaviour, Change, ClinicalMix, Config, ServicePlan};
use chrono::NaiveDate;

/// The last day of the scenario (end of FY 2012-13).
pub const END: &str = "2013-03-31";

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a scenario date")
}

/// A community peer-led service's behaviour: mostly self and community referrals,
/// face-to-face sessions in community venues, local workers.
fn community(volume: f64, skew: [f64; 5]) -> Behaviour {
    Behaviour {
        volume,
        community: 0.82,
        clinical: 0.12,
        clinical_mix: ClinicalMix::GeneralPractice,
        skew,
        target_boost: 1.0,
        telephone: 0.05,
        clinical_venue: 0.12,
        brief: 0.03,
        plan_rate: 0.78,
        days_to_plan: 21.0,
        sessions: 7.0,
        local_worker: 0.85,
        wider: 0.35,
    }
}

const UNIFORM: [f64; 5] = [1.0; 5];

/// The local authorities, service by service: a large town, a city, a mixed
/// urban/rural county, a city, a large town, a seaside town.
const AREAS: [(&str, &str, &str); 6] = [
    ("A", "E06000009", "a large town (Blackpool)"),
    ("B", "E06000018", "citywide (Nottingham)"),
    (
        "C",
        "E06000047",
        "a mixed urban and rural county (County Durham)",
    ),
    ("D", "E08000012", "a city (Liverpool)"),
    ("E", "E08000001", "a large town (Bolton)"),
    ("F", "E07000062", "a seaside town (Hastings)"),
];

/// The LSOAs of an authority in its own most deprived third by IMD rank: the "locally
/// defined deprived areas" of `deprived_areas_local` targeting.
fn local_deprived(geo: &Geography, lad: usize) -> Vec<usize> {
    let mut l = geo.lads[lad].lsoas.clone();
    l.sort_by_key(|i| geo.lsoas[*i].rank);
    l.truncate(l.len().div_ceil(3));
    l.sort();
    l
}

/// The six services.
pub fn services(geo: &Geography) -> Result<Vec<ServicePlan>, SynthError> {
    let mut out = Vec::new();
    for (sref, lad_code, description) in AREAS {
        let lad = geo.lad(lad_code)?;
        let name = &geo.lads[lad].name;
        let mut p = ServicePlan {
            service_ref: sref.to_string(),
            name: format!("{name} Health Trainers (synthetic service {sref})"),
            description: description.to_string(),
            org_ref: format!("ORG-{sref}"),
            org_name: format!("{name} Primary Care Trust (synthetic)"),
            lads: vec![lad],
            neighbour: geo.neighbour(lad),
            target_lsoas: Vec::new(),
            started: date("2006-04-03"),
            base: community(90.0, UNIFORM),
            base_config: Config {
                provider_model: "single_third_sector",
                funding: "nhs_commissioner",
                senior_buy_in: "yes",
                routes: "self;community_organisation;friend_or_family",
                worker_profile: "person_next_door",
                targeting: "most_deprived_20pct",
                formal_performance_management: "no",
                interaction_model: "one_to_one_behaviour_change",
                notes: "Start-up model",
            },
            changes: Vec::new(),
            exact_clients: None,
        };
        match sref {
            "A" => {
                p.started = date("2007-01-08");
                p.target_lsoas = local_deprived(geo, lad);
                p.base = Behaviour {
                    target_boost: 2.0,
                    ..community(90.0, [4.0, 1.5, 1.0, 0.7, 0.5])
                };
                p.base_config = Config {
                    provider_model: "multiple_third_sector",
                    routes: "self;community_organisation;outreach_event",
                    targeting: "deprived_areas_local",
                    notes: "Start-up: several third-sector providers, people next door, locally defined deprived areas",
                    ..p.base_config
                };
                let retender = Behaviour {
                    community: 0.40,
                    clinical: 0.55,
                    clinical_mix: ClinicalMix::CvdAndSmoking,
                    brief: 0.35,
                    clinical_venue: 0.35,
                    ..p.base.clone()
                };
                let cfg2 = Config {
                    provider_model: "single_third_sector",
                    senior_buy_in: "champion_left",
                    routes: "self;community_organisation;health_check;stop_smoking_service",
                    formal_performance_management: "yes",
                    interaction_model: "one_to_one_plus_brief_contacts",
                    notes: "Re-tendered to one provider; CVD risk assessment and stop-smoking referrals; brief contacts",
                    ..p.base_config.clone()
                };
                p.changes = vec![
                    Change {
                        id: "A1".into(),
                        starts: date("2009-10-01"),
                        ramp_quarters: 0,
                        description: "Re-tendered to a single provider after the senior champion left: referrals from CVD risk assessment and stop-smoking services, brief risk-assessment contacts in clinical venues, formal performance management",
                        config: Some(cfg2),
                        behaviour: retender.clone(),
                        turnover: 0.0,
                    },
                    Change {
                        id: "A2".into(),
                        starts: date("2011-07-01"),
                        ramp_quarters: 0,
                        description: "Not recorded: under volume targets the service stops concentrating on its deprived target areas",
                        config: None,
                        behaviour: Behaviour {
                            skew: UNIFORM,
                            target_boost: 1.0,
                            ..retender
                        },
                        turnover: 0.0,
                    },
                ];
            }
            "B" => {
                p.started = date("2006-02-01");
                p.base = community(110.0, [3.0, 1.5, 1.0, 0.8, 0.6]);
                p.base_config.routes = "self;community_organisation;friend_or_family";
                p.base_config.notes =
                    "Start-up: one third-sector provider, self and community referral";
                let gp = Behaviour {
                    community: 0.30,
                    clinical: 0.65,
                    skew: UNIFORM,
                    days_to_plan: 7.0,
                    plan_rate: 0.92,
                    clinical_venue: 0.55,
                    ..p.base.clone()
                };
                p.changes = vec![
                    Change {
                        id: "B1".into(),
                        starts: date("2008-07-01"),
                        ramp_quarters: 0,
                        description: "Two providers; GP referrals prioritised and sessions in GP practices; targeting dropped; early plan setting; formal performance management",
                        config: Some(Config {
                            provider_model: "multiple_third_sector",
                            routes: "gp;practice_nurse;self",
                            targeting: "universal",
                            formal_performance_management: "yes",
                            interaction_model: "early_plan_prioritised",
                            notes: "Second provider; GP referral prioritised; universal offer",
                            ..p.base_config.clone()
                        }),
                        behaviour: gp.clone(),
                        turnover: 0.0,
                    },
                    Change {
                        id: "B2".into(),
                        starts: date("2010-01-01"),
                        ramp_quarters: 0,
                        description: "Not recorded: providers replace leavers with work-ready applicants from outside the area",
                        config: None,
                        behaviour: Behaviour {
                            local_worker: 0.25,
                            ..gp
                        },
                        turnover: 0.7,
                    },
                ];
            }
            "C" => {
                p.started = date("2006-10-02");
                p.target_lsoas = local_deprived(geo, lad);
                p.base = Behaviour {
                    target_boost: 1.8,
                    plan_rate: 0.70,
                    days_to_plan: 28.0,
                    ..community(90.0, [2.5, 1.5, 1.0, 0.8, 0.7])
                };
                p.base_config = Config {
                    provider_model: "nhs_and_third_sector",
                    funding: "non_health_public",
                    routes: "self;community_organisation;outreach_event",
                    targeting: "deprived_areas_local",
                    notes: "Start-up: NHS and two third-sector providers, regeneration funding",
                    ..p.base_config
                };
                p.changes = vec![Change {
                    id: "C1".into(),
                    starts: date("2009-04-01"),
                    ramp_quarters: 0,
                    description: "NHS-funded from April 2009; the same community model with early plan setting and formal performance management",
                    config: Some(Config {
                        funding: "nhs_commissioner",
                        formal_performance_management: "yes",
                        interaction_model: "early_plan_prioritised",
                        notes: "Mainstreamed into NHS funding; early plan setting",
                        ..p.base_config.clone()
                    }),
                    behaviour: Behaviour {
                        days_to_plan: 10.0,
                        plan_rate: 0.90,
                        ..p.base.clone()
                    },
                    turnover: 0.0,
                }];
            }
            "D" => {
                p.started = date("2007-01-08");
                p.base = Behaviour {
                    sessions: 6.0,
                    wider: 0.45,
                    ..community(100.0, [3.0, 1.2, 1.0, 0.8, 0.6])
                };
                p.base_config = Config {
                    provider_model: "multiple_third_sector",
                    senior_buy_in: "no",
                    routes: "self;community_organisation;housing_or_jobcentre",
                    notes: "Start-up: several third-sector providers, residents of the 20% most deprived areas",
                    ..p.base_config
                };
                let phone = Behaviour {
                    community: 0.30,
                    clinical: 0.62,
                    skew: UNIFORM,
                    telephone: 0.75,
                    sessions: 2.0,
                    plan_rate: 0.60,
                    brief: 0.15,
                    clinical_venue: 0.30,
                    local_worker: 0.4,
                    ..p.base.clone()
                };
                p.changes = vec![
                    Change {
                        id: "D1".into(),
                        starts: date("2010-04-01"),
                        ramp_quarters: 0,
                        description: "One external provider with original and re-badged staff; GP referrals; universal; telephone assessment and referral",
                        config: Some(Config {
                            provider_model: "external_provider",
                            senior_buy_in: "yes",
                            routes: "gp;practice_nurse;health_check",
                            worker_profile: "mixed_rebadged",
                            targeting: "universal",
                            formal_performance_management: "yes",
                            interaction_model: "telephone_assessment_and_referral",
                            notes: "Re-procured: one external provider, telephone model",
                            ..p.base_config.clone()
                        }),
                        behaviour: phone.clone(),
                        turnover: 0.5,
                    },
                    Change {
                        id: "D2".into(),
                        starts: date("2011-10-01"),
                        ramp_quarters: 0,
                        description: "Not recorded: the telephone script stops asking about wider issues",
                        config: None,
                        behaviour: Behaviour {
                            wider: 0.12,
                            ..phone
                        },
                        turnover: 0.0,
                    },
                ];
            }
            "E" => {
                p.started = date("2006-02-01");
                p.base = Behaviour {
                    community: 0.62,
                    clinical: 0.30,
                    clinical_venue: 0.25,
                    days_to_plan: 14.0,
                    local_worker: 0.7,
                    wider: 0.3,
                    ..community(90.0, [2.5, 1.5, 1.0, 0.8, 0.6])
                };
                p.base_config = Config {
                    provider_model: "nhs_in_house",
                    routes: "self;community_organisation;gp",
                    formal_performance_management: "yes",
                    notes: "Start-up: NHS in-house service",
                    ..p.base_config
                };
                let clinical = Behaviour {
                    community: 0.25,
                    clinical: 0.70,
                    clinical_venue: 0.70,
                    ..p.base.clone()
                };
                p.changes = vec![
                    Change {
                        id: "E1".into(),
                        starts: date("2009-01-01"),
                        ramp_quarters: 4,
                        description: "Not recorded: over four quarters the in-house team drifts toward primary care, taking most referrals from GPs and seeing clients in practices",
                        config: None,
                        behaviour: clinical.clone(),
                        turnover: 0.0,
                    },
                    Change {
                        id: "E2".into(),
                        starts: date("2011-04-01"),
                        ramp_quarters: 0,
                        description: "The commissioner records, two years late, that GP referral is now the main route",
                        config: Some(Config {
                            routes: "gp;practice_nurse;self",
                            notes: "Referral routes updated to reflect practice",
                            ..p.base_config.clone()
                        }),
                        behaviour: clinical,
                        turnover: 0.0,
                    },
                ];
            }
            _ => {
                // F: the stable control.
                p.started = date("2006-10-02");
                p.base = community(75.0, [2.5, 1.4, 1.0, 0.8, 0.6]);
                p.base_config.formal_performance_management = "yes";
                p.base_config.notes = "A community service that keeps its model (the control)";
            }
        }
        out.push(p);
    }
    Ok(out)
}
