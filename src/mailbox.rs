//! A one-slot mailbox between threads: the writer overwrites, the reader takes the latest.
//!
//! This is the "latest frame wins" hand-off of the pipeline: a stage that falls behind never
//! builds a queue; it skips to the newest frame, and the overwritten ones are counted as dropped
//! (kornia-io `StreamCapture`, whose `grab` returns `None` when nothing is new).

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// One-slot, overwrite-on-write mailbox.
#[derive(Debug, Default)]
pub struct Mailbox<T> {
    slot: Mutex<Option<T>>,
    ready: Condvar,
}

impl<T> Mailbox<T> {
    /// An empty mailbox.
    pub fn new() -> Self {
        Self {
            slot: Mutex::new(None),
            ready: Condvar::new(),
        }
    }

    /// Puts `value` in, returning the unread value it replaced (a dropped frame), if any.
    pub fn put(&self, value: T) -> Option<T> {
        let old = self
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(value);
        self.ready.notify_one();
        old
    }

    /// Takes the latest value, waiting at most `timeout` for one.
    pub fn take_timeout(&self, timeout: Duration) -> Option<T> {
        let guard = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) = self
            .ready
            .wait_timeout_while(guard, timeout, |slot| slot.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_value_wins() {
        let m = Mailbox::new();
        assert_eq!(m.put(1), None);
        assert_eq!(m.put(2), Some(1));
        assert_eq!(m.take_timeout(Duration::ZERO), Some(2));
        assert_eq!(m.take_timeout(Duration::from_millis(1)), None);
    }
}
