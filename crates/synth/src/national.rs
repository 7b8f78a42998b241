//! A national deployment of any size, calibrated to the published national figures of
//! analytics.md section 9: each service serves one real local authority, with a
//! deprivation skew solved so that 69% of its clients with a known quintile live in
//! national quintiles 1–2.

use crate::geo::Geography;
use crate::model::{
    BLANK_POSTCODE_SHARE, Behaviour, ClinicalMix, Config, NEIGHBOUR_SHARE, ServicePlan,
    UNKNOWN_POSTCODE_SHARE,
};
use crate::rng::Rng;
use chrono::NaiveDate;

/// FY 2008-09 to 2010-11, the years of the national DCRS figures.
pub const START: &str = "2008-04-01";
pub const END: &str = "2011-03-31";
/// The national share of clients from quintiles 1–2 (DCRS 2008–11).
pub const Q12_TARGET: f64 = 0.69;

/// Share of an area's (skew-weighted) population in quintiles 1–2.
fn q12(pops: &[f64; 5], beta: f64) -> f64 {
    let w: Vec<f64> = (0..5).map(|q| pops[q] * (-beta * q as f64).exp()).collect();
    let all: f64 = w.iter().sum();
    if all == 0.0 { 0.0 } else { (w[0] + w[1]) / all }
}

/// The skew exponent that makes the expected quintile 1–2 share among clients with a
/// known quintile equal the target, counting the neighbour's clients too (bisection;
/// the share rises with the exponent).
fn solve_beta(area: &[f64; 5], neighbour: Option<&[f64; 5]>) -> f64 {
    let known = 1.0 - BLANK_POSTCODE_SHARE - UNKNOWN_POSTCODE_SHARE;
    let wn = if neighbour.is_some() {
        NEIGHBOUR_SHARE / known
    } else {
        0.0
    };
    let share =
        |b: f64| (1.0 - wn) * q12(area, b) + wn * neighbour.map(|n| q12(n, b)).unwrap_or(0.0);
    let (mut lo, mut hi) = (-2.0, 6.0);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if share(mid) < Q12_TARGET {
            lo = mid
        } else {
            hi = mid
        }
    }
    (lo + hi) / 2.0
}

/// `n` services sharing `clients` clients.
pub fn services(geo: &Geography, rng: &mut Rng, n: u32, clients: u64) -> Vec<ServicePlan> {
    // Areas where a moderate skew reaches the target.
    let mut candidates: Vec<(usize, f64)> = (0..geo.lads.len())
        .filter(|l| q12(&geo.quintile_population(*l), 1.0) >= Q12_TARGET + 0.02)
        .map(|l| (l, geo.quintile_population(l).iter().sum::<f64>()))
        .collect();
    let start = NaiveDate::parse_from_str(START, "%Y-%m-%d").expect("date");
    let mut plans = Vec::new();
    for i in 0..n {
        let pool = if candidates.is_empty() {
            // More services than areas: areas are shared by several services.
            (0..geo.lads.len())
                .filter(|l| q12(&geo.quintile_population(*l), 1.0) >= Q12_TARGET + 0.02)
                .map(|l| (l, 1.0))
                .collect()
        } else {
            std::mem::take(&mut candidates)
        };
        let mut pool = pool;
        let k = rng.weighted(&pool.iter().map(|x| x.1).collect::<Vec<_>>());
        let (lad, _) = pool.swap_remove(k);
        candidates = pool;
        let neighbour = geo.neighbour(lad);
        let nb = neighbour.map(|x| geo.quintile_population(x));
        let beta = solve_beta(&geo.quintile_population(lad), nb.as_ref());
        let mut skew = [0.0; 5];
        for (q, s) in skew.iter_mut().enumerate() {
            *s = (-beta * q as f64).exp();
        }
        let share = clients / u64::from(n) + u64::from(u64::from(i) < clients % u64::from(n));
        let community = 0.6 + 0.25 * rng.unit();
        let sref = format!("S{:03}", i + 1);
        let name = &geo.lads[lad].name;
        plans.push(ServicePlan {
            service_ref: sref.clone(),
            name: format!("{name} Health Trainers (synthetic service {sref})"),
            description: format!("a community service in {name}"),
            org_ref: format!("ORG-{sref}"),
            org_name: format!("{name} Primary Care Trust (synthetic)"),
            lads: vec![lad],
            neighbour,
            target_lsoas: Vec::new(),
            started: start,
            base: Behaviour {
                volume: share as f64 / 12.0,
                community,
                clinical: (1.0 - community) * 0.8,
                clinical_mix: ClinicalMix::GeneralPractice,
                skew,
                target_boost: 1.0,
                telephone: 0.02 + 0.1 * rng.unit(),
                clinical_venue: 0.05 + 0.25 * rng.unit(),
                brief: 0.02 + 0.06 * rng.unit(),
                plan_rate: 0.8,
                days_to_plan: (10.0 + 18.0 * rng.unit()).round(),
                sessions: 7.0,
                local_worker: 0.75,
                wider: 0.2 + 0.25 * rng.unit(),
            },
            base_config: Config {
                provider_model: "single_third_sector",
                funding: "nhs_commissioner",
                senior_buy_in: "yes",
                routes: "self;community_organisation;gp",
                worker_profile: "person_next_door",
                targeting: "most_deprived_20pct",
                formal_performance_management: "yes",
                interaction_model: "one_to_one_behaviour_change",
                notes: "Synthetic national deployment",
            },
            changes: Vec::new(),
            exact_clients: Some(share),
        });
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_solved_skew_hits_the_target() {
        let area = [100.0, 200.0, 300.0, 300.0, 100.0];
        let b = solve_beta(&area, None);
        assert!((q12(&area, b) - Q12_TARGET).abs() < 1e-9);
        let nb = [0.0, 0.0, 100.0, 100.0, 100.0];
        let b2 = solve_beta(&area, Some(&nb));
        assert!(
            b2 > b,
            "the neighbour has no deprived areas, so the skew must be stronger"
        );
    }
}
