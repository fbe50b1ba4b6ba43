//! The real-photograph tools of issue 17: the FDU/BSRL scorer (`scripts/score_fdu.py`) on its
//! hand-made annotation files with known answers, the extraction script on a tiny repository,
//! and the real-photo training script's smoke mode. Each needs a Python; without one the test
//! says so and passes (like the training-script tests in `model.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `python` runs and can import `modules` (as written after `import`).
fn imports(python: &Path, modules: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// `STIPPLE_PEER_PYTHON` or `.venv/bin/python` (made by `scripts/setup.sh --peers`), when it has
/// numpy and Pillow.
fn peer_python() -> Option<PathBuf> {
    let python = std::env::var_os("STIPPLE_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    if imports(&python, "numpy, PIL") {
        Some(python)
    } else {
        eprintln!(
            "skipped: no Python with numpy and Pillow at {} (scripts/setup.sh --peers)",
            python.display()
        );
        None
    }
}

/// Units, one-to-one closest-first matching, the text bar, pooled P/R/F1 and the count error on
/// hand-made frames whose answers are worked out in the script's `self_test`.
#[test]
fn r17_fdu_scorer_gives_the_known_answers() -> Result<(), Box<dyn std::error::Error>> {
    let Some(python) = peer_python() else {
        return Ok(());
    };
    let out = Command::new(&python)
        .arg(repo().join("scripts/score_fdu.py"))
        .arg("--self-test")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "self-test failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("checks passed"), "{text}");
    Ok(())
}

/// The extraction script copies the training and validation splits of a (tiny, made-up) clone
/// of the data repository, and nothing of the third split.
#[test]
fn r17_extract_fdu_copies_train_and_val_only() -> Result<(), Box<dyn std::error::Error>> {
    let Some(python) = peer_python() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    let main = src.join("data/ImageSets/Main");
    std::fs::create_dir_all(&main)?;
    std::fs::create_dir_all(src.join("data/Images"))?;
    std::fs::create_dir_all(src.join("data/Annotations"))?;
    for (split, name) in [("train", "a"), ("val", "b"), ("test", "c")] {
        std::fs::write(main.join(format!("{split}.txt")), format!("{name}\n"))?;
        std::fs::write(src.join(format!("data/Images/{name}.jpg")), name)?;
        std::fs::write(
            src.join(format!("data/Annotations/{name}.xml")),
            "<annotation/>",
        )?;
    }
    let git = |args: &[&str]| Command::new("git").current_dir(&src).args(args).output();
    if git(&["init", "-q"])
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        eprintln!("skipped: no git");
        return Ok(());
    }
    git(&["add", "-A"])?;
    let commit = git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "data",
    ])?;
    assert!(commit.status.success(), "{commit:?}");
    let out = dir.path().join("out");
    let status = Command::new(&python)
        .arg(repo().join("models/train/extract_fdu.py"))
        .arg(&src)
        .arg("--out")
        .arg(&out)
        .status()?;
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(out.join("images/a.jpg"))?, "a");
    assert_eq!(std::fs::read_to_string(out.join("images/b.jpg"))?, "b");
    assert!(out.join("annotations/b.xml").exists());
    assert!(!out.join("images/c.jpg").exists());
    assert!(!out.join("annotations/c.xml").exists());
    assert_eq!(std::fs::read_to_string(out.join("val.txt"))?.trim(), "b");
    Ok(())
}

/// The real-photo training script runs a few steps and exports a model the openings contract
/// accepts, when torch (`.venv-train`, see models/README.md) and the extracted set (`data/fdu`)
/// are both present.
#[test]
fn r17_real_photo_training_runs_a_few_steps() -> Result<(), Box<dyn std::error::Error>> {
    let python = std::env::var_os("STIPPLE_TRAIN_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv-train/bin/python"));
    let has_torch = imports(&python, "torch, onnx, cv2");
    let data = repo().join("data/fdu");
    if !has_torch || !data.join("train.txt").exists() {
        eprintln!(
            "skipped: needs torch, onnx and opencv at {} and the extracted set at {} \
             (models/train/extract_fdu.py)",
            python.display(),
            data.display()
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("real.onnx");
    let status = Command::new(&python)
        .arg(repo().join("models/train/train_openings_real.py"))
        .arg("--smoke")
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .status()?;
    assert!(status.success(), "train_openings_real.py failed: {status}");
    let seg = stipple::perception::OnnxSegmenter::from_file(
        &out,
        &stipple::perception::segment::SegmentConfig::default(),
    )?;
    assert_eq!(
        seg.contract().kind,
        stipple::perception::segment::ModelKind::Openings
    );
    Ok(())
}

/// The opening trees' fitting script runs end to end on a few photographs of each split (the
/// Rust detector's candidates through `examples/derm_peaks.rs`, labels, a few trees, the
/// validation sweep), when the extracted set (`data/fdu`), the built example and a Python with
/// pandas and scikit-learn are present.
#[test]
fn r17_opening_trees_fit_on_a_few_photographs() -> Result<(), Box<dyn std::error::Error>> {
    let Some(python) = peer_python() else {
        return Ok(());
    };
    let has_sklearn = imports(&python, "pandas, sklearn");
    let data = repo().join("data/fdu");
    let examples = ["target/release/examples", "target/debug/examples"]
        .map(|d| repo().join(d))
        .into_iter()
        .find(|d| d.join("derm_peaks").exists());
    let (true, true, Some(examples)) = (has_sklearn, data.join("val.txt").exists(), examples)
    else {
        eprintln!(
            "skipped: needs pandas and scikit-learn at {}, the extracted set at {} and the built \
             example derm_peaks (cargo build --release --examples)",
            python.display(),
            data.display()
        );
        return Ok(());
    };
    let work = tempfile::tempdir()?;
    let out = Command::new(&python)
        .arg(repo().join("models/train/fit_openings_fdu.py"))
        .arg("--smoke")
        .arg("--data")
        .arg(&data)
        .arg("--examples")
        .arg(&examples)
        .arg("--work")
        .arg(work.path())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fit_openings_fdu.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("photographs of the FDU/BSRL training split"),
        "{stdout}"
    );
    let cached: Vec<String> = std::fs::read_dir(work.path())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("train-smoke-") && n.ends_with(".csv"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    Ok(())
}
