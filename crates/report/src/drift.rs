//! Shifts in a service's quarterly delivery fingerprint (analytics.md section 7): an
//! online detector that watches each measure against the service's own reference level
//! and a retrospective change-point search over a whole series. Pure functions of the
//! quarterly counts, so they are tested on simulated series as well as on the scenario.
//!
//! A share is compared with its reference by a two-proportion z statistic. A median is
//! compared by a rank-sum (Mann-Whitney) test of the quarter's values against the
//! reference's, with the correction for ties: the reference median is itself an estimate
//! from a few quarters, and whole-number values (one session, two sessions) tie in large
//! numbers. Its size is the change in the median of the values read as whole numbers
//! rounded from a continuous quantity (the interpolated median), so that a share of
//! episodes crossing from one session to two by chance does not move it by a whole unit.
//! The local worker share counts much the same people every quarter, so its evidence is
//! the workers who joined since the reference, tested against the reference team's share.
//! A shift needs both a size that matters (`min_share`, `min_median`) and evidence
//! (`z_pair` over two consecutive quarters that both moved the same way, or `z_single`
//! for one quarter that moved at least twice as far). See `docs/patterns.md` for the
//! settings and their limits.

use std::collections::BTreeMap;

/// The detector's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Quarters with sufficient data that make up a reference level.
    pub reference_quarters: usize,
    /// The fewest records (the denominator of a share, the values of a median, the
    /// workers of a team) a quarter needs to be part of a reference.
    pub reference_min_n: i64,
    /// Smallest change in a share worth flagging (the requirement is 0.2; half of it
    /// leaves room for noise in the quarters' own estimates).
    pub min_share: f64,
    /// Smallest relative change in a median worth flagging (the requirement is 30%;
    /// two thirds of it leave room for noise, measured on interpolated medians).
    pub min_median: f64,
    /// Evidence needed over two consecutive quarters.
    pub z_pair: f64,
    /// Evidence needed from one quarter alone.
    pub z_single: f64,
    /// Evidence needed for a retrospective change point.
    pub z_change_point: f64,
    /// Evidence needed over two consecutive quarters, and from one alone, in a team's
    /// share: the evidence there is only the workers who joined, a handful a year, and
    /// the size threshold does most of the guarding.
    pub z_team_pair: f64,
    pub z_team_single: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reference_quarters: 4,
            reference_min_n: 10,
            min_share: 0.1,
            min_median: 0.2,
            z_pair: 3.0,
            z_single: 4.5,
            z_change_point: 4.0,
            z_team_pair: 2.5,
            z_team_single: 3.5,
        }
    }
}

/// The workers of a team active in one quarter with a known answer, by the quarter
/// (index) they started (0 for any time up to the first quarter): (local, known).
pub type Team = BTreeMap<usize, (i64, i64)>;

/// One measure's quarterly data.
#[derive(Debug, Clone)]
pub enum Series {
    /// Numerator and denominator per quarter (`None` where the quarter has no data).
    Share(Vec<Option<(i64, i64)>>),
    /// The values behind a median, as value → how many, per quarter.
    Median(Vec<Option<BTreeMap<i64, i64>>>),
    /// A share of a team's workers, most of whom are the same people from one quarter
    /// to the next.
    Team(Vec<Option<Team>>),
}

/// A comparison of some quarters with a reference: the signed size of the change (a
/// difference of shares, or a relative change of medians) and its z statistic.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    pub effect: f64,
    pub z: f64,
}

fn median(values: &BTreeMap<i64, i64>) -> Option<f64> {
    let n: i64 = values.values().sum();
    if n == 0 {
        return None;
    }
    let at = |k: i64| {
        let mut seen = 0;
        for (v, c) in values {
            seen += c;
            if seen > k {
                return *v as f64;
            }
        }
        unreachable!("k < n")
    };
    Some(if n % 2 == 1 {
        at(n / 2)
    } else {
        (at(n / 2 - 1) + at(n / 2)) / 2.0
    })
}

/// The median of whole numbers read as a continuous quantity rounded to them: each
/// value v stands for [v − ½, v + ½), and the median is interpolated within the value
/// where half the count is reached. Half the episodes at one session and a third at
/// two gives about 1.5, moving smoothly as the shares move, where the plain median
/// jumps between 1 and 2.
pub fn interpolated_median(values: &BTreeMap<i64, i64>) -> Option<f64> {
    let n: i64 = values.values().sum();
    if n == 0 {
        return None;
    }
    let half = n as f64 / 2.0;
    let mut below = 0i64;
    for (v, c) in values {
        if (below + c) as f64 >= half && *c > 0 {
            return Some(*v as f64 - 0.5 + (half - below as f64) / *c as f64);
        }
        below += c;
    }
    values.keys().last().map(|v| *v as f64 + 0.5)
}

/// The Mann-Whitney z of `b` against `a` (positive when `b` tends to be larger), with
/// the variance corrected for ties.
fn rank_sum_z(a: &BTreeMap<i64, i64>, b: &BTreeMap<i64, i64>) -> f64 {
    let n1: f64 = a.values().sum::<i64>() as f64;
    let n2: f64 = b.values().sum::<i64>() as f64;
    let total = n1 + n2;
    if n1 == 0.0 || n2 == 0.0 || total < 2.0 {
        return 0.0;
    }
    let mut all: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (v, c) in a {
        all.entry(*v).or_default().0 += c;
    }
    for (v, c) in b {
        all.entry(*v).or_default().1 += c;
    }
    let (mut ranked, mut rank_sum, mut ties) = (0.0f64, 0.0f64, 0.0f64);
    for (ca, cb) in all.values() {
        let t = (ca + cb) as f64;
        let mid = ranked + (t + 1.0) / 2.0;
        rank_sum += *cb as f64 * mid;
        ties += t * t * t - t;
        ranked += t;
    }
    let u = rank_sum - n2 * (n2 + 1.0) / 2.0;
    let var = n1 * n2 / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if var <= 0.0 {
        return 0.0;
    }
    (u - n1 * n2 / 2.0) / var.sqrt()
}

impl Series {
    /// How many quarters.
    pub fn len(&self) -> usize {
        match self {
            Series::Share(v) => v.len(),
            Series::Median(v) => v.len(),
            Series::Team(v) => v.len(),
        }
    }

    /// Whether there are no quarters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many records quarter `q` rests on: a share's denominator, a median's values,
    /// a team's workers with a known answer.
    pub fn size(&self, q: usize) -> i64 {
        match self {
            Series::Share(v) => v[q].map_or(0, |(_, n)| n),
            Series::Median(v) => v[q].as_ref().map_or(0, |m| m.values().sum()),
            Series::Team(v) => v[q].as_ref().map_or(0, |t| t.values().map(|x| x.1).sum()),
        }
    }

    /// Whether quarter `q` has data.
    pub fn has(&self, q: usize) -> bool {
        self.size(q) > 0
    }

    fn pooled_share(v: &[Option<(i64, i64)>], quarters: &[usize]) -> (i64, i64) {
        quarters
            .iter()
            .filter_map(|&q| v[q])
            .fold((0, 0), |(a, b), (k, n)| (a + k, b + n))
    }

    fn pooled_values(v: &[Option<BTreeMap<i64, i64>>], quarters: &[usize]) -> BTreeMap<i64, i64> {
        let mut all = BTreeMap::new();
        for m in quarters.iter().filter_map(|&q| v[q].as_ref()) {
            for (value, c) in m {
                *all.entry(*value).or_default() += c;
            }
        }
        all
    }

    /// A team's (local, known) over some quarters, each quarter's workers counted once
    /// per quarter; and how many quarters had workers.
    fn pooled_team(v: &[Option<Team>], quarters: &[usize]) -> ((i64, i64), i64) {
        let mut quarters_with = 0;
        let mut sum = (0, 0);
        for t in quarters.iter().filter_map(|&q| v[q].as_ref()) {
            let (k, n) = t.values().fold((0, 0), |(a, b), x| (a + x.0, b + x.1));
            if n > 0 {
                quarters_with += 1;
                sum = (sum.0 + k, sum.1 + n);
            }
        }
        (sum, quarters_with)
    }

    /// The level over some quarters: the pooled share, or the median of the pooled
    /// values.
    pub fn level(&self, quarters: &[usize]) -> Option<f64> {
        match self {
            Series::Share(v) => {
                let (k, n) = Self::pooled_share(v, quarters);
                (n > 0).then(|| k as f64 / n as f64)
            }
            Series::Median(v) => median(&Self::pooled_values(v, quarters)),
            Series::Team(v) => {
                let ((k, n), _) = Self::pooled_team(v, quarters);
                (n > 0).then(|| k as f64 / n as f64)
            }
        }
    }

    /// Compares `window` with `reference`.
    pub fn test(&self, reference: &[usize], window: &[usize]) -> Option<Test> {
        match self {
            Series::Share(v) => {
                let (k0, n0) = Self::pooled_share(v, reference);
                let (k, n) = Self::pooled_share(v, window);
                if n0 == 0 || n == 0 {
                    return None;
                }
                let p0 = k0 as f64 / n0 as f64;
                let p = k as f64 / n as f64;
                // A reference at 0 or 1 would make any change infinitely unlikely.
                let pc = p0.clamp(0.02, 0.98);
                let se = (pc * (1.0 - pc) * (1.0 / n as f64 + 1.0 / n0 as f64)).sqrt();
                Some(Test {
                    effect: p - p0,
                    z: (p - p0) / se,
                })
            }
            Series::Median(v) => {
                let before = Self::pooled_values(v, reference);
                let after = Self::pooled_values(v, window);
                let m0 = interpolated_median(&before)?;
                let m = interpolated_median(&after)?;
                Some(Test {
                    effect: (m - m0) / m0.abs().max(1.0),
                    z: rank_sum_z(&before, &after),
                })
            }
            Series::Team(v) => {
                let ((k0, n0), q0) = Self::pooled_team(v, reference);
                let ((k, n), _) = Self::pooled_team(v, window);
                if n0 == 0 || n == 0 {
                    return None;
                }
                let p0 = k0 as f64 / n0 as f64;
                let p = k as f64 / n as f64;
                // Workers who stayed carry no news: the evidence is the workers of the
                // window's last quarter who joined after the reference, tested against
                // the reference team's share (itself an estimate from a team of about
                // n0 / q0 people).
                let last_ref = *reference.iter().max()?;
                let last = *window.iter().max()?;
                let (jk, jn) = v[last].as_ref().map_or((0, 0), |t| {
                    t.range(last_ref + 1..)
                        .fold((0, 0), |(a, b), (_, x)| (a + x.0, b + x.1))
                });
                let team0 = n0 as f64 / q0.max(1) as f64;
                let pc = p0.clamp(0.02, 0.98);
                let z = if jn == 0 {
                    0.0
                } else {
                    let jn = jn as f64;
                    (jk as f64 - jn * p0) / (jn * pc * (1.0 - pc) * (1.0 + jn / team0)).sqrt()
                };
                Some(Test { effect: p - p0, z })
            }
        }
    }

    fn min_effect(&self, s: &Settings) -> f64 {
        match self {
            Series::Share(_) | Series::Team(_) => s.min_share,
            Series::Median(_) => s.min_median,
        }
    }
}

/// A shift found by the online detector.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// The quarter (index) in which it was detected.
    pub detected: usize,
    /// The estimated quarter it began.
    pub began: usize,
    /// The first quarter watched against this shift's reference: a shift that began
    /// there was already under way when watching resumed after an earlier one.
    pub watched_from: usize,
    /// The reference quarters it was measured against.
    pub reference: Vec<usize>,
    /// The quarters of the new level when detected (from `began` to `detected`).
    pub after: Vec<usize>,
    /// The level before (the reference) and after.
    pub level_before: f64,
    pub level_after: f64,
    /// The quarters of the test that flagged it (the detected quarter, and the one
    /// before it when two quarters together gave the evidence).
    pub window: Vec<usize>,
    /// The size and the evidence of the test that flagged it: a difference of shares
    /// or a relative change of (interpolated) medians, and its z statistic.
    pub effect: f64,
    pub z: f64,
}

/// Watches a series quarter by quarter, with every quarter allowed in a reference.
pub fn detect(series: &Series, s: &Settings) -> Vec<Shift> {
    detect_where(series, s, |_| true)
}

/// Watches a series quarter by quarter. The reference is the first
/// `reference_quarters` quarters with sufficient data (`sufficient`, and at least
/// `reference_min_n` records); after a shift it is rebuilt from the quarters after the
/// one it began in (that quarter is a mix of the old level and the new), and watching
/// resumes once it is complete.
pub fn detect_where(
    series: &Series,
    s: &Settings,
    sufficient: impl Fn(usize) -> bool,
) -> Vec<Shift> {
    let min = series.min_effect(s);
    let (z_pair, z_single) = match series {
        Series::Team(_) => (s.z_team_pair, s.z_team_single),
        _ => (s.z_pair, s.z_single),
    };
    let usable = |q: usize| sufficient(q) && series.size(q) >= s.reference_min_n;
    let mut shifts = Vec::new();
    let mut reference: Vec<usize> = Vec::new();
    // Quarters watched since the reference was complete.
    let mut watched: Vec<usize> = Vec::new();
    for t in 0..series.len() {
        if !series.has(t) {
            continue;
        }
        if reference.len() < s.reference_quarters {
            if usable(t) {
                reference.push(t);
            }
            continue;
        }
        watched.push(t);
        let dev = |q: usize| series.test(&reference, &[q]);
        let Some(now) = dev(t) else { continue };
        let single = now.effect.abs() >= 2.0 * min && now.z.abs() >= z_single;
        let pair = watched.len() >= 2 && {
            let prev = watched[watched.len() - 2];
            match (dev(prev), series.test(&reference, &[prev, t])) {
                (Some(p), Some(both)) => {
                    p.effect.signum() == now.effect.signum()
                        && p.effect.abs() >= min / 2.0
                        && now.effect.abs() >= min / 2.0
                        && both.effect.abs() >= min
                        && both.z.abs() >= z_pair
                }
                _ => false,
            }
        };
        if !(single || pair) {
            continue;
        }
        let window = if pair {
            vec![watched[watched.len() - 2], t]
        } else {
            vec![t]
        };
        let evidence = series.test(&reference, &window).unwrap_or(now);
        // It began at the earliest of the watched quarters, in an unbroken run back
        // from now, that moved the same way by at least half the smallest shift, with
        // some evidence of its own (|z| of at least 1, the same way): a small team's
        // share wanders by a person or two before a real change, and a quarter that
        // moved by chance must not pull the start back.
        let mut began = t;
        for &q in watched.iter().rev().skip(1) {
            match dev(q) {
                Some(d)
                    if d.effect.signum() == now.effect.signum()
                        && d.effect.abs() >= min / 2.0
                        && d.z * now.effect.signum() >= 1.0 =>
                {
                    began = q
                }
                _ => break,
            }
        }
        if let Series::Team(v) = series {
            began = team_start(v, &reference, &watched, began, t, now.effect.signum());
        }
        let after: Vec<usize> = watched.iter().copied().filter(|&q| q >= began).collect();
        shifts.push(Shift {
            detected: t,
            began,
            watched_from: watched[0],
            level_before: series.level(&reference).unwrap_or(f64::NAN),
            level_after: series.level(&after).unwrap_or(f64::NAN),
            reference: std::mem::take(&mut reference),
            after: after.clone(),
            window,
            effect: evidence.effect,
            z: evidence.z,
        });
        // The new level's reference leaves out the quarter the shift began in.
        reference = after
            .iter()
            .copied()
            .filter(|&q| q > began && usable(q))
            .take(s.reference_quarters)
            .collect();
        watched.clear();
    }
    shifts
}

/// Where a team's shift began: of the watched quarters from `from` to `to`, the
/// earliest whose own starters (those active in `to` who started in it) moved the share
/// at least half as much, against the reference team's share, as the starters of the
/// quarter that moved it most. A restructure shows as one large cohort; a hiring change
/// as a run of small ones; a chance hire or two before either does not pull the start
/// back.
fn team_start(
    v: &[Option<Team>],
    reference: &[usize],
    watched: &[usize],
    from: usize,
    to: usize,
    direction: f64,
) -> usize {
    let Some(now) = v[to].as_ref() else {
        return from;
    };
    let (k0, n0) = reference
        .iter()
        .filter_map(|&q| v[q].as_ref())
        .flat_map(|t| t.values())
        .fold((0, 0), |(a, b), x| (a + x.0, b + x.1));
    if n0 == 0 {
        return from;
    }
    let p0 = k0 as f64 / n0 as f64;
    let moved = |q: usize| {
        now.get(&q)
            .map_or(0.0, |(k, n)| direction * (*k as f64 - *n as f64 * p0))
    };
    let quarters: Vec<usize> = watched
        .iter()
        .copied()
        .filter(|&q| q >= from && q <= to)
        .collect();
    let most = quarters.iter().map(|&q| moved(q)).fold(0.0, f64::max);
    if most <= 0.0 {
        return from;
    }
    quarters
        .into_iter()
        .find(|&q| moved(q) >= most / 2.0)
        .unwrap_or(from)
}

/// One change in a service, as the flags it raised: a change moves several measures
/// together (more clinical referrals means fewer community ones), and a gradual one
/// moves a measure again once watching resumes, so flags are grouped before they are
/// counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The earliest estimated start of its flags.
    pub start: usize,
    /// The latest quarter one of its flags was detected.
    pub end: usize,
    /// Its flags, as indices into the list grouped.
    pub flags: Vec<usize>,
}

/// Groups flags (measure, shift) into change events. A flag joins an event when it
/// began no later than one quarter after the event's latest detection, or when it
/// carries on a flag of the same measure in the event: the same direction, and begun in
/// the first quarter watched after that flag (the measure was still moving when
/// watching resumed, as in a ramp). Events are in order of their start.
pub fn events(flags: &[(usize, &Shift)]) -> Vec<Event> {
    let mut order: Vec<usize> = (0..flags.len()).collect();
    order.sort_by_key(|&i| (flags[i].1.began, flags[i].1.detected, flags[i].0));
    let mut out: Vec<Event> = Vec::new();
    for i in order {
        let (measure, shift) = flags[i];
        let joins = |e: &Event| {
            shift.began <= e.end + 1
                || e.flags.iter().any(|&j| {
                    let (m, earlier) = flags[j];
                    m == measure
                        && earlier.effect.signum() == shift.effect.signum()
                        && shift.began == shift.watched_from
                        && earlier.detected < shift.watched_from
                })
        };
        match out.iter_mut().rev().find(|e| joins(e)) {
            Some(e) => {
                e.flags.push(i);
                e.start = e.start.min(shift.began);
                e.end = e.end.max(shift.detected);
            }
            None => out.push(Event {
                start: shift.began,
                end: shift.detected,
                flags: vec![i],
            }),
        }
    }
    out.sort_by_key(|e| e.start);
    out
}

/// A change point found looking back over a whole series.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePoint {
    /// The first quarter (index) of the new level.
    pub at: usize,
    /// The quarters of the levels before and after (up to the neighbouring change points).
    pub before: Vec<usize>,
    pub after: Vec<usize>,
    pub level_before: f64,
    pub level_after: f64,
}

/// Binary segmentation: the split of a segment with the strongest evidence, when it is
/// large enough and strong enough, then the same in each half. Each side of a split has
/// at least two quarters with data.
pub fn change_points(series: &Series, s: &Settings) -> Vec<ChangePoint> {
    let quarters: Vec<usize> = (0..series.len()).filter(|&q| series.has(q)).collect();
    let mut cuts = Vec::new();
    split(series, s, &quarters, &mut cuts);
    cuts.sort();
    let mut out = Vec::new();
    for (i, &at) in cuts.iter().enumerate() {
        let lo = if i == 0 { 0 } else { cuts[i - 1] };
        let hi = cuts.get(i + 1).copied().unwrap_or(usize::MAX);
        let before: Vec<usize> = quarters
            .iter()
            .copied()
            .filter(|&q| q >= lo && q < at)
            .collect();
        let after: Vec<usize> = quarters
            .iter()
            .copied()
            .filter(|&q| q >= at && q < hi)
            .collect();
        out.push(ChangePoint {
            at,
            level_before: series.level(&before).unwrap_or(f64::NAN),
            level_after: series.level(&after).unwrap_or(f64::NAN),
            before,
            after,
        });
    }
    out
}

fn split(series: &Series, s: &Settings, quarters: &[usize], cuts: &mut Vec<usize>) {
    if quarters.len() < 4 {
        return;
    }
    let min = series.min_effect(s);
    let best = (2..=quarters.len() - 2)
        .filter_map(|i| {
            let t = series.test(&quarters[..i], &quarters[i..])?;
            (t.effect.abs() >= min).then_some((i, t.z.abs()))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((i, z)) = best
        && z >= s.z_change_point
    {
        cuts.push(quarters[i]);
        split(series, s, &quarters[..i], cuts);
        split(series, s, &quarters[i..], cuts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(values: &[(i64, i64)]) -> Series {
        Series::Share(values.iter().map(|&v| Some(v)).collect())
    }

    #[test]
    fn a_clear_step_is_found_where_it_began() {
        // 60% for eight quarters, then 30%, 100 a quarter.
        let mut v = vec![(60, 100); 8];
        v.extend(vec![(30, 100); 6]);
        let shifts = detect(&shares(&v), &Settings::default());
        assert_eq!(shifts.len(), 1, "{shifts:?}");
        assert_eq!(shifts[0].began, 8);
        assert!(shifts[0].detected <= 9);
        assert!((shifts[0].level_before - 0.6).abs() < 1e-9);
        assert!((shifts[0].level_after - 0.3).abs() < 1e-9);
        let cps = change_points(&shares(&v), &Settings::default());
        assert_eq!(cps.iter().map(|c| c.at).collect::<Vec<_>>(), [8]);
    }

    #[test]
    fn a_flat_series_has_no_shift() {
        let v = vec![(50, 100); 30];
        assert!(detect(&shares(&v), &Settings::default()).is_empty());
        assert!(change_points(&shares(&v), &Settings::default()).is_empty());
    }

    /// Sessions per episode with `ones` of 100 episodes at one session, 33 at two and
    /// the rest at three.
    fn short(ones: i64) -> Option<BTreeMap<i64, i64>> {
        Some(BTreeMap::from([(1, ones), (2, 33), (3, 67 - ones)]))
    }

    #[test]
    fn a_median_tied_at_one_session_does_not_jump_to_two() {
        // 55 of 100 episodes at one session in the reference, then 48: the plain median
        // goes from 1 to 2 (100%), which the sign test against a reference median of 1
        // (nothing below it) flagged with z = 6.7. Read as a continuous quantity, the
        // median moves from 1.41 to 1.56 (11%, under the 20% that matters), and the
        // rank-sum test sees a small shift (z about 2, under the 3 that two quarters
        // need).
        let mut v: Vec<_> = (0..6).map(|_| short(55)).collect();
        v.extend((0..6).map(|_| short(48)));
        let series = Series::Median(v);
        assert!(detect(&series, &Settings::default()).is_empty());
        let t = series.test(&[0, 1, 2, 3], &[6, 7]).unwrap();
        assert!(t.z.abs() < 3.0, "{t:?}");
        assert!((t.effect - (1.56 - 1.41) / 1.41).abs() < 0.01, "{t:?}");
        // Half at one and a third at two: about one and a half, as it should read.
        let m = interpolated_median(&BTreeMap::from([(1, 50), (2, 33), (3, 17)])).unwrap();
        assert!((m - 1.5).abs() < 1e-9, "{m}");
    }

    #[test]
    fn the_rank_sum_test_counts_ties_and_the_reference_as_a_sample() {
        // The same values on both sides: no evidence at all, however many ties.
        let a = BTreeMap::from([(1, 50), (2, 30), (3, 20)]);
        assert!(rank_sum_z(&a, &a).abs() < 1e-12);
        // Every value of b above every value of a: z as large as the sizes allow, and
        // the sign flips with the sides.
        let b = BTreeMap::from([(5, 40)]);
        let z = rank_sum_z(&a, &b);
        assert!(z > 8.0, "{z}");
        assert!((rank_sum_z(&b, &a) + z).abs() < 1e-9);
    }

    /// A team's quarter: `stayed` workers from the start (`local` of them local), and
    /// `joined` who started in quarter `at`, none local.
    fn team(stayed: i64, local: i64, joined: i64, at: usize) -> Option<Team> {
        let mut t = BTreeMap::from([(0, (local, stayed))]);
        if joined > 0 {
            t.insert(at, (0, joined));
        }
        Some(t)
    }

    #[test]
    fn a_team_is_weighed_by_who_joined_not_by_who_stayed() {
        // Twelve workers, ten local, quarter after quarter: pooled as new observations
        // each quarter, a move of one person looked like evidence. Here one local
        // worker is replaced by one who is not (10 of 12 to 9 of 12) and nothing is
        // flagged; eight replaced at once (to 2 of 12 local) is flagged in that quarter.
        let mut one: Vec<_> = (0..6).map(|_| team(12, 10, 0, 0)).collect();
        one.extend((6..14).map(|_| team(11, 9, 1, 6)));
        assert!(detect(&Series::Team(one), &Settings::default()).is_empty());
        let mut eight: Vec<_> = (0..6).map(|_| team(12, 10, 0, 0)).collect();
        eight.extend((6..14).map(|_| team(4, 2, 8, 6)));
        let found = detect(&Series::Team(eight), &Settings::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].began, found[0].detected), (6, 6));
    }

    #[test]
    fn a_reference_is_made_of_quarters_with_enough_data_and_skips_the_transition() {
        // Three quarters of 5 records, then 100 a quarter at 60%; a step to 30% begins
        // mid-quarter 12 (45%), complete from 13.
        let mut v = vec![(4, 5); 3];
        v.extend(vec![(60, 100); 9]);
        v.push((45, 100));
        v.extend(vec![(30, 100); 10]);
        let found = detect(&shares(&v), &Settings::default());
        assert_eq!(found[0].reference, vec![3, 4, 5, 6]);
        assert_eq!(found.len(), 1, "{found:?}");
        // The new level's reference leaves the mixed quarter out.
        let after = detect(&shares(&v[found[0].began + 1..]), &Settings::default());
        assert!(after.is_empty());
    }

    #[test]
    fn a_median_that_moves_by_a_third_is_found() {
        let q = |centre: i64| {
            let mut m = BTreeMap::new();
            for d in -3..=3 {
                m.insert(centre + d, 10 - d.abs() * 2);
            }
            Some(m)
        };
        let mut v: Vec<_> = (0..8).map(|_| q(12)).collect();
        v.extend((0..4).map(|_| q(8)));
        let shifts = detect(&Series::Median(v), &Settings::default());
        assert_eq!(shifts.len(), 1, "{shifts:?}");
        assert_eq!(shifts[0].began, 8);
        assert_eq!((shifts[0].level_before, shifts[0].level_after), (12.0, 8.0));
    }
}
