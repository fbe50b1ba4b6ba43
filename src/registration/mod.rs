//! Registration: keeps the plan attached to the skin while the head moves.
//!
//! Each frame's detected dot centres are matched against a map of the dots seen so far, kept in
//! skin coordinates (millimetres), and a similarity transform `skin_from_image` is fitted to the
//! matches. The dot pattern itself is the texture: follicles and pigment dots are irregular, so
//! their constellation pins the transform down, and registering to the accumulated map rather
//! than only to the previous frame keeps the error from adding up frame after frame.
//!
//! # Algorithm (per frame)
//! 1. Predict `skin_from_image` from the last one and the last frame-to-frame motion (constant
//!    velocity).
//! 2. Coarse correction: every detection votes, through every landmark within
//!    [`RegistrationConfig::coarse_radius_mm`], for the offset between them; the densest cell of
//!    the vote histogram is the translation the prediction missed (robust to quick turns).
//! 3. Nearest-neighbour matches within [`RegistrationConfig::match_radius_mm`], then RANSAC on
//!    two-point similarity hypotheses (Fischler & Bolles 1981), then a least-squares refit on the
//!    inliers (Umeyama 1991, the closed form for a 2-D similarity).
//!    A frame where fewer than a quarter of the detections are inliers is not trusted; the
//!    search is redone over [`RegistrationConfig::recovery_radius_mm`] (the pipeline stalled
//!    during a quick turn), and if that fails too the frame keeps the prediction and leaves the
//!    map untouched.
//! 4. Map upkeep: matched landmarks average in the new observation; unmatched detections become
//!    candidate landmarks, used for the fit only once seen in [`MIN_OBSERVATIONS`] frames.

pub use crate::geometry::Similarity;

// Keys are small integer cells of our own geometry, not input an attacker picks: a fast hasher.
use rustc_hash::FxHashMap as HashMap;

use crate::frame::{Detection, DotKind};

/// Detections that vote in the coarse step, at most.
const MAX_VOTERS: usize = 400;
/// A frame is registered only if at least this fraction of its detections are inliers: below
/// it, the match is more likely wrong than right, and a wrong match would corrupt the map.
const MIN_INLIER_FRACTION: f64 = 0.25;

/// A landmark takes part in the fit once it has been seen in this many frames.
pub const MIN_OBSERVATIONS: u32 = 3;

/// Longest an unseen candidate is held while hidden under an occluder (30 s at 30 fps).
pub const HOLD_HIDDEN_MAX_FRAMES: u64 = 900;

/// Tuning of [`Registrar`]; the defaults suit dots about 1 mm apart seen at 10-40 px/mm.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// Pixels per millimetre at the skin, from calibration; sets the scale of the map.
    pub px_per_mm: f64,
    /// How far the coarse vote looks for the true position of a dot (covers quick turns).
    pub coarse_radius_mm: f64,
    /// Search radius when the coarse step fails (the pipeline stalled during a quick turn).
    pub recovery_radius_mm: f64,
    /// Cell size of the coarse vote histogram.
    pub coarse_cell_mm: f64,
    /// Nearest-neighbour gate after the coarse correction; below half the closest dot spacing.
    pub match_radius_mm: f64,
    /// RANSAC inlier threshold.
    pub inlier_mm: f64,
    /// RANSAC hypotheses per frame.
    pub ransac_iterations: usize,
    /// Fewer inliers than this and the frame is not registered (the prediction is kept).
    pub min_inliers: usize,
    /// Candidates not confirmed within this many frames are forgotten (false detections).
    pub candidate_ttl_frames: u64,
    /// Off: every frame keeps the first frame's transform, as if the head never moved. Only
    /// for tests that must show the drift registration removes.
    pub enabled: bool,
}

impl RegistrationConfig {
    /// Defaults for a camera at `px_per_mm`.
    pub fn new(px_per_mm: f64) -> Self {
        Self {
            px_per_mm,
            coarse_radius_mm: 3.0,
            recovery_radius_mm: 10.0,
            coarse_cell_mm: 0.05,
            match_radius_mm: 0.2,
            inlier_mm: 0.06,
            ransac_iterations: 48,
            min_inliers: 8,
            candidate_ttl_frames: 30,
            enabled: true,
        }
    }
}

/// One dot of the skin map.
#[derive(Debug, Clone, Copy)]
pub struct Landmark {
    /// Position on the skin (running mean of the observations).
    pub in_skin_mm: [f64; 2],
    /// Follicle or pigment: the majority of its observations, so that one frame's verdict
    /// (motion blur, a glint) does not flip a dot's kind.
    pub kind: DotKind,
    /// Frames in which it was matched; confirmed at [`MIN_OBSERVATIONS`].
    pub observations: u32,
    /// Of those, the frames that saw it as pigment.
    pub pigment_votes: u32,
    /// Frame counter of the first observation.
    pub first_seen: u64,
    /// Frame counter of the latest observation.
    pub last_seen: u64,
    /// A candidate is forgotten [`RegistrationConfig::candidate_ttl_frames`] after this frame:
    /// its latest observation, or the latest frame that could not see it (hidden under a glove
    /// or the machine, or out of view; see [`Registrar::hold_hidden_candidates`]).
    pub kept_from: u64,
    /// Radius on the skin.
    pub radius_mm: f64,
}

impl Landmark {
    /// Whether the landmark has been seen often enough to trust.
    pub fn confirmed(&self) -> bool {
        self.observations >= MIN_OBSERVATIONS
    }
}

/// What one call to [`Registrar::register`] found.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The fitted (or, when `registered` is false, predicted) transform.
    pub skin_from_image: Similarity,
    /// Whether enough matches agreed to fit the transform.
    pub registered: bool,
    /// Inliers of the final fit.
    pub inliers: usize,
    /// RMS residual of the inliers, millimetres.
    pub rms_mm: f64,
    /// Landmarks confirmed in this frame (newly reached [`MIN_OBSERVATIONS`]).
    pub confirmed: Vec<Landmark>,
}

/// Frame-to-map registration state. Synchronous and allocation-light: one per live session.
#[derive(Debug, Clone)]
pub struct Registrar {
    config: RegistrationConfig,
    landmarks: Vec<Landmark>,
    skin_from_image: Similarity,
    /// Last frame-to-frame motion (`previous image from current image`), for the prediction.
    prev_from_cur: Similarity,
    frame: u64,
    /// Scratch: landmark index per grid cell (cell = `match grid`), rebuilt each frame.
    grid: HashMap<(i32, i32), Vec<u32>>,
    rng_state: u64,
}

impl Registrar {
    /// A registrar whose skin frame is the first frame's image, scaled to millimetres.
    pub fn new(config: RegistrationConfig) -> Self {
        let s = 1.0 / config.px_per_mm;
        Self {
            skin_from_image: Similarity::new(s, 0.0, 0.0, 0.0),
            prev_from_cur: Similarity::IDENTITY,
            landmarks: Vec::new(),
            frame: 0,
            grid: HashMap::default(),
            rng_state: 0x9E37_79B9_7F4A_7C15,
            config,
        }
    }

    /// The map of dots on the skin.
    pub fn landmarks(&self) -> &[Landmark] {
        &self.landmarks
    }

    /// The latest `skin_from_image`.
    pub fn skin_from_image(&self) -> Similarity {
        self.skin_from_image
    }

    /// Where the next frame is expected to lie on the skin, before its dots are seen: the last
    /// registered `skin_from_image` moved on by the last frame-to-frame motion (the same
    /// prediction [`Registrar::register`] searches around).
    pub fn predicted(&self) -> Similarity {
        self.skin_from_image.compose(&self.prev_from_cur)
    }

    /// Frames registered so far.
    pub fn frames(&self) -> u64 {
        self.frame
    }

    /// Registers one frame's detections and updates the map.
    pub fn register(&mut self, detections: &[Detection]) -> Registration {
        let _span = tracing::trace_span!("register", n = detections.len()).entered();
        self.frame += 1;
        let predicted = self.predicted();
        let first = self.landmarks.is_empty();
        let fit = if !self.config.enabled {
            // The map still has to find this frame's dots among its landmarks.
            self.rebuild_grid();
            Some((self.skin_from_image, 0, 0.0))
        } else if first {
            None
        } else {
            self.rebuild_grid();
            let min_inliers = (MIN_INLIER_FRACTION * detections.len() as f64) as usize;
            let radius = self.config.coarse_radius_mm;
            self.fit(detections, predicted, radius)
                .filter(|(_, n, _)| *n >= min_inliers)
                .or_else(|| {
                    // Lost (a stall during a quick turn): search a much wider neighbourhood.
                    let wide = self.config.recovery_radius_mm;
                    let found = self
                        .fit(detections, predicted, wide)
                        .filter(|(_, n, _)| *n >= min_inliers);
                    if found.is_some() {
                        tracing::debug!(
                            frame = self.frame,
                            "registration recovered by wide search"
                        );
                    }
                    found
                })
        };
        let (skin_from_image, registered, inliers, rms_mm) = match fit {
            Some((t, n, rms)) => (t, true, n, rms),
            None => (predicted, first, 0, 0.0),
        };
        if registered {
            self.prev_from_cur = self.skin_from_image.inverse().compose(&skin_from_image);
            self.skin_from_image = skin_from_image;
        }
        let confirmed = if registered {
            if first {
                self.rebuild_grid();
            }
            self.update_map(detections)
        } else {
            Vec::new()
        };
        self.forget_stale_candidates();
        Registration {
            skin_from_image: self.skin_from_image,
            registered,
            inliers,
            rms_mm,
            confirmed,
        }
    }

    fn cell(&self, p: [f64; 2]) -> (i32, i32) {
        let c = self
            .config
            .coarse_radius_mm
            .max(self.config.match_radius_mm);
        ((p[0] / c).floor() as i32, (p[1] / c).floor() as i32)
    }

    fn rebuild_grid(&mut self) {
        for v in self.grid.values_mut() {
            v.clear();
        }
        for (i, l) in self.landmarks.iter().enumerate() {
            let key = self.cell(l.in_skin_mm);
            self.grid.entry(key).or_default().push(i as u32);
        }
    }

    /// Calls `f(index, landmark)` for every landmark within `radius` of `p`.
    fn near(&self, p: [f64; 2], radius: f64, mut f: impl FnMut(usize, &Landmark)) {
        let (cx, cy) = self.cell(p);
        let r2 = radius * radius;
        let cell = self
            .config
            .coarse_radius_mm
            .max(self.config.match_radius_mm);
        let span = (radius / cell).ceil().max(1.0) as i32;
        for gx in cx - span..=cx + span {
            for gy in cy - span..=cy + span {
                let Some(ids) = self.grid.get(&(gx, gy)) else {
                    continue;
                };
                for &i in ids {
                    let l = &self.landmarks[i as usize];
                    let dx = l.in_skin_mm[0] - p[0];
                    let dy = l.in_skin_mm[1] - p[1];
                    if dx * dx + dy * dy <= r2 {
                        f(i as usize, l);
                    }
                }
            }
        }
    }

    /// Nearest landmark to `p` within `radius`, optionally only confirmed ones.
    fn nearest(&self, p: [f64; 2], radius: f64, confirmed_only: bool) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        self.near(p, radius, |i, l| {
            if confirmed_only && !l.confirmed() {
                return;
            }
            let d2 = (l.in_skin_mm[0] - p[0]).powi(2) + (l.in_skin_mm[1] - p[1]).powi(2);
            if best.is_none_or(|(_, b)| d2 < b) {
                best = Some((i, d2));
            }
        });
        best
    }

    fn next_random(&mut self, n: usize) -> usize {
        // xorshift64*: deterministic, good enough to pick RANSAC samples.
        let mut x = self.rng_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng_state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }

    fn fit(
        &mut self,
        detections: &[Detection],
        predicted: Similarity,
        coarse_radius_mm: f64,
    ) -> Option<(Similarity, usize, f64)> {
        let cfg = self.config.clone();
        // Until enough landmarks are confirmed (the first frames), candidates take part too.
        let bootstrap =
            self.landmarks.iter().filter(|l| l.confirmed()).count() < 4 * cfg.min_inliers;
        let in_skin: Vec<[f64; 2]> = detections
            .iter()
            .map(|d| predicted.apply([d.x, d.y]))
            .collect();

        // 2. Coarse translation vote, from a subsample of the detections (a few hundred votes
        // already give a peak far above the background of chance offsets).
        let mut votes: HashMap<(i32, i32), u32> = HashMap::default();
        let step = (in_skin.len() / MAX_VOTERS).max(1);
        for p in in_skin.iter().step_by(step) {
            self.near(*p, coarse_radius_mm, |_, l| {
                if bootstrap || l.confirmed() {
                    let dx = l.in_skin_mm[0] - p[0];
                    let dy = l.in_skin_mm[1] - p[1];
                    let key = (
                        (dx / cfg.coarse_cell_mm).round() as i32,
                        (dy / cfg.coarse_cell_mm).round() as i32,
                    );
                    *votes.entry(key).or_default() += 1;
                }
            });
        }
        // Smooth over the 3x3 neighbourhood so that a peak split between cells still wins.
        let mut best_key = (0, 0);
        let mut best_score = 0;
        for &(kx, ky) in votes.keys() {
            let mut score = 0;
            for dx in -1..=1 {
                for dy in -1..=1 {
                    score += votes.get(&(kx + dx, ky + dy)).copied().unwrap_or(0);
                }
            }
            if score > best_score {
                best_score = score;
                best_key = (kx, ky);
            }
        }
        let shift = [
            best_key.0 as f64 * cfg.coarse_cell_mm,
            best_key.1 as f64 * cfg.coarse_cell_mm,
        ];

        // 3. Nearest-neighbour matches after the coarse shift.
        let mut pairs: Vec<([f64; 2], [f64; 2])> = Vec::with_capacity(detections.len());
        for (d, p) in detections.iter().zip(&in_skin) {
            let q = [p[0] + shift[0], p[1] + shift[1]];
            if let Some((i, _)) = self.nearest(q, cfg.match_radius_mm, !bootstrap) {
                pairs.push(([d.x, d.y], self.landmarks[i].in_skin_mm));
            }
        }
        if pairs.len() < cfg.min_inliers {
            return None;
        }

        // RANSAC on two-point similarities.
        let inlier2 = cfg.inlier_mm * cfg.inlier_mm;
        let count = |t: &Similarity| {
            pairs
                .iter()
                .filter(|(p, q)| {
                    let r = t.apply(*p);
                    (r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2) <= inlier2
                })
                .count()
        };
        let mut best = Similarity::translation(shift[0], shift[1]).compose(&predicted);
        let mut best_n = count(&best);
        for _ in 0..cfg.ransac_iterations {
            let i = self.next_random(pairs.len());
            let j = self.next_random(pairs.len());
            if i == j {
                continue;
            }
            let Some(t) = Similarity::fit(&[pairs[i], pairs[j]]) else {
                continue;
            };
            let n = count(&t);
            if n > best_n {
                best_n = n;
                best = t;
            }
        }
        // Least-squares refit on the inliers, twice (the inlier set settles).
        let mut rms = 0.0;
        for _ in 0..2 {
            let inliers: Vec<_> = pairs
                .iter()
                .copied()
                .filter(|(p, q)| {
                    let r = best.apply(*p);
                    (r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2) <= inlier2
                })
                .collect();
            if inliers.len() < cfg.min_inliers {
                return None;
            }
            best = Similarity::fit(&inliers)?;
            best_n = inliers.len();
            let ss: f64 = inliers
                .iter()
                .map(|(p, q)| {
                    let r = best.apply(*p);
                    (r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2)
                })
                .sum();
            rms = (ss / inliers.len() as f64).sqrt();
        }
        Some((best, best_n, rms))
    }

    /// Averages matched detections into their landmarks and adds the rest as candidates.
    fn update_map(&mut self, detections: &[Detection]) -> Vec<Landmark> {
        let t = self.skin_from_image;
        let radius_scale = t.scale();
        let mut confirmed = Vec::new();
        let mut added = Vec::new();
        for d in detections {
            let p = t.apply([d.x, d.y]);
            match self.nearest(p, self.config.match_radius_mm, false) {
                Some((i, _)) => {
                    let l = &mut self.landmarks[i];
                    if l.last_seen == self.frame {
                        continue;
                    }
                    let was = l.confirmed();
                    l.observations = l.observations.saturating_add(1);
                    // Running mean, capped so that the map still follows slow skin stretch.
                    let w = 1.0 / f64::from(l.observations.min(20));
                    l.in_skin_mm[0] += w * (p[0] - l.in_skin_mm[0]);
                    l.in_skin_mm[1] += w * (p[1] - l.in_skin_mm[1]);
                    l.radius_mm += w * (d.radius * radius_scale - l.radius_mm);
                    l.pigment_votes += u32::from(d.kind == DotKind::Pigment);
                    l.kind = if 2 * l.pigment_votes > l.observations {
                        DotKind::Pigment
                    } else {
                        DotKind::Follicle
                    };
                    l.last_seen = self.frame;
                    l.kept_from = self.frame;
                    if !was && l.confirmed() {
                        confirmed.push(*l);
                    }
                }
                None => added.push(Landmark {
                    in_skin_mm: p,
                    kind: d.kind,
                    observations: 1,
                    pigment_votes: u32::from(d.kind == DotKind::Pigment),
                    first_seen: self.frame,
                    last_seen: self.frame,
                    kept_from: self.frame,
                    radius_mm: d.radius * radius_scale,
                }),
            }
        }
        self.landmarks.extend(added);
        confirmed
    }

    fn forget_stale_candidates(&mut self) {
        let ttl = self.config.candidate_ttl_frames;
        let frame = self.frame;
        self.landmarks
            .retain(|l| l.confirmed() || frame.saturating_sub(l.kept_from) <= ttl);
    }

    /// Keeps every unconfirmed candidate that this frame could not see (`hidden(p)` for its
    /// position in skin millimetres: under a glove or the machine) from ageing, for at most
    /// [`HOLD_HIDDEN_MAX_FRAMES`] after it was last seen, so that a dot glimpsed before an
    /// occluder covered it is still known when it reappears and is not taken for a new one.
    /// Call after [`Registrar::register`] on each frame.
    pub fn hold_hidden_candidates(&mut self, hidden: impl Fn([f64; 2]) -> bool) {
        let frame = self.frame;
        for l in self.landmarks.iter_mut().filter(|l| !l.confirmed()) {
            if l.last_seen != frame
                && frame.saturating_sub(l.last_seen) <= HOLD_HIDDEN_MAX_FRAMES
                && hidden(l.in_skin_mm)
            {
                l.kept_from = frame;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dot's kind is the majority of its observations: one frame that calls a pigment dot a
    /// follicle (motion blur, a glint) at the moment it is confirmed does not make it one.
    /// A candidate glimpsed once and then hidden (a glove over it) is still there when it
    /// reappears after several seconds; one merely not seen again is forgotten after the
    /// candidates' time to live, and a hidden one after [`HOLD_HIDDEN_MAX_FRAMES`].
    #[test]
    fn a_hidden_candidate_does_not_age() {
        let mut cfg = RegistrationConfig::new(20.0);
        cfg.enabled = false;
        let ttl = cfg.candidate_ttl_frames;
        let mut reg = Registrar::new(cfg);
        let dot = |x: f64| Detection {
            x,
            y: 80.0,
            radius: 5.0,
            kind: DotKind::Pigment,
            score: 1.0,
            hairs: None,
        };
        // Two candidates, 10 mm apart; the one at x = 100 px goes under a glove.
        reg.register(&[dot(100.0), dot(300.0)]);
        let under_glove = |p: [f64; 2]| (p[0] - 5.0).abs() < 1.0;
        for _ in 0..(4 * ttl) {
            reg.register(&[]);
            reg.hold_hidden_candidates(under_glove);
        }
        let xs: Vec<f64> = reg.landmarks().iter().map(|l| l.in_skin_mm[0]).collect();
        assert_eq!(xs.len(), 1, "{xs:?}");
        assert!((xs[0] - 5.0).abs() < 1e-9, "{xs:?}");
        // It reappears: the same landmark, with its first sighting kept.
        reg.register(&[dot(100.0)]);
        assert_eq!(reg.landmarks().len(), 1);
        assert_eq!(reg.landmarks()[0].first_seen, 1);
        assert_eq!(reg.landmarks()[0].observations, 2);
        // Hidden for longer than the hold: forgotten.
        for _ in 0..(HOLD_HIDDEN_MAX_FRAMES + ttl + 2) {
            reg.register(&[]);
            reg.hold_hidden_candidates(under_glove);
        }
        assert!(reg.landmarks().is_empty());
    }

    #[test]
    fn a_landmarks_kind_is_the_majority_of_its_frames() {
        let ppm = 20.0;
        let mut cfg = RegistrationConfig::new(ppm);
        cfg.enabled = false;
        let mut reg = Registrar::new(cfg);
        let dot = |kind| Detection {
            x: 100.0,
            y: 80.0,
            radius: 5.0,
            kind,
            score: 1.0,
            hairs: None,
        };
        let mut confirmed = Vec::new();
        for kind in [DotKind::Pigment, DotKind::Pigment, DotKind::Follicle] {
            confirmed = reg.register(&[dot(kind)]).confirmed;
        }
        assert_eq!(confirmed.len(), 1, "confirmed at the third sighting");
        assert_eq!(confirmed[0].kind, DotKind::Pigment);
        assert_eq!(confirmed[0].pigment_votes, 2);
        // Two more follicle verdicts tip the majority.
        for _ in 0..2 {
            reg.register(&[dot(DotKind::Follicle)]);
        }
        assert_eq!(reg.landmarks()[0].kind, DotKind::Follicle);
    }
}
