//! One whole frame through the live pipeline's stages (detect, register + plan, JPEG), and
//! each stage alone, at the synthetic source's 1280x720 (and 640x360 for scale).
//!
//! `cargo bench --bench pipeline`. The synthetic head is rendered outside `b.iter`; the session
//! is warmed up first so that registration works against a populated skin map.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use stipple::mailbox::Mailbox;
use stipple::session::{LiveSession, SessionConfig};
use stipple::source::{DemoConfig, DemoSource};
use stipple::{Frame, FrameMeta};

fn frames(w: u32, h: u32, n: usize) -> (Vec<Frame>, Vec<stipple::registration::Similarity>) {
    let mut demo = DemoSource::new(
        DemoConfig {
            width: w,
            height: h,
            ..DemoConfig::new(1)
        },
        Arc::new(Mailbox::new()),
    );
    demo.free_run();
    let mut out = Vec::new();
    let mut truth = Vec::new();
    for seq in 0..n as u64 {
        let f = demo.next_frame();
        out.push(Frame {
            meta: FrameMeta {
                seq,
                captured_at: Instant::now(),
                camera_id: 0,
            },
            image: Arc::new(f.image),
        });
        truth.push(f.image_from_scene);
    }
    (out, truth)
}

fn bench_pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(20);
    for (w, h) in [(1280u32, 720u32), (640, 360)] {
        let size = format!("{w}x{h}");
        let (frames, truth) = frames(w, h, 30);
        let mut session = LiveSession::new(SessionConfig::new(20.0));
        for (f, t) in frames.iter().zip(&truth) {
            let _ = session.process(f, Some(t));
        }
        let mut jpeg = Vec::new();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("frame", &size), |b| {
            b.iter(|| {
                let f = &frames[i % frames.len()];
                i += 1;
                let overlay = session
                    .process(f, Some(&truth[i % truth.len()]))
                    .expect("frame");
                stipple::server::jpeg::encode_jpeg(&f.image, 70, &mut jpeg).expect("jpeg");
                black_box(serde_json::to_string(&overlay).expect("json"));
            })
        });
        group.bench_function(BenchmarkId::new("detect", &size), |b| {
            b.iter(|| black_box(session.detect(&frames[0]).expect("detect")))
        });
        let p = session.detect(&frames[1]).expect("detect");
        group.bench_function(BenchmarkId::new("register_plan", &size), |b| {
            b.iter(|| black_box(session.update(&p, None)))
        });
        group.bench_function(BenchmarkId::new("jpeg", &size), |b| {
            b.iter(|| {
                stipple::server::jpeg::encode_jpeg(&frames[0].image, 70, &mut jpeg).expect("jpeg")
            })
        });
        // The capture thread's share of a live frame: the plate warp and the hand. No dots are
        // placed here, since the live source repaints its plate on another thread.
        let mut source = DemoSource::new(
            DemoConfig {
                width: w,
                height: h,
                dots_per_second: 0.0,
                hand_from_s: 0.0,
                ..DemoConfig::new(1)
            },
            Arc::new(Mailbox::new()),
        );
        source.free_run();
        group.bench_function(BenchmarkId::new("render", &size), |b| {
            b.iter(|| black_box(source.next_frame()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
