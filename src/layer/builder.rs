//! [`DpopLayerBuilder`]: every setting of the layer, checked once by `build`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::config::{DpopConfig, RejectionBody};
use super::proxy::{ForwardedHeader, ProxyTrust};
use super::DpopLayer;
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::nonce::{NoncePolicy, NonceSecret, Nonces};
use crate::proof::algorithm::Algorithm;
use crate::proof::htu::PublicOrigin;
use crate::proof::key::KeyCache;
use crate::replay::quota::KeyQuota;
use crate::replay::{Backend, MemoryReplayStore, ReplayStore};
use crate::token::cache::TokenCache;
use crate::token::TokenValidator;

/// Configures a [`DpopLayer`]. Start with [`DpopLayer::builder`].
///
/// One rule for every builder of the crate: a method that takes one value of a list
/// ([`public_origin`](Self::public_origin), [`trusted_proxy`](Self::trusted_proxy),
/// [`nonce_secret`](Self::nonce_secret), `JwtValidatorBuilder::issuer`, `audience`) adds it to the
/// list; a method that takes a whole list ([`algorithms`](Self::algorithms)) or one value
/// replaces what was set before. [`build`](Self::build) checks everything at once and names the
/// setting that is wrong.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`public_origin`](Self::public_origin) | none: required | `htu` is compared with this origin, never with the `Host` header a client controls |
/// | [`token_validator`](Self::token_validator) | none: required | only you know who issues your tokens |
/// | [`algorithms`](Self::algorithms) | [`Algorithm::DEFAULT`] | every asymmetric JWS algorithm in common use |
/// | [`max_proof_age`](Self::max_proof_age) | 60 s | a captured proof is useless after this; long enough for slow networks |
/// | [`future_leeway`](Self::future_leeway) | 5 s | tolerates client clocks slightly ahead; more lets clients pre-generate proofs |
/// | [`token_leeway`](Self::token_leeway) | 0 s | `exp` and `nbf` are taken as written |
/// | [`max_proof_size`](Self::max_proof_size) | 8 KiB | checked before any decoding |
/// | [`max_token_size`](Self::max_token_size) | 16 KiB | checked before any decoding |
/// | [`clock_skew_allowance`](Self::clock_skew_allowance) | 5 s | replay entries outlive the proof on every instance whose clock is within this of this one's |
/// | [`replay_store`](Self::replay_store) | [`MemoryReplayStore`], 1 M entries, on the layer's clock | one instance; use a shared store for a fleet |
/// | [`replay_key_quota`](Self::replay_key_quota) | 1 % of the store's capacity (at least 100), 10 000 for Redis | one client cannot fill the replay store for everyone |
/// | [`key_cache_capacity`](Self::key_cache_capacity) | 10 000 keys | verified proof keys, by the proof header's text (and one per cached token) |
/// | [`token_cache_capacity`](Self::token_cache_capacity) | 10 000 tokens | validated tokens, by their text, until `exp` |
/// | [`token_cache_max_ttl`](Self::token_cache_max_ttl) | 5 min | bounds how long a revoked token stays accepted |
/// | [`refused_token_cache_ttl`](Self::refused_token_cache_ttl) | 5 s | a token refused after an outbound call (introspection) sent again costs a lookup, not another call |
/// | [`clock`](Self::clock) | [`SystemClock`] | inject a [`ManualClock`](crate::clock::ManualClock) in tests |
/// | [`nonce_policy`](Self::nonce_policy) | [`NoncePolicy::Off`] | nonces cost clients a round trip; turn them on to bound proofs by the server's clock |
/// | [`nonce_secret`](Self::nonce_secret) | a random secret per layer | give every instance the same secret(s) so they accept each other's nonces |
/// | [`nonce_lifetime`](Self::nonce_lifetime) | 5 min | a fresh nonce is sent on success once a third of it is left |
/// | [`allow_bearer`](Self::allow_bearer) | false: DPoP only | Bearer lets a stolen token work for anyone; accept it only while clients migrate |
/// | [`resource_metadata`](Self::resource_metadata) | none | RFC 9728 metadata URL advertised in challenges |
/// | [`rejection_log_level`](Self::rejection_log_level) | INFO | a rejection is worth a line; lower it where they are mostly noise |
/// | [`trusted_proxy`](Self::trusted_proxy) | none | forwarding headers are chosen by the sender; trust them only from your proxies |
/// | [`forwarded_header`](Self::forwarded_header) | none: required with `trusted_proxy` | only the family your proxy sets can be trusted; the other one comes from the client |
#[derive(Clone)]
#[must_use]
pub struct DpopLayerBuilder {
    origins: Vec<String>,
    algorithms: Vec<Algorithm>,
    max_age: Duration,
    future_leeway: Duration,
    clock_skew: Duration,
    token_leeway: Duration,
    max_proof_len: usize,
    max_token_len: usize,
    validator: Option<Arc<dyn TokenValidator>>,
    replay: Option<Backend>,
    replay_key_quota: Option<u64>,
    key_cache_capacity: u64,
    token_cache_capacity: u64,
    token_cache_max_ttl: Duration,
    refused_token_ttl: Duration,
    clock: Arc<dyn Clock>,
    nonce_policy: NoncePolicy,
    nonce_secrets: Vec<NonceSecret>,
    nonce_lifetime: Duration,
    allow_bearer: bool,
    resource_metadata: Option<String>,
    rejection_body: Option<Arc<RejectionBody>>,
    rejection_level: tracing::Level,
    trusted_proxies: Vec<String>,
    forwarded_header: Option<ForwardedHeader>,
    allow_anonymous: bool,
}

impl fmt::Debug for DpopLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopLayerBuilder")
            .field("origins", &self.origins)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl Default for DpopLayerBuilder {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            algorithms: Algorithm::DEFAULT.to_vec(),
            max_age: Duration::from_secs(60),
            future_leeway: Duration::from_secs(5),
            clock_skew: Duration::from_secs(5),
            token_leeway: Duration::ZERO,
            max_proof_len: 8 * 1024,
            max_token_len: 16 * 1024,
            validator: None,
            replay: None,
            replay_key_quota: None,
            key_cache_capacity: 10_000,
            token_cache_capacity: 10_000,
            token_cache_max_ttl: Duration::from_secs(300),
            refused_token_ttl: Duration::from_secs(5),
            clock: Arc::new(SystemClock),
            nonce_policy: NoncePolicy::Off,
            nonce_secrets: Vec::new(),
            nonce_lifetime: Duration::from_secs(300),
            allow_bearer: false,
            resource_metadata: None,
            rejection_body: None,
            rejection_level: tracing::Level::INFO,
            trusted_proxies: Vec::new(),
            forwarded_header: None,
            allow_anonymous: false,
        }
    }
}

impl DpopLayerBuilder {
    /// Adds an origin (`scheme://host[:port]`) clients reach this server at. A proof's `htu`
    /// must equal one of them followed by the request path. Call again to add more.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Sets the access-token validator (required), for example a
    /// [`JwtValidator`](crate::token::jwt::JwtValidator).
    pub fn token_validator(mut self, validator: impl TokenValidator) -> Self {
        self.validator = Some(Arc::new(validator));
        self
    }

    /// Sets the accepted proof algorithms (also the order of the `algs` challenge parameter).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Applies what the [FAPI 2.0 Security Profile] (OpenID Foundation, Final, February 2025)
    /// asks of a resource server's DPoP proof checks, in one call:
    ///
    /// | setting | value | FAPI 2.0 Security Profile |
    /// |---|---|---|
    /// | [`algorithms`](Self::algorithms) | [`Algorithm::FAPI2`]: PS256, ES256, EdDSA | §5.4 "Cryptography and secrets": JWTs are created and processed with `PS256`, `ES256` or `EdDSA` (the Ed25519 variant) only |
    /// | [`max_proof_age`](Self::max_proof_age) | 60 s | a proof's `iat` at most 60 s in the past |
    /// | [`future_leeway`](Self::future_leeway) | 10 s | "to accommodate clock offsets", JWTs with an `iat` up to 10 s in the future are accepted |
    ///
    /// Call it first and override after it if you must: a later call of one of these
    /// setters wins. It does not turn on nonces (the profile lets the authorization server
    /// and resource server decide) and does not configure the access-token validator: give a
    /// [`JwtValidator`](crate::token::jwt::JwtValidator) the same list with
    /// `.algorithms(Algorithm::FAPI2.iter().copied())`.
    ///
    /// **Caveat.** `EdDSA` here also admits Ed448 keys (RFC 8037 names both curves under one
    /// `alg`); the profile asks for Ed25519. Clients that follow the profile send Ed25519.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_dpop::{Algorithm, DpopLayer};
    /// # let issuer = tower_dpop::testing::TestIssuer::new();
    /// let layer = DpopLayer::builder()
    ///     .fapi2_security_profile()
    ///     .public_origin("https://api.example.com")
    ///     .token_validator(issuer.validator())
    ///     .build()?;
    /// assert_eq!(layer.config().algorithms(), Algorithm::FAPI2);
    /// assert_eq!(layer.config().max_proof_age(), Duration::from_secs(60));
    /// assert_eq!(layer.config().future_leeway(), Duration::from_secs(10));
    /// # Ok::<(), tower_dpop::ConfigError>(())
    /// ```
    ///
    /// [FAPI 2.0 Security Profile]: https://openid.net/specs/fapi-security-profile-2_0-final.html
    pub fn fapi2_security_profile(self) -> Self {
        self.algorithms(Algorithm::FAPI2.iter().copied())
            .max_proof_age(Duration::from_secs(60))
            .future_leeway(Duration::from_secs(10))
    }

    /// Sets how far in the past a proof's `iat` may be (default 60 s, at most 1 h).
    pub fn max_proof_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Sets how far in the future a proof's `iat` may be (default 5 s, at most 5 min).
    pub fn future_leeway(mut self, leeway: Duration) -> Self {
        self.future_leeway = leeway;
        self
    }

    /// Sets how far apart the clocks of the instances sharing a replay store may be (default
    /// 5 s, at most 5 min). Every replay entry lives `max_proof_age + future_leeway +` this
    /// allowance, so a proof stays refused as a replay on every instance that could still
    /// accept its `iat`. Keep the clocks of a fleet synchronized (NTP) well within it.
    pub fn clock_skew_allowance(mut self, allowance: Duration) -> Self {
        self.clock_skew = allowance;
        self
    }

    /// Sets the tolerance applied to the token's `exp` and `nbf` (default 0, at most 5 min).
    pub fn token_leeway(mut self, leeway: Duration) -> Self {
        self.token_leeway = leeway;
        self
    }

    /// Sets the largest `DPoP` header accepted, in bytes (default 8 KiB, 512 B to 64 KiB).
    pub fn max_proof_size(mut self, bytes: usize) -> Self {
        self.max_proof_len = bytes;
        self
    }

    /// Sets the largest access token accepted, in bytes (default 16 KiB, 256 B to 64 KiB).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// Sets the replay store (default: a [`MemoryReplayStore`] of 1 M entries, measuring
    /// time on the layer's [`clock`](Self::clock)).
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Some(Backend::new(store));
        self
    }

    /// Sets how many live replay entries one proof key may hold (default: 1 % of the store's
    /// [`capacity`](ReplayStore::capacity), at least 100 or the whole capacity if smaller;
    /// 10 000 for a store that does not report one, such as Redis). A key over its quota is
    /// refused with 429 and `Retry-After` until its oldest entry leaves the replay window;
    /// other keys are served. Entries live the [replay window](DpopConfig::replay_window)
    /// (70 s by default), so the default of 10 000 lets one client send about 140 requests
    /// a second. Counted per instance: with a store shared by `n` instances one key may hold
    /// up to `n` times this.
    pub fn replay_key_quota(mut self, entries: u64) -> Self {
        self.replay_key_quota = Some(entries);
        self
    }

    /// Sets how many verified proof keys are kept, by the text of the proof header that carried
    /// them (default 10 000). Each cached token also remembers the key first verified with it.
    /// 0 remembers no key at all: every proof's key is parsed and imported again.
    pub fn key_cache_capacity(mut self, keys: u64) -> Self {
        self.key_cache_capacity = keys;
        self
    }

    /// Sets how many validated tokens are kept (default 10 000; 0 disables the cache). An
    /// entry holds the token's text and parsed claims: about 2–4 KB for a typical 0.5–1 KB
    /// token, at most ~64 KiB for one of `max_token_size` (docs/configuration.md has the
    /// measured figures).
    pub fn token_cache_capacity(mut self, tokens: u64) -> Self {
        self.token_cache_capacity = tokens;
        self
    }

    /// Sets the longest a validated token is cached, whatever its `exp` (default 5 min).
    pub fn token_cache_max_ttl(mut self, ttl: Duration) -> Self {
        self.token_cache_max_ttl = ttl;
        self
    }

    /// Sets how long a token refused by a validator that needed I/O to decide (introspection,
    /// a key-set fetch) is remembered, by its SHA-256 (default 5 s, at most 5 min; zero turns it
    /// off). The same refused token sent again within that time is refused at the cost of one
    /// lookup, not another outbound call. (A refusal answered offline, such as a bad JWT
    /// signature, is not remembered: it costs no more than the lookup would save.) Kept short because
    /// a token refused for a reason that passes (a key the authorization server has just
    /// published, an introspection replica that lags) is refused that long too.
    pub fn refused_token_cache_ttl(mut self, ttl: Duration) -> Self {
        self.refused_token_ttl = ttl;
        self
    }

    /// Sets the time source (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sets when proofs must carry a server nonce (default [`NoncePolicy::Off`]).
    pub fn nonce_policy(mut self, policy: NoncePolicy) -> Self {
        self.nonce_policy = policy;
        self
    }

    /// Adds a nonce secret. The first one added signs new nonces; every one added is accepted,
    /// so rotate by adding the new secret first and keeping the old one until its nonces
    /// expire. Without any, a random secret is made when the layer is built. To rotate without
    /// a restart, see [`DpopLayer::rotate_nonce_secret`].
    pub fn nonce_secret(mut self, secret: NonceSecret) -> Self {
        self.nonce_secrets.push(secret);
        self
    }

    /// Sets how long a nonce is accepted after it was issued (default 5 min, 10 s to 1 h).
    pub fn nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// Also accepts `Authorization: Bearer <token>` for tokens that are not DPoP-bound (default:
    /// DPoP only). A token with `cnf.jkt` is always refused under Bearer (RFC 9449 section
    /// 7.2), and challenges then name both schemes.
    pub fn allow_bearer(mut self, allow: bool) -> Self {
        self.allow_bearer = allow;
        self
    }

    /// Advertises the URL of this resource's RFC 9728 metadata in every challenge
    /// (`resource_metadata="..."`); serve the document with
    /// [`ProtectedResourceMetadata`](crate::metadata::ProtectedResourceMetadata).
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// Lets requests that carry no credentials at all through to the inner service (default:
    /// refused with a bare 401 challenge), for routes that serve anonymous and authenticated
    /// callers: handlers then take `Option<DpopAuth>` or `Option<TokenAuth>`. Requests that do
    /// carry credentials are still checked, and refused when anything is wrong.
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }

    /// Trusts the forwarding headers named by [`forwarded_header`](Self::forwarded_header)
    /// from this proxy address or CIDR network (`10.0.0.0/8`); call again to add more. A request
    /// whose TCP peer is in it must report one of the [`public_origin`](Self::public_origin)s,
    /// and its proof's `htu` must be for that origin (see [`ForwardedHeader`] for every rule). The
    /// peer address comes from axum's `ConnectInfo<SocketAddr>` (serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`); without it nothing is trusted.
    /// Requires `forwarded_header` and at least one `public_origin`.
    pub fn trusted_proxy(mut self, address_or_network: impl Into<String>) -> Self {
        self.trusted_proxies.push(address_or_network.into());
        self
    }

    /// Names the forwarding headers the [`trusted_proxy`](Self::trusted_proxy)s set (required
    /// with them, refused without them): [`ForwardedHeader::Forwarded`] (RFC 7239) or
    /// [`ForwardedHeader::XForwarded`] (`X-Forwarded-Proto` + `X-Forwarded-Host`). The other
    /// family is never read, and a request from a trusted proxy that carries it is refused.
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.forwarded_header = Some(header);
        self
    }

    /// Replaces the JSON body of rejections, e.g. with an RFC 9457 problem document. The
    /// status and the challenge headers the RFCs require are kept.
    ///
    /// ```
    /// use tower_dpop::DpopLayer;
    /// let builder = DpopLayer::builder().rejection_body(|err| {
    ///     let doc = serde_json::json!({ "type": "about:blank", "status": err.status().as_u16(), "detail": err.description() });
    ///     (http::HeaderValue::from_static("application/problem+json"), doc.to_string().into())
    /// });
    /// # let _ = builder;
    /// ```
    pub fn rejection_body(
        mut self,
        body: impl Fn(&crate::Error) -> (http::HeaderValue, bytes::Bytes) + Send + Sync + 'static,
    ) -> Self {
        self.rejection_body = Some(Arc::new(body));
        self
    }

    /// Sets the level rejected requests are logged at (default INFO), e.g. DEBUG for a public
    /// API whose rejections are mostly noise. Requests without credentials are always logged
    /// at DEBUG and requests refused because a backend could not answer (503) at WARN.
    pub fn rejection_log_level(mut self, level: tracing::Level) -> Self {
        self.rejection_level = level;
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first problem: no origin or an invalid one, no token
    /// validator, no algorithm, a window or size outside its bounds, a trusted proxy that is not
    /// an address or network, a trusted proxy without `forwarded_header`, or `forwarded_header`
    /// without a trusted proxy.
    pub fn build(self) -> Result<DpopLayer, ConfigError> {
        self.build_config().map(DpopLayer::from_config)
    }

    pub(crate) fn build_config(self) -> Result<DpopConfig, ConfigError> {
        let proxy = ProxyTrust::from_config(&self.trusted_proxies, self.forwarded_header)?;
        if self.origins.is_empty() {
            return Err(ConfigError::setting(
                "public_origin",
                if proxy.is_some() {
                    "trusted_proxy needs public_origin: a forwarded origin is accepted only if it \
                     is one of the public origins; add each origin the proxy forwards"
                } else {
                    "no public origin: set the scheme://host[:port] clients use to reach this \
                     server"
                },
            ));
        }
        let mut origins = Vec::with_capacity(self.origins.len());
        for o in &self.origins {
            let origin: PublicOrigin = o
                .parse()
                .map_err(|e| ConfigError::setting("public_origin", format!("{o:?}: {e}")))?;
            origins.push(origin);
        }
        let validator = self
            .validator
            .ok_or_else(|| {
                ConfigError::setting(
                    "token_validator",
                    "no token validator: set the one that checks your access tokens, e.g. a JwtValidator",
                )
            })?;
        let mut algorithms = Vec::new();
        for alg in self.algorithms {
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if algorithms.is_empty() {
            return Err(ConfigError::setting(
                "algorithms",
                "the algorithm list is empty",
            ));
        }
        check_range(
            "max_proof_age",
            self.max_age,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        )?;
        check_range(
            "future_leeway",
            self.future_leeway,
            Duration::ZERO,
            Duration::from_secs(300),
        )?;
        check_range(
            "clock_skew_allowance",
            self.clock_skew,
            Duration::ZERO,
            Duration::from_secs(300),
        )?;
        check_range(
            "refused_token_cache_ttl",
            self.refused_token_ttl,
            Duration::ZERO,
            Duration::from_secs(300),
        )?;
        check_range(
            "token_leeway",
            self.token_leeway,
            Duration::ZERO,
            Duration::from_secs(300),
        )?;
        if !(512..=64 * 1024).contains(&self.max_proof_len) {
            return Err(ConfigError::setting(
                "max_proof_size",
                "must be between 512 B and 64 KiB",
            ));
        }
        if !(256..=64 * 1024).contains(&self.max_token_len) {
            return Err(ConfigError::setting(
                "max_token_size",
                "must be between 256 B and 64 KiB",
            ));
        }
        let nonces = match self.nonce_policy {
            NoncePolicy::Off => None,
            _ => {
                let secrets = if self.nonce_secrets.is_empty() {
                    tracing::warn!(
                        target: "tower_dpop",
                        "nonces are required but no nonce_secret is set: this layer made a random \
                         secret of its own. Right for one instance; in a fleet give every instance \
                         the same secret (nonce_secret), or clients bounce between use_dpop_nonce \
                         challenges as requests move between instances"
                    );
                    vec![NonceSecret::random()?]
                } else {
                    self.nonce_secrets
                };
                Some(Nonces::new(secrets, self.nonce_lifetime)?)
            }
        };
        if let Some(url) = &self.resource_metadata {
            let ok = url.starts_with("https://") || url.starts_with("http://");
            if !ok
                || url
                    .bytes()
                    .any(|b| !(0x21..0x7f).contains(&b) || b == b'"' || b == b'\\')
            {
                return Err(ConfigError::setting(
                    "resource_metadata",
                    "must be an http(s) URL",
                ));
            }
        }
        let replay = match self.replay {
            Some(store) => store,
            None => Backend::Memory(
                MemoryReplayStore::new(MemoryReplayStore::DEFAULT_CAPACITY)
                    .shared_clock(self.clock.clone()),
            ),
        };
        let capacity = replay.capacity();
        let key_quota = match self.replay_key_quota {
            Some(0) => {
                return Err(ConfigError::setting(
                    "replay_key_quota",
                    "must be at least 1 (it is the number of live proofs one key may hold)",
                ))
            }
            Some(n) => n,
            None => default_key_quota(capacity),
        };
        let replay_ttl = self.max_age + self.future_leeway + self.clock_skew;
        // Every tracked key has a live entry in the store, but a key's count may run a bucket
        // over (see `KeyQuota`): a quarter more than the store holds, and room for small stores.
        let max_keys = capacity.unwrap_or(MemoryReplayStore::DEFAULT_CAPACITY);
        let quota = KeyQuota::new(
            key_quota,
            replay_ttl,
            max_keys.saturating_add(max_keys / 4).max(64),
        );
        let algs_param = algorithms
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(DpopConfig {
            origins,
            algorithms,
            algs_param,
            max_age: self.max_age,
            future_leeway: self.future_leeway,
            token_leeway: self.token_leeway,
            max_proof_len: self.max_proof_len,
            max_token_len: self.max_token_len,
            validator,
            tokens: TokenCache::with_refused_ttl(
                self.token_cache_capacity,
                self.token_cache_max_ttl,
                self.key_cache_capacity > 0,
                self.refused_token_ttl,
            ),
            replay,
            replay_ttl,
            quota,
            keys: KeyCache::new(self.key_cache_capacity),
            key_cache_capacity: self.key_cache_capacity,
            token_cache_capacity: self.token_cache_capacity,
            clock: self.clock,
            nonce_policy: self.nonce_policy,
            nonces,
            allow_bearer: self.allow_bearer,
            resource_metadata: self.resource_metadata,
            counters: crate::metrics::Counters::default(),
            proxy,
            allow_anonymous: self.allow_anonymous,
            rejection_body: self.rejection_body,
            rejection_level: self.rejection_level,
        })
    }
}

fn check_range(
    name: &'static str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::setting(
            name,
            format!("must be between {min:?} and {max:?}, not {value:?}"),
        ));
    }
    Ok(())
}

/// The per-key quota when none is set: 1 % of a bounded store's capacity, but at least 100
/// (or the whole capacity of a store smaller than that); 10 000 for a store that does not say
/// its capacity (Redis).
fn default_key_quota(capacity: Option<u64>) -> u64 {
    match capacity {
        Some(c) => (c / 100).max(c.min(100)).max(1),
        None => DEFAULT_KEY_QUOTA,
    }
}

/// The per-key quota for a store of unknown capacity.
const DEFAULT_KEY_QUOTA: u64 = 10_000;
