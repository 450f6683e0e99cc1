//! The time source, injectable so tests control `iat` windows, token expiry and nonce lifetime.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
///
/// The layer reads the clock once per request. Implement it to drive time from a test, or use
/// [`ManualClock`].
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// Seconds since the Unix epoch (0 for a time before it).
    fn unix_seconds(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Milliseconds since the Unix epoch (0 for a time before it). Proof windows are decided
    /// at this resolution, so a proof is refused from the very millisecond it is too old.
    fn unix_millis(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// The system clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; clones share the same time. For tests.
///
/// ```
/// use tower_dpop::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.unix_seconds(), 1_700_000_030);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock set to `secs` seconds after the Unix epoch.
    #[must_use]
    pub fn at_unix(secs: u64) -> Self {
        Self {
            millis: Arc::new(AtomicU64::new(secs.saturating_mul(1000))),
        }
    }

    /// Sets the time to `secs` seconds after the Unix epoch.
    pub fn set_unix(&self, secs: u64) {
        self.millis
            .store(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Sets the time to `millis` milliseconds after the Unix epoch.
    pub fn set_unix_millis(&self, millis: u64) {
        self.millis.store(millis, Ordering::SeqCst);
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::at_unix(100);
        let b = a.clone();
        a.advance(Duration::from_secs(5));
        assert_eq!(b.unix_seconds(), 105);
        b.set_unix(7);
        assert_eq!(a.unix_seconds(), 7);
    }

    #[test]
    fn millis_keep_what_seconds_drop() {
        let c = ManualClock::at_unix(100);
        c.advance(Duration::from_millis(999));
        assert_eq!(c.unix_seconds(), 100);
        assert_eq!(c.unix_millis(), 100_999);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.unix_seconds() > 1_577_836_800);
    }
}
