//! Treatment designs: named zones on the skin, each with a kind and a target density, loaded
//! from and saved to TOML, and the density field the sampler follows.
//!
//! A design is what the artist draws before the first session: a hairline with its transition
//! band, fill areas, scars to camouflage, and no-go areas (moles). With no design the whole
//! frame is one fill zone at the target given on the command line.
//!
//! ```toml
//! units = "mm"          # or "px": then coordinates are pixels of the input image
//!
//! [[zones]]
//! name = "hairline"
//! kind = "hairline"
//! polygon = [[0, 10], [80, 10], [80, 40], [0, 40]]
//! front_edge = [[0, 10], [80, 10]]
//! target_density_per_cm2 = 60
//!
//! [[zones]]
//! name = "mole"
//! kind = "nogo"
//! polygon = [[30, 20], [32, 20], [32, 22], [30, 22]]
//! ```
//!
//! # Hairline model
//! A natural hairline (Shapiro; Nusbaum) is irregular at two scales and soft: inside the
//! hairline zone, density ramps from [`HAIRLINE_FRONT_FRACTION`] of target at the front edge to
//! full target [`DEFAULT_TRANSITION_MM`] behind it. The edge is pushed back by smooth value noise
//! along its length (macro irregularity, up to [`MACRO_AMPLITUDE_MM`] over
//! [`MACRO_WAVELENGTH_MM`]) and by a finer noise (micro irregularity, [`MICRO_AMPLITUDE_MM`] over
//! [`MICRO_WAVELENGTH_MM`]); the dots themselves are random, so no two rows line up. Single
//! sentinel dots sit 1-3 mm ahead of the line (see `sampler`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::PlanError;
pub use crate::geometry::{polygon_area, polygon_contains};

/// Density at the very front of a hairline, as a fraction of the zone's target.
pub const HAIRLINE_FRONT_FRACTION: f64 = 0.25;
/// Depth of the hairline transition band when the design does not give one (mm): full density
/// is reached 5-10 mm behind the front edge.
pub const DEFAULT_TRANSITION_MM: f64 = 7.5;
/// Largest backward push of the front edge by the macro noise (mm).
pub const MACRO_AMPLITUDE_MM: f64 = 2.0;
/// Wavelength of the macro irregularity along the line (mm).
pub const MACRO_WAVELENGTH_MM: f64 = 9.0;
/// Largest backward push of the front edge by the micro noise (mm).
pub const MICRO_AMPLITUDE_MM: f64 = 0.6;
/// Wavelength of the micro irregularity along the line (mm).
pub const MICRO_WAVELENGTH_MM: f64 = 1.8;
/// Width of the ring around a scar whose existing density the scar is filled to match (mm).
pub const SCAR_SURROUND_MM: f64 = 4.0;
/// A scar is filled to at most this multiple of the design target, whatever surrounds it.
pub const SCAR_MAX_FACTOR: f64 = 1.25;
/// Most zones a design may hold (a scalp has a handful; this bounds what a client can send).
pub const MAX_ZONES: usize = 64;
/// Most points in one zone's polygon or front edge.
pub const MAX_POLYGON_POINTS: usize = 256;
/// Longest zone name, characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Allowed minimum spacing, mm: below 0.2 mm dots merge, above 5 mm nothing reads as hair.
pub const MIN_SPACING_RANGE_MM: (f64, f64) = (0.2, 5.0);
/// Live service's target density when the design gives none, existing follicles and dots
/// included: a full-looking scalp, within natural follicular-unit density (65-110 per cm²,
/// DOMAIN.md "Natural density"), so that thinning skin gets dots and full skin gets none.
pub const DEFAULT_TARGET_PER_CM2: f64 = 80.0;
/// Live service's closest spacing between dots when the design gives none, mm (blowout guard).
pub const DEFAULT_MIN_SPACING_MM: f64 = 0.7;

/// Largest density (dots/cm²) that dots at least `min_spacing_mm` apart can reach: hexagonal
/// packing, `2 / (sqrt(3) s²)` per mm².
pub fn max_density_per_cm2(min_spacing_mm: f64) -> f64 {
    100.0 * 2.0 / (3f64.sqrt() * min_spacing_mm * min_spacing_mm)
}

/// Units of a design's coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Units {
    /// Millimetres on the skin, origin at the image's top-left corner.
    #[default]
    Mm,
    /// Pixels of the input image; converted through the calibration.
    Px,
}

/// What a zone asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    /// A hairline: transition band behind `front_edge`, sentinels ahead of it.
    Hairline,
    /// Plain fill to the target density.
    Fill,
    /// A scar, filled to blend with the density around it.
    Scar,
    /// Never place a dot here (moles, lesions).
    Nogo,
}

impl ZoneKind {
    /// Precedence when zones overlap: no-go wins, then scar, hairline, fill.
    fn rank(self) -> u8 {
        match self {
            ZoneKind::Nogo => 3,
            ZoneKind::Scar => 2,
            ZoneKind::Hairline => 1,
            ZoneKind::Fill => 0,
        }
    }
}

/// One named zone of a design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Shown in plans and overlays, e.g. "hairline", "crown", "strip scar".
    pub name: String,
    /// What the zone asks for.
    pub kind: ZoneKind,
    /// Closed polygon (the last vertex joins the first), in the design's units.
    pub polygon: Vec<[f64; 2]>,
    /// Target density (dots/cm²) counting existing dots; default: the plan's target (for a
    /// scar: the density around it, see [`SCAR_SURROUND_MM`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_density_per_cm2: Option<f64>,
    /// Hairline only: the front edge polyline, in the design's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_edge: Option<Vec<[f64; 2]>>,
    /// Hairline only: depth of the transition band (mm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_mm: Option<f64>,
}

/// A treatment design: the zones the artist drew, and (optionally) the session's own numbers.
///
/// The one design type of Stipple: `stipple plan --design` reads it from TOML, and the live
/// service reads and writes it as JSON (`/api/design`) and TOML (`serve --design`, the page's
/// save). [`Design::validate`] serves all of them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Design {
    /// Units of every coordinate in the file.
    #[serde(default)]
    pub units: Units,
    /// Session number, 1-4 (session 1 places the lightest dots with the widest gaps); the
    /// live service's default is 1, `stipple plan` plans the final density unless `--session`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u8>,
    /// Target density (dots/cm², existing dots included) where a zone gives none; the live
    /// service's default is [`DEFAULT_TARGET_PER_CM2`], `stipple plan` takes `--target-density`.
    #[serde(
        default,
        alias = "target_per_cm2",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_density_per_cm2: Option<f64>,
    /// Closest allowed spacing between dots (mm); the live service's default is
    /// [`DEFAULT_MIN_SPACING_MM`], `stipple plan` takes `--min-spacing-mm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_spacing_mm: Option<f64>,
    /// The zones; where they overlap, no-go > scar > hairline > fill.
    #[serde(default)]
    pub zones: Vec<Zone>,
}

impl Design {
    /// Parses a design from TOML text and checks it.
    ///
    /// # Errors
    /// [`PlanError::DesignParse`] for malformed TOML, [`PlanError::InvalidZone`] for a zone with
    /// fewer than three vertices, a hairline without a front edge, or a negative density.
    pub fn from_toml(text: &str) -> Result<Self, PlanError> {
        let design: Design = toml::from_str(text)?;
        design.validate()?;
        Ok(design)
    }

    /// Serialises the design to TOML.
    ///
    /// # Errors
    /// [`PlanError::DesignWrite`] if serialisation fails (it does not for valid designs).
    pub fn to_toml(&self) -> Result<String, PlanError> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Loads a design from a TOML file.
    ///
    /// # Errors
    /// [`PlanError::Io`] if the file cannot be read, else as [`Design::from_toml`].
    pub fn load(path: &Path) -> Result<Self, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Saves the design as TOML.
    ///
    /// # Errors
    /// [`PlanError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        std::fs::write(path, self.to_toml()?).map_err(|source| PlanError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks the design: the caps ([`MAX_ZONES`], [`MAX_POLYGON_POINTS`], [`MAX_NAME_CHARS`]),
    /// unique non-empty zone names, finite coordinates, the session and spacing ranges, a front
    /// edge for every hairline, and that every target can be reached at the design's spacing
    /// (when it gives one; see [`Design::check_reachable`]). The TOML loader, the live API and
    /// the page all go through here.
    ///
    /// # Errors
    /// [`PlanError::InvalidZone`] naming the zone, or [`PlanError::InvalidDesign`] naming the
    /// field, with the reason.
    pub fn validate(&self) -> Result<(), PlanError> {
        let config = |name: &str, value: String, reason: String| PlanError::InvalidDesign {
            field: name.to_string(),
            value,
            reason,
        };
        if let Some(session) = self.session {
            if !(1..=4).contains(&session) {
                return Err(config("session", session.to_string(), "must be 1-4".into()));
            }
        }
        if let Some(s) = self.min_spacing_mm {
            if !(s.is_finite() && (MIN_SPACING_RANGE_MM.0..=MIN_SPACING_RANGE_MM.1).contains(&s)) {
                return Err(config(
                    "min_spacing_mm",
                    s.to_string(),
                    format!(
                        "must be {}-{} mm",
                        MIN_SPACING_RANGE_MM.0, MIN_SPACING_RANGE_MM.1
                    ),
                ));
            }
        }
        if let Some(t) = self.target_density_per_cm2 {
            if !(t.is_finite() && t > 0.0) {
                return Err(config(
                    "target_density_per_cm2",
                    t.to_string(),
                    "must be a positive number of dots per cm²".into(),
                ));
            }
        }
        if self.zones.len() > MAX_ZONES {
            return Err(config(
                "zones",
                self.zones.len().to_string(),
                format!("at most {MAX_ZONES} zones"),
            ));
        }
        for (i, z) in self.zones.iter().enumerate() {
            let bad = |reason: &str| PlanError::InvalidZone {
                name: z.name.clone(),
                reason: reason.to_string(),
            };
            if z.name.trim().is_empty() {
                return Err(bad("a zone needs a name"));
            }
            if z.name.chars().count() > MAX_NAME_CHARS {
                return Err(bad(&format!(
                    "a name has at most {MAX_NAME_CHARS} characters"
                )));
            }
            if z.name.chars().any(char::is_control) {
                return Err(bad("a name cannot hold control characters"));
            }
            if self.zones[..i].iter().any(|o| o.name == z.name) {
                return Err(bad("two zones have this name"));
            }
            if z.polygon.len() < 3 {
                return Err(bad("a polygon needs at least three vertices"));
            }
            let edge_len = z.front_edge.as_ref().map_or(0, Vec::len);
            if z.polygon.len() > MAX_POLYGON_POINTS || edge_len > MAX_POLYGON_POINTS {
                return Err(bad(&format!(
                    "a polygon or front edge has at most {MAX_POLYGON_POINTS} points"
                )));
            }
            if z.polygon
                .iter()
                .chain(z.front_edge.iter().flatten())
                .flatten()
                .any(|v| !v.is_finite())
            {
                return Err(bad("non-finite vertex"));
            }
            if let Some(d) = z.target_density_per_cm2 {
                if !(d.is_finite() && d >= 0.0) {
                    return Err(bad("target density must be finite and >= 0"));
                }
            }
            if let Some(t) = z.transition_mm {
                if !(t.is_finite() && t > 0.0) {
                    return Err(bad("transition_mm must be a positive number of mm"));
                }
            }
            if z.kind == ZoneKind::Hairline && z.front_edge.as_ref().is_none_or(|e| e.len() < 2) {
                return Err(bad("a hairline needs a front_edge of at least two points"));
            }
        }
        if let Some(spacing) = self.min_spacing_mm {
            self.check_reachable(self.target_density_per_cm2, spacing)?;
        }
        Ok(())
    }

    /// Checks that every target (the design's, `default_target_per_cm2` where it gives none, and
    /// each zone's) can be reached with dots at least `min_spacing_mm` apart: at most
    /// [`max_density_per_cm2`] (hexagonal packing).
    ///
    /// # Errors
    /// [`PlanError::InvalidDesign`] or [`PlanError::InvalidZone`] saying which target, and the
    /// largest density the spacing allows.
    pub fn check_reachable(
        &self,
        default_target_per_cm2: Option<f64>,
        min_spacing_mm: f64,
    ) -> Result<(), PlanError> {
        let max = max_density_per_cm2(min_spacing_mm);
        let reason = |t: f64| {
            format!(
                "{t} dots/cm² cannot be reached at a minimum spacing of {min_spacing_mm} mm: \
                 hexagonal packing allows at most {max:.1} dots/cm² at that spacing"
            )
        };
        if let Some(t) = self.target_density_per_cm2.or(default_target_per_cm2) {
            if t > max {
                return Err(PlanError::InvalidDesign {
                    field: "target_density_per_cm2".into(),
                    value: t.to_string(),
                    reason: reason(t),
                });
            }
        }
        for z in &self.zones {
            match z.target_density_per_cm2 {
                Some(t) if z.kind != ZoneKind::Nogo && t > max => {
                    return Err(PlanError::InvalidZone {
                        name: z.name.clone(),
                        reason: format!("target_density_per_cm2 {}", reason(t)),
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The session number, or the live service's default (1).
    pub fn session_or_default(&self) -> u8 {
        self.session.unwrap_or(1)
    }

    /// The design's target, or [`DEFAULT_TARGET_PER_CM2`].
    pub fn target_or_default(&self) -> f64 {
        self.target_density_per_cm2
            .unwrap_or(DEFAULT_TARGET_PER_CM2)
    }

    /// The design's minimum spacing, or [`DEFAULT_MIN_SPACING_MM`].
    pub fn spacing_or_default(&self) -> f64 {
        self.min_spacing_mm.unwrap_or(DEFAULT_MIN_SPACING_MM)
    }

    /// The same design with the session, target and spacing filled in with the defaults where
    /// absent (the live service always shows all three).
    pub fn with_defaults(mut self) -> Self {
        self.session = Some(self.session_or_default());
        self.target_density_per_cm2 = Some(self.target_or_default());
        self.min_spacing_mm = Some(self.spacing_or_default());
        self
    }

    /// The zone's target density (dots/cm²): its own, else the design's (0 for no-go).
    pub fn zone_target_per_cm2(&self, zone: &Zone) -> f64 {
        match zone.kind {
            ZoneKind::Nogo => 0.0,
            _ => zone
                .target_density_per_cm2
                .unwrap_or_else(|| self.target_or_default()),
        }
    }

    /// The same design with every point moved by `by` (same units).
    pub fn translated(&self, by: [f64; 2]) -> Design {
        let mv = |pts: &Vec<[f64; 2]>| pts.iter().map(|p| [p[0] + by[0], p[1] + by[1]]).collect();
        Design {
            zones: self
                .zones
                .iter()
                .map(|z| Zone {
                    polygon: mv(&z.polygon),
                    front_edge: z.front_edge.as_ref().map(mv),
                    ..z.clone()
                })
                .collect(),
            ..self.clone()
        }
    }

    /// The same design with every coordinate in millimetres.
    pub fn in_mm(&self, px_per_mm: f64) -> Design {
        self.in_mm_through(&crate::calib::PlaneMap::uniform(px_per_mm))
    }

    /// The same design with every coordinate in millimetres of `plane` (pixel coordinates are
    /// taken through its lens, vertex by vertex).
    pub fn in_mm_through(&self, plane: &crate::calib::PlaneMap) -> Design {
        if self.units == Units::Mm {
            return self.clone();
        }
        let conv = |pts: &Vec<[f64; 2]>| {
            pts.iter()
                .map(|p| {
                    let (x, y) = plane.to_mm(p[0], p[1]);
                    [x, y]
                })
                .collect()
        };
        Design {
            units: Units::Mm,
            session: self.session,
            target_density_per_cm2: self.target_density_per_cm2,
            min_spacing_mm: self.min_spacing_mm,
            zones: self
                .zones
                .iter()
                .map(|z| Zone {
                    polygon: conv(&z.polygon),
                    front_edge: z.front_edge.as_ref().map(conv),
                    ..z.clone()
                })
                .collect(),
        }
    }
}

/// Closest point on a polyline: `(distance, arclength of the foot, unit normal at the foot)`.
pub fn polyline_foot(line: &[[f64; 2]], x: f64, y: f64) -> (f64, f64, [f64; 2]) {
    let mut best = (f64::INFINITY, 0.0, [0.0, 1.0]);
    let mut run = 0.0;
    for seg in line.windows(2) {
        let (ax, ay, bx, by) = (seg[0][0], seg[0][1], seg[1][0], seg[1][1]);
        let (dx, dy) = (bx - ax, by - ay);
        let len = dx.hypot(dy);
        if len <= 0.0 {
            continue;
        }
        let t = (((x - ax) * dx + (y - ay) * dy) / (len * len)).clamp(0.0, 1.0);
        let d = (x - ax - t * dx).hypot(y - ay - t * dy);
        if d < best.0 {
            best = (d, run + t * len, [-dy / len, dx / len]);
        }
        run += len;
    }
    best
}

/// Total length of a polyline.
pub fn polyline_length(line: &[[f64; 2]]) -> f64 {
    line.windows(2)
        .map(|s| (s[1][0] - s[0][0]).hypot(s[1][1] - s[0][1]))
        .sum()
}

/// Point at arclength `s` along a polyline and the unit normal there.
pub fn polyline_at(line: &[[f64; 2]], s: f64) -> ([f64; 2], [f64; 2]) {
    let mut run = 0.0;
    let mut last = (line.first().copied().unwrap_or([0.0, 0.0]), [0.0, 1.0]);
    for seg in line.windows(2) {
        let (dx, dy) = (seg[1][0] - seg[0][0], seg[1][1] - seg[0][1]);
        let len = dx.hypot(dy);
        if len <= 0.0 {
            continue;
        }
        let normal = [-dy / len, dx / len];
        if s <= run + len {
            let t = ((s - run) / len).clamp(0.0, 1.0);
            return ([seg[0][0] + t * dx, seg[0][1] + t * dy], normal);
        }
        run += len;
        last = (seg[1], normal);
    }
    last
}

/// Deterministic 1-D value noise in `[0, 1]`, smooth between integer knots.
pub fn value_noise(seed: u64, t: f64) -> f64 {
    let i = t.floor();
    let f = t - i;
    let a = hash01(seed, i as i64);
    let b = hash01(seed, i as i64 + 1);
    let s = f * f * (3.0 - 2.0 * f);
    a + (b - a) * s
}

/// A uniform number in `[0, 1)` from a seed and an integer (SplitMix64).
pub fn hash01(seed: u64, i: i64) -> f64 {
    let mut z = seed
        .wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A zone resolved to millimetres and a final density, ready to sample.
#[derive(Debug, Clone)]
pub struct ResolvedZone {
    /// The zone as drawn (mm).
    pub zone: Zone,
    /// Full target density inside the zone (dots/mm²).
    pub density_per_mm2: f64,
    /// Which side of the front edge's normal is inside (hairlines): +1 or -1.
    pub inside_sign: f64,
    /// Axis-aligned bounds `[x0, y0, x1, y1]` of the polygon, for quick rejection.
    pub bounds: [f64; 4],
}

/// The target density everywhere on the frame, from a design (or the default single fill zone).
#[derive(Debug, Clone)]
pub struct DensityField {
    /// Zones sorted by precedence, highest first.
    pub zones: Vec<ResolvedZone>,
    /// Whether there was no design: then the whole frame is one fill zone.
    pub whole_frame: bool,
    /// Target of the whole-frame zone (dots/mm²).
    pub default_density_per_mm2: f64,
    /// Seed of the hairline noise.
    pub seed: u64,
}

/// Where a point falls: which zone and what density the plan aims for there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldSample {
    /// Index into [`DensityField::zones`], `None` for the whole-frame fill zone.
    pub zone: Option<usize>,
    /// Target density here (dots/mm²); 0 in no-go areas and outside every zone.
    pub density_per_mm2: f64,
    /// Whether the point is skin the plan counts (not no-go, inside some zone).
    pub counted: bool,
}

impl DensityField {
    /// Resolves a design (already in mm) against the plan's default target.
    ///
    /// `existing_mm` are the existing dots, used to fill scars to the density around them.
    pub fn new(
        design: Option<&Design>,
        default_density_per_cm2: f64,
        seed: u64,
        existing_mm: &[[f64; 2]],
        frame_mm: [f64; 2],
    ) -> Self {
        let default = default_density_per_cm2 / 100.0;
        let Some(design) = design.filter(|d| !d.zones.is_empty()) else {
            return Self {
                zones: Vec::new(),
                whole_frame: true,
                default_density_per_mm2: default,
                seed,
            };
        };
        let mut zones: Vec<ResolvedZone> = design
            .zones
            .iter()
            .map(|z| {
                let bounds = z.polygon.iter().fold(
                    [
                        f64::INFINITY,
                        f64::INFINITY,
                        f64::NEG_INFINITY,
                        f64::NEG_INFINITY,
                    ],
                    |b, p| {
                        [
                            b[0].min(p[0]),
                            b[1].min(p[1]),
                            b[2].max(p[0]),
                            b[3].max(p[1]),
                        ]
                    },
                );
                let inside_sign = hairline_inside_sign(z);
                ResolvedZone {
                    density_per_mm2: z.target_density_per_cm2.map_or(default, |d| d / 100.0),
                    zone: z.clone(),
                    inside_sign,
                    bounds,
                }
            })
            .collect();
        zones.sort_by_key(|z| std::cmp::Reverse(z.zone.kind.rank()));
        let nogo: Vec<ResolvedZone> = zones
            .iter()
            .filter(|z| z.zone.kind == ZoneKind::Nogo)
            .cloned()
            .collect();
        for z in zones.iter_mut() {
            if z.zone.kind == ZoneKind::Scar && z.zone.target_density_per_cm2.is_none() {
                let around = surround_density(&z.zone.polygon, &nogo, existing_mm, frame_mm);
                z.density_per_mm2 = around.map_or(default, |a| {
                    a.clamp(z.density_per_mm2, z.density_per_mm2 * SCAR_MAX_FACTOR)
                });
            }
        }
        Self {
            zones,
            whole_frame: false,
            default_density_per_mm2: default,
            seed,
        }
    }

    /// The zone and target density at a point (mm).
    pub fn sample(&self, x: f64, y: f64) -> FieldSample {
        if self.whole_frame {
            return FieldSample {
                zone: None,
                density_per_mm2: self.default_density_per_mm2,
                counted: true,
            };
        }
        for (i, z) in self.zones.iter().enumerate() {
            let b = z.bounds;
            if x < b[0] || x > b[2] || y < b[1] || y > b[3] {
                continue;
            }
            if !polygon_contains(&z.zone.polygon, x, y) {
                continue;
            }
            let density = match z.zone.kind {
                ZoneKind::Nogo => {
                    return FieldSample {
                        zone: Some(i),
                        density_per_mm2: 0.0,
                        counted: false,
                    }
                }
                ZoneKind::Fill | ZoneKind::Scar => z.density_per_mm2,
                ZoneKind::Hairline => z.density_per_mm2 * self.hairline_fraction(z, x, y),
            };
            return FieldSample {
                zone: Some(i),
                density_per_mm2: density,
                counted: true,
            };
        }
        FieldSample {
            zone: None,
            density_per_mm2: 0.0,
            counted: false,
        }
    }

    /// Fraction of full density at a point of a hairline zone (see the module docs).
    fn hairline_fraction(&self, z: &ResolvedZone, x: f64, y: f64) -> f64 {
        let Some(edge) = z.zone.front_edge.as_deref() else {
            return 1.0;
        };
        let (d, s, _) = polyline_foot(edge, x, y);
        let push = MACRO_AMPLITUDE_MM * value_noise(self.seed, s / MACRO_WAVELENGTH_MM)
            + MICRO_AMPLITUDE_MM * value_noise(self.seed ^ 0xA5A5, s / MICRO_WAVELENGTH_MM);
        let depth = d - push;
        if depth < 0.0 {
            return 0.0;
        }
        let band = z
            .zone
            .transition_mm
            .unwrap_or(DEFAULT_TRANSITION_MM)
            .max(0.1);
        let t = (depth / band).clamp(0.0, 1.0);
        let smooth = t * t * (3.0 - 2.0 * t);
        HAIRLINE_FRONT_FRACTION + (1.0 - HAIRLINE_FRONT_FRACTION) * smooth
    }

    /// The name of a zone for plans, `"fill"` for the whole-frame zone.
    pub fn zone_name(&self, zone: Option<usize>) -> &str {
        match zone {
            Some(i) => self.zones.get(i).map_or("fill", |z| z.zone.name.as_str()),
            None => "fill",
        }
    }
}

/// Which side of a hairline's front edge (relative to its left normal) the zone lies on.
fn hairline_inside_sign(z: &Zone) -> f64 {
    let Some(edge) = z.front_edge.as_deref() else {
        return 1.0;
    };
    let len = polyline_length(edge);
    let (p, n) = polyline_at(edge, len * 0.5);
    let probe = 0.5;
    if polygon_contains(&z.polygon, p[0] + n[0] * probe, p[1] + n[1] * probe) {
        1.0
    } else {
        -1.0
    }
}

/// Existing density (dots/mm²) in a ring of [`SCAR_SURROUND_MM`] around a polygon, if the ring
/// has enough skin in the frame to say.
fn surround_density(
    poly: &[[f64; 2]],
    nogo: &[ResolvedZone],
    existing_mm: &[[f64; 2]],
    frame_mm: [f64; 2],
) -> Option<f64> {
    let in_ring = |x: f64, y: f64| -> bool {
        if x < 0.0 || y < 0.0 || x > frame_mm[0] || y > frame_mm[1] {
            return false;
        }
        if polygon_contains(poly, x, y) {
            return false;
        }
        if nogo.iter().any(|z| polygon_contains(&z.zone.polygon, x, y)) {
            return false;
        }
        let closed: Vec<[f64; 2]> = poly.iter().chain(poly.first()).copied().collect();
        polyline_foot(&closed, x, y).0 <= SCAR_SURROUND_MM
    };
    let b = poly.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |b, p| {
            [
                b[0].min(p[0]),
                b[1].min(p[1]),
                b[2].max(p[0]),
                b[3].max(p[1]),
            ]
        },
    );
    let step = 0.25;
    let mut area = 0.0;
    let mut y = b[1] - SCAR_SURROUND_MM + step * 0.5;
    while y < b[3] + SCAR_SURROUND_MM {
        let mut x = b[0] - SCAR_SURROUND_MM + step * 0.5;
        while x < b[2] + SCAR_SURROUND_MM {
            if in_ring(x, y) {
                area += step * step;
            }
            x += step;
        }
        y += step;
    }
    if area < 10.0 {
        return None;
    }
    let count = existing_mm.iter().filter(|p| in_ring(p[0], p[1])).count();
    Some(count as f64 / area)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
units = "mm"

[[zones]]
name = "hairline"
kind = "hairline"
polygon = [[0, 10], [80, 10], [80, 40], [0, 40]]
front_edge = [[0, 10], [80, 10]]

[[zones]]
name = "mole"
kind = "nogo"
polygon = [[30, 20], [32, 20], [32, 22], [30, 22]]
"#;

    #[test]
    fn toml_round_trip_and_precedence() -> Result<(), PlanError> {
        let d = Design::from_toml(SAMPLE)?;
        assert_eq!(d.zones.len(), 2);
        let back = Design::from_toml(&d.to_toml()?)?;
        assert_eq!(back, d);
        let field = DensityField::new(Some(&d), 70.0, 1, &[], [80.0, 45.0]);
        let mole = field.sample(31.0, 21.0);
        assert_eq!(mole.density_per_mm2, 0.0);
        assert!(!mole.counted);
        let deep = field.sample(40.0, 35.0);
        assert!((deep.density_per_mm2 - 0.7).abs() < 1e-9);
        let front = field.sample(40.0, 10.05);
        assert!(front.density_per_mm2 < 0.7 * 0.5);
        let outside = field.sample(40.0, 5.0);
        assert!(!outside.counted);
        assert_eq!(field.zone_name(deep.zone), "hairline");
        Ok(())
    }

    #[test]
    fn hexagonal_packing_bounds_the_target() {
        // 2 / (sqrt(3) s²) per mm²: 235.7/cm² at 0.7 mm, 51.3/cm² at 1.5 mm.
        assert!((max_density_per_cm2(0.7) - 235.6).abs() < 0.1);
        assert!((max_density_per_cm2(1.5) - 51.32).abs() < 0.01);
        let d = Design {
            target_density_per_cm2: Some(200.0),
            min_spacing_mm: Some(1.5),
            ..Design::default()
        };
        let err = d
            .validate()
            .expect_err("200/cm² at 1.5 mm cannot be reached");
        assert!(err.to_string().contains("at most 51.3 dots/cm²"), "{err}");
        let ok = Design {
            target_density_per_cm2: Some(50.0),
            ..d
        };
        assert!(ok.validate().is_ok());
        // Without a spacing in the file, the caller's spacing decides (`stipple plan`).
        let zones_only = Design::from_toml(SAMPLE).expect("valid");
        assert!(zones_only.check_reachable(Some(200.0), 1.5).is_err());
        assert!(zones_only.check_reachable(Some(80.0), 0.7).is_ok());
    }

    #[test]
    fn caps_and_names() {
        let zone = |name: &str| Zone {
            name: name.into(),
            kind: ZoneKind::Fill,
            polygon: vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]],
            target_density_per_cm2: None,
            front_edge: None,
            transition_mm: None,
        };
        let many = Design {
            zones: (0..=MAX_ZONES).map(|i| zone(&format!("z{i}"))).collect(),
            ..Design::default()
        };
        assert!(many.validate().is_err());
        let twice = Design {
            zones: vec![zone("a"), zone("a")],
            ..Design::default()
        };
        assert!(twice
            .validate()
            .expect_err("dup")
            .to_string()
            .contains("two zones"));
        let long = Design {
            zones: vec![zone(&"x".repeat(MAX_NAME_CHARS + 1))],
            ..Design::default()
        };
        assert!(long.validate().is_err());
        let mut big = zone("big");
        big.polygon = (0..=MAX_POLYGON_POINTS)
            .map(|i| [i as f64, (i % 2) as f64])
            .collect();
        let big = Design {
            zones: vec![big],
            ..Design::default()
        };
        assert!(big.validate().is_err());
        let session = Design {
            session: Some(5),
            ..Design::default()
        };
        assert!(session
            .validate()
            .expect_err("5")
            .to_string()
            .contains("session"));
    }

    #[test]
    fn rejects_hairline_without_front_edge() {
        let text = "[[zones]]\nname = \"h\"\nkind = \"hairline\"\npolygon = [[0,0],[1,0],[1,1]]\n";
        assert!(matches!(
            Design::from_toml(text),
            Err(PlanError::InvalidZone { .. })
        ));
    }

    #[test]
    fn px_designs_convert_to_mm() -> Result<(), PlanError> {
        let text = "units = \"px\"\n[[zones]]\nname = \"f\"\nkind = \"fill\"\npolygon = [[0,0],[20,0],[20,20]]\n";
        let d = Design::from_toml(text)?.in_mm(10.0);
        assert_eq!(d.zones[0].polygon[1], [2.0, 0.0]);
        Ok(())
    }

    #[test]
    fn scars_follow_their_surroundings() {
        let scar = Zone {
            name: "strip".into(),
            kind: ZoneKind::Scar,
            polygon: vec![[10.0, 10.0], [30.0, 10.0], [30.0, 12.0], [10.0, 12.0]],
            target_density_per_cm2: None,
            front_edge: None,
            transition_mm: None,
        };
        // Dense surroundings: 1 dot per 1 mm² around the scar.
        let mut pts = Vec::new();
        for i in 0..40 {
            for j in 0..25 {
                pts.push([i as f64 + 0.5, j as f64 + 0.5]);
            }
        }
        let design = Design {
            units: Units::Mm,
            zones: vec![scar],
            ..Design::default()
        };
        let field = DensityField::new(Some(&design), 70.0, 3, &pts, [40.0, 25.0]);
        let inside = field.sample(20.0, 11.0).density_per_mm2;
        assert!((inside - 0.7 * SCAR_MAX_FACTOR).abs() < 1e-9, "{inside}");
    }
}
