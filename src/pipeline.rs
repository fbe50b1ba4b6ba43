//! The pipeline's topology, and nothing else: which stage runs where and how frames move.
//!
//! ```text
//!  capture thread ──(one-slot mailbox, latest wins)──▶ processing thread ──▶ broadcast ──▶ WebSocket tasks
//!   Source::next                                        LiveSession::detect     (Packet)     (one per viewer)
//!                                                       LiveSession::update
//!                                        ┌─(mailbox)──▶ encoder thread (JPEG, in parallel with detection)
//!                                        └─◀─(mailbox)─┘
//!  processing thread ──(mailbox)──▶ demo source's needle (the plan, in pixels)
//!  processing thread ──(bounded channel, try_send)──▶ recorder thread (`--record`, MCAP)
//!  processing thread ──(mailbox, only in calibration mode)──▶ calibrate thread (board, ≤ 4 Hz)
//! ```
//!
//! Blocking work (capture, detection, registration, encoding) runs on plain threads; the tokio
//! runtime only serves HTTP and WebSockets. Every hand-off is "latest value wins", so a stage
//! that falls behind skips frames (counted from gaps in `seq`) instead of building a queue.
//! One [`Shutdown`] reaches every stage; the threads are joined on the way out.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use tokio::net::TcpListener;

use crate::calib::{HeldBoard, LiveCalibration};
use crate::config::{ServeConfig, SourceSpec, WS_BACKLOG_FRAMES, WS_SEND_BUFFER_BYTES};
use crate::frame::Frame;
use crate::geometry::Similarity;
use crate::mailbox::Mailbox;
use crate::metrics::{Metrics, Stage};
use crate::perception::{OnnxSegmenter, SegMask, Segmenter};
use crate::record;
use crate::server::{self, AppState, Packet};
use crate::session::{LiveSession, ModelView};
use crate::shutdown::{self, Shutdown, ShutdownTx};
use crate::source::{CameraSource, Captured, DemoSource, ImageSource, NeedleHint, Source, Stamper};

/// How long a blocked stage waits before it checks for shutdown again.
const POLL: Duration = Duration::from_millis(100);
/// The segmentation model runs at most this often (its own thread, on the latest frame): every
/// frame's blobs are fused with the latest mask, so the model's cost never caps the frame rate,
/// and a few runs a second leave the two cores to capture, detection and encoding.
const MODEL_MAX_HZ: f64 = 5.0;

/// The newest masks from the model's thread, with the frame they were computed on (its number
/// and picture): the dot model's, and the skin model's when it runs.
type LatestMask = std::sync::Mutex<Option<ModelMasks>>;

/// What [`LatestMask`] holds.
type ModelMasks = (
    u64,
    Arc<image::RgbImage>,
    Arc<SegMask>,
    Option<Arc<SegMask>>,
);

/// Frames to the model's thread and its newest mask back.
struct ModelLink {
    frames: Arc<Mailbox<Frame>>,
    mask: Arc<LatestMask>,
}

#[tracing::instrument(level = "debug", skip_all)]
fn segment_loop(
    mut segmenter: Segmenter,
    mut skin_model: Option<OnnxSegmenter>,
    link: &ModelLink,
    px_per_mm: f64,
    shutdown: &Shutdown,
) {
    let period = Duration::from_secs_f64(1.0 / MODEL_MAX_HZ);
    crate::threads::step_back(crate::threads::Role::Background);
    while !shutdown.is_triggered() {
        let Some(frame) = link.frames.take_timeout(POLL) else {
            continue;
        };
        let t = Instant::now();
        match segmenter.segment(&frame.image, px_per_mm) {
            Ok(mask) => {
                let mask = Arc::new(mask.clone());
                // The skin model on the same frame; should it fail, the skin mask is the
                // classical one for this frame. A grey camera's frame is not given to it: the
                // skin mask sets its view aside on a frame without colour.
                let skin = skin_model
                    .as_mut()
                    .filter(|_| !crate::perception::skin_mask::every_pixel_grey(&frame.image))
                    .and_then(|m| match m.segment(&frame.image, px_per_mm) {
                        Ok(s) => Some(Arc::new(s.clone())),
                        Err(err) => {
                            tracing::warn!(seq = frame.meta.seq, cause = %err, "skin model failed");
                            None
                        }
                    });
                *link.mask.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((frame.meta.seq, frame.image.clone(), mask, skin));
                tracing::trace!(
                    seq = frame.meta.seq,
                    ms = t.elapsed().as_secs_f64() * 1e3,
                    "mask"
                );
            }
            Err(err) => {
                tracing::warn!(seq = frame.meta.seq, cause = %err, "segmentation failed; frame skipped")
            }
        }
        if let Some(rest) = period.checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    tracing::debug!("segmentation stopped");
}

/// A captured frame with the source's truth, if any.
type Captures = Mailbox<(Frame, Option<Similarity>)>;

/// The stages, started.
#[derive(Debug)]
pub struct Running {
    /// What the HTTP side needs.
    pub state: AppState,
    stop: ShutdownTx,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops every stage and joins the threads.
    pub fn stop(mut self) {
        self.stop.trigger();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a pipeline thread panicked");
            }
        }
    }

    /// The shutdown trigger.
    pub fn shutdown_tx(&self) -> ShutdownTx {
        self.stop.clone()
    }
}

/// Opens the source on the capture thread and starts every stage.
///
/// # Errors
/// The source cannot be opened (no camera, empty folder, ...).
pub fn start(config: &ServeConfig) -> anyhow::Result<Running> {
    let segmenter = config
        .model_choice
        .load(config.session.view, config.px_per_mm)?;
    // With a dot model in the rig view, the skin mask fuses the bundled skin model, run beside
    // the dot model on its thread (`--no-model` runs the classical detector and mask alone).
    // Opened here, so that a skin model that cannot be opened stops `serve` before it serves.
    let skin_model = match (&segmenter, config.session.view) {
        (Some(_), crate::frame::View::Rig) => {
            Some(OnnxSegmenter::bundled_skin().with_context(|| {
                format!(
                    "cannot use the bundled skin model ({}); --no-model runs without it",
                    crate::perception::segment::BUNDLED_SKIN_MODEL_PATH
                )
            })?)
        }
        _ => None,
    };
    let session = LiveSession::new(config.session.clone());
    let (stop, shutdown) = shutdown::channel();
    let captures: Arc<Captures> = Arc::new(Mailbox::new());
    let hints: Arc<Mailbox<NeedleHint>> = Arc::new(Mailbox::new());
    let metrics = Arc::new(Metrics::new());

    // Capture: the source is opened on its own thread (a camera handle need not be `Send`).
    let (opened_tx, opened_rx) = std::sync::mpsc::sync_channel::<anyhow::Result<String>>(1);
    let capture = {
        let (config, captures, hints, metrics, shutdown) = (
            config.clone(),
            captures.clone(),
            hints.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let source = match open_source(&config, hints) {
                    Ok(s) => s,
                    Err(err) => {
                        let _ = opened_tx.send(Err(err));
                        return;
                    }
                };
                let _ = opened_tx.send(Ok(source.describe()));
                capture_loop(source, &captures, &metrics, &shutdown);
            })?
    };
    let description = match opened_rx.recv() {
        Ok(Ok(d)) => d,
        Ok(Err(err)) => {
            let _ = capture.join();
            return Err(err);
        }
        Err(_) => {
            let _ = capture.join();
            anyhow::bail!("the capture thread ended before opening the source");
        }
    };
    tracing::info!(source = %description, "source open");

    let mut state = AppState::new(
        description,
        config.model.clone(),
        config.max_clients,
        WS_BACKLOG_FRAMES,
        shutdown.clone(),
    );
    state.metrics = metrics;
    state.calibration = Arc::new(LiveCalibration::new(config.calibration_dir.clone()));
    state.design_dir = Arc::new(config.design_dir.clone());
    *state.people.lock().unwrap_or_else(|e| e.into_inner()) = crate::server::PeopleSlot {
        version: 0,
        people: record::schema::People {
            client: config.client.clone(),
            artist: config.artist.clone(),
        },
    };
    if let Some(design) = &config.design {
        let mut slot = state.design.lock().unwrap_or_else(|e| e.into_inner());
        slot.design = design.clone().with_defaults();
        slot.version += 1;
    }

    // Encoder: JPEG in parallel with detection.
    let to_encode: Arc<Mailbox<Frame>> = Arc::new(Mailbox::new());
    let encoded: Arc<Mailbox<(u64, Bytes)>> = Arc::new(Mailbox::new());
    let encoder = {
        let (to_encode, encoded, shutdown, quality) = (
            to_encode.clone(),
            encoded.clone(),
            shutdown.clone(),
            config.jpeg_quality,
        );
        let metrics = state.metrics.clone();
        std::thread::Builder::new()
            .name("encode".into())
            .spawn(move || encode_loop(&to_encode, &encoded, quality, &metrics, &shutdown))?
    };

    // Calibration mode: board detection on its own thread, throttled, on the latest frame.
    let calibrate = {
        let (calibration, shutdown) = (state.calibration.clone(), shutdown.clone());
        std::thread::Builder::new()
            .name("calibrate".into())
            .spawn(move || calibration.run_worker(&shutdown))?
    };

    // Segmentation: the model on its own thread, at its own pace, on the latest frame.
    let mut threads = vec![capture, encoder, calibrate];
    let model =
        match segmenter {
            Some(segmenter) => {
                let link = ModelLink {
                    frames: Arc::new(Mailbox::new()),
                    mask: Arc::new(LatestMask::default()),
                };
                let (frames, mask, shutdown, px_per_mm) = (
                    link.frames.clone(),
                    link.mask.clone(),
                    shutdown.clone(),
                    config.px_per_mm,
                );
                threads.push(std::thread::Builder::new().name("segment".into()).spawn(
                    move || {
                        segment_loop(
                            segmenter,
                            skin_model,
                            &ModelLink { frames, mask },
                            px_per_mm,
                            &shutdown,
                        )
                    },
                )?);
                Some(link)
            }
            None => None,
        };

    // Recording: the writer thread starts now, so that a file that cannot be created stops
    // `serve` before it serves anything.
    let recorder = match &config.record {
        Some(path) => Some(record::Recorder::create_with(
            path,
            record::schema::SessionInfo::new(config, &state.source, &state.model),
            config
                .calibration
                .as_ref()
                .map(record::schema::camera_calibration),
            config.record_overwrite,
        )?),
        None => None,
    };

    // Processing: detection, registration, planning, publication.
    let processing = {
        let (state, shutdown) = (state.clone(), shutdown.clone());
        std::thread::Builder::new()
            .name("process".into())
            .spawn(move || {
                let links = Links {
                    captures: &captures,
                    to_encode: &to_encode,
                    encoded: &encoded,
                    hints: &hints,
                    model: model.as_ref(),
                };
                process_loop(&state, &links, session, recorder, &shutdown)
            })?
    };
    threads.push(processing);
    Ok(Running {
        state,
        stop,
        threads,
    })
}

fn open_source(config: &ServeConfig, hints: Arc<Mailbox<NeedleHint>>) -> anyhow::Result<Source> {
    Ok(match &config.source {
        SourceSpec::Synthetic => Source::Demo(Box::new(DemoSource::new(config.demo(), hints))),
        SourceSpec::SyntheticBoard => Source::Board(Box::new(
            HeldBoard::new(config.held_board()).context("starting the synthetic board")?,
        )),
        SourceSpec::Camera(i) => Source::Camera(
            CameraSource::open(config.camera(*i)).with_context(|| format!("opening camera {i}"))?,
        ),
        SourceSpec::Images(dir) => Source::Images {
            source: ImageSource::open(dir)
                .with_context(|| format!("opening image folder {}", dir.display()))?,
            period: Duration::from_secs_f64(1.0 / config.fps.max(0.1)),
            next_due: None,
        },
    })
}

#[tracing::instrument(level = "debug", skip_all)]
fn capture_loop(mut source: Source, captures: &Captures, metrics: &Metrics, shutdown: &Shutdown) {
    if matches!(source, Source::Demo(_)) {
        crate::threads::step_back(crate::threads::Role::StandInCamera);
    }
    let mut stamper = Stamper::new(0);
    metrics.set_source_status(true, "streaming");
    while !shutdown.is_triggered() {
        match source.next(&mut stamper) {
            Ok(Captured::Frame(frame, truth)) => {
                metrics.record_captured();
                captures.put((frame, truth));
            }
            Ok(Captured::Status { connected, message }) => {
                if connected {
                    tracing::info!(%message, "source back");
                } else {
                    tracing::warn!(%message, "source down");
                }
                metrics.set_source_status(connected, message);
            }
            Err(err) => tracing::warn!(cause = %err, "skipping unreadable frame"),
        }
    }
    tracing::debug!("capture stopped");
}

fn encode_loop(
    to_encode: &Mailbox<Frame>,
    encoded: &Mailbox<(u64, Bytes)>,
    quality: u8,
    metrics: &Metrics,
    shutdown: &Shutdown,
) {
    let mut buf = Vec::new();
    while !shutdown.is_triggered() {
        let Some(frame) = to_encode.take_timeout(POLL) else {
            continue;
        };
        let _span = tracing::trace_span!("encode", seq = frame.meta.seq).entered();
        let t = Instant::now();
        match server::jpeg::encode_jpeg(&frame.image, quality, &mut buf) {
            Ok(()) => {
                encoded.put((frame.meta.seq, Bytes::copy_from_slice(&buf)));
                metrics.record_stage(Stage::Encode, t.elapsed());
            }
            Err(err) => {
                tracing::warn!(seq = frame.meta.seq, cause = %err, "skipping frame that cannot be encoded")
            }
        }
    }
}

/// The processing thread's channels to the other stages.
struct Links<'a> {
    captures: &'a Captures,
    to_encode: &'a Mailbox<Frame>,
    encoded: &'a Mailbox<(u64, Bytes)>,
    hints: &'a Mailbox<NeedleHint>,
    model: Option<&'a ModelLink>,
}

/// Waits for the JPEG of frame `seq` from the encoder thread; `None` on shutdown.
fn wait_encoded(encoded: &Mailbox<(u64, Bytes)>, seq: u64, shutdown: &Shutdown) -> Option<Bytes> {
    loop {
        match encoded.take_timeout(POLL) {
            Some((s, jpeg)) if s == seq => return Some(jpeg),
            Some(_) => continue,
            None if shutdown.is_triggered() => return None,
            None => {}
        }
    }
}

fn process_loop(
    state: &AppState,
    links: &Links<'_>,
    mut session: LiveSession,
    mut recorder: Option<record::Recorder>,
    shutdown: &Shutdown,
) {
    let Links {
        captures,
        to_encode,
        encoded,
        hints,
        model,
    } = *links;
    let metrics = &state.metrics;
    let mut design_version = 0;
    // The names the recording started with (`--client`, `--artist`) are version 0.
    let mut people_version = 0;
    // The first frame records the design it starts with.
    let mut design_changed = true;
    let mut last_seq: Option<u64> = None;
    while !shutdown.is_triggered() {
        let Some((frame, truth)) = captures.take_timeout(POLL) else {
            continue;
        };
        let meta = frame.meta;
        let _span = tracing::trace_span!("frame", seq = meta.seq).entered();
        if let Some(last) = last_seq {
            metrics.record_dropped(meta.seq.saturating_sub(last + 1));
        }
        last_seq = Some(meta.seq);
        metrics.record_stage(Stage::Queue, meta.captured_at.elapsed());
        {
            let slot = state.design.lock().unwrap_or_else(|e| e.into_inner());
            if slot.version != design_version {
                design_version = slot.version;
                session.set_design(slot.design.clone());
                design_changed = true;
            }
        }
        // The artist's commands, answered once applied.
        let commands =
            std::mem::take(&mut *state.commands.lock().unwrap_or_else(|e| e.into_inner()));
        for (command, reply) in commands {
            // The handler may have given up waiting: nothing to tell then.
            let _ = reply.send(session.apply(command));
        }

        let t = Instant::now();
        // The JPEG is for viewers and the recording: with neither, the frame is not encoded (a
        // tenth of the machine at 1280x720 and 30 fps). A viewer who connects gets the next one.
        let wanted = recorder.is_some() || state.frames.receiver_count() > 0;
        if wanted {
            to_encode.put(frame.clone());
        }
        state.calibration.offer(&frame);
        // Recording: detect on the decoded JPEG, the picture the file holds, so that a re-run
        // on the recording gives exactly these detections (see `record`).
        let (frame, jpeg) = match &recorder {
            Some(_) => {
                let Some(jpeg) = wait_encoded(encoded, meta.seq, shutdown) else {
                    break;
                };
                match record::decode_jpeg(meta.seq, &jpeg) {
                    Ok(image) => (
                        Frame {
                            meta,
                            image: Arc::new(image),
                        },
                        Some(jpeg),
                    ),
                    Err(err) => {
                        tracing::warn!(cause = %err, "skipping frame whose JPEG does not decode");
                        continue;
                    }
                }
            }
            None => (frame, None),
        };
        let mask = model.and_then(|m| {
            m.frames.put(frame.clone());
            m.mask.lock().unwrap_or_else(|e| e.into_inner()).clone()
        });
        let perception = match session.detect_with_mask(
            &frame,
            mask.as_ref().map(|(seq, image, dots, skin)| ModelView {
                seq: *seq,
                image,
                dots,
                skin: skin.as_deref(),
            }),
        ) {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(seq = meta.seq, cause = %err, "skipping malformed frame");
                continue;
            }
        };
        metrics.record_stage(Stage::Detect, t.elapsed());
        let t = Instant::now();
        let mut overlay = session.update(&perception, truth.as_ref());
        metrics.record_stage(Stage::Plan, t.elapsed());

        let jpeg = match jpeg {
            Some(jpeg) => jpeg,
            None if !wanted => Bytes::new(),
            None => match wait_encoded(encoded, meta.seq, shutdown) {
                Some(jpeg) => jpeg,
                None => break,
            },
        };

        overlay.source_status = metrics.source_status();
        overlay.latency_ms = meta.captured_at.elapsed().as_secs_f64() * 1e3;
        let calibration = state.calibration.overlay();
        let overlay_json = match serde_json::to_string(&server::WithCalibration {
            overlay: &overlay,
            calibration: calibration.as_deref(),
        }) {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(seq = meta.seq, cause = %err, "skipping overlay that cannot be serialised");
                continue;
            }
        };
        // No viewer is not an error: the frame is simply not seen.
        let overlay_json = Utf8Bytes::from(overlay_json);
        // Paused: the page holds the picture it has (the first paused frame goes out so that
        // it shows the pause); processing and recording go on.
        if !overlay.paused || !overlay.events.is_empty() {
            if wanted {
                let _ = state.frames.send(Arc::new(Packet {
                    seq: meta.seq,
                    overlay_json: overlay_json.clone(),
                    jpeg: jpeg.clone(),
                }));
            }
            metrics.record_published(meta.captured_at);
        }

        metrics.set_session(session.counters());
        let plan = session.plan_snapshot();
        let placed = session.take_placed();
        if let Some(rec) = recorder.as_mut() {
            let slot = state.people.lock().unwrap_or_else(|e| e.into_inner());
            if slot.version != people_version {
                people_version = slot.version;
                rec.set_people(slot.people.clone());
            }
            drop(slot);
            rec.offer(record::FrameRecord {
                seq: meta.seq,
                captured_at: meta.captured_at,
                jpeg,
                overlay,
                overlay_json,
                detections: record::schema::DetectionsMsg {
                    seq: meta.seq,
                    width: perception.width,
                    height: perception.height,
                    mask_seq: mask.as_ref().map(|m| m.0),
                    detections: perception.detections,
                },
                plan: plan.clone(),
                placed,
                design: design_changed.then(|| session.design().clone()),
            });
            metrics.set_recording(rec.status());
        }
        design_changed = false;
        *state.plan.lock().unwrap_or_else(|e| e.into_inner()) = Some(plan);
        hints.put(NeedleHint {
            seq: meta.seq,
            targets_in_image: session.targets_in_image(),
        });
    }
    if let Some(rec) = recorder {
        match rec.finish() {
            Ok(stats) => tracing::info!(
                frames = stats.frames_written,
                dropped = stats.frames_dropped,
                "recording finished with its summary and index"
            ),
            Err(err) => {
                tracing::error!(cause = %record::with_causes(&err), "recording not finished cleanly")
            }
        }
    }
    tracing::debug!("processing stopped");
}

/// Applied to each accepted socket. Best effort: a socket that refuses these options still
/// works, only less snappily.
fn tune_socket(tcp: &tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
    let _ = socket2::SockRef::from(tcp).set_send_buffer_size(WS_SEND_BUFFER_BYTES);
}

/// Binds `config.bind` and serves until `signal` resolves.
///
/// # Errors
/// The address cannot be bound, the source cannot be opened, or serving fails.
pub async fn run(
    config: ServeConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    serve(config, listener, signal).await
}

/// Serves on an already-bound listener (tests bind `127.0.0.1:0`) until `signal` resolves;
/// then stops every stage and joins the threads.
///
/// # Errors
/// The source cannot be opened, or serving fails.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let running = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || start(&config))
            .await
            .context("starting the pipeline")??
    };
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, "serving the page at http://{addr}/");
    let stop = running.shutdown_tx();
    let mut state = running.state.clone();
    state.access = std::sync::Arc::new(crate::server::Access::new(
        addr,
        &config.allow_hosts,
        config.token.clone(),
    ));
    let app = server::app(state);
    let served = server::listen::serve(listener, app, tune_socket, async move {
        signal.await;
        stop.trigger();
    })
    .await
    .context("serving HTTP");
    tokio::task::spawn_blocking(move || running.stop())
        .await
        .context("joining the pipeline")?;
    tracing::info!("stopped");
    served
}
