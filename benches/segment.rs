//! Criterion benches of the segmentation model alone and of fused detection, at 1280x720 (rig,
//! 20 px/mm, the dot model) and 1280x1024 (dermoscope, 300 px/mm, the openings model), with ONNX
//! Runtime on 2 intra-op threads; and the skin model alone at 1280x720 on one thread.
//! Needs the ONNX Runtime library from `scripts/setup.sh`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use stipple::perception::{Detector, FuseConfig, OnnxSegmenter, SegmentConfig, Segmenter};
use stipple::source::synth::{render, SceneParams, View};

/// The frames: (label, view, px/mm).
const FRAMES: [(&str, View, f64); 2] = [
    ("1280x720", View::Rig, 20.0),
    ("1280x1024-dermoscope", View::Dermoscope, 300.0),
];

fn cfg() -> SegmentConfig {
    SegmentConfig { intra_threads: 2 }
}

fn bench_model(c: &mut Criterion) {
    let mut group = c.benchmark_group("segment");
    group.sample_size(30);
    for (label, view, ppm) in FRAMES {
        let frame = render(&SceneParams {
            px_per_mm: Some(ppm),
            ..SceneParams::new(9000, view)
        });
        let mut seg = OnnxSegmenter::bundled_for(ppm, &cfg()).expect("bundled model");
        group.bench_function(BenchmarkId::new("model", label), |b| {
            b.iter(|| {
                let mask = seg.segment(black_box(&frame.image), ppm).expect("segment");
                black_box(mask.cols);
            })
        });
    }
    group.finish();
}

/// The skin model alone (one intra-op thread, as the skin mask and the live model thread run it)
/// on a rig frame at 20 px/mm: 384x216 at its 6 px/mm.
fn bench_skin_model(c: &mut Criterion) {
    let mut group = c.benchmark_group("segment");
    group.sample_size(30);
    let frame = render(&SceneParams {
        px_per_mm: Some(20.0),
        ..SceneParams::new(9000, View::Rig)
    });
    let mut seg = OnnxSegmenter::bundled_skin().expect("bundled skin model");
    group.bench_function(BenchmarkId::new("skin_model", "1280x720"), |b| {
        b.iter(|| {
            let mask = seg.segment(black_box(&frame.image), 20.0).expect("segment");
            black_box(mask.cols);
        })
    });
    group.finish();
}

fn bench_detect(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect_fused");
    group.sample_size(20);
    for (label, view, ppm) in FRAMES {
        let frame = render(&SceneParams {
            px_per_mm: Some(ppm),
            ..SceneParams::new(9000, view)
        });
        let seg = OnnxSegmenter::bundled_for(ppm, &cfg()).expect("bundled model");
        let mut fused = Detector::fused(ppm, Segmenter::Onnx(Box::new(seg)), FuseConfig::default())
            .expect("the bundled model suits the scale");
        let mut classical = Detector::classical(ppm);
        let mut out = Vec::new();
        group.bench_function(BenchmarkId::new("fused", label), |b| {
            b.iter(|| {
                fused
                    .detect_into(black_box(&frame.image), &mut out)
                    .expect("detect");
                black_box(out.len());
            })
        });
        group.bench_function(BenchmarkId::new("classical", label), |b| {
            b.iter(|| {
                classical
                    .detect_into(black_box(&frame.image), &mut out)
                    .expect("detect");
                black_box(out.len());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_model, bench_skin_model, bench_detect);
criterion_main!(benches);
