//! The live session: per-frame perception, registration and planning, in skin coordinates.
//!
//! Plain synchronous code, owned by the pipeline's processing thread. Each frame goes through
//! [`LiveSession::detect`] (the dots in the picture) then [`LiveSession::update`] (register to
//! the skin map, spot newly placed dots, mark recommendations done, top the plan up, and build
//! the [`OverlayMsg`]). The plan, zones, hairline and density map live in skin millimetres;
//! only the overlay message is in the frame's pixels.

pub mod coverage;
pub mod design;
pub mod msg;

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::frame::{Detection, DotKind, Frame, FrameMeta, View};
use crate::perception::{Detector, FuseConfig, OpeningsConfig, PerceptionError, SegMask};
use crate::planning::{self, ExistingDot, ExistingKind, PlanInput, Planner, PlannerConfig};
use crate::registration::{Registrar, RegistrationConfig, Similarity};
use coverage::Coverage;
pub use design::{Design, Zone};
pub use msg::{HeatMsg, OverlayMsg, ZoneMsg};

/// Frames a skin cell must have been in view before a dot appearing there counts as placed.
const PLACED_AFTER_SEEN_FRAMES: u16 = 15;
/// Margin of the picture in which the view is not trusted (dots cut by the edge), pixels.
const BORDER_MARGIN_PX: f64 = 24.0;
/// The heatmap is recomputed every this many frames.
const HEATMAP_EVERY_FRAMES: u64 = 10;
/// Drift statistics cover this many frames (a minute at 30 fps).
const DRIFT_WINDOW_FRAMES: usize = 1800;
/// Registered frames before the first plan: enough for the map's landmarks to be confirmed.
const PLAN_WARMUP_FRAMES: u64 = 8;

/// Tuning of the live session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Scale at the skin, from calibration.
    pub px_per_mm: f64,
    /// How the camera sees the skin: picks the detector (`--view`, else from the scale).
    pub view: View,
    /// How many next dots to recommend at once.
    pub recommendations: usize,
    /// Radius of the target ring drawn at the current recommendation, millimetres.
    pub done_radius_mm: f64,
    /// Side of a heatmap cell, millimetres.
    pub heatmap_cell_mm: f64,
    /// Registration on (always, except in the test that shows what it prevents).
    pub register: bool,
}

impl SessionConfig {
    /// Defaults for a camera at `px_per_mm`.
    pub fn new(px_per_mm: f64) -> Self {
        Self {
            px_per_mm,
            view: View::for_scale(px_per_mm),
            recommendations: 12,
            done_radius_mm: 0.35,
            heatmap_cell_mm: 2.0,
            register: true,
        }
    }
}

/// One frame's detections: the output of perception.
#[derive(Debug, Clone)]
pub struct Perception {
    /// The frame's identity, copied.
    pub meta: FrameMeta,
    /// Dots in the picture, pixels.
    pub detections: Vec<Detection>,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
}

/// One recommended next dot, on the skin.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Recommendation {
    /// Stable id while the recommendation lives.
    pub id: u64,
    /// Where, in skin millimetres.
    pub in_skin_mm: [f64; 2],
}

/// The plan as `GET /api/plan` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanSnapshot {
    /// Sequence number of the frame the plan was last updated on.
    pub seq: u64,
    /// The next dots, in order, skin millimetres.
    pub recommendations: Vec<Recommendation>,
    /// `skin_from_image` of that frame.
    pub skin_from_image: Similarity,
    /// Dots placed this session.
    pub dots_placed: u64,
    /// Recommendations done.
    pub recommendations_done: u64,
    /// Dots in the skin map.
    pub map_dots: usize,
    /// Density reached per zone.
    pub zones: Vec<ZoneDensity>,
}

/// Density reached in one zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneDensity {
    /// Zone name ("view" when no zone is drawn).
    pub name: String,
    /// Dots per cm² reached.
    pub density_per_cm2: f64,
    /// Dots per cm² asked for.
    pub target_per_cm2: f64,
}

/// A pigment dot the session saw appear (placed by the needle), as the recording and the
/// training report need it: where, how big, and how it stood against the plan and its
/// neighbours at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlacedDot {
    /// The frame on which the dot was confirmed.
    pub seq: u64,
    /// Where, in skin millimetres.
    pub in_skin_mm: [f64; 2],
    /// Radius on the skin, millimetres.
    pub radius_mm: f64,
    /// Distance to the nearest recommendation standing when it was placed, millimetres
    /// (`None` when there was no plan yet).
    pub nearest_rec_mm: Option<f64>,
    /// Distance to the nearest other dot in the skin map, millimetres.
    pub nearest_dot_mm: Option<f64>,
    /// The design's minimum spacing at that moment, millimetres.
    pub min_spacing_mm: f64,
}

/// State of one live session.
#[derive(Debug)]
pub struct LiveSession {
    config: SessionConfig,
    detector: Detector,
    registrar: Registrar,
    design: Design,
    recs: Vec<Recommendation>,
    planner: Option<LivePlanner>,
    coverage: Coverage,
    dots_placed: u64,
    recs_done: u64,
    frames: u64,
    heat: Option<HeatMsg>,
    zone_density: Vec<ZoneDensity>,
    drift_mm: VecDeque<f64>,
    /// Skin points (and where they truly are in the scene) whose image position is checked
    /// against the truth every frame: the plan's drift on the skin (synthetic source only).
    drift_probes: Vec<([f64; 2], [f64; 2])>,
    frames_unregistered: u64,
    last_seq: u64,
    epoch: (Instant, SystemTime),
    /// Dots placed since the last [`LiveSession::take_placed`].
    placed: Vec<PlacedDot>,
}

impl LiveSession {
    /// A fresh session with the default design.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            detector: {
                let mut d = Detector::classical_in(config.view, config.px_per_mm);
                // The live mask comes from a frame a few tens of milliseconds older than the one
                // being fused (the model runs at its own pace): it confirms kinds, but it does not
                // add dots where no blob is, since the head may have moved.
                d.set_fuse(FuseConfig {
                    recover_prob: f32::INFINITY,
                    ..FuseConfig::default()
                });
                // The same in dermoscope frames: the openings model's peaks are not added on
                // their own, it only confirms the traced openings.
                d.set_openings(OpeningsConfig {
                    peak_min: f32::INFINITY,
                    ..OpeningsConfig::default()
                });
                d
            },
            registrar: Registrar::new(RegistrationConfig {
                enabled: config.register,
                ..RegistrationConfig::new(config.px_per_mm)
            }),
            design: Design::default(),
            recs: Vec::new(),
            planner: None,
            coverage: Coverage::new(),
            dots_placed: 0,
            recs_done: 0,
            frames: 0,
            heat: None,
            zone_density: Vec::new(),
            drift_mm: VecDeque::new(),
            drift_probes: Vec::new(),
            frames_unregistered: 0,
            last_seq: 0,
            epoch: (Instant::now(), SystemTime::now()),
            placed: Vec::new(),
            config,
        }
    }

    /// Replaces the design; the plan is redone on the next frame.
    pub fn set_design(&mut self, design: Design) {
        self.design = design;
        self.recs.clear();
        self.planner = None;
    }

    /// The current design.
    pub fn design(&self) -> &Design {
        &self.design
    }

    /// The latest `skin_from_image`.
    pub fn skin_from_image(&self) -> Similarity {
        self.registrar.skin_from_image()
    }

    /// Detects the dots of one frame.
    ///
    /// # Errors
    /// [`PerceptionError`] when the frame cannot go through the detector (empty, too large).
    pub fn detect(&mut self, frame: &Frame) -> Result<Perception, PerceptionError> {
        self.detect_with_mask(frame, None)
    }

    /// Detects the dots of one frame, fused with the segmentation model's latest mask when
    /// there is one (computed on a recent frame by the model's own thread).
    ///
    /// # Errors
    /// [`PerceptionError`] when the frame cannot go through the detector (empty, too large).
    #[tracing::instrument(level = "trace", skip_all, fields(seq = frame.meta.seq))]
    pub fn detect_with_mask(
        &mut self,
        frame: &Frame,
        mask: Option<&SegMask>,
    ) -> Result<Perception, PerceptionError> {
        crate::perception::check_input(&frame.image, self.config.px_per_mm)?;
        let mut detections = Vec::new();
        match mask {
            Some(mask) => self
                .detector
                .detect_with_mask(&frame.image, mask, &mut detections),
            None => self
                .detector
                .detect_classical_into(&frame.image, &mut detections),
        }
        Ok(Perception {
            meta: frame.meta,
            detections,
            width: frame.image.width(),
            height: frame.image.height(),
        })
    }

    /// Median drift of the recommendations relative to the skin over the last minute,
    /// millimetres; `None` without ground truth.
    pub fn drift_mm_median(&self) -> Option<f64> {
        median(self.drift_mm.iter().copied())
    }

    /// Dots confirmed in the skin map.
    fn map_dots(&self) -> usize {
        self.registrar
            .landmarks()
            .iter()
            .filter(|l| l.confirmed())
            .count()
    }

    /// Counters for `/api/status`.
    pub fn counters(&self) -> crate::metrics::SessionCounters {
        crate::metrics::SessionCounters {
            dots_placed: self.dots_placed,
            recommendations_done: self.recs_done,
            map_dots: self.map_dots() as u64,
            drift_mm_median: self.drift_mm_median(),
            frames_unregistered: self.frames_unregistered,
        }
    }

    /// The plan for `GET /api/plan`.
    pub fn plan_snapshot(&self) -> PlanSnapshot {
        PlanSnapshot {
            seq: self.last_seq,
            recommendations: self.recs.clone(),
            skin_from_image: self.skin_from_image(),
            dots_placed: self.dots_placed,
            recommendations_done: self.recs_done,
            map_dots: self.map_dots(),
            zones: self.zone_density.clone(),
        }
    }

    /// Registers the frame, updates the map and the plan, and builds the overlay.
    ///
    /// `image_from_scene` is the true head pose when the source knows it (synthetic source):
    /// it is only used to measure drift, never to register.
    #[tracing::instrument(level = "trace", skip_all, fields(seq = p.meta.seq))]
    pub fn update(&mut self, p: &Perception, image_from_scene: Option<&Similarity>) -> OverlayMsg {
        self.frames += 1;
        self.last_seq = p.meta.seq;
        let reg = self.registrar.register(&p.detections);
        if !reg.registered {
            self.frames_unregistered += 1;
        }
        let skin_from_image = reg.skin_from_image;
        let image_from_skin = skin_from_image.inverse();

        // Newly confirmed pigment dots inside skin that was already in view: placed by the
        // needle. Every newly confirmed dot goes to the planner, which marks the recommendation
        // under it done and keeps the rest of the plan clear of it.
        let mut plan_changed = false;
        for l in &reg.confirmed {
            let seen_before = self.coverage.seen(l.in_skin_mm).saturating_sub(
                (self.registrar.frames() - l.first_seen).min(u64::from(u16::MAX)) as u16,
            );
            if l.kind == DotKind::Pigment && seen_before >= PLACED_AFTER_SEEN_FRAMES {
                self.dots_placed += 1;
                let dot = self.placed_dot(p.meta.seq, l);
                self.placed.push(dot);
                tracing::debug!(x_mm = l.in_skin_mm[0], y_mm = l.in_skin_mm[1], "dot placed");
            }
            if let Some(lp) = self.planner.as_mut() {
                if let Some(dot) = lp.existing(l) {
                    let update = lp.planner.add_existing(dot);
                    if update.done.is_some() {
                        self.recs_done += 1;
                    }
                    plan_changed |= update.done.is_some()
                        || !update.removed.is_empty()
                        || !update.added.is_empty();
                }
            }
        }
        if reg.registered {
            self.coverage
                .add_view(&skin_from_image, p.width, p.height, BORDER_MARGIN_PX);
        }

        let view = self.view_in_skin(&skin_from_image, p.width, p.height, 3.0 * BORDER_MARGIN_PX);
        if self.planner.is_none() && reg.registered && self.frames > PLAN_WARMUP_FRAMES {
            self.planner = self.build_planner(&view);
            plan_changed = true;
        }
        if plan_changed {
            self.refresh_recs();
        }
        if self.frames % HEATMAP_EVERY_FRAMES == 1 {
            self.heat = Some(self.heatmap(&view));
            self.zone_density = self.zone_densities(&view);
        }
        if let (Some(truth), true) = (image_from_scene, reg.registered) {
            self.measure_drift(&image_from_skin, truth, p.width, p.height);
        }

        let to_px = |q: [f64; 2]| {
            let v = image_from_skin.apply(q);
            [tenth(v[0]), tenth(v[1])]
        };
        let radius_px = (self.config.done_radius_mm * self.config.px_per_mm) as f32;
        let zone_targets: Vec<_> = self
            .zone_density
            .iter()
            .map(|z| (z.density_per_cm2, z.target_per_cm2))
            .collect();
        OverlayMsg {
            seq: p.meta.seq,
            captured_unix_ms: self.unix_ms(p.meta.captured_at),
            latency_ms: 0.0,
            width: p.width,
            height: p.height,
            dots: p
                .detections
                .iter()
                .map(|d| {
                    [
                        tenth(d.x),
                        tenth(d.y),
                        tenth(d.radius),
                        f32::from(u8::from(d.kind == DotKind::Pigment)),
                    ]
                })
                .collect(),
            recs: self
                .recs
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let q = to_px(r.in_skin_mm);
                    [q[0], q[1], (i + 1) as f32]
                })
                .collect(),
            target: self.recs.first().map(|r| {
                let q = to_px(r.in_skin_mm);
                [q[0], q[1], radius_px]
            }),
            zones: self
                .design
                .zones
                .iter()
                .enumerate()
                .map(|(i, z)| ZoneMsg {
                    name: z.name.clone(),
                    points: z.polygon_in_skin_mm.iter().map(|q| to_px(*q)).collect(),
                    density_per_cm2: zone_targets.get(i).map_or(0.0, |t| t.0),
                    target_per_cm2: z.target_per_cm2.unwrap_or(self.design.target_per_cm2),
                })
                .collect(),
            hairline: self
                .design
                .hairline_in_skin_mm
                .iter()
                .map(|q| to_px(*q))
                .collect(),
            heat: self.heat.clone(),
            image_from_skin: image_from_skin.to_affine(),
            registered: reg.registered,
            dots_placed: self.dots_placed,
            recs_done: self.recs_done,
            source_status: String::new(),
        }
    }

    /// The dots placed since the last call (the pipeline takes them every frame for the
    /// recording).
    pub fn take_placed(&mut self) -> Vec<PlacedDot> {
        std::mem::take(&mut self.placed)
    }

    /// A newly placed dot against the plan standing before it and the dots around it.
    fn placed_dot(&self, seq: u64, l: &crate::registration::Landmark) -> PlacedDot {
        let d = |q: [f64; 2]| (q[0] - l.in_skin_mm[0]).hypot(q[1] - l.in_skin_mm[1]);
        let nearest = |it: &mut dyn Iterator<Item = f64>| it.min_by(f64::total_cmp);
        PlacedDot {
            seq,
            in_skin_mm: l.in_skin_mm,
            radius_mm: l.radius_mm,
            nearest_rec_mm: nearest(&mut self.recs.iter().map(|r| d(r.in_skin_mm))),
            // The dot itself is in the map: skip distances of (almost) zero.
            nearest_dot_mm: nearest(&mut self.confirmed_dots().map(d).filter(|v| *v > 1e-9)),
            min_spacing_mm: self.design.min_spacing_mm,
        }
    }

    /// Recommendations in image pixels of the latest frame, in order (for the simulated needle).
    pub fn targets_in_image(&self) -> Vec<[f64; 2]> {
        let image_from_skin = self.skin_from_image().inverse();
        self.recs
            .iter()
            .map(|r| image_from_skin.apply(r.in_skin_mm))
            .collect()
    }

    fn unix_ms(&self, at: Instant) -> f64 {
        let (i0, s0) = self.epoch;
        let since = s0
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        since
            + (at.saturating_duration_since(i0).as_secs_f64()
                - i0.saturating_duration_since(at).as_secs_f64())
                * 1e3
    }

    /// The picture shrunk by `margin_px`, as a skin polygon.
    fn view_in_skin(
        &self,
        skin_from_image: &Similarity,
        w: u32,
        h: u32,
        margin_px: f64,
    ) -> Vec<[f64; 2]> {
        let (w, h) = (f64::from(w), f64::from(h));
        let m = margin_px.min(w / 4.0).min(h / 4.0);
        [[m, m], [w - m, m], [w - m, h - m], [m, h - m]]
            .iter()
            .map(|c| skin_from_image.apply(*c))
            .collect()
    }

    fn confirmed_dots(&self) -> impl Iterator<Item = [f64; 2]> + '_ {
        self.registrar
            .landmarks()
            .iter()
            .filter(|l| l.confirmed())
            .map(|l| l.in_skin_mm)
    }

    /// Plans over the current view: the planner works on a fixed rectangle of skin (the view
    /// when the plan is made), in its own millimetres with the origin at the rectangle's corner.
    fn build_planner(&self, view: &[[f64; 2]]) -> Option<LivePlanner> {
        let _span = tracing::debug_span!("plan_build").entered();
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for c in view {
            x0 = x0.min(c[0]);
            y0 = y0.min(c[1]);
            x1 = x1.max(c[0]);
            y1 = y1.max(c[1]);
        }
        let (origin_mm, frame_mm) = ([x0, y0], [x1 - x0, y1 - y0]);
        let existing: Vec<ExistingDot> = self
            .registrar
            .landmarks()
            .iter()
            .filter(|l| l.confirmed())
            .filter_map(|l| existing_in(origin_mm, frame_mm, l))
            .collect();
        let to_plan = |q: &[f64; 2]| [q[0] - x0, q[1] - y0];
        let zones: Vec<planning::Zone> = self
            .design
            .zones
            .iter()
            .map(|z| planning::Zone {
                name: z.name.clone(),
                kind: planning::ZoneKind::Fill,
                polygon: z.polygon_in_skin_mm.iter().map(to_plan).collect(),
                target_density_per_cm2: z.target_per_cm2,
                front_edge: None,
                transition_mm: None,
            })
            .collect();
        let design = (!zones.is_empty()).then_some(planning::Design {
            units: planning::Units::Mm,
            zones,
        });
        let config = PlannerConfig {
            session: Some(self.design.session),
            ..PlannerConfig::new(self.design.target_per_cm2, self.design.min_spacing_mm)
        };
        let input = PlanInput {
            frame_mm,
            existing,
            design,
            guard: None,
        };
        match Planner::new(config, input) {
            Ok(planner) => Some(LivePlanner {
                planner,
                origin_mm,
                frame_mm,
            }),
            Err(err) => {
                tracing::warn!(cause = %err, "cannot plan this view");
                None
            }
        }
    }

    /// The first recommendations of the planner's working order, on the skin.
    fn refresh_recs(&mut self) {
        let Some(lp) = self.planner.as_ref() else {
            return;
        };
        let [ox, oy] = lp.origin_mm;
        self.recs = lp
            .planner
            .plan()
            .recommendations
            .iter()
            .take(self.config.recommendations)
            .map(|r| Recommendation {
                id: u64::from(r.id),
                in_skin_mm: [r.x_mm + ox, r.y_mm + oy],
            })
            .collect();
    }

    fn heatmap(&self, view: &[[f64; 2]]) -> HeatMsg {
        let cell = self.config.heatmap_cell_mm;
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for c in view {
            x0 = x0.min(c[0]);
            y0 = y0.min(c[1]);
            x1 = x1.max(c[0]);
            y1 = y1.max(c[1]);
        }
        let x0 = (x0 / cell).floor() * cell;
        let y0 = (y0 / cell).floor() * cell;
        let cols = (((x1 - x0) / cell).ceil() as usize).clamp(1, 256);
        let rows = (((y1 - y0) / cell).ceil() as usize).clamp(1, 256);
        let mut counts = vec![0u32; cols * rows];
        for d in self.confirmed_dots() {
            let cx = ((d[0] - x0) / cell).floor();
            let cy = ((d[1] - y0) / cell).floor();
            if cx >= 0.0 && cy >= 0.0 && (cx as usize) < cols && (cy as usize) < rows {
                counts[cy as usize * cols + cx as usize] += 1;
            }
        }
        let mut ratio = vec![-1.0f32; cols * rows];
        for r in 0..rows {
            for c in 0..cols {
                let centre = [x0 + (c as f64 + 0.5) * cell, y0 + (r as f64 + 0.5) * cell];
                if self.coverage.seen(centre) < 3 {
                    continue;
                }
                // 3x3 box smoothing.
                let (mut n, mut k) = (0u32, 0u32);
                for rr in r.saturating_sub(1)..(r + 2).min(rows) {
                    for cc in c.saturating_sub(1)..(c + 2).min(cols) {
                        n += counts[rr * cols + cc];
                        k += 1;
                    }
                }
                let density = f64::from(n) / (f64::from(k) * cell * cell / 100.0);
                let target = self
                    .design
                    .target_at(centre)
                    .unwrap_or(self.design.target_per_cm2);
                ratio[r * cols + c] = (density / target) as f32;
            }
        }
        HeatMsg {
            origin_mm: [x0, y0],
            cell_mm: cell,
            cols,
            rows,
            ratio,
        }
    }

    fn zone_densities(&self, view: &[[f64; 2]]) -> Vec<ZoneDensity> {
        let count_in = |poly: &[[f64; 2]]| {
            self.confirmed_dots()
                .filter(|d| crate::geometry::polygon_contains(poly, d[0], d[1]))
                .count()
        };
        if self.design.zones.is_empty() {
            let area_cm2 = crate::geometry::polygon_area(view) / 100.0;
            let n = count_in(view);
            return vec![ZoneDensity {
                name: "view".into(),
                density_per_cm2: if area_cm2 > 0.0 {
                    n as f64 / area_cm2
                } else {
                    0.0
                },
                target_per_cm2: self.design.target_per_cm2,
            }];
        }
        self.design
            .zones
            .iter()
            .map(|z| {
                let area_cm2 = crate::geometry::polygon_area(&z.polygon_in_skin_mm) / 100.0;
                let n = count_in(&z.polygon_in_skin_mm);
                ZoneDensity {
                    name: z.name.clone(),
                    density_per_cm2: if area_cm2 > 0.0 {
                        n as f64 / area_cm2
                    } else {
                        0.0
                    },
                    target_per_cm2: z.target_per_cm2.unwrap_or(self.design.target_per_cm2),
                }
            })
            .collect()
    }

    /// Measures how far points fixed on the skin have moved from where they truly are.
    ///
    /// Probes are a grid of skin points laid over the first registered view, anchored to the
    /// scene through that frame's true pose. A recommendation is a skin point like any probe,
    /// so the probes' error is the error of every recommendation made since the start (a
    /// recommendation made later has drifted at most that much).
    fn measure_drift(
        &mut self,
        image_from_skin: &Similarity,
        image_from_scene: &Similarity,
        w: u32,
        h: u32,
    ) {
        let (wf, hf) = (f64::from(w), f64::from(h));
        if self.drift_probes.is_empty() {
            let skin_from_image = image_from_skin.inverse();
            let scene_from_image = image_from_scene.inverse();
            for i in 1..8 {
                for j in 1..5 {
                    let q = [wf * f64::from(i) / 8.0, hf * f64::from(j) / 5.0];
                    self.drift_probes
                        .push((skin_from_image.apply(q), scene_from_image.apply(q)));
                }
            }
        }
        let errs = self.drift_probes.iter().filter_map(|(skin, scene)| {
            let est = image_from_skin.apply(*skin);
            let truth = image_from_scene.apply(*scene);
            let inside = truth[0] >= 0.0 && truth[1] >= 0.0 && truth[0] < wf && truth[1] < hf;
            inside.then(|| (est[0] - truth[0]).hypot(est[1] - truth[1]) / self.config.px_per_mm)
        });
        if let Some(m) = median(errs) {
            if self.drift_mm.len() == DRIFT_WINDOW_FRAMES {
                self.drift_mm.pop_front();
            }
            self.drift_mm.push_back(m);
        }
    }

    /// Detect then update, for benchmarks and tests.
    ///
    /// # Errors
    /// See [`LiveSession::detect`].
    pub fn process(
        &mut self,
        frame: &Frame,
        image_from_scene: Option<&Similarity>,
    ) -> Result<OverlayMsg, PerceptionError> {
        let p = self.detect(frame)?;
        Ok(self.update(&p, image_from_scene))
    }
}

/// Rounds to a tenth of a pixel: finer is invisible on the page and only bloats the JSON.
fn tenth(v: f64) -> f32 {
    ((v * 10.0).round() / 10.0) as f32
}

/// The planner for the live session, with the skin rectangle it plans over.
#[derive(Debug)]
struct LivePlanner {
    /// The planner, in its own millimetres.
    planner: Planner,
    /// Skin position of the planner's origin, millimetres.
    origin_mm: [f64; 2],
    /// Size of the planned rectangle, millimetres.
    frame_mm: [f64; 2],
}

impl LivePlanner {
    /// A skin-map dot in the planner's coordinates, if it lies in the planned rectangle.
    fn existing(&self, l: &crate::registration::Landmark) -> Option<ExistingDot> {
        existing_in(self.origin_mm, self.frame_mm, l)
    }
}

/// A skin-map dot in the coordinates of a planner whose rectangle starts at `origin_mm` and
/// spans `frame_mm`, if it lies inside.
fn existing_in(
    origin_mm: [f64; 2],
    frame_mm: [f64; 2],
    l: &crate::registration::Landmark,
) -> Option<ExistingDot> {
    let (x, y) = (
        l.in_skin_mm[0] - origin_mm[0],
        l.in_skin_mm[1] - origin_mm[1],
    );
    let inside = x >= 0.0 && y >= 0.0 && x <= frame_mm[0] && y <= frame_mm[1];
    inside.then_some(ExistingDot {
        x_mm: x,
        y_mm: y,
        radius_mm: l.radius_mm,
        kind: match l.kind {
            DotKind::Follicle => ExistingKind::Follicle,
            DotKind::Pigment => ExistingKind::Pigment,
        },
        shade: None,
    })
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}
