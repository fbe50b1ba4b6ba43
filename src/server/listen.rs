//! The accept loop: `axum::serve` as in axum's `serve-with-hyper` example, plus what
//! `axum::serve` does not expose: a header-read timeout, which in hyper also bounds how long a
//! kept-alive connection may sit idle between requests. Without it a client that opens
//! connections and sends nothing holds them for ever.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt as _;

/// A client must send a request's headers within this long of connecting or of its previous
/// response; otherwise the connection is closed (hyper's `header_read_timeout`).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted, bytes (hyper's default is ~400 KB).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long shutdown waits for open HTTP requests before it gives up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `signal` resolves, then lets open requests finish (up to
/// `SHUTDOWN_GRACE`). `tune` is applied to each accepted socket (buffer sizes, `nodelay`).
///
/// # Errors
/// None so far: accept errors (too many open files) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tune: impl Fn(&TcpStream) + Send + 'static,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    let mut signal = std::pin::pin!(signal);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut signal => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(err) => {
                    tracing::warn!(cause = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tune(&tcp);
        spawn_connection(tcp, peer, app.clone(), stop_rx.clone(), close_rx.clone());
    }
    drop(listener);
    drop(stop_tx);
    drop(close_rx);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, close_tx.closed()).await;
    Ok(())
}

fn spawn_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    mut stop: watch::Receiver<()>,
    close: watch::Receiver<()>,
) {
    let service = app.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.map(axum::body::Body::new)
    });
    let service = TowerToHyperService::new(service);
    tokio::spawn(async move {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES.max(8192));
        let conn = builder
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let ended = tokio::select! {
            r = conn.as_mut() => r,
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        if let Err(err) = ended {
            tracing::trace!(cause = %err, %peer, "connection ended");
        }
        drop(close);
    });
}
