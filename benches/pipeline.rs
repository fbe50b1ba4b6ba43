//! One whole frame through the live pipeline's stages (detect, register + plan, JPEG), and
//! each stage alone, at the synthetic source's 1280x720 (and 640x360 for scale).
//!
//! `masks_unmoved` / `masks_warped`: detection fused with the model thread's masks of a frame
//! 9 frames back, read as they are and warped into the frame (the warp's cost).
//!
//! `cargo bench --bench pipeline`. The synthetic head is rendered outside `b.iter`; the session
//! is warmed up first so that registration works against a populated skin map.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use stipple::mailbox::Mailbox;
use stipple::session::{LiveSession, ModelView, SessionConfig};
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
        if w == 1280 {
            // The model thread's masks, made on a frame 9 frames back, fused as they are (told
            // they are this frame's) and warped into this frame: the warp's cost is the
            // difference.
            let ppm = 20.0;
            let made_on = &frames[frames.len() - 10];
            let mut dots_model = stipple::perception::OnnxSegmenter::bundled_for(
                ppm,
                &stipple::perception::SegmentConfig::default(),
            )
            .expect("bundled dot model");
            let mut skin_model =
                stipple::perception::OnnxSegmenter::bundled_skin().expect("bundled skin model");
            let dots = dots_model
                .segment(&made_on.image, ppm)
                .expect("dot model")
                .clone();
            let skin = skin_model
                .segment(&made_on.image, ppm)
                .expect("skin model")
                .clone();
            let now = &frames[frames.len() - 1];
            for (label, seq) in [
                ("masks_unmoved", now.meta.seq),
                ("masks_warped", made_on.meta.seq),
            ] {
                group.bench_function(BenchmarkId::new(label, &size), |b| {
                    b.iter(|| {
                        let view = ModelView {
                            seq,
                            image: &made_on.image,
                            dots: &dots,
                            skin: Some(&skin),
                        };
                        black_box(session.detect_with_mask(now, Some(view)).expect("detect"))
                    })
                });
            }
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
