//! Validated tokens, cached by their text until their `exp`, so a token's signature is
//! checked once, not on every request. Each entry also keeps the token's SHA-256 (what `ath`
//! is made of), so a returning token is not hashed again either, and the proof key verified
//! with it (a token is bound to one key), so its client's next proof needs one lookup, not two.
//!
//! Refused tokens are remembered too, briefly and by their SHA-256: the same refused token sent
//! again costs one lookup, not a signature check or an introspection call.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use moka::policy::Expiry;
use moka::sync::Cache;

use super::AccessToken;
use crate::proof::key::KnownKey;

/// The first proof key verified with a token: the proof header's base64url text and the key
/// (with its thumbprint, which matched the token's `cnf.jkt`). Set once, after a signature
/// verified; read only for a proof header with exactly the same text. A disabled slot (the
/// layer remembers no keys) never holds one.
#[derive(Debug)]
pub(crate) struct KeySlot(Option<OnceLock<Remembered>>);

/// The proof header's text and the key verified with it.
type Remembered = (Box<[u8]>, Arc<KnownKey>);

impl KeySlot {
    fn new(enabled: bool) -> Self {
        Self(enabled.then(OnceLock::new))
    }

    /// The key remembered for this exact header text, if any.
    pub(crate) fn get(&self, header: &[u8]) -> Option<&Arc<KnownKey>> {
        self.0
            .as_ref()?
            .get()
            .filter(|(text, _)| **text == *header)
            .map(|(_, key)| key)
    }

    /// Remembers the key of a verified proof, unless one is already remembered.
    pub(crate) fn remember(&self, header: &[u8], key: &Arc<KnownKey>) {
        if let Some(slot) = self.0.as_ref().filter(|slot| slot.get().is_none()) {
            // A concurrent first set wins; either key verified a proof for this token.
            let _ = slot.set((header.into(), key.clone()));
        }
    }
}

/// A cache hit: the validated token, its SHA-256 and its key slot.
#[derive(Clone)]
pub(crate) struct Cached {
    pub(crate) token: Arc<AccessToken>,
    pub(crate) hash: [u8; 32],
    pub(crate) key: Arc<KeySlot>,
}

/// How long an entry may live: until the token's `exp` (relative to the layer's clock when
/// it was inserted), never more than the configured maximum.
#[derive(Clone)]
struct Entry {
    cached: Cached,
    ttl: Duration,
}

struct UntilExp;

impl Expiry<Arc<[u8]>, Entry> for UntilExp {
    fn expire_after_create(&self, _: &Arc<[u8]>, e: &Entry, _: Instant) -> Option<Duration> {
        Some(e.ttl)
    }
}

/// A refused token's reason and until when (ms on the layer's clock) it is remembered.
#[derive(Clone)]
struct Refused {
    reason: Cow<'static, str>,
    until_ms: u64,
}

/// A bounded cache of validated tokens. Eviction is harmless here: an evicted token is
/// validated again. Only tokens the validator accepted get in, so the memory it holds is
/// bounded by `capacity` times the size of the tokens the authorization server issues.
/// Refused tokens go into a second cache of the same capacity, by hash only (about 100 bytes
/// an entry whatever the token), for `refused_ttl`.
#[derive(Clone)]
pub(crate) struct TokenCache {
    cache: Option<Cache<Arc<[u8]>, Entry, foldhash::fast::RandomState>>,
    refused: Option<Cache<[u8; 32], Refused, foldhash::fast::RandomState>>,
    refused_ttl: Duration,
    max_ttl: Duration,
    /// Whether entries remember their token's proof key (off when the layer's key cache is).
    remember_keys: bool,
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
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn new(capacity: u64, max_ttl: Duration, remember_keys: bool) -> Self {
        Self::with_refused_ttl(capacity, max_ttl, remember_keys, Duration::ZERO)
    }

    /// Also remembers refused tokens for `refused_ttl` (zero: not at all).
    pub(crate) fn with_refused_ttl(
        capacity: u64,
        max_ttl: Duration,
        remember_keys: bool,
        refused_ttl: Duration,
    ) -> Self {
        let refused = (capacity > 0 && !refused_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                // A bound on memory only; `until_ms` decides on the layer's clock.
                .time_to_live(refused_ttl)
                .build_with_hasher(foldhash::fast::RandomState::default())
        });
        let cache = (capacity > 0 && !max_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp)
                // foldhash rather than SipHash: a token is a kilobyte or so, hashed on every
                // request, and only validated tokens get in.
                .build_with_hasher(foldhash::fast::RandomState::default())
        });
        Self {
            cache,
            refused,
            refused_ttl,
            max_ttl,
            remember_keys,
        }
    }

    /// Why the token with this SHA-256 was refused, if that was less than `refused_ttl` ago.
    pub(crate) fn refused(&self, hash: &[u8; 32], now_ms: u64) -> Option<Cow<'static, str>> {
        let entry = self.refused.as_ref()?.get(hash)?;
        (now_ms < entry.until_ms).then_some(entry.reason)
    }

    /// Remembers that the token with this SHA-256 was refused, and why.
    pub(crate) fn insert_refused(&self, hash: [u8; 32], reason: Cow<'static, str>, now_ms: u64) {
        if let Some(refused) = &self.refused {
            let ttl = u64::try_from(self.refused_ttl.as_millis()).unwrap_or(u64::MAX);
            let until_ms = now_ms.saturating_add(ttl);
            refused.insert(hash, Refused { reason, until_ms });
        }
    }

    /// The validated token with exactly this text, its SHA-256 and its key slot.
    pub(crate) fn get(&self, text: &[u8]) -> Option<Cached> {
        self.cache.as_ref()?.get(text).map(|e| e.cached)
    }

    /// Caches `token` (validated from `text`, whose SHA-256 is `hash`) until its `exp` (or
    /// `max_ttl` when it has none or it is further away). Returns the entry's key slot (a
    /// detached one when the token is not cached).
    pub(crate) fn insert(
        &self,
        text: &[u8],
        hash: [u8; 32],
        token: Arc<AccessToken>,
        now_unix: u64,
    ) -> Arc<KeySlot> {
        let key = Arc::new(KeySlot::new(self.remember_keys));
        let Some(cache) = &self.cache else { return key };
        let ttl = token.expires_at().map_or(self.max_ttl, |exp| {
            Duration::from_secs(exp.saturating_sub(now_unix)).min(self.max_ttl)
        });
        if !ttl.is_zero() {
            let cached = Cached {
                token,
                hash,
                key: key.clone(),
            };
            cache.insert(Arc::from(text), Entry { cached, ttl });
        }
        key
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
        let cache = TokenCache::new(10, Duration::from_millis(600), true);
        let now = 1_000;
        cache.insert(b"t1", [1; 32], token(json!({"sub": "no exp"})), now);
        cache.insert(b"t2", [2; 32], token(json!({"exp": now + 3600})), now);
        cache.insert(b"t3", [3; 32], token(json!({"exp": now})), now);
        let t1 = cache.get(b"t1").unwrap();
        assert_eq!(
            (t1.token.claims()["sub"].as_str(), t1.hash),
            (Some("no exp"), [1; 32])
        );
        assert_eq!(cache.get(b"t2").map(|e| e.hash), Some([2; 32]));
        assert!(cache.get(b"t3").is_none(), "already expired: not cached");
        assert!(
            cache.get(b"t").is_none() && cache.get(b"t1 ").is_none(),
            "exact text only"
        );
        std::thread::sleep(Duration::from_millis(900));
        assert!(cache.get(b"t1").is_none());
        assert!(cache.get(b"t2").is_none());
    }

    /// A refused token is remembered by hash for `refused_ttl` on the layer's clock, then
    /// forgotten; nothing is remembered when the TTL or the capacity is zero.
    #[test]
    fn refused_tokens_are_remembered_briefly() {
        let cache =
            TokenCache::with_refused_ttl(10, Duration::from_secs(60), true, Duration::from_secs(5));
        cache.insert_refused([1; 32], "bad signature".into(), 1_000);
        assert_eq!(
            cache.refused(&[1; 32], 1_000).as_deref(),
            Some("bad signature")
        );
        assert_eq!(
            cache.refused(&[1; 32], 5_999).as_deref(),
            Some("bad signature")
        );
        assert_eq!(cache.refused(&[1; 32], 6_000), None);
        assert_eq!(cache.refused(&[2; 32], 1_000), None);
        for off in [
            TokenCache::with_refused_ttl(10, Duration::from_secs(60), true, Duration::ZERO),
            TokenCache::with_refused_ttl(0, Duration::from_secs(60), true, Duration::from_secs(5)),
        ] {
            off.insert_refused([1; 32], "x".into(), 0);
            assert_eq!(off.refused(&[1; 32], 0), None);
        }
    }

    #[test]
    fn disabled_cache_and_debug() {
        let off = TokenCache::new(0, Duration::from_secs(60), true);
        off.insert(b"t", [1; 32], token(json!({})), 0);
        assert!(off.get(b"t").is_none());
        assert_eq!(
            format!("{off:?}"),
            "TokenCache { enabled: false, max_ttl: 60s }"
        );
        assert_eq!(
            format!("{:?}", TokenCache::new(1, Duration::from_secs(5), true)),
            "TokenCache { enabled: true, max_ttl: 5s }"
        );
    }
    /// The slot answers only for the exact header text it was given, keeps the first key,
    /// and is shared by every hit on the entry.
    #[test]
    fn key_slot_is_set_once_and_matches_exact_text() {
        use crate::proof::algorithm::Algorithm;
        use crate::proof::key::VerifyingKey;
        use crate::proof::thumbprint::Thumbprint;
        let known = |seed: u8| {
            let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
            Arc::new(KnownKey {
                alg: Algorithm::EdDSA,
                thumbprint: Thumbprint::from_bytes([seed; 32]),
                key: VerifyingKey::Ed25519(signing.verifying_key()),
            })
        };
        let cache = TokenCache::new(10, Duration::from_secs(60), true);
        let slot = cache.insert(b"t", [1; 32], token(json!({})), 0);
        assert!(slot.get(b"h1").is_none());
        slot.remember(b"h1", &known(1));
        slot.remember(b"h2", &known(2));
        let hit = cache.get(b"t").unwrap();
        let tp = |k: Option<&Arc<KnownKey>>| k.map(|k| k.thumbprint);
        assert_eq!(
            tp(hit.key.get(b"h1")),
            Some(Thumbprint::from_bytes([1; 32]))
        );
        assert!(hit.key.get(b"h2").is_none(), "the first key stays");
        assert!(hit.key.get(b"h").is_none() && hit.key.get(b"h1 ").is_none());

        // A cache told not to remember keys hands out slots that stay empty.
        let forgetful = TokenCache::new(10, Duration::from_secs(60), false);
        let slot = forgetful.insert(b"t", [1; 32], token(json!({})), 0);
        slot.remember(b"h1", &known(1));
        assert!(slot.get(b"h1").is_none());
        assert!(forgetful.get(b"t").unwrap().key.get(b"h1").is_none());
    }
}
