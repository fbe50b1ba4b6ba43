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
    /// Work whose result is used whenever it arrives: Linux's `SCHED_IDLE` (it runs only on a
    /// core nothing else wants, and a frame-path thread that wakes takes the core at once,
    /// where a nice-19 thread would finish its slice first); elsewhere, or where the policy is
    /// refused, the lowest normal priority (nice 19).
    Background,
    /// The demo's rendered camera: a little below the frame path (nice 5), so that it still
    /// delivers its frame rate when the cores are free.
    StandInCamera,
}

/// Lowers the calling thread's priority for `role` (Linux: niceness, per thread). Failure leaves
/// the thread as it was, which is only slower: it is logged, never an error.
pub fn step_back(role: Role) {
    #[cfg(target_os = "linux")]
    if role == Role::Background {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        match set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        ) {
            Ok(()) => return,
            Err(err) => tracing::debug!(?role, cause = ?err, "SCHED_IDLE refused, nice 19"),
        }
    }
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

    /// Linux scheduling policies (`sched.h`).
    #[cfg(target_os = "linux")]
    const SCHED_OTHER: i64 = 0;
    #[cfg(target_os = "linux")]
    const SCHED_IDLE: i64 = 5;

    /// The thread's scheduling policy (`/proc/thread-self/stat`, field 41).
    #[cfg(target_os = "linux")]
    fn policy() -> Option<i64> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split_whitespace().nth(38)?.parse().ok()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn threads_step_back_by_role_and_only_themselves() {
        let before = niceness().expect("niceness");
        let nice_of = |role| {
            std::thread::spawn(move || {
                step_back(role);
                (niceness(), policy())
            })
            .join()
            .expect("thread")
        };
        // A process already nicer than the role (a niced test run) may not step forward again
        // without privileges.
        let (got, policy_of_camera) = nice_of(Role::StandInCamera);
        let got = got.expect("niceness");
        assert!(got == 5 || (got == before && before > 5), "camera: {got}");
        assert_eq!(policy_of_camera, Some(SCHED_OTHER));
        let (_, policy_of_background) = nice_of(Role::Background);
        assert_eq!(policy_of_background, Some(SCHED_IDLE));
        assert_eq!(niceness(), Some(before), "only the calling thread changes");
    }
}
