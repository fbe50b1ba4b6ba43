//! `stipple serve`: the live service at the chair (camera → detection → plan → page).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::config::{
    ModelChoice, ServeConfig, SourceSpec, DEFAULT_BIND, DEFAULT_CALIBRATION_DIR,
    DEFAULT_DESIGN_DIR, DEFAULT_JPEG_QUALITY, MODEL_BUNDLED, MODEL_NONE,
};

/// Arguments of `stipple serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where frames come from: `synthetic` (a rendered, moving head with a simulated needle),
    /// `synthetic-board` (a rendered calibration board held up in changing poses, for
    /// calibration mode without a camera), `camera[:INDEX]` (a UVC camera) or `images:DIR`
    /// (an image folder, played in name order).
    #[arg(long, default_value = "synthetic")]
    pub source: SourceSpec,
    /// Address to listen on. Loopback by default; any other address exposes the page to the
    /// network and is your explicit choice.
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Camera calibration (TOML, see `calibration/`): sets frame size and px/mm.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Segmentation model (ONNX) instead of the bundled models/stipple-seg.onnx. A missing or
    /// broken file is an error, never a silent fallback.
    #[arg(long, conflicts_with = "no_model")]
    pub model: Option<PathBuf>,
    /// Classical detection only: no segmentation model.
    #[arg(long)]
    pub no_model: bool,
    /// Frame width asked from the source (overridden by a calibration).
    #[arg(long, default_value_t = 1280)]
    pub width: u32,
    /// Frame height asked from the source (overridden by a calibration).
    #[arg(long, default_value_t = 720)]
    pub height: u32,
    /// Frames per second asked from the source.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// Scale at the skin when no calibration is given, pixels per millimetre.
    #[arg(long, default_value_t = 20.0)]
    pub px_per_mm: f64,
    /// How the camera sees the skin: `rig` or `dermoscope`. Default: from the scale,
    /// dermoscope from 60 px/mm.
    #[arg(long, value_enum)]
    pub view: Option<super::ViewArg>,
    /// Seed of the synthetic head.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// JPEG quality of the frames sent to the page (1-100).
    #[arg(long, default_value_t = DEFAULT_JPEG_QUALITY, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: u8,
    /// Folder where calibration mode (on the page) saves calibration files.
    #[arg(long, default_value = DEFAULT_CALIBRATION_DIR)]
    pub calibration_dir: PathBuf,
    /// List the cameras the system offers and exit.
    #[arg(long)]
    pub list_cameras: bool,
    /// Record the session to this MCAP file (frames, detections, plan, design changes, placed
    /// dots); opens in Foxglove, replays with `stipple replay FILE`.
    #[arg(long, value_name = "FILE.mcap")]
    pub record: Option<PathBuf>,
    /// The client (whose scalp), written into the recording's metadata for the report.
    #[arg(long, value_name = "NAME", requires = "record")]
    pub client: Option<String>,
    /// The artist or student at the needle, written into the recording's metadata for the
    /// trainer's report.
    #[arg(long, value_name = "NAME", requires = "record")]
    pub artist: Option<String>,
    /// Let `--record` replace an existing file (without it, an existing file is an error).
    #[arg(long, requires = "record")]
    pub overwrite: bool,
    /// A host name the page may be opened under besides the bound address (for example the
    /// machine's name on the local network); repeatable. Requests naming any other host are
    /// refused (DNS rebinding).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// Read the access token from this file instead of making one up. A token is required
    /// whenever `--bind` is beyond loopback; given on loopback, it is required there too.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Start from this treatment design (TOML, as `stipple plan --design` reads; millimetres
    /// are skin millimetres from the first frame's top-left corner, pixels are that frame's).
    #[arg(long, value_name = "FILE.toml")]
    pub design: Option<PathBuf>,
    /// Folder where the page saves designs (`POST /api/design/save`).
    #[arg(long, default_value = DEFAULT_DESIGN_DIR)]
    pub design_dir: PathBuf,
}

impl ServeConfig {
    /// Resolves validated CLI values: loads the calibration, checks the model.
    ///
    /// # Errors
    /// A calibration that cannot be loaded, a missing model file, or out-of-range numbers.
    pub fn from_cli(args: &ServeArgs) -> anyhow::Result<Self> {
        anyhow::ensure!(
            args.fps.is_finite() && args.fps > 0.0 && args.fps <= 240.0,
            "--fps must be in (0, 240], got {}",
            args.fps
        );
        let sides = crate::limits::FRAME_SIDE_PX;
        for (flag, v) in [("--width", args.width), ("--height", args.height)] {
            anyhow::ensure!(
                sides.contains(&v),
                "{flag} must be between {} and {} px, got {v}",
                sides.start(),
                sides.end()
            );
        }
        crate::limits::check_px_per_mm("--px-per-mm", args.px_per_mm)
            .map_err(anyhow::Error::msg)?;
        let mut config = ServeConfig::new();
        config.source = args.source.clone();
        config.bind = args.bind;
        config.fps = args.fps;
        config.width = args.width;
        config.height = args.height;
        config.seed = args.seed;
        config.jpeg_quality = args.jpeg_quality;
        config.calibration_dir = args.calibration_dir.clone();
        (config.model_choice, config.model) = match (&args.model, args.no_model) {
            (_, true) => (ModelChoice::None, MODEL_NONE.to_string()),
            (Some(path), false) => {
                anyhow::ensure!(path.is_file(), "--model {}: no such file", path.display());
                (ModelChoice::File(path.clone()), path.display().to_string())
            }
            (None, false) => (ModelChoice::Bundled, MODEL_BUNDLED.to_string()),
        };
        config.record = args.record.clone();
        let name = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<String>> {
            v.as_deref()
                .map(|n| crate::limits::person_name(flag, n).map_err(anyhow::Error::msg))
                .transpose()
        };
        config.client = name("--client", &args.client)?;
        config.artist = name("--artist", &args.artist)?;
        config.record_overwrite = args.overwrite;
        config.allow_hosts = args.allow_hosts.clone();
        config.token = match &args.token_file {
            Some(path) => Some(read_token(path)?),
            None if !args.bind.ip().is_loopback() => Some(new_token()),
            None => None,
        };
        let mut px_per_mm = args.px_per_mm;
        if let Some(path) = &args.calibration {
            let c = load_calibration(path)?;
            (config.width, config.height, px_per_mm) = (c.image_width, c.image_height, c.px_per_mm);
            config.calibration = Some(c);
        }
        config.design_dir = args.design_dir.clone();
        if let Some(path) = &args.design {
            let design = crate::planning::Design::load(path)
                .with_context(|| format!("--design {}: bad design", path.display()))?
                // Pixel designs through the calibration's lens, as the live session plans.
                .in_mm_through(&config.calibration.as_ref().map_or_else(
                    || crate::calib::PlaneMap::uniform(px_per_mm),
                    crate::calib::PlaneMap::of,
                ))
                .with_defaults();
            design
                .validate()
                .with_context(|| format!("--design {}: bad design", path.display()))?;
            config.design = Some(design);
        }
        let mut config = config.with_px_per_mm(px_per_mm);
        if let Some(c) = &config.calibration {
            // Detection and planning through the calibration's lens (points, not frames).
            config.session = config.session.with_calibration(c);
        }
        if let Some(view) = args.view {
            config.session.view = view.into();
        }
        Ok(config)
    }
}

/// Shortest token accepted from `--token-file`.
const MIN_TOKEN_CHARS: usize = 16;

/// The token in `path` (surrounding whitespace ignored): at least [`MIN_TOKEN_CHARS`]
/// characters from `A-Z a-z 0-9 - _ . ~`, so that it travels unchanged in a URL and a cookie.
fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--token-file {}: cannot read it", path.display()))?;
    let token = text.trim();
    anyhow::ensure!(
        token.len() >= MIN_TOKEN_CHARS
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)),
        "--token-file {}: the token must be at least {MIN_TOKEN_CHARS} characters of A-Z a-z 0-9 - _ . ~",
        path.display()
    );
    Ok(token.to_string())
}

/// A fresh random token: 128 bits from the OS, as hex.
pub(crate) fn new_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A calibration file (`calib::load` validates every field).
fn load_calibration(path: &Path) -> anyhow::Result<crate::calib::Calibration> {
    crate::calib::load(path).with_context(|| format!("loading calibration {}", path.display()))
}

/// Runs `stipple serve`.
///
/// # Errors
/// Bad arguments, no camera, an address that cannot be bound.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.list_cameras {
        let cams = crate::source::camera::list_cameras().context("listing cameras")?;
        if cams.is_empty() {
            anyhow::bail!("no camera found (is one plugged in, and is /dev/video* readable?)");
        }
        let text = serde_json::to_string_pretty(&cams).context("formatting the camera list")?;
        std::io::Write::write_all(&mut std::io::stdout(), format!("{text}\n").as_bytes())
            .context("writing to stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = ServeConfig::from_cli(&args)?;
    if !config.bind.ip().is_loopback() {
        tracing::warn!(bind = %config.bind, "listening beyond loopback: the page is reachable from the network");
    }
    if let Some(token) = &config.token {
        let host = if config.bind.ip().is_unspecified() {
            "THIS-MACHINE".to_string()
        } else {
            config.bind.ip().to_string()
        };
        // The one place the token is shown: the artist opens this address once; the page then
        // keeps it as a cookie.
        let line = format!(
            "access token required; open http://{host}:{}/?token={token}\n",
            config.bind.port()
        );
        std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes())
            .context("writing to stderr")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("stipple-io")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(crate::pipeline::run(config, crate::shutdown::signal()))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Wrap::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|w| w.args)
    }

    #[test]
    fn defaults_are_synthetic_on_loopback() -> anyhow::Result<()> {
        let config = ServeConfig::from_cli(&parse(&[])?)?;
        assert_eq!(config.source, SourceSpec::Synthetic);
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.model_choice, ModelChoice::Bundled);
        assert_eq!(config.model, MODEL_BUNDLED);
        let config = ServeConfig::from_cli(&parse(&["--no-model"])?)?;
        assert_eq!(config.model_choice, ModelChoice::None);
        assert_eq!(config.model, "none (classical)");
        Ok(())
    }

    #[test]
    fn bind_is_taken_exactly_as_given() -> anyhow::Result<()> {
        let config = ServeConfig::from_cli(&parse(&["--bind", "0.0.0.0:9001"])?)?;
        assert_eq!(config.bind.to_string(), "0.0.0.0:9001");
        Ok(())
    }

    #[test]
    fn a_missing_model_file_is_an_error() -> anyhow::Result<()> {
        let err = ServeConfig::from_cli(&parse(&["--model", "m.onnx"])?).expect_err("refused");
        assert!(
            format!("{err:#}").contains("m.onnx: no such file"),
            "{err:#}"
        );
        Ok(())
    }

    #[test]
    fn calibration_sets_size_and_scale() -> anyhow::Result<()> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/calibration/synthetic.toml");
        let config = ServeConfig::from_cli(&parse(&["--calibration", path])?)?;
        assert_eq!(
            (config.width, config.height, config.px_per_mm),
            (1280, 720, 20.0)
        );
        assert_eq!(config.session.px_per_mm, 20.0);
        // An ideal pinhole: pixels over the scale are millimetres, no lens to go through.
        assert!(config.session.lens.is_none());
        // The same camera with a barrel lens: the session detects and plans through it.
        let dir = tempfile::tempdir()?;
        let barrel = dir.path().join("barrel.toml");
        std::fs::write(
            &barrel,
            std::fs::read_to_string(path)?.replace("k1 = 0.0", "k1 = -0.3"),
        )?;
        let config =
            ServeConfig::from_cli(&parse(&["--calibration", &barrel.display().to_string()])?)?;
        let lens = config.session.lens.as_ref().expect("a lens that distorts");
        assert_eq!(lens.px_per_mm(), 20.0);
        let corner = lens.to_ideal([0.0, 0.0]);
        assert!(corner[0] < -10.0 && corner[1] < -5.0, "{corner:?}");
        let err = ServeConfig::from_cli(&parse(&["--calibration", "no/such.toml"])?)
            .expect_err("missing");
        assert!(format!("{err:#}").contains("no/such.toml"), "{err:#}");
        Ok(())
    }

    #[test]
    fn design_files_are_loaded_checked_and_in_skin_mm() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let good = dir.path().join("client.toml");
        std::fs::write(
            &good,
            "units = \"px\"\nsession = 2\n[[zones]]\nname = \"mole\"\nkind = \"nogo\"\n\
             polygon = [[0, 0], [40, 0], [40, 40]]\n",
        )?;
        let config = ServeConfig::from_cli(&parse(&["--design", &good.display().to_string()])?)?;
        let design = config.design.ok_or_else(|| anyhow::anyhow!("no design"))?;
        assert_eq!(design.zones[0].polygon[1], [2.0, 0.0]); // 40 px at 20 px/mm
        assert_eq!(design.session, Some(2));
        assert_eq!(design.min_spacing_mm, Some(0.7));
        assert_eq!(config.design_dir, std::path::PathBuf::from("designs"));
        let bad = dir.path().join("dense.toml");
        std::fs::write(&bad, "target_density_per_cm2 = 200\nmin_spacing_mm = 1.5\n")?;
        let err = ServeConfig::from_cli(&parse(&["--design", &bad.display().to_string()])?)
            .expect_err("refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("dense.toml") && text.contains("51.3 dots/cm²"),
            "{text}"
        );
        Ok(())
    }
}
