//! An access-token validator that asks the authorization server: OAuth 2.0 token
//! introspection (RFC 7662), for opaque tokens.
//!
//! For each token the validator POSTs `token=...&token_type_hint=access_token` to the
//! introspection endpoint, authenticated with HTTP Basic client credentials (RFC 7662
//! section 2.1, RFC 6749 section 2.3.1). The token is accepted only when the endpoint answers
//! `200` with a JSON object whose `active` member is `true`, whose `iss` is a configured
//! issuer and whose `aud` names a configured audience (as for JWTs: both required unless
//! waived with `any_issuer()` / `any_audience()`); the response is then used as the token's
//! claims, so `cnf.jkt` (RFC 9449 section 6.2), `exp` and `nbf` come from it.
//!
//! Only requests whose DPoP proof verified reach the endpoint (and Bearer requests, where the
//! layer accepts them), at most [`max_in_flight`](IntrospectionValidatorBuilder::max_in_flight)
//! at a time; the endpoint must be `https:` and redirects are not followed.
//!
//! It fails closed: a network error, a timeout, a status other than `200` (including `401`
//! when the client credentials are wrong) or a body that is not a JSON object gives
//! [`TokenError::Unavailable`] (answered with 503), never a valid token. A response with
//! `active` other than `true` gives [`TokenError::Invalid`] (401 `invalid_token`).
//!
//! # Caching
//!
//! The validator itself caches nothing. The layer caches every validated token by its hash
//! until its `exp` and for at most
//! [`token_cache_max_ttl`](crate::DpopLayerBuilder::token_cache_max_ttl) (5 minutes by
//! default), so an introspection result is reused for that long: a token revoked at the
//! authorization server stays accepted until then. Lower `token_cache_max_ttl` to notice
//! revocation sooner, at the cost of more introspection calls.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_dpop::{token::introspection::IntrospectionValidator, DpopLayer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = IntrospectionValidator::builder("https://as.example.com/introspect")
//!     .client_credentials("resource-server", "s3cret")
//!     .issuer("https://as.example.com")
//!     .audience("https://api.example.com")
//!     .timeout(Duration::from_secs(2))
//!     .build()?;
//! let layer = DpopLayer::builder()
//!     .public_origin("https://api.example.com")
//!     .token_validator(validator)
//!     .token_cache_max_ttl(Duration::from_secs(60))
//!     .build()?;
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::expect::{Expected, Wanted};
use super::{AccessToken, TokenError, TokenValidator};
use crate::error::ConfigError;
use crate::http_fetch::HttpFetch;

/// Largest introspection response accepted, in bytes.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Default timeout of one introspection call (connect and whole request).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of introspection calls in flight at once.
const DEFAULT_MAX_IN_FLIGHT: usize = 64;

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
            .finish_non_exhaustive()
    }
}

impl IntrospectionValidatorBuilder {
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
    /// takes longer gives [`TokenError::Unavailable`].
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
    /// one more is refused with [`TokenError::Unavailable`] (503) at once, rather than queued:
    /// a slow authorization server then costs the resource server a bounded number of open
    /// calls, whatever the traffic. Only requests whose DPoP proof verified (or Bearer
    /// requests, when accepted) reach the validator, and a refused token is not introspected
    /// again for a while (see
    /// [`refused_token_cache_ttl`](crate::DpopLayerBuilder::refused_token_cache_ttl)).
    #[must_use]
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = calls;
        self
    }

    /// Builds the validator.
    ///
    /// # Errors
    /// A [`ConfigError`] when the endpoint URL is invalid or not http(s), when no client
    /// credentials were given or the client id is empty, when the timeout is zero, or when
    /// the HTTP client cannot be built.
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
        Ok(IntrospectionValidator {
            url,
            client_id,
            authorization,
            timeout: self.timeout,
            in_flight: tokio::sync::Semaphore::new(self.max_in_flight),
            expected,
            http,
        })
    }
}

/// Validates opaque access tokens with OAuth 2.0 token introspection (RFC 7662). See the
/// [module documentation](self).
pub struct IntrospectionValidator {
    url: reqwest::Url,
    client_id: String,
    /// `Basic base64(urlencode(id):urlencode(secret))`, marked sensitive.
    authorization: reqwest::header::HeaderValue,
    timeout: Duration,
    /// One permit per call in flight.
    in_flight: tokio::sync::Semaphore,
    expected: Expected,
    http: HttpFetch,
}

impl fmt::Debug for IntrospectionValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionValidator")
            .field("endpoint", &self.url.as_str())
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl IntrospectionValidator {
    /// Starts building a validator for the introspection endpoint at `endpoint_url`.
    #[must_use]
    pub fn builder(endpoint_url: impl Into<String>) -> IntrospectionValidatorBuilder {
        IntrospectionValidatorBuilder {
            endpoint: endpoint_url.into(),
            credentials: None,
            timeout: DEFAULT_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            issuers: Wanted::default(),
            audiences: Wanted::default(),
            allow_http: false,
        }
    }

    /// Calls the endpoint; `Err` carries a description for the logs.
    async fn introspect(&self, token: &str) -> Result<Value, String> {
        let form = format!(
            "token={}&token_type_hint=access_token",
            form_urlencode(token)
        );
        let auth = [(reqwest::header::AUTHORIZATION, self.authorization.clone())];
        let (status, body) = self
            .http
            .post_form(
                &self.url,
                &auth,
                form,
                "application/json",
                MAX_RESPONSE_BYTES,
            )
            .await
            .map_err(|e| e.to_string())?;
        if status != reqwest::StatusCode::OK {
            return Err(format!("HTTP status {status}"));
        }
        serde_json::from_slice(&body)
            .map_err(|e| format!("introspection response is not JSON: {e}"))
    }
}

#[async_trait]
impl TokenValidator for IntrospectionValidator {
    async fn validate(&self, token: &str) -> Result<AccessToken, TokenError> {
        let Ok(_permit) = self.in_flight.try_acquire() else {
            tracing::warn!(
                target: "tower_dpop",
                endpoint = %self.url,
                "too many token introspection calls in flight; request refused"
            );
            return Err(TokenError::unavailable(
                "too many token introspection calls in flight",
            ));
        };
        let response = match self.introspect(token).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(
                    target: "tower_dpop",
                    endpoint = %self.url,
                    error = %e,
                    "token introspection failed"
                );
                return Err(TokenError::unavailable("token introspection failed"));
            }
        };
        let Value::Object(claims) = response else {
            tracing::warn!(
                target: "tower_dpop",
                endpoint = %self.url,
                "token introspection response is not a JSON object"
            );
            return Err(TokenError::unavailable("token introspection failed"));
        };
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(TokenError::invalid("access token is not active"));
        }
        self.expected.check(&claims)?;
        AccessToken::from_claims(claims)
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value (the URL standard's
/// serializer: `*-._` and alphanumerics kept, space as `+`, everything else `%XX`).
fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(hex_digit(b >> 4));
                out.push(hex_digit(b & 0x0f));
            }
        }
    }
    out
}

/// The uppercase hex digit of a nibble (`0..16`).
fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).map_or('0', |c| c.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(form_urlencode("aZ09*-._"), "aZ09*-._");
        assert_eq!(form_urlencode("a b+c/d=e&f%"), "a+b%2Bc%2Fd%3De%26f%25");
        assert_eq!(form_urlencode("é:~"), "%C3%A9%3A%7E");
    }

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
}
