//! Drawing for people: existing dots and the plan on top of a frame. Plain synchronous
//! functions, reused by `stipple plan --overlay` and the live service.

pub mod draw;

pub use draw::{
    draw_plan, draw_plan_mut, shade_declined_mut, OverlayDot, OverlayKind, OverlayStyle,
    OverlayZone,
};
