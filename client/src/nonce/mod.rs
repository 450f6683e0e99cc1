//! Server nonces (RFC 9449 sections 8 and 9): remembered per origin, bounded in size and
//! number, and the `use_dpop_nonce` challenge.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderMap;

mod challenge;

pub use challenge::is_use_dpop_nonce;

/// The `DPoP-Nonce` response header.
pub const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// The longest nonce remembered by default, in bytes; a longer one is ignored.
pub const DEFAULT_MAX_NONCE_LEN: usize = 512;

/// How many origins' nonces are remembered by default; past it the least recently updated
/// origin is forgotten.
pub const DEFAULT_MAX_ORIGINS: usize = 256;

/// The longest origin remembered, in bytes.
const MAX_ORIGIN_LEN: usize = 1024;

#[derive(Debug, Default)]
struct State {
    nonces: HashMap<String, (String, u64)>,
    counter: u64,
}

/// The last nonce each origin gave, shared by clones (give one cache to several clients to
/// share what they learn). Bounded: a nonce longer than its limit, or not made of the
/// characters RFC 9449 allows (`%x21 / %x23-5B / %x5D-7E`), is ignored; past the origin
/// limit the least recently updated origin is forgotten.
///
/// ```
/// use tower_dpop_client::NonceCache;
///
/// let cache = NonceCache::new();
/// assert!(cache.remember("https://api.example.com", "n-1"));
/// assert_eq!(cache.get("https://api.example.com").as_deref(), Some("n-1"));
/// assert!(!cache.remember("https://api.example.com", "not a nonce"), "space");
/// ```
#[derive(Clone)]
pub struct NonceCache {
    state: Arc<Mutex<State>>,
    max_len: usize,
    max_origins: usize,
}

impl Default for NonceCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for NonceCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceCache")
            .field("origins", &self.len())
            .field("max_len", &self.max_len)
            .field("max_origins", &self.max_origins)
            .finish()
    }
}

impl NonceCache {
    /// An empty cache with the default limits ([`DEFAULT_MAX_NONCE_LEN`],
    /// [`DEFAULT_MAX_ORIGINS`]).
    #[must_use]
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_NONCE_LEN, DEFAULT_MAX_ORIGINS)
    }

    /// An empty cache keeping nonces of at most `max_len` bytes for at most `max_origins`
    /// origins (each at least 1).
    #[must_use]
    pub fn with_limits(max_len: usize, max_origins: usize) -> Self {
        Self {
            state: Arc::default(),
            max_len: max_len.max(1),
            max_origins: max_origins.max(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The nonce last remembered for `origin`.
    #[must_use]
    pub fn get(&self, origin: &str) -> Option<String> {
        self.state().nonces.get(origin).map(|(n, _)| n.clone())
    }

    /// How many origins have a nonce.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state().nonces.len()
    }

    /// Whether no origin has a nonce.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every nonce.
    pub fn clear(&self) {
        self.state().nonces.clear();
    }

    /// Remembers `nonce` for `origin`; `false` (and nothing stored) when it is empty, too
    /// long or has a character a nonce cannot have.
    pub fn remember(&self, origin: &str, nonce: &str) -> bool {
        if !is_nonce(nonce, self.max_len) || origin.len() > MAX_ORIGIN_LEN {
            return false;
        }
        let mut state = self.state();
        state.counter += 1;
        let stamp = state.counter;
        if !state.nonces.contains_key(origin) && state.nonces.len() >= self.max_origins {
            let oldest = state
                .nonces
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(o, _)| o.clone());
            if let Some(oldest) = oldest {
                state.nonces.remove(&oldest);
            }
        }
        state
            .nonces
            .insert(origin.to_owned(), (nonce.to_owned(), stamp));
        true
    }

    /// Remembers the `DPoP-Nonce` of a response, if it has exactly one valid one; whether it
    /// did.
    pub fn remember_from(&self, origin: &str, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(DPOP_NONCE).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => value
                .to_str()
                .is_ok_and(|nonce| self.remember(origin, nonce)),
            _ => false,
        }
    }
}

/// `1*NQCHAR` of RFC 9449, at most `max_len` bytes.
fn is_nonce(nonce: &str, max_len: usize) -> bool {
    !nonce.is_empty()
        && nonce.len() <= max_len
        && nonce
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// Nonces are checked for size and characters; the cache keeps at most its number of
    /// origins and forgets the least recently updated one.
    #[test]
    fn cache_is_bounded() {
        let cache = NonceCache::with_limits(8, 2);
        assert!(!cache.remember("o1", "123456789"), "too long");
        assert!(!cache.remember("o1", ""), "empty");
        assert!(!cache.remember("o1", "a\"b"), "quote");
        assert!(!cache.remember("o1", "a\\b"), "backslash");
        assert!(cache.is_empty());
        assert!(cache.remember("o1", "12345678"));
        assert!(cache.remember("o2", "b"));
        assert!(cache.remember("o1", "a"), "update o1: o2 is now the oldest");
        assert!(cache.remember("o3", "c"));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("o2"), None);
        assert_eq!(cache.get("o1").as_deref(), Some("a"));
        assert_eq!(cache.get("o3").as_deref(), Some("c"));
    }

    /// Two `DPoP-Nonce` fields are ambiguous: neither is kept.
    #[test]
    fn one_nonce_field_only() {
        let cache = NonceCache::new();
        let mut h = HeaderMap::new();
        h.append(DPOP_NONCE, HeaderValue::from_static("a"));
        h.append(DPOP_NONCE, HeaderValue::from_static("b"));
        assert!(!cache.remember_from("o", &h));
        assert!(cache.is_empty());
    }
}
