//! Shutdown: one `watch` channel tells every stage to stop (mini-redis `shutdown.rs`).
//!
//! The sender side is [`ShutdownTx`]; async loops `select!` on [`Shutdown::wait`], worker threads
//! poll [`Shutdown::is_triggered`] between frames. [`signal`] resolves on Ctrl-C or SIGTERM.

use tokio::sync::watch;

/// Triggers shutdown for every [`Shutdown`] made from it.
#[derive(Debug, Clone)]
pub struct ShutdownTx(watch::Sender<bool>);

/// Listens for shutdown; cheap to clone, one per stage.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new shutdown channel.
pub fn channel() -> (ShutdownTx, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTx(tx), Shutdown(rx))
}

impl ShutdownTx {
    /// Tells every listener to stop. Idempotent.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// A new listener.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Whether shutdown has been triggered (or every sender is gone); for worker threads.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves once shutdown is triggered; for async loops.
    pub async fn wait(&mut self) {
        // An error means every sender is gone, which also means "stop".
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (axum `examples/graceful-shutdown`).
pub async fn signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(cause = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(cause = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
