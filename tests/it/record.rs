//! Recording and replay (issue 8): `serve --record` gives a valid, indexed MCAP holding every
//! processed frame; `kill -9` loses at most the last moment; replay serves the recorded
//! overlay frame for frame; a re-run reproduces the recorded detections exactly; the training
//! report gets a known session's numbers right; malformed files fail clearly.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use stipple::frame::{Detection, DotKind};
use stipple::planning::{Design, Zone, ZoneKind};
use stipple::record::schema::{self, DetectionsMsg, SessionInfo};
use stipple::record::{
    compare, replay, report, rerun, FrameRecord, RecordError, Recorder, Recording,
};
use stipple::registration::Similarity;
use stipple::session::{OverlayMsg, PlacedDot, PlanSnapshot};
use tokio_tungstenite::tungstenite::Message;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub(crate) fn free_addr() -> Result<SocketAddr, std::io::Error> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Minimal blocking HTTP/1.0 request; the body of a 200 answer.
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no body")?;
    if !head.contains(" 200 ") {
        return Err(format!("{method} {path}: {head}"));
    }
    Ok(body.to_string())
}

pub(crate) fn status(addr: SocketAddr) -> Option<serde_json::Value> {
    http(addr, "GET", "/api/status", "")
        .ok()
        .and_then(|b| serde_json::from_str(&b).ok())
}

/// Starts `stipple serve --record` on the small synthetic source with the bundled model.
fn start_recording(
    file: &Path,
) -> Result<(Child, SocketAddr), Box<dyn std::error::Error + Send + Sync>> {
    let addr = free_addr()?;
    let child = Command::new(env!("CARGO_BIN_EXE_stipple"))
        .args([
            "serve",
            "--bind",
            &addr.to_string(),
            "--width",
            "640",
            "--height",
            "360",
            // A type III scalp with healed ink: the touch-up comparison needs pigment in the
            // map from the start (seed 1, type V without ink, has only what the needle places).
            "--seed",
            "3",
            "--record",
        ])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok((child, addr))
}

/// Waits until the service has processed `frames` frames; its last status.
fn wait_for_frames(
    addr: SocketAddr,
    frames: u64,
    limit: Duration,
) -> Result<serde_json::Value, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = status(addr) {
            if s["frames_processed"].as_u64() >= Some(frames) {
                return Ok(s);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("fewer than {frames} frames in {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn wait_exit(
    child: &mut Child,
    limit: Duration,
) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("did not stop".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One recording for the tests that only read it: the synthetic source with the bundled
/// model, stopped with SIGINT after 240 processed frames (the simulated artist places the
/// first dot after about 75 on seed 1, a few more by 240).
fn recorded() -> &'static Result<PathBuf, String> {
    static FILE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stipple-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let file = dir.join("session.mcap");
        let (mut child, addr) = start_recording(&file).map_err(|e| e.to_string())?;
        let waited = wait_for_frames(addr, 240, Duration::from_secs(120));
        // SIGINT, as Ctrl-C: the clean stop.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let exit = wait_exit(&mut child, Duration::from_secs(30))?;
        waited?;
        if !exit.success() {
            return Err(format!("serve exited with {exit}"));
        }
        Ok(file)
    })
}

fn recorded_file() -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    recorded().clone().map_err(Into::into)
}

#[test]
fn sigint_leaves_a_valid_indexed_mcap_with_every_processed_frame() -> TestResult {
    let file = recorded_file()?;
    let bytes = std::fs::read(&file)?;
    // The summary, the chunk index and the statistics are there (a clean finish).
    let summary = mcap::Summary::read(&bytes)?.ok_or("no summary: not finished cleanly")?;
    assert!(
        summary.chunk_indexes.len() > 1,
        "{} chunks",
        summary.chunk_indexes.len()
    );
    let stats = summary.stats.as_ref().ok_or("no statistics")?;
    let topics: Vec<&str> = summary
        .channels
        .values()
        .map(|c| c.topic.as_str())
        .collect();
    // Every channel that has messages, and no empty one: without a calibration there is no
    // calibration channel (issue 21).
    for (topic, _) in schema::CHANNELS {
        assert_eq!(
            topics.contains(&topic),
            topic != schema::TOPIC_CALIBRATION,
            "{topic} in {topics:?}"
        );
    }
    for (id, count) in &stats.channel_message_counts {
        assert!(*count > 0, "channel {id} has no message");
    }
    let mut per_topic = std::collections::BTreeMap::<String, u64>::new();
    let mut last_stats = None;
    let mut n = 0u64;
    for m in mcap::MessageStream::new(&bytes)? {
        let m = m?;
        n += 1;
        *per_topic.entry(m.channel.topic.clone()).or_default() += 1;
        if m.channel.topic == schema::TOPIC_RECORDER {
            last_stats = Some(serde_json::from_slice::<schema::RecorderStatsMsg>(&m.data)?);
        }
    }
    assert_eq!(n, stats.message_count);
    let rs = last_stats.ok_or("no recorder statistics")?;
    assert!(rs.last, "the last statistics are marked last: {rs:?}");
    // Every frame the pipeline processed was offered; every one offered is written or counted
    // as dropped; every one written has its picture, overlay, detections, plan, annotations.
    assert_eq!(
        rs.frames_offered,
        rs.frames_written + rs.frames_dropped,
        "{rs:?}"
    );
    assert!(rs.frames_written >= 90, "{rs:?}");
    for topic in [
        schema::TOPIC_IMAGE,
        schema::TOPIC_OVERLAY,
        schema::TOPIC_DETECTIONS,
        schema::TOPIC_PLAN,
        schema::TOPIC_ANNOTATIONS,
    ] {
        assert_eq!(
            per_topic.get(topic).copied(),
            Some(rs.frames_written),
            "{topic}: {per_topic:?}"
        );
    }
    let rec = Recording::open(&file)?;
    assert!(rec.finished && rec.damage.is_none());
    assert_eq!(rec.frames.len() as u64, rs.frames_written);
    assert_eq!(rec.info.format_version, schema::FORMAT_VERSION);
    assert_eq!(
        rec.designs.first().map(|d| d.seq),
        rec.frames.first().map(|f| f.seq)
    );
    Ok(())
}

#[test]
fn a_rerun_on_the_recorded_frames_gives_the_recorded_detections_exactly() -> TestResult {
    let rec = Recording::open(&recorded_file()?)?;
    assert_eq!(rec.info.model, stipple::config::MODEL_BUNDLED);
    assert!(
        rec.frames
            .iter()
            .any(|f| f.detections.as_ref().is_some_and(|d| d.mask_seq.is_some())),
        "the model's masks were fused live"
    );
    let (frames, summary) = rerun::rerun_all(&rec, &rerun::default_model(&rec)?)?;
    assert_eq!(frames.len(), rec.frames.len());
    assert_eq!(summary.detections_identical, summary.frames, "{summary:?}");
    assert_eq!(summary.overlays_identical, summary.frames, "{summary:?}");
    assert_eq!(summary.placed_rerun, summary.placed_recorded, "{summary:?}");
    assert!(summary.detections_rerun > 0);
    Ok(())
}

/// Reads WebSocket messages until the overlay of `seq` and its JPEG arrive.
async fn frame_of(
    ws: &mut (impl futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
              + Unpin),
    seq: u64,
) -> Result<(String, Vec<u8>), Box<dyn std::error::Error + Send + Sync>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text: Option<String> = None;
    while Instant::now() < deadline {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await?
            .ok_or("closed")??;
        match m {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t)?;
                text = (v["seq"].as_u64() == Some(seq)).then(|| t.to_string());
            }
            Message::Binary(b) => {
                if let Some(t) = text.take() {
                    return Ok((t, b.to_vec()));
                }
            }
            _ => {}
        }
    }
    Err(format!("frame {seq} never came").into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_serves_the_recorded_overlay_frame_for_frame() -> TestResult {
    let file = tokio::task::spawn_blocking(recorded_file).await??;
    let rec = Recording::open(&file)?;
    let expected: Vec<(u64, String, Vec<u8>)> = rec
        .frames
        .iter()
        .map(|f| (f.seq, f.overlay_json.clone(), f.jpeg.to_vec()))
        .collect();
    let latencies = rec.frames.iter().map(|f| f.overlay.latency_ms);
    let lat_min = latencies.clone().fold(f64::INFINITY, f64::min);
    let lat_max = latencies.fold(0.0, f64::max);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = replay::ReplayOptions {
        speed: 1.0,
        autoplay: false,
        rerun: None,
        token: None,
    };
    let server = tokio::spawn(replay::serve(rec, opts, listener, async move {
        let _ = stopped.await;
    }));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
    // Step through every frame: each one is the recorded overlay and picture, byte for byte.
    for (i, (seq, overlay, jpeg)) in expected.iter().enumerate() {
        let body = serde_json::json!({"action": "seek", "index": i}).to_string();
        tokio::task::spawn_blocking(move || http(addr, "POST", "/api/replay", &body)).await??;
        let (got_overlay, got_jpeg) = frame_of(&mut ws, *seq).await?;
        assert_eq!(&got_overlay, overlay, "overlay of frame {seq}");
        assert!(got_jpeg == *jpeg, "picture of frame {seq}");
    }
    // Play, pause and step are answered; the page gets its controls.
    let st: serde_json::Value = serde_json::from_str(
        &tokio::task::spawn_blocking(move || {
            http(addr, "POST", "/api/replay", r#"{"action":"step","by":-1}"#)
        })
        .await??,
    )?;
    assert_eq!(
        st["index"].as_u64(),
        Some(expected.len() as u64 - 2),
        "{st}"
    );
    assert_eq!(st["playing"], false);
    let js = tokio::task::spawn_blocking(move || http(addr, "GET", "/replay.js", "")).await??;
    assert!(js.contains("/api/replay"));
    // The status shows the latency the session was recorded with, not the replay's own (0).
    let st = tokio::task::spawn_blocking(move || status(addr))
        .await?
        .ok_or("no status")?;
    let p50 = st["latency_ms"]["p50"].as_f64().ok_or("no latency")?;
    assert!(
        p50 >= lat_min - 0.5 && p50 <= lat_max + 2.0 && lat_max > 1.0,
        "replayed latency p50 {p50} ms, recorded {lat_min}-{lat_max} ms"
    );
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server).await???;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_at_most_the_last_moment_and_replay_serves_the_rest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("killed.mcap");
    let f2 = file.clone();
    let (processed, recording) =
        tokio::task::spawn_blocking(move || -> Result<(u64, Recording), String> {
            let (mut child, addr) = start_recording(&f2).map_err(|e| e.to_string())?;
            let st = wait_for_frames(addr, 150, Duration::from_secs(120));
            // The last count the service gave, then SIGKILL at once: no chance to finish the file.
            let processed = st
                .as_ref()
                .ok()
                .and_then(|s| s["frames_processed"].as_u64());
            let _ = child.kill();
            let _ = child.wait();
            st?;
            let rec = Recording::open(&f2).map_err(|e| e.to_string())?;
            Ok((processed.unwrap_or(0), rec))
        })
        .await??;
    assert!(!recording.finished, "a killed recording has no summary");
    let readable = recording.frames.len() as u64;
    assert!(
        readable as f64 >= 0.95 * processed as f64,
        "{readable} of {processed} frames readable"
    );
    // Replay serves the truncated file up to where it got.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let last_seq = recording.frames.last().map(|f| f.seq).ok_or("no frame")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(replay::serve(
        recording,
        replay::ReplayOptions {
            autoplay: false,
            ..replay::ReplayOptions::default()
        },
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
    let body = serde_json::json!({"action": "seek", "index": readable - 1}).to_string();
    let st: serde_json::Value = serde_json::from_str(
        &tokio::task::spawn_blocking(move || http(addr, "POST", "/api/replay", &body)).await??,
    )?;
    assert_eq!(st["frames"].as_u64(), Some(readable));
    assert_eq!(st["finished"], false);
    let (_, jpeg) = frame_of(&mut ws, last_seq).await?;
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server).await???;
    Ok(())
}

/// A plan snapshot of frame `seq` with nothing planned yet, the skin at `skin_from_image`.
fn no_plan(seq: u64, skin_from_image: Similarity) -> PlanSnapshot {
    PlanSnapshot {
        seq,
        skin_from_image,
        ..PlanSnapshot::default()
    }
}

fn info() -> SessionInfo {
    SessionInfo {
        format: "stipple".into(),
        format_version: schema::FORMAT_VERSION,
        stipple_version: "test".into(),
        source: "constructed".into(),
        model: "none (classical)".into(),
        px_per_mm: 20.0,
        width: 640,
        height: 360,
        jpeg_quality: 70,
        recommendations: 12,
        started_unix_ns: 1_800_000_000_000_000_000,
        detected_on: "decoded-jpeg".into(),
        client: Some("J. Doe".into()),
        artist: Some("S. Student".into()),
    }
}

/// A tiny valid JPEG (the report does not look at pictures).
fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(16, 16, image::Rgb([200, 170, 150]));
    let mut out = Vec::new();
    let _ = stipple::server::jpeg::encode_jpeg(&img, 80, &mut out);
    out
}

/// A 640x360 frame of skin with every detection drawn as an equally dark disc, as JPEG.
fn dotted_jpeg(dots: &[Detection]) -> Vec<u8> {
    let mut img = image::RgbImage::from_pixel(640, 360, image::Rgb([200, 170, 150]));
    for d in dots {
        imageproc::drawing::draw_filled_circle_mut(
            &mut img,
            (d.x as i32, d.y as i32),
            d.radius as i32,
            image::Rgb([60, 50, 45]),
        );
    }
    let mut out = Vec::new();
    let _ = stipple::server::jpeg::encode_jpeg(&img, 90, &mut out);
    out
}

#[test]
fn the_report_gets_a_known_sessions_numbers_right() -> TestResult {
    // A still head: skin = image / 20 px/mm + (3, 2) mm. Dots on a 1 mm grid at .5 mm: 100
    // per cm². A zone of 20 x 7 mm with a target of 80 per cm².
    let skin_from_image = Similarity {
        a: 0.05,
        b: 0.0,
        tx: 3.0,
        ty: 2.0,
    };
    let image_from_skin = skin_from_image.inverse();
    let mut grid = Vec::new();
    for j in 0..18 {
        for i in 0..32 {
            let q = image_from_skin.apply([3.5 + f64::from(i), 2.5 + f64::from(j)]);
            if q[0] > 0.0 && q[1] > 0.0 && q[0] < 640.0 && q[1] < 360.0 {
                grid.push(Detection {
                    x: q[0],
                    y: q[1],
                    radius: 5.0,
                    kind: if (i + j) % 3 == 0 {
                        DotKind::Pigment
                    } else {
                        DotKind::Follicle
                    },
                    score: 1.0,
                    hairs: None,
                });
            }
        }
    }
    let zone = vec![[8.0, 6.0], [28.0, 6.0], [28.0, 13.0], [8.0, 13.0]];
    let design = Design {
        zones: vec![Zone {
            name: "crown".into(),
            kind: ZoneKind::Fill,
            polygon: zone.clone(),
            target_density_per_cm2: Some(80.0),
            front_edge: None,
            transition_mm: None,
        }],
        ..Design::default().with_defaults()
    };
    // Ten placed dots, as the session saw them: 7 within 0.2 mm of a recommendation, 2 of
    // them too close to a neighbour; one before any plan.
    let nearest_rec = [0.05, 0.1, 0.15, 0.19, 0.2, 0.12, 0.08, 0.5, 1.4];
    let mut placed: Vec<PlacedDot> = nearest_rec
        .iter()
        .enumerate()
        .map(|(i, d)| PlacedDot {
            seq: 10 + 5 * i as u64,
            in_skin_mm: [10.5 + i as f64, 8.5],
            radius_mm: 0.25,
            nearest_rec_mm: Some(*d),
            // Two violations: 0.55 of 0.7 mm (major), 0.30 of 0.7 mm (severe).
            nearest_dot_mm: Some(match i {
                2 => 0.55,
                7 => 0.3,
                _ => 0.9,
            }),
            min_spacing_mm: 0.7,
        })
        .collect();
    placed.push(PlacedDot {
        seq: 5,
        in_skin_mm: [30.0, 15.0],
        radius_mm: 0.25,
        nearest_rec_mm: None,
        nearest_dot_mm: Some(1.0),
        min_spacing_mm: 0.7,
    });
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("known.mcap");
    let mut recorder = Recorder::create(&file, info(), None)?;
    let t0 = Instant::now();
    let frames = 91u64; // 3 s at 30 fps
    let picture = dotted_jpeg(&grid);
    for seq in 0..frames {
        let overlay = OverlayMsg {
            seq,
            captured_unix_ms: 0.0,
            latency_ms: 0.0,
            width: 640,
            height: 360,
            dots: vec![],
            recs: vec![],
            target: None,
            zones: vec![],
            heat: None,
            image_from_skin: image_from_skin.to_affine(),
            registered: true,
            dots_placed: 0,
            recs_done: 0,
            source_status: "streaming".into(),
            not_skin: Vec::new(),
            declined: Vec::new(),
            ..OverlayMsg::default()
        };
        let rec = FrameRecord {
            seq,
            captured_at: t0 + Duration::from_secs_f64(seq as f64 / 30.0),
            jpeg: picture.clone().into(),
            overlay_json: serde_json::to_string(&overlay)?.into(),
            overlay,
            detections: DetectionsMsg {
                seq,
                width: 640,
                height: 360,
                mask_seq: None,
                detections: grid.clone(),
            },
            plan: no_plan(seq, skin_from_image),
            placed: placed.iter().filter(|p| p.seq == seq).copied().collect(),
            design: (seq == 0).then(|| design.clone()),
        };
        // Never dropped here: wait for room (the live side never waits).
        let mut rec = Some(rec);
        while let Some(r) = rec.take() {
            if !recorder.offer(r.clone()) {
                std::thread::sleep(Duration::from_millis(20));
                // A dropped frame keeps its events; offer the frame again without them.
                rec = Some(FrameRecord {
                    placed: vec![],
                    design: None,
                    ..r
                });
            }
        }
    }
    recorder.finish()?;
    let rec = Recording::open(&file)?;
    let r = report::Report::from_recording(&rec);
    assert_eq!(r.frames, frames as usize);
    assert!((r.duration_s - 3.0).abs() < 1e-6, "{}", r.duration_s);
    assert_eq!(r.dots_placed, 10);
    assert_eq!(r.on_plan, 7);
    assert!((r.on_plan_share - 0.7).abs() < 1e-12);
    assert_eq!(r.without_plan, 1);
    assert_eq!(r.spacing_violations.len(), 2);
    // Who, whose scalp, when (issue 21): from the recording's metadata.
    assert_eq!(r.student.as_deref(), Some("S. Student"));
    assert_eq!(r.client.as_deref(), Some("J. Doe"));
    assert_eq!(r.date, "2027-01-15");
    assert_eq!(r.session_number.as_deref(), Some("1"));
    // Each violation with its distance and severity.
    let v: Vec<(f64, report::Severity)> = r
        .spacing_violations
        .iter()
        .map(|v| (v.nearest_dot_mm, v.severity))
        .collect();
    assert_eq!(
        v,
        [
            (0.55, report::Severity::Major),
            (0.3, report::Severity::Severe)
        ]
    );
    assert!((r.spacing_violations[1].short_by_mm - 0.4).abs() < 1e-12);
    // Consistency: every radius 0.25 mm (cv 0); every dot drawn equally dark (sd under 0.05:
    // JPEG only); distances to the nearest dot 0.9 (x7), 0.55, 0.3, 1.0: mean 0.815, sd
    // sqrt(0.42025 / 10) = 0.20500, cv 0.25153.
    let c = r.consistency;
    assert_eq!(c.size_cv, Some(0.0));
    assert!(c.shade_sd.is_some_and(|sd| sd < 0.05), "{c:?}");
    let spacing_cv = (0.42025f64 / 10.0).sqrt() / 0.815;
    assert!(
        (c.spacing_cv.ok_or("no spacing cv")? - spacing_cv).abs() < 1e-9,
        "{c:?}"
    );
    // The grade: on plan 35 x 0.7 = 24.5; violations 25 - 5 - 10 = 10; size 5; shade 5;
    // evenness 5 x (0.60 - 0.25153) / 0.35 = 4.978; pace 200 a minute, over 120:
    // 5 x (1 - 80 / 120) = 1.667; density goal 20 (125% of the target, capped at 100%):
    // 71.14, a C.
    let parts: Vec<f64> = r.grade.rubric.iter().map(|p| p.points).collect();
    let even = 5.0 * (0.60 - spacing_cv) / 0.35;
    let want = [24.5, 10.0, 5.0, 5.0, even, 5.0 / 3.0, 20.0];
    assert_eq!(parts.len(), want.len(), "{parts:?}");
    for (got, want) in parts.iter().zip(want) {
        assert!((got - want).abs() < 1e-9, "{parts:?}");
    }
    assert!((r.grade.points - want.iter().sum::<f64>()).abs() < 1e-9);
    assert!((r.grade.points - 71.14).abs() < 0.01, "{}", r.grade.points);
    assert_eq!(r.grade.letter, 'C');
    // Each violation with the picture around it: 240 px for 3 mm, the red ring of the minimum
    // spacing about the new dot, and the neighbour's dark disc inside the ring.
    for v in &r.spacing_violations {
        let crop = image::load_from_memory(&v.crop_png)?.to_rgb8();
        assert_eq!(crop.dimensions(), (report::CROP_PX, report::CROP_PX));
        let px_per_mm = f64::from(report::CROP_PX) / report::CROP_MM;
        let ring_px = v.min_spacing_mm * px_per_mm;
        let c = f64::from(report::CROP_PX) / 2.0;
        let on_ring = crop
            .enumerate_pixels()
            .filter(|(x, y, p)| {
                let r = (f64::from(*x) - c).hypot(f64::from(*y) - c);
                p.0 == [230, 30, 30] && (r - ring_px).abs() < 3.0
            })
            .count();
        assert!(on_ring > 100, "{on_ring} ring pixels at seq {}", v.seq);
        // The grid dot at the placed spot is dark at the crop's centre.
        assert!(crop.get_pixel(c as u32, c as u32)[0] < 120);
    }
    assert!(
        (r.dots_per_minute - 200.0).abs() < 1e-6,
        "{}",
        r.dots_per_minute
    );
    assert_eq!(r.zones.len(), 1);
    let z = &r.zones[0];
    assert_eq!(z.name, "crown");
    assert!((z.area_cm2 - 1.4).abs() < 1e-9, "{}", z.area_cm2);
    assert_eq!(z.dots, 140);
    assert!(
        (z.density_per_cm2 - 100.0).abs() < 1e-9,
        "{}",
        z.density_per_cm2
    );
    assert!((z.reached - 1.25).abs() < 1e-9);
    assert_eq!(z.placed, 9);
    assert!(!z.picture_png.is_empty());
    let html = r.to_html();
    assert!(
        html.contains("data:image/png;base64,") && html.contains("70%"),
        "the share and the picture are on the page"
    );
    let json: serde_json::Value = serde_json::from_str(&r.to_json()?)?;
    assert_eq!(json["dots_placed"], 10);
    assert_eq!(json["zones"][0]["dots"], 140);
    Ok(())
}

#[test]
fn the_cli_writes_html_and_json_reports_and_compares_a_recording_with_itself() -> TestResult {
    let file = recorded_file()?;
    let dir = tempfile::tempdir()?;
    for name in ["r.html", "r.json", "c.json", "c.html"] {
        let out = dir.path().join(name);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stipple"));
        cmd.arg("replay").arg(&file).arg("--report").arg(&out);
        if name.starts_with('c') {
            cmd.arg("--compare").arg(&file);
        }
        let o = cmd.output()?;
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&out)?;
        if name == "c.html" {
            // Both sessions' dates, and what "not found" means.
            let date = Recording::open(&file)?.info.date();
            assert_eq!(text.matches(&format!("({date})")).count(), 2, "{date}");
            assert!(text.contains("\"Not found\": an earlier pigment dot"));
        } else if name.ends_with(".html") {
            assert!(text.contains("<h1>Session report</h1>"));
        } else {
            let v: serde_json::Value = serde_json::from_str(&text)?;
            if name.starts_with('c') {
                // The same session against itself: every dot found, nothing faded or spread.
                assert_eq!(v["matched"], v["old_pigment_dots"], "{v}");
                assert_eq!(v["faded"].as_array().map(Vec::len), Some(0));
                assert_eq!(v["spread"].as_array().map(Vec::len), Some(0));
                assert!(
                    v["old_date"] == v["new_date"] && v["old_date"].is_string(),
                    "{v}"
                );
            } else {
                assert!(v["dots_placed"].is_u64() && v["zones"].is_array(), "{v}");
            }
        }
    }
    Ok(())
}

#[test]
fn the_touch_up_comparison_registers_two_sessions_of_the_same_skin() -> TestResult {
    let rec = Recording::open(&recorded_file()?)?;
    let c = compare::compare(&rec, &rec)?;
    assert!(c.registration_rms_mm < 1e-6);
    assert!(c.old_pigment_dots > 0);
    Ok(())
}

/// An MCAP file another tool could have written: no Stipple channel.
fn foreign_mcap(path: &Path) -> TestResult {
    let mut w = mcap::Writer::new(std::io::BufWriter::new(std::fs::File::create(path)?))?;
    let schema = w.add_schema("Pose", "jsonschema", br#"{"type":"object"}"#)?;
    let ch = w.add_channel(schema, "/robot/pose", "json", &Default::default())?;
    for i in 0..3u32 {
        w.write_to_known_channel(
            &mcap::records::MessageHeader {
                channel_id: ch,
                sequence: i,
                log_time: u64::from(i),
                publish_time: u64::from(i),
            },
            br#"{"x":1}"#,
        )?;
    }
    w.finish()?;
    Ok(())
}

#[test]
fn malformed_files_fail_clearly_and_name_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("notes.mcap"),
        "these are not the frames you are looking for\n",
    )?;
    std::fs::write(p("short.mcap"), &b"\x89MCAP"[..])?;
    std::fs::write(p("header.mcap"), &b"\x89MCAP0\r\n\x01\x40\x00\x00"[..])?;
    std::fs::write(p("empty.mcap"), "")?;
    foreign_mcap(&p("foreign.mcap"))?;
    // A Stipple file from a future format.
    let mut future = info();
    future.format_version = 99;
    let future_file = p("future.mcap");
    Recorder::create(&future_file, future, None)?.finish()?;

    /// File, the error it must give, what the message must say.
    type Case = (&'static str, fn(&RecordError) -> bool, &'static str);
    let cases: [Case; 6] = [
        (
            "notes.mcap",
            |e| matches!(e, RecordError::NotMcap { .. }),
            "not an MCAP file",
        ),
        (
            "short.mcap",
            |e| matches!(e, RecordError::TruncatedHeader { .. }),
            "truncated",
        ),
        (
            "header.mcap",
            |e| matches!(e, RecordError::TruncatedHeader { .. }),
            "truncated",
        ),
        (
            "empty.mcap",
            |e| matches!(e, RecordError::TruncatedHeader { .. }),
            "truncated",
        ),
        (
            "foreign.mcap",
            |e| matches!(e, RecordError::NotStipple { .. }),
            "without Stipple's channels",
        ),
        (
            "future.mcap",
            |e| matches!(e, RecordError::IncompatibleVersion { found: 99, .. }),
            "format 99",
        ),
    ];
    for (name, is, says) in cases {
        let err = Recording::open(&p(name)).expect_err(name);
        let msg = err.to_string();
        assert!(is(&err), "{name}: {err:?}");
        assert!(msg.contains(name) && msg.contains(says), "{name}: {msg}");
    }
    let err = Recording::open(&p("missing.mcap")).expect_err("missing");
    assert!(err.to_string().contains("missing.mcap"));
    // The command line says it once, names the file, and does not panic.
    for name in ["notes.mcap", "foreign.mcap", "header.mcap"] {
        let o = Command::new(env!("CARGO_BIN_EXE_stipple"))
            .arg("replay")
            .arg(p(name))
            .args(["--report", "/dev/null"])
            .output()?;
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && !stderr.contains("panicked"),
            "{name}: {stderr}"
        );
    }
    Ok(())
}

#[test]
fn the_report_on_a_simulated_session_agrees_with_the_needles_truth() -> TestResult {
    use std::sync::Arc;
    use stipple::mailbox::Mailbox;
    use stipple::session::{LiveSession, SessionConfig};
    use stipple::source::{DemoConfig, DemoSource, NeedleHint};

    // 20 s of the moving synthetic head with its needle (85 % of dots aimed at the plan),
    // through the live session and the recorder, as `serve --record` does it (detection on
    // the decoded JPEG), in simulated time.
    let (w, h, ppm, fps) = (640, 360, 20.0, 30.0);
    let hints = Arc::new(Mailbox::new());
    let mut demo = DemoSource::new(
        DemoConfig {
            width: w,
            height: h,
            px_per_mm: ppm,
            fps,
            // Without the artist's hand: it hovers over the last dots placed and hides them
            // for longer than the pairing window below (tests/it/chair.rs covers the hand).
            chair: false,
            ..DemoConfig::new(5)
        },
        hints.clone(),
    );
    demo.free_run();
    let mut session = LiveSession::new(SessionConfig::new(ppm));
    let design = Design {
        target_density_per_cm2: Some(120.0),
        ..Design::default()
    }
    .with_defaults();
    session.set_design(design.clone());
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("simulated.mcap");
    let mut recorder = Recorder::create(&file, info(), None)?;
    let frames = 600u64;
    let t0 = Instant::now();
    let mut jpeg = Vec::new();
    for seq in 0..frames {
        let f = demo.next_frame();
        stipple::server::jpeg::encode_jpeg(&f.image, 70, &mut jpeg)?;
        let frame = stipple::Frame {
            meta: stipple::FrameMeta {
                seq,
                captured_at: t0 + Duration::from_secs_f64(seq as f64 / fps),
                camera_id: 0,
            },
            image: Arc::new(stipple::record::decode_jpeg(seq, &jpeg)?),
        };
        let p = session.detect(&frame)?;
        let overlay = session.update(&p, Some(&f.image_from_scene));
        let mut rec = Some(FrameRecord {
            seq,
            captured_at: frame.meta.captured_at,
            jpeg: jpeg.clone().into(),
            overlay_json: serde_json::to_string(&overlay)?.into(),
            overlay,
            detections: DetectionsMsg {
                seq,
                width: w,
                height: h,
                mask_seq: None,
                detections: p.detections,
            },
            plan: session.plan_snapshot(),
            placed: session.take_placed(),
            design: (seq == 0).then(|| design.clone()),
        });
        while let Some(r) = rec.take() {
            if !recorder.offer(r.clone()) {
                std::thread::sleep(Duration::from_millis(10));
                rec = Some(FrameRecord {
                    placed: vec![],
                    design: None,
                    ..r
                });
            }
        }
        hints.put(NeedleHint {
            seq,
            targets_in_image: session.targets_in_image(),
        });
    }
    recorder.finish()?;
    let rec = Recording::open(&file)?;
    let r = report::Report::from_recording(&rec);
    // The truth: dots placed at least half a second before the end (later ones cannot be
    // confirmed yet), and which of them the needle aimed at the plan.
    let truth: Vec<_> = demo
        .needle_dots()
        .iter()
        .filter(|d| d.frame + 15 < frames)
        .collect();
    // Each placed dot in the report is a dot the needle placed a few frames earlier (ink
    // shows, then three sightings confirm it): pair them up.
    let mut paired = Vec::new();
    for p in &rec.placed {
        let t = truth
            .iter()
            .find(|d| d.frame < p.seq && p.seq <= d.frame + 15)
            .ok_or(format!(
                "placed on frame {} but the needle placed nothing just before",
                p.seq
            ))?;
        paired.push((p, t));
    }
    eprintln!(
        "report: {} placed, {:.2} on plan, {:.1}/min; needle: {} placed, {} aimed at the plan",
        r.dots_placed,
        r.on_plan_share,
        r.dots_per_minute,
        truth.len(),
        truth.iter().filter(|d| d.on_plan).count()
    );
    assert!(truth.len() >= 20, "the needle worked: {}", truth.len());
    assert_eq!(r.dots_placed, paired.len());
    // How many the live session sees placed is the session's business, not the report's (24
    // of 27 here with the live plan kept off what the frame's skin analysis finds, 25 of 27
    // before, when the needle's dots fell elsewhere; 15 before a placed dot had to look like
    // fresh ink, 19 with the previous renderer: a new dot called a follicle is not counted).
    // Every placed dot must be one of the needle's: two known follicles read as one ink-like
    // spot are not a placement (`LiveSession::merges_known_dots`).
    assert!(
        paired.len() as f64 >= 0.5 * truth.len() as f64,
        "{} of {} needle dots seen placed",
        paired.len(),
        truth.len()
    );
    // On plan or not, dot by dot, as the needle meant it.
    for (p, t) in &paired {
        let within = p.nearest_rec_mm.is_some_and(|d| d <= report::ON_PLAN_MM);
        assert_eq!(within, t.on_plan, "frame {}: {:?}", p.seq, p.nearest_rec_mm);
    }
    assert_eq!(r.on_plan, paired.iter().filter(|(_, t)| t.on_plan).count());
    assert!((r.dots_per_minute - paired.len() as f64 * 60.0 / r.duration_s).abs() < 1e-9);
    // The needle's dots are 0.20-0.28 mm in radius and 0.75-0.90 dark, uniformly (radius cv
    // 0.10, darkness sd 0.04): the report measures both from the recording.
    let c = r.consistency;
    eprintln!("consistency: {c:?}");
    let (size_cv, shade_sd) = (c.size_cv.ok_or("size")?, c.shade_sd.ok_or("shade")?);
    assert!((0.03..0.3).contains(&size_cv), "{c:?}");
    assert!((0.0..0.2).contains(&shade_sd), "{c:?}");
    // Progress against the goal, as the page showed it: one point a second over the whole
    // session for the view.
    let view = r.progress.first().ok_or("no progress")?;
    eprintln!(
        "progress: {} points, {:?} -> {:?}, goal reached at {:?}",
        view.samples.len(),
        view.samples.first(),
        view.samples.last(),
        view.goal_reached_at_s
    );
    let expected = (r.duration_s / report::PROGRESS_EVERY_S).floor();
    assert!(
        (view.samples.len() as f64 - expected).abs() <= 2.0,
        "{} points over {:.1} s",
        view.samples.len(),
        r.duration_s
    );
    assert!(view
        .samples
        .windows(2)
        .all(|w| w[1].t_s - w[0].t_s >= report::PROGRESS_EVERY_S - 1e-6));
    assert!(view
        .samples
        .iter()
        .all(|p| p.density_per_cm2 > 0.0 || p.dots_left > 0));
    assert!(view.target_per_cm2 > 0.0);
    assert!(!r.progress_png.is_empty() && r.to_html().contains("Progress against the goal"));
    Ok(())
}

// Issue 22: no recording lost.

#[test]
fn r22_record_refuses_to_overwrite_an_existing_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("yesterday.mcap");
    std::fs::write(&file, b"yesterday's session")?;
    let err = Recorder::create_with(&file, info(), None, false)
        .err()
        .ok_or("an existing file was replaced")?;
    let msg = err.to_string();
    assert!(
        msg.contains("yesterday.mcap") && msg.contains("--overwrite"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&file)?, b"yesterday's session");
    // The command line refuses it before serving, naming the file.
    let o = Command::new(env!("CARGO_BIN_EXE_stipple"))
        .args(["serve", "--no-model", "--bind", "127.0.0.1:0", "--record"])
        .arg(&file)
        .output()?;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("yesterday.mcap") && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file)?, b"yesterday's session");
    // With --overwrite it is replaced.
    Recorder::create_with(&file, info(), None, true)?.finish()?;
    assert!(std::fs::read(&file)?.starts_with(b"\x89MCAP0\r\n"));
    Ok(())
}

#[test]
fn r22_replay_resynchronises_past_a_damaged_middle_chunk() -> TestResult {
    let clean = Recording::open(&recorded_file()?)?;
    let mut bytes = std::fs::read(recorded_file()?)?;
    let summary = mcap::Summary::read(&bytes)?.ok_or("no summary")?;
    let mut chunks: Vec<_> = summary.chunk_indexes.clone();
    chunks.sort_by_key(|c| c.chunk_start_offset);
    assert!(
        chunks.len() >= 3,
        "{} chunks: need one in the middle",
        chunks.len()
    );
    // Scribble over the middle of the second chunk's compressed data.
    let c = &chunks[1];
    let mid = (c.chunk_start_offset + c.chunk_length / 2) as usize;
    for b in &mut bytes[mid..mid + 4096] {
        *b ^= 0x5A;
    }
    let dir = tempfile::tempdir()?;
    let damaged = dir.path().join("damaged.mcap");
    std::fs::write(&damaged, &bytes)?;
    let rec = Recording::open(&damaged)?;
    let damage = rec.damage.clone().ok_or("no damage reported")?;
    assert!(damage.contains("skipped: chunk 2 of"), "{damage}");
    // Frames after the damaged chunk are back: the last frame is the clean file's last frame.
    assert_eq!(
        rec.frames.last().map(|f| f.seq),
        clean.frames.last().map(|f| f.seq),
        "frames after the damaged chunk were lost"
    );
    assert!(rec.frames.len() < clean.frames.len());
    assert!(
        rec.frames.len() * 3 > clean.frames.len() * 2,
        "{} of {} frames",
        rec.frames.len(),
        clean.frames.len()
    );
    Ok(())
}

/// An unfinished recording (no summary: the service was killed) with a damaged chunk in the
/// middle: the chunks after it are found by walking the records, and when the damaged chunk's
/// own length is what was hit, by scanning for the next chunk. (Channels are defined in the
/// chunk that first uses them, which is the second: without a summary, damage there loses
/// those channels for the rest of the file, so the damage here is in the third.)
#[test]
fn r22_replay_resynchronises_without_a_summary() -> TestResult {
    let full = std::fs::read(recorded_file()?)?;
    let summary = mcap::Summary::read(&full)?.ok_or("no summary")?;
    let mut chunks: Vec<_> = summary.chunk_indexes.clone();
    chunks.sort_by_key(|c| c.chunk_start_offset);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());
    // Cut after the last chunk: no summary, no footer, as after a kill.
    let last = chunks.last().ok_or("no chunk")?;
    let cut = (last.chunk_start_offset + last.chunk_length) as usize;
    let dir = tempfile::tempdir()?;
    let unfinished = dir.path().join("unfinished.mcap");
    std::fs::write(&unfinished, &full[..cut])?;
    let clean = Recording::open(&unfinished)?;
    assert!(!clean.finished, "a file without a summary is not finished");
    assert!(mcap::Summary::read(&full[..cut]).ok().flatten().is_none());
    let c = &chunks[2];
    let start = c.chunk_start_offset as usize;
    for (name, at, says) in [
        (
            "data",
            start + c.chunk_length as usize / 2,
            format!("chunk 3 at byte {start}"),
        ),
        ("length", start + 1, format!("bytes {start}..")),
    ] {
        let mut bytes = full[..cut].to_vec();
        for b in &mut bytes[at..at + 8] {
            *b ^= 0x5A;
        }
        let damaged = dir.path().join(format!("damaged-{name}.mcap"));
        std::fs::write(&damaged, &bytes)?;
        let rec = Recording::open(&damaged)?;
        let damage = rec.damage.clone().ok_or("no damage reported")?;
        assert!(
            damage.contains("resynchronised by scanning"),
            "{name}: {damage}"
        );
        assert!(damage.contains(&says), "{name}: {damage}");
        assert_eq!(
            rec.frames.last().map(|f| f.seq),
            clean.frames.last().map(|f| f.seq),
            "{name}: frames after the damaged chunk were lost ({damage})"
        );
        assert!(
            rec.frames.len() <= clean.frames.len() && rec.frames.len() * 3 > clean.frames.len() * 2,
            "{name}: {} of {} frames ({damage})",
            rec.frames.len(),
            clean.frames.len()
        );
    }
    Ok(())
}

/// Runs `Recording::open` on a thread, so that a read that blocks fails the test instead of
/// hanging it.
fn open_within(path: &Path, limit: Duration) -> Result<Result<Recording, RecordError>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(Recording::open(&path));
    });
    rx.recv_timeout(limit)
        .map_err(|_| format!("Recording::open did not return within {limit:?}"))
}

#[test]
fn r22_replay_reads_only_regular_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let fifo = dir.path().join("pipe.mcap");
    let made = Command::new("mkfifo").arg(&fifo).status()?;
    assert!(made.success());
    for path in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
        let err = open_within(path, Duration::from_secs(5))?
            .err()
            .ok_or("opened")?;
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("not a regular file"),
            "{msg}"
        );
    }
    Ok(())
}

/// A disk that fills after `room` bytes.
struct FullDisk {
    inner: std::io::Cursor<Vec<u8>>,
    room: usize,
}

impl std::io::Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.inner.get_ref().len() + buf.len() > self.room {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for FullDisk {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn r22_a_full_disk_keeps_its_cause_in_the_status() -> TestResult {
    let disk = FullDisk {
        inner: std::io::Cursor::new(Vec::new()),
        room: 64 * 1024,
    };
    let mut recorder = Recorder::with_writer(Path::new("full.mcap"), disk, info(), None, 8)?;
    let big = {
        // Noise compresses badly: a few frames fill the "disk".
        let img = image::RgbImage::from_fn(320, 240, |x, y| {
            let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) as u8;
            image::Rgb([v, v.wrapping_mul(3), v.wrapping_mul(7)])
        });
        let mut out = Vec::new();
        stipple::server::jpeg::encode_jpeg(&img, 95, &mut out)?;
        out
    };
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(20);
    let mut seq = 0u64;
    while recorder.status().error.is_none() {
        if Instant::now() > deadline {
            return Err("the full disk was never reported".into());
        }
        let _ = recorder.offer(blank_frame_record(
            seq,
            t0 + Duration::from_millis(seq * 33),
            (320, 240),
            big.clone(),
        )?);
        seq += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let error = recorder.status().error.unwrap_or_default();
    assert!(error.contains("No space left on device"), "{error}");
    let err = recorder.finish().err().ok_or("finish hid the error")?;
    assert!(
        stipple::record::with_causes(&err).contains("No space left on device"),
        "{err}"
    );
    Ok(())
}

/// Writes a finished recording of `frames` small frames to `file` (for the fuzz harness).
pub(crate) fn write_small_recording(file: &Path, frames: u64) -> TestResult {
    let mut recorder = Recorder::create(file, info(), None)?;
    let t0 = Instant::now();
    for seq in 0..frames {
        let mut rec = Some(blank_frame_record(
            seq,
            t0 + Duration::from_millis(seq * 33),
            (16, 16),
            jpeg(),
        )?);
        while let Some(r) = rec.take() {
            if !recorder.offer(r.clone()) {
                std::thread::sleep(Duration::from_millis(5));
                rec = Some(r);
            }
        }
    }
    recorder.finish()?;
    Ok(())
}

/// A frame with an empty overlay, no detections and an empty plan: for recorder tests that care
/// about frames reaching the file, not what they show.
fn blank_frame_record(
    seq: u64,
    captured_at: Instant,
    (width, height): (u32, u32),
    jpeg: Vec<u8>,
) -> Result<FrameRecord, serde_json::Error> {
    let overlay = OverlayMsg {
        seq,
        width,
        height,
        image_from_skin: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        source_status: "streaming".into(),
        not_skin: Vec::new(),
        declined: Vec::new(),
        ..OverlayMsg::default()
    };
    Ok(FrameRecord {
        seq,
        captured_at,
        jpeg: jpeg.into(),
        overlay_json: serde_json::to_string(&overlay)?.into(),
        overlay,
        detections: DetectionsMsg {
            seq,
            width,
            height,
            mask_seq: None,
            detections: vec![],
        },
        plan: no_plan(seq, Similarity::IDENTITY),
        placed: vec![],
        design: None,
    })
}

/// Writes a still session of `frames` frames: every frame shows `dots` (drawn with their
/// colours) and detects them, with the skin at `skin_from_image`.
fn still_session(
    file: &Path,
    dots: &[(Detection, image::Rgb<u8>)],
    skin_from_image: Similarity,
    frames: u64,
    started_unix_ns: u64,
) -> TestResult {
    let mut img = image::RgbImage::from_pixel(640, 360, image::Rgb([200, 170, 150]));
    for (d, colour) in dots {
        imageproc::drawing::draw_filled_circle_mut(
            &mut img,
            (d.x.round() as i32, d.y.round() as i32),
            d.radius as i32,
            *colour,
        );
    }
    let mut picture = Vec::new();
    stipple::server::jpeg::encode_jpeg(&img, 92, &mut picture)?;
    let picture = axum::body::Bytes::from(picture);
    let mut recorder = Recorder::create(
        file,
        SessionInfo {
            started_unix_ns,
            ..info()
        },
        None,
    )?;
    let t0 = Instant::now();
    let detections: Vec<Detection> = dots.iter().map(|(d, _)| *d).collect();
    for seq in 0..frames {
        let overlay = OverlayMsg {
            seq,
            width: 640,
            height: 360,
            image_from_skin: skin_from_image.inverse().to_affine(),
            registered: true,
            source_status: "streaming".into(),
            ..OverlayMsg::default()
        };
        let mut rec = Some(FrameRecord {
            seq,
            captured_at: t0 + Duration::from_secs_f64(seq as f64 / 30.0),
            jpeg: picture.clone(),
            overlay_json: serde_json::to_string(&overlay)?.into(),
            overlay,
            detections: DetectionsMsg {
                seq,
                width: 640,
                height: 360,
                mask_seq: None,
                detections: detections.clone(),
            },
            plan: no_plan(seq, skin_from_image),
            placed: vec![],
            design: None,
        });
        while let Some(r) = rec.take() {
            if !recorder.offer(r.clone()) {
                std::thread::sleep(Duration::from_millis(20));
                rec = Some(r);
            }
        }
    }
    recorder.finish()?;
    Ok(())
}

#[test]
fn the_touch_up_comparison_shows_each_faded_and_spread_dot_before_and_after() -> TestResult {
    // One scalp, two sessions: pigment dots on a jittered 1.2 mm grid, the head 2 degrees
    // turned and shifted in the second. One dot faded (drawn much lighter), one spread (radius
    // 0.25 -> 0.4 mm).
    let skin_from_image = Similarity {
        a: 0.05,
        b: 0.0,
        tx: 3.0,
        ty: 2.0,
    };
    let (sin, cos) = 2f64.to_radians().sin_cos();
    let moved = |p: [f64; 2]| {
        let (x, y) = (p[0] - 320.0, p[1] - 180.0);
        [
            320.0 + cos * x - sin * y + 10.0,
            180.0 + sin * x + cos * y - 6.0,
        ]
    };
    let mut state = 12345u64;
    let mut jitter = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as f64 / f64::from(1u32 << 31) - 0.5) * 12.0
    };
    let dark = image::Rgb([60, 50, 45]);
    let (mut old, mut new) = (Vec::new(), Vec::new());
    let (faded_at, spread_at) = ([300.0, 170.0], [420.0, 200.0]);
    let mut y = 30.0;
    while y < 340.0 {
        let mut x = 30.0;
        while x < 620.0 {
            let mut p = [x + jitter(), y + jitter()];
            let (mut colour, mut radius) = (dark, 5.0);
            if (p[0] - faded_at[0]).hypot(p[1] - faded_at[1]) < 14.0 {
                p = faded_at;
                colour = image::Rgb([150, 128, 112]);
            } else if (p[0] - spread_at[0]).hypot(p[1] - spread_at[1]) < 14.0 {
                p = spread_at;
                radius = 8.0;
            }
            let det = |q: [f64; 2], r: f64| Detection {
                x: q[0],
                y: q[1],
                radius: r,
                kind: DotKind::Pigment,
                score: 1.0,
                hairs: None,
            };
            old.push((det(p, 5.0), dark));
            let q = moved(p);
            if q[0] > 12.0 && q[1] > 12.0 && q[0] < 628.0 && q[1] < 348.0 {
                new.push((det(q, radius), colour));
            }
            x += 24.0;
        }
        y += 24.0;
    }
    let dir = tempfile::tempdir()?;
    let (a, b) = (dir.path().join("old.mcap"), dir.path().join("new.mcap"));
    still_session(&a, &old, skin_from_image, 30, 1_800_000_000_000_000_000)?;
    still_session(&b, &new, skin_from_image, 30, 1_815_000_000_000_000_000)?;
    let c = compare::compare(&Recording::open(&a)?, &Recording::open(&b)?)?;
    assert!(c.registration_rms_mm < 0.02, "{}", c.registration_rms_mm);
    assert_ne!(c.old_date, c.new_date);
    let near = |d: &compare::DotChange, at: [f64; 2]| {
        let p = skin_from_image.apply(at);
        (d.in_old_skin_mm[0] - p[0]).hypot(d.in_old_skin_mm[1] - p[1]) < 0.1
    };
    assert_eq!(c.faded.len(), 1, "{:?}", c.faded);
    assert_eq!(c.spread.len(), 1, "{:?}", c.spread);
    assert!(near(&c.faded[0], faded_at) && near(&c.spread[0], spread_at));
    let crop = |png: &[u8]| -> Result<image::RgbImage, image::ImageError> {
        Ok(image::load_from_memory(png)?.to_rgb8())
    };
    let mid = report::CROP_PX / 2;
    // Faded: dark at the centre before, light now; the orange ring around it in both.
    let (before, after) = (crop(&c.faded[0].before_png)?, crop(&c.faded[0].after_png)?);
    assert!(
        before.get_pixel(mid, mid)[0] < 100,
        "{:?}",
        before.get_pixel(mid, mid)
    );
    assert!(
        after.get_pixel(mid, mid)[0] > 120,
        "{:?}",
        after.get_pixel(mid, mid)
    );
    for img in [&before, &after] {
        let orange = img
            .pixels()
            .filter(|p| p[0] > 200 && (110..190).contains(&p[1]) && p[2] < 60)
            .count();
        assert!(orange > 100, "{orange} ring pixels");
    }
    // Spread: more of the crop's centre (within 0.45 mm of the dot, clear of its neighbours)
    // is dark now than before.
    let dark_px = |img: &image::RgbImage| {
        let r = 0.45 / report::CROP_MM * f64::from(report::CROP_PX);
        img.enumerate_pixels()
            .filter(|(x, y, p)| {
                let d = (f64::from(*x) - f64::from(mid)).hypot(f64::from(*y) - f64::from(mid));
                d < r && p[0] < 110
            })
            .count()
    };
    let (before, after) = (
        crop(&c.spread[0].before_png)?,
        crop(&c.spread[0].after_png)?,
    );
    assert!(
        dark_px(&after) as f64 > 1.5 * dark_px(&before) as f64,
        "{} vs {}",
        dark_px(&after),
        dark_px(&before)
    );
    let html = c.to_html();
    assert_eq!(html.matches("class=\"crop\"").count(), 4);
    // With STIPPLE_COMPARE_HTML=FILE (for the docs' screenshot), the page is kept.
    if let Some(out) = std::env::var_os("STIPPLE_COMPARE_HTML") {
        std::fs::write(out, &html)?;
    }
    Ok(())
}
