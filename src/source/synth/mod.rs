//! The synthetic scalp renderer: deterministic from a seed, with full ground truth.

pub mod truth;

pub use truth::{
    NegativeKind, Shape, Truth, TruthHair, TruthNegative, TruthPigment, TruthUnit, View,
};
