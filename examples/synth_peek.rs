//! Renders one synthetic frame and writes it with a zoomed crop, to look at while tuning.
//!
//! `cargo run --example synth_peek -- SEED rig|dermoscope OUT_PREFIX [X Y SIZE ZOOM] [MARK]`

use std::time::Instant;

use stipple::source::synth::{Scene, SceneParams, View};

/// CPU seconds used by this process so far (user + system), from /proc.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

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
    if std::env::var_os("PEEK_BENCH").is_some() {
        let mut live = scene.clone();
        live.set_jpeg_quality(None);
        for jpeg in [false, true] {
            if jpeg {
                live.set_jpeg_quality(Some(85));
            }
            let n = 30;
            let c0 = cpu_s();
            let t = Instant::now();
            for i in 0..n {
                let pose = stipple::source::synth::Pose {
                    dx_mm: i as f64 * 0.1,
                    dy_mm: 0.0,
                    angle_rad: if std::env::var_os("PEEK_NO_TURN").is_some() {
                        0.0
                    } else {
                        i as f64 * 0.01
                    },
                    scale: 1.0,
                };
                std::hint::black_box(live.render(&pose, i));
            }
            eprintln!(
                "render (jpeg {jpeg}) wall {:.2} ms/frame, cpu {:.2} ms/frame",
                t.elapsed().as_secs_f64() * 1e3 / n as f64,
                (cpu_s() - c0) * 1e3 / n as f64
            );
        }
        let c0 = cpu_s();
        for _ in 0..30 {
            std::hint::black_box(live.truth(&Default::default()));
        }
        eprintln!(
            "truth alone cpu {:.2} ms/frame",
            (cpu_s() - c0) * 1e3 / 30.0
        );
        let t = Instant::now();
        for i in 0..100 {
            live.add_pigment(i as f64 * 0.7 - 35.0, 1.0, 0.25, 0.8);
        }
        eprintln!(
            "add_pigment {:.3} ms/dot",
            t.elapsed().as_secs_f64() * 1e3 / 100.0
        );
    }
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
