//! The statistics the reports quote: Wilson intervals for proportions, t intervals for
//! means, medians, and the Pearson chi-square test. Written by hand because they are a
//! few dozen lines and the maintained statistics crates bring far more than this needs;
//! the special functions follow the standard continued-fraction and series forms.

/// The 97.5th percentile of the standard normal distribution.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// A proportion `k / n` with its 95% Wilson score interval. `None` when `n` is 0.
pub fn wilson(k: f64, n: f64) -> Option<(f64, f64, f64)> {
    if n <= 0.0 {
        return None;
    }
    let p = k / n;
    let z2 = Z_975 * Z_975;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_975 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some((p, (centre - half).max(0.0), (centre + half).min(1.0)))
}

/// A mean with its standard deviation and 95% t interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCi {
    /// How many values.
    pub n: usize,
    /// The mean.
    pub mean: f64,
    /// The sample standard deviation (n − 1 in the denominator).
    pub sd: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end of the 95% interval.
    pub high: f64,
}

/// The mean of `values` with a 95% t interval; `None` for fewer than two values.
pub fn mean_ci(values: &[f64]) -> Option<MeanCi> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    let sd = (ss / (n - 1) as f64).sqrt();
    let half = t_quantile(0.975, (n - 1) as f64) * sd / (n as f64).sqrt();
    Some(MeanCi {
        n,
        mean,
        sd,
        low: mean - half,
        high: mean + half,
    })
}

/// The mean with its 95% t interval from the count, sum and sum of squares of the
/// values; `None` for fewer than two values.
pub fn mean_ci_from_sums(n: i64, sum: f64, sum_sq: f64) -> Option<MeanCi> {
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mean = sum / nf;
    // Rounding can leave a tiny negative where the values are all equal.
    let ss = (sum_sq - sum * sum / nf).max(0.0);
    let sd = (ss / (nf - 1.0)).sqrt();
    let half = t_quantile(0.975, nf - 1.0) * sd / nf.sqrt();
    Some(MeanCi {
        n: n as usize,
        mean,
        sd,
        low: mean - half,
        high: mean + half,
    })
}

/// The median (the mean of the two middle values when there is an even number).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let m = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[m]
    } else {
        (values[m - 1] + values[m]) / 2.0
    })
}

/// The `p` quantile of Student's t distribution with `df` degrees of freedom (p > 0.5):
/// Newton's method on the distribution function, kept inside a bracket that bisection
/// narrows whenever a Newton step would leave it.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0e4_f64);
    let ln_c =
        ln_gamma((df + 1.0) / 2.0) - ln_gamma(df / 2.0) - 0.5 * (df * std::f64::consts::PI).ln();
    let density = |t: f64| (ln_c - (df + 1.0) / 2.0 * (1.0 + t * t / df).ln()).exp();
    let mut t = 2.0;
    for _ in 0..100 {
        let f = t_cdf(t, df) - p;
        if f < 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        let next = t - f / density(t);
        let next = if next > lo && next < hi {
            next
        } else {
            (lo + hi) / 2.0
        };
        if (next - t).abs() < 1e-12 * t.max(1.0) {
            return next;
        }
        t = next;
    }
    t
}

/// Student's t distribution function at `t ≥ 0`.
fn t_cdf(t: f64, df: f64) -> f64 {
    1.0 - 0.5 * beta_regularized(df / 2.0, 0.5, df / (df + t * t))
}

/// The p-value of Pearson's chi-square test of independence (no continuity correction)
/// on a table of observed counts, rows by columns. `None` when a row or column is empty
/// or the table has fewer than two rows or columns.
pub fn chi_square(table: &[Vec<f64>]) -> Option<(f64, f64)> {
    let rows = table.len();
    let cols = table.first()?.len();
    if rows < 2 || cols < 2 {
        return None;
    }
    let row_sums: Vec<f64> = table.iter().map(|r| r.iter().sum()).collect();
    let col_sums: Vec<f64> = (0..cols)
        .map(|j| table.iter().map(|r| r[j]).sum())
        .collect();
    let total: f64 = row_sums.iter().sum();
    if row_sums.contains(&0.0) || col_sums.contains(&0.0) {
        return None;
    }
    let mut stat = 0.0;
    for (i, row) in table.iter().enumerate() {
        for (j, &o) in row.iter().enumerate() {
            let e = row_sums[i] * col_sums[j] / total;
            stat += (o - e) * (o - e) / e;
        }
    }
    let df = ((rows - 1) * (cols - 1)) as f64;
    Some((stat, gamma_q(df / 2.0, stat / 2.0)))
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9), accurate to about 15 digits.
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularised incomplete beta function I_x(a, b).
fn beta_regularized(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularised upper incomplete gamma function Q(a, x).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_front = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        // Series for P(a, x).
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * ln_front.exp()
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..=1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            d = if d.abs() < TINY { TINY } else { d };
            c = b + an / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        ln_front.exp() * h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn t_quantiles_match_printed_tables() {
        // Values from standard t tables (two-sided 95%).
        for (df, t) in [
            (1.0, 12.706_205),
            (2.0, 4.302_653),
            (4.0, 2.776_445),
            (9.0, 2.262_157),
            (29.0, 2.045_230),
            (120.0, 1.979_930),
        ] {
            assert!(close(t_quantile(0.975, df), t, 1e-5), "df {df}");
        }
    }

    #[test]
    fn chi_square_matches_a_worked_example() {
        // 2x2: [[10, 20], [30, 40]]: statistic 0.7937, p 0.3730 (by hand: expected
        // 12, 18, 28, 42).
        let (stat, p) = chi_square(&[vec![10.0, 20.0], vec![30.0, 40.0]]).unwrap();
        assert!(close(stat, 0.793_650_8, 1e-6), "{stat}");
        assert!(close(p, 0.372_998, 1e-5), "{p}");
        // df 2 has a closed form: p = exp(-x/2).
        let (stat, p) = chi_square(&[vec![5.0, 15.0, 30.0], vec![15.0, 15.0, 20.0]]).unwrap();
        assert!(close(p, (-stat / 2.0).exp(), 1e-12));
    }

    #[test]
    fn wilson_interval_matches_a_worked_example() {
        // 47 of 100: 0.3751 to 0.5671 (Wilson, z = 1.96).
        let (p, lo, hi) = wilson(47.0, 100.0).unwrap();
        assert_eq!(p, 0.47);
        assert!(
            close(lo, 0.375_1, 2e-4) && close(hi, 0.567_2, 2e-4),
            "{lo} {hi}"
        );
        assert!(wilson(0.0, 0.0).is_none());
        let (_, lo, _) = wilson(0.0, 10.0).unwrap();
        assert_eq!(lo, 0.0);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
