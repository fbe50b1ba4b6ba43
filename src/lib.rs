//! Stipple: machine-vision guidance for scalp micropigmentation (SMP).
//!
//! # Layout
//!
//! The modules follow the data flow of a session at the chair:
//!
//! - [`source`]: where frames come from. `source::synth` is the project's own synthetic scalp
//!   renderer (the demo camera, the test oracle and the model's training data).
//! - [`perception`]: what is already on the skin. `perception::rig::blobs` is the classical,
//!   scale-aware dot detector, `perception::kinds` settles follicle or pigment per frame,
//!   `perception::dermoscope::shafts` finds dermoscope openings from hair shafts; `perception::segment` runs the learned segmentation model
//!   (`models/stipple-seg.onnx`) through ONNX Runtime; `perception::fuse` combines the two, and
//!   `perception::Detector` is what callers use; `eval::detect` scores detections against
//!   ground truth.
//! - [`registration`]: keeps the plan on the skin: registers each frame's dots to the skin map.
//! - [`session`]: the live session (detect, register, plan, overlay message), synchronous.
//! - [`pipeline`]: the topology of `stipple serve`: capture, processing and encoder threads,
//!   latest-frame-wins hand-offs, the broadcast to viewers. [`server`] is the page, API and
//!   WebSocket; [`metrics`], [`mailbox`], [`shutdown`] and [`config`] support them.
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
//! - [`frame`]: the types that flow between stages.
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

pub use frame::{Detection, DotKind, Frame, FrameMeta, View};
