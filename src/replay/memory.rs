//! The default replay store: in memory, on moka, bounded, never evicting a live entry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::notification::RemovalCause;
use moka::policy::Expiry;
use moka::sync::Cache;

use super::{ReplayError, ReplayKey, ReplayStore, Seen};

/// Each entry lives exactly as long as its proof can be accepted (the value is that time).
struct PerEntryTtl;

impl Expiry<u128, Duration> for PerEntryTtl {
    fn expire_after_create(&self, _: &u128, ttl: &Duration, _: Instant) -> Option<Duration> {
        Some(*ttl)
    }
}

/// An in-memory replay store for one instance.
///
/// Entries are keyed by the first 128 bits of the [`ReplayKey`] and expire when their proof
/// can no longer be accepted. The store holds at most `capacity` live entries: when it is full
/// it first purges expired entries, and if it is still full it refuses ([`ReplayError::Full`],
/// which the layer answers with 503). It never evicts a live entry, because an evicted entry
/// is a replay let through.
///
/// A fleet of instances needs a shared store (Redis) instead: this one only sees its own
/// traffic.
#[derive(Clone)]
pub struct MemoryReplayStore {
    cache: Cache<u128, Duration>,
    live: Arc<AtomicU64>,
    capacity: u64,
}

impl std::fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("live", &self.live.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl MemoryReplayStore {
    /// Default capacity: one million live proofs.
    pub const DEFAULT_CAPACITY: u64 = 1_000_000;

    /// A store holding at most `capacity` live entries.
    #[must_use]
    pub fn new(capacity: u64) -> Self {
        let live = Arc::new(AtomicU64::new(0));
        let counter = live.clone();
        let cache = Cache::builder()
            .expire_after(PerEntryTtl)
            .eviction_listener(move |_, _, _: RemovalCause| {
                counter.fetch_sub(1, Ordering::AcqRel);
            })
            .build();
        Self {
            cache,
            live,
            capacity,
        }
    }

    /// The number of entries currently counted as live (expired entries count until purged).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.live.load(Ordering::Acquire)
    }

    /// `true` when no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reserves room for one entry, purging expired entries once if the store looks full.
    fn reserve(&self) -> bool {
        for attempt in 0..2 {
            if self.live.fetch_add(1, Ordering::AcqRel) < self.capacity {
                return true;
            }
            self.live.fetch_sub(1, Ordering::AcqRel);
            if attempt == 0 {
                self.cache.run_pending_tasks();
            }
        }
        false
    }

    /// The synchronous form of [`ReplayStore::check_and_insert`].
    pub fn check_and_insert_sync(
        &self,
        key: ReplayKey,
        ttl: Duration,
    ) -> Result<Seen, ReplayError> {
        let short = key
            .as_bytes()
            .first_chunk::<16>()
            .map_or(0, |b| u128::from_le_bytes(*b));
        if self.cache.contains_key(&short) {
            return Ok(Seen::Replay);
        }
        if !self.reserve() {
            return Err(ReplayError::Full);
        }
        let entry = self.cache.entry(short).or_insert_with(|| ttl);
        if entry.is_fresh() {
            Ok(Seen::First)
        } else {
            self.live.fetch_sub(1, Ordering::AcqRel);
            Ok(Seen::Replay)
        }
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn check_and_insert(&self, key: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError> {
        self.check_and_insert_sync(key, ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::suite;

    #[tokio::test]
    async fn suite_first_then_replay() {
        suite::first_then_replay(&MemoryReplayStore::new(100)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn suite_concurrent() {
        suite::concurrent_same_key_one_winner(Arc::new(MemoryReplayStore::new(100))).await;
    }

    #[tokio::test]
    async fn suite_expiry() {
        suite::entries_expire(&MemoryReplayStore::new(100)).await;
    }

    #[test]
    fn full_store_refuses_and_keeps_live_entries() {
        let store = MemoryReplayStore::new(3);
        let ttl = Duration::from_secs(60);
        for i in 0..3u8 {
            assert_eq!(
                store.check_and_insert_sync(ReplayKey([i; 32]), ttl),
                Ok(Seen::First)
            );
        }
        assert_eq!(
            store.check_and_insert_sync(ReplayKey([7; 32]), ttl),
            Err(ReplayError::Full)
        );
        // The live entries are still there: replays are still caught while full.
        for i in 0..3u8 {
            assert_eq!(
                store.check_and_insert_sync(ReplayKey([i; 32]), ttl),
                Ok(Seen::Replay)
            );
        }
    }

    #[test]
    fn full_store_recovers_after_expiry() {
        let store = MemoryReplayStore::new(2);
        let short = Duration::from_millis(200);
        assert_eq!(
            store.check_and_insert_sync(ReplayKey([1; 32]), short),
            Ok(Seen::First)
        );
        assert_eq!(
            store.check_and_insert_sync(ReplayKey([2; 32]), short),
            Ok(Seen::First)
        );
        assert_eq!(
            store.check_and_insert_sync(ReplayKey([3; 32]), short),
            Err(ReplayError::Full)
        );
        // moka's timer wheel purges expired entries in ~1 s buckets.
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(
            store.check_and_insert_sync(ReplayKey([3; 32]), short),
            Ok(Seen::First)
        );
    }
}
