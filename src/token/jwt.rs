//! The built-in JWT access-token validator (RFC 9068 profile): signature against a JWKS given
//! in code or fetched from a URL, `iss`, `aud`, an algorithm allow-list.

use std::sync::Arc;
#[cfg(feature = "jwks-fetch")]
use std::time::Duration;

use async_trait::async_trait;
use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::JwsVerifier;
use serde_json::Value;

use super::{AccessToken, TokenError, TokenValidator};
use crate::config::ConfigError;

#[cfg(feature = "jwks-fetch")]
mod remote;

/// Largest access token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Asymmetric algorithms the validator can verify. HMAC and `none` are not supported, so a
/// token can never be "verified" with a public key used as a MAC secret.
const SUPPORTED: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// The keys of one JWKS, ready for lookup.
#[derive(Debug, Default)]
pub(crate) struct KeyRing {
    keys: Vec<Jwk>,
}

impl KeyRing {
    pub(crate) fn from_set(set: &JwkSet) -> Self {
        let keys = set
            .keys()
            .into_iter()
            .filter(|k| k.key_use().is_none_or(|u| u == "sig"))
            .cloned()
            .collect();
        Self { keys }
    }

    #[cfg_attr(not(feature = "jwks-fetch"), allow(dead_code))]
    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.key_id() == Some(kid))
    }

    /// Keys that may have signed a token with this `kid` and `alg`.
    fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: &'a str,
    ) -> impl Iterator<Item = &'a Jwk> {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.key_id() == Some(kid)))
            .filter(move |k| k.algorithm().is_none_or(|a| a == alg))
            .take(8)
    }
}

fn verifier(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    use josekit::jws;
    let v: Box<dyn JwsVerifier> = match alg {
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(jwk).ok()?),
        "RS384" => Box::new(jws::RS384.verifier_from_jwk(jwk).ok()?),
        "RS512" => Box::new(jws::RS512.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(jws::PS256.verifier_from_jwk(jwk).ok()?),
        "PS384" => Box::new(jws::PS384.verifier_from_jwk(jwk).ok()?),
        "PS512" => Box::new(jws::PS512.verifier_from_jwk(jwk).ok()?),
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(jwk).ok()?),
        "ES384" => Box::new(jws::ES384.verifier_from_jwk(jwk).ok()?),
        "ES512" => Box::new(jws::ES512.verifier_from_jwk(jwk).ok()?),
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    };
    Some(v)
}

#[derive(Debug)]
enum KeySource {
    Static(Arc<KeyRing>),
    #[cfg(feature = "jwks-fetch")]
    Remote(remote::RemoteJwks),
}

/// Validates JWT access tokens.
///
/// Checks, in order: size, compact form, `typ` (`at+jwt`, `application/at+jwt`, `JWT` or
/// absent; only `at+jwt` forms with [`JwtValidatorBuilder::require_at_jwt_typ`]), `alg` on the
/// allow-list, the signature with the JWKS key named by `kid` (or each key when there is no
/// `kid`), `iss` and `aud` when configured. `exp` and `nbf` are checked by the layer.
///
/// ```
/// use tower_dpop::token::jwt::JwtValidator;
///
/// let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
///   "x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
///   "y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}]}"#;
/// let validator = JwtValidator::builder()
///     .jwks_json(jwks)
///     .issuer("https://as.example.com")
///     .audience("https://api.example.com")
///     .build()
///     .expect("valid configuration");
/// # let _ = validator;
/// ```
#[derive(Debug, Clone)]
pub struct JwtValidator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: KeySource,
    issuer: Option<String>,
    audience: Option<String>,
    algorithms: Vec<String>,
    strict_typ: bool,
}

impl JwtValidator {
    /// Starts configuring a validator.
    pub fn builder() -> JwtValidatorBuilder {
        JwtValidatorBuilder::default()
    }

    #[cfg_attr(not(feature = "jwks-fetch"), allow(unused_variables))]
    async fn keys(&self, kid: Option<&str>) -> Result<Arc<KeyRing>, TokenError> {
        match &self.inner.source {
            KeySource::Static(ring) => Ok(ring.clone()),
            #[cfg(feature = "jwks-fetch")]
            KeySource::Remote(remote) => {
                let ring = remote.current().await?;
                match kid {
                    Some(kid) if !ring.has_kid(kid) => {
                        Ok(remote.refresh_for_unknown_kid(ring).await)
                    }
                    _ => Ok(ring),
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Header {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

#[async_trait]
impl TokenValidator for JwtValidator {
    async fn validate(&self, token: &str) -> Result<AccessToken, TokenError> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;

        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::invalid("access token is too large"));
        }
        let header_b64 = match token.split('.').collect::<Vec<_>>().as_slice() {
            [h, p, s] if !h.is_empty() && !p.is_empty() && !s.is_empty() => *h,
            _ => return Err(TokenError::invalid("access token is not a signed JWT")),
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or_else(|| TokenError::invalid("access token header is malformed"))?;
        if header.crit.is_some() {
            return Err(TokenError::invalid("access token has unsupported crit"));
        }
        let typ_ok = match header
            .typ
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("at+jwt" | "application/at+jwt") => true,
            Some("jwt") | None => !self.inner.strict_typ,
            Some(_) => false,
        };
        if !typ_ok {
            return Err(TokenError::invalid("access token typ is not at+jwt"));
        }
        let alg = header
            .alg
            .filter(|a| self.inner.algorithms.iter().any(|x| x == a))
            .ok_or_else(|| TokenError::invalid("access token alg is not accepted"))?;
        let ring = self.keys(header.kid.as_deref()).await?;
        let mut payload = None;
        for jwk in ring.candidates(header.kid.as_deref(), &alg) {
            let Some(v) = verifier(&alg, jwk) else {
                continue;
            };
            if let Ok((p, _)) = josekit::jwt::decode_with_verifier(token, &*v) {
                payload = Some(p);
                break;
            }
        }
        let payload = payload.ok_or_else(|| {
            TokenError::invalid("access token signature is invalid or its key is unknown")
        })?;
        let claims = payload.claims_set().clone();
        if let Some(iss) = &self.inner.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
                return Err(TokenError::invalid("access token issuer is not accepted"));
            }
        }
        if let Some(aud) = &self.inner.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(s)) => s == aud,
                Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(aud.as_str())),
                _ => false,
            };
            if !ok {
                return Err(TokenError::invalid("access token audience is not accepted"));
            }
        }
        AccessToken::from_claims(claims)
    }
}

/// Configures a [`JwtValidator`].
#[derive(Debug, Default)]
#[must_use]
pub struct JwtValidatorBuilder {
    jwks: Option<Result<JwkSet, String>>,
    #[cfg(feature = "jwks-fetch")]
    jwks_url: Option<String>,
    #[cfg(feature = "jwks-fetch")]
    remote: remote::RemoteOptions,
    issuer: Option<String>,
    audience: Option<String>,
    algorithms: Option<Vec<String>>,
    strict_typ: bool,
}

impl JwtValidatorBuilder {
    /// Verifies tokens with this key set.
    pub fn jwks(mut self, jwks: JwkSet) -> Self {
        self.jwks = Some(Ok(jwks));
        self
    }

    /// Verifies tokens with the key set in this JSON document (checked by [`build`](Self::build)).
    pub fn jwks_json(mut self, json: &str) -> Self {
        self.jwks = Some(JwkSet::from_bytes(json).map_err(|e| e.to_string()));
        self
    }

    /// Fetches the key set from this URL: on first use, when it is older than
    /// [`jwks_max_age`](Self::jwks_max_age), and when a token names an unknown `kid` (at most
    /// once per [`jwks_refresh_interval`](Self::jwks_refresh_interval)).
    #[cfg(feature = "jwks-fetch")]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Minimum time between two fetches triggered by unknown `kid`s (default 30 s).
    #[cfg(feature = "jwks-fetch")]
    pub fn jwks_refresh_interval(mut self, interval: Duration) -> Self {
        self.remote.min_interval = interval;
        self
    }

    /// Age after which the key set is fetched again (default 1 h).
    #[cfg(feature = "jwks-fetch")]
    pub fn jwks_max_age(mut self, age: Duration) -> Self {
        self.remote.max_age = age;
        self
    }

    /// Timeout of one key set fetch, connection included (default 5 s).
    #[cfg(feature = "jwks-fetch")]
    pub fn jwks_timeout(mut self, timeout: Duration) -> Self {
        self.remote.timeout = timeout;
        self
    }

    /// Requires `iss` to equal this value (not checked by default).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Requires `aud` to be or contain this value (not checked by default).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Restricts the token signature algorithms (default: RS*, PS*, ES*, EdDSA).
    pub fn algorithms<I, S>(mut self, algorithms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.algorithms = Some(algorithms.into_iter().map(Into::into).collect());
        self
    }

    /// Requires the RFC 9068 `typ` (`at+jwt`); by default `JWT` and no `typ` are accepted too,
    /// because many authorization servers still issue those.
    pub fn require_at_jwt_typ(mut self, strict: bool) -> Self {
        self.strict_typ = strict;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// When no key source or two key sources are given, the key set does not parse, or an
    /// algorithm is unknown or symmetric.
    pub fn build(self) -> Result<JwtValidator, ConfigError> {
        let algorithms = self
            .algorithms
            .unwrap_or_else(|| SUPPORTED.iter().map(|s| (*s).to_owned()).collect());
        if algorithms.is_empty() {
            return Err(ConfigError::new("the token algorithm list is empty"));
        }
        if let Some(bad) = algorithms.iter().find(|a| !SUPPORTED.contains(&a.as_str())) {
            return Err(ConfigError::new(format!(
                "token algorithm {bad:?} is not supported (asymmetric JWS algorithms only)"
            )));
        }
        #[cfg(feature = "jwks-fetch")]
        let url = self.jwks_url;
        #[cfg(not(feature = "jwks-fetch"))]
        let url: Option<String> = None;
        let source = match (self.jwks, url) {
            (Some(Ok(set)), None) => KeySource::Static(Arc::new(KeyRing::from_set(&set))),
            (Some(Err(e)), None) => {
                return Err(ConfigError::new(format!("the JWKS does not parse: {e}")))
            }
            #[cfg(feature = "jwks-fetch")]
            (None, Some(url)) => KeySource::Remote(remote::RemoteJwks::new(url, self.remote)?),
            #[cfg(not(feature = "jwks-fetch"))]
            (None, Some(_)) => {
                return Err(ConfigError::new("a JWKS URL needs the jwks-fetch feature"))
            }
            (None, None) => return Err(ConfigError::new("no JWKS and no JWKS URL given")),
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "give either a JWKS or a JWKS URL, not both",
                ))
            }
        };
        Ok(JwtValidator {
            inner: Arc::new(Inner {
                source,
                issuer: self.issuer,
                audience: self.audience,
                algorithms,
                strict_typ: self.strict_typ,
            }),
        })
    }
}
