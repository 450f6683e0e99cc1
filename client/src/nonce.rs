//! Server nonces (RFC 9449 sections 8 and 9): remembered per origin, bounded in size and
//! number, and the `use_dpop_nonce` challenge.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use http::{HeaderMap, HeaderValue, StatusCode};

/// The `DPoP-Nonce` response header.
pub const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// The longest nonce remembered by default, in bytes; a longer one is ignored.
pub const DEFAULT_MAX_NONCE_LEN: usize = 512;

/// How many origins' nonces are remembered by default; past it the least recently updated
/// origin is forgotten.
pub const DEFAULT_MAX_ORIGINS: usize = 256;

/// The longest `WWW-Authenticate` field value read for a challenge, in bytes.
const MAX_CHALLENGE_LEN: usize = 4096;

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

/// Whether a resource server's response is the `use_dpop_nonce` challenge: 401 with a
/// `WWW-Authenticate` `DPoP` challenge whose `error` is `use_dpop_nonce`.
#[must_use]
pub fn is_use_dpop_nonce(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        && headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .any(challenge_asks_for_nonce)
}

fn challenge_asks_for_nonce(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_CHALLENGE_LEN {
        return false;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut in_dpop = false;
    for item in Challenges::new(text) {
        match item {
            Item::Scheme(s) => in_dpop = s.eq_ignore_ascii_case("DPoP"),
            Item::Param(name, value) => {
                if in_dpop && name.eq_ignore_ascii_case("error") && value == "use_dpop_nonce" {
                    return true;
                }
            }
        }
    }
    false
}

/// The schemes and parameters of a `WWW-Authenticate` value (RFC 9110 section 11.6.1).
/// Token68 credentials and anything malformed end the walk.
#[derive(Debug, PartialEq)]
enum Item<'a> {
    Scheme(&'a str),
    Param(&'a str, String),
}

struct Challenges<'a> {
    rest: &'a str,
}

impl<'a> Challenges<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: text }
    }

    fn skip_separators(&mut self) {
        self.rest = self.rest.trim_start_matches([',', ' ', '\t']);
    }

    fn token(&mut self) -> Option<&'a str> {
        let end = self
            .rest
            .find(|c: char| !is_tchar(c))
            .unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at_checked(end)?;
        self.rest = rest;
        (!token.is_empty()).then_some(token)
    }

    fn value(&mut self) -> Option<String> {
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.rest = quoted.get(i + 1..)?;
                        return Some(out);
                    }
                    '\\' => out.push(chars.next()?.1),
                    c => out.push(c),
                }
            }
            None
        } else {
            self.token().map(str::to_owned)
        }
    }
}

impl<'a> Iterator for Challenges<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        self.skip_separators();
        let token = self.token()?;
        let after = self.rest.trim_start_matches([' ', '\t']);
        if let Some(value) = after.strip_prefix('=') {
            self.rest = value.trim_start_matches([' ', '\t']);
            let value = self.value()?;
            Some(Item::Param(token, value))
        } else {
            Some(Item::Scheme(token))
        }
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    /// Only a `DPoP` challenge with `error="use_dpop_nonce"` on a 401 asks for a nonce.
    #[test]
    fn use_dpop_nonce_table() {
        let cases: &[(&str, StatusCode, &str, bool)] = &[
            (
                "quoted",
                StatusCode::UNAUTHORIZED,
                r#"DPoP error="use_dpop_nonce", error_description="x""#,
                true,
            ),
            (
                "token form",
                StatusCode::UNAUTHORIZED,
                "DPoP error=use_dpop_nonce",
                true,
            ),
            (
                "second challenge",
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="a", DPoP algs="ES256", error="use_dpop_nonce""#,
                true,
            ),
            (
                "lower-case scheme",
                StatusCode::UNAUTHORIZED,
                r#"dpop error="use_dpop_nonce""#,
                true,
            ),
            (
                "other error",
                StatusCode::UNAUTHORIZED,
                r#"DPoP error="invalid_token""#,
                false,
            ),
            (
                "bearer's error",
                StatusCode::UNAUTHORIZED,
                r#"Bearer error="use_dpop_nonce", DPoP algs="ES256""#,
                false,
            ),
            (
                "in a description",
                StatusCode::UNAUTHORIZED,
                r#"DPoP error_description="error=use_dpop_nonce""#,
                false,
            ),
            (
                "not 401",
                StatusCode::BAD_REQUEST,
                r#"DPoP error="use_dpop_nonce""#,
                false,
            ),
            (
                "unterminated",
                StatusCode::UNAUTHORIZED,
                r#"DPoP error="use_dpop_nonce"#,
                false,
            ),
        ];
        for (name, status, value, expected) in cases {
            assert_eq!(
                is_use_dpop_nonce(*status, &challenge(value)),
                *expected,
                "{name}"
            );
        }
    }

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
