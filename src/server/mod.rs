//! The HTTP side: the page at `/`, the JSON API, Prometheus metrics and the frame WebSocket.
//!
//! [`app`] builds the router from an [`AppState`], so tests drive it with `oneshot` and the
//! pipeline serves it with `axum::serve`. Handlers never block: they read snapshots the
//! processing thread publishes, and write the design into a slot it picks up on its next frame.

mod calib;
pub mod guard;
pub mod jpeg;
pub mod listen;
mod routes;
pub mod ws;

pub use guard::Access;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use axum::http::{HeaderName, HeaderValue};
use axum::Router;
use tokio::sync::{broadcast, Semaphore};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::calib::{CalibSnapshot, LiveCalibration};
use crate::config::{DEFAULT_CALIBRATION_DIR, DEFAULT_DESIGN_DIR};
use crate::metrics::Metrics;
use crate::planning::Design;
use crate::session::{ArtistCommand, ArtistEvent, PlanSnapshot};
use crate::shutdown::Shutdown;

/// Requests that take longer than this get a 408 (the WebSocket upgrade itself is immediate).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One published frame: its overlay JSON and its JPEG, shared by every client.
#[derive(Debug, Clone)]
pub struct Packet {
    /// The frame's sequence number.
    pub seq: u64,
    /// The [`crate::session::OverlayMsg`] as JSON.
    pub overlay_json: Utf8Bytes,
    /// The picture, JPEG.
    pub jpeg: Bytes,
}

/// A frame's overlay as sent on the WebSocket: the session's message, plus the calibration
/// state (detected corners, coverage, RMS) while calibration mode is on.
#[derive(Debug, serde::Serialize)]
pub struct WithCalibration<'a, T> {
    /// The overlay message.
    #[serde(flatten)]
    pub overlay: &'a T,
    /// Calibration mode's state; absent when it is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<&'a CalibSnapshot>,
}

/// The client's and artist's names as the page sets them, with a version so that the
/// processing thread notices and the recording takes them.
#[derive(Debug, Default)]
pub struct PeopleSlot {
    /// Bumped on every change.
    pub version: u64,
    /// The names.
    pub people: crate::session::People,
}

/// The design as HTTP handlers set it, with a version so that the processing thread notices.
#[derive(Debug)]
pub struct DesignSlot {
    /// Bumped on every change.
    pub version: u64,
    /// The design (skin millimetres, session numbers filled in).
    pub design: Design,
}

impl Default for DesignSlot {
    fn default() -> Self {
        Self {
            version: 0,
            design: Design::default().with_defaults(),
        }
    }
}

/// An artist's command waiting for the processing thread, with where to send its outcome.
pub type PendingCommand = (
    ArtistCommand,
    tokio::sync::oneshot::Sender<Result<ArtistEvent, String>>,
);

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Live metrics.
    pub metrics: Arc<Metrics>,
    /// Published frames; each WebSocket client subscribes.
    pub frames: broadcast::Sender<Arc<Packet>>,
    /// The latest plan, written by the processing thread.
    pub plan: Arc<Mutex<Option<PlanSnapshot>>>,
    /// The design, written by handlers, read by the processing thread.
    pub design: Arc<Mutex<DesignSlot>>,
    /// The client's and artist's names (`serve --client/--artist`, the page).
    pub people: Arc<Mutex<PeopleSlot>>,
    /// The source, described.
    pub source: String,
    /// The model, described.
    pub model: String,
    /// Limits the WebSocket clients served at once.
    pub clients: Arc<Semaphore>,
    /// Viewer slots kept for the service's own page (a same-origin `Origin`), so that tools or
    /// scripts without one cannot take every slot and lock the artist's page out.
    pub page_clients: Arc<Semaphore>,
    /// Who may talk to the service ([`guard`]); the pipeline sets it from the bound address.
    pub access: Arc<Access>,
    /// Tells WebSocket tasks to end.
    pub shutdown: Shutdown,
    /// Calibration mode (`/api/calibration/*`).
    pub calibration: Arc<LiveCalibration>,
    /// The artist's commands for the processing thread, applied before the next frame.
    pub commands: Arc<Mutex<Vec<PendingCommand>>>,
    /// Where `POST /api/design/save` writes.
    pub design_dir: Arc<std::path::PathBuf>,
}

impl AppState {
    /// A state with no frames yet.
    pub fn new(
        source: String,
        model: String,
        max_clients: usize,
        backlog: usize,
        shutdown: Shutdown,
    ) -> Self {
        let (frames, _) = broadcast::channel(backlog.max(1));
        Self {
            metrics: Arc::new(Metrics::new()),
            frames,
            plan: Arc::new(Mutex::new(None)),
            design: Arc::new(Mutex::new(DesignSlot::default())),
            people: Arc::new(Mutex::new(PeopleSlot::default())),
            source,
            model,
            clients: Arc::new(Semaphore::new(
                max_clients.saturating_sub(RESERVED_PAGE_SLOTS).max(1),
            )),
            page_clients: Arc::new(Semaphore::new(RESERVED_PAGE_SLOTS)),
            access: Arc::new(Access::loopback()),
            shutdown,
            calibration: Arc::new(LiveCalibration::new(DEFAULT_CALIBRATION_DIR.into())),
            commands: Arc::new(Mutex::new(Vec::new())),
            design_dir: Arc::new(DEFAULT_DESIGN_DIR.into()),
        }
    }
}

/// Viewer slots (of `max_clients`) only the service's own page can take.
pub const RESERVED_PAGE_SLOTS: usize = 8;

/// The router: page, API, metrics, WebSocket, behind [`protect`].
pub fn app(state: AppState) -> Router {
    let access = state.access.clone();
    protect(routes(state), access)
}

/// The page, API, metrics and WebSocket routes, unprotected: [`protect`] them before serving
/// (`stipple replay` merges its own routes first).
pub fn routes(state: AppState) -> Router {
    routes::router().with_state(state)
}

/// Wraps `router` in the layers every route needs: the access [`guard`] (Host, Origin,
/// content type, token), the security response headers, HTTP tracing and a request timeout.
pub fn protect(router: Router, access: Arc<Access>) -> Router {
    let mut router = router
        .layer(axum::middleware::from_fn_with_state(access, guard::guard))
        .layer(TraceLayer::new_for_http())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    for (name, value) in guard::SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    router
}
