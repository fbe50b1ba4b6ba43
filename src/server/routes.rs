//! HTTP routes: the page and its assets (embedded in the binary), `/api/*` JSON, `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ws, AppState};
use crate::metrics::Snapshot;
use crate::session::{Design, Zone};

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const APP_CSS: &str = include_str!("page/app.css");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/api/status", get(status))
        .route("/metrics", get(metrics))
        .route("/api/plan", get(plan))
        .route("/api/design", get(get_design).put(put_design))
        .route(
            "/api/zones",
            axum::routing::post(add_zone).delete(clear_zones),
        )
        .route("/api/hairline", axum::routing::post(set_hairline))
        .route("/ws", get(ws::handler))
        .merge(super::calib::router())
}

/// An API error: the client gets the status and a short message; nothing internal leaks.
#[derive(Debug)]
pub(super) enum AppError {
    /// The request is well-formed but not acceptable (the message says why).
    Invalid(String),
    /// Nothing to answer yet (no frame processed).
    NotReady,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            AppError::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no frame processed yet".into(),
            ),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}

/// The body of `GET /api/status`.
#[derive(Debug, Serialize)]
struct Status {
    #[serde(flatten)]
    snapshot: Snapshot,
    source: String,
    model: String,
}

async fn status(State(state): State<AppState>) -> Json<serde_json::Value> {
    let body = Status {
        snapshot: state.metrics.snapshot(),
        source: state.source.clone(),
        model: state.model.clone(),
    };
    // Serialising plain numbers and strings cannot fail; `Null` would only hide a bug.
    Json(serde_json::to_value(body).unwrap_or(serde_json::Value::Null))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.snapshot().to_prometheus(),
    )
}

async fn plan(
    State(state): State<AppState>,
) -> Result<Json<crate::session::PlanSnapshot>, AppError> {
    let plan = state.plan.lock().unwrap_or_else(|e| e.into_inner()).clone();
    plan.map(Json).ok_or(AppError::NotReady)
}

async fn get_design(State(state): State<AppState>) -> Json<Design> {
    Json(
        state
            .design
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .design
            .clone(),
    )
}

/// Zones a design may hold. Every zone is copied into every frame's overlay message, so these
/// caps bound what one request can add to each frame sent to every viewer.
pub const MAX_ZONES: usize = 32;
/// Vertices of one zone's polygon.
pub const MAX_POINTS_PER_ZONE: usize = 256;
/// Vertices of the hairline.
pub const MAX_HAIRLINE_POINTS: usize = 512;
/// Length of a zone name, bytes.
pub const MAX_ZONE_NAME_BYTES: usize = 64;

/// The size caps on a design that comes through the API (the design's own `validate` checks
/// the values).
fn check_sizes(design: &Design) -> Result<(), String> {
    if design.zones.len() > MAX_ZONES {
        return Err(format!(
            "zones: at most {MAX_ZONES}, got {}",
            design.zones.len()
        ));
    }
    for z in &design.zones {
        if z.name.len() > MAX_ZONE_NAME_BYTES {
            return Err(format!(
                "zone name: at most {MAX_ZONE_NAME_BYTES} bytes, got {}",
                z.name.len()
            ));
        }
        if z.polygon_in_skin_mm.len() > MAX_POINTS_PER_ZONE {
            return Err(format!(
                "zone {:?}: at most {MAX_POINTS_PER_ZONE} points, got {}",
                z.name,
                z.polygon_in_skin_mm.len()
            ));
        }
    }
    if design.hairline_in_skin_mm.len() > MAX_HAIRLINE_POINTS {
        return Err(format!(
            "hairline: at most {MAX_HAIRLINE_POINTS} points, got {}",
            design.hairline_in_skin_mm.len()
        ));
    }
    Ok(())
}

fn set_design(state: &AppState, f: impl FnOnce(&mut Design)) -> Result<Design, AppError> {
    let mut slot = state.design.lock().unwrap_or_else(|e| e.into_inner());
    let mut design = slot.design.clone();
    f(&mut design);
    check_sizes(&design).map_err(AppError::Invalid)?;
    design.validate().map_err(AppError::Invalid)?;
    slot.design = design.clone();
    slot.version += 1;
    Ok(design)
}

async fn put_design(
    State(state): State<AppState>,
    Json(design): Json<Design>,
) -> Result<Json<Design>, AppError> {
    set_design(&state, |d| *d = design).map(Json)
}

/// A zone drawn on the picture: pixels of the latest frame.
#[derive(Debug, Deserialize)]
struct ZoneInImage {
    name: String,
    points_in_image: Vec<[f64; 2]>,
    #[serde(default)]
    target_per_cm2: Option<f64>,
}

/// A hairline drawn on the picture.
#[derive(Debug, Deserialize)]
struct HairlineInImage {
    points_in_image: Vec<[f64; 2]>,
}

/// Maps points drawn on the latest frame to the skin.
fn to_skin(state: &AppState, points: &[[f64; 2]]) -> Result<Vec<[f64; 2]>, AppError> {
    let plan = state.plan.lock().unwrap_or_else(|e| e.into_inner());
    let t = plan.as_ref().ok_or(AppError::NotReady)?.skin_from_image;
    Ok(points.iter().map(|p| t.apply(*p)).collect())
}

async fn add_zone(
    State(state): State<AppState>,
    Json(z): Json<ZoneInImage>,
) -> Result<Json<Design>, AppError> {
    let polygon = to_skin(&state, &z.points_in_image)?;
    set_design(&state, |d| {
        d.zones.push(Zone {
            name: z.name,
            polygon_in_skin_mm: polygon,
            target_per_cm2: z.target_per_cm2,
        })
    })
    .map(Json)
}

async fn clear_zones(State(state): State<AppState>) -> Result<Json<Design>, AppError> {
    set_design(&state, |d| {
        d.zones.clear();
        d.hairline_in_skin_mm.clear();
    })
    .map(Json)
}

async fn set_hairline(
    State(state): State<AppState>,
    Json(h): Json<HairlineInImage>,
) -> Result<Json<Design>, AppError> {
    let line = to_skin(&state, &h.points_in_image)?;
    set_design(&state, |d| d.hairline_in_skin_mm = line).map(Json)
}
