//! Variable-density blue-noise sampling: per-cell quotas, then random sequential addition with
//! best-candidate choice, one dot per cell per round.
//!
//! # Algorithm
//! 1. **Quotas.** For each [`CELL_MM`](super::CELL_MM) cell, integrate the design's density over the cell
//!    ([`CELL_SUBSAMPLES`]² points) to get its target count `T`; with `n` natural dots (follicles,
//!    and suspected ones at [`SUSPECT_WEIGHT`](super::SUSPECT_WEIGHT) each) and `p` pigment dots
//!    in it, the session wants
//!    `n + share * max(T - n, 0)` dots, so the deficit is that minus `n + p`. Fractional deficits
//!    become integers by error diffusion along the rows (reset at every cell that is not short,
//!    so nothing diffuses into skin that is already dense enough).
//! 2. **Sentinels** (hairlines, first and final plans): single dots 1-3 mm ahead of the front
//!    edge, about one per [`SENTINEL_STEP_MM`] of line, at random.
//! 3. **Rounds.** While some cell is below quota, visit the open cells in a fresh random order
//!    and place one dot in each: draw up to [`ATTEMPTS_PER_DOT`] uniform points in the cell,
//!    keep those inside the frame margin, accepted by the design density (rejection sampling
//!    against the cell's maximum, which shapes hairline ramps), off the guard, and at least the
//!    session spacing from every dot; of the first [`BEST_OF`] valid ones keep the farthest from
//!    its nearest dot (Mitchell's best candidate, 1991). A cell where no candidate fits is jammed.
//! 4. **Spill.** What a jammed cell could not take goes to its short, open neighbours, then the
//!    rounds run again.
//!
//! One dot per cell per round interleaves the cells as a global random sequential addition
//! would, so cell borders leave no seams; continuous darts leave no lattice.

use rand::seq::SliceRandom;
use rand::Rng;

use super::design::{polyline_at, polyline_length, ZoneKind};
use super::{
    Planner, RecRole, RecStatus, Slot, SlotKind, ATTEMPTS_PER_DOT, BEST_OF, CELL_SUBSAMPLES,
    EDGE_MARGIN_FRACTION,
};
use crate::geometry::polygon_contains;
use crate::planning::ExistingKind;

/// Valid candidates compared per placed dot when an image guard is present: more choice lets
/// the cleanest-looking skin win (see `skin`).
pub const BEST_OF_GUARDED: usize = 8;
/// Weight of the guard's darkness cost (noise units) against the gap (in spacings): darkness
/// dominates, the gap breaks ties.
pub const COST_WEIGHT: f64 = 1.0;
/// Mean gap between sentinel dots along a hairline's front edge (mm).
pub const SENTINEL_STEP_MM: f64 = 3.5;
/// Probability of a sentinel at each step (gaps are irregular on purpose).
pub const SENTINEL_PROBABILITY: f64 = 0.55;
/// Nearest distance ahead of the front edge for a sentinel (mm).
pub const SENTINEL_MIN_AHEAD_MM: f64 = 1.0;
/// Farthest distance ahead of the front edge for a sentinel (mm).
pub const SENTINEL_MAX_AHEAD_MM: f64 = 3.0;

impl Planner {
    fn spacing(&self) -> f64 {
        self.config.min_spacing_mm * self.step.spacing_factor
    }

    /// Step 1: every cell's quota from the design, the session share and what is there.
    pub(super) fn set_quotas(&mut self) {
        let sub = CELL_SUBSAMPLES as f64;
        let mut natural = vec![0u32; self.cells.len()];
        for s in &self.slots {
            if let SlotKind::Existing(kind) = s.kind {
                if kind != ExistingKind::Pigment
                    && kind != ExistingKind::Uncertain
                    && kind != ExistingKind::Suspected
                {
                    if let Some(c) = self.cell_index(s.x, s.y) {
                        natural[c] += 1;
                    }
                }
            }
        }
        for row in 0..self.rows {
            let mut carry = 0.0;
            for col in 0..self.cols {
                let c = row * self.cols + col;
                let [x0, y0, x1, y1] = self.cell_rect(c);
                let (w, h) = (x1 - x0, y1 - y0);
                let mut density_sum = 0.0;
                let mut counted = 0usize;
                let mut max_density: f64 = 0.0;
                for j in 0..CELL_SUBSAMPLES {
                    for i in 0..CELL_SUBSAMPLES {
                        let x = x0 + (i as f64 + 0.5) / sub * w;
                        let y = y0 + (j as f64 + 0.5) / sub * h;
                        let f = self.field.sample(x, y);
                        // Off the skin nothing is counted or wanted.
                        if self.skin.as_ref().is_some_and(|m| !m.is_skin_mm(x, y)) {
                            continue;
                        }
                        if f.counted {
                            counted += 1;
                        }
                        density_sum += f.density_per_mm2;
                        max_density = max_density.max(f.density_per_mm2);
                    }
                }
                let n_samples = sub * sub;
                let area = w * h;
                let target = density_sum / n_samples * area;
                let cell = &mut self.cells[c];
                cell.skin_area = area * counted as f64 / n_samples;
                cell.max_density = max_density;
                let n = f64::from(natural[c]) + cell.suspects;
                let have = f64::from(cell.existing) + cell.suspects;
                let want = n + self.step.share_of_deficit * (target - n).max(0.0);
                let mut need = want - have;
                if need < self.step.touch_up_tolerance * target {
                    need = 0.0;
                }
                if need <= 0.0 || max_density <= 0.0 {
                    carry = 0.0;
                    cell.quota = 0;
                    cell.short = false;
                    continue;
                }
                cell.short = true;
                let acc = carry + need;
                let q = acc.round().max(0.0);
                carry = acc - q;
                cell.quota = q as u32;
            }
        }
    }

    /// Steps 2-4: sentinels, rounds, spill, rounds.
    pub(super) fn fill_all(&mut self) {
        if self.step.sentinels {
            self.place_sentinels();
        }
        self.rounds();
        // Spill what jammed cells could not take to their short, open neighbours.
        let mut spilled = false;
        for c in 0..self.cells.len() {
            let cell = &self.cells[c];
            if !cell.jammed || cell.placed >= cell.quota {
                continue;
            }
            let mut left = cell.quota - cell.placed;
            self.cells[c].quota = self.cells[c].placed;
            let (col, row) = ((c % self.cols) as isize, (c / self.cols) as isize);
            let mut neighbours = Vec::with_capacity(8);
            for dr in -1..=1isize {
                for dc in -1..=1isize {
                    let (nc, nr) = (col + dc, row + dr);
                    if (dc, dr) == (0, 0)
                        || nc < 0
                        || nr < 0
                        || nc >= self.cols as isize
                        || nr >= self.rows as isize
                    {
                        continue;
                    }
                    let n = nr as usize * self.cols + nc as usize;
                    if self.cells[n].short && !self.cells[n].jammed {
                        neighbours.push(n);
                    }
                }
            }
            neighbours.shuffle(&mut self.rng);
            let mut k = 0;
            while left > 0 && !neighbours.is_empty() {
                self.cells[neighbours[k % neighbours.len()]].quota += 1;
                left -= 1;
                k += 1;
                spilled = true;
            }
        }
        if spilled {
            self.rounds();
        }
    }

    fn rounds(&mut self) {
        let mut open: Vec<usize> = (0..self.cells.len())
            .filter(|&c| !self.cells[c].jammed && self.cells[c].placed < self.cells[c].quota)
            .collect();
        while !open.is_empty() {
            open.shuffle(&mut self.rng);
            for &c in &open {
                if self.place_in_cell(c).is_none() {
                    self.cells[c].jammed = true;
                }
            }
            open.retain(|&c| !self.cells[c].jammed && self.cells[c].placed < self.cells[c].quota);
        }
    }

    /// Whether a point may hold a new recommendation (frame margin, guard, spacing).
    fn admissible(&self, x: f64, y: f64, spacing: f64) -> bool {
        let margin = self.config.min_spacing_mm * EDGE_MARGIN_FRACTION;
        if x < margin
            || y < margin
            || x > self.frame_mm[0] - margin
            || y > self.frame_mm[1] - margin
        {
            return false;
        }
        if self.guard.as_ref().is_some_and(|g| g.blocked(x, y)) {
            return false;
        }
        !self.grid.any_closer_than(x, y, spacing)
    }

    /// Step 3 for one cell: places one recommendation, or `None` if the cell is jammed.
    pub(super) fn place_in_cell(&mut self, c: usize) -> Option<u32> {
        let [x0, y0, x1, y1] = self.cell_rect(c);
        let max_density = self.cells[c].max_density;
        if max_density <= 0.0 {
            return None;
        }
        let spacing = self.spacing();
        let mut best: Option<(f64, f64, f64, Option<usize>)> = None;
        let mut valid = 0;
        let best_of = if self.guard.is_some() {
            BEST_OF_GUARDED
        } else {
            BEST_OF
        };
        for _ in 0..ATTEMPTS_PER_DOT {
            let x = self.rng.gen_range(x0..x1);
            let y = self.rng.gen_range(y0..y1);
            let f = self.field.sample(x, y);
            if !f.counted || f.density_per_mm2 <= 0.0 {
                continue;
            }
            if f.density_per_mm2 < max_density
                && self.rng.gen::<f64>() * max_density > f.density_per_mm2
            {
                continue;
            }
            if !self.admissible(x, y, spacing) {
                continue;
            }
            let gap = self
                .grid
                .nearest_within(x, y, 2.0 * spacing)
                .map_or(2.0 * spacing, |(_, d)| d);
            let cost = self.guard.as_ref().map_or(0.0, |g| g.cost(x, y));
            let score = gap / spacing - COST_WEIGHT * cost;
            if best.is_none_or(|b| score > b.2) {
                best = Some((x, y, score, f.zone));
            }
            valid += 1;
            if valid >= best_of {
                break;
            }
        }
        let (x, y, _, zone) = best?;
        let id = self.push_rec(x, y, zone, RecRole::Fill);
        Some(id)
    }

    fn push_rec(&mut self, x: f64, y: f64, zone: Option<usize>, role: RecRole) -> u32 {
        let look =
            self.look_model
                .suggest(&self.grid, &self.looks, x, y, &self.step, &mut self.scratch);
        self.push_pending(x, y, zone, role, look)
    }

    /// Carries an earlier plan's pending recommendations into this one (see
    /// [`super::PlanInput::kept`]); returns the id of the first one kept. Runs after the quotas
    /// are set, before the fill: a kept recommendation counts toward its cell's quota.
    pub(super) fn keep(&mut self, kept: &[super::Recommendation]) -> Option<u32> {
        let spacing = self.spacing();
        let mut first = None;
        for r in kept {
            let (x, y) = (r.x_mm, r.y_mm);
            if ![x, y, r.radius_mm, r.shade].iter().all(|v| v.is_finite()) {
                continue;
            }
            let f = self.field.sample(x, y);
            // Sentinels stand ahead of a hairline, outside the counted zone by design.
            let wanted = f.counted || (r.role == RecRole::Sentinel && f.zone.is_some());
            let on_skin = self.skin.as_ref().is_none_or(|m| m.is_skin_mm(x, y));
            if !wanted || !on_skin || !self.admissible(x, y, spacing) {
                continue;
            }
            let id = self.push_pending(x, y, f.zone, r.role, (r.radius_mm, r.shade));
            first.get_or_insert(id);
        }
        first
    }

    fn push_pending(
        &mut self,
        x: f64,
        y: f64,
        zone: Option<usize>,
        role: RecRole,
        (radius_mm, shade): (f64, f64),
    ) -> u32 {
        let id = self.slots.len() as u32;
        self.slots.push(Slot {
            x,
            y,
            alive: true,
            kind: SlotKind::Rec {
                status: RecStatus::Pending,
                role,
                zone,
                radius_mm,
                shade,
            },
        });
        self.looks.push(None);
        self.grid.insert(id, x, y);
        if let Some(c) = self.cell_index(x, y) {
            self.cells[c].placed += 1;
        }
        id
    }

    /// Step 2: single dots ahead of every hairline's front edge.
    fn place_sentinels(&mut self) {
        let spacing = self.spacing();
        let hairlines: Vec<usize> = (0..self.field.zones.len())
            .filter(|&i| self.field.zones[i].zone.kind == ZoneKind::Hairline)
            .collect();
        for zi in hairlines {
            let z = &self.field.zones[zi];
            let Some(edge) = z.zone.front_edge.clone() else {
                continue;
            };
            let outward = -z.inside_sign;
            let len = polyline_length(&edge);
            let mut s = self.rng.gen_range(0.0..SENTINEL_STEP_MM);
            while s < len {
                if self.rng.gen::<f64>() < SENTINEL_PROBABILITY {
                    let (p, n) = polyline_at(&edge, s);
                    let ahead = self
                        .rng
                        .gen_range(SENTINEL_MIN_AHEAD_MM..SENTINEL_MAX_AHEAD_MM);
                    let along = self.rng.gen_range(-0.8..0.8);
                    let (tx, ty) = (n[1], -n[0]);
                    let x = p[0] + outward * n[0] * ahead + tx * along;
                    let y = p[1] + outward * n[1] * ahead + ty * along;
                    let in_nogo = self.field.zones.iter().any(|z| {
                        z.zone.kind == ZoneKind::Nogo && polygon_contains(&z.zone.polygon, x, y)
                    });
                    let in_hairline = polygon_contains(&self.field.zones[zi].zone.polygon, x, y);
                    if !in_nogo && !in_hairline && self.admissible(x, y, spacing) {
                        self.push_rec(x, y, Some(zi), RecRole::Sentinel);
                    }
                }
                s += SENTINEL_STEP_MM * self.rng.gen_range(0.6..1.4);
            }
        }
    }
}
