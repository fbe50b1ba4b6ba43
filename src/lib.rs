//! Stipple: machine-vision guidance for scalp micropigmentation (SMP).
//!
//! # Layout
//!
//! The modules follow the data flow of a session at the chair:
//!
//! - [`source`]: where frames come from. `source::synth` is the project's own synthetic scalp
//!   renderer (the demo camera, the test oracle and the model's training data).
//! - [`frame`], [`geometry`], [`limits`]: the ground floor: the types that flow between stages
//!   (with [`View`], how the camera sees the skin), polygons, the one spatial grid, similarity
//!   transforms, and the bounds on every input.
//! - [`perception`]: what is already on the skin, by imaging view: `perception::rig` (classical
//!   blobs, the per-frame kind mixture, fusion with the dot model) and `perception::dermoscope`
//!   (field preparation, the shaft tracer, pits, fusion with the openings model), behind one
//!   `perception::Detector`; `perception::segment` runs the ONNX models.
//! - [`registration`]: keeps the plan on the skin: registers each frame's dots to the skin map.
//! - [`session`]: the live session (detect, register, plan, overlay message), synchronous.
//! - [`pipeline`]: the topology of `stipple serve`: capture, processing and encoder threads,
//!   latest-frame-wins hand-offs, the broadcast to viewers. [`server`] is the page, API and
//!   WebSocket; [`metrics`], [`mailbox`], [`shutdown`], [`threads`] and [`config`] support them.
//! - [`record`]: recording sessions to MCAP (`serve --record`), replaying them
//!   (`stipple replay`), the training report and the touch-up comparison.
//! - [`planning`]: where the next dots go. A variable-density blue-noise sampler that keeps
//!   the minimum spacing to every dot, follows a treatment design (hairline, fill, scar, no-go
//!   zones), layers the density over sessions and updates incrementally as dots appear.
//! - [`overlay`]: drawing existing dots and the plan onto a frame, for people to look at.
//! - [`calib`]: camera rig calibration: chessboard detection, Zhang + Levenberg-Marquardt
//!   (Brown-Conrady, OpenCV's model), px/mm at the skin, `calibration/*.toml` files, the live
//!   calibrator, the service's calibration mode (with a synthetic held board) and the synthetic
//!   board renderer. See `docs/calibration.md`.
//! - [`eval`]: scoring detections and plans against the renderer's ground truth.
//! - [`cli`]: the command-line front end (`stipple synth`, `stipple calibrate`,
//!   `stipple synth-board`, ...), one file per
//!   sub-command; `src/main.rs` only parses arguments and calls into it.
#![deny(missing_docs)]

pub mod calib;
pub mod cli;
pub mod config;
pub mod eval;
pub mod frame;
pub mod geometry;
pub mod limits;
pub mod mailbox;
pub mod metrics;
pub mod overlay;
pub mod perception;
pub mod pipeline;
pub mod planning;
pub mod record;
pub mod registration;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod source;
pub mod threads;

pub use frame::{Detection, DotKind, Frame, FrameMeta, View};
