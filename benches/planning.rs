//! Planner benchmarks: a full plan for a 1280x720 rig frame with 5,000 existing dots (the
//! planner core on a dot list, and the whole image path with the skin analysis), and one
//! incremental update as the artist places a dot.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stipple::frame::{Detection, DotKind};
use stipple::planning::{plan_image, ExistingDot, ExistingKind, PlanInput, Planner, PlannerConfig};

const PX_PER_MM: f64 = 12.0;
const SIZE: (u32, u32) = (1280, 720);

/// 5,000 follicles thinning from dense (left, ~130/cm²) to bare (right), as detections in
/// pixels: at 12 px/mm the frame is 107 x 60 mm, so about half of it is below 70/cm².
fn detections(n: usize) -> Vec<Detection> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (w, h) = (f64::from(SIZE.0), f64::from(SIZE.1));
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x = rng.gen_range(0.0..w);
        let y = rng.gen_range(0.0..h);
        if rng.gen::<f64>() < 1.0 - x / w {
            out.push(Detection {
                x,
                y,
                radius: 2.0,
                kind: DotKind::Follicle,
                score: 0.9,
                hairs: None,
            });
        }
    }
    out
}

/// The image the detections came from: skin with a dark disc at every detection.
fn image_of(dets: &[Detection]) -> image::RgbImage {
    let mut img = image::RgbImage::from_pixel(SIZE.0, SIZE.1, image::Rgb([196, 150, 128]));
    for d in dets {
        imageproc::drawing::draw_filled_circle_mut(
            &mut img,
            (d.x as i32, d.y as i32),
            2,
            image::Rgb([70, 50, 45]),
        );
    }
    img
}

fn bench_planning(c: &mut Criterion) {
    let dets = detections(5_000);
    let existing: Vec<ExistingDot> = dets
        .iter()
        .map(|d| ExistingDot {
            x_mm: d.x / PX_PER_MM,
            y_mm: d.y / PX_PER_MM,
            radius_mm: d.radius / PX_PER_MM,
            kind: ExistingKind::Follicle,
            shade: Some(0.7),
        })
        .collect();
    let input = PlanInput {
        frame_mm: [f64::from(SIZE.0) / PX_PER_MM, f64::from(SIZE.1) / PX_PER_MM],
        existing,
        design: None,
        guard: None,
        skin: None,
        kept: Vec::new(),
    };
    let config = PlannerConfig::new(70.0, 0.7);
    let image = image_of(&dets);
    let mut group = c.benchmark_group("planning");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("plan_dots", "1280x720_5000"), |b| {
        b.iter(|| Planner::new(config.clone(), black_box(input.clone())))
    });
    group.bench_function(BenchmarkId::new("plan_image", "1280x720_5000"), |b| {
        b.iter(|| {
            plan_image(
                black_box(&image),
                PX_PER_MM,
                &dets,
                None,
                None,
                None,
                config.clone(),
            )
        })
    });
    let planner = Planner::new(config.clone(), input.clone()).expect("plan");
    let recs: Vec<(f64, f64)> = planner.pending().map(|r| (r.x_mm, r.y_mm)).collect();
    let mut k = 0usize;
    group.bench_function(
        BenchmarkId::new("add_existing", "on_a_recommendation"),
        |b| {
            b.iter_batched(
                || planner.clone(),
                |mut p| {
                    k = (k + 7) % recs.len();
                    let (x, y) = recs[k];
                    let _ = p.add_existing(ExistingDot {
                        x_mm: x + 0.05,
                        y_mm: y,
                        radius_mm: 0.15,
                        kind: ExistingKind::Pigment,
                        shade: None,
                    });
                    p
                },
                BatchSize::LargeInput,
            )
        },
    );
    group.bench_function(
        BenchmarkId::new("add_existing", "between_recommendations"),
        |b| {
            b.iter_batched(
                || planner.clone(),
                |mut p| {
                    k = (k + 7) % recs.len();
                    let (x, y) = recs[k];
                    let _ = p.add_existing(ExistingDot {
                        x_mm: x + 0.45,
                        y_mm: y + 0.1,
                        radius_mm: 0.12,
                        kind: ExistingKind::Follicle,
                        shade: None,
                    });
                    p
                },
                BatchSize::LargeInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, bench_planning);
criterion_main!(benches);
