//! Integration tests: one binary, a module per area (ripgrep's layout), so the suite links once.

mod accuracy;
mod bad_input;
mod calib;
mod calib_live;
mod calib_scale;
mod chair;
mod detect;
mod fdu;
mod foxglove;
mod fuzz;
mod layers;
mod lens;
mod live;
mod model;
mod plan;
mod record;
mod security;
mod serve;
mod synth;
