//! HTTP routes: the page and its assets (embedded in the binary), `/api/*` JSON, `/metrics`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ws, AppState};
use crate::limits::is_safe_toml_name;
use crate::metrics::Snapshot;
use crate::planning::design::MAX_POLYGON_POINTS;
use crate::planning::{Design, Units, Zone, ZoneKind};
use crate::session::{ArtistCommand, ArtistEvent, People};

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
        .route("/api/session/people", get(get_people).put(put_people))
        .route("/api/design/save", post(save_design))
        .route("/api/zones", post(add_zone).delete(clear_zones))
        .route("/api/zones/{name}", patch(edit_zone).delete(delete_zone))
        .route("/api/next", post(next))
        .route("/api/undo", post(undo))
        .route("/api/not-a-dot", post(not_a_dot))
        .route("/api/pause", post(pause))
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
    /// The request cannot be done in the session's present state (the message says why).
    Conflict(String),
    /// What the request names does not exist.
    NotFound(String),
    /// The server failed (the message names what, e.g. the file it could not write: this is
    /// the artist's own machine).
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            AppError::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no frame processed yet".into(),
            ),
            AppError::Conflict(m) => (StatusCode::CONFLICT, m),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            AppError::Internal(m) => {
                tracing::error!(cause = %m, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, m)
            }
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

/// Checks a design for the live service: [`Design::validate`], in skin millimetres.
fn check_live(design: &Design) -> Result<(), AppError> {
    if design.units != Units::Mm {
        return Err(AppError::Invalid(
            "units must be \"mm\" (skin millimetres) in the live service".into(),
        ));
    }
    design
        .validate()
        .map_err(|e| AppError::Invalid(e.to_string()))
}

fn set_design(
    state: &AppState,
    f: impl FnOnce(&mut Design) -> Result<(), AppError>,
) -> Result<Design, AppError> {
    let mut slot = state.design.lock().unwrap_or_else(|e| e.into_inner());
    let mut design = slot.design.clone();
    f(&mut design)?;
    let design = design.with_defaults();
    check_live(&design)?;
    slot.design = design.clone();
    slot.version += 1;
    Ok(design)
}

/// A JSON body, with a refusal that says what was expected.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes, expected: &str) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::Invalid(format!("expected {expected}: {e}")))
}

async fn get_people(State(state): State<AppState>) -> Json<People> {
    Json(
        state
            .people
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .people
            .clone(),
    )
}

/// `PUT /api/session/people` `{"client": "J. Doe", "artist": "S. Student"}`: both names, each
/// optional (absent or `null` clears it); a recording writes its `session` Metadata record
/// again with them, so the trainer's report shows who and whose scalp.
async fn put_people(State(state): State<AppState>, body: Bytes) -> Result<Json<People>, AppError> {
    let asked: People = parse(&body, r#"{"client": "NAME", "artist": "NAME"}"#)?;
    let check = |what: &str, v: &Option<String>| {
        v.as_deref()
            .map(|n| crate::limits::person_name(what, n))
            .transpose()
            .map_err(AppError::Invalid)
    };
    let people = People {
        client: check("client", &asked.client)?,
        artist: check("artist", &asked.artist)?,
    };
    let mut slot = state.people.lock().unwrap_or_else(|e| e.into_inner());
    if slot.people != people {
        slot.people = people;
        slot.version += 1;
        tracing::info!(client = ?slot.people.client, artist = ?slot.people.artist, "names set");
    }
    Ok(Json(slot.people.clone()))
}

async fn put_design(State(state): State<AppState>, body: Bytes) -> Result<Json<Design>, AppError> {
    let design: Design = parse(&body, "a design (see docs/api.md)")?;
    set_design(&state, |d| {
        *d = design;
        Ok(())
    })
    .map(Json)
}

/// A zone drawn on the picture: pixels of the latest frame.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneInImage {
    name: String,
    #[serde(default = "fill")]
    kind: ZoneKind,
    points_in_image: Vec<[f64; 2]>,
    #[serde(default)]
    front_edge_in_image: Option<Vec<[f64; 2]>>,
    #[serde(default, alias = "target_per_cm2")]
    target_density_per_cm2: Option<f64>,
    #[serde(default)]
    transition_mm: Option<f64>,
}

fn fill() -> ZoneKind {
    ZoneKind::Fill
}

/// What `PATCH /api/zones/{name}` may change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneEdit {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<ZoneKind>,
    #[serde(default, alias = "target_per_cm2")]
    target_density_per_cm2: Option<f64>,
    #[serde(default)]
    transition_mm: Option<f64>,
}

/// Maps points drawn on the latest frame to the skin.
fn to_skin(state: &AppState, points: &[[f64; 2]]) -> Result<Vec<[f64; 2]>, AppError> {
    if points.len() > MAX_POLYGON_POINTS {
        return Err(AppError::Invalid(format!(
            "at most {MAX_POLYGON_POINTS} points, got {}",
            points.len()
        )));
    }
    let plan = state.plan.lock().unwrap_or_else(|e| e.into_inner());
    let plan = plan.as_ref().ok_or(AppError::NotReady)?;
    Ok(points.iter().map(|p| plan.skin_of(*p)).collect())
}

async fn add_zone(State(state): State<AppState>, body: Bytes) -> Result<Json<Design>, AppError> {
    let z: ZoneInImage = parse(
        &body,
        "{\"name\": \"crown\", \"kind\": \"fill\", \"points_in_image\": [[x, y], ...]}",
    )?;
    let polygon = to_skin(&state, &z.points_in_image)?;
    let front_edge = match &z.front_edge_in_image {
        Some(edge) => Some(to_skin(&state, edge)?),
        None => None,
    };
    set_design(&state, |d| {
        d.zones.push(Zone {
            name: z.name,
            kind: z.kind,
            polygon,
            target_density_per_cm2: z.target_density_per_cm2,
            front_edge,
            transition_mm: z.transition_mm,
        });
        Ok(())
    })
    .map(Json)
}

async fn clear_zones(State(state): State<AppState>) -> Result<Json<Design>, AppError> {
    set_design(&state, |d| {
        d.zones.clear();
        Ok(())
    })
    .map(Json)
}

fn zone_index(d: &Design, name: &str) -> Result<usize, AppError> {
    d.zones
        .iter()
        .position(|z| z.name == name)
        .ok_or_else(|| AppError::NotFound(format!("no zone named {name:?}")))
}

async fn edit_zone(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Design>, AppError> {
    let edit: ZoneEdit = parse(
        &body,
        "{\"name\": ..., \"kind\": ..., \"target_density_per_cm2\": ..., \"transition_mm\": ...}",
    )?;
    set_design(&state, |d| {
        let i = zone_index(d, &name)?;
        let z = &mut d.zones[i];
        if let Some(n) = edit.name {
            z.name = n;
        }
        if let Some(k) = edit.kind {
            z.kind = k;
        }
        if edit.target_density_per_cm2.is_some() {
            z.target_density_per_cm2 = edit.target_density_per_cm2;
        }
        if edit.transition_mm.is_some() {
            z.transition_mm = edit.transition_mm;
        }
        Ok(())
    })
    .map(Json)
}

async fn delete_zone(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Design>, AppError> {
    set_design(&state, |d| {
        let i = zone_index(d, &name)?;
        d.zones.remove(i);
        Ok(())
    })
    .map(Json)
}

/// The optional body of `POST /api/design/save`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveRequest {
    #[serde(default)]
    name: Option<String>,
}

/// Where a design was saved.
#[derive(Debug, Serialize)]
struct SavedDesign {
    path: String,
    design: Design,
}

async fn save_design(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<SavedDesign>, AppError> {
    let req: SaveRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SaveRequest::default()
    } else {
        parse(&body, "{\"name\": \"client.toml\"} or no body")?
    };
    let name = match req.name {
        Some(n) if is_safe_toml_name(&n) => n,
        Some(n) => {
            return Err(AppError::Invalid(format!(
                "bad file name {n:?}: use letters, digits, '-', '_' and '.', ending in .toml"
            )))
        }
        None => format!("design-{}.toml", crate::calib::today_utc()),
    };
    let design = state
        .design
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .design
        .clone();
    let dir = state.design_dir.as_ref().clone();
    let path = dir.join(&name);
    let to_save = design.clone();
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        to_save
            .save(&path)
            .map(|()| path)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| AppError::Internal(format!("saving failed: {e}")))?
    .map_err(AppError::Internal)?;
    tracing::info!(path = %written.display(), "design saved");
    Ok(Json(SavedDesign {
        path: written.display().to_string(),
        design,
    }))
}

/// How long a command waits for the processing thread (a frame is 33 ms at 30 fps).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Hands a command to the processing thread and waits for its outcome.
async fn command(state: &AppState, command: ArtistCommand) -> Result<Json<ArtistEvent>, AppError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    state
        .commands
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((command, tx));
    match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
        Ok(Ok(Ok(event))) => Ok(Json(event)),
        Ok(Ok(Err(reason))) => Err(AppError::Conflict(reason)),
        Ok(Err(_)) | Err(_) => Err(AppError::NotReady),
    }
}

async fn next(State(state): State<AppState>) -> Result<Json<ArtistEvent>, AppError> {
    command(&state, ArtistCommand::Next).await
}

async fn undo(State(state): State<AppState>) -> Result<Json<ArtistEvent>, AppError> {
    command(&state, ArtistCommand::Undo).await
}

/// The body of `POST /api/not-a-dot`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotADot {
    point_in_image: [f64; 2],
}

async fn not_a_dot(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<ArtistEvent>, AppError> {
    let req: NotADot = parse(&body, "{\"point_in_image\": [x, y]}")?;
    command(
        &state,
        ArtistCommand::NotADot {
            point_in_image: req.point_in_image,
        },
    )
    .await
}

/// The body of `POST /api/pause`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pause {
    paused: bool,
}

async fn pause(State(state): State<AppState>, body: Bytes) -> Result<Json<ArtistEvent>, AppError> {
    let req: Pause = parse(&body, "{\"paused\": true}")?;
    command(&state, ArtistCommand::Pause { paused: req.paused }).await
}
