//! Calibration benchmarks at 1280x720 (views rendered through `calib::render`'s reference
//! camera: blur, noise, glare in one view of three): finding and refining one board (per view;
//! the corner fit included), and the Zhang + Levenberg-Marquardt solve over 14 views' corners.
//! OpenCV's time for the same views (findChessboardCorners + cornerSubPix) comes from
//! `scripts/calib_vs_opencv.py --bench`, in the same way.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use stipple::calib::render::{reference_camera, BoardRenderer};
use stipple::calib::{calibrate_corners, detect_board, BoardSpec, ViewInput};

const SEED: u64 = 2024;
const VIEWS: usize = 14;

fn calib(c: &mut Criterion) {
    let spec = BoardSpec::new(9, 6, 3.0).expect("a valid board");
    let renderer = BoardRenderer::new(reference_camera(), spec);
    let views = renderer.render_views(SEED, VIEWS);
    let mut group = c.benchmark_group("calib");
    group.sample_size(20);
    group.bench_function("detect_board", |b| {
        let mut i = 0;
        b.iter(|| {
            let view = &views[i % views.len()];
            i += 1;
            black_box(detect_board(black_box(&view.image), &spec).ok())
        })
    });
    let inputs: Vec<ViewInput> = views
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            detect_board(&v.image, &spec).ok().map(|corners| ViewInput {
                name: format!("{i:03}.png"),
                corners,
            })
        })
        .collect();
    group.bench_function("solve_14_views", |b| {
        b.iter(|| black_box(calibrate_corners(black_box(&inputs), &spec).ok()))
    });
    group.finish();
}

criterion_group!(benches, calib);
criterion_main!(benches);
