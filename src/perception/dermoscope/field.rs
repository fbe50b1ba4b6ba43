//! Field preparation for dermoscope frames: which rows are a burned-in text bar and not skin.
//! The shaft tracer, the pit finder and the real-photo scorers all leave those rows out.

use image::RgbImage;

/// A pixel whose channels differ by at most this (8-bit levels) is neutral grey.
const BAR_CHROMA_LEVELS: i16 = 14;
/// A row is part of a text bar when at least this share of it is neutral grey.
const BAR_NEUTRAL_SHARE: f64 = 0.85;
/// A text bar is at most this share of the frame height.
const BAR_MAX_SHARE: f64 = 0.2;

/// Rows (full resolution) of a burned-in text bar at the top and at the bottom: the leading
/// rows of which at least `BAR_NEUTRAL_SHARE` is neutral grey.
pub fn text_bar_rows(image: &RgbImage) -> (usize, usize) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let raw = image.as_raw();
    let neutral_row = |y: usize| {
        let row = &raw[3 * y * w..3 * (y + 1) * w];
        let n = row
            .chunks_exact(6)
            .filter(|px| {
                let (r, g, b) = (i16::from(px[0]), i16::from(px[1]), i16::from(px[2]));
                r.max(g).max(b) - r.min(g).min(b) <= BAR_CHROMA_LEVELS
            })
            .count();
        n as f64 >= BAR_NEUTRAL_SHARE * (w / 2).max(1) as f64
    };
    let max_rows = (BAR_MAX_SHARE * h as f64) as usize;
    let top = (0..max_rows).take_while(|&y| neutral_row(y)).count();
    let bottom = (0..max_rows)
        .take_while(|&k| neutral_row(h - 1 - k))
        .count();
    // A bar fills the whole frame only when the frame is not skin at all.
    if top >= max_rows || bottom >= max_rows {
        return (0, 0);
    }
    (top, bottom)
}
