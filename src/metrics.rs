//! Counters of the layer's outcomes, for an application to read or export.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind};

/// Live counters, shared by every clone of a layer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted_dpop: AtomicU64,
    accepted_bearer: AtomicU64,
    missing_credentials: AtomicU64,
    invalid_request: AtomicU64,
    invalid_proof: AtomicU64,
    invalid_token: AtomicU64,
    use_nonce: AtomicU64,
    key_quota_exceeded: AtomicU64,
    unavailable: AtomicU64,
}

impl Counters {
    pub(crate) fn accepted(&self, bearer: bool) {
        let c = if bearer {
            &self.accepted_bearer
        } else {
            &self.accepted_dpop
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, error: &Error) {
        let c = match error.kind() {
            ErrorKind::MissingCredentials => &self.missing_credentials,
            ErrorKind::KeyQuotaExceeded => &self.key_quota_exceeded,
            ErrorKind::Unavailable => &self.unavailable,
            _ => match error.error_code() {
                Some("invalid_request") => &self.invalid_request,
                Some("use_dpop_nonce") => &self.use_nonce,
                Some("invalid_token") => &self.invalid_token,
                _ => &self.invalid_proof,
            },
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Metrics {
            accepted_dpop: get(&self.accepted_dpop),
            accepted_bearer: get(&self.accepted_bearer),
            missing_credentials: get(&self.missing_credentials),
            invalid_request: get(&self.invalid_request),
            invalid_proof: get(&self.invalid_proof),
            invalid_token: get(&self.invalid_token),
            use_nonce: get(&self.use_nonce),
            key_quota_exceeded: get(&self.key_quota_exceeded),
            unavailable: get(&self.unavailable),
        }
    }
}

/// A snapshot of a layer's counters since it was built (see
/// [`DpopLayer::metrics`](crate::DpopLayer::metrics)). Field names match the `outcome` and
/// `error` fields of the layer's tracing events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Requests accepted with a DPoP proof.
    pub accepted_dpop: u64,
    /// Requests accepted with a Bearer token (only when Bearer is allowed).
    pub accepted_bearer: u64,
    /// 401 without credentials (bare challenge).
    pub missing_credentials: u64,
    /// 400 `invalid_request`.
    pub invalid_request: u64,
    /// 401 `invalid_dpop_proof`.
    pub invalid_proof: u64,
    /// 401 `invalid_token`.
    pub invalid_token: u64,
    /// 401 `use_dpop_nonce`.
    pub use_nonce: u64,
    /// 429: the proof's key was over its replay-entry quota.
    pub key_quota_exceeded: u64,
    /// 503: a backend could not answer.
    pub unavailable: u64,
}

impl Metrics {
    /// Every rejected request.
    #[must_use]
    pub fn rejected(&self) -> u64 {
        self.missing_credentials
            + self.invalid_request
            + self.invalid_proof
            + self.invalid_token
            + self.use_nonce
            + self.key_quota_exceeded
            + self.unavailable
    }
}
