//! The frame WebSocket: per published frame, the overlay JSON (text) then the JPEG (binary).
//!
//! Every client subscribes to the pipeline's `broadcast` channel (axum `examples/chat`). A slow
//! client only slows its own send task: when it falls more than the channel's capacity behind,
//! `recv` reports `Lagged` and it skips ahead to the newest frame, so neither the pipeline nor
//! the other clients ever wait for it. Each socket runs a send task and a receive task; when
//! one ends, the other is aborted.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast;

use super::{AppState, Packet};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Largest message (and frame) a client may send. The page sends only small control messages
/// (none today); without this, tungstenite buffers up to 64 MiB of an unfinished message.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4 * 1024;
/// A client that has not taken a frame for this long (it stopped reading: its socket buffer
/// stays full) is disconnected, so that it does not hold a viewer slot for ever.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) async fn handler(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Response {
    // The guard has already refused any `Origin` that is not this service; one that is present
    // is therefore the page itself, which may use the reserved slots when the rest are taken.
    let from_page = headers.contains_key(header::ORIGIN);
    let permit = match state.clients.clone().try_acquire_owned() {
        Ok(p) => Some(p),
        Err(_) if from_page => state.page_clients.clone().try_acquire_owned().ok(),
        Err(_) => None,
    };
    let Some(permit) = permit else {
        tracing::warn!(from_page, "viewer refused: no slot left");
        return (StatusCode::TOO_MANY_REQUESTS, "too many viewers").into_response();
    };
    ws.max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            serve_socket(socket, state).await;
        })
}

async fn serve_socket(socket: WebSocket, state: AppState) {
    state.metrics.ws_client_delta(1);
    tracing::debug!("viewer connected");
    let (sink, stream) = socket.split();
    let rx = state.frames.subscribe();
    let mut send = tokio::spawn(send_frames(
        sink,
        rx,
        state.metrics.clone(),
        state.shutdown.clone(),
    ));
    let mut recv = tokio::spawn(drain(stream));
    tokio::select! {
        _ = &mut send => recv.abort(),
        _ = &mut recv => send.abort(),
    }
    state.metrics.ws_client_delta(-1);
    tracing::debug!("viewer left");
}

/// Forwards published frames to one client until it goes away, the pipeline stops or the
/// service shuts down. Written against any `Sink` so it can be unit-tested without a socket.
pub async fn send_frames<S>(
    mut sink: S,
    mut rx: broadcast::Receiver<Arc<Packet>>,
    metrics: Arc<Metrics>,
    mut shutdown: Shutdown,
) where
    S: Sink<Message> + Unpin,
{
    loop {
        let packet = tokio::select! {
            biased;
            () = shutdown.wait() => break,
            r = rx.recv() => r,
        };
        match packet {
            Ok(p) => {
                let sent = async {
                    sink.feed(Message::Text(p.overlay_json.clone())).await?;
                    sink.feed(Message::Binary(p.jpeg.clone())).await?;
                    sink.flush().await
                };
                match tokio::time::timeout(SEND_TIMEOUT, sent).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    Err(_) => {
                        tracing::debug!("viewer stopped reading: disconnected");
                        // Closing would wait on the same full buffer.
                        return;
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::trace!(skipped = n, "slow viewer skipped frames");
                metrics.ws_skipped(n);
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}

/// Reads (and ignores) what the client sends, so that pings are answered and a close is seen.
async fn drain<S, E>(mut stream: S)
where
    S: Stream<Item = Result<Message, E>> + Unpin,
{
    while let Some(Ok(msg)) = stream.next().await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lagging_receiver_skips_ahead_instead_of_closing() {
        let (tx, rx) = broadcast::channel(2);
        let metrics = Arc::new(Metrics::new());
        let (_stop, shutdown) = crate::shutdown::channel();
        for seq in 0..5u64 {
            let json = format!("{{\"seq\":{seq}}}");
            let _ = tx.send(Arc::new(Packet {
                seq,
                overlay_json: json.into(),
                jpeg: vec![1, 2].into(),
            }));
        }
        drop(tx);
        let sent = Arc::new(std::sync::Mutex::new(Vec::<Message>::new()));
        let sink = futures_util::sink::unfold(sent.clone(), |sent, m: Message| async move {
            sent.lock().expect("test lock").push(m);
            Ok::<_, std::convert::Infallible>(sent)
        });
        send_frames(std::pin::pin!(sink), rx, metrics.clone(), shutdown).await;
        let out = sent.lock().expect("test lock").clone();
        // Seq 0-2 were overwritten before the client read: it skips them and sends 3 and 4.
        assert!(
            matches!(&out[0], Message::Text(t) if t.as_str() == "{\"seq\":3}"),
            "{out:?}"
        );
        assert!(matches!(&out[1], Message::Binary(_)));
        assert!(matches!(&out[2], Message::Text(t) if t.as_str() == "{\"seq\":4}"));
        assert!(matches!(out.last(), Some(Message::Close(_))));
        assert_eq!(metrics.snapshot().ws_frames_skipped, 3);
    }
}
