//! Renders one synthetic frame and writes it with a zoomed crop, to look at while tuning.
//!
//! `cargo run --example synth_peek -- SEED rig|dermoscope OUT_PREFIX [X Y SIZE ZOOM] [MARK]`

use std::time::Instant;

use stipple::source::synth::{Scene, SceneParams, View};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let seed: u64 = a.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let view = if a.get(2).map(String::as_str) == Some("dermoscope") {
        View::Dermoscope
    } else {
        View::Rig
    };
    let out = a.get(3).cloned().unwrap_or_else(|| "/tmp/peek".into());
    let num = |i: usize, d: u32| a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (x, y, size, zoom) = (num(4, 500), num(5, 250), num(6, 300), num(7, 2));
    let mark = a.get(8).is_some();
    let t = Instant::now();
    let scene = Scene::generate(&SceneParams::new(seed, view));
    let t_gen = t.elapsed();
    let t = Instant::now();
    let frame = scene.render(&Default::default(), seed);
    eprintln!(
        "generate {t_gen:?} render {:?} ppm {:.1} fitz {} units {} pigment {} neg {:?}",
        t.elapsed(),
        frame.truth.px_per_mm,
        frame.truth.fitzpatrick,
        frame.truth.units.len(),
        frame.truth.pigment.len(),
        frame
            .truth
            .negatives
            .iter()
            .map(|n| format!("{:?}", n.kind))
            .collect::<Vec<_>>()
    );
    frame.image.save(format!("{out}.png"))?;
    let mut crop = image::RgbImage::new(size * zoom, size * zoom);
    for cy in 0..size * zoom {
        for cx in 0..size * zoom {
            let (sx, sy) = (x + cx / zoom, y + cy / zoom);
            if sx < frame.image.width() && sy < frame.image.height() {
                crop.put_pixel(cx, cy, *frame.image.get_pixel(sx, sy));
            }
        }
    }
    if mark {
        let mut put = |px: f64, py: f64, c: [u8; 3]| {
            let (cx, cy) = ((px - x as f64) * zoom as f64, (py - y as f64) * zoom as f64);
            if cx >= 0.0 && cy >= 0.0 && (cx as u32) < size * zoom && (cy as u32) < size * zoom {
                crop.put_pixel(cx as u32, cy as u32, image::Rgb(c));
            }
        };
        for u in &frame.truth.units {
            let c = if u.miniaturised {
                [0, 255, 255]
            } else {
                [0, 255, 0]
            };
            for k in 0..24 {
                let a = k as f64 / 24.0 * std::f64::consts::TAU;
                put(
                    u.x + (u.radius + 3.0) * a.cos(),
                    u.y + (u.radius + 3.0) * a.sin(),
                    c,
                );
            }
        }
        for p in &frame.truth.pigment {
            for k in 0..24 {
                let a = k as f64 / 24.0 * std::f64::consts::TAU;
                put(
                    p.x + (p.radius + 3.0) * a.cos(),
                    p.y + (p.radius + 3.0) * a.sin(),
                    [255, 0, 255],
                );
            }
        }
    }
    crop.save(format!("{out}_crop.png"))?;
    Ok(())
}
