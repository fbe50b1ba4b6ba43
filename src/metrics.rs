//! Live metrics: frame rate, per-stage latency percentiles and counters, shared between the
//! pipeline threads (writers) and the HTTP handlers (readers) behind one short-held mutex.
//!
//! The headline latency (`total`) runs from `FrameMeta::captured_at` to the moment the frame's
//! overlay message is sent (rerun's `re_smart_channel` `latency_sec()`), `queue` from capture
//! to the start of processing; `detect`, `plan` and `encode` are each stage's own duration.
//! All are percentiles over a sliding window of recent frames; the frame rate counts frames
//! published in the last [`FPS_WINDOW`] (kornia-io `fps_counter.rs`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// How many recent frames the latency percentiles cover (about 10 s at 30 fps).
pub const LATENCY_WINDOW: usize = 300;
/// The span over which frames are counted for the frame rate.
pub const FPS_WINDOW: Duration = Duration::from_secs(2);

/// The stages whose latency is tracked, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Captured to handed to perception (queueing in the one-slot mailbox).
    Queue,
    /// Dot detection (duration).
    Detect,
    /// Registration, map upkeep and planning (duration).
    Plan,
    /// JPEG encoding of the picture, on its own thread (duration).
    Encode,
    /// Captured to overlay message sent: the number that matters at the chair.
    Total,
}

impl Stage {
    /// All stages, for iteration.
    pub const ALL: [Stage; 5] = [
        Stage::Queue,
        Stage::Detect,
        Stage::Plan,
        Stage::Encode,
        Stage::Total,
    ];

    /// Name in JSON and Prometheus labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Detect => "detect",
            Stage::Plan => "plan",
            Stage::Encode => "encode",
            Stage::Total => "total",
        }
    }
}

/// Percentiles of a latency window, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

#[derive(Debug, Default)]
struct Window {
    samples_ms: VecDeque<f64>,
}

impl Window {
    fn push(&mut self, ms: f64) {
        if self.samples_ms.len() == LATENCY_WINDOW {
            self.samples_ms.pop_front();
        }
        self.samples_ms.push_back(ms);
    }

    fn percentiles(&self) -> Percentiles {
        if self.samples_ms.is_empty() {
            return Percentiles::default();
        }
        let mut v: Vec<f64> = self.samples_ms.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        // Nearest-rank percentile.
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

/// Counters the session reports besides timing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionCounters {
    /// Pigment dots placed since the service started.
    pub dots_placed: u64,
    /// Recommendations marked done by a dot placed on them.
    pub recommendations_done: u64,
    /// Dots in the skin map.
    pub map_dots: u64,
    /// Median drift of the recommendations relative to the skin, millimetres, over the last
    /// minute (synthetic source only: needs the true head pose).
    pub drift_mm_median: Option<f64>,
    /// Frames that could not be registered (prediction kept).
    pub frames_unregistered: u64,
    /// Placed dots closer to another than the design's minimum spacing (the blowout guard).
    pub spacing_violations: u64,
    /// Placements the artist undid.
    pub dots_undone: u64,
    /// Detections the artist marked "not a dot".
    pub not_a_dot: u64,
    /// Whether the artist paused the plan.
    pub paused: bool,
    /// Plans made this session: the first, one per design change or "not a dot", and one
    /// each time the plan grew over skin that came into view.
    pub plans: u64,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    stages: Vec<Window>,
    published: VecDeque<Instant>,
    frames_captured: u64,
    frames_processed: u64,
    frames_dropped: u64,
    ws_clients: u64,
    ws_frames_skipped: u64,
    source_connected: bool,
    source_status: String,
    counters: SessionCounters,
    recording: Option<RecorderStatus>,
}

/// Thread-safe metrics shared by the whole service.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// A snapshot of [`Metrics`], the body of `GET /api/status` (plus what the server adds).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Frames published per second over the last [`FPS_WINDOW`].
    pub fps: f64,
    /// Capture to overlay message sent.
    pub latency_ms: Percentiles,
    /// Every tracked stage, by name.
    pub stage_latency_ms: std::collections::BTreeMap<&'static str, Percentiles>,
    /// Frames taken from the source.
    pub frames_captured: u64,
    /// Frames that went through the whole pipeline.
    pub frames_processed: u64,
    /// Frames dropped because a newer one was ready (latest frame wins).
    pub frames_dropped: u64,
    /// WebSocket clients connected now.
    pub ws_clients: u64,
    /// Frames skipped by slow WebSocket clients, all clients together.
    pub ws_frames_skipped: u64,
    /// Whether the source is delivering frames.
    pub source_connected: bool,
    /// Human-readable source state ("streaming", "camera 0 disconnected, retrying", ...).
    pub source_status: String,
    /// Seconds since start.
    pub uptime_s: f64,
    /// Session counters.
    #[serde(flatten)]
    pub session: SessionCounters,
    /// The recorder (`serve --record`): file, frames written, frames it dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecorderStatus>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                started: Instant::now(),
                stages: Stage::ALL.iter().map(|_| Window::default()).collect(),
                published: VecDeque::new(),
                frames_captured: 0,
                frames_processed: 0,
                frames_dropped: 0,
                ws_clients: 0,
                ws_frames_skipped: 0,
                source_connected: false,
                source_status: "starting".into(),
                counters: SessionCounters::default(),
                recording: None,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic while holding this lock cannot leave the numbers inconsistent in a way that
        // matters, so a poisoned lock is simply taken over.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Records one stage's latency (see [`Stage`] for what each one spans).
    pub fn record_stage(&self, stage: Stage, elapsed: Duration) {
        let idx = Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0);
        self.with(|m| m.stages[idx].push(elapsed.as_secs_f64() * 1e3));
    }

    /// Records a frame whose overlay message was just sent.
    pub fn record_published(&self, captured_at: Instant) {
        let now = Instant::now();
        let total = now.saturating_duration_since(captured_at);
        self.with(|m| {
            m.frames_processed += 1;
            m.stages[Stage::ALL.len() - 1].push(total.as_secs_f64() * 1e3);
            m.published.push_back(now);
            while m
                .published
                .front()
                .is_some_and(|t| now.duration_since(*t) > FPS_WINDOW)
            {
                m.published.pop_front();
            }
        });
    }

    /// Counts a captured frame.
    pub fn record_captured(&self) {
        self.with(|m| m.frames_captured += 1);
    }

    /// Counts frames dropped in favour of newer ones.
    pub fn record_dropped(&self, n: u64) {
        self.with(|m| m.frames_dropped += n);
    }

    /// Sets the source state shown on the page and in `/api/status`.
    pub fn set_source_status(&self, connected: bool, status: impl Into<String>) {
        let status = status.into();
        self.with(|m| {
            m.source_connected = connected;
            m.source_status = status;
        });
    }

    /// The source state as last set.
    pub fn source_status(&self) -> String {
        self.with(|m| m.source_status.clone())
    }

    /// Replaces the session counters.
    pub fn set_session(&self, counters: SessionCounters) {
        self.with(|m| m.counters = counters);
    }

    /// Replaces the recorder's status.
    pub fn set_recording(&self, status: RecorderStatus) {
        self.with(|m| m.recording = Some(status));
    }

    /// A WebSocket client connected (`+1`) or left (`-1`).
    pub fn ws_client_delta(&self, delta: i64) {
        self.with(|m| m.ws_clients = m.ws_clients.saturating_add_signed(delta));
    }

    /// A slow client skipped `n` frames.
    pub fn ws_skipped(&self, n: u64) {
        self.with(|m| m.ws_frames_skipped += n);
    }

    /// A consistent snapshot of everything.
    pub fn snapshot(&self) -> Snapshot {
        self.with(|m| {
            let now = Instant::now();
            while m
                .published
                .front()
                .is_some_and(|t| now.duration_since(*t) > FPS_WINDOW)
            {
                m.published.pop_front();
            }
            let span = now.duration_since(m.started).min(FPS_WINDOW).as_secs_f64();
            let fps = if span > 0.0 {
                m.published.len() as f64 / span
            } else {
                0.0
            };
            let stage_latency_ms = Stage::ALL
                .iter()
                .zip(&m.stages)
                .map(|(s, w)| (s.as_str(), w.percentiles()))
                .collect();
            Snapshot {
                fps,
                latency_ms: m.stages[Stage::ALL.len() - 1].percentiles(),
                stage_latency_ms,
                frames_captured: m.frames_captured,
                frames_processed: m.frames_processed,
                frames_dropped: m.frames_dropped,
                ws_clients: m.ws_clients,
                ws_frames_skipped: m.ws_frames_skipped,
                source_connected: m.source_connected,
                source_status: m.source_status.clone(),
                uptime_s: now.duration_since(m.started).as_secs_f64(),
                session: m.counters.clone(),
                recording: m.recording.clone(),
            }
        })
    }
}

impl Snapshot {
    /// Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: f64| {
            let _ = writeln!(out, "# HELP stipple_{name} {help}");
            let _ = writeln!(out, "# TYPE stipple_{name} {kind}");
            let _ = writeln!(out, "stipple_{name} {value}");
        };
        gauge("fps", "Frames published per second.", "gauge", self.fps);
        gauge(
            "frames_captured_total",
            "Frames taken from the source.",
            "counter",
            self.frames_captured as f64,
        );
        gauge(
            "frames_processed_total",
            "Frames through the whole pipeline.",
            "counter",
            self.frames_processed as f64,
        );
        gauge(
            "frames_dropped_total",
            "Stale frames dropped (latest frame wins).",
            "counter",
            self.frames_dropped as f64,
        );
        gauge(
            "ws_clients",
            "WebSocket clients connected.",
            "gauge",
            self.ws_clients as f64,
        );
        gauge(
            "ws_frames_skipped_total",
            "Frames skipped by slow WebSocket clients.",
            "counter",
            self.ws_frames_skipped as f64,
        );
        gauge(
            "source_connected",
            "1 while the source delivers frames.",
            "gauge",
            f64::from(u8::from(self.source_connected)),
        );
        gauge(
            "dots_placed_total",
            "Pigment dots placed this session.",
            "counter",
            self.session.dots_placed as f64,
        );
        gauge(
            "spacing_violations_total",
            "Placed dots closer to another than the minimum spacing (blowout guard).",
            "counter",
            self.session.spacing_violations as f64,
        );
        gauge(
            "map_dots",
            "Dots in the skin map.",
            "gauge",
            self.session.map_dots as f64,
        );
        if let Some(r) = &self.recording {
            gauge(
                "record_frames_dropped_total",
                "Frames dropped from the recording (writer behind); live frames are not affected.",
                "counter",
                r.frames_dropped as f64,
            );
        }
        if let Some(d) = self.session.drift_mm_median {
            gauge(
                "registration_drift_mm",
                "Median drift of the plan on the skin (synthetic only).",
                "gauge",
                d,
            );
        }
        let _ = writeln!(
            out,
            "# HELP stipple_stage_latency_ms Capture-to-stage-end latency, sliding window."
        );
        let _ = writeln!(out, "# TYPE stipple_stage_latency_ms gauge");
        for (stage, p) in &self.stage_latency_ms {
            for (q, v) in [("0.5", p.p50), ("0.95", p.p95), ("0.99", p.p99)] {
                let _ = writeln!(
                    out,
                    "stipple_stage_latency_ms{{stage=\"{stage}\",quantile=\"{q}\"}} {v}"
                );
            }
        }
        out
    }
}

/// The recorder's state for `/api/status` and the page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecorderStatus {
    /// The file being written.
    pub file: String,
    /// Frames written.
    pub frames_written: u64,
    /// Frames dropped from the recording (writer behind or failed); never live frames.
    pub frames_dropped: u64,
    /// Message bytes written.
    pub bytes_written: u64,
    /// Why writing stopped, if it did.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut w = Window::default();
        for i in 1..=100 {
            w.push(f64::from(i));
        }
        assert_eq!(
            w.percentiles(),
            Percentiles {
                p50: 50.0,
                p95: 95.0,
                p99: 99.0
            }
        );
    }

    #[test]
    fn prometheus_text_names_every_stage() {
        let m = Metrics::new();
        m.record_published(Instant::now());
        let text = m.snapshot().to_prometheus();
        for s in Stage::ALL {
            assert!(
                text.contains(&format!("stage=\"{}\"", s.as_str())),
                "{text}"
            );
        }
        assert!(text.contains("stipple_frames_processed_total 1"));
    }
}
