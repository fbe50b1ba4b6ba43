//! Suggested dot size and shade for each recommendation, and the session schedule.
//!
//! A new dot should look like the dots around it: its radius and darkness are the medians of
//! the natural follicles and earlier pigment within [`NEIGHBOURHOOD_MM`], falling back to the
//! frame's medians and then to [`DEFAULT_RADIUS_MM`] / [`DEFAULT_SHADE`]. The session scales the
//! shade down (session 1 is the lightest; healed dots also end two or three shades lighter, so
//! one starts light and darkens later, never the reverse).

use crate::geometry::SpatialGrid;

/// Radius of the neighbourhood whose dots set a recommendation's size and shade (mm).
pub const NEIGHBOURHOOD_MM: f64 = 3.0;
/// Radius suggested when nothing is known (mm): a 0.3 mm deposit, mid-range for a 1RL needle.
pub const DEFAULT_RADIUS_MM: f64 = 0.15;
/// Shade suggested when nothing is known, 0 (skin) ..= 1 (black).
pub const DEFAULT_SHADE: f64 = 0.7;
/// Smallest suggested radius (mm): deposits under 0.2 mm across do not hold.
pub const MIN_RADIUS_MM: f64 = 0.1;
/// Largest suggested radius (mm): deposits over 0.6 mm across read as blots.
pub const MAX_RADIUS_MM: f64 = 0.3;
/// The number of sessions a treatment is planned over.
pub const MAX_SESSIONS: u8 = 4;

/// What one session of the schedule does.
///
/// # Why this schedule
/// SMP is built in 2-4 sessions, most often 3, 7-30 days apart. Session 1 lays a sparse, light
/// base with wide gaps, so that a mistake in shade or depth is small and can still be corrected,
/// and so that the skin shows how it takes pigment (scars take it unpredictably). Session 2 fills
/// most of the remaining gaps a little darker; session 3 completes the density at the final shade;
/// session 4 is a touch-up that only corrects cells still clearly short (faded or missed dots).
/// The shares are of the *deficit* (target minus natural density), so follicles never count as
/// work done by the artist, and earlier sessions' pigment counts as existing when later sessions
/// are planned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionStep {
    /// The session (1..=4), `None` for the default: the complete plan to the final density.
    pub session: Option<u8>,
    /// Share of the deficit that should be filled once this session is done.
    pub share_of_deficit: f64,
    /// Minimum spacing multiplier for new dots in this session (wider gaps early).
    pub spacing_factor: f64,
    /// Multiplier on the neighbourhood's shade (lighter early).
    pub shade_factor: f64,
    /// Only fill cells short by more than this fraction of their target (touch-up).
    pub touch_up_tolerance: f64,
    /// Whether sentinel dots ahead of a hairline are placed in this session.
    pub sentinels: bool,
}

impl SessionStep {
    /// The schedule's step for a session; `None` plans the final density in one go (the default
    /// of `stipple plan`, which is what a density check against the target expects).
    pub fn for_session(session: Option<u8>) -> Self {
        let (share, spacing, shade, tol, sentinels) = match session {
            None => (1.0, 1.0, 1.0, 0.0, true),
            Some(0 | 1) => (0.5, 1.3, 0.55, 0.0, true),
            Some(2) => (0.85, 1.0, 0.8, 0.0, false),
            Some(3) => (1.0, 1.0, 1.0, 0.0, false),
            Some(_) => (1.0, 1.0, 1.0, 0.1, false),
        };
        Self {
            session: session.map(|s| s.clamp(1, MAX_SESSIONS)),
            share_of_deficit: share,
            spacing_factor: spacing,
            shade_factor: shade,
            touch_up_tolerance: tol,
            sentinels,
        }
    }

    /// A sentence for the plan's closing note: what this session does and why.
    pub fn note(&self) -> String {
        let schedule = "schedule: session 1 fills 50% of the deficit at 0.55 of the final shade \
                        with 1.3x spacing, session 2 brings it to 85% at 0.8, session 3 to 100% at \
                        full shade, session 4 only touches up cells still >10% short; light and \
                        sparse first because healed dots lighten and scars take pigment \
                        unpredictably, so one darkens and densifies later, never the reverse";
        match self.session {
            None => format!("final-density plan (all sessions at once); {schedule}"),
            Some(s) => format!(
                "session {s} of {MAX_SESSIONS}: target {:.0}% of the deficit; {schedule}",
                self.share_of_deficit * 100.0
            ),
        }
    }
}

/// Size and shade of the dots already on the skin, for the neighbourhood medians.
#[derive(Debug, Clone, Copy)]
pub struct DotLook {
    /// Radius (mm).
    pub radius_mm: f64,
    /// Darkness 0..=1 if it was measured.
    pub shade: Option<f64>,
}

/// Median of a buffer (partially reordered in place, O(n)); `None` if empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let (lower, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    Some(if n % 2 == 1 {
        upper
    } else {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (below + upper)
    })
}

/// Neighbourhood medians over existing dots, with frame-wide fallbacks.
#[derive(Debug, Clone)]
pub struct LookModel {
    /// Frame-wide median radius (mm).
    global_radius_mm: f64,
    /// Frame-wide median shade.
    global_shade: f64,
}

impl LookModel {
    /// Frame-wide medians of the given dots.
    pub fn new(looks: &[Option<DotLook>]) -> Self {
        let mut r: Vec<f64> = looks.iter().flatten().map(|l| l.radius_mm).collect();
        let mut s: Vec<f64> = looks.iter().flatten().filter_map(|l| l.shade).collect();
        Self {
            global_radius_mm: median(&mut r).unwrap_or(DEFAULT_RADIUS_MM),
            global_shade: median(&mut s).unwrap_or(DEFAULT_SHADE),
        }
    }

    /// Suggested `(radius_mm, shade)` at a point, from the existing dots in `grid` (ids index
    /// `looks`; `None` entries are recommendations and are skipped).
    pub fn suggest(
        &self,
        grid: &SpatialGrid,
        looks: &[Option<DotLook>],
        x_mm: f64,
        y_mm: f64,
        step: &SessionStep,
        scratch: &mut Vec<f64>,
    ) -> (f64, f64) {
        scratch.clear();
        let mut shades = [0.0f64; 64];
        let mut n_shades = 0;
        grid.for_each_within(x_mm, y_mm, NEIGHBOURHOOD_MM, |id, _| {
            if let Some(l) = looks.get(id as usize).copied().flatten() {
                scratch.push(l.radius_mm);
                if let Some(s) = l.shade {
                    if n_shades < shades.len() {
                        shades[n_shades] = s;
                        n_shades += 1;
                    }
                }
            }
        });
        let radius = median(scratch).unwrap_or(self.global_radius_mm);
        let shade = median(&mut shades[..n_shades]).unwrap_or(self.global_shade);
        (
            radius.clamp(MIN_RADIUS_MM, MAX_RADIUS_MM),
            (shade * step.shade_factor).clamp(0.05, 1.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_one_is_lighter_and_sparser() {
        let s1 = SessionStep::for_session(Some(1));
        let fin = SessionStep::for_session(None);
        assert!(s1.shade_factor < fin.shade_factor);
        assert!(s1.share_of_deficit < fin.share_of_deficit);
        assert!(s1.spacing_factor > fin.spacing_factor);
        assert_eq!(
            SessionStep::for_session(Some(9)).session,
            Some(MAX_SESSIONS)
        );
        assert!(s1.note().contains("session 1 of 4"));
    }

    #[test]
    fn suggestions_follow_the_neighbourhood() {
        let mut grid = SpatialGrid::new(20.0, 20.0, 0.7);
        let looks = vec![
            Some(DotLook {
                radius_mm: 0.2,
                shade: Some(0.9),
            }),
            Some(DotLook {
                radius_mm: 0.22,
                shade: Some(0.8),
            }),
            Some(DotLook {
                radius_mm: 0.12,
                shade: Some(0.3),
            }),
            None,
        ];
        grid.insert(0, 5.0, 5.0);
        grid.insert(1, 6.0, 5.0);
        grid.insert(2, 18.0, 18.0);
        grid.insert(3, 5.2, 5.2);
        let model = LookModel::new(&looks);
        let fin = SessionStep::for_session(None);
        let mut scratch = Vec::new();
        let (r, s) = model.suggest(&grid, &looks, 5.5, 5.5, &fin, &mut scratch);
        assert!((r - 0.21).abs() < 1e-9 && (s - 0.85).abs() < 1e-9);
        let s1 = SessionStep::for_session(Some(1));
        let (_, light) = model.suggest(&grid, &looks, 5.5, 5.5, &s1, &mut scratch);
        assert!(light < s);
    }
}
