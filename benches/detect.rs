//! Classical detection (`perception::blobs`) on synthetic rig frames at three sizes, and the
//! dermoscope opening detector (`perception::shafts`) on one 1280x1024 trichoscopy frame.
//!
//! `cargo bench --bench detect`. The frame is rendered once, outside the timed loop, at 20 px/mm;
//! the detector is built once and reused, as the live pipeline does.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use stipple::perception::{BlobConfig, BlobDetector};
use stipple::source::synth::{render, SceneParams, View};

const SIZES: [(u32, u32); 3] = [(640, 480), (1280, 720), (1920, 1080)];
const PX_PER_MM: f64 = 20.0;

fn bench_detect(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect");
    group.sample_size(20);
    for (w, h) in SIZES {
        let mut params = SceneParams::new(4242, View::Rig);
        params.width = w;
        params.height = h;
        params.px_per_mm = Some(PX_PER_MM);
        let frame = render(&params);
        let mut detector = BlobDetector::new(BlobConfig {
            px_per_mm: PX_PER_MM,
        });
        let mut out = Vec::new();
        group.bench_with_input(
            BenchmarkId::new("blobs", format!("{w}x{h}")),
            &frame.image,
            |b, img| {
                b.iter(|| {
                    detector.detect_into(black_box(img), &mut out);
                    black_box(out.len())
                })
            },
        );
    }
    group.finish();
}

/// The dermoscope path (`perception::shafts`): one 1280x1024 trichoscopy frame at 300 px/mm.
fn bench_dermoscope(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect");
    group.sample_size(20);
    let frame = render(&SceneParams::new(4243, View::Dermoscope));
    let ppm = frame.truth.px_per_mm;
    let mut detector = BlobDetector::new(BlobConfig { px_per_mm: ppm });
    let mut out = Vec::new();
    group.bench_with_input(
        BenchmarkId::new("dermoscope", "1280x1024"),
        &frame.image,
        |b, img| {
            b.iter(|| {
                detector.detect_into(black_box(img), &mut out);
                black_box(out.len())
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench_detect, bench_dermoscope);
criterion_main!(benches);
