//! A small seeded random number generator (SplitMix64), written here rather than taken
//! from a crate so that a seed gives the same bytes on every platform and every future
//! build: the generator's output is part of its contract.

/// SplitMix64 (Steele, Lea and Flood 2014): 64 bits of state, passes BigCrush.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5EED_DC85_0F00)
    }

    /// An independent stream derived from this seed and a label (a service, a purpose),
    /// so that adding records to one stream does not change another.
    pub fn fork(&self, label: u64) -> Self {
        let mut r = Rng(self.0 ^ label.wrapping_mul(0xA24B_AED4_963E_E407));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// A uniformly chosen element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next_u64() as usize % items.len()]
    }

    /// Standard normal (Box–Muller; one of the pair is discarded to keep the stream simple).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Normal with mean and standard deviation, clamped to `lo..=hi`.
    pub fn normal_in(&mut self, mean: f64, sd: f64, lo: f64, hi: f64) -> f64 {
        (mean + sd * self.normal()).clamp(lo, hi)
    }

    /// A positive whole number whose median is `median` (log-normal with spread `sigma`),
    /// at least `min`.
    pub fn around(&mut self, median: f64, sigma: f64, min: i64) -> i64 {
        ((median * (sigma * self.normal()).exp()).round() as i64).max(min)
    }

    /// Poisson with mean `mean` (inversion for small means, normal approximation above 60).
    pub fn poisson(&mut self, mean: f64) -> u32 {
        if mean > 60.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u32;
        }
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = self.unit();
        while p > limit {
            k += 1;
            p *= self.unit();
        }
        k
    }

    /// An index drawn with the given weights (which need not sum to 1).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// A value from `(value, weight)` pairs.
    pub fn choose<T: Copy>(&mut self, table: &[(T, f64)]) -> T {
        let total: f64 = table.iter().map(|(_, w)| w).sum();
        let mut x = self.unit() * total;
        for (v, w) in table {
            if x < *w {
                return *v;
            }
            x -= w;
        }
        table[table.len() - 1].0
    }
}

/// A cumulative table for repeated draws from many weighted items (LSOAs of an area).
#[derive(Debug, Clone, Default)]
pub struct Cumulative {
    ends: Vec<f64>,
}

impl Cumulative {
    /// From weights, in order.
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let ends = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Cumulative { ends }
    }

    /// An index drawn in proportion to the weights (binary search).
    pub fn draw(&self, rng: &mut Rng) -> usize {
        let total = *self.ends.last().expect("a non-empty table");
        let x = rng.unit() * total;
        self.ends
            .partition_point(|e| *e <= x)
            .min(self.ends.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        let mut f1 = Rng::new(7).fork(1);
        let mut f2 = Rng::new(7).fork(2);
        assert_ne!(f1.next_u64(), f2.next_u64());
    }

    #[test]
    fn draws_follow_their_weights() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let hits = (0..n).filter(|_| r.chance(0.3)).count() as f64 / n as f64;
        assert!((hits - 0.3).abs() < 0.005, "{hits}");
        let c = Cumulative::new([1.0, 0.0, 3.0]);
        let mut counts = [0usize; 3];
        for _ in 0..n {
            counts[c.draw(&mut r)] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.005, "{share}");
        let mean = (0..n).map(|_| r.poisson(4.0) as f64).sum::<f64>() / n as f64;
        assert!((mean - 4.0).abs() < 0.03, "{mean}");
        let mut meds: Vec<i64> = (0..n).map(|_| r.around(7.0, 0.4, 1)).collect();
        meds.sort();
        assert_eq!(meds[n / 2], 7);
    }
}
