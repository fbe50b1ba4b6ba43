//! The live design and the artist's controls (issues 16 and 20): zones drawn through the API
//! plan exactly as `stipple plan --design` plans them; undo, not-a-dot, pause, zone edit and
//! delete, design save and `serve --design`; the blowout guard; refusal of impossible designs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use stipple::config::ServeConfig;
use stipple::mailbox::Mailbox;
use stipple::planning::design::polyline_foot;
use stipple::planning::{Design, PlanInput, Planner};
use stipple::server::{app, AppState};
use stipple::session::{LiveSession, OverlayMsg, SessionConfig};
use stipple::source::{DemoConfig, DemoSource, NeedleHint};
use tower::ServiceExt as _;

use crate::serve::{get_json, request, Server, TestResult};

fn small_config() -> ServeConfig {
    let mut c = ServeConfig::new();
    c.width = 640;
    c.height = 360;
    c
}

/// A state with no pipeline behind it, for the design endpoints.
fn bare_state() -> AppState {
    let (_tx, shutdown) = stipple::shutdown::channel();
    AppState::new("synthetic".into(), "none".into(), 4, 2, shutdown)
}

async fn oneshot_json(
    state: &AppState,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<(StatusCode, serde_json::Value), Box<dyn std::error::Error + Send + Sync>> {
    let res = app(state.clone())
        .oneshot(
            Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))?,
        )
        .await?;
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await?;
    Ok((status, serde_json::from_slice(&bytes)?))
}

#[tokio::test]
async fn an_impossible_design_is_refused_with_the_largest_density_its_spacing_allows() -> TestResult
{
    let state = bare_state();
    // 200 dots/cm² at 1.5 mm: hexagonal packing allows 2 / (sqrt(3) 1.5²) per mm² = 51.3/cm².
    let (status, body) = oneshot_json(
        &state,
        "PUT",
        "/api/design",
        serde_json::json!({"session": 1, "target_density_per_cm2": 200, "min_spacing_mm": 1.5}),
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let err = body["error"].as_str().ok_or("no error")?;
    assert!(err.contains("target_density_per_cm2"), "{err}");
    assert!(err.contains("hexagonal packing"), "{err}");
    assert!(err.contains("51.3 dots/cm²"), "{err}");
    // A zone's own target is held to the same limit, and the message names the zone.
    let (status, body) = oneshot_json(
        &state,
        "PUT",
        "/api/design",
        serde_json::json!({"min_spacing_mm": 1.0, "zones": [{"name": "crown", "kind": "fill",
            "polygon": [[0, 0], [10, 0], [10, 10]], "target_density_per_cm2": 150}]}),
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let err = body["error"].as_str().ok_or("no error")?;
    assert!(
        err.contains("\"crown\"") && err.contains("115.5 dots/cm²"),
        "{err}"
    );
    // The caps.
    let zones: Vec<_> = (0..65)
        .map(|i| {
            serde_json::json!({"name": format!("z{i}"), "kind": "fill",
            "polygon": [[0, 0], [1, 0], [1, 1]]})
        })
        .collect();
    let (status, body) = oneshot_json(
        &state,
        "PUT",
        "/api/design",
        serde_json::json!({ "zones": zones }),
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("at most 64 zones"),
        "{body}"
    );
    let long = "x".repeat(65);
    let (status, body) = oneshot_json(
        &state,
        "PUT",
        "/api/design",
        serde_json::json!({"zones": [{"name": long, "kind": "fill", "polygon": [[0, 0], [1, 0], [1, 1]]}]}),
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("at most 64 characters"),
        "{body}"
    );
    // Nothing of it reached the design.
    let d = state
        .design
        .lock()
        .map_err(|e| e.to_string())?
        .design
        .clone();
    assert!(d.zones.is_empty());
    assert_eq!(d.target_density_per_cm2, Some(80.0));
    // The same rule in the TOML the CLI reads.
    let err = Design::from_toml("min_spacing_mm = 1.5\ntarget_density_per_cm2 = 200\n")
        .expect_err("refused");
    assert!(err.to_string().contains("51.3 dots/cm²"), "{err}");
    Ok(())
}

/// Drives a live session on the synthetic head, frame by frame, as the pipeline does.
struct Rig {
    demo: DemoSource,
    hints: Arc<Mailbox<NeedleHint>>,
    session: LiveSession,
    seq: u64,
}

impl Rig {
    fn new(seed: u64, needle: bool) -> Self {
        let hints = Arc::new(Mailbox::new());
        let mut demo = DemoSource::new(
            DemoConfig {
                dots_per_second: if needle { 3.0 } else { 0.0 },
                on_plan_fraction: 1.0,
                ..DemoConfig::new(seed)
            },
            hints.clone(),
        );
        demo.free_run();
        Self {
            demo,
            hints,
            session: LiveSession::new(SessionConfig::new(20.0)),
            seq: 0,
        }
    }

    fn step(&mut self) -> OverlayMsg {
        let f = self.demo.next_frame();
        let frame = stipple::Frame {
            meta: stipple::FrameMeta {
                seq: self.seq,
                captured_at: Instant::now(),
                camera_id: 0,
            },
            image: Arc::new(f.image),
        };
        self.seq += 1;
        self.session
            .process(&frame, Some(&f.image_from_scene))
            .expect("frame processes")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_drawn_through_the_api_plan_as_plan_design_does() -> TestResult {
    let mut rig = Rig::new(4, false);
    for _ in 0..3 {
        rig.step();
    }
    // The API maps what the page draws to the skin through the latest frame, as live.
    let state = bare_state();
    *state.plan.lock().map_err(|e| e.to_string())? = Some(rig.session.plan_snapshot());
    let hairline = serde_json::json!({
        "name": "front", "kind": "hairline", "target_density_per_cm2": 120,
        "points_in_image": [[120, 140], [1160, 140], [1160, 640], [120, 640]],
        "front_edge_in_image": [[120, 140], [1160, 140]],
    });
    let (status, body) = oneshot_json(&state, "POST", "/api/zones", hairline).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mole = serde_json::json!({
        "name": "mole", "kind": "nogo",
        "points_in_image": [[560, 380], [720, 380], [720, 540], [560, 540]],
    });
    let (status, body) = oneshot_json(&state, "POST", "/api/zones", mole).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let design = state
        .design
        .lock()
        .map_err(|e| e.to_string())?
        .design
        .clone();
    assert_eq!(design.zones.len(), 2);
    // The processing thread takes the slot's design, as in the pipeline.
    rig.session.set_design(design.clone());
    let request = loop {
        rig.step();
        if let Some(r) = rig.session.plan_request() {
            break r;
        }
        assert!(rig.seq < 60, "no plan after {} frames", rig.seq);
    };
    let live = rig.session.full_plan();
    assert!(live.len() > 50, "too few recommendations: {}", live.len());

    // `stipple plan --design`: the same zones from the saved TOML, the same planner input.
    let from_toml = Design::from_toml(&design.to_toml()?)?;
    assert_eq!(from_toml, design);
    let o = request.origin_mm;
    let input = PlanInput {
        design: Some(from_toml.translated([-o[0], -o[1]])),
        ..request.input.clone()
    };
    assert_eq!(input.design, request.input.design);
    let cli = Planner::new(request.config.clone(), input)?.plan();
    assert_eq!(cli.recommendations.len(), live.len());
    for (c, l) in cli.recommendations.iter().zip(&live) {
        assert!(
            (c.x_mm + o[0] - l.in_skin_mm[0]).abs() < 1e-9
                && (c.y_mm + o[1] - l.in_skin_mm[1]).abs() < 1e-9,
            "live and plan --design differ: {c:?} vs {l:?}"
        );
    }

    // Nothing in the no-go zone; density ramps up behind the hairline's front edge.
    let mole = &design.zones[1].polygon;
    let inside_mole = live
        .iter()
        .filter(|r| stipple::geometry::polygon_contains(mole, r.in_skin_mm[0], r.in_skin_mm[1]))
        .count();
    assert_eq!(inside_mole, 0, "recommendations in the no-go zone");
    let front = &design.zones[0];
    let edge = front.front_edge.as_deref().ok_or("no front edge")?;
    let depth = |p: [f64; 2]| polyline_foot(edge, p[0], p[1]).0;
    let band = |lo: f64, hi: f64| {
        live.iter()
            .filter(|r| {
                let d = depth(r.in_skin_mm);
                (lo..hi).contains(&d)
                    && r.zone == "front"
                    && stipple::geometry::polygon_contains(
                        &front.polygon,
                        r.in_skin_mm[0],
                        r.in_skin_mm[1],
                    )
            })
            .count()
    };
    let (near, deep) = (band(0.0, 3.0), band(9.0, 12.0));
    eprintln!("recommendations 0-3 mm behind the front edge: {near}, 9-12 mm: {deep}");
    assert!(
        (near as f64) < 0.6 * deep as f64,
        "no ramp behind the hairline: {near} near the edge, {deep} deep"
    );
    Ok(())
}

#[test]
fn a_dot_placed_too_close_is_flagged_on_the_first_frame_that_shows_it() {
    let mut rig = Rig::new(6, true);
    // A wide spacing, so that a dot 1 mm from another is too close yet a separate blob.
    rig.session.set_design(Design {
        min_spacing_mm: Some(1.5),
        target_density_per_cm2: Some(40.0),
        ..Design::default()
    });
    let mut overlays = Vec::new();
    let mut placed = Vec::new();
    for _ in 0..420 {
        let overlay = rig.step();
        // The needle aims 1 mm beside an existing dot (20 px at 20 px/mm).
        let aim = overlay
            .dots
            .iter()
            .filter(|d| d[0] > 200.0 && d[0] < 1080.0 && d[1] > 150.0 && d[1] < 570.0)
            .nth(overlay.seq as usize % 7)
            .map(|d| vec![[f64::from(d[0]) + 20.0, f64::from(d[1])]])
            .unwrap_or_default();
        rig.hints.put(NeedleHint {
            seq: overlay.seq,
            targets_in_image: aim,
        });
        placed.extend(rig.session.take_placed());
        overlays.push(overlay);
    }
    let too_close: Vec<_> = placed.iter().filter(|p| p.too_close()).collect();
    assert!(
        !too_close.is_empty(),
        "no too-close placement among {} placed",
        placed.len()
    );
    for p in &too_close {
        let o = &overlays[p.seq as usize];
        assert_eq!(o.seq, p.seq);
        let flagged = o.blowouts.iter().find(|b| b.new && b.seq == p.seq);
        let b = flagged.unwrap_or_else(|| panic!("frame {} does not flag {p:?}", p.seq));
        assert!(b.nearest_mm < b.min_spacing_mm, "{b:?}");
        // The frame before does not show it yet.
        assert!(overlays[p.seq as usize - 1]
            .blowouts
            .iter()
            .all(|b| b.seq != p.seq));
    }
    let counted = rig.session.counters().spacing_violations;
    assert_eq!(counted, too_close.len() as u64);
    assert_eq!(overlays.last().map(|o| o.spacing_violations), Some(counted));
    eprintln!("{} placed, {} too close", placed.len(), too_close.len());
}

/// Waits until `path` answers 200 (the first plan is out).
async fn wait_ok(addr: std::net::SocketAddr, path: &str) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_json(addr, path).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("{path} never answered").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_artists_controls_through_the_api() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut config = small_config();
    config.design_dir = dir.path().join("designs");
    let server = Server::start(config).await?;
    let addr = server.addr;
    wait_ok(addr, "/api/plan").await?;

    // Zones: add, rename and retarget one, refuse a bad edit, delete one at a time.
    let zone = |name: &str| {
        serde_json::json!({"name": name, "points_in_image": [[100, 80], [540, 80], [540, 300], [100, 300]],
            "target_density_per_cm2": 100})
    };
    let (s, d) = request(addr, "POST", "/api/zones", Some(zone("crown"))).await?;
    assert_eq!(s, 200, "{d}");
    let (s, d) = request(addr, "POST", "/api/zones", Some(zone("crown"))).await?;
    assert_eq!(s, 422);
    assert!(
        d["error"]
            .as_str()
            .unwrap_or("")
            .contains("two zones have this name"),
        "{d}"
    );
    let (s, _) = request(addr, "POST", "/api/zones", Some(zone("temple"))).await?;
    assert_eq!(s, 200);
    let (s, d) = request(
        addr,
        "PATCH",
        "/api/zones/crown",
        Some(serde_json::json!({"name": "vertex", "target_density_per_cm2": 90})),
    )
    .await?;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["zones"][0]["name"], "vertex");
    assert_eq!(d["zones"][0]["target_density_per_cm2"], 90.0);
    let (s, d) = request(
        addr,
        "PATCH",
        "/api/zones/vertex",
        Some(serde_json::json!({"kind": "hairline"})),
    )
    .await?;
    assert_eq!(s, 422);
    assert!(
        d["error"]
            .as_str()
            .unwrap_or("")
            .contains("needs a front_edge"),
        "{d}"
    );
    let (s, d) = request(addr, "DELETE", "/api/zones/crown", None).await?;
    assert_eq!(s, 404);
    assert!(
        d["error"]
            .as_str()
            .unwrap_or("")
            .contains("no zone named \"crown\""),
        "{d}"
    );
    let (s, d) = request(addr, "DELETE", "/api/zones/vertex", None).await?;
    assert_eq!(s, 200);
    assert_eq!(d["zones"].as_array().map(Vec::len), Some(1));
    assert_eq!(d["zones"][0]["name"], "temple");

    // Save, and a name that would leave the folder.
    let (s, d) = request(
        addr,
        "POST",
        "/api/design/save",
        Some(serde_json::json!({"name": "../x.toml"})),
    )
    .await?;
    assert_eq!(s, 422);
    assert!(
        d["error"].as_str().unwrap_or("").contains("bad file name"),
        "{d}"
    );
    let (s, d) = request(
        addr,
        "POST",
        "/api/design/save",
        Some(serde_json::json!({"name": "client.toml"})),
    )
    .await?;
    assert_eq!(s, 200, "{d}");
    let saved = dir.path().join("designs/client.toml");
    assert!(saved.is_file());
    let live_design = get_json(addr, "/api/design").await?;

    // Not a dot: a point with no dot near it is refused; a detected dot is flagged.
    let (s, d) = request(
        addr,
        "POST",
        "/api/not-a-dot",
        Some(serde_json::json!({"point_in_image": [-900.0, -900.0]})),
    )
    .await?;
    assert_eq!(s, 409);
    assert!(
        d["error"]
            .as_str()
            .unwrap_or("")
            .contains("no detected dot within"),
        "{d}"
    );
    let (s, d) = request(
        addr,
        "POST",
        "/api/not-a-dot",
        Some(serde_json::json!({"x": 1})),
    )
    .await?;
    assert_eq!(s, 422);
    assert!(
        d["error"].as_str().unwrap_or("").contains("point_in_image"),
        "{d}"
    );
    let dot = first_dot(addr).await?;
    let (s, d) = request(
        addr,
        "POST",
        "/api/not-a-dot",
        Some(serde_json::json!({ "point_in_image": dot })),
    )
    .await?;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["kind"], "not_a_dot");
    wait_status(addr, "not_a_dot", 1).await?;

    // Undo: once the needle has placed a dot.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let st = get_json(addr, "/api/status").await?;
        if st["dots_placed"].as_u64() > Some(0) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("no dot placed: {st}").into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (s, d) = request(addr, "POST", "/api/undo", None).await?;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["kind"], "undo");
    assert!(d["in_skin_mm"].is_array());
    wait_status(addr, "dots_undone", 1).await?;

    // Pause: the plan and the picture hold still; resume lets them go.
    let (s, d) = request(
        addr,
        "POST",
        "/api/pause",
        Some(serde_json::json!({"paused": true})),
    )
    .await?;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["kind"], "pause");
    wait_status(addr, "paused", true).await?;
    let plan_a = get_json(addr, "/api/plan").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let plan_b = get_json(addr, "/api/plan").await?;
    assert_eq!(plan_a["recommendations"], plan_b["recommendations"]);
    assert!(
        plan_b["seq"].as_u64() > plan_a["seq"].as_u64(),
        "processing goes on"
    );
    assert_eq!(plan_b["paused"], true);
    let (s, d) = request(
        addr,
        "POST",
        "/api/pause",
        Some(serde_json::json!({"paused": false})),
    )
    .await?;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["kind"], "resume");
    server.stop().await?;

    // `serve --design FILE` starts from what the page saved.
    let mut config = small_config();
    config.design = Some(
        Design::load(&saved)?
            .in_mm(config.px_per_mm)
            .with_defaults(),
    );
    let server = Server::start(config).await?;
    let restarted = get_json(server.addr, "/api/design").await?;
    assert_eq!(restarted, live_design);
    server.stop().await
}

/// Waits until `/api/status` shows `key` = `value` (counters follow the next frame).
async fn wait_status(
    addr: std::net::SocketAddr,
    key: &str,
    value: impl Into<serde_json::Value>,
) -> TestResult {
    let value = value.into();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = get_json(addr, "/api/status").await?;
        if st[key] == value {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("status {key} is {} not {value}", st[key]).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An existing dot of a recent frame, in its pixels (from the WebSocket's overlay).
async fn first_dot(
    addr: std::net::SocketAddr,
) -> Result<[f64; 2], Box<dyn std::error::Error + Send + Sync>> {
    use futures_util::StreamExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some(msg) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await? else {
            break;
        };
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg? {
            let o: OverlayMsg = serde_json::from_str(&t)?;
            let (w, h) = (f64::from(o.width), f64::from(o.height));
            if let Some(d) = o.dots.iter().find(|d| {
                let (x, y) = (f64::from(d[0]), f64::from(d[1]));
                x > 0.3 * w && x < 0.7 * w && y > 0.3 * h && y < 0.7 * h
            }) {
                return Ok([f64::from(d[0]), f64::from(d[1])]);
            }
        }
    }
    Err("no dot in view".into())
}

/// Layout, cue and labels as the page reports and draws them.
const GLANCE_PROBE: &str = r#"(() => {
  const doc = document.documentElement, header = document.querySelector('header');
  const c = document.getElementById('view'), cr = c.getBoundingClientRect();
  const next = document.getElementById('a-next').getBoundingClientRect();
  const s = window.stippleStats;
  let ringGreen = 0;
  if (s.cue) {
    const g = c.getContext('2d');
    const r = s.cue.diameterCss / 2 * c.width / cr.width;
    for (let i = 0; i < 16; i++) {
      const a = i * Math.PI / 8;
      const p = g.getImageData(Math.round(s.cue.x + r * Math.cos(a)) - 1, Math.round(s.cue.y + r * Math.sin(a)) - 1, 3, 3).data;
      let hit = false;
      for (let k = 0; k < p.length; k += 4) if (p[k] < 160 && p[k + 1] > 200 && p[k + 2] < 80) hit = true;
      if (hit) ringGreen++;
    }
  }
  return {
    innerWidth, innerHeight,
    pageScrolls: doc.scrollWidth > innerWidth || doc.scrollHeight > innerHeight,
    headerClipped: header.scrollWidth > header.clientWidth + 1,
    headerHeight: header.getBoundingClientRect().height,
    canvas: [cr.left, cr.top, cr.right, cr.bottom],
    nextButton: [next.left, next.top, next.right, next.bottom],
    ringGreen, stats: s,
  };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_glance_view_reads_at_three_sizes_and_flags_a_blowout() -> TestResult {
    use crate::serve::{Browser, CHROMIUM};
    if !std::path::Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED: {CHROMIUM} is absent (apt-get install -y chromium); .ci/run installs it"
        );
        return Ok(());
    }
    // With STIPPLE_SCREENSHOTS=DIR (docs/), the full 1280x720 service is shot into DIR.
    let shots = std::env::var_os("STIPPLE_SCREENSHOTS").map(std::path::PathBuf::from);
    let config = if shots.is_some() {
        ServeConfig::new()
    } else {
        small_config()
    };
    let server = Server::start(config).await?;
    let addr = server.addr;
    let mut design = get_json(addr, "/api/design").await?;
    design["target_density_per_cm2"] = 120.0.into();
    let (s, d) = request(addr, "PUT", "/api/design", Some(design)).await?;
    assert_eq!(s, 200, "{d}");
    let mut browser = Browser::open(addr).await?;
    let result = async {
        for (w, h) in [(1280u32, 800u32), (1024, 768), (768, 1024)] {
            let cdp = &mut browser.cdp;
            cdp.call(
                "Emulation.setDeviceMetricsOverride",
                serde_json::json!({"width": w, "height": h, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await?;
            let deadline = Instant::now() + Duration::from_secs(30);
            let before = cdp.eval("window.stippleStats.overlaysDrawn").await?.as_u64().unwrap_or(0);
            let p = loop {
                tokio::time::sleep(Duration::from_millis(400)).await;
                let p = cdp.eval(GLANCE_PROBE).await?;
                let drawn = p["stats"]["overlaysDrawn"].as_u64().unwrap_or(0);
                if drawn > before + 3 && !p["stats"]["cue"].is_null() {
                    break p;
                }
                if Instant::now() > deadline {
                    return Err(format!("{w}x{h}: no next-dot cue drawn: {p}").into());
                }
            };
            eprintln!("{w}x{h}: header {} px, canvas {}, cue {}", p["headerHeight"], p["canvas"], p["stats"]["cue"]);
            assert_eq!(p["innerWidth"], w);
            assert_eq!(p["pageScrolls"], false, "{w}x{h}: the page scrolls: {p}");
            assert_eq!(p["headerClipped"], false, "{w}x{h}: the header overflows: {p}");
            assert!(p["headerHeight"].as_f64() < Some(60.0), "{w}x{h}: the header wraps: {p}");
            let c: Vec<f64> = serde_json::from_value(p["canvas"].clone())?;
            assert!(c[2] <= f64::from(w) + 0.5 && c[3] <= f64::from(h) + 0.5, "{w}x{h}: picture cut: {c:?}");
            assert!(c[2] - c[0] >= 0.6 * f64::from(w.min(1000)), "{w}x{h}: picture too small: {c:?}");
            let b: Vec<f64> = serde_json::from_value(p["nextButton"].clone())?;
            assert!(b[3] <= f64::from(h) && b[2] <= f64::from(w), "{w}x{h}: controls off screen: {b:?}");
            let cue = &p["stats"]["cue"];
            assert!(cue["diameterCss"].as_f64() >= Some(32.0), "{w}x{h}: cue too small: {cue}");
            let planned: Vec<f64> = serde_json::from_value(p["stats"]["cuePlanned"].clone())?;
            assert!(
                (cue["x"].as_f64().unwrap_or(-1.0) - planned[0]).abs() < 0.5
                    && (cue["y"].as_f64().unwrap_or(-1.0) - planned[1]).abs() < 0.5,
                "{w}x{h}: cue {cue} not at the planned {planned:?}"
            );
            assert!(p["ringGreen"].as_u64() >= Some(8), "{w}x{h}: no ring on the canvas at the cue: {p}");
            let labels: Vec<serde_json::Value> = serde_json::from_value(p["stats"]["labels"].clone())?;
            assert!(labels.len() >= 2, "{w}x{h}: too few labels: {labels:?}");
            let rect = |l: &serde_json::Value| -> [f64; 4] {
                ["x", "y", "w", "h"].map(|k| l[k].as_f64().unwrap_or(f64::NAN))
            };
            for (i, a) in labels.iter().enumerate() {
                for b in &labels[i + 1..] {
                    let (a, b) = (rect(a), rect(b));
                    let overlap = a[0] < b[0] + b[2] - 0.5 && b[0] < a[0] + a[2] - 0.5
                        && a[1] < b[1] + b[3] - 0.5 && b[1] < a[1] + a[3] - 0.5;
                    assert!(!overlap, "{w}x{h}: labels overlap: {a:?} {b:?}");
                }
            }
            if let Some(dir) = &shots {
                browser.screenshot(&dir.join(format!("page-{w}x{h}.png"))).await?;
            }
        }
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    if let Err(e) = result {
        browser.close().await;
        return Err(e);
    }

    // The blowout guard, end to end: with a 5 mm spacing every new dot is too close. The first
    // overlay showing one carries it (by sequence number), and the page shows it.
    let watch = tokio::spawn(first_blowout(addr));
    let (s, d) = request(
        addr,
        "PUT",
        "/api/design",
        Some(serde_json::json!({"target_density_per_cm2": 4, "min_spacing_mm": 5})),
    )
    .await?;
    assert_eq!(s, 200, "{d}");
    let result = async {
        let seq = watch.await??;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = browser
                .cdp
                .eval("window.stippleStats.blowoutSeqs.map(b => b.seq)")
                .await?;
            if seen
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s.as_u64() == Some(seq)))
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(
                    format!("the page never showed the blowout of frame {seq}: {seen}").into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let st = get_json(addr, "/api/status").await?;
        assert!(st["spacing_violations"].as_u64() >= Some(1), "{st}");
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    browser.close().await;
    result?;
    server.stop().await
}

/// Watches the WebSocket until an overlay flags a too-close dot; checks that it is the first
/// overlay to mention it and that it is marked new there; returns its sequence number.
async fn first_blowout(
    addr: std::net::SocketAddr,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    use futures_util::StreamExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = std::collections::HashSet::new();
    let mut last: Option<u64> = None;
    while Instant::now() < deadline {
        let Some(msg) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await? else {
            break;
        };
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg? {
            let o: OverlayMsg = serde_json::from_str(&t)?;
            // Only judge a dot whose first frame this client cannot have missed.
            let contiguous = last.is_some_and(|l| l + 1 == o.seq);
            last = Some(o.seq);
            for b in &o.blowouts {
                if seen.insert(b.seq) && (contiguous || b.seq == o.seq) {
                    assert_eq!(
                        b.seq, o.seq,
                        "first seen on frame {} but flagged for {}",
                        o.seq, b.seq
                    );
                    assert!(b.new && b.nearest_mm < b.min_spacing_mm, "{b:?}");
                    return Ok(o.seq);
                }
            }
        }
    }
    Err("no dot was placed too close within a minute".into())
}
