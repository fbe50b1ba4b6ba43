//! Classical detection (`perception::rig::blobs`) on synthetic rig frames at three sizes, and the
//! dermoscope opening detector (`perception::dermoscope::shafts`) on one 1280x1024 trichoscopy frame,
//! the skin mask (`perception::skin_mask`) on a 1280x720 rig frame at the chair, and the live
//! path's whole classical detection (`perception::rig`) on that frame.
//!
//! `cargo bench --bench detect`. The frame is rendered once, outside the timed loop, at 20 px/mm;
//! the detector is built once and reused, as the live pipeline does.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use stipple::perception::{BlobConfig, BlobDetector, FuseConfig, RigDetector, SkinMasker};
use stipple::source::synth::{render, ChairKind, Pose, Scene, SceneParams, View};

const SIZES: [(u32, u32); 3] = [(640, 480), (1280, 720), (1920, 1080)];
const PX_PER_MM: f64 = 20.0;

/// The frames: rig views at three sizes, then one dermoscope view at its native 300 px/mm, with
/// their bench names.
fn frames() -> Vec<(&'static str, String, SceneParams)> {
    let mut out: Vec<_> = SIZES
        .iter()
        .map(|&(w, h)| {
            let mut params = SceneParams::new(4242, View::Rig);
            params.width = w;
            params.height = h;
            params.px_per_mm = Some(PX_PER_MM);
            ("blobs", format!("{w}x{h}"), params)
        })
        .collect();
    out.push((
        "dermoscope",
        "1280x1024".into(),
        SceneParams::new(4243, View::Dermoscope),
    ));
    out
}

fn bench_detect(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect");
    group.sample_size(20);
    for (name, size, params) in frames() {
        let frame = render(&params);
        let mut detector = BlobDetector::new(BlobConfig {
            px_per_mm: frame.truth.px_per_mm,
        });
        let mut out = Vec::new();
        group.bench_with_input(BenchmarkId::new(name, size), &frame.image, |b, img| {
            b.iter(|| {
                detector.detect_into(black_box(img), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// A 1280x720 rig frame at the chair (gloves, machine, hair, room) at 20 px/mm.
fn chair_frame(seed: u64) -> image::RgbImage {
    let mut params = SceneParams::new(seed, View::Rig);
    params.px_per_mm = Some(PX_PER_MM);
    let mut scene = Scene::generate(&params);
    scene.set_chair(Some(ChairKind::Working), true);
    scene.render(&Pose::default(), seed).image
}

fn bench_skin_mask(c: &mut Criterion) {
    let frame = chair_frame(4244);
    let mut masker = SkinMasker::new();
    let mut group = c.benchmark_group("skin_mask");
    group.sample_size(20);
    group.bench_with_input(BenchmarkId::new("chair", "1280x720"), &frame, |b, img| {
        b.iter(|| black_box(masker.compute(black_box(img), PX_PER_MM).fraction()))
    });
    group.finish();
}

/// The live path's classical detection on a frame at the chair: the skin mask beside the
/// darkness peaks, the regions measured, kinds, dots kept on the skin.
fn bench_rig_chair(c: &mut Criterion) {
    let frame = chair_frame(4245);
    let mut detector = RigDetector::new(PX_PER_MM, None, FuseConfig::default());
    let mut out = Vec::new();
    let mut group = c.benchmark_group("rig");
    group.sample_size(20);
    group.bench_with_input(BenchmarkId::new("chair", "1280x720"), &frame, |b, img| {
        b.iter(|| {
            detector.detect_classical_into(black_box(img), &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_detect, bench_skin_mask, bench_rig_chair);
criterion_main!(benches);
