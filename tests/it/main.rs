//! Integration tests: one binary, a module per area (ripgrep's layout), so the suite links once.

mod accuracy;
mod detect;
mod model;
mod synth;
