//! Tables written by the fitting scripts in `models/train/` (each file says which): not edited
//! by hand. Each carries the feature names it was fitted on; `perception::rig::kinds` tests that
//! the Rust feature order matches them.

pub mod kind_context_model;
pub mod kind_model;
