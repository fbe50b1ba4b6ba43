//! Frame sources. `synth` renders a synthetic scalp with full ground truth; `file` loads stills.

pub mod file;
pub mod synth;
