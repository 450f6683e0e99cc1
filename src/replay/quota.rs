//! A per-key quota of replay entries, so that one client cannot fill the replay store for
//! everyone.
//!
//! A replay store that is full refuses every proof (503), which is right: it must never drop a
//! live entry. But one client with one valid token could fill it alone, by sending proofs as
//! fast as it can. The quota bounds how many live entries one proof key (one thumbprint) may
//! hold; past it only that key's proofs are refused (429 with `Retry-After`), and every other
//! key keeps working.
//!
//! Every entry the layer stores lives exactly the layer's replay window, so the live entries of
//! a key are the ones it stored during the last window. Each key's count is kept in eight
//! rolling buckets that together span at least the window plus one bucket: the count never
//! falls short of the live entries (it may run up to one bucket over), so a key can never hold
//! more than its quota. Only keys that signed a proof bound to a valid token are counted, so the
//! number of keys tracked is bounded by the tokens the authorization server issued; keys with
//! nothing left in the window are swept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use crate::proof::thumbprint::Thumbprint;

/// Buckets per key.
const BUCKETS: u64 = 8;
/// Shards of the key table (thumbprints are SHA-256 output: the first byte spreads them).
const SHARDS: usize = 16;

/// One key's entries stored in the last [`BUCKETS`] buckets.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// The bucket number (`now / bucket_ms`) of the newest bucket.
    newest: u64,
    /// Entries per bucket, by bucket number modulo [`BUCKETS`].
    counts: [u32; BUCKETS as usize],
}

impl Window {
    /// Moves the window forward to bucket `now`, emptying the buckets that left it.
    fn advance(&mut self, now: u64) {
        if now <= self.newest {
            return;
        }
        let gone = (now - self.newest).min(BUCKETS);
        for b in 1..=gone {
            if let Some(c) = self.counts.get_mut(slot(self.newest + b)) {
                *c = 0;
            }
        }
        self.newest = now;
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// The bucket number of the oldest bucket that still holds an entry.
    fn oldest_used(&self) -> Option<u64> {
        (0..BUCKETS)
            .rev()
            .map(|age| self.newest.saturating_sub(age))
            .find(|&b| self.counts.get(slot(b)).is_some_and(|&c| c > 0))
    }
}

fn slot(bucket: u64) -> usize {
    #[allow(clippy::cast_possible_truncation)]
    let i = (bucket % BUCKETS) as usize;
    i
}

/// Why a key may not store another entry now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaError {
    /// The key holds its quota; an entry leaves the window after this long.
    Exceeded(Duration),
    /// As many keys are tracked as the table may hold.
    Full,
}

/// Live replay entries per proof key, for one layer. See the module docs.
#[derive(Debug)]
pub(crate) struct KeyQuota {
    limit: u64,
    bucket_ms: u64,
    max_keys: u64,
    /// Keys tracked, over all shards.
    tracked: AtomicU64,
    /// The bucket in which every shard was last swept because the table was full.
    swept_all_at: AtomicU64,
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Debug, Default)]
struct Shard {
    keys: HashMap<[u8; 32], Window, foldhash::fast::RandomState>,
    swept_at: u64,
}

/// A reserved entry; [`KeyQuota::release`] gives it back when the store did not keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reserved {
    bucket: u64,
}

impl KeyQuota {
    /// `limit` live entries per key, for entries that live `window`; at most `max_keys` keys.
    pub(crate) fn new(limit: u64, window: Duration, max_keys: u64) -> Self {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Self {
            limit,
            // Eight buckets of a seventh of the window span the window and one bucket more.
            bucket_ms: window_ms.div_ceil(BUCKETS - 1).max(1),
            max_keys: max_keys.max(1),
            tracked: AtomicU64::new(0),
            swept_all_at: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// The quota per key.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// The key's shard (always `Some`: the index is taken modulo the shard count).
    fn shard(&self, key: &Thumbprint) -> Option<MutexGuard<'_, Shard>> {
        let i = usize::from(key.as_bytes()[0]) % SHARDS;
        let shard = self.shards.get(i)?;
        Some(shard.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Counts one more entry for `key` at `now_ms`, unless it holds its quota.
    pub(crate) fn reserve(&self, key: &Thumbprint, now_ms: u64) -> Result<Reserved, QuotaError> {
        let bucket = now_ms / self.bucket_ms;
        let mut shard = self.shard(key).ok_or(QuotaError::Full)?;
        if !shard.keys.contains_key(key.as_bytes()) {
            self.make_room(&mut shard, bucket)?;
            self.tracked.fetch_add(1, Ordering::AcqRel);
        }
        let window = shard.keys.entry(*key.as_bytes()).or_insert(Window {
            newest: bucket,
            counts: [0; BUCKETS as usize],
        });
        window.advance(bucket);
        if window.total() >= self.limit {
            let oldest = window.oldest_used().unwrap_or(bucket);
            let leaves_at = (oldest + BUCKETS).saturating_mul(self.bucket_ms);
            let wait = Duration::from_millis(leaves_at.saturating_sub(now_ms).max(1));
            return Err(QuotaError::Exceeded(wait));
        }
        if let Some(c) = window.counts.get_mut(slot(bucket)) {
            *c = c.saturating_add(1);
        }
        Ok(Reserved { bucket })
    }

    /// Gives back an entry the store did not keep (a replay, or a store error).
    pub(crate) fn release(&self, key: &Thumbprint, reserved: Reserved) {
        let Some(mut shard) = self.shard(key) else {
            return;
        };
        if let Some(window) = shard.keys.get_mut(key.as_bytes()) {
            if reserved.bucket + BUCKETS > window.newest {
                if let Some(c) = window.counts.get_mut(slot(reserved.bucket)) {
                    *c = c.saturating_sub(1);
                }
            }
        }
    }

    /// Before a new key is tracked: when `max_keys` are, drop the keys with nothing left in
    /// the window, from this shard (at most once a bucket) and then from every shard that is
    /// not busy (at most once a bucket for the whole table); refuse if the table is still full.
    fn make_room(&self, shard: &mut Shard, bucket: u64) -> Result<(), QuotaError> {
        let full = || self.tracked.load(Ordering::Acquire) >= self.max_keys;
        if !full() {
            return Ok(());
        }
        if bucket > shard.swept_at {
            self.sweep(shard, bucket);
        }
        let last = self.swept_all_at.load(Ordering::Acquire);
        if full()
            && bucket > last
            && self
                .swept_all_at
                .compare_exchange(last, bucket, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // The caller holds one shard; the others are only tried, so two sweeps cannot
            // wait for each other.
            for other in &*self.shards {
                match other.try_lock() {
                    Ok(mut other) => self.sweep(&mut other, bucket),
                    Err(TryLockError::Poisoned(other)) => {
                        self.sweep(&mut other.into_inner(), bucket)
                    }
                    Err(TryLockError::WouldBlock) => {}
                }
            }
        }
        if full() {
            Err(QuotaError::Full)
        } else {
            Ok(())
        }
    }

    /// Drops the shard's keys that have nothing left in the window.
    fn sweep(&self, shard: &mut Shard, bucket: u64) {
        let before = shard.keys.len();
        shard.keys.retain(|_, w| {
            w.advance(bucket);
            w.total() > 0
        });
        shard.swept_at = bucket;
        let removed = before - shard.keys.len();
        self.tracked.fetch_sub(removed as u64, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(70);

    fn key(n: u8) -> Thumbprint {
        Thumbprint::from_bytes([n; 32])
    }

    #[test]
    fn a_key_over_its_quota_is_refused_while_another_is_served() {
        let q = KeyQuota::new(3, WINDOW, 1000);
        for _ in 0..3 {
            assert!(q.reserve(&key(1), 1_000).is_ok());
        }
        assert!(matches!(
            q.reserve(&key(1), 1_000),
            Err(QuotaError::Exceeded(_))
        ));
        assert!(q.reserve(&key(2), 1_000).is_ok(), "another key still works");
    }

    /// The count covers the whole window: an entry counts until it has surely expired, and
    /// then no longer.
    #[test]
    fn entries_count_for_the_whole_window_then_leave() {
        let q = KeyQuota::new(1, WINDOW, 1000);
        let t0 = 1_000_000;
        assert!(q.reserve(&key(1), t0).is_ok());
        let window_ms = 70_000;
        for dt in (0..=window_ms).step_by(997) {
            assert!(
                matches!(q.reserve(&key(1), t0 + dt), Err(QuotaError::Exceeded(_))),
                "still live at +{dt} ms"
            );
        }
        // One bucket (a seventh of the window) after the window, it is gone.
        assert!(q
            .reserve(&key(1), t0 + window_ms + window_ms / 7 + 1)
            .is_ok());
    }

    #[test]
    fn retry_after_is_when_the_oldest_entry_leaves() {
        let q = KeyQuota::new(2, WINDOW, 1000);
        let bucket_ms = 10_000; // 70 s / 7
        let t0 = 10 * bucket_ms; // at the start of bucket 10
        assert!(q.reserve(&key(1), t0).is_ok());
        assert!(q.reserve(&key(1), t0 + 3 * bucket_ms).is_ok());
        let Err(QuotaError::Exceeded(wait)) = q.reserve(&key(1), t0 + 4 * bucket_ms) else {
            panic!("over quota");
        };
        // Bucket 10 leaves when bucket 18 starts.
        assert_eq!(wait, Duration::from_millis(4 * bucket_ms));
        // And then there is room again.
        assert!(q.reserve(&key(1), t0 + 8 * bucket_ms).is_ok());
    }

    #[test]
    fn a_released_entry_does_not_count() {
        let q = KeyQuota::new(1, WINDOW, 1000);
        let r = q.reserve(&key(1), 5_000).unwrap();
        q.release(&key(1), r);
        assert!(q.reserve(&key(1), 5_000).is_ok());
    }

    #[test]
    fn idle_keys_are_swept_and_a_full_table_refuses_new_keys() {
        let q = KeyQuota::new(10, WINDOW, 2);
        let in_shard = |shard: u8, n: u8| {
            let mut b = [n; 32];
            b[0] = shard;
            Thumbprint::from_bytes(b)
        };
        // Two keys in one shard: the bound is for the whole table, not per shard.
        assert!(q.reserve(&in_shard(0, 1), 0).is_ok());
        assert!(q.reserve(&in_shard(0, 2), 0).is_ok());
        assert_eq!(q.reserve(&in_shard(5, 3), 1), Err(QuotaError::Full));
        // Known keys are still served; their live entries keep them tracked.
        assert!(q.reserve(&in_shard(0, 1), 2).is_ok());
        // Once their entries left the window, they are swept (from another shard too) to
        // make room.
        assert!(q.reserve(&in_shard(5, 3), 90_000).is_ok());
        assert_eq!(q.tracked.load(Ordering::Acquire), 1);
    }
}
