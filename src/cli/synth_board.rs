//! `stipple synth-board`: render chessboard views through the reference camera, with ground
//! truth, for tests and for comparing with other calibration tools.
//!
//! Writes `DIR/NNN.png` and `DIR/truth.json`:
//! `{"camera": <Calibration>, "board": {...}, "views": [{"image", "rvec", "tvec", "corners",
//! "conditions"}]}`, corners in OpenCV order, pixel centres at integer coordinates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::calib::render::{reference_camera, BoardRenderer, RenderConditions};
use crate::calib::{BoardSpec, Calibration};

/// Arguments of `stipple synth-board`.
#[derive(Debug, clap::Args)]
pub struct SynthBoardArgs {
    /// Seed of the random poses and conditions.
    #[arg(long)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of views.
    #[arg(long, default_value_t = 14)]
    pub count: usize,
    /// Inner corners of the board.
    #[arg(long, default_value = "9x6")]
    pub board: String,
    /// Square size in mm.
    #[arg(long, default_value_t = 3.0)]
    pub square_mm: f64,
}

#[derive(Serialize)]
struct TruthFile {
    camera: Calibration,
    board: BoardSpec,
    views: Vec<TruthView>,
}

#[derive(Serialize)]
struct TruthView {
    image: String,
    /// Rotation vector (axis × angle, rad) of camera_from_board, as OpenCV's rvec.
    rvec: [f64; 3],
    /// Translation of camera_from_board, mm.
    tvec: [f64; 3],
    corners: Vec<[f64; 2]>,
    conditions: RenderConditions,
}

/// Renders the views.
///
/// # Errors
/// A bad board or an unwritable output folder.
pub fn run(args: SynthBoardArgs) -> anyhow::Result<ExitCode> {
    let spec = BoardSpec::parse(&args.board, args.square_mm).context("--board/--square-mm")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let camera = reference_camera();
    let renderer = BoardRenderer::new(camera.clone(), spec);
    let mut views = Vec::new();
    for (i, view) in renderer
        .render_views(args.seed, args.count)
        .into_iter()
        .enumerate()
    {
        let name = format!("{i:03}.png");
        let path = args.out.join(&name);
        view.image
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        let r = view.camera_from_board.rotation.scaled_axis();
        let t = view.camera_from_board.translation.vector;
        views.push(TruthView {
            image: name,
            rvec: [r.x, r.y, r.z],
            tvec: [t.x, t.y, t.z],
            corners: view.corners_in_image,
            conditions: view.conditions,
        });
    }
    let truth = TruthFile {
        camera,
        board: spec,
        views,
    };
    let path = args.out.join("truth.json");
    let file =
        std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(file), &truth)?;
    Ok(ExitCode::SUCCESS)
}
