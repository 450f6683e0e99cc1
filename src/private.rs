//! Entry points into crate internals for the benchmarks, the fuzz targets and the property
//! tests. Not a public API: no stability, hidden from the docs, behind `test-util`.

#![allow(missing_docs, clippy::missing_errors_doc)]

use std::sync::Arc;
use std::time::Duration;

use crate::proof::algorithm::Algorithm;
use crate::proof::jwk::{PublicJwk, RawJwk};
use crate::proof::key::VerifyingKey;
use crate::token::cache::TokenCache;
use crate::token::AccessToken;

/// A parsed public JWK, owning its JSON.
#[derive(Debug)]
pub struct Jwk(String);

impl Jwk {
    pub fn new(json: &str) -> Self {
        Self(json.to_owned())
    }

    fn with<R>(&self, f: impl FnOnce(&PublicJwk<'_>) -> R) -> Option<R> {
        let raw: RawJwk<'_> = serde_json::from_str(&self.0).ok()?;
        let jwk = PublicJwk::from_raw(raw).ok()?;
        Some(f(&jwk))
    }
}

/// A key imported the way the layer does it, ready to verify.
#[derive(Debug)]
pub struct Key(VerifyingKey);

impl Key {
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify(message, signature)
    }
}

/// Parses the JWK JSON and imports it the way the layer does.
pub fn import(alg: Algorithm, jwk: &Jwk) -> Option<Key> {
    jwk.with(|j| VerifyingKey::import(alg, j).ok().map(Key))
        .flatten()
}

/// Parses the JWK JSON and computes its thumbprint the way the layer does.
pub fn thumbprint(jwk: &Jwk) -> Option<crate::proof::thumbprint::Thumbprint> {
    jwk.with(crate::proof::thumbprint::thumbprint)
}

/// The validated-token cache, as the layer uses it.
#[derive(Debug)]
pub struct Tokens(TokenCache);

impl Tokens {
    pub fn new() -> Self {
        Self(TokenCache::new(10_000, Duration::from_secs(300), true))
    }

    pub fn insert(&self, text: &[u8], hash: [u8; 32], token: AccessToken, now: u64) {
        let _slot = self.0.insert(text, hash, Arc::new(token), now);
    }

    pub fn get(&self, text: &[u8]) -> Option<(Arc<AccessToken>, [u8; 32])> {
        self.0.get(text).map(|c| (c.token, c.hash))
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Self::new()
    }
}

/// Server nonces as the layer issues and checks them.
#[derive(Debug)]
pub struct Nonces(crate::nonce::Nonces);

impl Nonces {
    /// Nonces made with these secret bytes, accepted for `lifetime`.
    pub fn new(secret: &[u8], lifetime: Duration) -> Option<Self> {
        let secret = crate::nonce::NonceSecret::from_bytes(secret).ok()?;
        crate::nonce::Nonces::new(vec![secret], lifetime)
            .ok()
            .map(Self)
    }

    /// A fresh nonce at `now`.
    pub fn issue(&self, now: u64) -> String {
        self.0.issue(now)
    }

    /// Checks a nonce the way the layer does; `Some(issued_at)` when valid.
    pub fn check(&self, nonce: &str, now: u64) -> Option<u64> {
        self.0.check(nonce, now).ok()
    }
}

/// `htu` normalization (RFC 3986), as the layer does it; `None` when not a valid `htu`.
pub fn normalize(uri: &str) -> Option<String> {
    crate::proof::htu::normalize(uri)
        .ok()
        .map(|c| c.into_owned())
}

/// Request-path normalization, as the layer does it.
pub fn normalize_path(path: &str) -> Option<String> {
    crate::proof::htu::normalize_path(path)
        .ok()
        .map(|c| c.into_owned())
}

/// Public origins, parsed as the builder does.
#[derive(Debug)]
pub struct Origins(Vec<crate::proof::htu::PublicOrigin>);

impl Origins {
    /// Parses each origin; `None` if one is not valid.
    pub fn parse(origins: &[&str]) -> Option<Self> {
        origins
            .iter()
            .map(|o| o.parse().ok())
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    /// The normalized text of each origin.
    pub fn as_strs(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(crate::proof::htu::PublicOrigin::as_str)
            .collect()
    }

    /// `true` when `htu` names one of these origins and `path`, as the layer decides.
    pub fn matches(&self, htu: &str, path: &str) -> bool {
        crate::proof::htu::matches_any(&self.0, htu, path)
    }
}

/// The memory store's insert without the trait's boxed future, as the layer calls it.
///
/// # Errors
/// [`ReplayError::Full`](crate::replay::ReplayError::Full) when the store is full.
pub fn memory_insert(
    store: &crate::replay::MemoryReplayStore,
    key: crate::replay::ReplayKey,
    ttl: Duration,
) -> Result<crate::replay::Seen, crate::replay::ReplayError> {
    store.check_and_insert_sync(key, ttl)
}

/// The Redis key the Redis replay store uses for a proof with this thumbprint and `jti`.
#[cfg(feature = "redis")]
pub fn redis_key(prefix: &str, thumbprint: &[u8; 32], jti: &str) -> String {
    let key = crate::replay::ReplayKey::new(
        &crate::proof::thumbprint::Thumbprint::from_bytes(*thumbprint),
        jti,
    );
    crate::replay::redis::redis_key(prefix, &key)
}

/// The `jwks_uri` the validator would take from this metadata document for `issuer` (OpenID
/// Connect discovery, `https:` only), or `None` when it would refuse the document.
#[cfg(feature = "jwks-fetch")]
pub fn discovery_jwks_uri(issuer: &str, body: &[u8]) -> Option<String> {
    use crate::token::jwt::discovery::{Discovered, MetadataDocument};
    let http = crate::http_fetch::HttpFetch::new(Duration::from_secs(1), 3, false).ok()?;
    let discovered = Discovered::new(issuer, MetadataDocument::OpenIdConfiguration, &http).ok()?;
    // What the fetch hands the reader: a body that is UTF-8 (`http_fetch::read_body`).
    std::str::from_utf8(body).ok()?;
    discovered.read(body, &http).ok().map(|url| url.to_string())
}
