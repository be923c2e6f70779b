//! Health levels: how close a window is to its limit.
//!
//! Seed 003 colours a usage bar by three levels: under 75 % healthy, 75 % to
//! 90 % approaching, over 90 % critical. The thresholds are configurable because
//! a client that bursts may want to hear about trouble earlier.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How close usage is to its limit.
///
/// ```
/// use tower_quota::report::{Health, Thresholds};
///
/// let t = Thresholds::default();
/// assert_eq!(Health::of(50.0, &t), Health::Healthy);
/// assert_eq!(Health::of(80.0, &t), Health::Approaching);
/// assert_eq!(Health::of(95.0, &t), Health::Critical);
/// assert_eq!(Health::Critical.css_class(), "health-critical");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Below [`Thresholds::approaching`].
    Healthy,
    /// From [`Thresholds::approaching`] up to and including [`Thresholds::critical`].
    Approaching,
    /// Above [`Thresholds::critical`].
    Critical,
}

impl Health {
    /// The level of `percent` (0 to 100) under `thresholds`.
    ///
    /// A percentage that is not a number counts as critical: a report should
    /// rather raise a false alarm than hide a real one.
    pub fn of(percent: f64, thresholds: &Thresholds) -> Health {
        if percent < thresholds.approaching {
            Health::Healthy
        } else if percent <= thresholds.critical {
            Health::Approaching
        } else {
            Health::Critical
        }
    }

    /// The level's name: `healthy`, `approaching` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Approaching => "approaching",
            Health::Critical => "critical",
        }
    }

    /// The CSS class the HTML report gives this level: `health-healthy`,
    /// `health-approaching` or `health-critical`.
    pub fn css_class(self) -> &'static str {
        match self {
            Health::Healthy => "health-healthy",
            Health::Approaching => "health-approaching",
            Health::Critical => "health-critical",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the health levels start, in percent of the limit.
///
/// The default is seed 003's: approaching from 75 %, critical above 90 %.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Usage at or above this percentage is at least [`Health::Approaching`].
    pub approaching: f64,
    /// Usage above this percentage is [`Health::Critical`].
    pub critical: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            approaching: 75.0,
            critical: 90.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_at_the_edges_of_the_default_thresholds() {
        let t = Thresholds::default();
        assert_eq!(Health::of(0.0, &t), Health::Healthy);
        assert_eq!(Health::of(74.99, &t), Health::Healthy);
        assert_eq!(Health::of(75.0, &t), Health::Approaching);
        assert_eq!(Health::of(90.0, &t), Health::Approaching);
        assert_eq!(Health::of(90.01, &t), Health::Critical);
        assert_eq!(Health::of(100.0, &t), Health::Critical);
        assert_eq!(Health::of(f64::NAN, &t), Health::Critical);
    }

    #[test]
    fn custom_thresholds() {
        let t = Thresholds {
            approaching: 50.0,
            critical: 60.0,
        };
        assert_eq!(Health::of(49.99, &t), Health::Healthy);
        assert_eq!(Health::of(50.0, &t), Health::Approaching);
        assert_eq!(Health::of(60.0, &t), Health::Approaching);
        assert_eq!(Health::of(60.01, &t), Health::Critical);
    }

    #[test]
    fn names_and_serde() {
        assert_eq!(Health::Approaching.to_string(), "approaching");
        assert_eq!(Health::Healthy.css_class(), "health-healthy");
        let json = serde_json::to_string(&Health::Critical).unwrap_or_default();
        assert_eq!(json, "\"critical\"");
    }
}
