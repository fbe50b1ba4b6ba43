//! Who may talk to the service: the page it serves, and tools on the artist's own machine.
//!
//! The service streams a client's scalp and accepts changes to the treatment, so every request
//! passes [`guard`] before any handler runs:
//!
//! - **`Host`** must name the bound address (or `localhost` on loopback, or a name given with
//!   `--allow-host`): a DNS-rebinding page reaches the service under its own name and is refused
//!   (403). A request without `Host` is not from a browser and passes.
//! - **`Origin`**, where present, must be the service itself on every state-changing request and
//!   on the WebSocket upgrade (403): another site's page can neither steer the session nor
//!   stream the picture. Browsers send `Origin` on both; tools (curl) send none and pass.
//! - **Content type**: state-changing requests must say `application/json` (415), so a
//!   cross-site form (`text/plain`, no preflight) cannot post them even where `Origin` is absent.
//! - **Token**: bound beyond loopback, every request must carry the access token (401) as the
//!   `stipple_token` cookie (set when the page is opened with `/?token=…`), an
//!   `Authorization: Bearer …` header or a `token` query parameter. On loopback none is needed.
//!
//! The response headers ([`SECURITY_HEADERS`]) forbid framing (clickjacking) and any script or
//! connection that is not the service's own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The cookie that carries the access token once the page has been opened with it.
pub const TOKEN_COOKIE: &str = "stipple_token";

/// Response headers on every answer: only the service's own scripts, styles, images and
/// connections; never framed (CSP `frame-ancestors` and the older `X-Frame-Options`); no MIME
/// sniffing; no referrer (the page URL may carry the token).
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
];

/// Who the service answers: the host names it answers to, and the token it requires, if any.
#[derive(Debug, Clone)]
pub struct Access {
    /// Host names (lower case, no port) accepted in the `Host` header.
    hosts: Vec<String>,
    /// Bound to an unspecified address (`0.0.0.0`, `::`): any IP literal is one of ours (a
    /// DNS-rebinding page always uses a name, never an address).
    any_ip: bool,
    /// The access token every request must carry, if one is required.
    token: Option<String>,
}

impl Access {
    /// The loopback defaults: `localhost`, `127.0.0.1` and `[::1]`, no token.
    pub fn loopback() -> Self {
        Self::new(SocketAddr::from(([127, 0, 0, 1], 0)), &[], None)
    }

    /// The access for a service bound to `bind`: its address (and `localhost` when that is
    /// loopback or unspecified), the `--allow-host` names, and `token` if given.
    pub fn new(bind: SocketAddr, allow_hosts: &[String], token: Option<String>) -> Self {
        let ip = bind.ip();
        let mut hosts: Vec<String> = allow_hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        hosts.push(host_of_ip(ip));
        if ip.is_loopback() || ip.is_unspecified() {
            hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
        }
        Self {
            hosts,
            any_ip: ip.is_unspecified(),
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// Whether requests must carry a token.
    pub fn requires_token(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `host` (a `Host` header value, port included) names this service.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = strip_port(host).to_ascii_lowercase();
        if self.hosts.contains(&name) {
            return true;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        self.any_ip && bare.parse::<IpAddr>().is_ok()
    }

    fn token_ok(&self, presented: Option<&str>) -> bool {
        match (&self.token, presented) {
            (None, _) => true,
            (Some(want), Some(got)) => constant_time_eq(want.as_bytes(), got.as_bytes()),
            (Some(_), None) => false,
        }
    }
}

fn host_of_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `host[:port]` → `host`, keeping IPv6 brackets.
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Compares without an early exit, so the time taken does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request changes state (anything but `GET`, `HEAD`, `OPTIONS`).
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request asks for a WebSocket upgrade.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether `origin` (an `Origin` header value) is the service at `host` (a `Host` value).
pub(super) fn same_origin(origin: &str, host: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|r| r.eq_ignore_ascii_case(host))
}

/// The token the request presents: `Authorization: Bearer`, the cookie, or `?token=`.
fn presented_token(req: &Request) -> Option<(String, bool)> {
    let headers = req.headers();
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((t.trim().to_string(), false));
    }
    for cookies in headers.get_all(header::COOKIE) {
        let Ok(cookies) = cookies.to_str() else {
            continue;
        };
        for c in cookies.split(';') {
            if let Some((k, v)) = c.trim().split_once('=') {
                if k == TOKEN_COOKIE {
                    return Some((v.to_string(), false));
                }
            }
        }
    }
    req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(|t| (t.to_string(), true))
    })
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// The middleware: checks `Host`, `Origin`, content type and token, in that order, before
/// any handler runs. Every refusal is logged at `warn` with what was refused.
pub async fn guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(h) = headers.get(header::HOST) {
        if !host.is_some_and(|h| access.host_allowed(h)) {
            tracing::warn!(host = ?h, path = %req.uri().path(), "refused: Host is not this service");
            return refuse(
                StatusCode::FORBIDDEN,
                "Host is not this service (start it with --allow-host NAME to answer to a name)",
            );
        }
    }
    let changes = changes_state(req.method());
    if changes || is_upgrade(headers) {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = match (origin.to_str(), host) {
                (Ok(o), Some(h)) => same_origin(o, h),
                _ => false,
            };
            if !ok {
                tracing::warn!(?origin, path = %req.uri().path(), "refused: cross-origin request");
                return refuse(StatusCode::FORBIDDEN, "cross-origin request refused");
            }
        }
    }
    if changes && !is_json(headers) {
        tracing::warn!(path = %req.uri().path(), "refused: state change without application/json");
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "state-changing requests must be Content-Type: application/json",
        );
    }
    let presented = presented_token(&req);
    if access.requires_token() {
        if !access.token_ok(presented.as_ref().map(|(t, _)| t.as_str())) {
            tracing::warn!(path = %req.uri().path(), "refused: no valid access token");
            return refuse(
                StatusCode::UNAUTHORIZED,
                "access token required: open the address `stipple serve` printed at start",
            );
        }
        let from_query = presented.as_ref().is_some_and(|(_, q)| *q);
        let mut response = next.run(req).await;
        if from_query {
            // The page keeps the token as a same-site cookie, so its own requests (fetch and
            // WebSocket) carry it and other sites' requests do not.
            if let Some((t, _)) = presented {
                let cookie = format!("{TOKEN_COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict");
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, v);
                }
            }
        }
        return response;
    }
    next.run(req).await
}

/// `Content-Type: application/json` (parameters such as `charset` allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_follow_the_bound_address() {
        let lo = Access::loopback();
        assert!(lo.host_allowed("127.0.0.1:8080"));
        assert!(lo.host_allowed("LOCALHOST:8080"));
        assert!(lo.host_allowed("[::1]:8080"));
        assert!(!lo.host_allowed("attacker.example"));
        assert!(!lo.host_allowed("attacker.example:8080"));
        assert!(!lo.host_allowed("192.168.1.5:8080"));

        let lan = Access::new("192.168.1.5:8080".parse().expect("addr"), &[], None);
        assert!(lan.host_allowed("192.168.1.5:8080"));
        assert!(!lan.host_allowed("localhost:8080"));
        assert!(!lan.host_allowed("10.0.0.1:8080"));

        let any = Access::new(
            "0.0.0.0:8080".parse().expect("addr"),
            &["Chair.local".into()],
            Some("t".into()),
        );
        assert!(any.host_allowed("10.0.0.1:8080"));
        assert!(any.host_allowed("chair.local:8080"));
        assert!(!any.host_allowed("rebind.attacker.example"));
        assert!(any.requires_token());
    }

    #[test]
    fn origins_must_match_the_host() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same_origin("https://attacker.example", "127.0.0.1:8080"));
        assert!(!same_origin("null", "127.0.0.1:8080"));
    }

    #[test]
    fn tokens_compare_exactly() {
        let a = Access::new(
            "0.0.0.0:1".parse().expect("addr"),
            &[],
            Some("secret".into()),
        );
        assert!(a.token_ok(Some("secret")));
        assert!(!a.token_ok(Some("secreT")));
        assert!(!a.token_ok(Some("secret2")));
        assert!(!a.token_ok(None));
        assert!(Access::loopback().token_ok(None));
    }
}
