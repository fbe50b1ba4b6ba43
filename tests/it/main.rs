//! Integration tests, one module per area, linked into a single binary.

mod synth;
