//! Adapters that verify one DPoP proof with each peer crate, for side-by-side benches.
//!
//! Include with `mod peers;`. Each peer is prepared once (`new()`), then `verify(&Request)` is
//! called per proof and returns `true` when the peer accepts it. `verify` is synchronous: both
//! peers expose `async` APIs, so each peer struct owns a current-thread tokio runtime (built in
//! `new()`) and blocks on it. Neither peer's futures ever suspend here (no I/O; the replay
//! stores below answer at once), so this costs one `block_on` of a ready future per call.
//!
//! | | `dpop-verifier` 4.4 | `huskarl-resource-server` 0.11 |
//! |---|---|---|
//! | signature, `typ`, embedded `jwk` | peer | peer |
//! | `htm`, `htu` | peer (`htu` normalized via `url`) | adapter, plain string `==` (huskarl's own `htu` comparison is crate-private) |
//! | `iat` window | peer: 60 s max age, 5 s future skew | peer: 60 s max age, 5 s leeway |
//! | `ath` | peer | adapter, with huskarl's public `hash_access_token_for_dpop` |
//! | `cnf.jkt` binding | adapter: `==` against the thumbprint the peer computed | adapter: `==` against the thumbprint the peer computed |
//! | clock | NOT injectable: reads the real clock (`Request::now` is ignored) | injectable: `validate_at(proof, now)` with `Request::now` |
//! | replay (`jti`) | required `ReplayStore`; the crate ships none, so an in-memory `HashSet` here | optional `JtiUniquenessChecker`; the crate ships none, so an in-memory `HashSet` here |
//!
//! With the replay store in place (`new()`), a proof is accepted once only: feed each peer
//! distinct proofs (or use `new_without_replay()` to time the same proof repeatedly).
//! Because `dpop-verifier` reads the real clock, its proofs must carry a real current `iat`
//! (within 60 s of when `verify` runs).

#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Mutex;

/// What a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The compact JWS from the `DPoP` header.
    pub proof: &'a str,
    /// The request method (`htm`).
    pub method: &'a str,
    /// The request's absolute URL (`htu`), e.g. `https://api.example.com/api/me`.
    pub url: &'a str,
    /// The access token (`ath` is `base64url(SHA-256(access_token))`).
    pub access_token: &'a str,
    /// The expected `cnf.jkt` from the (already validated) access token.
    pub jkt: &'a str,
    /// Unix seconds, equal to the proof's `iat`.
    pub now: u64,
}

/// Proof freshness window used for both peers (tower-dpop's defaults).
const MAX_AGE_SECS: u64 = 60;
/// Future-`iat` tolerance used for both peers (tower-dpop's default).
const FUTURE_SKEW_SECS: u64 = 5;

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread tokio runtime builds")
}

// ---------------------------------------------------------------------------------------------
// dpop-verifier 4.4
// ---------------------------------------------------------------------------------------------

/// In-memory replay store for `dpop-verifier` (the crate defines the trait but ships no store).
#[derive(Debug, Default)]
struct DvReplayStore {
    /// `None`: accept every jti (for timing the same proof repeatedly).
    seen: Option<HashSet<[u8; 32]>>,
}

#[async_trait::async_trait]
impl dpop_verifier::ReplayStore for DvReplayStore {
    async fn insert_once(
        &mut self,
        jti_hash: [u8; 32],
        _ctx: dpop_verifier::ReplayContext<'_>,
    ) -> Result<bool, dpop_verifier::DpopError> {
        Ok(match &mut self.seen {
            Some(seen) => seen.insert(jti_hash),
            None => true,
        })
    }
}

/// `dpop-verifier` 4.4 (`DpopVerifier::verify`), with feature `eddsa`.
pub struct DpopVerifierPeer {
    verifier: dpop_verifier::DpopVerifier,
    store: Mutex<DvReplayStore>,
    rt: tokio::runtime::Runtime,
}

impl DpopVerifierPeer {
    /// A verifier with a 60 s max age, 5 s future skew, no nonce, and an in-memory replay store.
    #[must_use]
    pub fn new() -> Self {
        Self::build(true)
    }

    /// As [`new`](Self::new) but the replay store accepts every `jti` (same proof, many times).
    #[must_use]
    pub fn new_without_replay() -> Self {
        Self::build(false)
    }

    fn build(replay: bool) -> Self {
        let verifier = dpop_verifier::DpopVerifier::new()
            .with_max_age_seconds(MAX_AGE_SECS as i64)
            .with_future_skew_seconds(FUTURE_SKEW_SECS as i64);
        Self {
            verifier,
            store: Mutex::new(DvReplayStore {
                seen: replay.then(HashSet::new),
            }),
            rt: current_thread_runtime(),
        }
    }

    /// Algorithms this peer verifies: `ES256`, and `EdDSA` (Ed25519 keys) with feature `eddsa`.
    /// The fully-specified `Ed25519` name (RFC 9864) is not recognized.
    #[must_use]
    pub fn supports(alg: &str) -> bool {
        matches!(alg, "ES256" | "EdDSA")
    }

    /// Full check: signature, `typ`, `htm`, `htu`, `iat` window (against the REAL clock;
    /// `req.now` is ignored), `ath`, `jti` replay, then `cnf.jkt` against the peer's thumbprint.
    #[must_use]
    pub fn verify(&self, req: &Request) -> bool {
        let mut store = self.store.lock().expect("replay store lock");
        let verified = self.rt.block_on(self.verifier.verify(
            &mut *store,
            req.proof,
            req.url,
            req.method,
            Some(req.access_token),
        ));
        // The peer computes the proof key's RFC 7638 thumbprint but has no cnf.jkt input:
        // the binding is the caller's comparison.
        matches!(verified, Ok(v) if v.jkt == req.jkt)
    }
}

impl Default for DpopVerifierPeer {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------------------------
// huskarl-resource-server 0.11
// ---------------------------------------------------------------------------------------------

use huskarl_resource_server::core::platform::MaybeSendBoxFuture;
use huskarl_resource_server::core::Error as HuskarlError;

/// In-memory `jti` checker for huskarl (the crate defines the trait but ships no store).
#[derive(Debug, Default)]
struct HuskarlJtiStore {
    seen: Mutex<HashSet<String>>,
}

impl huskarl_resource_server::core::jwt::JtiUniquenessChecker for HuskarlJtiStore {
    fn check_and_mark_seen(&self, jti: &str) -> MaybeSendBoxFuture<'_, Result<bool, HuskarlError>> {
        // `true` means "seen before" (a replay).
        let seen_before = !self
            .seen
            .lock()
            .expect("jti store lock")
            .insert(jti.to_owned());
        Box::pin(std::future::ready(Ok(seen_before)))
    }
}

/// `huskarl-resource-server` 0.11 (`validator::dpop_proof::DPoPProofValidator::validate_at`),
/// with the `htm`/`htu`/`ath`/`cnf.jkt` comparisons of its crate-private binding checker
/// (`validator::binding::verify_claims_and_binding`) redone here on the validated claims.
pub struct HuskarlPeer {
    validator: huskarl_resource_server::validator::dpop_proof::DPoPProofValidator,
    rt: tokio::runtime::Runtime,
}

impl HuskarlPeer {
    /// The native verifier platform, 60 s max proof age, 5 s leeway, any asymmetric alg
    /// (the peer's default), and an in-memory `jti` checker (which also makes `jti` required).
    #[must_use]
    pub fn new() -> Self {
        Self::build(true)
    }

    /// As [`new`](Self::new) but with no `jti` checker (the peer's default): no replay check.
    #[must_use]
    pub fn new_without_replay() -> Self {
        Self::build(false)
    }

    fn build(replay: bool) -> Self {
        use huskarl_resource_server::validator::dpop_proof::DPoPProofValidator;
        use huskarl_resource_server::DefaultJwsVerifierPlatform;
        use std::time::Duration;
        let checker: Option<
            std::sync::Arc<dyn huskarl_resource_server::core::jwt::JtiUniquenessChecker>,
        > = replay.then(|| std::sync::Arc::new(HuskarlJtiStore::default()) as _);
        let validator = DPoPProofValidator::builder()
            .jws_verifier_platform(DefaultJwsVerifierPlatform::default().into())
            .max_proof_age(Duration::from_secs(MAX_AGE_SECS))
            .clock_leeway(Duration::from_secs(FUTURE_SKEW_SECS))
            .maybe_jti_checker(checker)
            .build();
        Self {
            validator,
            rt: current_thread_runtime(),
        }
    }

    /// Algorithms this peer verifies (huskarl-crypto-native): ES256, ES384, RS256/384/512,
    /// PS256/384/512, and Ed25519 keys under either `EdDSA` or `Ed25519`.
    #[must_use]
    pub fn supports(alg: &str) -> bool {
        matches!(
            alg,
            "ES256" | "ES384" | "EdDSA" | "Ed25519" | "PS256" | "RS256"
        )
    }

    /// Full check: signature, `typ`, `jwk` (no private parts, no `x5u`), `iat` window against
    /// `req.now` (injected), `jti` replay, then `htm`, `htu`, `ath` and `cnf.jkt`.
    #[must_use]
    pub fn verify(&self, req: &Request) -> bool {
        let Ok(now) = huskarl_resource_server::core::time::timestamp_from_unix_parts(
            i64::try_from(req.now).unwrap_or(i64::MAX),
            0,
        ) else {
            return false;
        };
        let Ok(proof) = self.rt.block_on(self.validator.validate_at(req.proof, now)) else {
            return false;
        };
        // As huskarl's binding check: htm, htu and ath are required, then compared, then the
        // key thumbprint must equal cnf.jkt. (huskarl compares htu after RFC 3986 normalization
        // with fluent-uri, which it keeps private; an exact string match here is cheaper.)
        let (Some(htm), Some(htu), Some(ath)) = (&proof.htm, &proof.htu, &proof.ath) else {
            return false;
        };
        let expected_ath =
            huskarl_resource_server::core::dpop::hash_access_token_for_dpop(req.access_token);
        htm == req.method
            && htu == req.url
            && *ath == expected_ath
            && proof.thumbprint.as_deref() == Some(req.jkt)
    }
}

impl Default for HuskarlPeer {
    fn default() -> Self {
        Self::new()
    }
}
