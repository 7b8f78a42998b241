//! How well the shift detector generalises beyond the six-service scenario. Simulated
//! services with one change each, at a random quarter, of a random size, recorded or
//! not, with 30 to 300 referrals a quarter; some changes are steps and some ramps over
//! three quarters; and stable services for false alarms. Every service has seven
//! measures: four shares of records (binomial draws around their level), sessions per
//! episode (whole numbers; in half the services short episodes, a median of one or two
//! sessions with many ties), days to plan (whole days), and the local worker share of a
//! team of 4 to 30 people with steady turnover, the same people from quarter to quarter.
//!
//! Prints, per measure, recall for steps of 0.2 or more in a share (30% or more in a
//! median) within two quarters at 50+ referrals a quarter, and false alarms per 40
//! stable service-quarters; also how many change events each change was counted as.
//! Asserts recall of at least 0.95 (a flag on any measure the change moves, as
//! analytics.md section 7 counts it) for steps of 0.2 or more in services of at least 50
//! referrals a quarter, outside the small teams' local worker share, whose recall is
//! printed; at most one false alarm per 40 stable service-quarters for every measure;
//! that every flag of a recorded change starts within one quarter of it (so that it is
//! labelled `explained`); and that a change is counted as one event, not one per measure
//! or per step of a ramp.

/// Writes to the terminal past the test harness's capture, so that the figures are in
/// the log of every run (CI's included), not only with `--nocapture`.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

use dcrs_report::drift::{Series, Settings, Shift, Team, detect, events};
use std::collections::BTreeMap;

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

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

const QUARTERS: usize = 28;

/// The measures simulated, by name.
const MEASURES: [&str; 7] = [
    "community_referral_share",
    "clinical_referral_share",
    "telephone_share",
    "brief_share",
    "sessions_per_episode",
    "days_to_plan",
    "local_worker_share",
];
const SESSIONS: usize = 4;
const DAYS: usize = 5;
const WORKERS: usize = 6;

/// The shares simulated: (measure, denominator per referral, starting level).
const SHARES: [(usize, f64, f64); 4] = [
    (0, 1.0, 0.75),
    (1, 1.0, 0.15),
    (2, 7.0, 0.06),
    (3, 0.85, 0.05),
];

/// A change: the quarter it starts, its size (a difference of shares, or of a
/// median's relative change two thirds of it times 1.5), what kind, whether it is
/// recorded, and how many quarters it takes to reach its size (1 for a step).
#[derive(Clone, Copy)]
struct Change {
    at: usize,
    size: f64,
    kind: usize,
    recorded: bool,
    ramp: usize,
}

impl Change {
    /// How far the change has gone in quarter `q` (0 to 1).
    fn progress(&self, q: usize) -> f64 {
        if q < self.at {
            0.0
        } else {
            (((q - self.at) + 1) as f64 / self.ramp as f64).min(1.0)
        }
    }

    /// Whether the change moves measure `m` by the size analytics.md requires to be
    /// found (0.2 in a share, 30% in a median).
    fn large_on(&self, m: usize) -> bool {
        moved(self.kind).iter().any(|(x, _)| *x == m) && self.size >= 0.2 - 1e-9
    }
}

/// What a change of each kind moves: (measure, sign). Medians move by 1.5 times the
/// size, relatively (a size of 0.2 moves a median by 30%).
fn moved(kind: usize) -> &'static [(usize, f64)] {
    match kind {
        0 => &[(0, -1.0), (1, 1.0)],
        1 => &[(2, 1.0), (SESSIONS, -1.0)],
        2 => &[(3, 1.0)],
        3 => &[(DAYS, 1.0)],
        _ => &[(WORKERS, -1.0)],
    }
}

struct Service {
    referrals: u64,
    short_episodes: bool,
    team: i64,
    change: Option<Change>,
    series: Vec<Series>,
}

/// Whole-number values around a median (a log-normal rounded, at least `floor`).
fn values(rng: &mut Rng, n: i64, median: f64, spread: f64, floor: i64) -> BTreeMap<i64, i64> {
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let v = (median * (spread * rng.normal()).exp()).round() as i64;
        *out.entry(v.max(floor)).or_default() += 1;
    }
    out
}

fn simulate(rng: &mut Rng, change: bool) -> Service {
    let referrals = rng.range(30, 300);
    let short_episodes = rng.unit() < 0.5;
    let change = change.then(|| Change {
        at: rng.range(6, 22) as usize,
        size: 0.1 + 0.4 * rng.unit(),
        kind: rng.range(0, 4) as usize,
        recorded: rng.unit() < 0.5,
        ramp: if rng.unit() < 0.3 { 3 } else { 1 },
    });
    let shift = |m: usize, q: usize| -> f64 {
        match change {
            Some(c) => moved(c.kind)
                .iter()
                .find(|(x, _)| *x == m)
                .map_or(0.0, |(_, sign)| sign * c.size * c.progress(q)),
            None => 0.0,
        }
    };
    let volume: Vec<f64> = (0..QUARTERS)
        .map(|_| referrals as f64 * (0.9 + 0.2 * rng.unit()))
        .collect();
    let mut series = Vec::new();
    for (m, per_referral, level) in SHARES {
        let quarters = (0..QUARTERS)
            .map(|q| {
                let n = (volume[q] * per_referral).round() as i64;
                let p = (level + shift(m, q)).clamp(0.01, 0.99);
                Some((rng.binomial(n, p), n))
            })
            .collect();
        series.push(Series::Share(quarters));
    }
    // Sessions per closed full episode: short episodes (median 1.2 to 2, so that half
    // or more are a single session) or longer ones (3 to 6).
    let sessions_median = if short_episodes {
        1.2 + 0.8 * rng.unit()
    } else {
        3.0 + 3.0 * rng.unit()
    };
    let quarters = (0..QUARTERS)
        .map(|q| {
            let n = (volume[q] * 0.45).round() as i64;
            let m = sessions_median * (1.0 + 1.5 * shift(SESSIONS, q));
            Some(values(rng, n, m, 0.45, 1))
        })
        .collect();
    series.push(Series::Median(quarters));
    let days_median = 7.0 + 28.0 * rng.unit();
    let quarters = (0..QUARTERS)
        .map(|q| {
            let n = (volume[q] * 0.5).round() as i64;
            let m = days_median * (1.0 + 1.5 * shift(DAYS, q));
            Some(values(rng, n, m, 0.7, 0))
        })
        .collect();
    series.push(Series::Median(quarters));
    // A team of about one worker per ten referrals a quarter; each quarter each worker
    // leaves with probability 0.07 and is replaced by someone local with probability
    // `hire`. A change of the worker profile replaces half the team at once with hires
    // local with probability lower by twice the size, and goes on hiring so.
    let team = (referrals as i64 / 10).max(4);
    let base = 0.75;
    let mut roster: Vec<(usize, bool)> = (0..team).map(|_| (0, rng.unit() < base)).collect();
    let mut quarters = Vec::new();
    for q in 0..QUARTERS {
        let hire = (base + 2.0 * shift(WORKERS, q)).clamp(0.02, 0.98);
        let mut active: Team = BTreeMap::new();
        let count = |who: &(usize, bool), active: &mut Team| {
            let e = active.entry(who.0).or_default();
            e.0 += i64::from(who.1);
            e.1 += 1;
        };
        let restructure = change
            .is_some_and(|c| c.kind == 4 && q == c.at)
            .then_some(team / 2);
        for (i, who) in roster.iter_mut().enumerate() {
            let leaves =
                q > 0 && (rng.unit() < 0.07 || restructure.is_some_and(|r| (i as i64) < r));
            if leaves {
                // The leaver was active this quarter too.
                count(who, &mut active);
                *who = (q, rng.unit() < hire);
            }
            count(who, &mut active);
        }
        quarters.push(Some(active));
    }
    series.push(Series::Team(quarters));
    Service {
        referrals,
        short_episodes,
        team,
        change,
        series,
    }
}

#[test]
fn shifts_are_found_in_simulated_services_and_stable_ones_stay_quiet() {
    let settings = Settings::default();
    let mut rng = Rng(2026);
    // Per measure, steps of 0.2 or more at 50+ referrals: (found within two quarters,
    // all); per change kind the same, a flag on any measure it moves counting.
    let mut by_measure = [(0u32, 0u32); 7];
    let mut by_kind = [(0u32, 0u32); 5];
    let mut small = (0u32, 0u32);
    let mut ramps = (0u32, 0u32);
    let mut mislabelled = Vec::new();
    // Events counted per change, against flags.
    let (mut changes_flagged, mut change_events, mut change_flags) = (0u32, 0u32, 0u32);
    let changed = 300;
    for i in 0..changed {
        let s = simulate(&mut rng, true);
        let c = s.change.expect("a change");
        let found: Vec<Vec<Shift>> = s.series.iter().map(|x| detect(x, &settings)).collect();
        let in_time = |sh: &Shift| sh.detected >= c.at && sh.detected <= c.at + 2;
        let mut any = false;
        for (m, _) in moved(c.kind) {
            let hit = found[*m].iter().any(in_time);
            any |= hit;
            if c.large_on(*m) && s.referrals >= 50 && c.ramp == 1 {
                by_measure[*m].1 += 1;
                by_measure[*m].0 += u32::from(hit);
            }
            for sh in found[*m].iter().filter(|sh| in_time(sh)) {
                // A recorded change writes a configuration dated `at`; the flag is
                // labelled `explained` when its estimated start is within one quarter
                // of that, so a recorded step must be placed that well.
                if c.recorded && c.ramp == 1 && sh.began.abs_diff(c.at) > 1 {
                    mislabelled.push(format!(
                        "service {i}: {} change at {} began at {}",
                        MEASURES[*m], c.at, sh.began
                    ));
                }
            }
        }
        if c.size >= 0.2 && c.ramp == 1 {
            if s.referrals >= 50 {
                by_kind[c.kind].1 += 1;
                by_kind[c.kind].0 += u32::from(any);
            } else {
                small.1 += 1;
                small.0 += u32::from(any);
            }
        }
        if c.size >= 0.2 && c.ramp > 1 && s.referrals >= 50 {
            ramps.1 += 1;
            // A ramp reaches 0.2 within its three quarters; found within two more.
            ramps.0 += u32::from(moved(c.kind).iter().any(|(m, _)| {
                found[*m]
                    .iter()
                    .any(|sh| sh.detected >= c.at && sh.detected <= c.at + c.ramp + 1)
            }));
        }
        // Flags on the measures the change moves, from its start on, grouped.
        let flags: Vec<(usize, &Shift)> = moved(c.kind)
            .iter()
            .flat_map(|(m, _)| found[*m].iter().map(move |sh| (*m, sh)))
            .filter(|(_, sh)| sh.detected >= c.at)
            .collect();
        if !flags.is_empty() {
            changes_flagged += 1;
            change_flags += flags.len() as u32;
            change_events += events(&flags).len() as u32;
        }
    }
    say!(
        "recall, steps of 0.2 or more (30% in a median), 50+ referrals a quarter, within two quarters:"
    );
    for (m, (found, all)) in by_measure.iter().enumerate() {
        say!(
            "  {:>26}: {found}/{all} ({:.2})",
            MEASURES[m],
            f64::from(*found) / f64::from((*all).max(1))
        );
    }
    let kinds = [
        "to primary care",
        "to telephone",
        "to brief",
        "slower plans",
        "worker profile",
    ];
    say!("  by change, a flag on any measure it moves:");
    for (k, (found, all)) in by_kind.iter().enumerate() {
        say!("  {:>26}: {found}/{all}", kinds[k]);
    }
    say!(
        "  30-49 referrals a quarter: {}/{}; ramps over three quarters (found by two quarters after the ramp): {}/{}",
        small.0,
        small.1,
        ramps.0,
        ramps.1
    );
    let (found, all) = by_kind[..4]
        .iter()
        .fold((0, 0), |(f, a), v| (f + v.0, a + v.1));
    let big_recall = f64::from(found) / f64::from(all);
    say!(
        "recall, steps of 0.2 or more, 50+ referrals, changes of records: {found}/{all} = {big_recall:.3}"
    );
    say!(
        "{changes_flagged} changes flagged: {change_flags} flags on the measures they move, {change_events} change events"
    );

    let mut alarms = [0u32; 7];
    let mut false_events = 0u32;
    let mut watched = 0u32;
    let stable = 100;
    let (mut short_alarms, mut short_watched) = (0u32, 0u32);
    let (mut small_team_alarms, mut small_team_watched) = (0u32, 0u32);
    for _ in 0..stable {
        let s = simulate(&mut rng, false);
        let found: Vec<Vec<Shift>> = s.series.iter().map(|x| detect(x, &settings)).collect();
        for (m, f) in found.iter().enumerate() {
            alarms[m] += f.len() as u32;
        }
        let flags: Vec<(usize, &Shift)> = found
            .iter()
            .enumerate()
            .flat_map(|(m, f)| f.iter().map(move |sh| (m, sh)))
            .collect();
        false_events += events(&flags).len() as u32;
        let quarters = (QUARTERS - settings.reference_quarters) as u32;
        // The first four quarters are the reference; the rest are watched.
        watched += quarters;
        if s.short_episodes {
            short_alarms += found[SESSIONS].len() as u32;
            short_watched += quarters;
        }
        if s.team <= 12 {
            small_team_alarms += found[WORKERS].len() as u32;
            small_team_watched += quarters;
        }
    }
    let per_40 = |a: u32, w: u32| f64::from(a) * 40.0 / f64::from(w.max(1));
    say!(
        "false alarms per 40 stable service-quarters ({stable} services, {watched} watched quarters \
         per measure, {} service-years):",
        stable * QUARTERS / 4
    );
    for (m, a) in alarms.iter().enumerate() {
        say!(
            "  {:>26}: {a} ({:.2} per 40)",
            MEASURES[m],
            per_40(*a, watched)
        );
    }
    say!(
        "  sessions per episode, short episodes only: {short_alarms} in {short_watched} ({:.2} per 40)",
        per_40(short_alarms, short_watched)
    );
    say!(
        "  local worker share, teams of 12 or fewer: {small_team_alarms} in {small_team_watched} ({:.2} per 40)",
        per_40(small_team_alarms, small_team_watched)
    );
    say!(
        "  change events on stable services: {false_events} ({:.2} per 40 service-quarters)",
        per_40(false_events, watched)
    );
    assert!(
        big_recall >= 0.95,
        "recall {big_recall:.3} for shifts of 0.2 or more in services of 50+ referrals"
    );
    for (m, a) in alarms.iter().enumerate() {
        let rate = per_40(*a, watched);
        assert!(
            rate <= 1.0,
            "{}: {rate:.2} false alarms per 40",
            MEASURES[m]
        );
    }
    assert!(
        per_40(short_alarms, short_watched) <= 1.0,
        "short episodes: {short_alarms} false alarms in {short_watched} quarters"
    );
    assert!(mislabelled.is_empty(), "{mislabelled:#?}");
    // One change, one event: at most one in ten changes split in two.
    assert!(
        f64::from(change_events) <= 1.1 * f64::from(changes_flagged),
        "{change_events} events for {changes_flagged} changes"
    );
}

#[test]
fn a_ramp_over_many_measures_is_one_event() {
    // A move to primary care over four quarters: the community share falls from 0.75
    // to 0.25 and the clinical share rises from 0.15 to 0.65, 200 referrals a quarter,
    // no noise. Every flag on either measure belongs to one change.
    let ramp = |from: f64, to: f64| {
        Series::Share(
            (0..28)
                .map(|q: usize| {
                    let t = (q.saturating_sub(9) as f64 / 4.0).min(1.0);
                    let p = from + (to - from) * if q < 10 { 0.0 } else { t };
                    Some(((p * 200.0).round() as i64, 200))
                })
                .collect(),
        )
    };
    let settings = Settings::default();
    let community = detect(&ramp(0.75, 0.25), &settings);
    let clinical = detect(&ramp(0.15, 0.65), &settings);
    assert!(community.len() + clinical.len() >= 2);
    let flags: Vec<(usize, &Shift)> = community
        .iter()
        .map(|s| (0, s))
        .chain(clinical.iter().map(|s| (1, s)))
        .collect();
    let found = events(&flags);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].start, 10);
    assert_eq!(found[0].flags.len(), flags.len());
}
