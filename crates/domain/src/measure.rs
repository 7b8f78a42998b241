//! Measures that can only hold a value inside the range the standard accepts for them
//! (dataset.md, "Assessments", and the workforce and session fields).

use crate::record::Value;

/// A measure with an accepted range; built only through [`Ranged::from_number`].
pub trait Ranged: Sized + Copy {
    /// Whether only whole numbers are accepted.
    const WHOLE: bool;
    /// The smallest accepted value.
    fn min() -> f64;
    /// The largest accepted value.
    fn max() -> f64;
    /// Builds the measure, or says why the number is not accepted.
    fn from_number(x: f64) -> Result<Self, String>;
    /// The value as stored.
    fn to_value(self) -> Value;
}

macro_rules! ranged {
    ($(#[$meta:meta])* $name:ident(f64), $min:expr, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
        pub struct $name(f64);
        impl $name {
            /// The value.
            pub fn get(self) -> f64 { self.0 }
        }
        impl Ranged for $name {
            const WHOLE: bool = false;
            fn min() -> f64 { $min }
            fn max() -> f64 { $max }
            fn from_number(x: f64) -> Result<Self, String> { check(x, $min, $max, false).map($name) }
            fn to_value(self) -> Value { Value::Real(self.0) }
        }
    };
    ($(#[$meta:meta])* $name:ident(i64), $min:expr, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);
        impl $name {
            /// The value.
            pub fn get(self) -> i64 { self.0 }
        }
        impl Ranged for $name {
            const WHOLE: bool = true;
            fn min() -> f64 { $min as f64 }
            fn max() -> f64 { $max as f64 }
            fn from_number(x: f64) -> Result<Self, String> {
                check(x, $min as f64, $max as f64, true).map(|x| $name(x as i64))
            }
            fn to_value(self) -> Value { Value::Int(self.0) }
        }
    };
}

fn check(x: f64, min: f64, max: f64, whole: bool) -> Result<f64, String> {
    if !x.is_finite() {
        return Err("this is not a number".into());
    }
    if whole && x.fract() != 0.0 {
        return Err("this must be a whole number".into());
    }
    if x < min || x > max {
        return Err(format!("this must be between {min} and {max}"));
    }
    Ok(x)
}

ranged!(/// Height in centimetres, 100–250.
    HeightCm(f64), 100.0, 250.0);
ranged!(/// Weight in kilograms, 25–350.
    WeightKg(f64), 25.0, 350.0);
ranged!(/// Waist in centimetres, 40–250.
    WaistCm(f64), 40.0, 250.0);
ranged!(/// Portions of fruit and vegetables a day, 0–20.
    PortionsPerDay(f64), 0.0, 20.0);
ranged!(/// High-fat snacks a day, 0–20.
    SnacksPerDay(f64), 0.0, 20.0);
ranged!(/// Days a week with at least 30 minutes of moderate activity, 0–7.
    ActiveDays(i64), 0, 7);
ranged!(/// UK units of alcohol a week, 0–300.
    AlcoholUnits(f64), 0.0, 300.0);
ranged!(/// Cigarettes a day, 0–100 (current smokers only).
    CigarettesPerDay(i64), 0, 100);
ranged!(/// Self-efficacy, 0 (not at all confident) to 10.
    SelfEfficacy(i64), 0, 10);
ranged!(/// General health on a 0–100 visual analogue scale.
    GeneralHealth(i64), 0, 100);
ranged!(/// Short Warwick-Edinburgh Mental Wellbeing Scale raw score, 7–35.
    SwemwbsRaw(i64), 7, 35);
ranged!(/// Session length in minutes, 1–480.
    DurationMin(i64), 1, 480);
ranged!(/// Full-time equivalent, 0.1–1.0.
    Fte(f64), 0.1, 1.0);
ranged!(/// A national IMD quintile, 1 (most deprived) to 5.
    ImdQuintile(i64), 1, 5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_at_their_edges() {
        assert!(HeightCm::from_number(100.0).is_ok());
        assert!(HeightCm::from_number(99.99).is_err());
        assert!(SwemwbsRaw::from_number(35.0).is_ok());
        assert!(SwemwbsRaw::from_number(35.5).is_err());
        assert!(Fte::from_number(f64::NAN).is_err());
    }
}
