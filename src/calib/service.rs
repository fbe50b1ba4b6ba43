//! Calibration mode of the live service: the artist holds the board up to the camera, the page
//! shows the detected corners, the coverage so far and the running RMS, and saves the result.
//!
//! [`LiveCalibration`] is shared by the processing thread, a worker thread and the HTTP
//! handlers. The processing thread only [`offers`](LiveCalibration::offer) each frame (one
//! `Arc` clone into a one-slot mailbox, nothing when calibration is off) and attaches the latest
//! [`CalibSnapshot`] to the overlay; board detection and recalibration run on the worker, on
//! the newest frame, at most `DETECT_MAX_HZ` times a second with a board in view and
//! `SEARCH_HZ` without, and resting twice as long as each detection took, so they never hold
//! up the overlay's frames and take at most a third of a core.
//! Locks are held only to copy small values: detection and the solve run outside them.
//!
//! A detected view is kept when the board is held still (its corners moved less than
//! [`STILL_FRACTION`] of the image width since the previous detection: moving boards are
//! motion-blurred) and differs from every kept view (by [`NOVEL_FRACTION`]), up to
//! [`MAX_VIEWS`]. Saving is refused, with what is missing, until
//! [`LiveCalibrator::is_ready`].
//!
//! The last step is a view of the board lying on the scalp, the working plane
//! ([`LiveCalibration::take_plane`], the page's "Board on the scalp"): the next board held still
//! for [`PLANE_STILL_S`] is taken as that view (not as a calibration view), and px/mm at the
//! skin is measured on it ([`plane_scale`]). Saving without it is refused unless asked for
//! px/mm from the calibration views, as `stipple calibrate --px-per-mm-from-views` does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::board::{detect_board, BoardCorners, BoardSpec};
use super::live::{LiveCalibrator, LiveStatus, COVERAGE_COLS, COVERAGE_ROWS, TILT_DIRECTIONS};
use super::model::{Calibration, Distortion, Intrinsics};
use super::scale::{plane_scale, verdict, views_scale, ScaleEstimate, Verdict};
use super::CalibError;
use crate::frame::Frame;
use crate::mailbox::Mailbox;
use crate::shutdown::Shutdown;

/// Board detection runs at most this often (on the newest frame) while a board is in view...
pub const DETECT_MAX_HZ: f64 = 4.0;
/// ...and this often while none is (the artist has not brought it up yet: no need to spend
/// the cores on frames of skin).
pub const SEARCH_HZ: f64 = 1.5;
/// The worker rests at least this many times as long as its last detection took, so that it
/// never takes more than a third of a core from capture, detection and encoding.
const REST_FACTOR: u32 = 2;
/// Views kept at most; later ones are not needed (and would slow the running solve).
pub const MAX_VIEWS: usize = 40;
/// The board is held still when its corners moved less than this fraction of the image width
/// (mean) since the previous detection.
pub const STILL_FRACTION: f64 = 0.003;
/// A still view is kept when its outer corners are at least this fraction of the image width
/// (mean) from those of every kept view.
pub const NOVEL_FRACTION: f64 = 0.03;
/// In the working-plane step, the board must lie still this long before its view is taken:
/// longer than a calibration view is held, so that a board still held up in the air is not
/// mistaken for one lying on the scalp.
pub const PLANE_STILL_S: f64 = 2.0;
/// How long the worker waits for a frame before it checks for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// The last board detection, for the overlay.
#[derive(Debug, Clone, Serialize)]
pub struct LastDetection {
    /// The frame it was made on.
    pub seq: u64,
    /// The board's inner corners (OpenCV order, pixel centres at integers), empty if not found.
    pub corners_in_image: Vec<[f64; 2]>,
    /// Whether the view was kept for the calibration.
    pub kept: bool,
    /// What happened, in words ("kept view 7", "hold still", the detector's reason, ...).
    pub message: String,
}

/// Everything the page and `GET /api/calibration` show.
#[derive(Debug, Clone, Serialize)]
pub struct CalibSnapshot {
    /// Whether calibration mode is on.
    pub active: bool,
    /// The board looked for.
    pub board: Option<BoardSpec>,
    /// Frame size being calibrated (known from the first frame on).
    pub image_size: Option<[u32; 2]>,
    /// Columns of the coverage grid.
    pub coverage_cols: usize,
    /// Rows of the coverage grid.
    pub coverage_rows: usize,
    /// Names of the tilt directions in `status.tilts`.
    pub tilt_directions: [&'static str; 4],
    /// Views kept at most.
    pub max_views: usize,
    /// Views, coverage, tilts, RMS, readiness and what is missing.
    pub status: Option<LiveStatus>,
    /// The running estimate (from 3 views on).
    pub intrinsics: Option<Intrinsics>,
    /// The running estimate of the distortion.
    pub distortion: Option<Distortion>,
    /// The last detection.
    pub last: Option<LastDetection>,
    /// Frames the worker looked at since the start.
    pub frames_checked: u64,
    /// Where the last calibration was saved, if any.
    pub saved_to: Option<String>,
    /// Whether the working-plane step is waiting for the board to lie still on the scalp.
    pub plane_step: bool,
    /// px/mm at the skin, its uncertainty and the working distance: from the working-plane
    /// view once taken (with the running calibration), else the calibration views' stand-in.
    pub scale: Option<ScaleEstimate>,
    /// Whether the running calibration is good enough for SMP, and what to do next.
    pub verdict: Option<Verdict>,
}

impl CalibSnapshot {
    fn off(saved_to: Option<String>) -> Self {
        Self {
            active: false,
            board: None,
            image_size: None,
            coverage_cols: COVERAGE_COLS,
            coverage_rows: COVERAGE_ROWS,
            tilt_directions: TILT_DIRECTIONS,
            max_views: MAX_VIEWS,
            status: None,
            intrinsics: None,
            distortion: None,
            last: None,
            frames_checked: 0,
            saved_to,
            plane_step: false,
            scale: None,
            verdict: None,
        }
    }
}

/// Why a save was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Calibration mode is off.
    #[error("calibration mode is off: start it first (POST /api/calibration/start)")]
    NotActive,
    /// Not enough data yet.
    #[error("not enough for a calibration yet: {0}")]
    NotReady(String),
    /// No view of the board on the scalp, and px/mm from the calibration views not asked for.
    #[error("px/mm is not measured at the skin: lay the board flat on the scalp and press 'Board on the scalp' (POST /api/calibration/plane), or save with px/mm from the calibration views ({{\"px_per_mm_from_views\": true}}), which can be off by as much as the distances the board was held at")]
    NoPlane,
    /// The file name is not acceptable.
    #[error("bad file name {0:?}: use letters, digits, '-', '_' and '.', ending in .toml")]
    BadName(String),
    /// Calibrating or writing failed.
    #[error(transparent)]
    Calib(#[from] CalibError),
}

/// A saved calibration.
#[derive(Debug, Clone, Serialize)]
pub struct Saved {
    /// The file written.
    pub path: String,
    /// What was written.
    pub calibration: Calibration,
    /// Where its px/mm came from, with its uncertainty and the working distance.
    pub scale: Option<ScaleEstimate>,
    /// Whether it is good enough for SMP, and what to do next.
    pub verdict: Verdict,
}

#[derive(Debug)]
struct Session {
    spec: BoardSpec,
    calibrator: Option<LiveCalibrator>,
    previous: Option<Vec<[f64; 2]>>,
    last: Option<LastDetection>,
    frames_checked: u64,
    /// The working-plane step: `Some` while waiting, with when the board last started to lie
    /// still.
    plane_step: Option<Option<Instant>>,
    /// The view of the board on the scalp, once taken.
    plane: Option<BoardCorners>,
    /// px/mm at the skin and the verdict, as of the last change of the calibration or the
    /// plane view ([`Session::update_scale`]): the snapshot is refreshed on every detection,
    /// under the lock the frame path also takes, and must not redo the plane's jackknife.
    scale: (Option<ScaleEstimate>, Option<Verdict>),
}

impl Session {
    /// Recomputes [`Session::scale`]; called whenever the calibration or the plane view changes.
    fn update_scale(&mut self) {
        self.scale = self.scale_and_verdict();
    }

    /// px/mm at the skin with the running calibration, and the verdict on it.
    fn scale_and_verdict(&self) -> (Option<ScaleEstimate>, Option<Verdict>) {
        let Some(report) = self.calibrator.as_ref().and_then(LiveCalibrator::report) else {
            return (None, None);
        };
        let scale = match &self.plane {
            Some(corners) => plane_scale(
                &report.calibration,
                corners,
                &self.spec,
                "the board on the scalp",
            )
            .ok(),
            None => views_scale(report),
        };
        let v = verdict(report, scale.as_ref());
        (scale, Some(v))
    }
}

#[derive(Debug, Default)]
struct State {
    /// Bumped by every start and stop, so that the worker drops results for an old session.
    generation: u64,
    session: Option<Session>,
    saved_to: Option<String>,
    snapshot: Option<Arc<CalibSnapshot>>,
}

impl State {
    fn refresh(&mut self) {
        let snap = match &self.session {
            None => CalibSnapshot::off(self.saved_to.clone()),
            Some(s) => {
                let (scale, verdict) = s.scale.clone();
                let estimate = s
                    .calibrator
                    .as_ref()
                    .and_then(|c| c.report())
                    .map(|r| (r.calibration.intrinsics, r.calibration.distortion));
                CalibSnapshot {
                    active: true,
                    board: Some(s.spec),
                    image_size: s.calibrator.as_ref().map(|c| {
                        let (w, h) = c.image_size();
                        [w, h]
                    }),
                    status: s.calibrator.as_ref().map(LiveCalibrator::status),
                    intrinsics: estimate.map(|e| e.0),
                    distortion: estimate.map(|e| e.1),
                    last: s.last.clone(),
                    frames_checked: s.frames_checked,
                    plane_step: s.plane_step.is_some(),
                    scale,
                    verdict,
                    ..CalibSnapshot::off(self.saved_to.clone())
                }
            }
        };
        self.snapshot = Some(Arc::new(snap));
    }
}

/// Calibration mode, shared by the pipeline, its worker and the HTTP handlers.
#[derive(Debug)]
pub struct LiveCalibration {
    state: Mutex<State>,
    /// Lock-free check for the per-frame path.
    active: AtomicBool,
    frames: Mailbox<Frame>,
    save_dir: PathBuf,
}

impl LiveCalibration {
    /// Calibration mode, off; saved files go to `save_dir` (created when first needed).
    pub fn new(save_dir: PathBuf) -> Self {
        let mut state = State::default();
        state.refresh();
        Self {
            state: Mutex::new(state),
            active: AtomicBool::new(false),
            frames: Mailbox::new(),
            save_dir,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts (or restarts, dropping the views so far) calibration with `spec` boards.
    pub fn start(&self, spec: BoardSpec) -> Arc<CalibSnapshot> {
        let mut st = self.lock();
        st.generation += 1;
        st.session = Some(Session {
            spec,
            calibrator: None,
            previous: None,
            last: None,
            frames_checked: 0,
            plane_step: None,
            plane: None,
            scale: (None, None),
        });
        st.refresh();
        self.active.store(true, Ordering::Release);
        tracing::info!(
            board = %format!("{}x{}", spec.inner_cols, spec.inner_rows),
            square_mm = spec.square_mm,
            "calibration mode on"
        );
        self.snapshot_locked(&st)
    }

    /// Starts the working-plane step: the next board that lies still for [`PLANE_STILL_S`] is
    /// taken as the view of the board on the scalp (replacing an earlier one).
    ///
    /// # Errors
    /// [`SaveError::NotActive`] when calibration mode is off.
    pub fn take_plane(&self) -> Result<Arc<CalibSnapshot>, SaveError> {
        let mut st = self.lock();
        let s = st.session.as_mut().ok_or(SaveError::NotActive)?;
        s.plane_step = Some(None);
        tracing::info!("calibration: waiting for the board on the scalp");
        st.refresh();
        Ok(self.snapshot_locked(&st))
    }

    /// Leaves calibration mode, dropping the views.
    pub fn stop(&self) -> Arc<CalibSnapshot> {
        let mut st = self.lock();
        st.generation += 1;
        st.session = None;
        st.refresh();
        self.active.store(false, Ordering::Release);
        tracing::info!("calibration mode off");
        self.snapshot_locked(&st)
    }

    fn snapshot_locked(&self, st: &State) -> Arc<CalibSnapshot> {
        st.snapshot
            .clone()
            .unwrap_or_else(|| Arc::new(CalibSnapshot::off(None)))
    }

    /// The current state.
    pub fn snapshot(&self) -> Arc<CalibSnapshot> {
        self.snapshot_locked(&self.lock())
    }

    /// The state to attach to a frame's overlay: `None` when calibration mode is off.
    pub fn overlay(&self) -> Option<Arc<CalibSnapshot>> {
        self.active.load(Ordering::Acquire).then(|| self.snapshot())
    }

    /// Hands a frame to the worker (the newest replaces an unread one); nothing when off.
    pub fn offer(&self, frame: &Frame) {
        if self.active.load(Ordering::Acquire) {
            self.frames.put(frame.clone());
        }
    }

    /// The worker: detects the board on the newest offered frame, at most `DETECT_MAX_HZ`
    /// times a second (`SEARCH_HZ` while no board is in view, and never more than a third of
    /// a core), until `shutdown`.
    pub fn run_worker(&self, shutdown: &Shutdown) {
        while !shutdown.is_triggered() {
            let Some(frame) = self.frames.take_timeout(POLL) else {
                continue;
            };
            let t = Instant::now();
            let found = self.process(&frame);
            let hz = if found { DETECT_MAX_HZ } else { SEARCH_HZ };
            let took = t.elapsed();
            let rest = Duration::from_secs_f64(1.0 / hz)
                .saturating_sub(took)
                .max(took * REST_FACTOR);
            // Sleep in short steps so that shutdown is not held up.
            let until = Instant::now() + rest;
            while !shutdown.is_triggered() {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(POLL));
            }
        }
        tracing::debug!("calibration worker stopped");
    }

    /// One frame through detection and, for a kept view, recalibration. Returns whether a
    /// board was found.
    #[tracing::instrument(level = "debug", skip_all, fields(seq = frame.meta.seq))]
    fn process(&self, frame: &Frame) -> bool {
        let (generation, spec) = {
            let st = self.lock();
            match &st.session {
                Some(s) => (st.generation, s.spec),
                None => return false,
            }
        };
        let gray = image::imageops::grayscale(frame.image.as_ref());
        let (w, h) = gray.dimensions();
        let found = detect_board(&gray, &spec);
        let board_in_view = found.is_ok();
        // Decide under the lock (cheap), solve outside it.
        let to_solve = {
            let mut st = self.lock();
            if st.generation != generation {
                return board_in_view;
            }
            let Some(s) = st.session.as_mut() else {
                return board_in_view;
            };
            s.frames_checked += 1;
            if s.calibrator
                .as_ref()
                .is_some_and(|c| c.image_size() != (w, h))
            {
                tracing::warn!(w, h, "frame size changed: calibration restarted");
                s.calibrator = None;
                s.plane = None;
                s.update_scale();
            }
            let calibrator = s
                .calibrator
                .get_or_insert_with(|| LiveCalibrator::new(spec, w, h));
            let seq = frame.meta.seq;
            let mut to_solve = None;
            let last = match found {
                Err(reason) => {
                    s.previous = None;
                    if let Some(since) = s.plane_step.as_mut() {
                        *since = None;
                    }
                    LastDetection {
                        seq,
                        corners_in_image: Vec::new(),
                        kept: false,
                        message: format!("no board: {reason}"),
                    }
                }
                Ok(corners) => {
                    let pts = corners.corners_in_image.clone();
                    let moved = s
                        .previous
                        .as_ref()
                        .map(|p| mean_distance(p, &pts))
                        .unwrap_or(f64::INFINITY);
                    s.previous = Some(pts.clone());
                    let width = f64::from(w);
                    let still = moved <= STILL_FRACTION * width;
                    if let Some(since) = s.plane_step {
                        // The working-plane step: no calibration view, only the board on the
                        // scalp once it has lain still long enough.
                        let now = Instant::now();
                        let t0 = if still { since.unwrap_or(now) } else { now };
                        let held = now.duration_since(t0).as_secs_f64();
                        let taken = still && held >= PLANE_STILL_S;
                        let message = if taken {
                            s.plane = Some(corners);
                            s.update_scale();
                            s.plane_step = None;
                            "board on the scalp: view taken".to_owned()
                        } else {
                            s.plane_step = Some(still.then_some(t0));
                            format!(
                                "board on the scalp: keep it still ({:.1} s more)",
                                PLANE_STILL_S - held
                            )
                        };
                        s.last = Some(LastDetection {
                            seq,
                            corners_in_image: pts,
                            kept: taken,
                            message,
                        });
                        st.refresh();
                        return board_in_view;
                    }
                    let message = if calibrator.views().count() >= MAX_VIEWS {
                        format!("{MAX_VIEWS} views kept: enough")
                    } else if !still {
                        "board found: hold it still".to_owned()
                    } else if calibrator.views().any(|v| {
                        outline_distance(&v.corners_in_image, &pts, &spec) < NOVEL_FRACTION * width
                    }) {
                        "board found: move it to a new place or tilt".to_owned()
                    } else {
                        to_solve = Some((calibrator.clone(), corners));
                        "kept: recalibrating".to_owned()
                    };
                    LastDetection {
                        seq,
                        corners_in_image: pts,
                        kept: to_solve.is_some(),
                        message,
                    }
                }
            };
            s.last = Some(last);
            st.refresh();
            to_solve
        };
        // Recalibrate on a copy, outside the lock, then publish it.
        let Some((mut next, corners)) = to_solve else {
            return board_in_view;
        };
        let result = next.add_view(corners);
        let mut st = self.lock();
        if st.generation != generation {
            return board_in_view;
        }
        if let Some(s) = st.session.as_mut() {
            match result {
                Ok(status) => {
                    tracing::debug!(
                        views = status.views,
                        coverage = status.coverage,
                        rms_px = ?status.rms_px,
                        "calibration view kept"
                    );
                    if let Some(last) = s.last.as_mut() {
                        last.message = format!("kept view {}", status.views);
                    }
                    s.calibrator = Some(next);
                    s.update_scale();
                }
                Err(err) => {
                    tracing::warn!(cause = %err, "calibration view refused");
                    if let Some(last) = s.last.as_mut() {
                        last.kept = false;
                        last.message = format!("view refused: {err}");
                    }
                }
            }
        }
        st.refresh();
        board_in_view
    }

    /// Saves the calibration to `name` (a file name, `.toml`) in the save folder, or to a
    /// dated `live-YYYY-MM-DD-HHMMSS.toml` there.
    ///
    /// # Errors
    /// [`SaveError::NotActive`] / [`SaveError::NotReady`] (with what is missing) before there
    /// is enough; [`SaveError::BadName`] for a name with a path or another extension;
    /// [`SaveError::Calib`] if the solve or the write fails.
    pub fn save(&self, name: Option<&str>, px_per_mm_from_views: bool) -> Result<Saved, SaveError> {
        let name = match name {
            Some(n) => {
                if !crate::limits::is_safe_toml_name(n) {
                    return Err(SaveError::BadName(n.to_owned()));
                }
                n.to_owned()
            }
            None => default_name(),
        };
        let (calibrator, plane, spec) = {
            let st = self.lock();
            let s = st.session.as_ref().ok_or(SaveError::NotActive)?;
            let c = s.calibrator.clone().ok_or_else(|| {
                SaveError::NotReady("no frame seen yet: is the source streaming?".to_owned())
            })?;
            if let Some(missing) = c.missing() {
                return Err(SaveError::NotReady(missing));
            }
            if s.plane.is_none() && !px_per_mm_from_views {
                return Err(SaveError::NoPlane);
            }
            (c, s.plane.clone(), s.spec)
        };
        let report = calibrator.finish_report()?;
        let scale = match &plane {
            Some(corners) => Some(plane_scale(
                &report.calibration,
                corners,
                &spec,
                "the board on the scalp",
            )?),
            None => views_scale(&report),
        };
        let verdict = verdict(&report, scale.as_ref());
        let mut calibration = report.calibration;
        if let Some(s) = &scale {
            calibration.px_per_mm = s.px_per_mm;
        }
        // A mistyped square size gives a scale no other command accepts: refuse it here rather
        // than write a file that fails later.
        crate::limits::check_px_per_mm("the measured scale", calibration.px_per_mm).map_err(
            |why| {
                SaveError::NotReady(format!(
                    "{why} (check the square size, {} mm)",
                    spec.square_mm
                ))
            },
        )?;
        std::fs::create_dir_all(&self.save_dir).map_err(|source| CalibError::Io {
            path: self.save_dir.clone(),
            source,
        })?;
        let path = self.save_dir.join(name);
        calibration.save(&path)?;
        tracing::info!(path = %path.display(), rms_px = calibration.rms_px, "calibration saved");
        let shown = path.display().to_string();
        let mut st = self.lock();
        st.saved_to = Some(shown.clone());
        st.refresh();
        Ok(Saved {
            path: shown,
            calibration,
            scale,
            verdict,
        })
    }

    /// Where saved files go.
    pub fn save_dir(&self) -> &Path {
        &self.save_dir
    }
}

fn mean_distance(a: &[[f64; 2]], b: &[[f64; 2]]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(p, q)| (p[0] - q[0]).hypot(p[1] - q[1]))
        .sum::<f64>()
        / a.len() as f64
}

/// Mean distance between the four outer corners of two views, in either order (the board
/// looks the same turned by half a turn, and the detector may then number it from the other
/// end).
fn outline_distance(a: &[[f64; 2]], b: &[[f64; 2]], spec: &BoardSpec) -> f64 {
    let n = spec.corner_count();
    if a.len() != n || b.len() != n {
        return f64::INFINITY;
    }
    let c = spec.inner_cols;
    let idx = [0, c - 1, n - c, n - 1];
    let quad = |p: &[[f64; 2]]| idx.map(|i| p[i]);
    let (qa, qb) = (quad(a), quad(b));
    let mut reversed = qb;
    reversed.reverse();
    mean_distance(&qa, &qb).min(mean_distance(&qa, &reversed))
}

/// `live-YYYY-MM-DD-HHMMSS.toml` (UTC).
fn default_name() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86_400;
    format!(
        "live-{}-{:02}{:02}{:02}.toml",
        super::file::today_utc(),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_refuses_until_ready_and_checks_names() {
        let dir = std::env::temp_dir().join("stipple-calib-service-test");
        let cal = LiveCalibration::new(dir);
        assert!(matches!(cal.save(None, false), Err(SaveError::NotActive)));
        assert!(cal.overlay().is_none());
        let spec = BoardSpec {
            inner_cols: 9,
            inner_rows: 6,
            square_mm: 3.0,
        };
        let snap = cal.start(spec);
        assert!(snap.active);
        assert!(cal.overlay().is_some());
        let err = cal.save(None, false).expect_err("no frame yet");
        assert!(err.to_string().contains("no frame seen"), "{err}");
        for bad in ["../x.toml", "a/b.toml", "x.txt", ".toml", ".hidden.toml"] {
            assert!(
                matches!(cal.save(Some(bad), false), Err(SaveError::BadName(_))),
                "{bad}"
            );
        }
        assert!(!cal.stop().active);
        assert!(default_name().starts_with("live-20"));
    }

    #[test]
    fn outline_distance_ignores_a_half_turn() {
        let spec = BoardSpec {
            inner_cols: 3,
            inner_rows: 3,
            square_mm: 1.0,
        };
        let a: Vec<[f64; 2]> = (0..9)
            .map(|i| [f64::from(i % 3), f64::from(i / 3)])
            .collect();
        let mut b = a.clone();
        b.reverse();
        assert_eq!(outline_distance(&a, &b, &spec), 0.0);
        let shifted: Vec<[f64; 2]> = a.iter().map(|p| [p[0] + 5.0, p[1]]).collect();
        assert_eq!(outline_distance(&a, &shifted, &spec), 5.0);
    }
}
