//! Integration tests: one binary, a module per area (ripgrep's layout), so the suite links once.

mod accuracy;
mod calib;
mod calib_live;
mod detect;
mod fdu;
mod model;
mod plan;
mod record;
mod serve;
mod synth;
