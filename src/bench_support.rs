//! Entry points into crate internals for the benchmarks in `benches/`. Not a public API: no
//! stability, hidden from the docs.

#![allow(missing_docs, clippy::missing_errors_doc)]

use std::sync::Arc;
use std::time::Duration;

use crate::algorithm::Algorithm;
use crate::jwk::{PublicJwk, RawJwk};
use crate::key::VerifyingKey;
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
pub fn thumbprint(jwk: &Jwk) -> Option<crate::thumbprint::Thumbprint> {
    jwk.with(crate::thumbprint::thumbprint)
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

/// Checks a nonce the way the layer does; `Some(issued_at)` when valid.
pub fn check_nonce(nonces: &crate::nonce::Nonces, nonce: &str, now: u64) -> Option<u64> {
    nonces.check(nonce, now).ok()
}
