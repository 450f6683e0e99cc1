//! [`JwtValidatorBuilder`]: every setting of the JWT validator, its default and why.

#[cfg(feature = "jwks-fetch")]
use std::sync::Arc;
#[cfg(feature = "jwks-fetch")]
use std::time::Duration;

use super::checks::Policy;
#[cfg(feature = "jwks-fetch")]
use super::discovery::MetadataDocument;
use super::keys::KeyRing;
#[cfg(feature = "jwks-fetch")]
use super::remote;
use super::{JwtValidator, KeySource, Trusted};
#[cfg(feature = "jwks-fetch")]
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::proof::algorithm::Algorithm;
use crate::token::expect::{Expected, Wanted};

/// Configures a [`JwtValidator`].
///
/// Required: one key source ([`jwks_json`](Self::jwks_json), or `jwks_url` or `discover`
/// with the `jwks-fetch` feature); the issuer ([`issuer`](Self::issuer), or
/// [`any_issuer`](Self::any_issuer)); the audience ([`audience`](Self::audience), or
/// [`any_audience`](Self::any_audience)). [`build`](Self::build) says what is missing.
///
/// **Lists.** A method that takes one value of a list ([`issuer`](Self::issuer),
/// [`audience`](Self::audience)) adds that value each time it is called; a method that takes a
/// whole list ([`algorithms`](Self::algorithms)) replaces the list. Any other setting called
/// twice keeps the last value.
///
/// ```
/// # #[cfg(feature = "jwks-fetch")] {
/// use std::time::Duration;
/// use tower_dpop::token::jwt::JwtValidator;
/// use tower_dpop::Algorithm;
///
/// let validator = JwtValidator::builder()
///     .jwks_url("https://as.example.com/.well-known/jwks.json")
///     .issuer("https://as.example.com")
///     .audience("https://api.example.com")
///     .audience("https://api.example.org") // a second accepted audience
///     .algorithms([Algorithm::ES256, Algorithm::PS256])
///     .jwks_max_stale(Duration::from_secs(6 * 3600))
///     .build()
///     .expect("valid configuration");
/// # let _ = validator;
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct JwtValidatorBuilder {
    jwks: Option<String>,
    #[cfg(feature = "jwks-fetch")]
    jwks_url: Option<String>,
    #[cfg(feature = "jwks-fetch")]
    discover: Option<String>,
    #[cfg(feature = "jwks-fetch")]
    metadata_document: MetadataDocument,
    #[cfg(feature = "jwks-fetch")]
    remote: remote::RemoteOptions,
    issuers: Wanted,
    audiences: Wanted,
    algorithms: Option<Vec<Algorithm>>,
    strict_typ: bool,
    allow_without_exp: bool,
    #[cfg(feature = "jwks-fetch")]
    clock: Arc<dyn Clock>,
}

// Derivable only without the `jwks-fetch` feature, whose clock has no `Default`.
#[allow(clippy::derivable_impls)]
impl Default for JwtValidatorBuilder {
    fn default() -> Self {
        Self {
            jwks: None,
            #[cfg(feature = "jwks-fetch")]
            jwks_url: None,
            #[cfg(feature = "jwks-fetch")]
            discover: None,
            #[cfg(feature = "jwks-fetch")]
            metadata_document: MetadataDocument::default(),
            #[cfg(feature = "jwks-fetch")]
            remote: remote::RemoteOptions::default(),
            issuers: Wanted::default(),
            audiences: Wanted::default(),
            algorithms: None,
            strict_typ: false,
            allow_without_exp: false,
            #[cfg(feature = "jwks-fetch")]
            clock: Arc::new(SystemClock),
        }
    }
}

impl JwtValidatorBuilder {
    /// Verifies tokens with the key set in this JSON document (a key source: give exactly
    /// one). Checked by [`build`](Self::build), which refuses a document with no usable key.
    pub fn jwks_json(mut self, json: &str) -> Self {
        self.jwks = Some(json.to_owned());
        self
    }

    /// Fetches the key set from this `https:` URL (a key source: give exactly one): on first
    /// use, in the background once the keys are older than [`jwks_max_age`](Self::jwks_max_age),
    /// and when a token names an unknown `kid`; never more than one fetch at a time, nor more
    /// than one per [`jwks_refresh_interval`](Self::jwks_refresh_interval). A plain `http:` URL
    /// is refused unless [`allow_insecure_http`](Self::allow_insecure_http).
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Trusts this issuer and finds its key set from its metadata (a key source: give exactly
    /// one): the metadata document ([`metadata_document`](Self::metadata_document), OpenID
    /// Connect discovery by default) is fetched from the issuer's well-known URL, its
    /// `issuer` must equal `issuer` exactly (else its keys are refused and tokens get 503
    /// until a document that does is fetched), and the keys are fetched from its `jwks_uri`
    /// (`https:` unless [`allow_insecure_http`](Self::allow_insecure_http)).
    ///
    /// Also adds `issuer` to the accepted issuers, as [`issuer`](Self::issuer) does. The
    /// metadata is fetched with the keys, under the same rules (first use, one fetch at a
    /// time and one per [`jwks_refresh_interval`](Self::jwks_refresh_interval), never before a
    /// proof's signature verified) and is refreshed when older than
    /// [`jwks_max_age`](Self::jwks_max_age); when it cannot be fetched, the `jwks_uri`
    /// learnt before is used for as long as keys would be
    /// ([`jwks_max_stale`](Self::jwks_max_stale)). A fetch then makes two requests, each
    /// bounded by [`jwks_timeout`](Self::jwks_timeout).
    ///
    /// ```
    /// use tower_dpop::token::jwt::JwtValidator;
    ///
    /// let validator = JwtValidator::builder()
    ///     .discover("https://dev-123456.okta.com/oauth2/default")
    ///     .audience("api://default")
    ///     .build()
    ///     .expect("valid configuration");
    /// # let _ = validator;
    /// ```
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn discover(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.issuers.push(issuer.clone());
        self.discover = Some(issuer);
        self
    }

    /// Which metadata document [`discover`](Self::discover) fetches (default
    /// [`MetadataDocument::OpenIdConfiguration`], which every identity provider this crate
    /// documents serves).
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn metadata_document(mut self, document: MetadataDocument) -> Self {
        self.metadata_document = document;
        self
    }

    /// The shortest time between the starts of two fetches, whatever asks for them (default
    /// 30 s, must not be zero). It bounds what tokens with made-up `kid`s, or an endpoint that
    /// keeps failing, can make this server send to the authorization server. The price: with
    /// no keys (a first fetch that failed), requests get 503 until the next fetch may start.
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn jwks_refresh_interval(mut self, interval: Duration) -> Self {
        self.remote.refresh_interval = interval;
        self
    }

    /// Age after which the keys are refreshed in the background (default 1 h): rotated keys are
    /// picked up even before a token names them, and a key the authorization server withdrew
    /// stops being trusted. Requests keep using the old keys meanwhile, without waiting.
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn jwks_max_age(mut self, age: Duration) -> Self {
        self.remote.max_age = age;
        self
    }

    /// How long past [`jwks_max_age`](Self::jwks_max_age) the keys stay usable while the key
    /// set cannot be fetched (default 24 h); after that, tokens get 503 until a fetch succeeds.
    /// Long enough to ride out an authorization server outage of a working day without taking
    /// the API down with it; short enough that a key the authorization server withdrew (for
    /// example a compromised one) is not trusted for days by a server that cannot reach it.
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn jwks_max_stale(mut self, stale: Duration) -> Self {
        self.remote.max_stale = stale;
        self
    }

    /// Timeout of one key set fetch: connection, redirects and body (default 5 s, must not be
    /// zero). Only requests with no usable key wait for a fetch, each at most this long.
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn jwks_timeout(mut self, timeout: Duration) -> Self {
        self.remote.timeout = timeout;
        self
    }

    /// Allows a plain `http:` JWKS URL, and redirects to `http:` (default: refused). **For
    /// loopback tests only**: a key set fetched over plain HTTP is whatever anyone on the
    /// network path wants it to be, and so are the tokens it verifies.
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.remote.allow_insecure_http = allow;
        self
    }

    /// The clock that key set ages and fetch intervals are read from (default
    /// [`SystemClock`]); tests inject a [`ManualClock`](crate::clock::ManualClock).
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Accepts tokens whose `iss` is exactly this string (compared byte for byte, no
    /// normalization). Call again to accept several issuers. Required, or
    /// [`any_issuer`](Self::any_issuer): a key set may sign for several issuers, and the issuer
    /// is what tells a token of yours from another.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts any `iss` (present or not): only when the key set signs tokens of one issuer
    /// alone. Not with [`issuer`](Self::issuer).
    pub fn any_issuer(mut self) -> Self {
        self.issuers.set_any();
        self
    }

    /// Accepts tokens whose `aud` (a string or an array of strings) holds this value. Call
    /// again to accept several audiences. Required, or [`any_audience`](Self::any_audience):
    /// RFC 9068 §4 requires a resource server to check that it is the token's audience, else
    /// a token issued for another API of the same authorization server works here too.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts any `aud` (present or not): only when the authorization server issues tokens
    /// for this resource server alone. Not with [`audience`](Self::audience).
    pub fn any_audience(mut self) -> Self {
        self.audiences.set_any();
        self
    }

    /// Replaces the token signature algorithm allow-list (default: every asymmetric
    /// algorithm, [`Algorithm::ALL`]: the list only has to admit what the authorization
    /// server signs with, and a key whose own `alg` is not in it is skipped). HMAC and `none`
    /// cannot be named, so a public key can never be used as a MAC secret.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Requires the RFC 9068 `typ` (`at+jwt`); by default `JWT` and no `typ` are accepted too,
    /// because many authorization servers still issue those.
    pub fn require_at_jwt_typ(mut self, strict: bool) -> Self {
        self.strict_typ = strict;
        self
    }

    /// Accepts tokens without `exp` (by default they are refused, RFC 9068 §2.2). **Unsafe**:
    /// such a token, once stolen, works until its key is withdrawn. Only for an authorization
    /// server that never expires its tokens. A present `exp` is still checked by the layer.
    pub fn allow_tokens_without_exp(mut self) -> Self {
        self.allow_without_exp = true;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] saying what to do when: no key source or two are given; the key set
    /// does not parse or has no usable key; the JWKS URL is invalid or not `https:`; the
    /// algorithm list is empty; no issuer (or audience) is configured and `any_issuer()` (or
    /// `any_audience()`) was not called, or both were.
    pub fn build(self) -> Result<JwtValidator, ConfigError> {
        let algorithms = self.algorithms.unwrap_or_else(|| Algorithm::ALL.to_vec());
        if algorithms.is_empty() {
            return Err(ConfigError::new("the token algorithm list is empty"));
        }
        #[cfg(feature = "jwks-fetch")]
        let (url, discover) = (self.jwks_url, self.discover);
        #[cfg(not(feature = "jwks-fetch"))]
        let (url, discover): (Option<String>, Option<String>) = (None, None);
        let source = match (self.jwks, url, discover) {
            (Some(json), None, None) => {
                let ring = KeyRing::parse(json.as_bytes(), &algorithms)
                    .map_err(|e| ConfigError::new(format!("the JWKS does not parse: {e}")))?;
                if ring.len() == 0 {
                    return Err(ConfigError::new(
                        "the JWKS has no key usable for the token algorithms (keys whose use \
                         is not sig, whose alg is not allowed, or that fail the key bounds are \
                         skipped)",
                    ));
                }
                KeySource::Static(ring)
            }
            #[cfg(feature = "jwks-fetch")]
            (None, Some(url), None) => KeySource::Remote(Arc::new(remote::RemoteJwks::new(
                remote::Target::Jwks(&url),
                &self.remote,
                algorithms.clone(),
                self.clock,
            )?)),
            #[cfg(feature = "jwks-fetch")]
            (None, None, Some(issuer)) => KeySource::Remote(Arc::new(remote::RemoteJwks::new(
                remote::Target::Discover(&issuer, self.metadata_document),
                &self.remote,
                algorithms.clone(),
                self.clock,
            )?)),
            (None, None, None) => {
                return Err(ConfigError::new(
                    "no key source: call jwks_json(..), jwks_url(..) or discover(..)",
                ))
            }
            _ => {
                return Err(ConfigError::new(
                    "give one key source: a JWKS, a JWKS URL or an issuer to discover, not two",
                ))
            }
        };
        let expected = Expected::from_wanted(self.issuers, self.audiences)?;
        Ok(JwtValidator::single(Trusted {
            source,
            policy: Policy {
                algorithms,
                strict_typ: self.strict_typ,
                expected,
                require_exp: !self.allow_without_exp,
            },
        }))
    }
}
