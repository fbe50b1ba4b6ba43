//! Scoring a skin mask against the renderer's truth mask of what is not skin.

use crate::perception::SkinMask;
use crate::source::synth::MaskRuns;

/// How a skin mask compares with the truth, by pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskScore {
    /// Intersection over union of the skin regions.
    pub iou: f64,
    /// Fraction of the frame that is skin in the truth.
    pub true_fraction: f64,
    /// Fraction of the frame the mask calls skin.
    pub fraction: f64,
}

/// Scores `mask` against `not_skin` (the truth; `None`: all skin).
pub fn score_mask(mask: &SkinMask, not_skin: Option<&MaskRuns>) -> MaskScore {
    let (w, h) = mask.dimensions();
    let truth = not_skin.map(MaskRuns::to_mask);
    let (mut inter, mut union, mut truth_skin, mut ours) = (0u64, 0u64, 0u64, 0u64);
    for y in 0..h {
        for x in 0..w {
            let t = truth.as_ref().is_none_or(|m| m.get_pixel(x, y)[0] == 0);
            let o = mask.is_skin(f64::from(x) + 0.5, f64::from(y) + 0.5);
            inter += u64::from(t && o);
            union += u64::from(t || o);
            truth_skin += u64::from(t);
            ours += u64::from(o);
        }
    }
    let n = (u64::from(w) * u64::from(h)).max(1) as f64;
    MaskScore {
        iou: if union == 0 {
            1.0
        } else {
            inter as f64 / union as f64
        },
        true_fraction: truth_skin as f64 / n,
        fraction: ours as f64 / n,
    }
}
