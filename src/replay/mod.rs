//! Replay protection: each proof `jti` is accepted once per key while the proof is acceptable.
//!
//! The layer asks the store only after the proof's signature verified, so an unsigned or
//! forged proof can never fill it. A store that cannot answer makes the layer reject the request
//! with 503: a replay is never let through because a backend was down or full.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::proof::thumbprint::Thumbprint;

mod memory;
pub(crate) mod quota;
#[cfg(feature = "redis")]
pub(crate) mod redis;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisReplayStore, RedisReplayStoreBuilder};
pub use memory::MemoryReplayStore;

/// The key a proof is remembered under: SHA-256 over the key thumbprint and the `jti`.
///
/// Fixed-size whatever the `jti`, and distinct per signing key, so two clients that happen to
/// pick the same `jti` do not collide.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey([u8; 32]);

impl ReplayKey {
    /// The key for a proof with this thumbprint and `jti`.
    #[must_use]
    pub fn new(thumbprint: &Thumbprint, jti: &str) -> Self {
        let mut h = Sha256::new();
        h.update(thumbprint.as_bytes());
        h.update(jti.as_bytes());
        Self(h.finalize().into())
    }

    /// The 32 bytes of the key.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Debug for ReplayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ReplayKey({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Whether a proof was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First use: the proof is now recorded.
    First,
    /// The same key and `jti` were already recorded: a replay.
    Replay,
}

/// Why a store could not answer. The layer answers 503 and logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayError {
    /// The store holds as many live entries as it may; nothing can be evicted safely.
    Full,
    /// The backend failed or timed out.
    Backend(String),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full => f.write_str("replay store is full"),
            Self::Backend(e) => write!(f, "replay store unavailable: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// A store of recently seen proofs.
///
/// `check_and_insert` must be atomic: of any number of concurrent calls with the same key,
/// exactly one may return [`Seen::First`]. An entry must live at least `ttl`; it may then go.
#[async_trait]
pub trait ReplayStore: Debug + Send + Sync + 'static {
    /// Records `key` for `ttl` unless it is already there.
    async fn check_and_insert(&self, key: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError>;

    /// The most live entries the store can hold, when it is bounded and knows it (the
    /// [`MemoryReplayStore`] does; `None`, the default, for a store such as Redis whose limit
    /// is set elsewhere). The layer derives its default per-key quota from it.
    fn capacity(&self) -> Option<u64> {
        None
    }
}

/// A shared store: several layers (or a layer and your own code) may hold the same one.
#[async_trait]
impl<T: ReplayStore + ?Sized> ReplayStore for std::sync::Arc<T> {
    async fn check_and_insert(&self, key: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError> {
        (**self).check_and_insert(key, ttl).await
    }

    fn capacity(&self) -> Option<u64> {
        (**self).capacity()
    }
}

/// The store a layer asks: the built-in memory store is called directly (no boxed future per
/// request), any other through the trait.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Memory(MemoryReplayStore),
    Other(std::sync::Arc<dyn ReplayStore>),
}

impl Backend {
    /// The store, recognizing the memory store (by type) whatever way it was handed over.
    pub(crate) fn new<S: ReplayStore>(store: S) -> Self {
        let any: &dyn std::any::Any = &store;
        if let Some(memory) = any.downcast_ref::<MemoryReplayStore>() {
            return Self::Memory(memory.clone());
        }
        if let Some(memory) = any.downcast_ref::<std::sync::Arc<MemoryReplayStore>>() {
            return Self::Memory((**memory).clone());
        }
        Self::Other(std::sync::Arc::new(store))
    }

    pub(crate) async fn check_and_insert(
        &self,
        key: ReplayKey,
        ttl: Duration,
    ) -> Result<Seen, ReplayError> {
        match self {
            Self::Memory(store) => store.check_and_insert_sync(key, ttl),
            Self::Other(store) => store.check_and_insert(key, ttl).await,
        }
    }

    pub(crate) fn capacity(&self) -> Option<u64> {
        match self {
            Self::Memory(store) => Some(store.capacity()),
            Self::Other(store) => store.capacity(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_thumbprint_and_jti() {
        let t1 = Thumbprint::from_bytes([1; 32]);
        let t2 = Thumbprint::from_bytes([2; 32]);
        assert_eq!(ReplayKey::new(&t1, "j"), ReplayKey::new(&t1, "j"));
        assert_ne!(ReplayKey::new(&t1, "j"), ReplayKey::new(&t2, "j"));
        assert_ne!(ReplayKey::new(&t1, "j"), ReplayKey::new(&t1, "k"));
    }

    #[test]
    fn debug_and_display() {
        assert_eq!(
            format!("{:?}", ReplayKey([0xab; 32])),
            "ReplayKey(abababab..)"
        );
        assert_eq!(ReplayError::Full.to_string(), "replay store is full");
        assert_eq!(
            ReplayError::Backend("timed out".into()).to_string(),
            "replay store unavailable: timed out"
        );
    }
}
