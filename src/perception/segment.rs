//! The learned segmentation model, run through ONNX Runtime (`ort`).
//!
//! This module owns everything between an RGB frame and a per-class probability mask:
//! finding and loading the ONNX Runtime library, opening the model, checking its contract
//! (input and output names, shapes, classes and working scales, see `models/README.md`), and
//! running it frame after frame without allocating.
//!
//! # Contract
//! - Input `image`: float32 `[1, 3, H, W]`, RGB in `[0, 1]` (byte / 255), H and W multiples of
//!   `stipple.input_multiple` (4), the frame resampled (area average) to the model's working
//!   scale: `stipple.rig_px_per_mm` (12) for rig frames, `stipple.dermoscope_px_per_mm` (48) for
//!   frames at or above `stipple.dermoscope_min_native_px_per_mm` (100). The frame is padded by
//!   repeating its last row and column.
//! - Output `probs`: float32 `[1, C, H / s, W / s]` with `s = stipple.output_stride` (2):
//!   probabilities of the classes in `stipple.classes`, in channel order.
//!
//! Two kinds of model honour this contract, told apart by `stipple.classes` ([`ModelKind`]):
//! the **dot** model ([`CLASSES`]: softmax over skin, follicle, pigment, not-a-dot, shaft),
//! fused with the blobs in rig frames, and the **openings** model ([`OPENING_CLASSES`]: one
//! sigmoid plane, the probability that a cell holds a follicle opening), fused with the traced
//! shafts in dermoscope frames (`super::openings`).
//!
//! The library is loaded at run time (`ort` feature `load-dynamic`) from, in order,
//! `$ORT_DYLIB_PATH`, the executable's folder, and `<crate>/.ort/` (filled by `scripts/setup.sh`).

use crate::geometry::Similarity;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::RgbImage;
use ndarray::Array4;
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use thiserror::Error;
use tracing::{debug, info, instrument, trace};

use crate::frame::View;

/// The model that ships with Stipple, built into the binary so it can never go missing.
pub const BUNDLED_MODEL: &[u8] = include_bytes!("../../models/stipple-seg.onnx");
/// Where the bundled model lives in the repository (for messages and tests).
pub const BUNDLED_MODEL_PATH: &str = "models/stipple-seg.onnx";
/// The follicle-opening model for dermoscope frames, built into the binary like the dot model.
pub const BUNDLED_OPENINGS_MODEL: &[u8] = include_bytes!("../../models/stipple-openings.onnx");
/// Where the bundled openings model lives in the repository.
pub const BUNDLED_OPENINGS_MODEL_PATH: &str = "models/stipple-openings.onnx";
/// The skin model built into the binary (`models/stipple-skin.onnx`): what is not skin in rig
/// frames, fused with the classical skin mask (`super::skin_mask`).
pub const BUNDLED_SKIN_MODEL: &[u8] = include_bytes!("../../models/stipple-skin.onnx");
/// Where the bundled skin model lives in the repository.
pub const BUNDLED_SKIN_MODEL_PATH: &str = "models/stipple-skin.onnx";
/// File name of the ONNX Runtime library that `scripts/setup.sh` installs.
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";
/// The model's input name.
pub const INPUT_NAME: &str = "image";
/// The model's output name.
pub const OUTPUT_NAME: &str = "probs";
/// The output classes, in channel order.
pub const CLASSES: [&str; 5] = ["background", "follicle", "pigment", "not_a_dot", "shaft"];
/// The openings model's one class: a follicle opening (sigmoid probability per cell).
pub const OPENING_CLASSES: [&str; 1] = ["opening"];
/// The openings model with a second channel: the hairs of the unit at each cell (1-4,
/// regressed; read at the peaks).
pub const OPENING_HAIRS_CLASSES: [&str; 2] = ["opening", "hairs"];
/// The skin model's one class: what is not skin (sigmoid probability per cell).
pub const SKIN_CLASSES: [&str; 1] = ["not_skin"];
/// Channel of plain skin.
pub const BACKGROUND: usize = 0;
/// Channel of a follicle opening (one per follicular unit).
pub const FOLLICLE: usize = 1;
/// Channel of a healed pigment dot.
pub const PIGMENT: usize = 2;
/// Channel of things that are not dots: scars, moles, loose strands, glare.
pub const NOT_A_DOT: usize = 3;
/// Channel of a hair shaft above the skin (dermoscope view).
pub const SHAFT: usize = 4;
/// Default ONNX Runtime intra-op threads: the 2 cores the product targets.
pub const DEFAULT_INTRA_THREADS: usize = 2;

/// Why the model could not be loaded or run.
#[derive(Debug, Error)]
pub enum SegmentError {
    /// The model produced a value that is not a probability (NaN, infinite, or outside
    /// [0, 1]): a broken or mismatched model.
    #[error("model {path}: output value {value} at index {index} is not a probability in [0, 1]")]
    BadOutput {
        /// The model.
        path: String,
        /// Flat index of the first bad value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// No ONNX Runtime library in any of the places searched.
    #[error(
        "ONNX Runtime ({ORT_LIBRARY}) not found; looked in: {}. Run scripts/setup.sh, or set \
         ORT_DYLIB_PATH to the library",
        .tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    LibraryNotFound {
        /// Every path tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The library was found but could not be loaded.
    #[error("cannot load ONNX Runtime from {path}: {cause}")]
    LibraryLoad {
        /// The library file.
        path: PathBuf,
        /// What the loader said.
        cause: String,
    },
    /// The model file does not exist or cannot be read.
    #[error("model {path}: cannot read it: {cause}")]
    ModelUnreadable {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// ONNX Runtime refused the file: not an ONNX model, or a corrupt one.
    #[error("model {path}: not a valid ONNX model: {cause}")]
    NotOnnx {
        /// The model file.
        path: String,
        /// What ONNX Runtime said.
        cause: String,
    },
    /// The model's inputs or outputs are not named as the contract says.
    #[error("model {path}: {what} should be named `{expected}`, found {got}")]
    NameMismatch {
        /// The model file.
        path: String,
        /// "input" or "output".
        what: &'static str,
        /// The contract's name.
        expected: &'static str,
        /// The names the model has.
        got: String,
    },
    /// A tensor has the wrong shape or element type.
    #[error("model {path}: {what} has shape {got}, expected {expected}")]
    ShapeMismatch {
        /// The model file.
        path: String,
        /// Which tensor.
        what: &'static str,
        /// The contract's shape.
        expected: String,
        /// The model's shape.
        got: String,
    },
    /// The model's metadata does not match the contract.
    #[error("model {path}: metadata `{key}`: {problem}")]
    Metadata {
        /// The model file.
        path: String,
        /// The metadata key.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The frame cannot go through the model.
    #[error("frame of {width}x{height} px at {px_per_mm} px/mm cannot be segmented")]
    BadFrame {
        /// Width (px).
        width: u32,
        /// Height (px).
        height: u32,
        /// Scale.
        px_per_mm: f64,
    },
    /// ONNX Runtime failed while running.
    #[error(transparent)]
    Ort(#[from] ort::Error),
}

/// Settings of the segmentation stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentConfig {
    /// ONNX Runtime intra-op threads (default [`DEFAULT_INTRA_THREADS`]).
    pub intra_threads: usize,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            intra_threads: DEFAULT_INTRA_THREADS,
        }
    }
}

/// What a model finds, read from its `stipple.classes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Dots in rig frames: [`CLASSES`].
    Dots,
    /// Follicle openings in dermoscope frames: [`OPENING_CLASSES`].
    Openings,
    /// What is not skin in rig frames: [`SKIN_CLASSES`]. It serves the skin mask, not the
    /// detector, so no view asks for it by [`ModelKind::for_view`].
    Skin,
}

impl ModelKind {
    /// The kind whose class list is `classes`, if any.
    pub fn of_classes<S: AsRef<str>>(classes: &[S]) -> Option<Self> {
        let same = |want: &[&str]| {
            classes.len() == want.len() && classes.iter().zip(want).all(|(a, b)| a.as_ref() == *b)
        };
        if same(&CLASSES) {
            Some(Self::Dots)
        } else if same(&OPENING_CLASSES) || same(&OPENING_HAIRS_CLASSES) {
            Some(Self::Openings)
        } else if same(&SKIN_CLASSES) {
            Some(Self::Skin)
        } else {
            None
        }
    }

    /// The bundled model of this kind: its bytes and where it lives in the repository.
    pub fn bundled(self) -> (&'static [u8], &'static str) {
        match self {
            Self::Dots => (BUNDLED_MODEL, BUNDLED_MODEL_PATH),
            Self::Openings => (BUNDLED_OPENINGS_MODEL, BUNDLED_OPENINGS_MODEL_PATH),
            Self::Skin => (BUNDLED_SKIN_MODEL, BUNDLED_SKIN_MODEL_PATH),
        }
    }

    /// The kind of model frames of `view` need.
    pub fn for_view(view: View) -> Self {
        match view {
            View::Rig => Self::Dots,
            View::Dermoscope => Self::Openings,
        }
    }

    /// What the kind is for, in words (for messages).
    pub fn describe(self) -> &'static str {
        match self {
            Self::Dots => "a dot model (rig view, under 60 px/mm)",
            Self::Openings => "a follicle-opening model (dermoscope view, 60 px/mm or more)",
            Self::Skin => "a skin model (what is not skin in rig frames; it serves the skin mask)",
        }
    }
}

/// What a model promises, read from its inputs, outputs and metadata at load.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelContract {
    /// Input tensor name.
    pub input_name: String,
    /// Output tensor name.
    pub output_name: String,
    /// Class names, in channel order.
    pub classes: Vec<String>,
    /// What the model finds (from its classes).
    pub kind: ModelKind,
    /// Working scale for rig frames (px/mm).
    pub rig_px_per_mm: f64,
    /// Working scale for dermoscope frames (px/mm).
    pub dermoscope_px_per_mm: f64,
    /// Native scale from which a frame is treated as a dermoscope frame (px/mm).
    pub dermoscope_min_native_px_per_mm: f64,
    /// Input pixels per output cell.
    pub output_stride: usize,
    /// H and W of the input must be multiples of this.
    pub input_multiple: usize,
}

impl ModelContract {
    /// The working scale frames are resampled to: the view the model serves decides it
    /// (the view itself was decided once, by `frame::View`).
    pub fn working_px_per_mm(&self) -> f64 {
        match self.kind {
            ModelKind::Dots | ModelKind::Skin => self.rig_px_per_mm,
            ModelKind::Openings => self.dermoscope_px_per_mm,
        }
    }
}

/// Per-class probabilities of one frame, on a grid of cells over the frame.
#[derive(Debug, Clone, Default)]
pub struct SegMask {
    /// Cells across.
    pub cols: usize,
    /// Cells down.
    pub rows: usize,
    /// Number of classes (planes).
    pub classes: usize,
    /// Planar probabilities: `probs[(class * rows + row) * cols + col]`.
    pub probs: Vec<f32>,
    /// Native (input-image) pixels per cell along x.
    pub px_per_cell_x: f64,
    /// Native pixels per cell along y.
    pub px_per_cell_y: f64,
    /// Cells that cover the frame (the rest is padding): columns.
    pub valid_cols: usize,
    /// Cells that cover the frame: rows.
    pub valid_rows: usize,
    /// When this mask is read on a later frame than the one it was computed on: the pixels of
    /// its own frame from the reader's, and back. Every position in and out of the grid
    /// ([`Self::cell_of`], [`Self::image_of`], [`Self::sample`]) goes through them, so a mask
    /// made a moment ago is read where the head is now (`session::late`). `None`: the reader's
    /// frame is the mask's own.
    pub reader: Option<ReaderFrame>,
}

/// The transforms of [`SegMask::reader`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReaderFrame {
    /// The mask's frame's pixels from the reader's.
    pub mask_from_reader: Similarity,
    /// Its inverse.
    pub reader_from_mask: Similarity,
}

impl ReaderFrame {
    /// The pair for `mask_from_reader`.
    pub fn new(mask_from_reader: Similarity) -> Self {
        Self {
            mask_from_reader,
            reader_from_mask: mask_from_reader.inverse(),
        }
    }
}

impl SegMask {
    /// Probability of `class` at cell (col, row).
    ///
    /// # Panics
    /// If the cell or class is out of range.
    pub fn at(&self, class: usize, col: usize, row: usize) -> f32 {
        self.probs[(class * self.rows + row) * self.cols + col]
    }

    /// The plane of one class, row-major.
    pub fn plane(&self, class: usize) -> &[f32] {
        let n = self.rows * self.cols;
        &self.probs[class * n..(class + 1) * n]
    }

    /// Cell coordinates (continuous, cell centres at integers) of a point in native pixels (of
    /// the reader's frame, see [`Self::reader`]).
    pub fn cell_of(&self, x_in_image: f64, y_in_image: f64) -> (f64, f64) {
        let [x, y] = match &self.reader {
            Some(r) => r.mask_from_reader.apply([x_in_image, y_in_image]),
            None => [x_in_image, y_in_image],
        };
        (x / self.px_per_cell_x - 0.5, y / self.px_per_cell_y - 0.5)
    }

    /// Native pixel coordinates (of the reader's frame) of a (continuous) cell position.
    pub fn image_of(&self, col: f64, row: f64) -> (f64, f64) {
        let p = [
            (col + 0.5) * self.px_per_cell_x,
            (row + 0.5) * self.px_per_cell_y,
        ];
        let [x, y] = match &self.reader {
            Some(r) => r.reader_from_mask.apply(p),
            None => p,
        };
        (x, y)
    }

    /// Bilinear probability of `class` at a point in native pixels (clamped to the grid).
    pub fn sample(&self, class: usize, x_in_image: f64, y_in_image: f64) -> f32 {
        match self.taps(x_in_image, y_in_image) {
            Some(t) => self.blend(class, &t),
            None => 0.0,
        }
    }

    /// The four cells (offsets within a plane: top left, top right, bottom left, bottom right)
    /// and the fractions across and down of [`Self::sample`] at a point; `None` for an empty grid.
    fn taps(&self, x_in_image: f64, y_in_image: f64) -> Option<([usize; 4], [f32; 2])> {
        if self.cols == 0 || self.rows == 0 {
            return None;
        }
        let (u, v) = self.cell_of(x_in_image, y_in_image);
        let u = u.clamp(0.0, (self.valid_cols.max(1) - 1) as f64);
        let v = v.clamp(0.0, (self.valid_rows.max(1) - 1) as f64);
        let (c0, r0) = (u.floor() as usize, v.floor() as usize);
        let (c1, r1) = (
            (c0 + 1).min(self.valid_cols.max(1) - 1),
            (r0 + 1).min(self.valid_rows.max(1) - 1),
        );
        let (fu, fv) = ((u - c0 as f64) as f32, (v - r0 as f64) as f32);
        let cols = self.cols;
        Some((
            [
                r0 * cols + c0,
                r0 * cols + c1,
                r1 * cols + c0,
                r1 * cols + c1,
            ],
            [fu, fv],
        ))
    }

    /// `class`'s probability through [`Self::taps`].
    fn blend(&self, class: usize, (at, [fu, fv]): &([usize; 4], [f32; 2])) -> f32 {
        let p = self.plane(class);
        let top = p[at[0]] * (1.0 - fu) + p[at[1]] * fu;
        let bottom = p[at[2]] * (1.0 - fu) + p[at[3]] * fu;
        top * (1.0 - fv) + bottom * fv
    }

    /// This mask as seen from another frame of the same size, into `out` (its buffers reused):
    /// every cell of `out`, on this mask's grid, takes this mask's probabilities ([`Self::sample`])
    /// at `source_of(its centre)`, the point of this mask's frame that the cell's centre shows.
    /// Where there is none (`None`: the caller knows this mask does not hold there) or it lies
    /// off this mask's frame (skin that has come into view since), the cell takes
    /// `outside(class)`, the caller's "no opinion". Padding cells are zero. For a mask read on its
    /// own frame ([`Self::reader`] `None`), as `out` is.
    pub fn warp_into(
        &self,
        source_of: impl Fn([f64; 2]) -> Option<[f64; 2]>,
        outside: impl Fn(usize) -> f32,
        out: &mut SegMask,
    ) {
        let Self {
            cols,
            rows,
            classes,
            px_per_cell_x,
            px_per_cell_y,
            valid_cols,
            valid_rows,
            ..
        } = *self;
        debug_assert!(self.reader.is_none(), "a mask warped twice");
        let mut probs = std::mem::take(&mut out.probs);
        probs.clear();
        probs.resize(classes * rows * cols, 0.0);
        *out = SegMask {
            probs: Vec::new(),
            ..*self
        };
        let (w, h) = (
            valid_cols as f64 * px_per_cell_x,
            valid_rows as f64 * px_per_cell_y,
        );
        for r in 0..valid_rows.min(rows) {
            for c in 0..valid_cols.min(cols) {
                let (x, y) = self.image_of(c as f64, r as f64);
                let taps = source_of([x, y])
                    .filter(|&[sx, sy]| sx >= 0.0 && sy >= 0.0 && sx < w && sy < h)
                    .and_then(|[sx, sy]| self.taps(sx, sy));
                for class in 0..classes {
                    probs[(class * rows + r) * cols + c] = match &taps {
                        Some(t) => self.blend(class, t),
                        None => outside(class),
                    };
                }
            }
        }
        out.probs = probs;
    }
}

#[cfg(test)]
impl SegMask {
    /// A mask of `classes` planes of `cols` x `rows` cells, `px_per_cell` image pixels each, all
    /// zero but the `(class, col, row, p)` cells given (for tests).
    pub(crate) fn test_grid(
        cols: usize,
        rows: usize,
        classes: usize,
        px_per_cell: f64,
        hot: &[(usize, usize, usize, f32)],
    ) -> Self {
        let mut probs = vec![0.0f32; classes * cols * rows];
        for &(class, c, r, p) in hot {
            probs[(class * rows + r) * cols + c] = p;
        }
        Self {
            cols,
            rows,
            classes,
            probs,
            px_per_cell_x: px_per_cell,
            px_per_cell_y: px_per_cell,
            valid_cols: cols,
            valid_rows: rows,
            reader: None,
        }
    }
}

/// Area-average resampling weights along one axis: output `i` averages `len[i]` source pixels
/// from `start[i]` with `weights[offset[i]..]` (the same as Pillow's `BOX` filter for
/// downscaling, which the training pipeline uses).
#[derive(Debug, Clone, Default, PartialEq)]
struct Taps {
    src: usize,
    dst: usize,
    start: Vec<usize>,
    offset: Vec<usize>,
    len: Vec<usize>,
    weights: Vec<f32>,
}

impl Taps {
    fn new(src: usize, dst: usize) -> Self {
        let mut t = Taps {
            src,
            dst,
            ..Taps::default()
        };
        let scale = src as f64 / dst as f64;
        for i in 0..dst {
            let (a, b) = (i as f64 * scale, (i as f64 + 1.0) * scale);
            let (first, last) = (a.floor() as usize, (b.ceil() as usize).min(src).max(1));
            let first = first.min(last - 1);
            t.start.push(first);
            t.offset.push(t.weights.len());
            t.len.push(last - first);
            let mut sum = 0.0f64;
            for j in first..last {
                let w = (b.min(j as f64 + 1.0) - a.max(j as f64)).max(0.0);
                t.weights.push(w as f32);
                sum += w;
            }
            if sum <= 0.0 {
                // Upscaling to a sliver that misses every source pixel: take the nearest one.
                let k = t.offset[i];
                t.weights[k] = 1.0;
                sum = 1.0;
            }
            let k = t.offset[i];
            for w in &mut t.weights[k..] {
                *w /= sum as f32;
            }
        }
        t
    }
}

/// Frame sizes through the model for one native size and scale.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Geometry {
    src_w: usize,
    src_h: usize,
    /// Resampled size (before padding).
    work_w: usize,
    work_h: usize,
    /// Padded input size.
    in_w: usize,
    in_h: usize,
}

/// Rounding slack allowed around [0, 1] in the model's probabilities.
const PROB_SLACK: f32 = 1e-3;

/// The ONNX segmentation model with its buffers; one per inference thread (`run` needs `&mut`).
#[derive(Debug)]
pub struct OnnxSegmenter {
    session: Session,
    /// The model's file (or bundled name), for errors found at run time.
    name: String,
    contract: ModelContract,
    /// The input tensor, reused while the frame size stays the same.
    input: Array4<f32>,
    /// Horizontally resampled rows, interleaved RGB, reused.
    rows_tmp: Vec<f32>,
    taps_x: Taps,
    taps_y: Taps,
    geometry: Geometry,
    /// The last frame's mask, reused.
    mask: SegMask,
}

/// The segmentation backends. Only the ONNX model for now; an enum keeps the set closed (a
/// threshold segmenter for tests would be the next variant).
#[derive(Debug)]
pub enum Segmenter {
    /// The learned model through ONNX Runtime.
    Onnx(Box<OnnxSegmenter>),
}

impl Segmenter {
    /// Segments one frame; see [`OnnxSegmenter::segment`].
    ///
    /// # Errors
    /// See [`OnnxSegmenter::segment`].
    pub fn segment(&mut self, image: &RgbImage, px_per_mm: f64) -> Result<&SegMask, SegmentError> {
        match self {
            Segmenter::Onnx(s) => s.segment(image, px_per_mm),
        }
    }

    /// The model's contract.
    pub fn contract(&self) -> &ModelContract {
        match self {
            Segmenter::Onnx(s) => s.contract(),
        }
    }
}

/// The places searched for the ONNX Runtime library, in order.
pub fn library_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        if !p.is_empty() {
            out.push(PathBuf::from(p));
        }
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.push(dir.join(ORT_LIBRARY));
    }
    out.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".ort")
            .join(ORT_LIBRARY),
    );
    out
}

/// The process-wide ONNX Runtime environment, created on first use.
static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

/// Loads ONNX Runtime (once per process) and returns its environment.
///
/// # Errors
/// [`SegmentError::LibraryNotFound`] listing the places tried, or
/// [`SegmentError::LibraryLoad`] if the file is there but does not load.
pub fn environment() -> Result<Environment, SegmentError> {
    let mut guard = ENVIRONMENT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(env) = guard.as_ref() {
        return Ok(env.clone());
    }
    let tried = library_candidates();
    let path = tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        SegmentError::LibraryNotFound {
            tried: tried.clone(),
        }
    })?;
    let builder = ort::init_from(&path).map_err(|e| SegmentError::LibraryLoad {
        path: path.clone(),
        cause: e.to_string(),
    })?;
    let env = builder
        .with_name("stipple")
        .with_execution_providers(execution_providers())
        .build()?;
    info!(library = %path.display(), "ONNX Runtime loaded");
    *guard = Some(env.clone());
    Ok(env)
}

/// Execution providers from the Cargo features (`cuda`, `tensorrt`); CPU is always the fallback.
fn execution_providers() -> Vec<ort::ep::ExecutionProviderDispatch> {
    #[allow(unused_mut)]
    let mut eps = Vec::new();
    #[cfg(feature = "tensorrt")]
    eps.push(ort::ep::TensorRT::default().build());
    #[cfg(feature = "cuda")]
    eps.push(ort::ep::CUDA::default().build());
    eps
}

fn shape_string(shape: &[i64]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|&d| {
            if d < 0 {
                "?".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

fn tensor_f32_shape(
    path: &str,
    what: &'static str,
    ty: &ValueType,
    expected: &str,
) -> Result<Vec<i64>, SegmentError> {
    match ty {
        ValueType::Tensor {
            ty: TensorElementType::Float32,
            shape,
            ..
        } => Ok(shape.iter().copied().collect()),
        other => Err(SegmentError::ShapeMismatch {
            path: path.to_string(),
            what,
            expected: expected.to_string(),
            got: format!("{other}"),
        }),
    }
}

impl OnnxSegmenter {
    /// Opens the dot model built into the binary ([`BUNDLED_MODEL`]).
    ///
    /// # Errors
    /// See [`OnnxSegmenter::from_bytes`].
    pub fn bundled(cfg: &SegmentConfig) -> Result<Self, SegmentError> {
        Self::bundled_kind(ModelKind::Dots, cfg)
    }

    /// Opens the openings model built into the binary ([`BUNDLED_OPENINGS_MODEL`]).
    ///
    /// # Errors
    /// See [`OnnxSegmenter::from_bytes`].
    pub fn bundled_openings(cfg: &SegmentConfig) -> Result<Self, SegmentError> {
        Self::bundled_kind(ModelKind::Openings, cfg)
    }

    /// The bundled model of `kind`.
    ///
    /// # Errors
    /// See [`OnnxSegmenter::from_bytes`].
    pub fn bundled_kind(kind: ModelKind, cfg: &SegmentConfig) -> Result<Self, SegmentError> {
        let (bytes, path) = kind.bundled();
        Self::from_bytes(bytes, path, cfg)
    }

    /// The bundled model frames at `px_per_mm` need, in the view that scale implies
    /// ([`View::for_scale`]).
    ///
    /// # Errors
    /// See [`OnnxSegmenter::from_bytes`].
    pub fn bundled_for(px_per_mm: f64, cfg: &SegmentConfig) -> Result<Self, SegmentError> {
        Self::bundled_kind(ModelKind::for_view(View::for_scale(px_per_mm)), cfg)
    }

    /// Opens a model file.
    ///
    /// # Errors
    /// A missing or unreadable file, a file that is not ONNX, a model whose inputs, outputs or
    /// metadata break the contract, or no ONNX Runtime library.
    pub fn from_file(path: &Path, cfg: &SegmentConfig) -> Result<Self, SegmentError> {
        let bytes = std::fs::read(path).map_err(|cause| SegmentError::ModelUnreadable {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string(), cfg)
    }

    /// Opens a model from its bytes; `name` is used in messages.
    ///
    /// # Errors
    /// See [`OnnxSegmenter::from_file`].
    #[instrument(level = "debug", skip(bytes, cfg), fields(bytes = bytes.len()))]
    pub fn from_bytes(bytes: &[u8], name: &str, cfg: &SegmentConfig) -> Result<Self, SegmentError> {
        let env = environment()?;
        let session = Session::builder(&env)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort::Error::from)?
            .with_intra_threads(cfg.intra_threads.max(1))
            .map_err(ort::Error::from)?
            .with_inter_threads(1)
            .map_err(ort::Error::from)?
            // No spinning: the blobs and the rest of the pipeline share the same 2 cores.
            .with_intra_op_spinning(false)
            .map_err(ort::Error::from)?
            .commit_from_memory(bytes)
            .map_err(|e| SegmentError::NotOnnx {
                path: name.to_string(),
                cause: e.message().to_string(),
            })?;
        let contract = check_contract(&session, name)?;
        debug!(?contract, "segmentation model loaded");
        Ok(Self {
            session,
            name: name.to_string(),
            contract,
            input: Array4::zeros((1, 3, 0, 0)),
            rows_tmp: Vec::new(),
            taps_x: Taps::default(),
            taps_y: Taps::default(),
            geometry: Geometry::default(),
            mask: SegMask::default(),
        })
    }

    /// The model's contract, as checked at load.
    pub fn contract(&self) -> &ModelContract {
        &self.contract
    }

    /// Where the model came from (its file, or the bundled model's path), for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Opens the skin model built into the binary ([`BUNDLED_SKIN_MODEL`]) on one ONNX Runtime
    /// thread: it runs beside the rest of the frame's work, on the skin mask's thread.
    ///
    /// # Errors
    /// See [`OnnxSegmenter::from_bytes`].
    pub fn bundled_skin() -> Result<Self, SegmentError> {
        Self::bundled_kind(ModelKind::Skin, &SegmentConfig { intra_threads: 1 })
    }

    /// The mask of the last segmented frame.
    pub fn mask(&self) -> &SegMask {
        &self.mask
    }

    /// Segments one frame at `px_per_mm`: resamples it to the working scale into the reused
    /// input tensor, runs the model, and copies the probabilities into the reused mask.
    ///
    /// # Errors
    /// [`SegmentError::BadFrame`] for an empty frame or a bad scale; [`SegmentError::Ort`] if
    /// ONNX Runtime fails.
    #[instrument(level = "trace", skip_all, fields(w = image.width(), h = image.height()))]
    pub fn segment(&mut self, image: &RgbImage, px_per_mm: f64) -> Result<&SegMask, SegmentError> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        if w == 0 || h == 0 || !(px_per_mm.is_finite() && px_per_mm > 0.0) {
            return Err(SegmentError::BadFrame {
                width: image.width(),
                height: image.height(),
                px_per_mm,
            });
        }
        self.prepare(w, h, px_per_mm);
        self.fill_input(image);
        let stride = self.contract.output_stride;
        let g = self.geometry;
        let outputs = self.session.run(ort::inputs![
            self.contract.input_name.as_str() => TensorRef::from_array_view(self.input.view())?
        ])?;
        let (shape, data) = outputs[0].try_extract_tensor::<f32>()?;
        let (classes, rows, cols) = (
            self.contract.classes.len(),
            g.in_h / stride,
            g.in_w / stride,
        );
        let got: Vec<i64> = shape.iter().copied().collect();
        if got != [1, classes as i64, rows as i64, cols as i64] {
            return Err(SegmentError::ShapeMismatch {
                path: self.name.clone(),
                what: "output at run time",
                expected: shape_string(&[1, classes as i64, rows as i64, cols as i64]),
                got: shape_string(&got),
            });
        }
        // The contract is probabilities: NaN or values outside [0, 1] mean a broken model,
        // and every detection built on them would be garbage (`"x": null` in JSON).
        if let Some((index, &value)) = data
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && (-PROB_SLACK..=1.0 + PROB_SLACK).contains(*v)))
        {
            return Err(SegmentError::BadOutput {
                path: self.name.clone(),
                index,
                value,
            });
        }
        let mask = &mut self.mask;
        mask.probs.clear();
        mask.probs.extend_from_slice(data);
        mask.cols = cols;
        mask.rows = rows;
        mask.classes = classes;
        mask.px_per_cell_x = stride as f64 * g.src_w as f64 / g.work_w as f64;
        mask.px_per_cell_y = stride as f64 * g.src_h as f64 / g.work_h as f64;
        mask.valid_cols = g.work_w.div_ceil(stride).min(cols);
        mask.valid_rows = g.work_h.div_ceil(stride).min(rows);
        mask.reader = None;
        trace!(cols, rows, "segmented");
        Ok(&self.mask)
    }

    /// Sizes the buffers and resampling taps for a frame size and scale (no-op when unchanged).
    fn prepare(&mut self, w: usize, h: usize, px_per_mm: f64) {
        let k = self.contract.working_px_per_mm() / px_per_mm;
        let m = self.contract.input_multiple.max(1);
        let work_w = ((w as f64 * k).round() as usize).max(m);
        let work_h = ((h as f64 * k).round() as usize).max(m);
        let g = Geometry {
            src_w: w,
            src_h: h,
            work_w,
            work_h,
            in_w: work_w.div_ceil(m) * m,
            in_h: work_h.div_ceil(m) * m,
        };
        if g == self.geometry {
            return;
        }
        debug!(?g, "segmenter geometry");
        self.taps_x = Taps::new(w, work_w);
        self.taps_y = Taps::new(h, work_h);
        self.input = Array4::zeros((1, 3, g.in_h, g.in_w));
        self.rows_tmp = vec![0.0; h * work_w * 3];
        self.geometry = g;
    }

    /// Area-resamples the frame into the input tensor (RGB / 255), padding by replication.
    fn fill_input(&mut self, image: &RgbImage) {
        let g = self.geometry;
        let raw = image.as_raw();
        let tx = &self.taps_x;
        // Horizontal pass: every source row to work_w interleaved RGB.
        for (y, row_out) in self.rows_tmp.chunks_exact_mut(g.work_w * 3).enumerate() {
            let row_in = &raw[y * g.src_w * 3..(y + 1) * g.src_w * 3];
            for i in 0..g.work_w {
                let (s, o, n) = (tx.start[i], tx.offset[i], tx.len[i]);
                let mut acc = [0.0f32; 3];
                for (j, &wgt) in tx.weights[o..o + n].iter().enumerate() {
                    let p = &row_in[(s + j) * 3..(s + j) * 3 + 3];
                    acc[0] += wgt * f32::from(p[0]);
                    acc[1] += wgt * f32::from(p[1]);
                    acc[2] += wgt * f32::from(p[2]);
                }
                row_out[i * 3..i * 3 + 3].copy_from_slice(&acc);
            }
        }
        // Vertical pass into the planar tensor, then replicate into the padding.
        let ty = &self.taps_y;
        let plane = g.in_w * g.in_h;
        let Some(data) = self.input.as_slice_mut() else {
            return;
        };
        for r in 0..g.in_h {
            let rr = r.min(g.work_h - 1);
            let (s, o, n) = (ty.start[rr], ty.offset[rr], ty.len[rr]);
            for c in 0..g.in_w {
                let cc = c.min(g.work_w - 1);
                let mut acc = [0.0f32; 3];
                for (j, &wgt) in ty.weights[o..o + n].iter().enumerate() {
                    let p = &self.rows_tmp[((s + j) * g.work_w + cc) * 3..][..3];
                    acc[0] += wgt * p[0];
                    acc[1] += wgt * p[1];
                    acc[2] += wgt * p[2];
                }
                let idx = r * g.in_w + c;
                data[idx] = acc[0] / 255.0;
                data[plane + idx] = acc[1] / 255.0;
                data[2 * plane + idx] = acc[2] / 255.0;
            }
        }
    }
}

/// Checks a session's inputs, outputs and metadata against the contract.
fn check_contract(session: &Session, path: &str) -> Result<ModelContract, SegmentError> {
    let names = |outlets: &[ort::value::Outlet]| {
        let n: Vec<String> = outlets.iter().map(|o| format!("`{}`", o.name())).collect();
        format!("[{}]", n.join(", "))
    };
    let inputs = session.inputs();
    if inputs.len() != 1 || inputs[0].name() != INPUT_NAME {
        return Err(SegmentError::NameMismatch {
            path: path.to_string(),
            what: "the one input",
            expected: INPUT_NAME,
            got: names(inputs),
        });
    }
    let outputs = session.outputs();
    if outputs.len() != 1 || outputs[0].name() != OUTPUT_NAME {
        return Err(SegmentError::NameMismatch {
            path: path.to_string(),
            what: "the one output",
            expected: OUTPUT_NAME,
            got: names(outputs),
        });
    }
    const IN_EXPECTED: &str = "float32 [1, 3, H, W] with H and W free";
    let shape = tensor_f32_shape(path, "input `image`", inputs[0].dtype(), IN_EXPECTED)?;
    let batch_ok = |d: i64| d == 1 || d < 0;
    if !(shape.len() == 4 && batch_ok(shape[0]) && shape[1] == 3 && shape[2] < 0 && shape[3] < 0) {
        return Err(SegmentError::ShapeMismatch {
            path: path.to_string(),
            what: "input `image`",
            expected: IN_EXPECTED.to_string(),
            got: shape_string(&shape),
        });
    }
    let meta = session.metadata()?;
    let get = |key: &'static str| {
        meta.custom(key).ok_or_else(|| SegmentError::Metadata {
            path: path.to_string(),
            key,
            problem: "missing".to_string(),
        })
    };
    let classes: Vec<String> = get("stipple.classes")?
        .split(',')
        .map(str::to_string)
        .collect();
    let Some(kind) = ModelKind::of_classes(&classes) else {
        return Err(SegmentError::Metadata {
            path: path.to_string(),
            key: "stipple.classes",
            problem: format!(
                "expected {} (dots), {} or {} (openings), {} (skin), got {}",
                CLASSES.join(","),
                OPENING_CLASSES.join(","),
                OPENING_HAIRS_CLASSES.join(","),
                SKIN_CLASSES.join(","),
                classes.join(",")
            ),
        });
    };
    let n_classes = classes.len() as i64;
    let out_expected = format!("float32 [1, {n_classes}, H / stride, W / stride]");
    let shape = tensor_f32_shape(path, "output `probs`", outputs[0].dtype(), &out_expected)?;
    if !(shape.len() == 4 && batch_ok(shape[0]) && shape[1] == n_classes) {
        return Err(SegmentError::ShapeMismatch {
            path: path.to_string(),
            what: "output `probs`",
            expected: out_expected,
            got: shape_string(&shape),
        });
    }
    let number = |key: &'static str| -> Result<f64, SegmentError> {
        let text = get(key)?;
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
            _ => Err(SegmentError::Metadata {
                path: path.to_string(),
                key,
                problem: format!("`{text}` is not a positive number"),
            }),
        }
    };
    let integer = |key: &'static str| -> Result<usize, SegmentError> {
        let v = number(key)?;
        if v.fract() == 0.0 && v <= 64.0 {
            Ok(v as usize)
        } else {
            Err(SegmentError::Metadata {
                path: path.to_string(),
                key,
                problem: format!("{v} is not a small whole number"),
            })
        }
    };
    let contract = ModelContract {
        input_name: INPUT_NAME.to_string(),
        output_name: OUTPUT_NAME.to_string(),
        classes,
        kind,
        rig_px_per_mm: number("stipple.rig_px_per_mm")?,
        dermoscope_px_per_mm: number("stipple.dermoscope_px_per_mm")?,
        dermoscope_min_native_px_per_mm: number("stipple.dermoscope_min_native_px_per_mm")?,
        output_stride: integer("stipple.output_stride")?,
        input_multiple: integer("stipple.input_multiple")?,
    };
    if contract.input_multiple % contract.output_stride != 0 {
        return Err(SegmentError::Metadata {
            path: path.to_string(),
            key: "stipple.input_multiple",
            problem: "must be a multiple of stipple.output_stride".to_string(),
        });
    }
    Ok(contract)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_average_areas_and_sum_to_one() {
        let t = Taps::new(10, 4);
        for i in 0..4 {
            let s: f32 = t.weights[t.offset[i]..t.offset[i] + t.len[i]].iter().sum();
            assert!((s - 1.0).abs() < 1e-5);
        }
        // 10 -> 4: output 0 covers [0, 2.5): pixels 0 and 1 fully, half of pixel 2.
        assert_eq!(t.start[0], 0);
        assert_eq!(t.len[0], 3);
        assert!((t.weights[2] - 0.2).abs() < 1e-6);
        let same = Taps::new(5, 5);
        assert!(same.len.iter().all(|&n| n == 1));
        assert!(same.weights.iter().all(|&w| (w - 1.0).abs() < 1e-6));
    }

    #[test]
    fn mask_sampling_is_bilinear_between_cell_centres() {
        let mask = SegMask {
            cols: 2,
            rows: 1,
            classes: 1,
            probs: vec![0.0, 1.0],
            px_per_cell_x: 4.0,
            px_per_cell_y: 4.0,
            valid_cols: 2,
            valid_rows: 1,
            reader: None,
        };
        // Cell centres at x = 2 and x = 6.
        assert!((mask.sample(0, 2.0, 2.0) - 0.0).abs() < 1e-6);
        assert!((mask.sample(0, 4.0, 2.0) - 0.5).abs() < 1e-6);
        assert!((mask.sample(0, 6.0, 2.0) - 1.0).abs() < 1e-6);
        assert!((mask.sample(0, 100.0, 2.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_warped_mask_shows_the_source_frame_at_the_moved_point() {
        // 8x6 cells of 4 px, two classes; a "dot" on class 1 at cell (2, 3).
        let mask = SegMask::test_grid(8, 6, 2, 4.0, &[(1, 2, 3, 0.9), (0, 0, 0, 0.4)]);
        let mut out = SegMask::default();
        // The head moved 8 px right and 4 px down since: the dot is now two cells right and one
        // down, so the point (x, y) of this frame shows (x - 8, y - 4) of the mask's.
        mask.warp_into(
            |[x, y]| Some([x - 8.0, y - 4.0]),
            |class| [0.25, 0.0][class],
            &mut out,
        );
        assert_eq!((out.cols, out.rows, out.classes), (8, 6, 2));
        assert!((out.at(1, 4, 4) - 0.9).abs() < 1e-6);
        assert!(out.at(1, 2, 3).abs() < 1e-6);
        // Cells whose source lies off the mask's frame take the caller's "no opinion".
        assert!((out.at(0, 0, 0) - 0.25).abs() < 1e-6);
        assert!((out.at(0, 1, 0) - 0.25).abs() < 1e-6);
        assert!(out.at(1, 0, 5).abs() < 1e-6);
        // The mask's own corner value moved with it.
        assert!((out.at(0, 2, 1) - 0.4).abs() < 1e-6);
        // Where the caller says the mask does not hold, no opinion either.
        mask.warp_into(
            |[x, y]| (x > 12.0).then_some([x, y]),
            |class| [0.25, 0.0][class],
            &mut out,
        );
        assert!((out.at(0, 0, 0) - 0.25).abs() < 1e-6);
        assert!(out.at(1, 2, 3).abs() < 1e-6);
        // Unmoved, the warp is the mask itself.
        mask.warp_into(Some, |class| [0.25, 0.0][class], &mut out);
        assert_eq!(out.probs, mask.probs);
        // Half a cell: bilinear between cell centres.
        mask.warp_into(
            |[x, y]| Some([x - 2.0, y]),
            |class| [0.25, 0.0][class],
            &mut out,
        );
        assert!((out.at(1, 2, 3) - 0.45).abs() < 1e-6);
        assert!((out.at(1, 3, 3) - 0.45).abs() < 1e-6);
    }

    #[test]
    fn library_search_ends_in_the_crate_ort_folder() {
        let c = library_candidates();
        let last = c
            .last()
            .map(|p| p.ends_with(Path::new(".ort").join(ORT_LIBRARY)));
        assert_eq!(last, Some(true));
    }
}
