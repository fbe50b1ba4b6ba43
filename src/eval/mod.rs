//! Scoring against the renderer's ground truth: detections ([`detect`]) and plans ([`plan`]),
//! the way the product is judged. Used by `stipple score`, the tests, the tuning programs and
//! the evaluation scripts; nothing in the live pipeline depends on it.

pub mod detect;
pub mod plan;
pub mod skin;
pub mod visible;

pub use detect::{score_frame, Score};
pub use plan::{score_plan, PlanScore};
pub use visible::{score_frame_visible, skin_group, Visibility, SKIN_GROUPS};
