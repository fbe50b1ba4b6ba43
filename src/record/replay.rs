//! `stipple replay FILE.mcap`: the live page, served from a recording.
//!
//! The page, the API and the WebSocket are the live service's ([`crate::server::app`]); a
//! player task publishes the recorded frames (overlay JSON, then JPEG, as live) at their
//! recorded pace times `--speed` (from the first viewer on), and `/api/replay` adds the
//! controls: `GET` for the state,
//! `POST {"action": "play" | "pause" | "step" | "seek", ...}` to drive it. The page loads its
//! replay controls (`/replay.js`) when `/api/replay` answers.
//!
//! With a re-run ([`super::rerun`]), a worker thread re-runs perception and planning on the
//! recorded frames ahead of the player, and the page can switch between what was recorded and
//! what the re-run sees (`"view": "recorded" | "rerun"`); `/api/replay` carries the running
//! comparison.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::ws::Utf8Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::reader::Recording;
use super::rerun::{RerunFrame, RerunSummary, Rerunner};
use crate::config::{ModelChoice, MAX_WS_CLIENTS, WS_BACKLOG_FRAMES};
use crate::metrics::SessionCounters;
use crate::server::{self, AppState, Packet};
use crate::shutdown::{self, Shutdown};

const REPLAY_JS: &str = include_str!("page/replay.js");
/// While paused, the current frame is sent again this often (for viewers who just arrived).
const REPEAT_PAUSED: Duration = Duration::from_millis(500);
/// The player never sleeps longer than this, so controls take effect at once anyway.
const TICK: Duration = Duration::from_millis(50);
/// Slowest and fastest playback.
const SPEED_RANGE: (f64, f64) = (0.05, 20.0);

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Playback speed (1 = as recorded).
    pub speed: f64,
    /// Start playing at once (else paused on the first frame).
    pub autoplay: bool,
    /// Re-run perception and planning with this model.
    pub rerun: Option<ModelChoice>,
    /// The access token every request must carry (set when bound beyond loopback).
    pub token: Option<String>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            speed: 1.0,
            autoplay: true,
            rerun: None,
            token: None,
        }
    }
}

/// Which overlay the player shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// What was recorded (what the artist saw).
    Recorded,
    /// What the re-run sees.
    Rerun,
}

/// The player's controls.
#[derive(Debug)]
struct Control {
    index: usize,
    playing: bool,
    speed: f64,
    view: View,
    /// Frames published so far (a viewer can tell a new frame from a repeat).
    published: u64,
}

/// Frames re-run so far, and how they compare.
#[derive(Debug, Default)]
struct RerunStore {
    frames: Vec<Arc<RerunFrame>>,
    summary: RerunSummary,
    error: Option<String>,
    done: bool,
}

/// The player: the recording, its controls and the re-run's results.
#[derive(Debug)]
pub struct Player {
    rec: Arc<Recording>,
    control: Mutex<Control>,
    wake: Notify,
    rerun: Option<Mutex<RerunStore>>,
}

/// `GET /api/replay`.
#[derive(Debug, Serialize)]
pub struct ReplayStatus {
    /// The recording.
    pub file: String,
    /// Frames in it.
    pub frames: usize,
    /// Seconds from first to last frame.
    pub duration_s: f64,
    /// Whether the file ends with its summary (a clean stop).
    pub finished: bool,
    /// Why reading stopped early (a truncated file), if it did.
    pub damage: Option<String>,
    /// Index of the frame shown.
    pub index: usize,
    /// Its sequence number.
    pub seq: u64,
    /// Its time from the first frame, seconds.
    pub t_s: f64,
    /// Playing or paused.
    pub playing: bool,
    /// Playback speed.
    pub speed: f64,
    /// Which overlay is shown.
    pub view: View,
    /// Frames published (including repeats while paused).
    pub published: u64,
    /// The re-run, when there is one.
    pub rerun: Option<RerunStatus>,
}

/// The re-run's progress and comparison.
#[derive(Debug, Serialize)]
pub struct RerunStatus {
    /// Frames re-run so far.
    pub done: usize,
    /// Whether every frame has been re-run.
    pub complete: bool,
    /// How it compares.
    pub summary: RerunSummary,
    /// Why it stopped, if it failed.
    pub error: Option<String>,
}

/// `POST /api/replay`.
#[derive(Debug, Deserialize)]
pub struct ReplayCommand {
    /// `play`, `pause`, `step` or `seek`.
    pub action: String,
    /// `step`: frames to move (default 1, negative goes back).
    #[serde(default)]
    pub by: Option<i64>,
    /// `seek`: frame index.
    #[serde(default)]
    pub index: Option<usize>,
    /// `seek`: time from the first frame, seconds.
    #[serde(default)]
    pub t_s: Option<f64>,
    /// Any action: new speed.
    #[serde(default)]
    pub speed: Option<f64>,
    /// Any action: which overlay to show.
    #[serde(default)]
    pub view: Option<View>,
}

impl Player {
    /// A player on `rec`, paused on the first frame unless `autoplay`.
    pub fn new(rec: Arc<Recording>, opts: &ReplayOptions) -> Self {
        Self {
            control: Mutex::new(Control {
                index: 0,
                playing: opts.autoplay,
                speed: opts.speed.clamp(SPEED_RANGE.0, SPEED_RANGE.1),
                view: View::Recorded,
                published: 0,
            }),
            wake: Notify::new(),
            rerun: opts
                .rerun
                .as_ref()
                .map(|_| Mutex::new(RerunStore::default())),
            rec,
        }
    }

    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn t_s(&self, index: usize) -> f64 {
        let first = self.rec.frames.first().map_or(0, |f| f.log_time_ns);
        self.rec
            .frames
            .get(index)
            .map_or(0.0, |f| f.log_time_ns.saturating_sub(first) as f64 / 1e9)
    }

    /// The state, for `GET /api/replay`.
    pub fn status(&self) -> ReplayStatus {
        let c = self.control();
        let rerun = self.rerun.as_ref().map(|r| {
            let r = r.lock().unwrap_or_else(|e| e.into_inner());
            RerunStatus {
                done: r.frames.len(),
                complete: r.done,
                summary: r.summary.clone(),
                error: r.error.clone(),
            }
        });
        ReplayStatus {
            file: self.rec.path.display().to_string(),
            frames: self.rec.frames.len(),
            duration_s: self.rec.duration_s(),
            finished: self.rec.finished,
            damage: self.rec.damage.clone(),
            index: c.index,
            seq: self.rec.frames.get(c.index).map_or(0, |f| f.seq),
            t_s: self.t_s(c.index),
            playing: c.playing,
            speed: c.speed,
            view: c.view,
            published: c.published,
            rerun,
        }
    }

    /// Applies a command.
    ///
    /// # Errors
    /// A message for the client: unknown action, a seek outside the recording, a re-run view
    /// without a re-run.
    pub fn command(&self, cmd: &ReplayCommand) -> Result<(), String> {
        let last = self.rec.frames.len().saturating_sub(1);
        let mut c = self.control();
        if let Some(speed) = cmd.speed {
            if !(speed.is_finite() && speed > 0.0) {
                return Err(format!("speed must be positive, got {speed}"));
            }
            c.speed = speed.clamp(SPEED_RANGE.0, SPEED_RANGE.1);
        }
        if let Some(view) = cmd.view {
            if view == View::Rerun && self.rerun.is_none() {
                return Err("no re-run: start replay with --rerun".into());
            }
            c.view = view;
        }
        match cmd.action.as_str() {
            "play" => {
                if c.index >= last {
                    c.index = 0;
                }
                c.playing = true;
            }
            "pause" => c.playing = false,
            "step" => {
                c.playing = false;
                let by = cmd.by.unwrap_or(1);
                c.index = (c.index as i64).saturating_add(by).clamp(0, last as i64) as usize;
            }
            "seek" => {
                c.playing = false;
                c.index = match (cmd.index, cmd.t_s) {
                    (Some(i), _) if i <= last => i,
                    (Some(i), _) => return Err(format!("index {i} is past the last frame {last}")),
                    (None, Some(t)) => {
                        let duration = self.rec.duration_s();
                        if !(t.is_finite() && (0.0..=duration).contains(&t)) {
                            return Err(format!(
                                "t_s must be between 0 and {duration:.3} s (the recording's length), got {t}"
                            ));
                        }
                        let first = self.rec.frames.first().map_or(0, |f| f.log_time_ns);
                        let at = first.saturating_add((t * 1e9) as u64);
                        self.rec
                            .frames
                            .partition_point(|f| f.log_time_ns < at)
                            .min(last)
                    }
                    (None, None) => return Err("seek needs index or t_s".into()),
                };
            }
            "view" | "speed" => {}
            other => {
                return Err(format!(
                    "unknown action {other:?} (play, pause, step, seek)"
                ))
            }
        }
        // The player publishes the new state at once.
        drop(c);
        self.wake.notify_one();
        Ok(())
    }

    /// The packet for frame `index` in the current view; `None` while the re-run has not
    /// reached it.
    fn packet(&self, index: usize, view: View) -> Option<(Arc<Packet>, Option<Arc<RerunFrame>>)> {
        let f = self.rec.frames.get(index)?;
        let (overlay_json, rerun) = match (view, &self.rerun) {
            (View::Rerun, Some(r)) => {
                let r = r.lock().unwrap_or_else(|e| e.into_inner());
                let rf = r.frames.get(index)?.clone();
                (rf.overlay_json.clone(), Some(rf))
            }
            _ => (f.overlay_json.clone(), None),
        };
        Some((
            Arc::new(Packet {
                seq: f.seq,
                overlay_json: Utf8Bytes::from(overlay_json),
                jpeg: f.jpeg.clone(),
            }),
            rerun,
        ))
    }

    /// Publishes frames until shutdown.
    async fn run(self: Arc<Self>, state: AppState, mut shutdown: Shutdown) {
        // Playback starts with the first viewer (or the first command), so that whoever opens
        // the page sees the session from its start.
        while state.frames.receiver_count() == 0 {
            tokio::select! {
                biased;
                () = shutdown.wait() => return,
                () = self.wake.notified() => break,
                () = tokio::time::sleep(TICK) => {}
            }
        }
        let mut shown: Option<(usize, View)> = None;
        let mut last_sent = Instant::now();
        // When the frame shown became due, and the frame's recorded time.
        let mut anchor: Option<(Instant, u64)> = None;
        loop {
            let (index, playing, speed, view) = {
                let c = self.control();
                (c.index, c.playing, c.speed, c.view)
            };
            let changed = shown != Some((index, view));
            if changed || last_sent.elapsed() >= REPEAT_PAUSED && !playing {
                if let Some((packet, rerun)) = self.packet(index, view) {
                    self.publish(&state, index, packet, rerun.as_deref());
                    shown = Some((index, view));
                    last_sent = Instant::now();
                    if changed {
                        anchor = Some((Instant::now(), self.rec.frames[index].log_time_ns));
                    }
                }
            }
            // Advance when the next frame is due at this speed.
            let mut wait = TICK;
            if playing && shown == Some((index, view)) {
                match (self.rec.frames.get(index + 1), anchor) {
                    (Some(next), Some((at, t0))) => {
                        let gap = next.log_time_ns.saturating_sub(t0) as f64 / 1e9 / speed;
                        let due = at + Duration::from_secs_f64(gap.min(10.0));
                        let now = Instant::now();
                        if due <= now {
                            let mut c = self.control();
                            if c.index == index && c.playing {
                                c.index = index + 1;
                            }
                            continue;
                        }
                        wait = wait.min(due - now);
                    }
                    (None, _) => self.control().playing = false,
                    _ => {}
                }
            }
            tokio::select! {
                biased;
                () = shutdown.wait() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::debug!("player stopped");
    }

    fn publish(
        &self,
        state: &AppState,
        index: usize,
        packet: Arc<Packet>,
        rerun: Option<&RerunFrame>,
    ) {
        let f = &self.rec.frames[index];
        // No viewer is not an error.
        let _ = state.frames.send(packet);
        let overlay = rerun.map_or(&f.overlay, |r| &r.overlay);
        // The status shows the latency the session had when it was recorded (replaying itself
        // has none worth showing: the page read "0/0 ms").
        let ms = f.overlay.latency_ms;
        let ms = if ms.is_finite() {
            ms.clamp(0.0, 60_000.0)
        } else {
            0.0
        };
        let recorded = Duration::from_secs_f64(ms / 1e3);
        let now = Instant::now();
        state
            .metrics
            .record_published(now.checked_sub(recorded).unwrap_or(now));
        state.metrics.set_session(SessionCounters {
            dots_placed: overlay.dots_placed,
            recommendations_done: overlay.recs_done,
            map_dots: f.plan.as_ref().map_or(0, |p| p.map_dots as u64),
            drift_mm_median: None,
            frames_unregistered: 0,
            spacing_violations: overlay.spacing_violations,
            paused: overlay.paused,
            ..SessionCounters::default()
        });
        if let Some(plan) = &f.plan {
            *state.plan.lock().unwrap_or_else(|e| e.into_inner()) = Some(plan.clone());
        }
        // The page shows the design in force on this frame (changing it does not change the
        // recording).
        let design = self.rec.design_at(f.seq);
        let mut slot = state.design.lock().unwrap_or_else(|e| e.into_inner());
        if slot.design != design {
            slot.design = design;
        }
        drop(slot);
        let mut c = self.control();
        c.published += 1;
    }

    /// Re-runs every frame on the calling thread, filling the store as it goes.
    fn rerun_worker(&self, model: &ModelChoice, shutdown: &Shutdown) {
        let Some(store) = &self.rerun else { return };
        let set_error = |e: String| {
            let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
            s.error = Some(e);
            s.done = true;
        };
        let mut r = match Rerunner::new(&self.rec, model) {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(cause = %format!("{err:#}"), "re-run cannot start");
                return set_error(format!("{err:#}"));
            }
        };
        while !shutdown.is_triggered() {
            match r.step(&self.rec) {
                Some(Ok(f)) => {
                    let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
                    s.frames.push(Arc::new(f));
                    s.summary = r.summary().clone();
                }
                Some(Err(err)) => {
                    tracing::error!(cause = %format!("{err:#}"), "re-run stopped");
                    return set_error(format!("{err:#}"));
                }
                None => break,
            }
        }
        let summary = r.summary().clone();
        tracing::info!(?summary, "re-run done");
        store.lock().unwrap_or_else(|e| e.into_inner()).done = true;
        self.wake.notify_one();
    }
}

async fn get_replay(State(player): State<Arc<Player>>) -> Json<ReplayStatus> {
    Json(player.status())
}

async fn post_replay(
    State(player): State<Arc<Player>>,
    Json(cmd): Json<ReplayCommand>,
) -> Result<Json<ReplayStatus>, (StatusCode, Json<serde_json::Value>)> {
    player.command(&cmd).map_err(|m| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "error": m })),
        )
    })?;
    Ok(Json(player.status()))
}

async fn replay_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        REPLAY_JS,
    )
}

/// The live router plus the replay controls.
pub fn app(state: AppState, player: Arc<Player>) -> Router {
    let controls = Router::new()
        .route("/api/replay", get(get_replay).post(post_replay))
        .route("/replay.js", get(replay_js))
        .with_state(player);
    let access = state.access.clone();
    server::protect(server::routes(state).merge(controls), access)
}

/// Serves `rec` on an already-bound listener until `signal` resolves.
///
/// # Errors
/// Serving fails.
pub async fn serve(
    rec: Recording,
    opts: ReplayOptions,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, shutdown) = shutdown::channel();
    let model = match &opts.rerun {
        Some(m) => format!("re-run with {}", describe(m)),
        None => rec.info.model.clone(),
    };
    let source = format!("replay of {}", rec.path.display());
    let state = AppState::new(
        source,
        model,
        MAX_WS_CLIENTS,
        WS_BACKLOG_FRAMES,
        shutdown.clone(),
    );
    state.metrics.set_source_status(true, "streaming");
    let rec = Arc::new(rec);
    let player = Arc::new(Player::new(rec, &opts));
    let worker = match opts.rerun.clone() {
        Some(model) => {
            let (player, shutdown) = (player.clone(), shutdown.clone());
            Some(
                std::thread::Builder::new()
                    .name("rerun".into())
                    .spawn(move || player.rerun_worker(&model, &shutdown))
                    .context("starting the re-run thread")?,
            )
        }
        None => None,
    };
    let playing = tokio::spawn(player.clone().run(state.clone(), shutdown.clone()));
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, "replaying at http://{addr}/");
    let mut state = state;
    state.access = Arc::new(server::Access::new(addr, &[], opts.token.clone()));
    let served = server::listen::serve(
        listener,
        app(state, player),
        |tcp| {
            let _ = tcp.set_nodelay(true);
        },
        {
            let stop = stop.clone();
            async move {
                signal.await;
                stop.trigger();
            }
        },
    )
    .await
    .context("serving HTTP");
    stop.trigger();
    let _ = playing.await;
    if let Some(w) = worker {
        tokio::task::spawn_blocking(move || w.join())
            .await
            .context("joining the re-run thread")?
            .map_err(|_| anyhow::anyhow!("the re-run thread panicked"))?;
    }
    served
}

/// Binds `bind` and serves `rec` until `signal` resolves.
///
/// # Errors
/// The address cannot be bound, or serving fails.
pub async fn run(
    rec: Recording,
    opts: ReplayOptions,
    bind: std::net::SocketAddr,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    // The terminal says where to look and when playing starts (issue 21: it said nothing).
    let addr = listener.local_addr().context("reading the bound address")?;
    println!(
        "replaying {} ({} frames, {:.0} s) at http://{addr}/\n{}",
        rec.path.display(),
        rec.frames.len(),
        rec.duration_s(),
        if opts.autoplay {
            "playback starts when the first viewer opens the page (or on the first command to /api/replay); Ctrl-C stops"
        } else {
            "paused on the first frame (--paused): press play on the page; Ctrl-C stops"
        }
    );
    serve(rec, opts, listener, signal).await
}

fn describe(m: &ModelChoice) -> String {
    match m {
        ModelChoice::None => crate::config::MODEL_NONE.into(),
        ModelChoice::Bundled => crate::config::MODEL_BUNDLED.into(),
        ModelChoice::File(p) => p.display().to_string(),
    }
}
