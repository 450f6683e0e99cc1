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
use http::{HeaderMap, HeaderValue, Method};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::authenticated::{Authenticated, BearerRequest, VerifiedRequest};
use crate::error::{sanitize_description, Error, ErrorKind};
use crate::layer::DpopConfig;
use crate::proof;
use crate::proof::algorithm::Algorithm;
use crate::proof::charset::is_token68;
use crate::proof::key::{KnownKey, VerifyingKey};
use crate::proof::thumbprint::{thumbprint, Thumbprint};
use crate::replay::quota::QuotaError;
use crate::replay::{ReplayError, ReplayKey, Seen};
use crate::token::cache::{Cached, KeySlot};
use crate::token::{AccessToken, TokenError};

/// The proof's key: seen before (from the cache, with its thumbprint) or new (parsed and
/// checked, imported only if the proof is bound to the token).
enum ProofKey<'a> {
    Known(Arc<KnownKey>),
    New(crate::proof::jwk::PublicJwk<'a>),
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
        return Err(Error::new(
            ErrorKind::MalformedRequest,
            "more than one Authorization header",
        ));
    }
    // The one size check on the token, before anything reads the header: the scheme and a few
    // spaces fit in the slack.
    if value.len() > max_len + 16 {
        return Err(Error::new(
            ErrorKind::TokenTooLarge,
            "access token is too large",
        ));
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
        None => Err(Error::new(
            ErrorKind::MalformedRequest,
            match scheme {
                Scheme::Dpop => "Authorization DPoP credentials are not a token68 value",
                Scheme::Bearer => "Authorization Bearer credentials are not a token68 value",
            },
        )),
    }
}

/// The `DPoP` header's value (the caller made sure there is at most one), size-checked
/// before anything else is done with it.
fn dpop_proof(value: Option<&HeaderValue>, max_len: usize) -> Result<&[u8], Error> {
    let Some(value) = value else {
        return Err(Error::new(
            ErrorKind::ProofMissing,
            "missing DPoP proof header",
        ));
    };
    if value.len() > max_len {
        return Err(Error::new(
            ErrorKind::ProofTooLarge,
            "DPoP proof is too large",
        ));
    }
    Some(value.as_bytes())
        .filter(|v| is_token68(v))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::MalformedRequest,
                "DPoP header is not a token68 value",
            )
        })
}

/// The access token as text, for the validator (token68 is ASCII, so this never fails).
fn token_text(token: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(token).map_err(|_| {
        Error::new(
            ErrorKind::MalformedRequest,
            "Authorization credentials are not ASCII",
        )
    })
}

/// A validator's description, safe for the challenge; a static one that needs no change stays
/// static (no allocation).
fn safe_description(reason: std::borrow::Cow<'static, str>) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow;
    match sanitize_description(&reason) {
        Cow::Borrowed(_) => reason,
        Cow::Owned(clean) => Cow::Owned(clean),
    }
}

fn token_error(e: TokenError) -> Error {
    match e {
        TokenError::Invalid(r) => Error::new(ErrorKind::TokenInvalid, safe_description(r)),
        TokenError::Unavailable(r) => {
            tracing::warn!(target: "tower_dpop", reason = %r, "token validation unavailable");
            Error::new(
                ErrorKind::Unavailable,
                "access token validation is unavailable",
            )
            .with_source(TokenError::Unavailable(r))
        }
    }
}

/// Runs every check of RFC 9449 sections 4.3 and 7.1 (and 7.2 for Bearer) on one request.
///
/// `path` is the request path as the client sent it (a query, if present, is ignored);
/// `forwarded` the configured public origin a trusted proxy reported, if any: the proof's `htu`
/// must then be for that origin, not merely for any configured one.
pub(crate) async fn authenticate(
    config: &DpopConfig,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    forwarded: Option<&crate::proof::htu::PublicOrigin>,
) -> Result<Authenticated, Error> {
    // Repeated fields are ambiguous whatever else the request holds.
    let mut dpop_values = headers.get_all(&crate::header::DPOP).iter();
    let dpop_value = dpop_values.next();
    if dpop_values.next().is_some() {
        return Err(Error::new(
            ErrorKind::MalformedRequest,
            "more than one DPoP header",
        ));
    }
    let Some((scheme, token)) = credentials(headers, config.max_token_len, config.allow_bearer)?
    else {
        // Anonymous only without any credentials: a request that carries a `DPoP` proof, or
        // an `Authorization` field of another scheme (Basic, an unknown one, Bearer where
        // Bearer is not accepted), is refused with the challenge, never let through.
        if config.allow_anonymous && dpop_value.is_none() && !headers.contains_key(AUTHORIZATION) {
            return Ok(Authenticated::Anonymous);
        }
        return Err(missing_credentials());
    };
    if scheme == Scheme::Bearer {
        return bearer(config, token).await.map(Authenticated::Bearer);
    }
    let raw_proof = dpop_proof(dpop_value, config.max_proof_len)?;

    // The proof's form and claims: pure and cheap. A header seen before (the same base64url
    // text, under this layer's configuration, in a proof whose signature verified) is not
    // decoded again: its `alg`, key and thumbprint come from the cache.
    let malformed = |reason| Error::new(ErrorKind::ProofMalformed, reason);
    let parts = proof::split(raw_proof).map_err(malformed)?;
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
            header_json = parts.decode_header().map_err(malformed)?;
            let header = proof::parse_header(&header_json, &config.algorithms)?;
            let jwk = proof::parse_jwk(header.jwk, header.alg)?;
            (header.alg, ProofKey::New(jwk))
        }
    };
    let claims_json = parts.decode_payload().map_err(malformed)?;
    let claims = proof::parse_claims(&claims_json).map_err(malformed)?;
    if claims.htm != method.as_str() {
        return Err(Error::new(
            ErrorKind::ProofMethod,
            "htm does not match the request method",
        ));
    }
    let htu_ok = match forwarded {
        Some(origin) => origin.matches(&claims.htu, path),
        None => crate::proof::htu::matches_any(&config.origins, &claims.htu, path),
    };
    if !htu_ok {
        log_htu_mismatch(config, forwarded, &claims.htu, path);
        return Err(Error::new(
            ErrorKind::ProofUri,
            "htu does not match the request URI",
        ));
    }
    // The window is decided to the millisecond: a proof is refused from the very instant it
    // is too old, not a second later.
    let now_ms = config.clock.unix_millis();
    let now = now_ms / 1000;
    let iat_ms = claims.iat.saturating_mul(1000);
    if iat_ms.saturating_add(millis(config.max_age)) < now_ms {
        return Err(Error::new(ErrorKind::ProofTooOld, "proof iat is too old"));
    }
    if iat_ms > now_ms.saturating_add(millis(config.future_leeway)) {
        return Err(Error::new(
            ErrorKind::ProofFromTheFuture,
            "proof iat is in the future",
        ));
    }
    // A new token is hashed here, and validated only once the proof is known to be made for it.
    let token_hash = token_hash(token, cached.as_ref());
    let mut ath = [0u8; 32];
    let ath_ok = matches!(
        URL_SAFE_NO_PAD.decode_slice(claims.ath.as_bytes(), &mut ath),
        Ok(32)
    ) && bool::from(ath.ct_eq(&token_hash));
    if !ath_ok {
        return Err(Error::new(
            ErrorKind::ProofTokenHash,
            "ath does not match the access token",
        ));
    }

    // The access token and the signature, in the order that keeps a forged request cheap. A
    // token known without I/O (cached, or answered offline by the validator: a JWT whose key is
    // at hand) is checked first, so a forged token costs one token signature check and no proof
    // check. A token that needs an outbound call (a key-set fetch, introspection) is validated
    // only once the proof's signature verified: a request from someone who holds no key never
    // causes one.
    let tp = match &proof_key {
        ProofKey::Known(known) => known.thumbprint,
        ProofKey::New(jwk) => thumbprint(jwk),
    };
    let signature = parts.decode_signature().map_err(malformed)?;
    let verify = |proof_key| -> Result<(Arc<KnownKey>, bool), Error> {
        verify_proof(
            proof_key,
            alg,
            tp,
            parts.signing_input,
            signature.as_bytes(),
        )
    };
    let (access, key_slot, (key, is_new)) =
        match known_token(config, token, cached, token_hash, now_ms)? {
            Some((access, slot)) => {
                check_binding(config, &access, &tp, now)?;
                (access, slot, verify(proof_key)?)
            }
            None => {
                let key = verify(proof_key)?;
                let (access, slot) = validate_token(config, token, token_hash, now_ms).await?;
                check_binding(config, &access, &tp, now)?;
                (access, slot, key)
            }
        };
    key_slot.remember(parts.header, &key);
    if is_new {
        config.keys.insert(parts.header, key);
    }

    // The server nonce, when the policy asks for one: reported only for signed proofs.
    let mut refresh_nonce = false;
    if let Some(nonces) = config.nonce_required(method, path, headers) {
        let Some(nonce) = claims.nonce.as_deref() else {
            return Err(Error::new(
                ErrorKind::NonceRequired,
                "Resource server requires nonce in DPoP proof",
            ));
        };
        let issued_at = nonces
            .check(nonce, now)
            .map_err(|e| Error::new(ErrorKind::NonceInvalid, e.description()))?;
        refresh_nonce = nonces.should_refresh(issued_at, now);
    }

    // Replay, last: only signed proofs reach the store. Every entry lives the whole replay
    // window (max age + future leeway + clock skew allowance), whatever the proof's `iat`: the
    // last instant any instance within the allowance could accept the proof is inside it.
    let reserved = config.quota.reserve(&tp, now_ms).map_err(|e| match e {
        QuotaError::Exceeded(wait) => Error::key_quota_exceeded(wait),
        QuotaError::Full => Error::new(ErrorKind::Unavailable, "replay quota table is full"),
    })?;
    let ttl = config.replay_ttl;
    let replay_key = ReplayKey::new(&tp, &claims.jti);
    let seen = config.replay.check_and_insert(replay_key, ttl).await;
    if seen != Ok(Seen::First) {
        config.quota.release(&tp, reserved);
    }
    match seen {
        Ok(Seen::First) => {}
        Ok(Seen::Replay) => {
            return Err(Error::new(
                ErrorKind::ProofReplayed,
                "proof jti was already used",
            ))
        }
        Err(e) => {
            tracing::error!(target: "tower_dpop", error = %e, "replay store failed; request refused");
            let description = match e {
                ReplayError::Full => "replay cache is full",
                _ => "replay store is unavailable",
            };
            return Err(Error::new(ErrorKind::Unavailable, description).with_source(e));
        }
    }

    Ok(Authenticated::Dpop(VerifiedRequest::new(
        access,
        tp,
        Arc::new(claims.to_owned_claims()),
        alg,
        refresh_nonce,
    )))
}

/// At debug level, what `htu` was compared with and what the proof said, as origin and path
/// (never the query, the proof or the token), so a scheme, port or prefix mix-up shows at once.
fn log_htu_mismatch(
    config: &DpopConfig,
    forwarded: Option<&crate::proof::htu::PublicOrigin>,
    htu: &str,
    path: &str,
) {
    if !tracing::enabled!(target: "tower_dpop", tracing::Level::DEBUG) {
        return;
    }
    let expected: Vec<&str> = match forwarded {
        Some(origin) => vec![origin.as_str()],
        None => config.origins.iter().map(|o| o.as_str()).collect(),
    };
    // The proof's `htu` up to its query or fragment, split after the authority; bounded.
    let htu = htu.split(['?', '#']).next().unwrap_or("");
    let htu = htu.get(..htu.len().min(512)).unwrap_or("");
    let (htu_origin, htu_path) = match htu.find("://") {
        Some(i) => {
            let rest = htu.get(i + 3..).unwrap_or("");
            let split = rest.find('/').map_or(htu.len(), |j| i + 3 + j);
            (
                htu.get(..split).unwrap_or(""),
                htu.get(split..).unwrap_or(""),
            )
        }
        None => ("", htu),
    };
    tracing::debug!(
        target: "tower_dpop",
        expected_origins = ?expected,
        expected_path = ?path,
        htu_origin = ?htu_origin,
        htu_path = ?htu_path,
        "htu does not match the request URI"
    );
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn missing_credentials() -> Error {
    Error::new(
        ErrorKind::MissingCredentials,
        "no DPoP credentials in the request",
    )
}

/// The token's SHA-256: from the cache for a token seen before, computed for a new one.
fn token_hash(token: &[u8], cached: Option<&Cached>) -> [u8; 32] {
    cached.map_or_else(|| Sha256::digest(token).into(), |c| c.hash)
}

/// A validated token and its key slot in the token cache.
type Validated = (Arc<AccessToken>, Arc<KeySlot>);

/// Verifies the proof's signature with its key; a new key is imported here. Returns the key
/// and whether it is new (to be remembered once the request is accepted).
fn verify_proof(
    proof_key: ProofKey<'_>,
    alg: Algorithm,
    thumbprint: Thumbprint,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(Arc<KnownKey>, bool), Error> {
    let (key, is_new) = match proof_key {
        ProofKey::Known(known) => (known, false),
        ProofKey::New(jwk) => {
            let key = VerifyingKey::import(alg, &jwk)
                .map_err(|reason| Error::new(ErrorKind::ProofKey, reason))?;
            let known = KnownKey {
                alg,
                thumbprint,
                key,
            };
            (Arc::new(known), true)
        }
    };
    if !key.key.verify(signing_input, signature) {
        return Err(Error::new(
            ErrorKind::ProofSignature,
            "proof signature is invalid",
        ));
    }
    Ok((key, is_new))
}

/// The validated token and its key slot, when they can be had without I/O: from the cache,
/// or from the validator's offline answer (then cached). `Ok(None)`: the validator needs an
/// outbound call. A token refused shortly before is refused again from the cache.
fn known_token(
    config: &DpopConfig,
    token: &[u8],
    cached: Option<Cached>,
    token_hash: [u8; 32],
    now_ms: u64,
) -> Result<Option<Validated>, Error> {
    if let Some(cached) = cached {
        return Ok(Some((cached.token, cached.key)));
    }
    if let Some(reason) = config.tokens.refused(&token_hash, now_ms) {
        return Err(Error::new(ErrorKind::TokenInvalid, reason));
    }
    match config.validator.validate_offline(token_text(token)?) {
        None => Ok(None),
        // Not remembered when refused: answering offline costs no more than a lookup would
        // save, and a forged token is new each time anyway.
        Some(answer) => accepted_token(config, token, token_hash, now_ms, answer, false).map(Some),
    }
}

/// Validates a token the cache does not know, outbound calls allowed.
async fn validate_token(
    config: &DpopConfig,
    token: &[u8],
    token_hash: [u8; 32],
    now_ms: u64,
) -> Result<Validated, Error> {
    let answer = config.validator.validate(token_text(token)?).await;
    accepted_token(config, token, token_hash, now_ms, answer, true)
}

/// Caches the validator's answer: a valid token until its `exp`, a refused one briefly when
/// `remember_refusal` (an answer that took an outbound call).
fn accepted_token(
    config: &DpopConfig,
    token: &[u8],
    token_hash: [u8; 32],
    now_ms: u64,
    answer: Result<AccessToken, TokenError>,
    remember_refusal: bool,
) -> Result<Validated, Error> {
    match answer {
        Ok(access) => {
            let access = Arc::new(access);
            let slot = config
                .tokens
                .insert(token, token_hash, access.clone(), now_ms / 1000);
            Ok((access, slot))
        }
        Err(TokenError::Invalid(reason)) => {
            let reason = safe_description(reason);
            if remember_refusal {
                config
                    .tokens
                    .insert_refused(token_hash, reason.clone(), now_ms);
            }
            Err(Error::new(ErrorKind::TokenInvalid, reason))
        }
        Err(e) => Err(token_error(e)),
    }
}

/// The token's time claims, checked on every request, cached or not.
fn check_times(config: &DpopConfig, access: &AccessToken, now: u64) -> Result<(), Error> {
    let leeway = config.token_leeway.as_secs();
    if access
        .expires_at()
        .is_some_and(|exp| exp.saturating_add(leeway) <= now)
    {
        return Err(Error::new(
            ErrorKind::TokenExpired,
            "access token has expired",
        ));
    }
    if access
        .not_before()
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err(Error::new(
            ErrorKind::TokenNotYetValid,
            "access token is not yet valid",
        ));
    }
    Ok(())
}

/// The token is current and bound with `cnf.jkt` to the proof's key.
fn check_binding(
    config: &DpopConfig,
    access: &AccessToken,
    thumbprint: &Thumbprint,
    now: u64,
) -> Result<(), Error> {
    check_times(config, access, now)?;
    if access.jkt().is_none() {
        return Err(Error::new(
            ErrorKind::TokenNotBound,
            "access token is not DPoP-bound (no cnf.jkt)",
        ));
    }
    if !access.is_bound_to(thumbprint) {
        return Err(Error::new(
            ErrorKind::TokenKeyMismatch,
            "Invalid DPoP key binding",
        ));
    }
    Ok(())
}

/// A Bearer request: a valid token that is not DPoP-bound (RFC 9449 section 7.2). There is
/// no proof: the token is the whole credential, so it is validated as it comes (offline when
/// the validator can, outbound otherwise).
async fn bearer(config: &DpopConfig, token: &[u8]) -> Result<BearerRequest, Error> {
    let now_ms = config.clock.unix_millis();
    let now = now_ms / 1000;
    let cached = config.tokens.get(token);
    let token_hash = token_hash(token, cached.as_ref());
    let as_bearer = |e: Error| match e {
        // The token's errors go in the Bearer challenge; backend failures have none.
        e if e.error_code() == Some("invalid_token") => e.bearer(),
        other => other,
    };
    let (access, _) = match known_token(config, token, cached, token_hash, now_ms) {
        Ok(Some(known)) => known,
        Ok(None) => validate_token(config, token, token_hash, now_ms)
            .await
            .map_err(as_bearer)?,
        Err(e) => return Err(as_bearer(e)),
    };
    check_times(config, &access, now).map_err(as_bearer)?;
    // RFC 9449 section 7.2 for DPoP; the same for any sender-constrained token (RFC 8705
    // mutual TLS, `cnf.x5t#S256`): its sender must prove possession, which Bearer cannot.
    if access.is_sender_constrained() {
        return Err(Error::new(
            ErrorKind::TokenSenderConstrained,
            "sender-constrained access token (cnf) presented as a Bearer token",
        )
        .bearer());
    }
    Ok(BearerRequest::new(access))
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
        let r = authenticate(
            config,
            &Method::GET,
            "/r",
            &dpop_headers(&token, &forged),
            None,
        )
        .await;
        assert_eq!(
            r.unwrap_err(),
            Error::new(ErrorKind::ProofSignature, "proof signature is invalid")
        );
        assert!(config.keys.get(header).is_none());
        // A validator that answers offline has cached the token by now; one that needs I/O
        // has not even been asked (the signature comes first for those).
        if let Some(cached) = config.tokens.get(token.as_bytes()) {
            assert!(cached.key.get(header).is_none(), "nor with the token");
        }

        let r = authenticate(
            config,
            &Method::GET,
            "/r",
            &dpop_headers(&token, &good),
            None,
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        let known = config.keys.get(header).expect("remembered");
        assert_eq!(known.thumbprint.to_base64url(), client.jkt());
        let slot = config.tokens.get(token.as_bytes()).expect("cached").key;
        let with_token = slot.get(header).expect("remembered with the token");
        assert!(Arc::ptr_eq(with_token, &known));

        // The cached key still checks every signature.
        let r = authenticate(
            config,
            &Method::GET,
            "/r",
            &dpop_headers(&token, &forged),
            None,
        )
        .await;
        assert_eq!(
            r.unwrap_err(),
            Error::new(ErrorKind::ProofSignature, "proof signature is invalid")
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
        let r = authenticate(
            config,
            &Method::GET,
            "/r",
            &dpop_headers(&token, &proof),
            None,
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        assert!(config.keys.get(header).is_none());
        let cached = config.tokens.get(token.as_bytes()).expect("token cached");
        assert!(cached.key.get(header).is_none());
    }
}
