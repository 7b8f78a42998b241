//! How well the shift detector generalises beyond the six-service scenario: 50 simulated
//! services with one change each, at a random quarter, of a random size between 0.1 and
//! 0.5, recorded or not, with 30 to 300 referrals a quarter; and 50 stable services for
//! false alarms. Quarterly counts are drawn as binomials around each measure's level,
//! the noise the detector must see through. Prints recall by service size and shift
//! size and false alarms per 40 stable service-quarters per measure; asserts recall of at
//! least 0.95 for shifts of 0.2 or more in services of at least 50 referrals a quarter,
//! at most one false alarm per 40 stable service-quarters, and that every flag of a
//! recorded change starts within one quarter of it (so that it is labelled `explained`;
//! an unrecorded change has no configuration to explain it and is labelled `drift`).

/// Writes to the terminal past the test harness's capture, so that the figures are in
/// the log of every run (CI's included), not only with `--nocapture`.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

use dcrs_report::drift::{Series, Settings, detect};

/// SplitMix64: a fixed stream, so the test gives the same figures every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn binomial(&mut self, n: i64, p: f64) -> i64 {
        (0..n).filter(|_| self.unit() < p).count() as i64
    }
}

const QUARTERS: usize = 28;

/// The measures simulated: (name, denominator per referral, starting level).
const MEASURES: [(&str, f64, f64); 4] = [
    ("community_referral_share", 1.0, 0.75),
    ("clinical_referral_share", 1.0, 0.15),
    ("telephone_share", 7.0, 0.06),
    ("brief_share", 0.85, 0.05),
];

struct Service {
    referrals: u64,
    /// (quarter, size, which kind of change, recorded).
    change: Option<(usize, f64, usize, bool)>,
    series: Vec<Series>,
}

/// What a change of each kind moves: (measure, sign).
fn moved(kind: usize) -> &'static [(usize, f64)] {
    match kind {
        0 => &[(0, -1.0), (1, 1.0)],
        1 => &[(2, 1.0)],
        _ => &[(3, 1.0)],
    }
}

fn simulate(rng: &mut Rng, change: bool) -> Service {
    let referrals = rng.range(30, 300);
    let change = change.then(|| {
        (
            rng.range(6, 24) as usize,
            0.1 + 0.4 * rng.unit(),
            rng.range(0, 2) as usize,
            rng.unit() < 0.5,
        )
    });
    let mut series = Vec::new();
    for (m, (_, per_referral, level)) in MEASURES.iter().enumerate() {
        let mut quarters = Vec::new();
        for q in 0..QUARTERS {
            // Volume varies by about 10% from quarter to quarter.
            let volume = referrals as f64 * (0.9 + 0.2 * rng.unit());
            let n = (volume * per_referral).round() as i64;
            let mut p = *level;
            if let Some((at, size, kind, _)) = change
                && q >= at
                && let Some((_, sign)) = moved(kind).iter().find(|(x, _)| *x == m)
            {
                p += sign * size;
            }
            let k = rng.binomial(n, p.clamp(0.01, 0.99));
            quarters.push(Some((k, n)));
        }
        series.push(Series::Share(quarters));
    }
    Service {
        referrals,
        change,
        series,
    }
}

fn bucket(referrals: u64) -> &'static str {
    match referrals {
        0..=49 => "30-49",
        50..=99 => "50-99",
        100..=199 => "100-199",
        _ => "200-300",
    }
}

#[test]
fn shifts_are_found_in_fifty_simulated_services_and_stable_ones_stay_quiet() {
    let settings = Settings::default();
    let mut rng = Rng(2026);
    // (bucket, large shift) → (found within two quarters, found in the first, all).
    let mut recall: std::collections::BTreeMap<(&str, bool), (u32, u32, u32)> = Default::default();
    let mut mislabelled = Vec::new();
    for i in 0..50 {
        let s = simulate(&mut rng, true);
        let (at, size, kind, recorded) = s.change.expect("a change");
        let mut first = None;
        for (m, _) in moved(kind) {
            for shift in detect(&s.series[*m], &settings) {
                if shift.detected >= at && shift.detected <= at + 2 {
                    first = Some(first.map_or(shift.detected, |d: usize| d.min(shift.detected)));
                    // A recorded change writes a configuration dated `at`; the flag is
                    // labelled `explained` when its estimated start is within one
                    // quarter of that, so a recorded change must be placed that well.
                    if recorded && shift.began.abs_diff(at) > 1 {
                        mislabelled.push(format!(
                            "service {i}: change at {at} (recorded {recorded}) began at {}",
                            shift.began
                        ));
                    }
                }
            }
        }
        let e = recall
            .entry((bucket(s.referrals), size >= 0.2))
            .or_default();
        e.2 += 1;
        if let Some(d) = first {
            e.0 += 1;
            if d <= at + 1 {
                e.1 += 1;
            }
        }
    }
    say!("recall by referrals a quarter and shift size (within two quarters; within one):");
    for ((b, large), (found, early, all)) in &recall {
        say!(
            "  {b:>7} referrals, shift {}: {found}/{all} ({:.2}); {early}/{all} in the start quarter or the next",
            if *large { ">= 0.2" } else { "0.1-0.2" },
            f64::from(*found) / f64::from(*all)
        );
    }
    let (found, all) = recall
        .iter()
        .filter(|((b, large), _)| *large && *b != "30-49")
        .fold((0, 0), |(f, a), (_, v)| (f + v.0, a + v.2));
    let big_recall = f64::from(found) / f64::from(all);
    say!("recall, shifts of 0.2 or more, 50+ referrals a quarter: {found}/{all} = {big_recall:.3}");

    let mut alarms = [0u32; 4];
    let mut watched = 0u32;
    for _ in 0..50 {
        let s = simulate(&mut rng, false);
        for (m, series) in s.series.iter().enumerate() {
            alarms[m] += detect(series, &settings).len() as u32;
        }
        // The first four quarters are the reference; the rest are watched.
        watched += (QUARTERS - settings.reference_quarters) as u32;
    }
    say!("false alarms per 40 stable service-quarters ({watched} watched per measure):");
    for (m, a) in alarms.iter().enumerate() {
        say!(
            "  {}: {a} ({:.2} per 40)",
            MEASURES[m].0,
            f64::from(*a) * 40.0 / f64::from(watched)
        );
    }
    assert!(
        big_recall >= 0.95,
        "recall {big_recall:.3} for shifts of 0.2 or more in services of 50+ referrals"
    );
    for (m, a) in alarms.iter().enumerate() {
        let per_40 = f64::from(*a) * 40.0 / f64::from(watched);
        assert!(
            per_40 <= 1.0,
            "{}: {per_40:.2} false alarms per 40",
            MEASURES[m].0
        );
    }
    assert!(mislabelled.is_empty(), "{mislabelled:#?}");
}
