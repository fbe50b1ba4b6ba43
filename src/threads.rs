//! Scheduling of the service's threads that are not on the frame path.
//!
//! On two cores the frame path (processing, encoding) must not wait behind work whose result
//! can come late: the model's mask (fused whenever it arrives), the demo's plate repaint (ink
//! appears a little later) and the demo's camera stand-in (a real camera costs the cores
//! nothing, and a frame is timed from when it is captured). Those threads lower their own
//! priority; the frame path keeps the default.

use thread_priority::{set_current_thread_priority, ThreadPriority, ThreadPriorityValue};

/// What a thread does, for how far it steps back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Work whose result is used whenever it arrives: the lowest normal priority (nice 19).
    Background,
    /// The demo's rendered camera: a little below the frame path (nice 5), so that it still
    /// delivers its frame rate when the cores are free.
    StandInCamera,
}

/// Lowers the calling thread's priority for `role` (Linux: niceness, per thread). Failure leaves
/// the thread as it was, which is only slower: it is logged, never an error.
pub fn step_back(role: Role) {
    let priority = match role {
        Role::Background => Ok(ThreadPriority::Min),
        // thread-priority maps 0..=99 onto niceness 19..=-20; 35 is nice 5.
        Role::StandInCamera => {
            ThreadPriorityValue::try_from(35u8).map(ThreadPriority::Crossplatform)
        }
    };
    match priority.map(set_current_thread_priority) {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(?role, cause = ?err, "thread priority left as it was"),
        Err(err) => tracing::debug!(?role, cause = %err, "thread priority left as it was"),
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
    fn threads_step_back_by_role_and_only_themselves() {
        let before = niceness().expect("niceness");
        for (role, nice) in [(Role::Background, 19), (Role::StandInCamera, 5)] {
            let inside = std::thread::spawn(move || {
                step_back(role);
                niceness()
            })
            .join()
            .expect("thread");
            // A process already nicer than the role (a niced test run) may not step forward
            // again without privileges.
            let got = inside.expect("niceness");
            assert!(
                got == nice || (got == before && before > nice),
                "{role:?}: {got}"
            );
        }
        assert_eq!(niceness(), Some(before), "only the calling thread changes");
    }
}
