//! Frame sources. `synth` renders a synthetic scalp with full ground truth.

pub mod synth;
