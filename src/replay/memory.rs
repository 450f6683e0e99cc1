//! The default replay store: in memory, bounded, never evicting a live entry.
//!
//! A replay store is a set with expiry, not a cache: an entry dropped before its proof
//! expires is a replay let through. So this store does not evict; it refuses when full. It is
//! a sharded hash set of 128-bit keys, each with its expiry time, swept by time instead
//! of tracked per entry: about 54 bytes per live entry at a million entries and one short lock
//! per insert (numbers in `docs/performance.md`). moka, which this crate uses for its key and
//! token caches, keeps an access-order node, a timer-wheel node and an `Arc`'d key per entry
//! (about 380 bytes) to decide what to evict, which a replay set must never do.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use async_trait::async_trait;

use super::{ReplayError, ReplayKey, ReplayStore, Seen};
use crate::clock::{Clock, SystemClock};

/// Number of shards (a power of two): enough that two cores rarely meet on one lock, few
/// enough that a small store stays small.
const SHARDS: usize = 32;

/// A shard is swept at most this often (ms) when it is about to grow; the whole store at most
/// this often when it is full. Bounds the sweeping work per insert, whatever the traffic.
const SWEEP_INTERVAL_MS: u64 = 1000;

/// The store's secret hash seed, drawn from the operating system's random generator when the
/// store is made. A [`ReplayKey`] is SHA-256 output, but its bits are chosen by whoever picks
/// the `jti`: grinding a few thousand `jti`s gives keys whose unseeded low bits agree, which
/// would pile them into one shard and one probe sequence. Mixed with a secret seed, where a
/// key lands cannot be predicted.
#[derive(Clone, Copy)]
struct Seed(u64, u64);

impl Seed {
    fn random() -> Self {
        let mut bytes = [0u8; 16];
        if openssl::rand::rand_bytes(&mut bytes).is_err() {
            // Not expected to happen; foldhash's per-process seed is still unknown to clients.
            tracing::warn!(target: "tower_dpop", "OS random generator failed; replay store seeded from foldhash");
            let state = foldhash::fast::RandomState::default();
            return Self(state.hash_one(1u8), state.hash_one(2u8));
        }
        let (a, b) = bytes.split_at(8);
        let word = |w: &[u8]| <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes);
        Self(word(a), word(b))
    }

    /// The seeded hash of a key: folded 64x64 -> 128-bit multiplies, as foldhash does.
    fn hash(self, key: Key) -> u64 {
        // One folded multiply of the two seeded words, then a second by an odd constant (as
        // foldhash finishes): the first alone leaves the shard bits of keys that differ only in
        // a few middle bits of both words unevenly spread for about one seed in a hundred.
        let first = fold(key.0 ^ self.0, key.1 ^ self.1);
        fold(first ^ self.0, 0x9E37_79B9_7F4A_7C15)
    }
}

/// The 128-bit product of `a` and `b`, its halves folded together with xor.
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    #[allow(clippy::cast_possible_truncation)]
    let (low, high) = (product as u64, (product >> 64) as u64);
    low ^ high
}

impl BuildHasher for Seed {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            seed: *self,
            words: [0; 2],
            written: 0,
        }
    }
}

/// Hashes a [`Key`] (which writes its two words) with the store's [`Seed`].
struct KeyHasher {
    seed: Seed,
    words: [u64; 2],
    written: usize,
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.seed.hash(Key(self.words[0], self.words[1]))
    }
    fn write(&mut self, bytes: &[u8]) {
        // `Key` only writes two u64s; anything else is folded in 8 bytes at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word.iter_mut().zip(chunk).for_each(|(w, b)| *w = *b);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        if let Some(word) = self.words.get_mut(self.written % 2) {
            *word ^= n;
        }
        self.written += 1;
    }
}

/// The first 128 bits of a [`ReplayKey`]: 16 bytes, plus 8 for the expiry, per entry.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key(u64, u64);

impl From<&ReplayKey> for Key {
    fn from(key: &ReplayKey) -> Self {
        let bytes = key.as_bytes();
        let word = |i: usize| {
            bytes
                .get(i * 8..i * 8 + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes)
        };
        Key(word(0), word(1))
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
        state.write_u64(self.1);
    }
}

struct Shard {
    /// Key -> expiry, in milliseconds since the Unix epoch on the store's clock.
    map: HashMap<Key, u64, Seed>,
    /// When this shard was last swept.
    swept_at: u64,
}

impl Shard {
    fn new(seed: Seed) -> Self {
        Self {
            map: HashMap::with_hasher(seed),
            swept_at: 0,
        }
    }
}

impl Shard {
    /// Drops expired entries; returns how many.
    fn sweep(&mut self, now: u64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, expires| *expires > now);
        self.swept_at = now;
        // Give memory back after a burst, keeping room to grow again without a rehash storm.
        if self.map.capacity() > 4096 && self.map.len() < self.map.capacity() / 4 {
            self.map.shrink_to(self.map.len() * 2);
        }
        before - self.map.len()
    }
}

/// An in-memory replay store for one instance.
///
/// Entries are keyed by the first 128 bits of the [`ReplayKey`], placed by a hash with a
/// secret per-store seed, and live for the `ttl` the layer gives (rounded up to the next
/// millisecond), measured on the store's [`Clock`] (the system clock unless
/// [`clock`](Self::clock) sets another; the layer's default store shares the layer's). The
/// store holds at most
/// `capacity` entries: when it is full it sweeps expired entries (at most once a second), and
/// if it is still full it refuses ([`ReplayError::Full`], which the layer answers with 503). It
/// never drops a live entry, because a dropped entry is a replay let through.
///
/// Cloning is cheap and shares the store (several layers can hold one). A fleet of instances
/// needs a shared store (Redis) instead: this one only sees its own process's traffic.
#[derive(Clone)]
pub struct MemoryReplayStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    seed: Seed,
    /// Entries held, live or expired but not yet swept.
    held: AtomicU64,
    capacity: u64,
    clock: Arc<dyn Clock>,
    /// When the whole store was last swept because it was full.
    full_sweep_at: AtomicU64,
}

impl std::fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("len", &self.len())
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

impl MemoryReplayStore {
    /// Default capacity: one million live proofs.
    pub const DEFAULT_CAPACITY: u64 = 1_000_000;

    /// A store holding at most `capacity` entries.
    #[must_use]
    pub fn new(capacity: u64) -> Self {
        Self::with_clock(capacity, Arc::new(SystemClock))
    }

    fn with_clock(capacity: u64, clock: Arc<dyn Clock>) -> Self {
        let seed = Seed::random();
        let inner = Inner {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new(seed))).collect(),
            seed,
            held: AtomicU64::new(0),
            capacity,
            clock,
            full_sweep_at: AtomicU64::new(0),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The same store (empty, with the same capacity) measuring entry lifetimes on `clock`,
    /// e.g. a [`ManualClock`](crate::clock::ManualClock) shared with the layer in tests.
    /// Call it before cloning the store: clones made earlier keep the old one.
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        Self::with_clock(self.inner.capacity, Arc::new(clock))
    }

    /// Like [`clock`](Self::clock), for a clock already shared (the layer's).
    pub(crate) fn shared_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self::with_clock(self.inner.capacity, clock)
    }

    /// The most entries the store holds.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// The number of entries held (expired entries count until swept).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.inner.held.load(Ordering::Acquire)
    }

    /// `true` when no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The synchronous form of [`ReplayStore::check_and_insert`].
    pub(crate) fn check_and_insert_sync(
        &self,
        key: ReplayKey,
        ttl: Duration,
    ) -> Result<Seen, ReplayError> {
        self.inner.check_and_insert(key, ttl, self.inner.now())
    }
}

impl Inner {
    /// Milliseconds since the Unix epoch, on the store's clock.
    fn now(&self) -> u64 {
        self.clock.unix_millis()
    }

    /// The shard of a key: bits 32 to 36 of its seeded hash. The map's table uses the low
    /// bits (bucket) and the top seven (control byte) of the same hash, so these are free.
    fn shard_index(&self, key: Key) -> usize {
        #[allow(clippy::cast_possible_truncation)]
        let i = (self.seed.hash(key) >> 32) as usize;
        i % SHARDS
    }

    /// Counts one more entry, unless the store is full.
    fn try_reserve(&self) -> bool {
        if self.held.fetch_add(1, Ordering::AcqRel) < self.capacity {
            return true;
        }
        self.held.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// Sweeps every shard, unless that was done less than a second ago; `true` if it swept.
    /// The caller holds shard `held_index` (passed in as `held`); the others are only tried,
    /// never waited for, so two full-store sweeps cannot deadlock: a busy shard is skipped.
    fn sweep_all(&self, now: u64, held_index: usize, held: &mut Shard) -> bool {
        let last = self.full_sweep_at.load(Ordering::Acquire);
        if last != 0 && now < last.saturating_add(SWEEP_INTERVAL_MS) {
            return false;
        }
        if self
            .full_sweep_at
            .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        for (i, shard) in self.shards.iter().enumerate() {
            let removed = if i == held_index {
                held.sweep(now)
            } else {
                match shard.try_lock() {
                    Ok(mut other) => other.sweep(now),
                    Err(TryLockError::Poisoned(other)) => other.into_inner().sweep(now),
                    Err(TryLockError::WouldBlock) => 0,
                }
            };
            self.held.fetch_sub(removed as u64, Ordering::AcqRel);
        }
        true
    }

    /// [`MemoryReplayStore::check_and_insert_sync`] at `now` (ms on the store's clock).
    fn check_and_insert(
        &self,
        key: ReplayKey,
        ttl: Duration,
        now: u64,
    ) -> Result<Seen, ReplayError> {
        let key = Key::from(&key);
        // Rounded up, plus the millisecond `now` was rounded down by: an entry may outlive
        // its proof by a millisecond or two, never the reverse.
        let ttl_ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        let expires = now.saturating_add(ttl_ms).saturating_add(1);

        let index = self.shard_index(key);
        let Some(slot) = self.shards.get(index) else {
            return Err(ReplayError::Backend("replay shard out of range".into()));
        };
        // The shard stays locked until the key is in: no other insert of it can interleave.
        let mut shard = lock(slot);
        if let Some(at) = shard.map.get_mut(&key) {
            if *at > now {
                return Ok(Seen::Replay);
            }
            // Expired and not yet swept: the slot is reused, the count is unchanged.
            *at = expires;
            return Ok(Seen::First);
        }
        // About to grow: sweep first (at most once a second per shard), so the table grows
        // with live entries, not with dead ones.
        if shard.map.len() == shard.map.capacity()
            && now >= shard.swept_at.saturating_add(SWEEP_INTERVAL_MS)
        {
            let removed = shard.sweep(now);
            self.held.fetch_sub(removed as u64, Ordering::AcqRel);
        }
        // Full: sweep the whole store (at most once a second), then try once more.
        let reserved =
            self.try_reserve() || (self.sweep_all(now, index, &mut shard) && self.try_reserve());
        if !reserved {
            return Err(ReplayError::Full);
        }
        // Sweeping only removes entries, so the key is still absent.
        shard.map.insert(key, expires);
        Ok(Seen::First)
    }
}

/// A poisoned shard is still a consistent map (no operation on it can panic halfway).
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
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

    fn capacity(&self) -> Option<u64> {
        Some(self.inner.capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The conformance suite every store runs (`testing::check_replay_store`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conforms() {
        crate::testing::check_replay_store(MemoryReplayStore::new(100)).await;
    }

    /// The layer recognizes the memory store however it is handed over (as is, or in an
    /// `Arc`) and calls it without a boxed future; the answers are the trait's.
    #[tokio::test]
    async fn the_layer_calls_the_memory_store_directly() {
        use crate::replay::Backend;
        #[derive(Debug)]
        struct Remote;
        #[async_trait::async_trait]
        impl ReplayStore for Remote {
            async fn check_and_insert(
                &self,
                _: ReplayKey,
                _: Duration,
            ) -> Result<Seen, ReplayError> {
                Ok(Seen::First)
            }
        }
        let ttl = Duration::from_secs(60);
        let key = |n: u8| ReplayKey([n; 32]);
        let store = MemoryReplayStore::new(100);
        for backend in [
            Backend::new(store.clone()),
            Backend::new(Arc::new(store.clone())),
        ] {
            assert!(matches!(backend, Backend::Memory(_)));
            assert_eq!(backend.capacity(), Some(100));
        }
        let direct = Backend::new(store.clone());
        assert_eq!(direct.check_and_insert(key(1), ttl).await, Ok(Seen::First));
        assert_eq!(store.check_and_insert(key(1), ttl).await, Ok(Seen::Replay));
        assert_eq!(store.check_and_insert(key(2), ttl).await, Ok(Seen::First));
        assert_eq!(direct.check_and_insert(key(2), ttl).await, Ok(Seen::Replay));
        let remote = Backend::new(Remote);
        assert!(matches!(remote, Backend::Other(_)));
        assert_eq!(remote.capacity(), None);
        assert_eq!(remote.check_and_insert(key(1), ttl).await, Ok(Seen::First));
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
        // A full store sweeps itself at most once a second.
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(
            store.check_and_insert_sync(ReplayKey([3; 32]), short),
            Ok(Seen::First)
        );
    }

    #[test]
    fn a_sweep_drops_exactly_the_expired_and_gives_memory_back() {
        let mut shard = Shard::new(Seed(1, 2));
        shard.map.reserve(50_000);
        for i in 0..10 {
            shard.map.insert(Key(i, 0), 5);
        }
        shard.map.insert(Key(99, 0), 10); // expires exactly now: gone
        for i in 100..110 {
            shard.map.insert(Key(i, 0), 11);
        }
        let big = shard.map.capacity();
        assert_eq!(shard.sweep(10), 11);
        assert_eq!(shard.map.len(), 10);
        assert_eq!(shard.swept_at, 10);
        assert!(shard.map.capacity() < big / 4, "{}", shard.map.capacity());
        // ... keeping room for twice what is left.
        assert!(shard.map.capacity() >= 20, "{}", shard.map.capacity());

        // Mostly live: the table keeps its size.
        let mut live = Shard::new(Seed(1, 2));
        live.map.reserve(8000);
        for i in 0..6000 {
            live.map.insert(Key(i, 1), if i < 10 { 1 } else { 100 });
        }
        let size = live.map.capacity();
        assert_eq!(live.sweep(50), 10);
        assert_eq!(live.map.capacity(), size);

        // Exactly a quarter full after the sweep: kept (shrinking starts below a quarter).
        let mut quarter = Shard::new(Seed(1, 2));
        quarter.map.reserve(5000);
        let cap = quarter.map.capacity();
        let live = u64::try_from(cap / 4).unwrap();
        for i in 0..live {
            quarter.map.insert(Key(i, 3), 100);
        }
        for i in 0..10 {
            quarter.map.insert(Key(1_000_000 + i, 3), 1);
        }
        assert_eq!(quarter.sweep(50), 10);
        assert_eq!(quarter.map.capacity(), cap);

        // Small tables are left alone.
        let mut small = Shard::new(Seed(1, 2));
        small.map.reserve(1000);
        small.map.insert(Key(1, 2), 100);
        let size = small.map.capacity();
        assert_eq!(small.sweep(50), 0);
        assert_eq!(small.map.capacity(), size);
    }

    #[test]
    fn a_full_store_sweeps_at_most_once_a_second() {
        let store = MemoryReplayStore::new(10);
        let inner = &store.inner;
        let mut held = Shard::new(Seed(1, 2));
        let mut sweep = |now| inner.sweep_all(now, 0, &mut held);
        assert!(sweep(0), "never swept: due");
        assert!(!sweep(500));
        assert!(!sweep(1000));
        assert!(sweep(1001), "a second after the first (stored as 1 ms)");
        assert!(!sweep(2000));
        assert!(sweep(2001));
    }

    #[test]
    fn the_fallback_hash_path_is_total() {
        let hash = |bytes: &[u8]| {
            let mut h = Seed(3, 4).build_hasher();
            h.write(bytes);
            h.finish()
        };
        assert_ne!(hash(b"abc"), hash(b"abd"));
        assert_ne!(hash(b"abcdefgh1"), hash(b"abcdefgh2"));
        assert_ne!(hash(b"abc"), 0);
        // The map's hash of a key is the seeded hash the shard is chosen by.
        let key = Key(5, 6);
        assert_eq!(Seed(3, 4).hash_one(key), Seed(3, 4).hash(key));
    }

    /// Keys ground so that every bit an unseeded placement would use agrees (same low and high
    /// bits in both words) still spread over every shard, and land differently in two stores.
    #[test]
    fn placement_is_seeded_so_chosen_keys_do_not_pile_up() {
        let ground = |i: u64| {
            let mut b = [0u8; 32];
            // Only bits 24..40 of each word vary; the rest is the same for every key.
            b[..8].copy_from_slice(&(0xAB00_0000_0000_00CD | (i << 24)).to_le_bytes());
            b[8..16].copy_from_slice(&(0xEF00_0000_0000_0012 | (i << 24)).to_le_bytes());
            ReplayKey(b)
        };
        let a = MemoryReplayStore::new(100_000);
        let b = MemoryReplayStore::new(100_000);
        let mut per_shard = [0u32; SHARDS];
        let mut same = 0;
        for i in 0..3200 {
            let key = Key::from(&ground(i));
            let shard = a.inner.shard_index(key);
            per_shard[shard] += 1;
            same += u32::from(shard == b.inner.shard_index(key));
        }
        assert!(
            per_shard.iter().all(|&n| (40..=180).contains(&n)),
            "{per_shard:?}"
        );
        assert!(
            same < 400,
            "{same} of 3200 keys in the same shard of two stores"
        );
    }

    /// Key number `i` of those that land in shard `shard` of `store` (found by search, since
    /// placement is seeded).
    fn key_in_shard(store: &MemoryReplayStore, shard: usize, i: u32) -> ReplayKey {
        (0u64..)
            .map(|j| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_le_bytes());
                b[8..16].copy_from_slice(&j.to_le_bytes());
                ReplayKey(b)
            })
            .find(|k| store.inner.shard_index(Key::from(k)) == shard)
            .unwrap()
    }

    #[test]
    fn expiry_to_the_millisecond() {
        let store = MemoryReplayStore::new(10);
        let inner = &store.inner;
        let k = key_in_shard(&store, 0, 1);
        let ttl = Duration::from_micros(9_500); // rounded up to 10 ms, +1 for `now`'s rounding
        assert_eq!(inner.check_and_insert(k, ttl, 0), Ok(Seen::First));
        assert_eq!(inner.check_and_insert(k, ttl, 10), Ok(Seen::Replay));
        assert_eq!(inner.check_and_insert(k, ttl, 11), Ok(Seen::First));
        assert_eq!(inner.check_and_insert(k, ttl, 21), Ok(Seen::Replay));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_shard_is_swept_only_when_about_to_grow() {
        let store = MemoryReplayStore::new(100);
        let inner = &store.inner;
        let short = Duration::from_millis(1);
        let insert = |i, now| inner.check_and_insert(key_in_shard(&store, 0, i), short, now);
        assert_eq!(insert(0, 0), Ok(Seen::First));
        // Room left in the table: the expired entry stays (counted) until a sweep is needed.
        assert_eq!(insert(1, 5000), Ok(Seen::First));
        assert_eq!(store.len(), 2);
        // Fill the table to its capacity; the next insert must grow it: sweep first.
        let room = |s: &Inner| {
            let shard = lock(&s.shards[0]);
            shard.map.capacity() - shard.map.len()
        };
        let mut i = 2;
        while room(inner) > 0 {
            assert_eq!(insert(i, 5000), Ok(Seen::First));
            i += 1;
        }
        let full = store.len();
        assert_eq!(insert(i, 7000), Ok(Seen::First));
        assert_eq!(
            store.len(),
            1,
            "all {full} expired entries swept before growing"
        );
    }

    #[test]
    fn a_full_store_sweeps_the_other_shards_too() {
        let store = MemoryReplayStore::new(2);
        let ttl = Duration::from_millis(100);
        let insert = |shard, i, now| {
            store
                .inner
                .check_and_insert(key_in_shard(&store, shard, i), ttl, now)
        };
        assert_eq!(insert(1, 1, 0), Ok(Seen::First));
        assert_eq!(insert(1, 2, 0), Ok(Seen::First));
        // Full of expired entries, all in shard 1; the new key goes to shard 0.
        assert_eq!(insert(0, 3, 2000), Ok(Seen::First));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_full_store_refuses_until_its_entries_expire() {
        let store = MemoryReplayStore::new(2);
        let inner = &store.inner;
        let ttl = Duration::from_millis(100);
        let insert = |i, now| inner.check_and_insert(key_in_shard(&store, 0, i), ttl, now);
        assert_eq!(insert(1, 0), Ok(Seen::First));
        assert_eq!(insert(2, 0), Ok(Seen::First));
        assert_eq!(insert(3, 50), Err(ReplayError::Full));
        // Expired, but the last full sweep was under a second ago: still refused.
        assert_eq!(insert(3, 500), Err(ReplayError::Full));
        assert_eq!(insert(3, 1100), Ok(Seen::First));
        assert_eq!(store.len(), 1);
        // A replay of a live entry is caught.
        assert_eq!(insert(3, 1150), Ok(Seen::Replay));
    }

    #[test]
    fn clones_share_one_store() {
        let a = MemoryReplayStore::new(10);
        let b = a.clone();
        let ttl = Duration::from_secs(60);
        assert_eq!(
            a.check_and_insert_sync(ReplayKey([4; 32]), ttl),
            Ok(Seen::First)
        );
        assert_eq!(
            b.check_and_insert_sync(ReplayKey([4; 32]), ttl),
            Ok(Seen::Replay)
        );
        assert_eq!(b.len(), 1);
        assert!(!a.is_empty());
        assert!(MemoryReplayStore::new(1).is_empty());
        assert_eq!(
            format!("{a:?}"),
            "MemoryReplayStore { len: 1, capacity: 10, .. }"
        );
    }

    #[test]
    fn an_expired_entry_is_reused_and_counted_once() {
        let store = MemoryReplayStore::new(10);
        let key = ReplayKey([5; 32]);
        let short = Duration::from_millis(20);
        assert_eq!(store.check_and_insert_sync(key, short), Ok(Seen::First));
        assert_eq!(store.check_and_insert_sync(key, short), Ok(Seen::Replay));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(store.check_and_insert_sync(key, short), Ok(Seen::First));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn entry_lives_at_least_its_ttl() {
        let store = MemoryReplayStore::new(10);
        let key = ReplayKey([6; 32]);
        let ttl = Duration::from_millis(300);
        let start = Instant::now();
        assert_eq!(store.check_and_insert_sync(key, ttl), Ok(Seen::First));
        // Poll until it is accepted again: that must not happen before `ttl`.
        loop {
            let seen = store.check_and_insert_sync(key, ttl);
            if seen == Ok(Seen::First) {
                assert!(
                    start.elapsed() >= ttl,
                    "expired after {:?}",
                    start.elapsed()
                );
                break;
            }
            assert_eq!(seen, Ok(Seen::Replay));
            assert!(start.elapsed() < Duration::from_secs(5), "never expired");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_growing_shard_sweeps_its_expired_entries_first() {
        let store = MemoryReplayStore::new(1_000_000);
        let key = |i| key_in_shard(&store, 0, i); // all in one shard
        let n = 20_000;
        for i in 0..n {
            assert_eq!(
                store.check_and_insert_sync(key(i), Duration::from_millis(10)),
                Ok(Seen::First)
            );
        }
        assert_eq!(store.len(), u64::from(n));
        std::thread::sleep(Duration::from_millis(1100));
        for i in n..2 * n {
            assert_eq!(
                store.check_and_insert_sync(key(i), Duration::from_secs(60)),
                Ok(Seen::First)
            );
        }
        // The first batch was swept when the shard was about to grow: what is held is at most
        // the second batch plus what was inserted before the sweep.
        assert!(store.len() < u64::from(2 * n), "len {}", store.len());
        // Live entries survived the sweep.
        for i in n..2 * n {
            assert_eq!(
                store.check_and_insert_sync(key(i), Duration::from_secs(60)),
                Ok(Seen::Replay)
            );
        }
    }

    #[test]
    fn keys_spread_over_all_shards() {
        let store = MemoryReplayStore::new(100_000);
        for i in 0..10_000u32 {
            let k = ReplayKey::new(
                &crate::proof::thumbprint::Thumbprint::from_bytes([1; 32]),
                &i.to_string(),
            );
            assert_eq!(
                store.check_and_insert_sync(k, Duration::from_secs(60)),
                Ok(Seen::First)
            );
        }
        for shard in &*store.inner.shards {
            let len = lock(shard).map.len();
            assert!((200..=450).contains(&len), "unbalanced shard: {len}");
        }
    }
}
