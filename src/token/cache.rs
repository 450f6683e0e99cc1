//! Validated tokens, cached by the SHA-256 of the token (the bytes `ath` is made of) until
//! their `exp`, so a token's signature is checked once, not on every request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::policy::Expiry;
use moka::sync::Cache;

use super::AccessToken;

/// How long an entry may live: until the token's `exp` (relative to the layer's clock when
/// it was inserted), never more than the configured maximum.
#[derive(Clone)]
struct Entry {
    token: Arc<AccessToken>,
    ttl: Duration,
}

struct UntilExp;

impl Expiry<[u8; 32], Entry> for UntilExp {
    fn expire_after_create(&self, _: &[u8; 32], e: &Entry, _: Instant) -> Option<Duration> {
        Some(e.ttl)
    }
}

/// A bounded cache of validated tokens. Eviction is harmless here: an evicted token is
/// validated again.
#[derive(Clone)]
pub(crate) struct TokenCache {
    cache: Option<Cache<[u8; 32], Entry>>,
    max_ttl: Duration,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("enabled", &self.cache.is_some())
            .field("max_ttl", &self.max_ttl)
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: u64, max_ttl: Duration) -> Self {
        let cache = (capacity > 0 && !max_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp)
                .build()
        });
        Self { cache, max_ttl }
    }

    pub(crate) fn get(&self, hash: &[u8; 32]) -> Option<Arc<AccessToken>> {
        self.cache.as_ref()?.get(hash).map(|e| e.token)
    }

    /// Caches `token` until its `exp` (or `max_ttl` when it has none or it is further away).
    pub(crate) fn insert(&self, hash: [u8; 32], token: Arc<AccessToken>, now_unix: u64) {
        let Some(cache) = &self.cache else { return };
        let ttl = token.expires_at().map_or(self.max_ttl, |exp| {
            Duration::from_secs(exp.saturating_sub(now_unix)).min(self.max_ttl)
        });
        if !ttl.is_zero() {
            cache.insert(hash, Entry { token, ttl });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(claims: serde_json::Value) -> Arc<AccessToken> {
        let map = claims.as_object().cloned().unwrap_or_default();
        Arc::new(AccessToken::from_claims(map).unwrap())
    }

    /// Entries leave at `max_ttl` even without `exp` (this bounds how long an introspection
    /// answer, and so a revoked token, is trusted), and at `exp` when that comes first.
    #[test]
    fn entries_leave_at_max_ttl_or_exp() {
        let cache = TokenCache::new(10, Duration::from_millis(600));
        let now = 1_000;
        cache.insert([1; 32], token(json!({"sub": "no exp"})), now);
        cache.insert([2; 32], token(json!({"exp": now + 3600})), now);
        cache.insert([3; 32], token(json!({"exp": now})), now);
        assert!(cache.get(&[1; 32]).is_some());
        assert!(cache.get(&[2; 32]).is_some());
        assert!(cache.get(&[3; 32]).is_none(), "already expired: not cached");
        std::thread::sleep(Duration::from_millis(900));
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.get(&[2; 32]).is_none());
    }

    #[test]
    fn disabled_cache_and_debug() {
        let off = TokenCache::new(0, Duration::from_secs(60));
        off.insert([1; 32], token(json!({})), 0);
        assert!(off.get(&[1; 32]).is_none());
        assert_eq!(
            format!("{off:?}"),
            "TokenCache { enabled: false, max_ttl: 60s }"
        );
        assert_eq!(
            format!("{:?}", TokenCache::new(1, Duration::from_secs(5))),
            "TokenCache { enabled: true, max_ttl: 5s }"
        );
    }
}
