//! Foxglove-correct recordings (issue 21): every message of a 10 s recording of the synthetic
//! source validates against its schema (Foxglove's published JSON schemas for the `foxglove.*`
//! channels, tightened; the schema the file carries for Stipple's own), no channel is empty,
//! and the session, design and versions are MCAP Metadata records.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stipple::record::schema;
use stipple::record::Recording;

use super::record::{free_addr, http, status, wait_exit};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Foxglove's published schema of `name` (`tests/data/foxglove/`), tightened: every object
/// that lists its properties admits no others and needs them all. Foxglove ignores unknown
/// fields and defaults missing ones, so the published schema alone would accept a misnamed
/// field (`labels` for `texts`) that Foxglove then never draws.
fn published(name: &str) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/foxglove")
        .join(format!("{}.json", name.trim_start_matches("foxglove.")));
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
    fn tighten(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    let names: Vec<serde_json::Value> = props
                        .keys()
                        .cloned()
                        .map(serde_json::Value::String)
                        .collect();
                    map.insert("required".into(), serde_json::Value::Array(names));
                    map.insert(
                        "additionalProperties".into(),
                        serde_json::Value::Bool(false),
                    );
                }
                map.values_mut().for_each(tighten);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(tighten),
            _ => {}
        }
    }
    tighten(&mut v);
    Ok(v)
}

fn validator(
    schema: &serde_json::Value,
) -> Result<jsonschema::Validator, Box<dyn std::error::Error + Send + Sync>> {
    jsonschema::validator_for(schema).map_err(|e| e.to_string().into())
}

/// Every message of `bytes` against its schemas; messages per topic.
fn validate_all(
    bytes: &[u8],
) -> Result<BTreeMap<String, u64>, Box<dyn std::error::Error + Send + Sync>> {
    let mut embedded: BTreeMap<String, jsonschema::Validator> = BTreeMap::new();
    let mut foxglove: BTreeMap<String, jsonschema::Validator> = BTreeMap::new();
    let mut per_topic = BTreeMap::new();
    for m in mcap::MessageStream::new(bytes)? {
        let m = m?;
        let s = m
            .channel
            .schema
            .as_ref()
            .ok_or("a channel without schema")?;
        assert_eq!(s.encoding, "jsonschema", "{}", m.channel.topic);
        assert_eq!(m.channel.message_encoding, "json", "{}", m.channel.topic);
        let msg: serde_json::Value = serde_json::from_slice(&m.data)?;
        if !embedded.contains_key(&s.name) {
            let v: serde_json::Value = serde_json::from_slice(&s.data)?;
            embedded.insert(s.name.clone(), validator(&v)?);
        }
        let errors: Vec<String> = embedded[&s.name]
            .iter_errors(&msg)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{} against its own schema {}: {errors:?}",
            m.channel.topic,
            s.name
        );
        if s.name.starts_with("foxglove.") {
            if !foxglove.contains_key(&s.name) {
                foxglove.insert(s.name.clone(), validator(&published(&s.name)?)?);
            }
            let errors: Vec<String> = foxglove[&s.name]
                .iter_errors(&msg)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{} against Foxglove's {}: {errors:?}",
                m.channel.topic,
                s.name
            );
        }
        *per_topic.entry(m.channel.topic.clone()).or_default() += 1;
    }
    Ok(per_topic)
}

#[test]
fn the_tightened_schemas_catch_a_misnamed_field() -> TestResult {
    let v = validator(&published("foxglove.ImageAnnotations")?)?;
    let text = serde_json::json!({"timestamp": {"sec": 1, "nsec": 0}, "position": {"x": 1.0, "y": 2.0},
        "text": "1", "font_size": 14.0, "text_color": {"r": 0, "g": 1, "b": 1, "a": 1},
        "background_color": {"r": 0, "g": 0, "b": 0, "a": 0}});
    let good = serde_json::json!({"circles": [], "points": [], "texts": [text]});
    let old = serde_json::json!({"circles": [], "points": [], "labels": [text]});
    assert!(v.is_valid(&good));
    assert!(!v.is_valid(&old), "`labels` is not Foxglove's field");
    // What Stipple writes for a recommendation is what Foxglove reads.
    let overlay = stipple::session::OverlayMsg {
        recs: vec![[10.0, 20.0, 1.0]],
        target: Some([10.0, 20.0, 4.0]),
        dots: vec![[5.0, 5.0, 2.0, 0.0], [7.0, 7.0, 2.0, 1.0]],
        ..serde_json::from_value(serde_json::json!({
            "seq": 1, "captured_unix_ms": 0.0, "latency_ms": 0.0, "width": 64, "height": 48,
            "dots": [], "recs": [], "target": null, "zones": [], "hairline": [], "heat": null,
            "image_from_skin": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], "registered": true,
            "dots_placed": 0, "recs_done": 0, "source_status": ""}))?
    };
    let a = serde_json::to_value(schema::annotations(&overlay, schema::FoxTime::from_ns(5)))?;
    assert!(v.is_valid(&a), "{a}");
    assert_eq!(a["texts"][0]["text"], "1");
    Ok(())
}

#[test]
fn a_calibration_is_recorded_as_foxgloves_camera_calibration() -> TestResult {
    let calib = stipple::calib::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("calibration/synthetic.toml"),
    )?;
    let v = validator(&published("foxglove.CameraCalibration")?)?;
    let msg = serde_json::to_value(schema::camera_calibration(&calib))?;
    let errors: Vec<String> = v.iter_errors(&msg).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(msg["K"][0], calib.intrinsics.fx);
    Ok(())
}

/// `serve --record --client --artist` on the synthetic source for 10 s, stopped with SIGINT.
#[test]
fn a_10_s_recording_validates_against_foxgloves_schemas_and_carries_its_metadata() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("ten.mcap");
    let addr = free_addr()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_stipple"))
        .args([
            "serve",
            "--bind",
            &addr.to_string(),
            "--width",
            "640",
            "--height",
            "360",
        ])
        .arg("--record")
        .arg(&file)
        .args(["--client", "Jane Client", "--artist", "Sam Student"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // 10 s from the first processed frame; 3 s in, the page corrects the client's name.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first: Option<Instant> = None;
    let mut frames = 0;
    let mut renamed = false;
    while Instant::now() < deadline {
        if let Some(s) = status(addr) {
            frames = s["frames_processed"].as_u64().unwrap_or(0);
            if frames > 0 && first.is_none() {
                first = Some(Instant::now());
            }
        }
        if !renamed && first.is_some_and(|t| t.elapsed() >= Duration::from_secs(3)) {
            renamed = true;
            let people = http(addr, "GET", "/api/session/people", "")?;
            assert!(people.contains("Jane Client"), "{people}");
            // A name too long to be one is refused by field, and changes nothing.
            let long = format!(r#"{{"client": "{}"}}"#, "J".repeat(200));
            let err = http(addr, "PUT", "/api/session/people", &long)
                .expect_err("a 200-character name was accepted");
            assert!(err.contains("422"), "{err}");
            let set = http(
                addr,
                "PUT",
                "/api/session/people",
                r#"{"client": "Jane Client-Smith", "artist": "Sam Student"}"#,
            )?;
            assert!(set.contains("Jane Client-Smith"), "{set}");
        }
        if first.is_some_and(|t| t.elapsed() >= Duration::from_secs(10)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let exit = wait_exit(&mut child, Duration::from_secs(30))?;
    assert!(exit.success(), "serve exited with {exit}");
    assert!(first.is_some(), "no frame processed ({frames})");

    let bytes = std::fs::read(&file)?;
    let per_topic = validate_all(&bytes)?;
    let summary = mcap::Summary::read(&bytes)?.ok_or("no summary")?;
    // No empty channel, no calibration channel without a calibration.
    for c in summary.channels.values() {
        assert!(
            per_topic.get(&c.topic).copied().unwrap_or(0) > 0,
            "{} is empty",
            c.topic
        );
    }
    assert!(
        !per_topic.contains_key(schema::TOPIC_CALIBRATION),
        "{per_topic:?}"
    );
    let images = per_topic.get(schema::TOPIC_IMAGE).copied().unwrap_or(0);
    assert!(images >= 30, "{images} frames in 10 s: {per_topic:?}");
    assert_eq!(
        per_topic.get(schema::TOPIC_ANNOTATIONS).copied(),
        Some(images)
    );

    // The recommendations' numbers are `texts`, so Foxglove shows them.
    let mut texts = 0;
    for m in mcap::MessageStream::new(&bytes)? {
        let m = m?;
        if m.channel.topic == schema::TOPIC_ANNOTATIONS {
            let v: serde_json::Value = serde_json::from_slice(&m.data)?;
            texts += v["texts"].as_array().map_or(0, Vec::len);
        }
    }
    assert!(texts > 0, "no recommendation numbers in {images} frames");

    // Metadata records: session, design, versions; the reader hands them to the report.
    let names: Vec<&str> = summary
        .metadata_indexes
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    for name in [
        schema::METADATA_SESSION,
        schema::METADATA_DESIGN,
        schema::METADATA_VERSIONS,
    ] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    let rec = Recording::open(&file)?;
    // The name as the page corrected it (the record written again; a reader takes the last).
    assert_eq!(
        rec.session_field("client").as_deref(),
        Some("Jane Client-Smith")
    );
    assert_eq!(rec.session_field("artist").as_deref(), Some("Sam Student"));
    assert_eq!(rec.session_field("session_number").as_deref(), Some("1"));
    assert_eq!(rec.session_field("date"), Some(rec.info.date()));
    let versions = &rec.metadata[schema::METADATA_VERSIONS];
    assert_eq!(versions["stipple"], env!("CARGO_PKG_VERSION"));
    assert_eq!(versions["model"], stipple::config::MODEL_BUNDLED);
    assert!(rec.metadata[schema::METADATA_DESIGN].contains_key("target_per_cm2"));
    Ok(())
}
