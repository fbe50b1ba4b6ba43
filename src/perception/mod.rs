//! Perception: what is already on the skin.
