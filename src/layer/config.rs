//! The validated configuration the pipeline runs with: [`DpopConfig`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::layer::proxy::ProxyTrust;
use crate::nonce::{NoncePolicy, Nonces};
use crate::proof::algorithm::Algorithm;
use crate::proof::htu::PublicOrigin;
use crate::proof::key::KeyCache;
use crate::replay::quota::KeyQuota;
use crate::replay::Backend;
use crate::token::cache::TokenCache;
use crate::token::TokenValidator;

/// The validated configuration the verification pipeline runs with. Built by
/// [`DpopLayer::builder`](crate::DpopLayer::builder); shared by every clone of the layer.
pub struct DpopConfig {
    pub(crate) origins: Vec<PublicOrigin>,
    pub(crate) algorithms: Vec<Algorithm>,
    /// The `algs` challenge parameter, computed once.
    pub(crate) algs_param: String,
    pub(crate) max_age: Duration,
    pub(crate) future_leeway: Duration,
    pub(crate) token_leeway: Duration,
    pub(crate) max_proof_len: usize,
    pub(crate) max_token_len: usize,
    pub(crate) validator: Arc<dyn TokenValidator>,
    pub(crate) tokens: TokenCache,
    pub(crate) replay: Backend,
    /// How long every replay entry lives: `max_age + future_leeway + clock_skew_allowance`.
    pub(crate) replay_ttl: Duration,
    /// Live replay entries per proof key.
    pub(crate) quota: KeyQuota,
    pub(crate) keys: KeyCache,
    /// The capacities the key and token caches were built with.
    pub(crate) key_cache_capacity: u64,
    pub(crate) token_cache_capacity: u64,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) nonce_policy: NoncePolicy,
    /// `Some` whenever the policy is not `Off`.
    pub(crate) nonces: Option<Nonces>,
    /// Bearer tokens without `cnf.jkt` are accepted too.
    pub(crate) allow_bearer: bool,
    /// RFC 9728 metadata URL, sent as `resource_metadata` in challenges.
    pub(crate) resource_metadata: Option<String>,
    pub(crate) counters: crate::metrics::Counters,
    /// The proxies whose forwarded origin is read, and the header family they set.
    pub(crate) proxy: Option<ProxyTrust>,
    pub(crate) allow_anonymous: bool,
    pub(crate) rejection_body: Option<Arc<RejectionBody>>,
    /// The level rejections are logged at (503s are always WARN, no credentials DEBUG).
    pub(crate) rejection_level: tracing::Level,
}

/// Makes the body of a rejection response: `(content type, body)`. The status and the
/// `WWW-Authenticate` / `DPoP-Nonce` headers are set by the layer whatever it returns.
pub(crate) type RejectionBody =
    dyn Fn(&crate::Error) -> (http::HeaderValue, bytes::Bytes) + Send + Sync;

impl fmt::Debug for DpopConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopConfig")
            .field("origins", &self.origins)
            .field("algorithms", &self.algorithms)
            .field("max_age", &self.max_age)
            .field("future_leeway", &self.future_leeway)
            .field("token_leeway", &self.token_leeway)
            .field("max_proof_len", &self.max_proof_len)
            .field("max_token_len", &self.max_token_len)
            .field("validator", &self.validator)
            .field("replay", &self.replay)
            .field("replay_ttl", &self.replay_ttl)
            .field("replay_key_quota", &self.quota.limit())
            .field("key_cache_capacity", &self.key_cache_capacity)
            .field("token_cache_capacity", &self.token_cache_capacity)
            .field("clock", &self.clock)
            .field("nonce_policy", &self.nonce_policy)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl DpopConfig {
    /// `true` when Bearer tokens without `cnf.jkt` are accepted as well as DPoP.
    #[must_use]
    pub fn allows_bearer(&self) -> bool {
        self.allow_bearer
    }

    /// The nonce this request must carry is required by the policy.
    pub(crate) fn nonce_required(
        &self,
        method: &http::Method,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Option<&Nonces> {
        self.nonces
            .as_ref()
            .filter(|_| self.nonce_policy.applies(method, path, headers))
    }

    /// The public origins proofs are checked against.
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.origins.iter().map(PublicOrigin::as_str)
    }

    /// The accepted proof algorithms, in the order of the `algs` challenge parameter.
    #[must_use]
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// How old a proof may be (its `iat` at most this far in the past).
    #[must_use]
    pub fn max_proof_age(&self) -> Duration {
        self.max_age
    }

    /// How far in the future a proof's `iat` may be.
    #[must_use]
    pub fn future_leeway(&self) -> Duration {
        self.future_leeway
    }

    /// How long each replay entry lives: `max_proof_age + future_leeway +
    /// clock_skew_allowance`, the longest any instance whose clock is within the allowance
    /// of this one's could still accept the proof.
    #[must_use]
    pub fn replay_window(&self) -> Duration {
        self.replay_ttl
    }

    /// How many live replay entries one proof key may hold.
    #[must_use]
    pub fn replay_key_quota(&self) -> u64 {
        self.quota.limit()
    }

    /// How many verified proof keys are kept (0: none).
    #[must_use]
    pub fn key_cache_capacity(&self) -> u64 {
        self.key_cache_capacity
    }

    /// How many validated access tokens are kept (0: none).
    #[must_use]
    pub fn token_cache_capacity(&self) -> u64 {
        self.token_cache_capacity
    }
}
