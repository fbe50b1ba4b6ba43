//! Issue 22: the attacks a hostile web page (or a careless tool) can make on `stipple serve`,
//! each against a running service on loopback and each refused (403, 415, 429, 401 or a closed
//! socket), while the page's own requests keep working. See docs/security.md.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use stipple::config::ServeConfig;
use stipple::planning::design::{
    MAX_NAME_CHARS as MAX_ZONE_NAME_BYTES, MAX_POLYGON_POINTS as MAX_POINTS_PER_ZONE, MAX_ZONES,
};
use stipple::server::listen::HEADER_READ_TIMEOUT;
use stipple::server::ws::MAX_CLIENT_MESSAGE_BYTES;
use stipple::server::RESERVED_PAGE_SLOTS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::serve::{Browser, Server, TestResult, CHROMIUM};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn small_config() -> ServeConfig {
    let mut c = ServeConfig::new();
    c.width = 640;
    c.height = 360;
    c
}

/// An answer: status, head (lower-cased) and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `head` (request line and headers, without the blank line) and `body` over a fresh
/// connection, `Connection: close`, and reads the whole answer.
async fn raw(addr: SocketAddr, head: &str, body: &str) -> Result<Answer, AnyError> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head.split_whitespace().nth(1).ok_or("no status")?.parse()?;
    Ok(Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

async fn design(addr: SocketAddr) -> Result<serde_json::Value, AnyError> {
    let a = raw(
        addr,
        &format!("GET /api/design HTTP/1.1\r\nHost: {addr}"),
        "",
    )
    .await?;
    assert_eq!(a.status, 200, "{}", a.body);
    Ok(serde_json::from_str(&a.body)?)
}

/// A WebSocket handshake to `/ws` with extra headers; the handshake's status on refusal.
async fn ws_with(
    addr: SocketAddr,
    headers: &[(&'static str, &str)],
) -> Result<
    Result<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        u16,
    >,
    AnyError,
> {
    let mut req = format!("ws://{addr}/ws").into_client_request()?;
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse()?);
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(Ok(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Ok(Err(res.status().as_u16())),
        Err(e) => Err(e.into()),
    }
}

/// Waits for the next binary (JPEG) message.
async fn next_frame<S>(ws: &mut S) -> TestResult
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await?
            .ok_or("closed")??
        {
            Message::Binary(_) => return Ok(()),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_another_site_cannot_stream_the_picture() -> TestResult {
    let server = Server::start(small_config()).await?;
    let addr = server.addr;
    let origin = format!("http://{addr}");
    for hostile in ["https://attacker.example", "null", "http://127.0.0.1:1"] {
        let got = ws_with(addr, &[("origin", hostile)]).await?;
        assert_eq!(got.err(), Some(403), "Origin {hostile} was let in");
    }
    // DNS rebinding: the attacker's name resolves to us, so Host and Origin agree, but the
    // name is not ours.
    let got = ws_with(
        addr,
        &[
            ("host", "attacker.example"),
            ("origin", "http://attacker.example"),
        ],
    )
    .await?;
    assert_eq!(got.err(), Some(403));
    // The page's own origin, and tools without one, still stream.
    let mut page = ws_with(addr, &[("origin", &origin)])
        .await?
        .map_err(|s| s.to_string())?;
    next_frame(&mut page).await?;
    let mut tool = ws_with(addr, &[]).await?.map_err(|s| s.to_string())?;
    next_frame(&mut tool).await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_dns_rebinding_and_cross_site_writes_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut config = small_config();
    config.calibration_dir = dir.path().to_path_buf();
    let server = Server::start(config).await?;
    let addr = server.addr;
    let before = design(addr).await?;
    let mut changed = before.clone();
    changed["target_density_per_cm2"] = 150.0.into();
    let body = changed.to_string();

    // DNS rebinding: the whole API under the attacker's name.
    for (method, path) in [("PUT", "/api/design"), ("GET", "/api/design"), ("GET", "/")] {
        let a = raw(
            addr,
            &format!("{method} {path} HTTP/1.1\r\nHost: attacker.example:{}\r\nContent-Type: application/json", addr.port()),
            &body,
        )
        .await?;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
    }
    // A cross-site fetch or form: refused by Origin whatever its content type.
    for ct in ["application/json", "text/plain"] {
        let a = raw(
            addr,
            &format!("PUT /api/design HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://attacker.example\r\nContent-Type: {ct}"),
            &body,
        )
        .await?;
        assert_eq!(a.status, 403, "{ct}: {}", a.body);
    }
    // Without Origin (an old browser's form post, or a tool) a write that is not JSON is
    // refused: a text/plain form cannot reach a handler without a preflight.
    for path in [
        "/api/calibration/start",
        "/api/calibration/save",
        "/api/calibration/stop",
        "/api/zones",
        "/api/hairline",
    ] {
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let ct_line = ct.map_or(String::new(), |c| format!("\r\nContent-Type: {c}"));
            let a = raw(
                addr,
                &format!("POST {path} HTTP/1.1\r\nHost: {addr}{ct_line}"),
                r#"{"board": "9x6", "square_mm": 3.0, "name": "evil.toml"}"#,
            )
            .await?;
            assert_eq!(a.status, 415, "POST {path} {ct:?}: {}", a.body);
        }
    }
    let a = raw(
        addr,
        &format!("DELETE /api/zones HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain"),
        "",
    )
    .await?;
    assert_eq!(a.status, 415);
    assert_eq!(
        design(addr).await?,
        before,
        "a refused request changed the design"
    );
    assert_eq!(
        std::fs::read_dir(dir.path())?.count(),
        0,
        "a refused request wrote a calibration file"
    );

    // The page's own write (same origin, JSON) goes through.
    let a = raw(
        addr,
        &format!("PUT /api/design HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nContent-Type: application/json"),
        &body,
    )
    .await?;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(design(addr).await?["target_density_per_cm2"], 150.0);
    // A tool on loopback reads the status without Origin or token.
    let a = raw(
        addr,
        &format!("GET /api/status HTTP/1.1\r\nHost: {addr}"),
        "",
    )
    .await?;
    assert_eq!(a.status, 200);
    let a = raw(addr, "GET /api/status HTTP/1.1\r\nHost: localhost", "").await?;
    assert_eq!(a.status, 200);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_the_page_cannot_be_framed() -> TestResult {
    let server = Server::start(small_config()).await?;
    let a = raw(
        server.addr,
        &format!("GET / HTTP/1.1\r\nHost: {}", server.addr),
        "",
    )
    .await?;
    assert_eq!(a.status, 200);
    assert!(a.head.contains("x-frame-options: deny"), "{}", a.head);
    assert!(a.head.contains("frame-ancestors 'none'"), "{}", a.head);
    assert!(
        a.head
            .contains("content-security-policy: default-src 'self'"),
        "{}",
        a.head
    );
    assert!(
        a.head.contains("x-content-type-options: nosniff"),
        "{}",
        a.head
    );
    // Refusals carry them too.
    let a = raw(server.addr, "GET / HTTP/1.1\r\nHost: attacker.example", "").await?;
    assert_eq!(a.status, 403);
    assert!(a.head.contains("x-frame-options: deny"), "{}", a.head);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_idle_and_half_sent_connections_are_closed() -> TestResult {
    let server = Server::start(small_config()).await?;
    let addr = server.addr;
    let mut idle = tokio::net::TcpStream::connect(addr).await?;
    let mut half = tokio::net::TcpStream::connect(addr).await?;
    half.write_all(format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .await?;
    // A kept-alive connection that answered once and then sits idle.
    let mut kept = tokio::net::TcpStream::connect(addr).await?;
    kept.write_all(format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let started = Instant::now();
    let limit = HEADER_READ_TIMEOUT + Duration::from_secs(5);
    for (name, s) in [
        ("idle", &mut idle),
        ("half-sent", &mut half),
        ("kept-alive", &mut kept),
    ] {
        let mut buf = vec![0u8; 65536];
        loop {
            let left = limit.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => continue, // the kept-alive answer, or a 408
                Err(_) => {
                    return Err(format!("{name} connection still open after {limit:?}").into())
                }
            }
        }
    }
    assert!(started.elapsed() >= HEADER_READ_TIMEOUT - Duration::from_secs(1));
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_viewer_slots_keep_room_for_the_page() -> TestResult {
    let mut config = small_config();
    config.max_clients = RESERVED_PAGE_SLOTS + 3;
    let server = Server::start(config).await?;
    let addr = server.addr;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(ws_with(addr, &[]).await?.map_err(|s| s.to_string())?);
    }
    // Every slot open to anyone is taken: the next one is refused with 429...
    assert_eq!(ws_with(addr, &[]).await?.err(), Some(429));
    // ...a hostile page gets nothing at all...
    assert_eq!(
        ws_with(addr, &[("origin", "https://attacker.example")])
            .await?
            .err(),
        Some(403)
    );
    // ...and the artist's page still gets in, and gets frames.
    let origin = format!("http://{addr}");
    let mut page = ws_with(addr, &[("origin", &origin)])
        .await?
        .map_err(|s| s.to_string())?;
    next_frame(&mut page).await?;
    drop(held);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_a_huge_client_message_closes_the_socket() -> TestResult {
    let server = Server::start(small_config()).await?;
    let mut ws = ws_with(server.addr, &[])
        .await?
        .map_err(|s| s.to_string())?;
    ws.send(Message::Binary(
        vec![0u8; 16 * MAX_CLIENT_MESSAGE_BYTES].into(),
    ))
    .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline.into(), ws.next()).await {
            Err(_) => return Err("socket still open after an oversized message".into()),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(_))) => continue,
        }
    }
    // Small control messages are fine.
    let mut ws = ws_with(server.addr, &[])
        .await?
        .map_err(|s| s.to_string())?;
    ws.send(Message::Text("{\"hello\":1}".into())).await?;
    next_frame(&mut ws).await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_design_values_copied_into_every_frame_are_capped() -> TestResult {
    let server = Server::start(small_config()).await?;
    let addr = server.addr;
    let base = design(addr).await?;
    let square = |n: usize| -> serde_json::Value {
        (0..n)
            .map(|i| {
                let t = i as f64 / n as f64 * std::f64::consts::TAU;
                serde_json::json!([10.0 * t.cos(), 10.0 * t.sin()])
            })
            .collect()
    };
    let put = |d: serde_json::Value| async move {
        raw(
            addr,
            &format!("PUT /api/design HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json"),
            &d.to_string(),
        )
        .await
    };
    let cases = [
        (
            "name has at most",
            serde_json::json!([{ "name": "x".repeat(1_900_000), "kind": "fill", "polygon": square(3) }]),
        ),
        // 100k points in ~0.6 MB, under the 2 MB body limit.
        (
            "points",
            serde_json::json!([{ "name": "z", "kind": "fill", "polygon": (0..100_000).map(|i| serde_json::json!([i % 10, 1])).collect::<serde_json::Value>() }]),
        ),
        (
            "points",
            serde_json::json!([{ "name": "z", "kind": "fill", "polygon": square(MAX_POINTS_PER_ZONE + 1) }]),
        ),
        (
            "zones",
            serde_json::Value::Array(
                (0..=MAX_ZONES)
                    .map(|_| serde_json::json!({ "name": "z", "kind": "fill", "polygon": square(3) }))
                    .collect(),
            ),
        ),
        (
            "name has at most",
            serde_json::json!([{ "name": "x".repeat(MAX_ZONE_NAME_BYTES + 1), "kind": "fill", "polygon": square(3) }]),
        ),
    ];
    for (what, zones) in cases {
        let mut d = base.clone();
        d["zones"] = zones;
        let a = put(d).await?;
        assert_eq!(
            a.status,
            422,
            "{what}: {}",
            &a.body[..a.body.len().min(200)]
        );
        assert!(a.body.contains(what), "{what}: {}", a.body);
    }
    // At the caps it is accepted.
    let mut d = base.clone();
    d["zones"] = serde_json::json!([{ "name": "x".repeat(MAX_ZONE_NAME_BYTES), "kind": "fill", "polygon": square(MAX_POINTS_PER_ZONE) }]);
    let a = put(d).await?;
    assert_eq!(a.status, 200, "{}", a.body);
    server.stop().await
}

/// A service that requires a token (as beyond loopback; here given on loopback, which
/// `--token-file` also does).
async fn start_with_token(token: &str) -> Result<Server, AnyError> {
    let mut config = small_config();
    config.token = Some(token.into());
    Server::start_with(config, Some(token)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_a_token_is_required_when_one_is_set() -> TestResult {
    let token = "0123456789abcdef0123456789abcdef";
    let server = start_with_token(token).await?;
    let addr = server.addr;
    for path in ["/", "/api/status", "/api/design", "/app.js"] {
        let a = raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}"), "").await?;
        assert_eq!(a.status, 401, "{path}");
        let a = raw(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: stipple_token=wrong"),
            "",
        )
        .await?;
        assert_eq!(a.status, 401, "{path} with a wrong token");
    }
    assert_eq!(ws_with(addr, &[]).await?.err(), Some(401));
    // Opening the printed address sets the cookie the page then uses for everything.
    let a = raw(
        addr,
        &format!("GET /?token={token} HTTP/1.1\r\nHost: {addr}"),
        "",
    )
    .await?;
    assert_eq!(a.status, 200);
    assert!(
        a.head.contains(&format!(
            "set-cookie: stipple_token={token}; path=/; httponly; samesite=strict"
        )),
        "{}",
        a.head
    );
    let cookie = format!("stipple_token={token}");
    let a = raw(
        addr,
        &format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}"),
        "",
    )
    .await?;
    assert_eq!(a.status, 200);
    let a = raw(
        addr,
        &format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}"),
        "",
    )
    .await?;
    assert_eq!(a.status, 200);
    let mut ws = ws_with(addr, &[("cookie", &cookie)])
        .await?
        .map_err(|s| s.to_string())?;
    next_frame(&mut ws).await?;
    server.stop().await
}

/// The page itself, in headless Chromium, behind every new layer and with a token: it draws
/// frames and overlays, changes the design and drives calibration mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_the_page_still_works_end_to_end() -> TestResult {
    if !std::path::Path::new(CHROMIUM).exists() {
        eprintln!("SKIPPED: {CHROMIUM} is absent (apt-get install -y chromium)");
        return Ok(());
    }
    let token = "fedcba9876543210fedcba9876543210";
    let server = start_with_token(token).await?;
    let addr = server.addr;
    let mut browser = Browser::open_at(addr, &format!("/?token={token}")).await?;
    let result = async {
        let cdp = &mut browser.cdp;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = cdp.eval("JSON.stringify(window.stippleStats || {})").await?;
            let s: serde_json::Value = serde_json::from_str(s.as_str().unwrap_or("{}"))?;
            if s["overlaysDrawn"].as_u64() > Some(3) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the page did not draw: {s}").into());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // The page's own requests: read, change the design, start and stop calibration mode.
        let script = r#"(async () => {
          const json = { "content-type": "application/json" };
          const d = await (await fetch("/api/design")).json();
          d.target_density_per_cm2 = 77;
          const put = await fetch("/api/design", { method: "PUT", headers: json, body: JSON.stringify(d) });
          const back = await (await fetch("/api/design")).json();
          const start = await fetch("/api/calibration/start", { method: "POST", headers: json, body: JSON.stringify({ board: "9x6", square_mm: 3.0 }) });
          const stop = await fetch("/api/calibration/stop", { method: "POST", headers: json });
          return JSON.stringify({ put: put.status, target: back.target_density_per_cm2, start: start.status, stop: stop.status });
        })()"#;
        let r = cdp.eval(script).await?;
        let r: serde_json::Value = serde_json::from_str(r.as_str().ok_or("no answer")?)?;
        assert_eq!(r["put"], 200, "{r}");
        assert_eq!(r["target"], 77.0, "{r}");
        assert_eq!(r["start"], 200, "{r}");
        assert_eq!(r["stop"], 200, "{r}");
        Ok::<(), AnyError>(())
    }
    .await;
    browser.close().await;
    result?;
    server.stop().await
}
