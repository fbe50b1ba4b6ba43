//! Tables written by the fitting scripts in `models/train/` (each file says which): not edited
//! by hand. Each carries the feature names it was fitted on; `perception::dermoscope` tests
//! that the Rust feature order matches them.

pub mod openings_model;
pub mod pits_model;
pub mod roots_model;
