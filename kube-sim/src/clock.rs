//! The simulation clock. Every timestamp the simulator writes and every deadline it checks
//! (progress deadlines, crash-loop back-off, minReadySeconds, event expiry) reads this clock,
//! never the system clock directly, so explicit stepping is deterministic: in explicit mode
//! the clock stands still until [`SimClock::advance`] moves it.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp, Unit};

/// A clock that either follows the system clock (timed stepping) or stands still (explicit
/// stepping); both can be moved forward by [`SimClock::advance`].
#[derive(Debug)]
pub(crate) struct SimClock {
    /// `Some(t)`: frozen at `t`; `None`: follows the system clock.
    frozen: Option<Timestamp>,
    offset: Mutex<SignedDuration>,
}

impl SimClock {
    pub(crate) fn frozen_at(t: Timestamp) -> SimClock {
        SimClock {
            frozen: Some(t),
            offset: Mutex::new(SignedDuration::ZERO),
        }
    }

    pub(crate) fn wall() -> SimClock {
        SimClock {
            frozen: None,
            offset: Mutex::new(SignedDuration::ZERO),
        }
    }

    /// The current simulated time, truncated to whole seconds (the precision of
    /// Kubernetes `Time` fields, so a stored timestamp compares equal to `now()`).
    pub(crate) fn now(&self) -> Timestamp {
        let base = self.frozen.unwrap_or_else(Timestamp::now);
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let t = base.saturating_add(offset).unwrap_or(base);
        t.round(Unit::Second).unwrap_or(t)
    }

    /// Moves the clock forward by `by` (saturating at the end of representable time).
    pub(crate) fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        *offset = offset.saturating_add(by);
    }
}

/// Formats a timestamp as Kubernetes `Time` (RFC 3339, seconds, `Z`).
pub(crate) fn format_time(t: Timestamp) -> String {
    t.round(Unit::Second).unwrap_or(t).to_string()
}

/// Parses a Kubernetes `Time` field; `None` if absent or malformed.
pub(crate) fn parse_time(s: Option<&str>) -> Option<Timestamp> {
    s.and_then(|s| s.parse().ok())
}

/// Whole seconds from `earlier` to `later` (negative if `later` is earlier).
pub(crate) fn seconds_between(earlier: Timestamp, later: Timestamp) -> i64 {
    later.duration_since(earlier).as_secs()
}
