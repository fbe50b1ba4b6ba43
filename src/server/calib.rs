//! Calibration mode over HTTP (and the page's `calib.js`/`calib.css`): `POST /api/calibration/start` `{"board": "9x6", "square_mm":
//! 3.0}`, `GET /api/calibration` (the state the page also gets with every frame),
//! `POST /api/calibration/plane` (the last step: the next board lying still on the scalp is
//! the working-plane view), `POST /api/calibration/save` `{"name": "rig.toml",
//! "px_per_mm_from_views": false}` (optional body; without a working-plane view saving is
//! refused unless `px_per_mm_from_views`) and `POST /api/calibration/stop`. The work is in [`crate::calib::LiveCalibration`].
//!
//! Errors are `{"error": "..."}` with a status that says whose move it is: 409 when saving
//! before there is enough (the message says what is missing), 422 for a bad board or file name,
//! 500 when the file cannot be written (the message names it: this is the artist's own machine).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use crate::calib::{BoardSpec, CalibSnapshot, SaveError, Saved};

const CALIB_JS: &str = include_str!("page/calib.js");
const CALIB_CSS: &str = include_str!("page/calib.css");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/calib.js", get(calib_js))
        .route("/calib.css", get(calib_css))
        .route("/api/calibration", get(status))
        .route("/api/calibration/start", post(start))
        .route("/api/calibration/stop", post(stop))
        .route("/api/calibration/plane", post(plane))
        .route("/api/calibration/save", post(save))
}

async fn calib_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CALIB_JS,
    )
}

async fn calib_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        CALIB_CSS,
    )
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn status(State(state): State<AppState>) -> Json<CalibSnapshot> {
    Json(state.calibration.snapshot().as_ref().clone())
}

/// The body of `POST /api/calibration/start`.
#[derive(Debug, Deserialize)]
struct StartRequest {
    /// Inner corners, `"9x6"`.
    board: String,
    /// Side of a square, mm.
    square_mm: f64,
}

async fn start(State(state): State<AppState>, body: Bytes) -> Response {
    let req: StartRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(err) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("expected {{\"board\": \"9x6\", \"square_mm\": 3.0}}: {err}"),
            )
        }
    };
    match BoardSpec::parse(&req.board, req.square_mm) {
        Ok(spec) => Json(state.calibration.start(spec).as_ref().clone()).into_response(),
        Err(err) => error(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()),
    }
}

async fn stop(State(state): State<AppState>) -> Json<CalibSnapshot> {
    Json(state.calibration.stop().as_ref().clone())
}

async fn plane(State(state): State<AppState>) -> Response {
    match state.calibration.take_plane() {
        Ok(snapshot) => Json(snapshot.as_ref().clone()).into_response(),
        Err(err) => error(StatusCode::CONFLICT, err.to_string()),
    }
}

/// The optional body of `POST /api/calibration/save`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveRequest {
    /// File name in the calibration folder; default `live-DATE-TIME.toml`.
    #[serde(default)]
    name: Option<String>,
    /// Save px/mm from the calibration views when there is no view of the board on the scalp.
    #[serde(default)]
    px_per_mm_from_views: bool,
}

async fn save(State(state): State<AppState>, body: Bytes) -> Response {
    let req: SaveRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SaveRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(err) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("expected {{\"name\": \"rig.toml\", \"px_per_mm_from_views\": false}} or no body: {err}"),
                )
            }
        }
    };
    // The final solve may take a moment: off the async runtime.
    let calibration = state.calibration.clone();
    let saved: Result<Result<Saved, SaveError>, _> = tokio::task::spawn_blocking(move || {
        calibration.save(req.name.as_deref(), req.px_per_mm_from_views)
    })
    .await;
    match saved {
        Ok(Ok(saved)) => Json(saved).into_response(),
        Ok(Err(err @ (SaveError::NotActive | SaveError::NotReady(_) | SaveError::NoPlane))) => {
            error(StatusCode::CONFLICT, err.to_string())
        }
        Ok(Err(err @ SaveError::BadName(_))) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, err.to_string())
        }
        Ok(Err(err @ SaveError::Calib(_))) => {
            tracing::error!(cause = %err, "saving the calibration failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
        }
        Err(err) => {
            tracing::error!(cause = %err, "the save task failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "saving failed")
        }
    }
}
