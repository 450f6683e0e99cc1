//! The verification pipeline: a plain async function over the request's method, path and
//! headers, so it can be tested and benchmarked without HTTP.
//!
//! Order: header syntax, then the proof's form and claims (cheap, pure), then the access token
//! (cached by hash), the key binding, the proof signature, and last the replay store, which is
//! never asked about a proof whose signature did not verify.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::algorithm::Algorithm;
use crate::charset::is_token68;
use crate::config::DpopConfig;
use crate::error::{sanitize_description, Error};
use crate::key::{KnownKey, VerifyingKey};
use crate::proof::{self, ProofClaims};
use crate::replay::{ReplayError, ReplayKey, Seen};
use crate::thumbprint::{thumbprint, Thumbprint};
use crate::token::cache::{Cached, KeySlot};
use crate::token::{AccessToken, TokenError};

/// The `DPoP` request header.
pub static DPOP: HeaderName = HeaderName::from_static("dpop");

/// What the layer proved about a request; handed to handlers through request extensions
/// (read it with the [`DpopAuth`](crate::extract::DpopAuth) extractor).
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    token: Arc<AccessToken>,
    jkt: Thumbprint,
    proof: Arc<ProofClaims>,
    alg: Algorithm,
    /// The client's nonce is in the last third of its life: send the next one.
    pub(crate) refresh_nonce: bool,
}

impl VerifiedRequest {
    /// The validated access token.
    #[must_use]
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// The thumbprint of the key that signed the proof, equal to the token's `cnf.jkt`.
    #[must_use]
    pub fn jkt(&self) -> &Thumbprint {
        &self.jkt
    }

    /// The claims of the proof.
    #[must_use]
    pub fn proof(&self) -> &ProofClaims {
        &self.proof
    }

    /// The algorithm the proof was signed with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// A request authenticated with a Bearer token (only when the layer accepts Bearer, and only
/// for tokens that are not DPoP-bound). Handed to handlers through request extensions.
#[derive(Debug, Clone)]
pub struct BearerRequest {
    token: Arc<AccessToken>,
}

impl BearerRequest {
    /// The validated access token.
    #[must_use]
    pub fn token(&self) -> &AccessToken {
        &self.token
    }
}

/// Put in the request extensions when a layer that allows anonymous requests let one through
/// without credentials; `Option<DpopAuth>` and `Option<TokenAuth>` then give `None`.
#[derive(Debug, Clone, Copy)]
pub struct Anonymous;

/// The outcome of [`authenticate`]: a DPoP request, or (when accepted) a Bearer request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Authenticated {
    /// `Authorization: DPoP` with a valid proof.
    Dpop(VerifiedRequest),
    /// `Authorization: Bearer` with an unbound token.
    Bearer(BearerRequest),
}

/// The proof's key: seen before (from the cache, with its thumbprint) or new (parsed and
/// checked, imported only if the proof is bound to the token).
enum ProofKey<'a> {
    Known(Arc<KnownKey>),
    New(crate::jwk::PublicJwk<'a>),
}

/// The scheme of the `Authorization` header.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Dpop,
    Bearer,
}

/// The access token from `Authorization: DPoP <token>` (or `Bearer <token>` when `bearer`);
/// `None` when there is no `Authorization` header or it uses another scheme.
fn credentials(
    headers: &HeaderMap,
    max_len: usize,
    bearer: bool,
) -> Result<Option<(Scheme, &[u8])>, Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::InvalidRequest("more than one Authorization header"));
    }
    // The one size check on the token, before anything reads the header: the scheme and a few
    // spaces fit in the slack.
    if value.len() > max_len + 16 {
        return Err(Error::InvalidToken("access token is too large".into()));
    }
    let value = value.as_bytes();
    // The scheme, then the token after one or more spaces (`rest` starts at the first space).
    let space = value.iter().position(|&b| b == b' ').unwrap_or(value.len());
    let (scheme, rest) = value.split_at_checked(space).unwrap_or((value, &[]));
    let scheme = if scheme.eq_ignore_ascii_case(b"DPoP") {
        Scheme::Dpop
    } else if bearer && scheme.eq_ignore_ascii_case(b"Bearer") {
        Scheme::Bearer
    } else {
        return Ok(None);
    };
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    match rest.get(start..).filter(|t| is_token68(t)) {
        Some(token) => Ok(Some((scheme, token))),
        None => Err(Error::InvalidRequest(match scheme {
            Scheme::Dpop => "Authorization DPoP credentials are not a token68 value",
            Scheme::Bearer => "Authorization Bearer credentials are not a token68 value",
        })),
    }
}

/// The `DPoP` header's value (the caller made sure there is at most one), size-checked
/// before anything else is done with it.
fn dpop_proof(value: Option<&HeaderValue>, max_len: usize) -> Result<&[u8], Error> {
    let Some(value) = value else {
        return Err(Error::InvalidProof("missing DPoP proof header"));
    };
    if value.len() > max_len {
        return Err(Error::InvalidProof("DPoP proof is too large"));
    }
    Some(value.as_bytes())
        .filter(|v| is_token68(v))
        .ok_or(Error::InvalidRequest("DPoP header is not a token68 value"))
}

/// The access token as text, for the validator (token68 is ASCII, so this never fails).
fn token_text(token: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(token)
        .map_err(|_| Error::InvalidRequest("Authorization credentials are not ASCII"))
}

fn token_error(e: TokenError) -> Error {
    match e {
        TokenError::Invalid(r) => Error::InvalidToken(sanitize_description(&r).into_owned().into()),
        TokenError::Unavailable(r) => {
            tracing::warn!(target: "tower_dpop", reason = %r, "token validation unavailable");
            Error::Unavailable("access token validation is unavailable".into())
        }
    }
}

/// Runs every check of RFC 9449 sections 4.3 and 7.1 on one request.
///
/// `path` is the request path as the client sent it (a query, if present, is ignored). A
/// Bearer request, even when the layer accepts Bearer, is [`Error::MissingCredentials`] here:
/// use [`authenticate`] for what the service does.
///
/// # Errors
/// The first check that fails, as an [`Error`].
pub async fn verify_request(
    config: &DpopConfig,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<VerifiedRequest, Error> {
    match authenticate(config, method, path, headers).await? {
        Authenticated::Dpop(v) => Ok(v),
        Authenticated::Bearer(_) => Err(Error::MissingCredentials),
    }
}

/// What the layer's service runs: DPoP requests through every check of [`verify_request`],
/// and, when the layer accepts Bearer, Bearer requests with unbound tokens.
///
/// # Errors
/// The first check that fails, as an [`Error`].
pub async fn authenticate(
    config: &DpopConfig,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Authenticated, Error> {
    authenticate_from(config, method, path, headers, None).await
}

/// [`authenticate`], with the configured public origin a trusted proxy reported, if any: the
/// proof's `htu` must then be for that origin, not merely for any configured one.
pub(crate) async fn authenticate_from(
    config: &DpopConfig,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    forwarded: Option<&crate::htu::PublicOrigin>,
) -> Result<Authenticated, Error> {
    // Repeated fields are ambiguous whatever else the request holds.
    let mut dpop_values = headers.get_all(&DPOP).iter();
    let dpop_value = dpop_values.next();
    if dpop_values.next().is_some() {
        return Err(Error::InvalidRequest("more than one DPoP header"));
    }
    let Some((scheme, token)) = credentials(headers, config.max_token_len, config.allow_bearer)?
    else {
        return Err(Error::MissingCredentials);
    };
    if scheme == Scheme::Bearer {
        return bearer(config, token).await.map(Authenticated::Bearer);
    }
    let raw_proof = dpop_proof(dpop_value, config.max_proof_len)?;

    // The proof's form and claims: pure and cheap. A header seen before (the same base64url
    // text, under this layer's configuration, in a proof whose signature verified) is not
    // decoded again: its `alg`, key and thumbprint come from the cache.
    let parts = proof::split(raw_proof).map_err(Error::InvalidProof)?;
    // A token seen before comes with its hash and the key its client used last time.
    let cached = config.tokens.get(token);
    let remembered = cached
        .as_ref()
        .and_then(|c| c.key.get(parts.header))
        .cloned();
    let header_json;
    let (alg, proof_key) = match remembered.or_else(|| config.keys.get(parts.header)) {
        Some(known) => (known.alg, ProofKey::Known(known)),
        None => {
            header_json = parts.decode_header().map_err(Error::InvalidProof)?;
            let header = proof::parse_header(&header_json, &config.algorithms)
                .map_err(Error::InvalidProof)?;
            let jwk = proof::parse_jwk(header.jwk, header.alg).map_err(Error::InvalidProof)?;
            (header.alg, ProofKey::New(jwk))
        }
    };
    let claims_json = parts.decode_payload().map_err(Error::InvalidProof)?;
    let claims = proof::parse_claims(&claims_json).map_err(Error::InvalidProof)?;
    if claims.htm != method.as_str() {
        return Err(Error::InvalidProof("htm does not match the request method"));
    }
    let htu_ok = match forwarded {
        Some(origin) => origin.matches(&claims.htu, path),
        None => crate::htu::matches_any(&config.origins, &claims.htu, path),
    };
    if !htu_ok {
        return Err(Error::InvalidProof("htu does not match the request URI"));
    }
    let now = config.clock.unix_seconds();
    let max_age = config.max_age.as_secs();
    if claims.iat.saturating_add(max_age) < now {
        return Err(Error::InvalidProof("proof iat is too old"));
    }
    if claims.iat > now.saturating_add(config.future_leeway.as_secs()) {
        return Err(Error::InvalidProof("proof iat is in the future"));
    }
    // A new token is hashed here, and validated only once the proof is known to be made for it.
    let token_hash = token_hash(token, cached.as_ref());
    let mut ath = [0u8; 32];
    let ath_ok = matches!(
        URL_SAFE_NO_PAD.decode_slice(claims.ath.as_bytes(), &mut ath),
        Ok(32)
    ) && bool::from(ath.ct_eq(&token_hash));
    if !ath_ok {
        return Err(Error::InvalidProof("ath does not match the access token"));
    }

    // The access token: validated once, then served from the cache until `exp`.
    let (access, key_slot) = access_token(config, token, cached, token_hash, now).await?;
    if access.jkt().is_none() {
        return Err(Error::InvalidToken(
            "access token is not DPoP-bound (no cnf.jkt)".into(),
        ));
    }
    let tp = match &proof_key {
        ProofKey::Known(known) => known.thumbprint,
        ProofKey::New(jwk) => thumbprint(jwk),
    };
    if !access.is_bound_to(&tp) {
        return Err(Error::InvalidToken("Invalid DPoP key binding".into()));
    }

    // The signature: the one expensive step. A new key is imported only for a proof that is
    // bound to the token, and remembered only once its signature verified.
    let signature = parts.decode_signature().map_err(Error::InvalidProof)?;
    let (key, is_new) = match proof_key {
        ProofKey::Known(known) => (known, false),
        ProofKey::New(jwk) => {
            let key = VerifyingKey::import(alg, &jwk).map_err(Error::InvalidProof)?;
            let known = KnownKey {
                alg,
                thumbprint: tp,
                key,
            };
            (Arc::new(known), true)
        }
    };
    if !key.key.verify(parts.signing_input, signature.as_bytes()) {
        return Err(Error::InvalidProof("proof signature is invalid"));
    }
    key_slot.remember(parts.header, &key);
    if is_new {
        config.keys.insert(parts.header, key);
    }

    // The server nonce, when the policy asks for one: reported only for signed proofs.
    let mut refresh_nonce = false;
    if let Some(nonces) = config.nonce_required(method, path, headers) {
        let Some(nonce) = claims.nonce.as_deref() else {
            return Err(Error::UseNonce(
                "Resource server requires nonce in DPoP proof",
            ));
        };
        let issued_at = nonces
            .check(nonce, now)
            .map_err(|e| Error::UseNonce(e.description()))?;
        refresh_nonce = nonces.should_refresh(issued_at, now);
    }

    // Replay, last: only signed proofs reach the store.
    let ttl = Duration::from_secs(
        claims
            .iat
            .saturating_add(max_age)
            .saturating_sub(now)
            .max(1),
    );
    let replay_key = ReplayKey::new(&tp, &claims.jti);
    let seen = match config.replay.check_and_insert_now(replay_key, ttl) {
        Some(answer) => answer,
        None => config.replay.check_and_insert(replay_key, ttl).await,
    };
    match seen {
        Ok(Seen::First) => {}
        Ok(Seen::Replay) => return Err(Error::InvalidProof("proof jti was already used")),
        Err(e) => {
            tracing::error!(target: "tower_dpop", error = %e, "replay store failed; request refused");
            return Err(Error::Unavailable(match e {
                ReplayError::Full => "replay cache is full".into(),
                _ => "replay store is unavailable".into(),
            }));
        }
    }

    Ok(Authenticated::Dpop(VerifiedRequest {
        token: access,
        jkt: tp,
        proof: Arc::new(claims.to_owned_claims()),
        alg,
        refresh_nonce,
    }))
}

/// The token's SHA-256: from the cache for a token seen before, computed for a new one.
fn token_hash(token: &[u8], cached: Option<&Cached>) -> [u8; 32] {
    cached.map_or_else(|| Sha256::digest(token).into(), |c| c.hash)
}

/// The access token: validated once, then served from the cache until `exp`; time claims
/// checked on every request. `cached` is what the cache held for the token's text. Also
/// returns the token's key slot.
async fn access_token(
    config: &DpopConfig,
    token: &[u8],
    cached: Option<Cached>,
    token_hash: [u8; 32],
    now: u64,
) -> Result<(Arc<AccessToken>, Arc<KeySlot>), Error> {
    let (access, slot) = match cached {
        Some(cached) => (cached.token, cached.key),
        None => {
            let fresh = Arc::new(
                config
                    .validator
                    .validate(token_text(token)?)
                    .await
                    .map_err(token_error)?,
            );
            let slot = config.tokens.insert(token, token_hash, fresh.clone(), now);
            (fresh, slot)
        }
    };
    let leeway = config.token_leeway.as_secs();
    if access
        .expires_at()
        .is_some_and(|exp| exp.saturating_add(leeway) <= now)
    {
        return Err(Error::InvalidToken("access token has expired".into()));
    }
    if access
        .not_before()
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err(Error::InvalidToken("access token is not yet valid".into()));
    }
    Ok((access, slot))
}

/// A Bearer request: a valid token that is not DPoP-bound (RFC 9449 section 7.2).
async fn bearer(config: &DpopConfig, token: &[u8]) -> Result<BearerRequest, Error> {
    let now = config.clock.unix_seconds();
    let cached = config.tokens.get(token);
    let token_hash = token_hash(token, cached.as_ref());
    let (access, _) = access_token(config, token, cached, token_hash, now)
        .await
        .map_err(|e| match e {
            Error::InvalidToken(r) => Error::InvalidBearerToken(r),
            other => other,
        })?;
    if access.jkt().is_some() {
        return Err(Error::InvalidBearerToken(
            "DPoP-bound access token presented as a Bearer token".into(),
        ));
    }
    Ok(BearerRequest { token: access })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::testing::{dpop_headers, ClientKey, TestIssuer};
    use crate::DpopLayer;

    const T0: u64 = 1_800_000_000;
    const URL: &str = "https://api.example.com/r";

    /// A client, its bound token and a layer with this key cache capacity.
    fn setup(key_cache: u64) -> (ClientKey, String, DpopLayer) {
        let issuer = TestIssuer::new();
        let client = ClientKey::generate(Algorithm::ES256);
        let token = issuer.token_for(client.jkt(), T0 + 3600);
        let layer = DpopLayer::builder()
            .public_origin("https://api.example.com")
            .token_validator(issuer.validator())
            .clock(ManualClock::at_unix(T0))
            .key_cache_capacity(key_cache)
            .build()
            .unwrap();
        (client, token, layer)
    }

    #[tokio::test]
    async fn a_key_is_remembered_only_once_a_proof_signed_with_it_verified() {
        let (client, token, layer) = setup(10_000);
        let config = layer.config();
        // Bound to the token, but the signature is another message's.
        let good = client.proof("GET", URL).access_token(&token).iat(T0).sign();
        let other = client.proof("GET", URL).access_token(&token).iat(T0).sign();
        let (input, _) = good.rsplit_once('.').unwrap();
        let (_, signature) = other.rsplit_once('.').unwrap();
        let forged = format!("{input}.{signature}");
        let header = good.split('.').next().unwrap().as_bytes();
        let r = verify_request(config, &Method::GET, "/r", &dpop_headers(&token, &forged)).await;
        assert_eq!(
            r.unwrap_err(),
            Error::InvalidProof("proof signature is invalid")
        );
        assert!(config.keys.get(header).is_none());
        let slot = config
            .tokens
            .get(token.as_bytes())
            .expect("token validated")
            .key;
        assert!(slot.get(header).is_none(), "nor with the token");

        let r = verify_request(config, &Method::GET, "/r", &dpop_headers(&token, &good)).await;
        assert!(r.is_ok(), "{r:?}");
        let known = config.keys.get(header).expect("remembered");
        assert_eq!(known.thumbprint.to_base64url(), client.jkt());
        let with_token = slot.get(header).expect("remembered with the token");
        assert!(Arc::ptr_eq(with_token, &known));

        // The cached key still checks every signature.
        let r = verify_request(config, &Method::GET, "/r", &dpop_headers(&token, &forged)).await;
        assert_eq!(
            r.unwrap_err(),
            Error::InvalidProof("proof signature is invalid")
        );
    }

    /// `key_cache_capacity(0)` remembers no key anywhere: not in the key cache, not with the
    /// token (so every proof's key is imported again, which the cold benchmark relies on).
    #[tokio::test]
    async fn a_disabled_key_cache_remembers_no_key_with_the_token_either() {
        let (client, token, layer) = setup(0);
        let config = layer.config();
        let proof = client.proof("GET", URL).access_token(&token).iat(T0).sign();
        let header = proof.split('.').next().unwrap().as_bytes();
        let r = verify_request(config, &Method::GET, "/r", &dpop_headers(&token, &proof)).await;
        assert!(r.is_ok(), "{r:?}");
        assert!(config.keys.get(header).is_none());
        let cached = config.tokens.get(token.as_bytes()).expect("token cached");
        assert!(cached.key.get(header).is_none());
    }
}
