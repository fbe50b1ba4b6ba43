//! Integration tests: one binary, a module per area (ripgrep's layout), so the suite links once.

mod accuracy;
mod calib;
mod detect;
<<<<<<< HEAD
mod model;
=======
mod plan;
>>>>>>> main
mod synth;
