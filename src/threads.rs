//! Scheduling of the service's background threads.
//!
//! On two cores the frame path (capture, processing, encoding) must not wait behind work whose
//! result can come late: the model's mask (fused whenever it arrives) and the demo's plate
//! repaint (ink appears a little later). Those threads lower their own priority; the frame path
//! keeps the default.

use thread_priority::{set_current_thread_priority, ThreadPriority};

/// Lowers the calling thread to the lowest normal priority (Linux: niceness 19, per thread).
/// Failure leaves the thread as it was, which is only slower: it is logged, never an error.
pub fn yield_to_frame_path(role: &str) {
    if let Err(err) = set_current_thread_priority(ThreadPriority::Min) {
        tracing::debug!(role, cause = ?err, "thread priority left as it was");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread's niceness as the kernel reports it (`/proc/thread-self/stat`, field 19).
    #[cfg(target_os = "linux")]
    fn niceness() -> Option<i64> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        // The command name (field 2) may hold spaces; fields after its closing parenthesis.
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split_whitespace().nth(16)?.parse().ok()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_background_thread_is_niced_and_others_are_not() {
        let before = niceness().expect("niceness");
        let inside = std::thread::spawn(|| {
            yield_to_frame_path("test");
            niceness()
        })
        .join()
        .expect("thread");
        assert_eq!(inside, Some(19));
        assert_eq!(niceness(), Some(before), "only the calling thread changes");
    }
}
