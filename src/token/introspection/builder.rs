//! [`IntrospectionValidatorBuilder`]: every setting of the introspection validator.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::form::form_urlencode;
use super::signed::{Keys, SignedResponses};
use super::IntrospectionValidator;
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::http_fetch::HttpFetch;
use crate::proof::algorithm::Algorithm;
use crate::token::expect::{Expected, Wanted};
use crate::token::jwt::keys::KeyRing;
use crate::token::jwt::remote::{RemoteJwks, RemoteOptions, Target};

/// Default timeout of one introspection call (connect and whole request).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of introspection calls in flight at once.
const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Default oldest `iat` of a JWT response.
const DEFAULT_JWT_MAX_AGE: Duration = Duration::from_secs(60);

/// The RFC 9701 settings.
#[derive(Clone, Default)]
struct JwtResponse {
    jwks_url: Option<String>,
    jwks_json: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    algorithms: Option<Vec<Algorithm>>,
    max_age: Option<Duration>,
}

impl JwtResponse {
    fn requested(&self) -> bool {
        self.jwks_url.is_some()
            || self.jwks_json.is_some()
            || self.issuer.is_some()
            || self.audience.is_some()
            || self.algorithms.is_some()
            || self.max_age.is_some()
    }
}

/// Builds an [`IntrospectionValidator`]; see [`IntrospectionValidator::builder`].
#[derive(Clone)]
pub struct IntrospectionValidatorBuilder {
    endpoint: String,
    credentials: Option<(String, String)>,
    timeout: Duration,
    max_in_flight: usize,
    issuers: Wanted,
    audiences: Wanted,
    allow_http: bool,
    jwt: JwtResponse,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for IntrospectionValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionValidatorBuilder")
            .field("endpoint", &self.endpoint)
            .field(
                "client_id",
                &self.credentials.as_ref().map(|(id, _)| id.as_str()),
            )
            .field("timeout", &self.timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("jwt_response_issuer", &self.jwt.issuer)
            .finish_non_exhaustive()
    }
}

impl IntrospectionValidatorBuilder {
    pub(super) fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            credentials: None,
            timeout: DEFAULT_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            issuers: Wanted::default(),
            audiences: Wanted::default(),
            allow_http: false,
            jwt: JwtResponse::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The client credentials the resource server authenticates with, sent with HTTP Basic
    /// authentication (each form-urlencoded first, as RFC 6749 section 2.3.1 says).
    #[must_use]
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.credentials = Some((client_id.into(), client_secret.into()));
        self
    }

    /// The timeout of one introspection call, connection included (default 5 s). A call that
    /// takes longer gives [`TokenError::Unavailable`](crate::token::TokenError::Unavailable).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Accepts responses whose `iss` is exactly this string. Call again to accept several.
    /// Required, or [`any_issuer`](Self::any_issuer).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts any `iss` (present or not), e.g. for an authorization server whose
    /// introspection responses carry none. Not with [`issuer`](Self::issuer).
    #[must_use]
    pub fn any_issuer(mut self) -> Self {
        self.issuers.set_any();
        self
    }

    /// Accepts responses whose `aud` (a string or an array) holds this value. Call again to
    /// accept several. Required, or [`any_audience`](Self::any_audience): an active token the
    /// authorization server issued for another API must not work here.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts any `aud` (present or not): only when the authorization server issues tokens
    /// for this resource server alone, or checks the audience itself when introspecting.
    /// Not with [`audience`](Self::audience).
    #[must_use]
    pub fn any_audience(mut self) -> Self {
        self.audiences.set_any();
        self
    }

    /// Allows a plain `http:` endpoint (default: `https:` only). For loopback tests only: over
    /// plain HTTP the token and the client secret cross the network in clear.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The most introspection calls in flight at once (default 64). A token that would need
    /// one more is refused with
    /// [`TokenError::Unavailable`](crate::token::TokenError::Unavailable) (503) at once,
    /// rather than queued: a slow authorization server then costs the resource server a
    /// bounded number of open calls, whatever the traffic. Only requests whose DPoP proof verified (or Bearer
    /// requests, when accepted) reach the validator, and a refused token is not introspected
    /// again for a while (see
    /// [`refused_token_cache_ttl`](crate::DpopLayerBuilder::refused_token_cache_ttl)).
    #[must_use]
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = calls;
        self
    }

    /// Asks for JWT responses (RFC 9701: `Accept: application/token-introspection+jwt`) and
    /// verifies them against the authorization server's key set at this `https:` URL,
    /// fetched with the rules of the JWT validator's `jwks_url` (one fetch at a time and per
    /// 30 s, stale keys used while a refresh runs, an unknown `kid` waits for one fetch; the
    /// fetch has this validator's [`timeout`](Self::timeout) and
    /// [`allow_insecure_http`](Self::allow_insecure_http)). Needs
    /// [`jwt_response_issuer`](Self::jwt_response_issuer). Then only a signed response is
    /// accepted: one that is plain JSON, or fails any check of
    /// [the module documentation](super#jwt-responses-rfc-9701), gives
    /// [`TokenError::Unavailable`](crate::token::TokenError::Unavailable) (503).
    #[must_use]
    pub fn jwt_response_jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwt.jwks_url = Some(url.into());
        self
    }

    /// As [`jwt_response_jwks_url`](Self::jwt_response_jwks_url), with the key set given
    /// as a JWKS document (checked by [`build`](Self::build): it must hold a usable key).
    #[must_use]
    pub fn jwt_response_jwks_json(mut self, json: impl Into<String>) -> Self {
        self.jwt.jwks_json = Some(json.into());
        self
    }

    /// The authorization server's issuer identifier: the `iss` a JWT response must carry
    /// (exact string equality). Required with JWT responses. It is the server's identity, not
    /// the list of token issuers of [`issuer`](Self::issuer), though it is usually one of them.
    #[must_use]
    pub fn jwt_response_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.jwt.issuer = Some(issuer.into());
        self
    }

    /// The `aud` a JWT response must name (default: the client id of
    /// [`client_credentials`](Self::client_credentials), which is how RFC 9701 section 5 has
    /// the authorization server identify the resource server it answers).
    #[must_use]
    pub fn jwt_response_audience(mut self, audience: impl Into<String>) -> Self {
        self.jwt.audience = Some(audience.into());
        self
    }

    /// The algorithms a JWT response may be signed with (default [`Algorithm::ALL`]: the
    /// authorization server's key decides, not a client).
    #[must_use]
    pub fn jwt_response_algorithms(
        mut self,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> Self {
        self.jwt.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// How old a JWT response's `iat` may be (default 60 s; it may also be at most 10 s in
    /// the future). The response is fresh by construction, so a larger age only admits a
    /// response replayed from the past.
    #[must_use]
    pub fn jwt_response_max_age(mut self, age: Duration) -> Self {
        self.jwt.max_age = Some(age);
        self
    }

    /// The clock JWT responses' `iat` and key-set ages are read from (default
    /// [`SystemClock`]); tests inject a [`ManualClock`](crate::clock::ManualClock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the validator.
    ///
    /// # Errors
    /// A [`ConfigError`] when the endpoint URL is invalid or not http(s), when no client
    /// credentials were given or the client id is empty, when the timeout is zero, when the
    /// HTTP client cannot be built; and, for JWT responses, when a `jwt_response_*` setting is
    /// given without exactly one key set (URL or JSON) and an issuer, when the key set has
    /// no usable key, the algorithm list is empty or the maximum age is under a second.
    pub fn build(self) -> Result<IntrospectionValidator, ConfigError> {
        if self.timeout.is_zero() {
            return Err(ConfigError::new("introspection timeout must not be zero"));
        }
        // No redirect is followed: it would send the token and the credentials elsewhere.
        let http = HttpFetch::new(self.timeout, 0, self.allow_http)?;
        let url = http.check_url("introspection endpoint", &self.endpoint)?;
        let (client_id, client_secret) = self.credentials.ok_or_else(|| {
            ConfigError::new("introspection needs client credentials (client_credentials)")
        })?;
        if client_id.is_empty() {
            return Err(ConfigError::new("introspection client id is empty"));
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::new(
                "introspection max_in_flight must be at least 1",
            ));
        }
        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!(
                "{}:{}",
                form_urlencode(&client_id),
                form_urlencode(&client_secret)
            ))
        );
        let mut authorization = reqwest::header::HeaderValue::from_str(&basic)
            .map_err(|e| ConfigError::new(format!("invalid client credentials: {e}")))?;
        authorization.set_sensitive(true);
        let expected = Expected::from_wanted(self.issuers, self.audiences)?;
        let signed = if self.jwt.requested() {
            Some(signed_responses(
                self.jwt,
                &client_id,
                self.timeout,
                self.allow_http,
                self.clock,
            )?)
        } else {
            None
        };
        Ok(IntrospectionValidator {
            url,
            client_id,
            authorization,
            timeout: self.timeout,
            in_flight: tokio::sync::Semaphore::new(self.max_in_flight),
            expected,
            http,
            signed,
        })
    }
}

fn signed_responses(
    jwt: JwtResponse,
    client_id: &str,
    timeout: Duration,
    allow_http: bool,
    clock: Arc<dyn Clock>,
) -> Result<SignedResponses, ConfigError> {
    let issuer = jwt.issuer.ok_or_else(|| {
        ConfigError::new(
            "JWT introspection responses need jwt_response_issuer(..): the authorization \
             server's issuer identifier, which their iss must equal",
        )
    })?;
    let algorithms = jwt.algorithms.unwrap_or_else(|| Algorithm::ALL.to_vec());
    if algorithms.is_empty() {
        return Err(ConfigError::new("jwt_response_algorithms is empty"));
    }
    let keys = match (jwt.jwks_url, jwt.jwks_json) {
        (Some(url), None) => {
            let options = RemoteOptions {
                timeout,
                allow_insecure_http: allow_http,
                ..RemoteOptions::default()
            };
            Keys::Remote(Arc::new(RemoteJwks::new(
                Target::Jwks(&url),
                &options,
                algorithms.clone(),
                Arc::clone(&clock),
            )?))
        }
        (None, Some(json)) => {
            let ring = KeyRing::parse(json.as_bytes(), &algorithms)
                .map_err(|e| ConfigError::new(format!("jwt_response_jwks_json: {e}")))?;
            if ring.len() == 0 {
                return Err(ConfigError::new(
                    "jwt_response_jwks_json has no key usable with jwt_response_algorithms",
                ));
            }
            Keys::Static(ring)
        }
        (None, None) => {
            return Err(ConfigError::new(
                "JWT introspection responses need the authorization server's key set: \
                 jwt_response_jwks_url(..) or jwt_response_jwks_json(..)",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "both jwt_response_jwks_url and jwt_response_jwks_json were given: keep one",
            ))
        }
    };
    let max_age = jwt.max_age.unwrap_or(DEFAULT_JWT_MAX_AGE);
    if max_age.as_secs() == 0 {
        return Err(ConfigError::new(
            "jwt_response_max_age must be at least one second (iat is in whole seconds)",
        ));
    }
    Ok(SignedResponses {
        keys,
        algorithms,
        issuer,
        audience: jwt.audience.unwrap_or_else(|| client_id.to_owned()),
        max_age_secs: max_age.as_secs(),
        clock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_checks_config() {
        let ok = |url: &str| {
            IntrospectionValidator::builder(url)
                .client_credentials("a", "b")
                .issuer("https://as.example.com")
                .audience("https://api.example.com")
        };
        let err = |b: IntrospectionValidatorBuilder| b.build().unwrap_err().to_string();
        assert!(ok("https://as.example.com/i").build().is_ok());
        assert!(err(ok("not a url")).contains("invalid"));
        assert!(err(ok("ftp://as.example.com/i")).contains("https"));
        // Plain http only when allowed (loopback tests).
        assert!(err(ok("http://127.0.0.1:9/i")).contains("allow_insecure_http"));
        assert!(ok("http://127.0.0.1:9/i")
            .allow_insecure_http(true)
            .build()
            .is_ok());
        assert!(
            err(IntrospectionValidator::builder("https://as.example.com/i")
                .issuer("https://as.example.com")
                .audience("https://api.example.com"))
            .contains("client credentials")
        );
        assert!(err(ok("https://as.example.com/i").timeout(Duration::ZERO)).contains("timeout"));
        assert!(err(ok("https://as.example.com/i").max_in_flight(0)).contains("max_in_flight"));
        // Issuer and audience: required, or waived by name, not both.
        let bare = || {
            IntrospectionValidator::builder("https://as.example.com/i").client_credentials("a", "b")
        };
        assert!(err(bare().audience("x")).contains("no issuer"));
        assert!(err(bare().issuer("x")).contains("no audience"));
        assert!(err(bare().issuer("x").any_issuer().audience("y")).contains("any_issuer"));
        assert!(bare().any_issuer().any_audience().build().is_ok());

        let v = ok("https://as.example.com/i")
            .client_credentials("rs", "top-secret")
            .build()
            .unwrap();
        let dbg = format!("{v:?}");
        assert!(!dbg.contains("top-secret") && dbg.contains("rs"), "{dbg}");
        assert!(!dbg.contains(&STANDARD.encode("rs:top-secret")), "{dbg}");
    }

    #[test]
    fn jwt_responses_need_one_key_set_and_the_issuer() {
        let key = crate::testing::ClientKey::generate(Algorithm::ES256);
        let jwks = serde_json::json!({ "keys": [key.public_jwk()] }).to_string();
        let base = || {
            IntrospectionValidator::builder("https://as.example.com/i")
                .client_credentials("rs", "s")
                .issuer("https://as.example.com")
                .audience("https://api.example.com")
        };
        let err = |b: IntrospectionValidatorBuilder| b.build().unwrap_err().to_string();
        let v = base()
            .jwt_response_issuer("https://as.example.com")
            .jwt_response_jwks_json(jwks.clone())
            .build()
            .unwrap();
        let signed = v.signed.as_ref().unwrap();
        assert_eq!(signed.audience, "rs", "the client id by default");
        assert_eq!(signed.max_age_secs, 60);
        assert!(matches!(signed.keys, Keys::Static(_)));
        assert!(base().build().unwrap().signed.is_none(), "off by default");
        let remote = base()
            .jwt_response_issuer("https://as.example.com")
            .jwt_response_jwks_url("https://as.example.com/jwks")
            .jwt_response_audience("https://api.example.com")
            .build()
            .unwrap();
        let signed = remote.signed.as_ref().unwrap();
        assert!(matches!(signed.keys, Keys::Remote(_)));
        assert_eq!(signed.audience, "https://api.example.com");

        assert!(err(base().jwt_response_jwks_json(jwks.clone())).contains("jwt_response_issuer"));
        assert!(err(base().jwt_response_issuer("x")).contains("key set"));
        assert!(err(base()
            .jwt_response_issuer("x")
            .jwt_response_jwks_json(jwks.clone())
            .jwt_response_jwks_url("https://as.example.com/jwks"))
        .contains("keep one"));
        assert!(err(base()
            .jwt_response_issuer("x")
            .jwt_response_jwks_url("http://as.example.com/jwks"))
        .contains("https"));
        assert!(err(base()
            .jwt_response_issuer("x")
            .jwt_response_jwks_json(r#"{"keys":[]}"#))
        .contains("no key"));
        assert!(err(base()
            .jwt_response_issuer("x")
            .jwt_response_jwks_json(jwks.clone())
            .jwt_response_algorithms([Algorithm::RS256]))
        .contains("no key"));
        assert!(err(base()
            .jwt_response_issuer("x")
            .jwt_response_jwks_json(jwks.clone())
            .jwt_response_algorithms([]))
        .contains("empty"));
        assert!(err(base()
            .jwt_response_issuer("x")
            .jwt_response_jwks_json(jwks.clone())
            .jwt_response_max_age(Duration::from_millis(999)))
        .contains("at least one second"));
        // Any one JWT setting turns JWT responses on, and so needs the rest.
        assert!(err(base().jwt_response_max_age(Duration::from_secs(5)))
            .contains("jwt_response_issuer"));
    }
}
