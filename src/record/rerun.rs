//! Re-running perception and planning on a recording, to compare a newer model (or newer
//! code) against what the artist saw.
//!
//! The recorded frames go through a fresh [`LiveSession`] in order, with the design changes
//! applied on the frames where they were applied live. Detection runs on the decoded JPEG,
//! which is what the live detector saw while recording (see [`crate::record`]); when the live
//! side fused a segmentation mask, the mask was computed on an earlier frame (`mask_seq` in
//! the detections), and the re-run computes its mask on that same recorded frame. With the
//! same model and code, the re-run therefore reproduces the recorded detections and overlay
//! exactly; [`RerunSummary`] counts the frames where it does not.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use image::RgbImage;

use super::reader::Recording;
use super::RecordError;
use crate::config::{ModelChoice, MODEL_BUNDLED, MODEL_NONE};
use crate::frame::{Detection, Frame, FrameMeta};
use crate::perception::{OnnxSegmenter, SegMask, Segmenter};
use crate::session::{LiveSession, ModelView, OverlayMsg, PlacedDot, SessionConfig};

/// Decoded frames kept for masks computed on an earlier frame (the live model lags a few
/// frames behind; two seconds at 30 fps is plenty).
const IMAGE_CACHE_FRAMES: usize = 64;

/// One frame, re-run.
#[derive(Debug, Clone)]
pub struct RerunFrame {
    /// The frame.
    pub seq: u64,
    /// The re-run's detections.
    pub detections: Vec<Detection>,
    /// The re-run's overlay (capture time, latency and source status copied from the recording).
    pub overlay: OverlayMsg,
    /// The same as JSON, ready for the page.
    pub overlay_json: String,
    /// Dots the re-run saw placed on this frame.
    pub placed: Vec<PlacedDot>,
    /// Whether the detections equal the recorded ones exactly.
    pub detections_identical: bool,
    /// Whether the overlay equals the recorded one exactly.
    pub overlay_identical: bool,
}

/// How a re-run compares with the recording, so far.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RerunSummary {
    /// Frames re-run.
    pub frames: u64,
    /// Frames whose detections equal the recorded ones exactly.
    pub detections_identical: u64,
    /// Frames whose overlay equals the recorded one exactly.
    pub overlays_identical: u64,
    /// Dots detected, all frames, as recorded.
    pub detections_recorded: u64,
    /// Dots detected, all frames, in the re-run.
    pub detections_rerun: u64,
    /// Dots placed, as recorded.
    pub placed_recorded: u64,
    /// Dots placed, in the re-run.
    pub placed_rerun: u64,
    /// Frames where the re-run could not use the recorded mask frame (dropped by the recorder).
    pub mask_frames_missing: u64,
}

/// The model a re-run uses when none is named: the one the recording was made with.
///
/// # Errors
/// The recording used a model file: the re-run cannot guess where it is now.
pub fn default_model(rec: &Recording) -> anyhow::Result<ModelChoice> {
    match rec.info.model.as_str() {
        MODEL_NONE => Ok(ModelChoice::None),
        MODEL_BUNDLED => Ok(ModelChoice::Bundled),
        other => anyhow::bail!(
            "{}: recorded with model {other}; pass --model FILE (or --no-model) to re-run",
            rec.path.display()
        ),
    }
}

/// Re-runs one recording frame by frame.
#[derive(Debug)]
pub struct Rerunner {
    session: LiveSession,
    segmenter: Option<Segmenter>,
    /// The skin model, run on the frames the dot model runs on (as the live model thread does).
    skin_model: Option<OnnxSegmenter>,
    /// Recently decoded frames, for masks made on an earlier frame.
    images: VecDeque<(u64, Arc<RgbImage>)>,
    /// The latest masks (the dot model's, the skin model's) and the frame they were computed on.
    mask: Option<(u64, MadeOn)>,
    next: usize,
    designs_applied: usize,
    px_per_mm: f64,
    summary: RerunSummary,
}

impl Rerunner {
    /// A re-run of `rec` with `model`.
    ///
    /// # Errors
    /// The model cannot be loaded.
    pub fn new(rec: &Recording, model: &ModelChoice) -> anyhow::Result<Self> {
        let segmenter = model.load(
            crate::frame::View::for_scale(rec.info.px_per_mm),
            rec.info.px_per_mm,
        )?;
        let config = SessionConfig {
            recommendations: rec.info.recommendations,
            // The lens the live session registered through.
            lens: rec.lens(),
            ..SessionConfig::new(rec.info.px_per_mm)
        };
        // As `serve` does: with a dot model in the rig view, the skin model runs beside it on
        // the same frames.
        let skin_model = match (
            &segmenter,
            crate::frame::View::for_scale(rec.info.px_per_mm),
        ) {
            (Some(_), crate::frame::View::Rig) => {
                Some(OnnxSegmenter::bundled_skin().context("cannot use the bundled skin model")?)
            }
            _ => None,
        };
        Ok(Self {
            session: LiveSession::new(config),
            segmenter,
            skin_model,
            images: VecDeque::new(),
            mask: None,
            next: 0,
            designs_applied: 0,
            px_per_mm: rec.info.px_per_mm,
            summary: RerunSummary::default(),
        })
    }

    /// The comparison so far.
    pub fn summary(&self) -> &RerunSummary {
        &self.summary
    }

    /// Re-runs the next frame; `None` after the last one.
    ///
    /// # Errors
    /// A recorded JPEG that does not decode, a frame the detector refuses, a model failure.
    pub fn step(&mut self, rec: &Recording) -> Option<anyhow::Result<RerunFrame>> {
        let f = rec.frames.get(self.next)?;
        self.next += 1;
        Some(self.run_frame(rec, f))
    }

    fn run_frame(
        &mut self,
        rec: &Recording,
        f: &super::RecordedFrame,
    ) -> anyhow::Result<RerunFrame> {
        let _span = tracing::trace_span!("rerun", seq = f.seq).entered();
        while let Some(d) = rec.designs.get(self.designs_applied) {
            if d.seq > f.seq {
                break;
            }
            self.session.set_design(d.design.clone());
            self.designs_applied += 1;
        }
        let image = Arc::new(super::decode_jpeg(f.seq, &f.jpeg).map_err(|e| with_file(rec, e))?);
        if self.images.len() == IMAGE_CACHE_FRAMES {
            self.images.pop_front();
        }
        self.images.push_back((f.seq, image.clone()));
        let frame = Frame {
            meta: FrameMeta {
                seq: f.seq,
                captured_at: Instant::now(),
                camera_id: 0,
            },
            image,
        };
        let mask = self.mask_for(f)?;
        let perception = self
            .session
            .detect_with_mask(
                &frame,
                mask.as_ref().map(|(seq, image, (dots, skin))| ModelView {
                    seq: *seq,
                    image,
                    dots,
                    skin: skin.as_deref(),
                }),
            )
            .with_context(|| format!("{}: frame {}", rec.path.display(), f.seq))?;
        let mut overlay = self.session.update(&perception, None);
        overlay.captured_unix_ms = f.overlay.captured_unix_ms;
        overlay.latency_ms = f.overlay.latency_ms;
        overlay.source_status = f.overlay.source_status.clone();
        let overlay_json = serde_json::to_string(&overlay).context("serialising an overlay")?;
        let placed = self.session.take_placed();

        let recorded = f.detections.as_ref().map(|d| &d.detections);
        let detections_identical = recorded == Some(&perception.detections);
        let overlay_identical = overlay_json == f.overlay_json;
        let s = &mut self.summary;
        s.frames += 1;
        s.detections_identical += u64::from(detections_identical);
        s.overlays_identical += u64::from(overlay_identical);
        s.detections_recorded += recorded.map_or(0, |d| d.len() as u64);
        s.detections_rerun += perception.detections.len() as u64;
        s.placed_recorded = rec.placed.iter().filter(|p| p.seq <= f.seq).count() as u64;
        s.placed_rerun += placed.len() as u64;
        Ok(RerunFrame {
            seq: f.seq,
            detections: perception.detections,
            overlay,
            overlay_json,
            placed,
            detections_identical,
            overlay_identical,
        })
    }

    /// The masks to fuse into frame `f`, with the frame they were computed on: the frame the
    /// live side used, or, for a recording made without a model, the frame itself.
    fn mask_for(&mut self, f: &super::RecordedFrame) -> anyhow::Result<Option<MadeOn>> {
        let Some(seg) = self.segmenter.as_mut() else {
            return Ok(None);
        };
        let wanted = match f.detections.as_ref() {
            Some(d) => d.mask_seq,
            None => Some(f.seq),
        };
        let Some(wanted) = wanted else {
            // Live had no mask yet (the model's first run was not done).
            return Ok(None);
        };
        if let Some((seq, m)) = &self.mask {
            if *seq == wanted {
                return Ok(Some(m.clone()));
            }
        }
        let (made_on, image) = match self.images.iter().rev().find(|(s, _)| *s == wanted) {
            Some((s, image)) => (*s, image.clone()),
            None => {
                self.summary.mask_frames_missing += 1;
                match self.images.back() {
                    Some((s, image)) => (*s, image.clone()),
                    None => return Ok(None),
                }
            }
        };
        let mask = Arc::new(
            seg.segment(&image, self.px_per_mm)
                .with_context(|| format!("segmenting frame {made_on}"))?
                .clone(),
        );
        let skin = match self.skin_model.as_mut() {
            Some(m) => Some(Arc::new(
                m.segment(&image, self.px_per_mm)
                    .with_context(|| format!("skin model on frame {made_on}"))?
                    .clone(),
            )),
            None => None,
        };
        self.mask = Some((wanted, (made_on, image, (mask, skin))));
        Ok(self.mask.as_ref().map(|m| m.1.clone()))
    }
}

/// A dot model's mask and the skin model's of the same frame.
type Masks = (Arc<SegMask>, Option<Arc<SegMask>>);
/// Masks with the frame they were computed on: its number and picture.
type MadeOn = (u64, Arc<RgbImage>, Masks);

fn with_file(rec: &Recording, e: RecordError) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("{}", rec.path.display()))
}

/// Re-runs a whole recording.
///
/// # Errors
/// See [`Rerunner::new`] and [`Rerunner::step`].
pub fn rerun_all(
    rec: &Recording,
    model: &ModelChoice,
) -> anyhow::Result<(Vec<RerunFrame>, RerunSummary)> {
    let mut r = Rerunner::new(rec, model)?;
    let mut out = Vec::with_capacity(rec.frames.len());
    while let Some(f) = r.step(rec) {
        out.push(f?);
    }
    Ok((out, r.summary.clone()))
}
