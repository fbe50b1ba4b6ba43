//! The model thread's masks, made on an earlier frame, read where the head is now.
//!
//! The models run on their own thread at a few frames a second, so the masks a frame is fused
//! with were made on a frame a few hundred milliseconds older. Read at this frame's pixels as
//! they are, they describe where the skin and the occluders were: a late skin view calls the
//! skin a glove has just left not skin and the skin it now covers skin. So:
//!
//! - **The head's motion is undone.** Every frame that registers leaves its `skin_from_image`
//!   here ([`LateMasks::registered`]); a mask of one of the last [`MASK_POSE_FRAMES`] of them
//!   is read in the frame being detected, which is expected where the registrar predicts it,
//!   through the two frames' transform: the dot mask through [`SegMask::reader`] (at the
//!   picture's edge, skin come into view since reads the mask's edge, as a mask always did),
//!   the skin view resampled ([`SegMask::warp_into`]; skin come into view since gets no
//!   opinion). A mask of a frame that did not register, or an older one, is not used.
//! - **What moves on its own is left to the colour rules.** The glove and the machine follow
//!   the needle, not the head. Where the scene differs from the mask's frame, once the head's
//!   motion is undone, by more than [`STALE_DELTA_E`] (a block of [`STALE_WINDOW_MM`] against
//!   the mean colour where it was), the skin view has no opinion ([`LEARNED_UNDECIDED`]) and the colour rules decide
//!   alone, as they do on what the model never saw.
//!
//! docs/live-service.md has the measurements (`examples/live_lag_eval.rs`).

use std::collections::VecDeque;

use image::RgbImage;

use crate::calib::PlaneMap;
use crate::perception::filter::srgb_to_lab_f;
use crate::perception::segment::ReaderFrame;
use crate::perception::skin_mask::LEARNED_UNDECIDED;
use crate::perception::SegMask;
use crate::registration::Similarity;

/// Registered frames whose pose is kept (two seconds at 30 fps): a mask made on an older
/// frame is not used.
pub const MASK_POSE_FRAMES: usize = 64;
/// A late skin view holds at a point only where the scene there still looks as it did on the
/// model's frame, the head's motion undone: the mean colours differ by at most this (CIELAB
/// ΔE*ab; a difference anyone sees, and several times the frame-to-frame change of skin under
/// one light).
pub const STALE_DELTA_E: f64 = 10.0;
/// Side of the blocks whose mean colours are compared (mm): wide enough that a dot misplaced by
/// a pixel of registration changes a block's mean by little.
pub const STALE_WINDOW_MM: f64 = 1.0;

/// What the model thread made of one frame, to be fused into the same or a later frame.
#[derive(Debug, Clone, Copy)]
pub struct ModelView<'a> {
    /// Sequence number of the frame the masks were computed on.
    pub seq: u64,
    /// That frame's picture.
    pub image: &'a RgbImage,
    /// The dot (or openings) model's mask.
    pub dots: &'a SegMask,
    /// The skin model's view of the same frame, when it ran.
    pub skin: Option<&'a SegMask>,
}

/// The poses of recent frames and the buffers of the warp; one per session.
#[derive(Debug, Default)]
pub struct LateMasks {
    /// `skin_from_image` of the last [`MASK_POSE_FRAMES`] frames that registered, by sequence
    /// number, oldest first.
    poses: VecDeque<(u64, Similarity)>,
    /// The dot mask as this frame reads it, and the frame it was made on when it is a copy
    /// read through [`SegMask::reader`] (masks of one frame are the same masks).
    dots: SegMask,
    dots_seq: Option<u64>,
    /// The skin view warped into this frame.
    skin: SegMask,
    /// Block colours of the frame being detected and of the masks' frame (kept while the same
    /// masks come again).
    now: BlockColours,
    then: BlockColours,
    /// The frame `then` was computed on (`None`: none yet).
    then_seq: Option<u64>,
    /// Per block of `now`: whether the scene changed there.
    changed: Vec<bool>,
}

impl LateMasks {
    /// Frame `seq` registered at `skin_from_image`.
    pub fn registered(&mut self, seq: u64, skin_from_image: Similarity) {
        if self.poses.len() == MASK_POSE_FRAMES {
            self.poses.pop_front();
        }
        self.poses.push_back((seq, skin_from_image));
    }

    /// The masks `m` as frame `seq` (picture `now`) sees them, this frame expected at
    /// `skin_from_now` (ideal pixels; `lens` maps the picture's pixels to them); `None` when
    /// they cannot be placed on it. Masks of this very frame are returned as they are.
    pub fn here<'a>(
        &'a mut self,
        seq: u64,
        now: &RgbImage,
        m: ModelView<'a>,
        skin_from_now: Similarity,
        lens: Option<&PlaneMap>,
        px_per_mm: f64,
    ) -> Option<ModelView<'a>> {
        if m.seq == seq {
            return Some(m);
        }
        let Some(skin_from_then) = self
            .poses
            .iter()
            .rev()
            .find(|(s, _)| *s == m.seq)
            .map(|(_, pose)| *pose)
        else {
            tracing::trace!(
                mask_seq = m.seq,
                "the masks' frame did not register: not used"
            );
            return None;
        };
        // This frame's pixel -> the skin -> the masks' frame's pixel, through the lens.
        let then_from_now = skin_from_then.inverse().compose(&skin_from_now);
        let source_of = |p: [f64; 2]| match lens {
            Some(l) => l.from_ideal(then_from_now.apply(l.to_ideal(p))),
            None => then_from_now.apply(p),
        };
        // The dot mask is read at a few points per dot, so it is not resampled: it is read
        // through the transform (a copy per new mask, a few times a second). Through a lens
        // the offset is no similarity, and the mask is resampled.
        match lens {
            None => {
                if self.dots_seq != Some(m.seq) {
                    self.dots.clone_from(m.dots);
                    self.dots_seq = Some(m.seq);
                }
                self.dots.reader = Some(ReaderFrame::new(then_from_now));
            }
            Some(_) => {
                m.dots
                    .warp_into(|p| Some(source_of(p)), |_| 0.0, &mut self.dots);
                self.dots_seq = None;
            }
        }
        let skin = match m.skin {
            Some(view) => {
                let block = (STALE_WINDOW_MM * px_per_mm).round().max(2.0) as u32;
                self.now.compute(now, block);
                if self.then_seq != Some(m.seq) || self.then.block != block {
                    self.then.compute(m.image, block);
                    self.then_seq = Some(m.seq);
                }
                // Per block of this frame: whether the scene there changed otherwise than by
                // the head's motion (a block off the masks' frame counts as changed).
                let (colours_now, colours_then) = (&self.now, &self.then);
                self.changed.clear();
                self.changed.extend(colours_now.centres().map(|(p, lab)| {
                    colours_then
                        .at(source_of(p))
                        .is_none_or(|then| delta_e2(lab, then) > STALE_DELTA_E * STALE_DELTA_E)
                }));
                let changed = &self.changed;
                view.warp_into(
                    |p| {
                        let block = colours_now.index_of(p)?;
                        (!changed[block]).then(|| source_of(p))
                    },
                    |_| LEARNED_UNDECIDED,
                    &mut self.skin,
                );
                Some(&self.skin)
            }
            None => None,
        };
        Some(ModelView {
            seq: m.seq,
            image: m.image,
            dots: &self.dots,
            skin,
        })
    }
}

/// Squared CIELAB ΔE*ab.
fn delta_e2(a: [f32; 3], b: [f32; 3]) -> f64 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    f64::from(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
}

/// Mean CIELAB colour of a picture over square blocks, read between block centres.
#[derive(Debug, Default)]
struct BlockColours {
    /// Block side, px.
    block: u32,
    width: u32,
    height: u32,
    cols: usize,
    rows: usize,
    lab: Vec<[f32; 3]>,
    /// Scratch: per block, the sums of R, G, B and the count.
    sums: Vec<[u32; 4]>,
}

impl BlockColours {
    /// The blocks of `image`, `block` px a side, each the mean of its pixels on every second row
    /// and column (sRGB averaged, then CIELAB).
    fn compute(&mut self, image: &RgbImage, block: u32) {
        let (w, h) = image.dimensions();
        let cols = w.div_ceil(block) as usize;
        let rows = h.div_ceil(block) as usize;
        self.sums.clear();
        self.sums.resize(cols * rows, [0; 4]);
        let raw = image.as_raw();
        for y in (0..h).step_by(2) {
            let row = &raw[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
            let sums = &mut self.sums[(y / block) as usize * cols..][..cols];
            for (bx, s) in sums.iter_mut().enumerate() {
                // Every second column of the picture, whichever block it falls in.
                let x0 = bx * block as usize;
                let x1 = (x0 + block as usize).min(w as usize);
                for px in row[3 * (x0 + x0 % 2)..3 * x1].chunks_exact(3).step_by(2) {
                    s[0] += u32::from(px[0]);
                    s[1] += u32::from(px[1]);
                    s[2] += u32::from(px[2]);
                    s[3] += 1;
                }
            }
        }
        self.lab.clear();
        self.lab.extend(self.sums.iter().map(|s| {
            let n = f64::from(s[3].max(1));
            srgb_to_lab_f([
                f64::from(s[0]) / n,
                f64::from(s[1]) / n,
                f64::from(s[2]) / n,
            ])
            .map(|v| v as f32)
        }));
        (self.block, self.width, self.height) = (block, w, h);
        (self.cols, self.rows) = (cols, rows);
    }

    /// Each block's centre (pixels) and colour, row by row.
    fn centres(&self) -> impl Iterator<Item = ([f64; 2], [f32; 3])> + '_ {
        let b = f64::from(self.block);
        self.lab.iter().enumerate().map(move |(i, &lab)| {
            let (c, r) = ((i % self.cols) as f64, (i / self.cols) as f64);
            ([(c + 0.5) * b, (r + 0.5) * b], lab)
        })
    }

    /// The block `p` (pixels) lies in, as an index in [`Self::centres`]' order; `None` off the
    /// picture.
    fn index_of(&self, p: [f64; 2]) -> Option<usize> {
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        if self.lab.is_empty() || !(p[0] >= 0.0 && p[1] >= 0.0 && p[0] < w && p[1] < h) {
            return None;
        }
        let b = f64::from(self.block);
        Some((p[1] / b) as usize * self.cols + (p[0] / b) as usize)
    }

    /// The colour at `p` (pixels), bilinear between block centres; `None` off the picture.
    fn at(&self, p: [f64; 2]) -> Option<[f32; 3]> {
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        if self.lab.is_empty() || !(p[0] >= 0.0 && p[1] >= 0.0 && p[0] < w && p[1] < h) {
            return None;
        }
        let b = f64::from(self.block);
        let u = (p[0] / b - 0.5).clamp(0.0, (self.cols - 1) as f64);
        let v = (p[1] / b - 0.5).clamp(0.0, (self.rows - 1) as f64);
        let (c0, r0) = (u.floor() as usize, v.floor() as usize);
        let (c1, r1) = ((c0 + 1).min(self.cols - 1), (r0 + 1).min(self.rows - 1));
        let (fu, fv) = ((u - c0 as f64) as f32, (v - r0 as f64) as f32);
        let at = |c: usize, r: usize| self.lab[r * self.cols + c];
        let (a, bb, c, d) = (at(c0, r0), at(c1, r0), at(c0, r1), at(c1, r1));
        Some(std::array::from_fn(|k| {
            let top = a[k] * (1.0 - fu) + bb[k] * fu;
            let bottom = c[k] * (1.0 - fu) + d[k] * fu;
            top * (1.0 - fv) + bottom * fv
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_colours_are_the_blocks_means_between_their_centres() {
        // Left half grey 100, right half grey 200, in blocks of 10 px.
        let image = RgbImage::from_fn(40, 20, |x, _| {
            let v = if x < 20 { 100 } else { 200 };
            image::Rgb([v, v, v])
        });
        let mut b = BlockColours::default();
        b.compute(&image, 10);
        let dark = srgb_to_lab_f([100.0; 3])[0] as f32;
        let light = srgb_to_lab_f([200.0; 3])[0] as f32;
        assert!((b.at([5.0, 5.0]).unwrap()[0] - dark).abs() < 1e-3);
        assert!((b.at([35.0, 15.0]).unwrap()[0] - light).abs() < 1e-3);
        // Halfway between the centres of blocks 1 and 2: the mean of the two.
        let mid = b.at([20.0, 5.0]).unwrap()[0];
        assert!((mid - 0.5 * (dark + light)).abs() < 1e-3, "{mid}");
        assert!(b.at([40.0, 5.0]).is_none());
        assert_eq!(b.index_of([35.0, 15.0]), Some(7));
        assert_eq!(b.centres().nth(7).map(|(p, _)| p), Some([35.0, 15.0]));
        assert!(b.at([-0.5, 5.0]).is_none());
    }
}
