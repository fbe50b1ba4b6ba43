//! `stipple synth`: render synthetic frames with ground truth, `DIR/NNN.png|jpg` beside
//! `DIR/NNN.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use tracing::info_span;

use super::ViewArg;
use crate::source::synth::{ChairKind, ColourModel, Scene, SceneParams, View};

/// Arguments of `stipple synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Seed of the first frame; frame i uses seed + i.
    #[arg(long)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of frames.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Frame size as WxH; defaults to 1280x720 (rig) or 1280x1024 (dermoscope).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// Scale at the skin (px/mm); drawn per seed (rig, 12-28) or 300 (dermoscope) if not given.
    #[arg(long)]
    pub px_per_mm: Option<f64>,
    /// Which camera to imitate.
    #[arg(long, value_enum, default_value_t = ViewArg::Rig)]
    pub view: ViewArg,
    /// Image file format.
    #[arg(long, value_enum, default_value_t = FormatArg::Png)]
    pub format: FormatArg,
    /// Ink and hair colours of rig frames: the renderer's own, or the held-out model that
    /// nothing is fitted on (for evaluation).
    #[arg(long, value_enum, default_value_t = ColoursArg::Standard)]
    pub colours: ColoursArg,
    /// What else the camera sees (rig view only); the truth then carries a `not_skin` mask.
    #[arg(long, value_enum, default_value_t = ChairArg::None)]
    pub chair: ChairArg,
}

/// `--chair` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChairArg {
    /// Only skin.
    None,
    /// At the chair: room, longer hair, ear, cape, ink smears, gloves and the machine.
    Working,
    /// A photograph of a whole head (give --px-per-mm 3..8): room, hair, shirt.
    WholeHead,
}

/// `--colours` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColoursArg {
    /// The renderer's own ink and hair model.
    Standard,
    /// The held-out ink and hair model.
    Alternate,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Lossless PNG.
    Png,
    /// JPEG (quality 92; frames may already carry the renderer's own JPEG artefacts).
    Jpg,
}

/// JPEG quality of `--format jpg` files.
const FILE_JPEG_QUALITY: u8 = 92;
/// Largest accepted side of a frame (px).
const MAX_SIDE_PX: u32 = 8192;

/// Parses `WxH`, e.g. `1280x720`.
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("bad --size {s:?}: expected WxH, e.g. 1280x720"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("bad --size {s:?}: width is not a number"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("bad --size {s:?}: height is not a number"))?;
    if w < 16 || h < 16 || w > MAX_SIDE_PX || h > MAX_SIDE_PX {
        return Err(format!(
            "bad --size {s:?}: each side must be 16..={MAX_SIDE_PX} px"
        ));
    }
    Ok((w, h))
}

/// Renders the frames.
///
/// # Errors
/// An output folder that cannot be created or written, a bad `--px-per-mm`, or a failed encode,
/// each with the path or flag at fault.
pub fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let view = View::from(args.view);
    if args.chair != ChairArg::None && view != View::Rig {
        bail!("--chair needs --view rig: the dermoscope touches the skin and sees only skin");
    }
    if let Some(p) = args.px_per_mm {
        if !(p.is_finite() && p > 0.0) {
            bail!("bad --px-per-mm {p}: must be a positive number");
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    for i in 0..args.count {
        let seed = args.seed.wrapping_add(i as u64);
        let _span = info_span!("synth_frame", seed, i).entered();
        let mut params = SceneParams::new(seed, view);
        if let Some((w, h)) = args.size {
            params.width = w;
            params.height = h;
        }
        params.px_per_mm = args.px_per_mm;
        let model = match args.colours {
            ColoursArg::Standard => ColourModel::Standard,
            ColoursArg::Alternate => ColourModel::Alternate,
        };
        let mut scene = Scene::generate_with(&params, model);
        let chair = match args.chair {
            ChairArg::None => None,
            ChairArg::Working => Some(ChairKind::Working),
            ChairArg::WholeHead => Some(ChairKind::WholeHead),
        };
        scene.set_chair(chair, true);
        let frame = scene.render(&Default::default(), seed);
        let stem = format!("{i:03}");
        let ext = match args.format {
            FormatArg::Png => "png",
            FormatArg::Jpg => "jpg",
        };
        let img_path = args.out.join(format!("{stem}.{ext}"));
        write_image(&frame.image, &img_path, args.format)?;
        let json_path = args.out.join(format!("{stem}.json"));
        let json =
            serde_json::to_string_pretty(&frame.truth).context("cannot serialise the truth")?;
        std::fs::write(&json_path, json)
            .with_context(|| format!("cannot write {}", json_path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_image(img: &image::RgbImage, path: &Path, format: FormatArg) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let res = match format {
        FormatArg::Png => img.write_to(&mut w, image::ImageFormat::Png),
        FormatArg::Jpg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, FILE_JPEG_QUALITY)
                .encode_image(img)
        }
    };
    res.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_parses() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert!(parse_size("1280").is_err());
        assert!(parse_size("0x10").is_err());
        assert!(parse_size("axb").is_err());
    }

    #[test]
    fn writes_frames_and_parsable_truth() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let args = SynthArgs {
            seed: 5,
            out: dir.path().join("out"),
            count: 2,
            size: Some((160, 120)),
            px_per_mm: Some(15.0),
            view: ViewArg::Rig,
            format: FormatArg::Png,
            colours: ColoursArg::Standard,
            chair: ChairArg::None,
        };
        run(args)?;
        for stem in ["000", "001"] {
            let img = image::open(dir.path().join("out").join(format!("{stem}.png")))?;
            assert_eq!((img.width(), img.height()), (160, 120));
            let text =
                std::fs::read_to_string(dir.path().join("out").join(format!("{stem}.json")))?;
            let truth: crate::source::synth::Truth = serde_json::from_str(&text)?;
            assert_eq!(truth.px_per_mm, 15.0);
        }
        Ok(())
    }

    #[test]
    fn unwritable_folder_names_the_path() {
        let args = SynthArgs {
            seed: 1,
            out: PathBuf::from("/proc/stipple-no-such/out"),
            count: 1,
            size: Some((32, 32)),
            px_per_mm: None,
            view: ViewArg::Rig,
            format: FormatArg::Png,
            colours: ColoursArg::Standard,
            chair: ChairArg::None,
        };
        let err = run(args)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("/proc/stipple-no-such/out"), "{err}");
    }
}
