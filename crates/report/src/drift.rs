//! Shifts in a service's quarterly delivery fingerprint (analytics.md section 7): an
//! online detector that watches each measure against the service's own reference level
//! and a retrospective change-point search over a whole series. Pure functions of the
//! quarterly counts, so they are tested on simulated series as well as on the scenario.
//!
//! A share is compared with its reference by a two-proportion z statistic; a median by a
//! sign test (values above against below the reference median). A shift needs both a
//! size that matters (`min_share`, `min_median`) and evidence (`z_pair` over two
//! consecutive quarters that both moved the same way, or `z_single` for one quarter that
//! moved at least twice as far). See `docs/patterns.md` for the settings and their limits.

use std::collections::BTreeMap;

/// The detector's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Quarters with data that make up a reference level.
    pub reference_quarters: usize,
    /// Smallest change in a share worth flagging (the requirement is 0.2; half of it
    /// leaves room for noise in the quarters' own estimates).
    pub min_share: f64,
    /// Smallest relative change in a median worth flagging.
    pub min_median: f64,
    /// Evidence needed over two consecutive quarters.
    pub z_pair: f64,
    /// Evidence needed from one quarter alone.
    pub z_single: f64,
    /// Evidence needed for a retrospective change point.
    pub z_change_point: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reference_quarters: 4,
            min_share: 0.1,
            min_median: 0.2,
            z_pair: 3.0,
            z_single: 4.5,
            z_change_point: 4.0,
        }
    }
}

/// One measure's quarterly data.
#[derive(Debug, Clone)]
pub enum Series {
    /// Numerator and denominator per quarter (`None` where the quarter has no data).
    Share(Vec<Option<(i64, i64)>>),
    /// The values behind a median, as value → how many, per quarter.
    Median(Vec<Option<BTreeMap<i64, i64>>>),
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

impl Series {
    /// How many quarters.
    pub fn len(&self) -> usize {
        match self {
            Series::Share(v) => v.len(),
            Series::Median(v) => v.len(),
        }
    }

    /// Whether there are no quarters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether quarter `q` has data.
    pub fn has(&self, q: usize) -> bool {
        match self {
            Series::Share(v) => v[q].is_some_and(|(_, n)| n > 0),
            Series::Median(v) => v[q].as_ref().is_some_and(|m| m.values().sum::<i64>() > 0),
        }
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

    /// The level over some quarters: the pooled share, or the median of the pooled
    /// values.
    pub fn level(&self, quarters: &[usize]) -> Option<f64> {
        match self {
            Series::Share(v) => {
                let (k, n) = Self::pooled_share(v, quarters);
                (n > 0).then(|| k as f64 / n as f64)
            }
            Series::Median(v) => median(&Self::pooled_values(v, quarters)),
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
                let m0 = median(&Self::pooled_values(v, reference))?;
                let values = Self::pooled_values(v, window);
                let m = median(&values)?;
                let above: i64 = values
                    .range((m0.floor() as i64 + 1)..)
                    .map(|(_, c)| c)
                    .sum();
                let below: i64 = values.range(..(m0.ceil() as i64)).map(|(_, c)| c).sum();
                let n = above + below;
                let z = if n == 0 {
                    0.0
                } else {
                    (above - below) as f64 / (n as f64).sqrt()
                };
                Some(Test {
                    effect: (m - m0) / m0.abs().max(1.0),
                    z,
                })
            }
        }
    }

    fn min_effect(&self, s: &Settings) -> f64 {
        match self {
            Series::Share(_) => s.min_share,
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
    /// The reference quarters it was measured against.
    pub reference: Vec<usize>,
    /// The quarters of the new level when detected (from `began` to `detected`).
    pub after: Vec<usize>,
    /// The level before (the reference) and after.
    pub level_before: f64,
    pub level_after: f64,
}

/// Watches a series quarter by quarter. The reference is the first
/// `reference_quarters` quarters with data; after a shift it is rebuilt from the
/// quarters of the new level, and watching resumes once it is complete.
pub fn detect(series: &Series, s: &Settings) -> Vec<Shift> {
    let min = series.min_effect(s);
    let mut shifts = Vec::new();
    let mut reference: Vec<usize> = Vec::new();
    // Quarters watched since the reference was complete.
    let mut watched: Vec<usize> = Vec::new();
    for t in 0..series.len() {
        if !series.has(t) {
            continue;
        }
        if reference.len() < s.reference_quarters {
            reference.push(t);
            continue;
        }
        watched.push(t);
        let dev = |q: usize| series.test(&reference, &[q]);
        let Some(now) = dev(t) else { continue };
        let single = now.effect.abs() >= 2.0 * min && now.z.abs() >= s.z_single;
        let pair = watched.len() >= 2 && {
            let prev = watched[watched.len() - 2];
            match (dev(prev), series.test(&reference, &[prev, t])) {
                (Some(p), Some(both)) => {
                    p.effect.signum() == now.effect.signum()
                        && p.effect.abs() >= min / 2.0
                        && now.effect.abs() >= min / 2.0
                        && both.effect.abs() >= min
                        && both.z.abs() >= s.z_pair
                }
                _ => false,
            }
        };
        if !(single || pair) {
            continue;
        }
        // It began at the earliest of the watched quarters, in an unbroken run back
        // from now, that moved the same way by at least half the smallest shift.
        let mut began = t;
        for &q in watched.iter().rev().skip(1) {
            match dev(q) {
                Some(d)
                    if d.effect.signum() == now.effect.signum() && d.effect.abs() >= min / 2.0 =>
                {
                    began = q
                }
                _ => break,
            }
        }
        let after: Vec<usize> = watched.iter().copied().filter(|&q| q >= began).collect();
        shifts.push(Shift {
            detected: t,
            began,
            level_before: series.level(&reference).unwrap_or(f64::NAN),
            level_after: series.level(&after).unwrap_or(f64::NAN),
            reference: std::mem::take(&mut reference),
            after: after.clone(),
        });
        reference = after;
        reference.truncate(s.reference_quarters);
        watched.clear();
    }
    shifts
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
