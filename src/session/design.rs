//! The artist's design for the session: session number, target density, zones and hairline,
//! all in skin millimetres so that they stay on the skin as the head moves.

use serde::{Deserialize, Serialize};

use crate::geometry::polygon_contains;

/// Default target density, existing follicles and dots included: a full-looking scalp, within
/// natural follicular-unit density (65-110 per cm², DOMAIN.md "Natural density"), so that
/// thinning skin gets dots and full skin gets none.
pub const DEFAULT_TARGET_PER_CM2: f64 = 80.0;
/// Default closest spacing between dots, millimetres (blowout guard).
pub const DEFAULT_MIN_SPACING_MM: f64 = 0.7;

/// One zone of the design: a polygon on the skin with its own target density.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    /// Name shown on the page ("crown", "hairline", ...).
    pub name: String,
    /// Polygon vertices in skin millimetres.
    pub polygon_in_skin_mm: Vec<[f64; 2]>,
    /// Target density in dots per cm²; the session's target when absent.
    #[serde(default)]
    pub target_per_cm2: Option<f64>,
}

/// What the artist asked for; readable and settable as JSON (`GET`/`PUT /api/design`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Design {
    /// Session number, 1-4: session 1 places the lightest dots with the widest gaps.
    pub session: u8,
    /// Target density for the session, dots per cm².
    pub target_per_cm2: f64,
    /// Closest allowed spacing between dots, millimetres.
    pub min_spacing_mm: f64,
    /// Zones; empty means "everything in view".
    #[serde(default)]
    pub zones: Vec<Zone>,
    /// The hairline as a polyline in skin millimetres; empty when not drawn.
    #[serde(default)]
    pub hairline_in_skin_mm: Vec<[f64; 2]>,
}

impl Default for Design {
    fn default() -> Self {
        Self {
            session: 1,
            target_per_cm2: DEFAULT_TARGET_PER_CM2,
            min_spacing_mm: DEFAULT_MIN_SPACING_MM,
            zones: Vec::new(),
            hairline_in_skin_mm: Vec::new(),
        }
    }
}

impl Design {
    /// Checks the numbers are usable.
    ///
    /// # Errors
    /// A message naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.session) {
            return Err(format!("session must be 1-4, got {}", self.session));
        }
        if !(self.target_per_cm2.is_finite() && (1.0..=200.0).contains(&self.target_per_cm2)) {
            return Err(format!(
                "target_per_cm2 must be 1-200, got {}",
                self.target_per_cm2
            ));
        }
        if !(self.min_spacing_mm.is_finite() && (0.2..=5.0).contains(&self.min_spacing_mm)) {
            return Err(format!(
                "min_spacing_mm must be 0.2-5, got {}",
                self.min_spacing_mm
            ));
        }
        for z in &self.zones {
            if z.polygon_in_skin_mm.len() < 3 {
                return Err(format!("zone {:?} needs at least 3 points", z.name));
            }
            if z.polygon_in_skin_mm
                .iter()
                .flatten()
                .any(|v| !v.is_finite())
            {
                return Err(format!("zone {:?} has a non-finite point", z.name));
            }
            if let Some(t) = z.target_per_cm2 {
                if !(t.is_finite() && (1.0..=200.0).contains(&t)) {
                    return Err(format!("zone {:?}: target_per_cm2 must be 1-200", z.name));
                }
            }
        }
        Ok(())
    }

    /// The target density at a skin point: the first zone containing it, else the session's.
    /// `None` when zones exist and none contains the point (nothing to place there).
    pub fn target_at(&self, p: [f64; 2]) -> Option<f64> {
        if self.zones.is_empty() {
            return Some(self.target_per_cm2);
        }
        self.zones
            .iter()
            .find(|z| polygon_contains(&z.polygon_in_skin_mm, p[0], p[1]))
            .map(|z| z.target_per_cm2.unwrap_or(self.target_per_cm2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let d = Design {
            session: 9,
            ..Design::default()
        };
        assert!(d.validate().unwrap_err().contains("session"));
        assert!(Design::default().validate().is_ok());
    }
}
