//! The dot planner: given what is already on the skin, where the artist should put the next
//! dots, how big, how dark, and in what order.
//!
//! Plain synchronous code in skin millimetres (origin at the image's top-left corner, x right,
//! y down); the CLI converts to and from pixels through the calibration.
//!
//! # Contract
//! - **Spacing is absolute.** No recommendation is ever closer than the minimum spacing to an
//!   existing dot or to another recommendation (blowout is the one failure software can rule out).
//!   Session 1 uses a wider spacing still ([`SessionStep::spacing_factor`]). An optional
//!   [`Guard`] from the image also keeps recommendations off dark, dot-like pixels that the
//!   detector did not report, so a missed faint follicle is not tattooed over.
//! - **Density where it is missing, nothing where it is not.** The frame is cut into cells of
//!   [`CELL_MM`]; each cell's quota is the session's share of the target minus what is there,
//!   integer quotas come from error diffusion so totals are kept, and a cell already at or above
//!   target gets nothing. Quotas a jammed cell cannot take spill over to its neighbours that are
//!   still short.
//! - **Irregular, like follicles.** Positions are continuous random darts (random sequential
//!   addition, best of [`BEST_OF`] candidates by distance to the nearest dot, Mitchell 1991),
//!   placed one per cell per round in shuffled order: blue noise without a lattice, with
//!   nearest-neighbour distances spread like real units.
//! - **Deterministic.** Everything is driven by one seeded ChaCha stream.
//! - **Incremental.** [`Planner::add_existing`] updates the plan for one new dot in O(1)
//!   (a spatial hash, [`crate::geometry::SpatialGrid`]), keeping every pending recommendation that is still valid.

pub mod design;
pub mod image_plan;
pub mod order;
pub mod shade;
pub mod skin;

mod sampler;

use std::path::PathBuf;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tracing::{debug, instrument};

pub use design::{DensityField, Design, Units, Zone, ZoneKind};
pub use image_plan::{
    declined_by_analysis, plan_image, ImagePlan, RecommendationPx, MIN_PLAN_PX_PER_MM,
};
pub use shade::SessionStep;
pub use skin::{Guard, SkinAnalysis};

use crate::geometry::SpatialGrid;
use crate::perception::SkinMask;
use shade::{DotLook, LookModel};

/// Side of a quota cell (mm): four cells make the 5x5 mm square a density is judged over.
pub const CELL_MM: f64 = 2.5;
/// Sub-samples per cell side used to integrate the design's density over a cell.
pub const CELL_SUBSAMPLES: usize = 5;
/// Candidates drawn per attempt to place one dot before the cell counts as jammed.
pub const ATTEMPTS_PER_DOT: usize = 48;
/// Valid candidates compared per placed dot (best-candidate sampling); small keeps it irregular.
pub const BEST_OF: usize = 3;
/// A new dot within this distance of a pending recommendation marks it done (mm).
pub const DONE_RADIUS_MM: f64 = 0.2;
/// Recommendations keep this fraction of the minimum spacing from the frame's edge, where dots
/// just outside the picture cannot be seen.
pub const EDGE_MARGIN_FRACTION: f64 = 0.5;
/// A suspected dot (a dark spot or model peak no detection explains) counts as this share of a
/// dot toward a cell's density; it still keeps recommendations at the full spacing. Most are
/// real on some frames (faint hair the detector misses) and few on others (mottled dark skin):
/// counted whole, plans on dark skin undershot (check seeds 400-447, fused detector: median
/// density error within 12% on 42 of 48 thinning frames at 1, 43 at 0.5; docs/planning.md).
pub const SUSPECT_WEIGHT: f64 = 0.5;
/// Seed used when the caller gives none.
pub const DEFAULT_SEED: u64 = 0x5715_9913;

/// Everything that can go wrong while planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A number in the configuration is out of range.
    #[error("invalid {name}: {value} ({reason})")]
    InvalidConfig {
        /// Which setting.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        reason: &'static str,
    },
    /// A design-wide setting is out of range, or a target cannot be reached.
    #[error("invalid {field} {value}: {reason}")]
    InvalidDesign {
        /// Which field of the design.
        field: String,
        /// Its value, as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A design zone does not make sense.
    #[error("invalid zone {name:?}: {reason}")]
    InvalidZone {
        /// The zone's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A design file could not be parsed.
    #[error("cannot parse design: {0}")]
    DesignParse(#[from] toml::de::Error),
    /// A design could not be serialised.
    #[error("cannot write design: {0}")]
    DesignWrite(#[from] toml::ser::Error),
    /// A design file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What an existing dot is, as far as the planner cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExistingKind {
    /// A natural follicular unit; counts as natural density.
    Follicle,
    /// Pigment from an earlier session (or a dot the artist just placed).
    Pigment,
    /// A dark, dot-like spot the detector did not report; counted as natural, kept clear of.
    Suspected,
    /// A reported dot the image barely supports: kept clear of, but not counted as density.
    Uncertain,
}

/// One dot already on the skin, in millimetres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExistingDot {
    /// Centre x (mm).
    pub x_mm: f64,
    /// Centre y (mm).
    pub y_mm: f64,
    /// Radius (mm).
    pub radius_mm: f64,
    /// What it is.
    pub kind: ExistingKind,
    /// Measured darkness 0 (skin) ..= 1 (black), if known; sets the shade of dots around it.
    pub shade: Option<f64>,
}

/// Settings of one plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannerConfig {
    /// Final target density (dots/cm², existing dots included) where the design gives none.
    pub target_density_per_cm2: f64,
    /// Minimum centre-to-centre spacing to any dot (mm).
    pub min_spacing_mm: f64,
    /// Which session to plan; `None` plans the final density (see [`SessionStep`]).
    pub session: Option<u8>,
    /// Seed of the random stream: the same input and seed give the same plan.
    pub seed: u64,
}

impl PlannerConfig {
    /// A final-density plan with the default seed.
    pub fn new(target_density_per_cm2: f64, min_spacing_mm: f64) -> Self {
        Self {
            target_density_per_cm2,
            min_spacing_mm,
            session: None,
            seed: DEFAULT_SEED,
        }
    }

    fn validate(&self) -> Result<(), PlanError> {
        let d = self.target_density_per_cm2;
        if !(d.is_finite() && (0.0..=10_000.0).contains(&d)) {
            return Err(PlanError::InvalidConfig {
                name: "target density",
                value: d,
                reason: "must be within 0..=10000 dots/cm²",
            });
        }
        let s = self.min_spacing_mm;
        if !(s.is_finite() && (0.05..=20.0).contains(&s)) {
            return Err(PlanError::InvalidConfig {
                name: "minimum spacing",
                value: s,
                reason: "must be within 0.05..=20 mm",
            });
        }
        Ok(())
    }
}

/// Where a recommendation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecStatus {
    /// Still to be tattooed.
    Pending,
    /// The artist placed a dot on it.
    Done,
}

/// Why a recommendation exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecRole {
    /// Fills a zone toward its target density.
    Fill,
    /// A single sentinel dot ahead of a hairline.
    Sentinel,
}

/// One recommended dot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Stable identity across incremental updates.
    pub id: u32,
    /// Centre x (mm).
    pub x_mm: f64,
    /// Centre y (mm).
    pub y_mm: f64,
    /// Suggested radius of the deposit (mm).
    pub radius_mm: f64,
    /// Suggested darkness 0 (skin) ..= 1 (black).
    pub shade: f64,
    /// Position on the working path, from 1; 0 once done.
    pub order: u32,
    /// Name of the zone it serves.
    pub zone: String,
    /// Fill or sentinel.
    pub role: RecRole,
    /// Pending or done.
    pub status: RecStatus,
}

/// A plan: the pending recommendations in working order and the densities it leads to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Pending recommendations, in working order (`order` = 1, 2, ...).
    pub recommendations: Vec<Recommendation>,
    /// Existing density over the counted skin (dots/cm²).
    pub density_before_per_cm2: f64,
    /// Density once every recommendation is done (dots/cm²).
    pub density_after_per_cm2: f64,
    /// Counted skin area: zones minus no-go areas, inside the frame (mm²).
    pub skin_area_mm2: f64,
    /// What this session does and why (the schedule).
    pub note: String,
}

/// What one incremental update changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanUpdate {
    /// The recommendation the new dot fulfilled, if any.
    pub done: Option<u32>,
    /// Pending recommendations dropped because they now break spacing or are no longer needed.
    pub removed: Vec<u32>,
    /// Recommendations added to fill the freed gap.
    pub added: Vec<Recommendation>,
}

/// The input of a plan, in millimetres.
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// Frame size on the skin `[width, height]` (mm).
    pub frame_mm: [f64; 2],
    /// The dots already on the skin.
    pub existing: Vec<ExistingDot>,
    /// The treatment design, in mm (see [`Design::in_mm`]); `None`: one fill zone.
    pub design: Option<Design>,
    /// Pixels to keep recommendations off (undetected dark spots, and what is not skin or too
    /// near its edge), if an image was analysed.
    pub guard: Option<Guard>,
    /// Where the frame is skin, if known (frame mm = image px / px_per_mm): density counts only
    /// the skin, and nothing is planned off it.
    pub skin: Option<SkinMask>,
    /// Pending recommendations of an earlier plan over part of this frame, in its working
    /// order and in this frame's millimetres (the live plan growing over skin that came into
    /// view). Each stays where it is, with its radius, shade and role, where this input still
    /// admits a new recommendation there (on counted skin, off the guard, a spacing from every
    /// dot); the rest of the plan is filled around them and the working order resumes at the
    /// first one kept. Ids, order and status are the new plan's. Empty for a fresh plan.
    pub kept: Vec<Recommendation>,
}

/// A part of the frame the plan declined to plan in, and why: the JSON contract of `stipple
/// plan` and the page's shading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Declined {
    /// Outline in pixels of the input image.
    pub polygon: Vec<[f64; 2]>,
    /// Why, in words an artist reads.
    pub reason: String,
}

#[derive(Debug, Clone)]
enum SlotKind {
    Existing(ExistingKind),
    Rec {
        status: RecStatus,
        role: RecRole,
        zone: Option<usize>,
        radius_mm: f64,
        shade: f64,
    },
}

#[derive(Debug, Clone)]
struct Slot {
    x: f64,
    y: f64,
    alive: bool,
    kind: SlotKind,
}

#[derive(Debug, Clone, Default)]
struct Cell {
    /// Recommendations this cell should hold (pending + done).
    quota: u32,
    /// Recommendations it holds.
    placed: u32,
    /// Whether the cell was short of its target before the plan.
    short: bool,
    /// Largest design density inside the cell (dots/mm²), for rejection sampling.
    max_density: f64,
    /// Detected dots counted in the cell (neither uncertain nor suspected).
    existing: u32,
    /// Suspected dots in the cell, each counted as [`SUSPECT_WEIGHT`] of a dot.
    suspects: f64,
    /// Counted skin area of the cell (mm²).
    skin_area: f64,
    /// No candidate fits any more.
    jammed: bool,
}

/// The planner: holds the dots, the quotas and the plan, and updates them incrementally.
#[derive(Debug, Clone)]
pub struct Planner {
    config: PlannerConfig,
    step: SessionStep,
    field: DensityField,
    frame_mm: [f64; 2],
    guard: Option<Guard>,
    skin: Option<SkinMask>,
    slots: Vec<Slot>,
    looks: Vec<Option<DotLook>>,
    look_model: LookModel,
    grid: SpatialGrid,
    cells: Vec<Cell>,
    cols: usize,
    rows: usize,
    tour: Vec<u32>,
    rng: ChaCha8Rng,
    scratch: Vec<f64>,
}

impl Planner {
    /// Builds the plan for a frame.
    ///
    /// # Errors
    /// [`PlanError::InvalidConfig`] for a non-finite or out-of-range density, spacing or frame.
    #[instrument(skip_all, fields(existing = input.existing.len(), session = ?config.session))]
    pub fn new(config: PlannerConfig, input: PlanInput) -> Result<Self, PlanError> {
        config.validate()?;
        let [w, h] = input.frame_mm;
        if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0 && w * h < 1e7) {
            return Err(PlanError::InvalidConfig {
                name: "frame size",
                value: w * h,
                reason: "width and height must be positive and finite (mm)",
            });
        }
        let step = SessionStep::for_session(config.session);
        let existing_pts: Vec<[f64; 2]> = input.existing.iter().map(|d| [d.x_mm, d.y_mm]).collect();
        let field = DensityField::new(
            input.design.as_ref(),
            config.target_density_per_cm2,
            config.seed,
            &existing_pts,
            input.frame_mm,
        );
        let cols = ((w / CELL_MM).ceil() as usize).max(1);
        let rows = ((h / CELL_MM).ceil() as usize).max(1);
        let mut planner = Self {
            step,
            field,
            frame_mm: input.frame_mm,
            guard: input.guard,
            skin: input.skin,
            slots: Vec::with_capacity(input.existing.len() * 2),
            looks: Vec::with_capacity(input.existing.len() * 2),
            look_model: LookModel::new(&[]),
            grid: SpatialGrid::new(w, h, config.min_spacing_mm.max(0.1)),
            cells: vec![Cell::default(); cols * rows],
            cols,
            rows,
            tour: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            scratch: Vec::new(),
            config,
        };
        for d in &input.existing {
            if !(d.x_mm.is_finite() && d.y_mm.is_finite()) {
                continue;
            }
            planner.push_existing(d);
        }
        planner.look_model = LookModel::new(&planner.looks);
        planner.set_quotas();
        let resume_at = planner.keep(&input.kept);
        planner.fill_all();
        planner.reorder();
        if let Some(k) = resume_at.and_then(|id| planner.tour.iter().position(|&t| t == id)) {
            planner.tour.rotate_left(k);
        }
        debug!(recommendations = planner.tour.len(), "plan built");
        Ok(planner)
    }

    /// The plan's settings.
    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// The session step this plan follows.
    pub fn session_step(&self) -> &SessionStep {
        &self.step
    }

    /// The image guard, if the plan was built from an image.
    pub fn guard(&self) -> Option<&Guard> {
        self.guard.as_ref()
    }

    /// The resolved design.
    pub fn field(&self) -> &DensityField {
        &self.field
    }

    fn push_existing(&mut self, d: &ExistingDot) -> u32 {
        let id = self.slots.len() as u32;
        self.slots.push(Slot {
            x: d.x_mm,
            y: d.y_mm,
            alive: true,
            kind: SlotKind::Existing(d.kind),
        });
        self.looks.push(match d.kind {
            ExistingKind::Suspected | ExistingKind::Uncertain => None,
            _ => Some(DotLook {
                radius_mm: d.radius_mm,
                shade: d.shade,
            }),
        });
        self.grid.insert(id, d.x_mm, d.y_mm);
        if d.kind == ExistingKind::Suspected {
            if let Some(c) = self.cell_index(d.x_mm, d.y_mm) {
                self.cells[c].suspects += SUSPECT_WEIGHT;
            }
        } else if d.kind != ExistingKind::Uncertain {
            if let Some(c) = self.cell_index(d.x_mm, d.y_mm) {
                self.cells[c].existing += 1;
            }
        }
        id
    }

    fn cell_index(&self, x: f64, y: f64) -> Option<usize> {
        if !(x >= 0.0 && y >= 0.0 && x < self.frame_mm[0] && y < self.frame_mm[1]) {
            return None;
        }
        let c = ((x / CELL_MM) as usize).min(self.cols - 1);
        let r = ((y / CELL_MM) as usize).min(self.rows - 1);
        Some(r * self.cols + c)
    }

    fn cell_rect(&self, c: usize) -> [f64; 4] {
        let (col, row) = ((c % self.cols) as f64, (c / self.cols) as f64);
        let x0 = col * CELL_MM;
        let y0 = row * CELL_MM;
        [
            x0,
            y0,
            (x0 + CELL_MM).min(self.frame_mm[0]),
            (y0 + CELL_MM).min(self.frame_mm[1]),
        ]
    }

    /// Counted skin area and densities over the whole frame.
    fn densities(&self) -> (f64, f64, f64) {
        let mut area = 0.0;
        // Suspects count as the quotas count them (`SUSPECT_WEIGHT` each).
        let mut before = 0.0;
        let mut recs = 0u64;
        for cell in &self.cells {
            if cell.skin_area > 0.0 {
                area += cell.skin_area;
                before += f64::from(cell.existing) + cell.suspects;
                recs += u64::from(cell.placed);
            }
        }
        if area <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let per_cm2 = 100.0 / area;
        (area, before * per_cm2, (before + recs as f64) * per_cm2)
    }

    /// The current plan: pending recommendations in working order.
    pub fn plan(&self) -> Plan {
        let mut recommendations = Vec::with_capacity(self.tour.len());
        for &id in &self.tour {
            if let Some(rec) = self.recommendation(id) {
                if rec.status == RecStatus::Pending {
                    let order = recommendations.len() as u32 + 1;
                    recommendations.push(Recommendation { order, ..rec });
                }
            }
        }
        let (skin_area_mm2, before, after) = self.densities();
        Plan {
            recommendations,
            density_before_per_cm2: before,
            density_after_per_cm2: after,
            skin_area_mm2,
            note: self.step.note(),
        }
    }

    fn recommendation(&self, id: u32) -> Option<Recommendation> {
        let slot = self.slots.get(id as usize)?;
        if !slot.alive {
            return None;
        }
        match slot.kind {
            SlotKind::Rec {
                status,
                role,
                zone,
                radius_mm,
                shade,
            } => {
                let name = self.field.zone_name(zone);
                Some(Recommendation {
                    id,
                    x_mm: slot.x,
                    y_mm: slot.y,
                    radius_mm,
                    shade,
                    order: 0,
                    zone: match role {
                        RecRole::Fill => name.to_string(),
                        RecRole::Sentinel => format!("{name} sentinel"),
                    },
                    role,
                    status,
                })
            }
            SlotKind::Existing(_) => None,
        }
    }

    /// Recomputes the working order of all pending recommendations.
    fn reorder(&mut self) {
        let ids: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| {
                let s = &self.slots[i as usize];
                s.alive
                    && matches!(
                        s.kind,
                        SlotKind::Rec {
                            status: RecStatus::Pending,
                            ..
                        }
                    )
            })
            .collect();
        let pts: Vec<[f64; 2]> = ids
            .iter()
            .map(|&i| [self.slots[i as usize].x, self.slots[i as usize].y])
            .collect();
        self.tour = order::working_order(&pts)
            .into_iter()
            .map(|k| ids[k])
            .collect();
    }

    /// Records a dot that appeared on the skin (placed by the artist, or newly in view) and
    /// updates the plan without reshuffling: a pending recommendation within
    /// [`DONE_RADIUS_MM`] is marked done; otherwise pending recommendations that now break the
    /// spacing are dropped, one more is dropped if the dot's cell is now over its quota, and the
    /// freed gap is refilled locally. Runs in O(1) grid queries (plus an O(n) splice of the
    /// working path).
    pub fn add_existing(&mut self, dot: ExistingDot) -> PlanUpdate {
        let mut update = PlanUpdate::default();
        if !(dot.x_mm.is_finite() && dot.y_mm.is_finite()) {
            return update;
        }
        let s = self.config.min_spacing_mm;
        let hit = self.nearest_pending(dot.x_mm, dot.y_mm, DONE_RADIUS_MM);
        let (x, y) = (dot.x_mm, dot.y_mm);
        let mut touched: Vec<usize> = Vec::with_capacity(4);
        if let Some(id) = hit {
            let slot = &mut self.slots[id as usize];
            let (ox, oy) = (slot.x, slot.y);
            slot.x = x;
            slot.y = y;
            if let SlotKind::Rec { status, .. } = &mut slot.kind {
                *status = RecStatus::Done;
            }
            self.grid.remove(id, ox, oy);
            self.grid.insert(id, x, y);
            // The dot may land just across a cell border from the recommendation.
            let (from, to) = (self.cell_index(ox, oy), self.cell_index(x, y));
            if from != to {
                if let Some(c) = from {
                    self.cells[c].placed = self.cells[c].placed.saturating_sub(1);
                    touched.push(c);
                }
                if let Some(c) = to {
                    self.cells[c].placed += 1;
                }
            }
            self.looks[id as usize] = Some(DotLook {
                radius_mm: dot.radius_mm,
                shade: dot.shade,
            });
            self.tour.retain(|&t| t != id);
            update.done = Some(id);
        } else {
            let id = self.push_existing(&dot);
            if let Some(c) = self.cell_index(x, y) {
                let cell = &mut self.cells[c];
                cell.quota = cell.quota.saturating_sub(1);
                if cell.placed > cell.quota {
                    if let Some(victim) = self.nearest_pending_in_cell(x, y, c) {
                        self.remove_rec(victim);
                        update.removed.push(victim);
                    }
                }
                touched.push(c);
            }
            let _ = id;
        }
        // Drop pending recommendations the new dot now crowds.
        let mut crowded = Vec::new();
        self.grid.for_each_within(x, y, s, |other, d| {
            if d < s {
                crowded.push(other);
            }
        });
        for other in crowded {
            if Some(other) == update.done || !self.is_pending(other) {
                continue;
            }
            let (ox, oy) = (self.slots[other as usize].x, self.slots[other as usize].y);
            self.remove_rec(other);
            update.removed.push(other);
            if let Some(c) = self.cell_index(ox, oy) {
                if !touched.contains(&c) {
                    touched.push(c);
                }
            }
        }
        for c in touched {
            self.cells[c].jammed = false;
            while self.cells[c].placed < self.cells[c].quota {
                match self.place_in_cell(c) {
                    Some(new_id) => {
                        self.splice_into_tour(new_id);
                        if let Some(rec) = self.recommendation(new_id) {
                            update.added.push(rec);
                        }
                    }
                    None => {
                        self.cells[c].jammed = true;
                        break;
                    }
                }
            }
        }
        update
    }

    fn is_pending(&self, id: u32) -> bool {
        self.slots.get(id as usize).is_some_and(|s| {
            s.alive
                && matches!(
                    s.kind,
                    SlotKind::Rec {
                        status: RecStatus::Pending,
                        ..
                    }
                )
        })
    }

    fn nearest_pending(&self, x: f64, y: f64, r: f64) -> Option<u32> {
        let mut best: Option<(u32, f64)> = None;
        self.grid.for_each_within(x, y, r, |id, d| {
            if self.is_pending(id) && best.is_none_or(|(_, bd)| d < bd) {
                best = Some((id, d));
            }
        });
        best.map(|b| b.0)
    }

    fn nearest_pending_in_cell(&self, x: f64, y: f64, c: usize) -> Option<u32> {
        let mut best: Option<(u32, f64)> = None;
        self.grid
            .for_each_within(x, y, CELL_MM * std::f64::consts::SQRT_2, |id, d| {
                if self.is_pending(id) {
                    let s = &self.slots[id as usize];
                    if self.cell_index(s.x, s.y) == Some(c) && best.is_none_or(|(_, bd)| d < bd) {
                        best = Some((id, d));
                    }
                }
            });
        best.map(|b| b.0)
    }

    fn remove_rec(&mut self, id: u32) {
        let (x, y) = (self.slots[id as usize].x, self.slots[id as usize].y);
        self.slots[id as usize].alive = false;
        self.grid.remove(id, x, y);
        if let Some(c) = self.cell_index(x, y) {
            self.cells[c].placed = self.cells[c].placed.saturating_sub(1);
        }
        self.tour.retain(|&t| t != id);
    }

    /// Puts a new recommendation into the working path right after the nearest pending one.
    fn splice_into_tour(&mut self, id: u32) {
        let (x, y) = (self.slots[id as usize].x, self.slots[id as usize].y);
        let mut best: Option<(u32, f64)> = None;
        self.grid.for_each_within(x, y, 3.0 * CELL_MM, |other, d| {
            if other != id && self.is_pending(other) && best.is_none_or(|(_, bd)| d < bd) {
                best = Some((other, d));
            }
        });
        match best.and_then(|(o, _)| self.tour.iter().position(|&t| t == o)) {
            Some(pos) => self.tour.insert(pos + 1, id),
            None => self.tour.push(id),
        }
    }

    /// Pending recommendations, in working order.
    pub fn pending(&self) -> impl Iterator<Item = Recommendation> + '_ {
        self.tour.iter().filter_map(|&id| self.recommendation(id))
    }

    /// Every dot the planner keeps spacing against: existing dots and live recommendations,
    /// as `(x_mm, y_mm, is_recommendation)`.
    pub fn all_dots(&self) -> impl Iterator<Item = (f64, f64, bool)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.alive)
            .map(|s| (s.x, s.y, matches!(s.kind, SlotKind::Rec { .. })))
    }
}

#[cfg(test)]
mod tests;
