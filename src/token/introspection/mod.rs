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
//! `token_type`, when the response has one, must agree with the binding (compared without
//! case): a token with `cnf.jkt` must be of type `DPoP`, and a token of type `DPoP` must have
//! `cnf.jkt`. A response that breaks this is refused with [`TokenError::Invalid`], so a token
//! the authorization server calls `DPoP` never passes as a Bearer token, and a token it calls
//! `Bearer` is never trusted for a DPoP binding. (Any token with a `cnf` is refused under
//! Bearer by the layer, and any token without `cnf.jkt` under DPoP.)
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
//! # Phantom tokens
//!
//! When the authorization server hands clients opaque tokens and keeps a JWT with the same
//! claims for internal use (the Curity "phantom token" pattern), the client's proof carries
//! `ath` over the opaque token it holds and sends: that is what the layer hashes and compares,
//! before introspection. The binding comes from the introspection response's `cnf.jkt`. A JWT
//! the response carries (as a `phantom_token` member, say) is one more claim: it is never used
//! to check `ath`, and never verified or trusted on its own.
//!
//! # JWT responses (RFC 9701)
//!
//! With [`jwt_response_jwks_url`](IntrospectionValidatorBuilder::jwt_response_jwks_url) (or
//! [`jwt_response_jwks_json`](IntrospectionValidatorBuilder::jwt_response_jwks_json)) and
//! [`jwt_response_issuer`](IntrospectionValidatorBuilder::jwt_response_issuer), the validator
//! asks for `Accept: application/token-introspection+jwt` and accepts only a signed answer: a
//! compact JWS with `typ` `token-introspection+jwt` (RFC 9701 section 5), no `crit`, an `alg`
//! of [`jwt_response_algorithms`](IntrospectionValidatorBuilder::jwt_response_algorithms),
//! signed by a key of the authorization server's key set (chosen by `kid` and `alg`; fetched
//! with the rules of the JWT validator's `jwks_url`), with `iss` equal to the authorization
//! server's issuer identifier, `aud` naming this resource server (its client id by default) and
//! `iat` at most [`jwt_response_max_age`](IntrospectionValidatorBuilder::jwt_response_max_age)
//! old (60 s by default) and at most 10 s ahead. Its `token_introspection` member is then the
//! RFC 7662 response, checked as above.
//!
//! A response that fails any of these checks gives [`TokenError::Unavailable`] (503), not
//! [`TokenError::Invalid`] (401). Such a response is not the authorization server speaking —
//! it may be forged, replayed, meant for another resource server, or the result of a
//! misconfiguration — so it says nothing about the token either way: it must never make the
//! token pass, and it should not condemn it either. A 401 `invalid_token` would tell a client
//! holding a good token to throw it away, and the layer would remember the refusal for
//! [`refused_token_cache_ttl`](crate::DpopLayerBuilder::refused_token_cache_ttl); a 503 is
//! what the layer answers whenever the validator cannot reach a verdict, is not remembered,
//! and shows in the logs (at `warn`, with the reason) as the failure of the authorization
//! server's side that it is. A plain JSON answer to a request for a JWT is refused the same
//! way, so an endpoint (or anyone on the path) cannot downgrade the validator to unsigned
//! responses.
//!
//! ```no_run
//! use tower_dpop::token::introspection::IntrospectionValidator;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = IntrospectionValidator::builder("https://as.example.com/introspect")
//!     .client_credentials("resource-server", "s3cret")
//!     .issuer("https://as.example.com")
//!     .audience("https://api.example.com")
//!     .jwt_response_issuer("https://as.example.com")
//!     .jwt_response_jwks_url("https://as.example.com/jwks")
//!     .build()?;
//! # let _ = validator;
//! # Ok(())
//! # }
//! ```
//!
//! # Size bounds
//!
//! The token sent is bounded by the layer's
//! [`max_token_size`](crate::DpopLayerBuilder::max_token_size); a response body (JSON or
//! JWT) longer than 64 KiB is refused as soon as it shows (503), before it is parsed; a key
//! set is read up to 1 MiB and at most 64 of its keys are used.
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
use serde_json::{Map, Value};

use super::expect::Expected;
use super::{AccessToken, TokenError, TokenValidator};
use crate::http_fetch::HttpFetch;

mod builder;
mod form;
mod response;
mod signed;

pub use builder::IntrospectionValidatorBuilder;
use form::form_urlencode;
use signed::SignedResponses;

/// Largest introspection response accepted, in bytes (JSON or JWT), read no further.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

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
    /// JWT responses (RFC 9701), when asked for.
    signed: Option<SignedResponses>,
}

impl fmt::Debug for IntrospectionValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionValidator")
            .field("endpoint", &self.url.as_str())
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .field("jwt_responses", &self.signed.is_some())
            .finish_non_exhaustive()
    }
}

impl IntrospectionValidator {
    /// Starts building a validator for the introspection endpoint at `endpoint_url`.
    #[must_use]
    pub fn builder(endpoint_url: impl Into<String>) -> IntrospectionValidatorBuilder {
        IntrospectionValidatorBuilder::new(endpoint_url.into())
    }

    /// Calls the endpoint: the RFC 7662 members of its answer (from the verified JWT when JWT
    /// responses are on). `Err` carries a description for the logs: no answer from the
    /// authorization server.
    async fn introspect(&self, token: &str) -> Result<Map<String, Value>, String> {
        let form = format!(
            "token={}&token_type_hint=access_token",
            form_urlencode(token)
        );
        let auth = [(reqwest::header::AUTHORIZATION, self.authorization.clone())];
        let accept = match self.signed {
            Some(_) => signed::ACCEPT,
            None => "application/json",
        };
        let (status, body) = self
            .http
            .post_form(&self.url, &auth, form, accept, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        if status != reqwest::StatusCode::OK {
            return Err(format!("HTTP status {status}"));
        }
        if let Some(signed) = &self.signed {
            return signed.open(&body).await;
        }
        match serde_json::from_slice(&body) {
            Ok(Value::Object(claims)) => Ok(claims),
            Ok(_) => Err("introspection response is not a JSON object".to_owned()),
            Err(e) => Err(format!("introspection response is not JSON: {e}")),
        }
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
        match self.introspect(token).await {
            Ok(claims) => response::token_from_response(claims, &self.expected),
            Err(e) => {
                tracing::warn!(
                    target: "tower_dpop",
                    endpoint = %self.url,
                    error = %e,
                    "token introspection failed"
                );
                Err(TokenError::unavailable("token introspection failed"))
            }
        }
    }
}
