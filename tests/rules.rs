//! One test per rule a resource server must enforce (RFC 9449 sections 4.3, 7.1 and 7.2,
//! RFC 6750 section 3.1), run through the verification pipeline with an injected clock.
//! Each asserts the exact rejection, so removing the rule turns it red.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::json;
use tower_dpop::clock::ManualClock;
use tower_dpop::replay::{ReplayError, ReplayKey, ReplayStore, Seen};
use tower_dpop::testing::{dpop_headers, random_id, ClientKey, TestIssuer};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::token::{AccessToken, TokenError, TokenValidator};
use tower_dpop::{Algorithm, DpopLayer, DpopLayerBuilder, Error, ErrorKind};

const T0: u64 = 1_800_000_000;
const ORIGIN: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/api/me";

struct Fixture {
    issuer: TestIssuer,
    client: ClientKey,
    token: String,
    clock: ManualClock,
    layer: DpopLayer,
}

fn validator(issuer: &TestIssuer) -> JwtValidator {
    JwtValidator::builder()
        .jwks_json(&issuer.jwks_json())
        .issuer(issuer.issuer())
        .audience("https://api.example.com")
        .build()
        .unwrap()
}

impl Fixture {
    fn new() -> Self {
        Self::with(Algorithm::ES256, |b| b)
    }

    fn with(alg: Algorithm, configure: impl FnOnce(DpopLayerBuilder) -> DpopLayerBuilder) -> Self {
        let issuer = TestIssuer::new();
        let client = ClientKey::generate(alg);
        let token = issuer.token_for(client.jkt(), T0 + 3600);
        let clock = ManualClock::at_unix(T0);
        let builder = DpopLayer::builder()
            .public_origin(ORIGIN)
            .token_validator(validator(&issuer))
            .clock(clock.clone());
        let layer = configure(builder).build().unwrap();
        Self {
            issuer,
            client,
            token,
            clock,
            layer,
        }
    }

    fn proof(&self) -> tower_dpop::testing::ProofBuilder<'_> {
        self.client
            .proof("GET", URL)
            .access_token(&self.token)
            .iat(T0)
    }

    /// A proof for the token signed by `other`, carrying the bound key's `jwk`.
    fn forged_by(&self, other: &ClientKey) -> String {
        other
            .proof("GET", URL)
            .access_token(&self.token)
            .iat(T0)
            .header("jwk", self.client.public_jwk().clone())
            .sign()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        proof: &str,
    ) -> Result<(), Error> {
        self.layer
            .authenticate(&tower_dpop::testing::request_parts(
                &method,
                path,
                &dpop_headers(token, proof),
            ))
            .await
            .map(|_| ())
    }

    async fn get(&self, proof: &str) -> Result<(), Error> {
        self.send(Method::GET, "/api/me", &self.token, proof).await
    }
}

/// base64url of a JSON value's text, for hand-made JWS parts.
fn b64(v: serde_json::Value) -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        v.to_string(),
    )
}

/// The kind of a token refusal by its reason: the layer's own time checks, else the validator's.
fn token_kind(reason: &str) -> ErrorKind {
    match reason {
        "access token has expired" => ErrorKind::TokenExpired,
        "access token is not yet valid" => ErrorKind::TokenNotYetValid,
        _ => ErrorKind::TokenInvalid,
    }
}

fn missing() -> Error {
    Error::new(
        ErrorKind::MissingCredentials,
        "no DPoP credentials in the request",
    )
}

fn proof_err(kind: ErrorKind, reason: &'static str) -> Result<(), Error> {
    Err(Error::new(kind, reason))
}

#[tokio::test]
async fn a_valid_request_is_accepted_for_every_default_algorithm() {
    for &alg in Algorithm::DEFAULT {
        let f = Fixture::with(alg, |b| b);
        let ok = f
            .layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/api/me",
                &dpop_headers(&f.token, &f.proof().sign()),
            ))
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let tower_dpop::Authenticated::Dpop(ok) = ok else {
            panic!("{alg}: not a DPoP request: {ok:?}");
        };
        assert_eq!(ok.algorithm(), alg);
        assert_eq!(ok.jkt().to_base64url(), f.client.jkt());
        assert_eq!(ok.token().subject(), Some("alice"));
    }
}

// ---- 1. Headers ----------------------------------------------------------------------

#[tokio::test]
async fn header_rules() {
    let f = Fixture::new();
    let proof = f.proof().sign();
    let auth = format!("DPoP {}", f.token);
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Error);
    let cases: Vec<Case> = vec![
        ("nothing at all", vec![], missing()),
        (
            "proof without token",
            vec![("dpop", proof.clone())],
            missing(),
        ),
        (
            "bearer scheme",
            vec![
                ("authorization", format!("Bearer {}", f.token)),
                ("dpop", proof.clone()),
            ],
            missing(),
        ),
        (
            "basic scheme",
            vec![("authorization", "Basic YTpi".into())],
            missing(),
        ),
        (
            "two authorization fields",
            vec![
                ("authorization", auth.clone()),
                ("authorization", auth.clone()),
                ("dpop", proof.clone()),
            ],
            Error::new(
                ErrorKind::MalformedRequest,
                "more than one Authorization header",
            ),
        ),
        (
            "two dpop fields",
            vec![
                ("authorization", auth.clone()),
                ("dpop", proof.clone()),
                ("dpop", proof.clone()),
            ],
            Error::new(ErrorKind::MalformedRequest, "more than one DPoP header"),
        ),
        (
            "two dpop fields, no token",
            vec![("dpop", proof.clone()), ("dpop", proof.clone())],
            Error::new(ErrorKind::MalformedRequest, "more than one DPoP header"),
        ),
        (
            "scheme without token",
            vec![("authorization", "DPoP".into()), ("dpop", proof.clone())],
            Error::new(
                ErrorKind::MalformedRequest,
                "Authorization DPoP credentials are not a token68 value",
            ),
        ),
        (
            "token not token68",
            vec![
                ("authorization", "DPoP a,b".into()),
                ("dpop", proof.clone()),
            ],
            Error::new(
                ErrorKind::MalformedRequest,
                "Authorization DPoP credentials are not a token68 value",
            ),
        ),
        (
            "two tokens",
            vec![
                ("authorization", format!("{auth} {}", f.token)),
                ("dpop", proof.clone()),
            ],
            Error::new(
                ErrorKind::MalformedRequest,
                "Authorization DPoP credentials are not a token68 value",
            ),
        ),
        (
            "dpop not token68",
            vec![
                ("authorization", auth.clone()),
                ("dpop", format!("{proof} x")),
            ],
            Error::new(
                ErrorKind::MalformedRequest,
                "DPoP header is not a token68 value",
            ),
        ),
        (
            "empty dpop",
            vec![("authorization", auth.clone()), ("dpop", String::new())],
            Error::new(
                ErrorKind::MalformedRequest,
                "DPoP header is not a token68 value",
            ),
        ),
        (
            "token without proof",
            vec![("authorization", auth.clone())],
            Error::new(ErrorKind::ProofMissing, "missing DPoP proof header"),
        ),
    ];
    for (name, fields, expected) in cases {
        let mut h = HeaderMap::new();
        for (k, v) in fields {
            h.append(k, HeaderValue::from_str(&v).unwrap());
        }
        assert_eq!(
            f.layer
                .authenticate(&tower_dpop::testing::request_parts(
                    &Method::GET,
                    "/api/me",
                    &h
                ))
                .await
                .unwrap_err(),
            expected,
            "{name}"
        );
    }
}

#[tokio::test]
async fn scheme_is_case_insensitive_and_extra_spaces_allowed() {
    let f = Fixture::new();
    for scheme in ["dpop", "DPOP", "DPoP", "dPoP"] {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("{scheme}  {}", f.token)).unwrap(),
        );
        h.insert("dpop", HeaderValue::from_str(&f.proof().sign()).unwrap());
        f.layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/api/me",
                &h,
            ))
            .await
            .unwrap_or_else(|e| panic!("{scheme}: {e}"));
    }
}

#[tokio::test]
async fn proof_size_is_checked_before_decoding() {
    let f = Fixture::new();
    // Not even a JWS: the size check must fire first.
    let huge = "A".repeat(8 * 1024 + 1);
    assert_eq!(
        f.get(&huge).await,
        proof_err(ErrorKind::ProofTooLarge, "DPoP proof is too large")
    );
    // A real proof padded past the limit with an extra claim.
    let padded = f.proof().claim("pad", json!("x".repeat(9000))).sign();
    assert_eq!(
        f.get(&padded).await,
        proof_err(ErrorKind::ProofTooLarge, "DPoP proof is too large")
    );
    // The limit is configurable.
    let g = Fixture::with(Algorithm::ES256, |b| b.max_proof_size(16 * 1024));
    let padded = g.proof().claim("pad", json!("x".repeat(9000))).sign();
    assert_eq!(g.get(&padded).await, Ok(()));
    // Exactly at the limit is not too large: it reaches the JWS parser.
    assert_eq!(
        f.get(&"A".repeat(8 * 1024)).await,
        proof_err(
            ErrorKind::ProofMalformed,
            "proof is not a compact JWS with three parts"
        )
    );
}

// ---- 2. Proof checks -----------------------------------------------------------------

#[tokio::test]
async fn compact_jws_with_three_parts() {
    let f = Fixture::new();
    let proof = f.proof().sign();
    let (h, rest) = proof.split_once('.').unwrap();
    let (p, _) = rest.split_once('.').unwrap();
    for bad in [
        format!("{h}.{p}"),
        format!("{h}.{p}.sig.extra"),
        format!("{h}..{p}"),
        format!("{h}.{p}."),
    ] {
        assert_eq!(
            f.get(&bad).await,
            proof_err(
                ErrorKind::ProofMalformed,
                "proof is not a compact JWS with three parts"
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn typ_must_be_dpop_jwt() {
    let f = Fixture::new();
    assert_eq!(
        f.get(&f.proof().header("typ", json!("JWT")).sign()).await,
        proof_err(ErrorKind::ProofType, "proof typ is not dpop+jwt")
    );
    assert_eq!(
        f.get(&f.proof().header("typ", json!("at+jwt")).sign())
            .await,
        proof_err(ErrorKind::ProofType, "proof typ is not dpop+jwt")
    );
    assert_eq!(
        f.get(&f.proof().without_header("typ").sign()).await,
        proof_err(ErrorKind::ProofType, "proof header has no typ")
    );
}

#[tokio::test]
async fn alg_must_be_asymmetric_and_allowed() {
    let f = Fixture::new();
    for alg in ["none", "HS256", "HS512", "ES256K", "es256", ""] {
        assert_eq!(
            f.get(&f.proof().header("alg", json!(alg)).sign()).await,
            proof_err(
                ErrorKind::ProofAlgorithm,
                "proof alg is not an accepted asymmetric algorithm"
            ),
            "{alg}"
        );
    }
    assert_eq!(
        f.get(&f.proof().without_header("alg").sign()).await,
        proof_err(ErrorKind::ProofAlgorithm, "proof header has no alg")
    );
    // The allow-list is honoured: an EdDSA proof against an ES256-only layer.
    let g = Fixture::with(Algorithm::EdDSA, |b| b.algorithms([Algorithm::ES256]));
    assert_eq!(
        g.get(&g.proof().sign()).await,
        proof_err(
            ErrorKind::ProofAlgorithm,
            "proof alg is not an accepted asymmetric algorithm"
        )
    );
}

#[tokio::test]
async fn alg_must_fit_the_key() {
    let f = Fixture::new();
    for alg in ["ES384", "ES512", "RS256", "PS256", "EdDSA", "Ed25519"] {
        assert_eq!(
            f.get(&f.proof().header("alg", json!(alg)).sign()).await,
            proof_err(
                ErrorKind::ProofAlgorithm,
                "proof alg does not match the jwk key type or curve"
            ),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn jwk_must_be_public() {
    let f = Fixture::new();
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        let mut jwk = f.client.public_jwk().clone();
        jwk[member] = json!("AAAA");
        assert_eq!(
            f.get(&f.proof().header("jwk", jwk).sign()).await,
            proof_err(
                ErrorKind::ProofKey,
                "jwk contains private or symmetric key material"
            ),
            "{member}"
        );
    }
    assert_eq!(
        f.get(&f.proof().without_header("jwk").sign()).await,
        proof_err(ErrorKind::ProofKey, "proof header has no jwk")
    );
    let g = Fixture::with(Algorithm::RS256, |b| b);
    let mut jwk = g.client.public_jwk().clone();
    jwk["d"] = json!("AAAA");
    assert_eq!(
        g.get(&g.proof().header("jwk", jwk).sign()).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk contains private or symmetric key material"
        )
    );
}

/// RFC 7518 §6.3.1: RSA `n` and `e` are minimal octet strings. A zero octet in front of `n`
/// is the same key under another text, with another thumbprint: refused, even with a token
/// bound to that other thumbprint and a signature that verifies.
#[tokio::test]
async fn rsa_jwk_must_be_minimal() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let g = Fixture::with(Algorithm::RS256, |b| b);
    let mut jwk = g.client.public_jwk().clone();
    let mut n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    n.insert(0, 0);
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode(&n));
    // RFC 7638 by hand (the crate's own parser refuses this jwk).
    let members = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        jwk["e"].as_str().unwrap(),
        jwk["n"].as_str().unwrap()
    );
    let jkt = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(members));
    assert_ne!(jkt, g.client.jkt(), "a second thumbprint for the same key");
    let token = g.issuer.token_for(&jkt, T0 + 3600);
    let proof = g
        .client
        .proof("GET", URL)
        .access_token(&token)
        .iat(T0)
        .header("jwk", jwk)
        .sign();
    assert_eq!(
        g.send(Method::GET, "/api/me", &token, &proof).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA n or e has a leading zero octet (not minimal)"
        )
    );
}

/// Keys are cached by the exact text of `jwk`: once a key is known, every other text of it is
/// checked from scratch, and the known text is only reused with the `alg` it was verified with.
#[tokio::test]
async fn a_cached_key_does_not_skip_the_jwk_checks() {
    let f = Fixture::new();
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    let mut private = f.client.public_jwk().clone();
    private["d"] = json!("AAAA");
    assert_eq!(
        f.get(&f.proof().header("jwk", private).sign()).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk contains private or symmetric key material"
        )
    );
    assert_eq!(
        f.get(&f.proof().header("alg", json!("ES384")).sign()).await,
        proof_err(
            ErrorKind::ProofAlgorithm,
            "proof alg does not match the jwk key type or curve"
        )
    );
    // Another text of the same key (an extra member): same thumbprint, so still bound.
    let mut with_kid = f.client.public_jwk().clone();
    with_kid["kid"] = json!("k1");
    assert_eq!(
        f.get(&f.proof().header("jwk", with_kid).sign()).await,
        Ok(())
    );
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
}

#[tokio::test]
async fn signature_must_verify_with_the_jwk() {
    let f = Fixture::new();
    // Signed by another key, but carrying the bound key's jwk.
    let forged = f.forged_by(&ClientKey::generate(Algorithm::ES256));
    assert_eq!(
        f.get(&forged).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    // A valid proof whose claims were changed after signing.
    let good = f.proof().sign();
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let changed = f
        .client
        .proof("GET", URL)
        .access_token(&f.token)
        .iat(T0)
        .jti("other")
        .sign();
    parts[1] = changed.split('.').nth(1).unwrap().to_owned();
    assert_eq!(
        f.get(&parts.join(".")).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    // A truncated signature.
    let short = format!("{}.{}.AAAA", parts[0], changed.split('.').nth(1).unwrap());
    assert_eq!(
        f.get(&short).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
}

#[tokio::test]
async fn required_claims_present_and_typed() {
    let f = Fixture::new();
    for claim in ["jti", "htm", "htu", "iat", "ath"] {
        let reason: &'static str = match claim {
            "jti" => "proof has no jti",
            "htm" => "proof has no htm",
            "htu" => "proof has no htu",
            "iat" => "proof has no iat",
            _ => "proof has no ath",
        };
        assert_eq!(
            f.get(&f.proof().without_claim(claim).sign()).await,
            proof_err(ErrorKind::ProofMalformed, reason),
            "{claim}"
        );
    }
    let mistyped = "proof claims are not a JSON object with claims of the right types";
    for (claim, value) in [
        ("iat", json!("1800000000")),
        ("jti", json!(12)),
        ("htm", json!(["GET"])),
        ("ath", json!({})),
    ] {
        assert_eq!(
            f.get(&f.proof().claim(claim, value.clone()).sign()).await,
            proof_err(ErrorKind::ProofMalformed, mistyped),
            "{claim}={value}"
        );
    }
    // A null claim counts as absent.
    assert_eq!(
        f.get(&f.proof().claim("htu", json!(null)).sign()).await,
        proof_err(ErrorKind::ProofMalformed, "proof has no htu")
    );
    assert_eq!(
        f.get(&f.proof().jti("").sign()).await,
        proof_err(ErrorKind::ProofMalformed, "proof jti is empty or too long")
    );
    assert_eq!(
        f.get(&f.proof().jti(&"j".repeat(257)).sign()).await,
        proof_err(ErrorKind::ProofMalformed, "proof jti is empty or too long")
    );
    // 256 bytes is the longest jti accepted.
    assert_eq!(f.get(&f.proof().jti(&"j".repeat(256)).sign()).await, Ok(()));
}

#[tokio::test]
async fn htm_must_equal_the_method_exactly() {
    let f = Fixture::new();
    let lower = f
        .client
        .proof("get", URL)
        .access_token(&f.token)
        .iat(T0)
        .sign();
    assert_eq!(
        f.get(&lower).await,
        proof_err(
            ErrorKind::ProofMethod,
            "htm does not match the request method"
        )
    );
    let post = f
        .client
        .proof("POST", URL)
        .access_token(&f.token)
        .iat(T0)
        .sign();
    assert_eq!(
        f.get(&post).await,
        proof_err(
            ErrorKind::ProofMethod,
            "htm does not match the request method"
        )
    );
    let post_ok = f
        .client
        .proof("POST", URL)
        .access_token(&f.token)
        .iat(T0)
        .sign();
    assert_eq!(
        f.send(Method::POST, "/api/me", &f.token, &post_ok).await,
        Ok(())
    );
}

#[tokio::test]
async fn htu_must_match_the_public_origin_and_path() {
    let f = Fixture::new();
    let with = |htu: &str| {
        f.client
            .proof("GET", htu)
            .access_token(&f.token)
            .iat(T0)
            .sign()
    };
    let accepted = [
        "https://api.example.com/api/me",
        "HTTPS://API.EXAMPLE.COM/api/me",
        "https://api.example.com:443/api/me",
        "https://api.example.com/api/me?x=1",
        "https://api.example.com/api/me#frag",
        "https://api.example.com/api/%6De",
    ];
    for htu in accepted {
        assert_eq!(f.get(&with(htu)).await, Ok(()), "{htu}");
    }
    let rejected = [
        "https://api.example.com/api/you",
        "https://api.example.com/API/me",
        "https://api.example.com/api/me/",
        "http://api.example.com/api/me",
        "https://api.example.com:8443/api/me",
        "https://evil.example.com/api/me",
        "https://api.example.com.evil.com/api/me",
        "/api/me",
        "api.example.com/api/me",
        "https://user@api.example.com/api/me",
    ];
    for htu in rejected {
        assert_eq!(
            f.get(&with(htu)).await,
            proof_err(ErrorKind::ProofUri, "htu does not match the request URI"),
            "{htu}"
        );
    }
    // The request's query is ignored too, and a path with dot segments never matches.
    assert_eq!(
        f.send(Method::GET, "/api/me?page=2", &f.token, &with(URL))
            .await,
        Ok(())
    );
    assert_eq!(
        f.send(Method::GET, "/api/x/../me", &f.token, &with(URL))
            .await,
        proof_err(ErrorKind::ProofUri, "htu does not match the request URI")
    );
}

#[tokio::test]
async fn htu_never_comes_from_the_host_header() {
    let f = Fixture::new();
    let evil = f
        .client
        .proof("GET", "https://evil.example.com/api/me")
        .access_token(&f.token)
        .iat(T0)
        .sign();
    let mut h = dpop_headers(&f.token, &evil);
    h.insert("host", HeaderValue::from_static("evil.example.com"));
    h.insert(
        "x-forwarded-host",
        HeaderValue::from_static("evil.example.com"),
    );
    assert_eq!(
        f.layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/api/me",
                &h
            ))
            .await
            .unwrap_err(),
        Error::new(ErrorKind::ProofUri, "htu does not match the request URI")
    );
}

#[tokio::test]
async fn several_public_origins() {
    let f = Fixture::with(Algorithm::ES256, |b| {
        b.public_origin("http://localhost:8080")
    });
    let local = f
        .client
        .proof("GET", "http://localhost:8080/api/me")
        .access_token(&f.token)
        .iat(T0)
        .sign();
    assert_eq!(f.get(&local).await, Ok(()));
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
}

#[tokio::test]
async fn iat_window_boundaries() {
    let f = Fixture::new();
    // Defaults: 60 s in the past, 5 s in the future.
    assert_eq!(f.get(&f.proof().iat(T0 - 60).sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().iat(T0 - 61).sign()).await,
        proof_err(ErrorKind::ProofTooOld, "proof iat is too old")
    );
    assert_eq!(f.get(&f.proof().iat(T0 + 5).sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().iat(T0 + 6).sign()).await,
        proof_err(ErrorKind::ProofFromTheFuture, "proof iat is in the future")
    );
    // Configured windows.
    let g = Fixture::with(Algorithm::ES256, |b| {
        b.max_proof_age(Duration::from_secs(10))
            .future_leeway(Duration::ZERO)
    });
    assert_eq!(
        g.get(&g.proof().iat(T0 - 11).sign()).await,
        proof_err(ErrorKind::ProofTooOld, "proof iat is too old")
    );
    assert_eq!(
        g.get(&g.proof().iat(T0 + 1).sign()).await,
        proof_err(ErrorKind::ProofFromTheFuture, "proof iat is in the future")
    );
    assert_eq!(g.get(&g.proof().iat(T0 - 10).sign()).await, Ok(()));
    // Moving the clock makes a once-fresh proof stale.
    let proof = f.proof().sign();
    f.clock.advance(Duration::from_secs(61));
    assert_eq!(
        f.get(&proof).await,
        proof_err(ErrorKind::ProofTooOld, "proof iat is too old")
    );
}

/// The FAPI 2.0 preset: PS256, ES256 and EdDSA proofs only; `iat` from 60 s in the past to
/// 10 s in the future.
#[tokio::test]
async fn fapi2_security_profile_algorithms_and_iat_window() {
    let fapi = |alg| Fixture::with(alg, DpopLayerBuilder::fapi2_security_profile);
    for alg in [Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA] {
        let f = fapi(alg);
        assert_eq!(f.get(&f.proof().sign()).await, Ok(()), "{alg}");
    }
    for alg in [
        Algorithm::RS256,
        Algorithm::ES384,
        Algorithm::PS512,
        Algorithm::Ed25519,
    ] {
        let f = fapi(alg);
        assert_eq!(
            f.get(&f.proof().sign()).await,
            proof_err(
                ErrorKind::ProofAlgorithm,
                "proof alg is not an accepted asymmetric algorithm"
            ),
            "{alg}"
        );
    }
    let f = fapi(Algorithm::ES256);
    assert_eq!(f.get(&f.proof().iat(T0 - 60).sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().iat(T0 - 61).sign()).await,
        proof_err(ErrorKind::ProofTooOld, "proof iat is too old")
    );
    assert_eq!(f.get(&f.proof().iat(T0 + 10).sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().iat(T0 + 11).sign()).await,
        proof_err(ErrorKind::ProofFromTheFuture, "proof iat is in the future")
    );
}

#[tokio::test]
async fn ath_must_be_the_token_hash() {
    let f = Fixture::new();
    let other = f.issuer.token_for(f.client.jkt(), T0 + 3600);
    let for_other = f
        .client
        .proof("GET", URL)
        .access_token(&other)
        .iat(T0)
        .sign();
    assert_eq!(
        f.get(&for_other).await,
        proof_err(
            ErrorKind::ProofTokenHash,
            "ath does not match the access token"
        )
    );
    assert_eq!(
        f.get(&f.proof().claim("ath", json!("not-a-hash")).sign())
            .await,
        proof_err(
            ErrorKind::ProofTokenHash,
            "ath does not match the access token"
        )
    );
    // The same hash in standard base64 (with padding) is not base64url.
    let std_b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        <sha2::Sha256 as sha2::Digest>::digest(f.token.as_bytes()),
    );
    assert_eq!(
        f.get(&f.proof().claim("ath", json!(std_b64)).sign()).await,
        proof_err(
            ErrorKind::ProofTokenHash,
            "ath does not match the access token"
        )
    );
}

// ---- 3. Key binding and the access token ---------------------------------------------

#[tokio::test]
async fn token_must_be_bound_to_the_proof_key() {
    let f = Fixture::new();
    let thief = ClientKey::generate(Algorithm::ES256);
    let stolen = || {
        thief
            .proof("GET", URL)
            .access_token(&f.token)
            .iat(T0)
            .sign()
    };
    assert_eq!(
        f.get(&stolen()).await,
        Err(Error::new(
            ErrorKind::TokenKeyMismatch,
            "Invalid DPoP key binding"
        ))
    );
    // Still refused once the layer knows the thief's key (cached after a valid request with
    // the thief's own token): a cached key skips parsing, never the binding.
    let own_token = f.issuer.token_for(thief.jkt(), T0 + 3600);
    let own = thief
        .proof("GET", URL)
        .access_token(&own_token)
        .iat(T0)
        .sign();
    assert_eq!(
        f.send(Method::GET, "/api/me", &own_token, &own).await,
        Ok(())
    );
    assert_eq!(
        f.get(&stolen()).await,
        Err(Error::new(
            ErrorKind::TokenKeyMismatch,
            "Invalid DPoP key binding"
        ))
    );
}

/// Once the owner's key is remembered with the token (a proof verified), a thief's proof is
/// still refused: with the thief's own header it is not bound, with the owner's header the
/// signature does not verify; and the owner still gets in.
#[tokio::test]
async fn a_token_remembering_its_key_still_refuses_other_keys() {
    let f = Fixture::new();
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    let thief = ClientKey::generate(Algorithm::ES256);
    let own = thief.proof("GET", URL).access_token(&f.token).iat(T0);
    assert_eq!(
        f.get(&own.sign()).await,
        Err(Error::new(
            ErrorKind::TokenKeyMismatch,
            "Invalid DPoP key binding"
        ))
    );
    assert_eq!(
        f.get(&f.forged_by(&thief)).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
}

#[tokio::test]
async fn token_without_cnf_jkt_is_refused_under_dpop() {
    let f = Fixture::new();
    let unbound = f.issuer.mint(&json!({"iss": f.issuer.issuer(), "aud": "https://api.example.com", "sub": "bob", "exp": T0 + 60}));
    let proof = f
        .client
        .proof("GET", URL)
        .access_token(&unbound)
        .iat(T0)
        .sign();
    assert_eq!(
        f.send(Method::GET, "/api/me", &unbound, &proof).await,
        Err(Error::new(
            ErrorKind::TokenNotBound,
            "access token is not DPoP-bound (no cnf.jkt)"
        ))
    );
}

#[tokio::test]
async fn token_validity() {
    let f = Fixture::new();
    let mint = |claims: serde_json::Value| f.issuer.mint(&claims);
    let base = json!({"iss": f.issuer.issuer(), "aud": "https://api.example.com", "sub": "a", "cnf": {"jkt": f.client.jkt()}, "exp": T0 + 60});
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        mint(c)
    };
    let cases = [
        (
            "expired",
            with("exp", json!(T0)),
            "access token has expired",
        ),
        (
            "not yet valid",
            with("nbf", json!(T0 + 10)),
            "access token is not yet valid",
        ),
        (
            "other issuer",
            with("iss", json!("https://evil.example.com")),
            "access token issuer is not accepted",
        ),
        (
            "other audience",
            with("aud", json!("https://other.example.com")),
            "access token audience is not accepted",
        ),
        (
            "signed by another issuer",
            TestIssuer::new().mint(&base),
            "access token signature is invalid or its key is unknown",
        ),
        (
            "not a JWT",
            "opaque-token".to_owned(),
            "access token is not a signed JWT",
        ),
    ];
    for (name, token, reason) in cases {
        let proof = f
            .client
            .proof("GET", URL)
            .access_token(&token)
            .iat(T0)
            .sign();
        assert_eq!(
            f.send(Method::GET, "/api/me", &token, &proof).await,
            Err(Error::new(token_kind(reason), reason)),
            "{name}"
        );
    }
    // The boundaries: valid from `nbf` on, and until the second before `exp` (no leeway by
    // default).
    for (name, token) in [
        ("nbf now", with("nbf", json!(T0))),
        ("exp next second", with("exp", json!(T0 + 1))),
    ] {
        let proof = f
            .client
            .proof("GET", URL)
            .access_token(&token)
            .iat(T0)
            .sign();
        assert_eq!(
            f.send(Method::GET, "/api/me", &token, &proof).await,
            Ok(()),
            "{name}"
        );
    }
    // aud may be an array that contains the audience.
    let arr = with("aud", json!(["x", "https://api.example.com"]));
    let proof = f.client.proof("GET", URL).access_token(&arr).iat(T0).sign();
    assert_eq!(f.send(Method::GET, "/api/me", &arr, &proof).await, Ok(()));
}

#[tokio::test]
async fn token_with_unsigned_or_mac_alg_is_refused() {
    let f = Fixture::new();
    let claims = json!({"iss": f.issuer.issuer(), "aud": "https://api.example.com", "cnf": {"jkt": f.client.jkt()}, "exp": T0 + 60});
    for alg in ["none", "HS256"] {
        let token = format!(
            "{}.{}.c2ln",
            b64(json!({"alg": alg, "typ": "at+jwt"})),
            b64(claims.clone())
        );
        let proof = f
            .client
            .proof("GET", URL)
            .access_token(&token)
            .iat(T0)
            .sign();
        assert_eq!(
            f.send(Method::GET, "/api/me", &token, &proof).await,
            Err(Error::new(
                ErrorKind::TokenInvalid,
                "access token alg is not accepted"
            )),
            "{alg}"
        );
    }
}

/// Counts validations, to show a token is validated once, not per request.
#[derive(Debug)]
struct Counting<V> {
    inner: V,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl<V: TokenValidator> TokenValidator for Counting<V> {
    async fn validate(&self, token: &str) -> Result<AccessToken, TokenError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.validate(token).await
    }
}

#[tokio::test]
async fn token_is_validated_once_and_expires_from_the_cache() {
    let calls = Arc::new(AtomicUsize::new(0));
    let issuer = TestIssuer::new();
    let f = {
        let counting = Counting {
            inner: validator(&issuer),
            calls: calls.clone(),
        };
        let client = ClientKey::generate(Algorithm::ES256);
        let token = issuer.token_for(client.jkt(), T0 + 30);
        let clock = ManualClock::at_unix(T0);
        let layer = DpopLayer::builder()
            .public_origin(ORIGIN)
            .token_validator(counting)
            .clock(clock.clone())
            .build()
            .unwrap();
        Fixture {
            issuer,
            client,
            token,
            clock,
            layer,
        }
    };
    for _ in 0..5 {
        assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Past `exp` the cached token is refused, whatever the cache holds.
    f.clock.advance(Duration::from_secs(30));
    let late = f.proof().iat(T0 + 30).sign();
    assert_eq!(
        f.get(&late).await,
        Err(Error::new(
            ErrorKind::TokenExpired,
            "access token has expired"
        ))
    );
    // A refused token is remembered for `refused_token_cache_ttl` (5 s): sent again in that
    // time it is refused without asking the validator; after it, the validator is asked again.
    let bad = "a.b.c";
    let f = &f;
    let send_bad = |iat: u64| {
        let proof = f.client.proof("GET", URL).access_token(bad).iat(iat).sign();
        async move { f.send(Method::GET, "/api/me", bad, &proof).await }
    };
    for _ in 0..3 {
        assert!(send_bad(T0 + 30).await.unwrap_err().kind() == ErrorKind::TokenInvalid);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    f.clock.advance(Duration::from_millis(4_999));
    assert!(send_bad(T0 + 34).await.unwrap_err().kind() == ErrorKind::TokenInvalid);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    f.clock.advance(Duration::from_millis(1));
    assert!(send_bad(T0 + 35).await.unwrap_err().kind() == ErrorKind::TokenInvalid);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[derive(Debug)]
struct Unavailable;

#[async_trait]
impl TokenValidator for Unavailable {
    async fn validate(&self, _: &str) -> Result<AccessToken, TokenError> {
        Err(TokenError::unavailable("authorization server down"))
    }
}

#[tokio::test]
async fn token_validator_that_cannot_answer_fails_closed() {
    let f = Fixture::with(Algorithm::ES256, |b| b.token_validator(Unavailable));
    assert_eq!(
        f.get(&f.proof().sign()).await,
        Err(Error::new(
            ErrorKind::Unavailable,
            "access token validation is unavailable"
        ))
    );
}

// ---- 4. Replay -------------------------------------------------------------------------

#[tokio::test]
async fn jti_is_accepted_once_per_key() {
    let f = Fixture::new();
    let proof = f.proof().jti("same").sign();
    assert_eq!(f.get(&proof).await, Ok(()));
    assert_eq!(
        f.get(&proof).await,
        proof_err(ErrorKind::ProofReplayed, "proof jti was already used")
    );
    // A new proof reusing the jti is a replay too (same key).
    assert_eq!(
        f.get(&f.proof().jti("same").iat(T0 - 1).sign()).await,
        proof_err(ErrorKind::ProofReplayed, "proof jti was already used")
    );
    // Another key may use the same jti.
    let other = ClientKey::generate(Algorithm::ES256);
    let token = f.issuer.token_for(other.jkt(), T0 + 3600);
    let p = other
        .proof("GET", URL)
        .access_token(&token)
        .iat(T0)
        .jti("same")
        .sign();
    assert_eq!(f.send(Method::GET, "/api/me", &token, &p).await, Ok(()));
}

/// Records calls; answers as told.
#[derive(Debug, Default)]
struct ProbeStore {
    calls: AtomicUsize,
    fail: bool,
    ttls: std::sync::Mutex<Vec<Duration>>,
}

#[async_trait]
impl ReplayStore for ProbeStore {
    async fn check_and_insert(&self, _: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.ttls.lock().unwrap().push(ttl);
        if self.fail {
            Err(ReplayError::Backend("connection refused".into()))
        } else {
            Ok(Seen::First)
        }
    }
}

#[tokio::test]
async fn replay_store_is_asked_only_after_the_signature_verified() {
    let store = Arc::new(ProbeStore::default());
    let f = Fixture::with(Algorithm::ES256, |b| b.replay_store(store.clone()));
    let other = ClientKey::generate(Algorithm::ES256);
    let forged = other
        .proof("GET", URL)
        .access_token(&f.token)
        .iat(T0)
        .header("jwk", f.client.public_jwk().clone())
        .sign();
    for _ in 0..10 {
        assert_eq!(
            f.get(&forged).await,
            proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
        );
    }
    assert_eq!(
        store.calls.load(Ordering::SeqCst),
        0,
        "unsigned proofs must never reach the store"
    );
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    assert_eq!(store.calls.load(Ordering::SeqCst), 1);
}

/// Every entry lives the whole replay window (max age + future leeway + clock skew
/// allowance), whatever the proof's `iat`: the store's clock, not the proof, decides when it
/// may go (tests/replay.rs shows why).
#[tokio::test]
async fn replay_entry_lives_the_whole_replay_window() {
    let store = Arc::new(ProbeStore::default());
    let f = Fixture::with(Algorithm::ES256, |b| {
        b.replay_store(store.clone())
            .clock_skew_allowance(Duration::from_secs(3))
    });
    assert_eq!(f.get(&f.proof().iat(T0).sign()).await, Ok(()));
    assert_eq!(f.get(&f.proof().iat(T0 - 50).sign()).await, Ok(()));
    assert_eq!(f.get(&f.proof().iat(T0 + 5).sign()).await, Ok(()));
    let ttls = store.ttls.lock().unwrap().clone();
    assert_eq!(ttls, vec![Duration::from_secs(68); 3]);
}

#[tokio::test]
async fn replay_store_failure_fails_closed() {
    let store = Arc::new(ProbeStore {
        fail: true,
        ..ProbeStore::default()
    });
    let f = Fixture::with(Algorithm::ES256, |b| b.replay_store(store.clone()));
    assert_eq!(
        f.get(&f.proof().sign()).await,
        Err(Error::new(
            ErrorKind::Unavailable,
            "replay store is unavailable"
        ))
    );
}

#[tokio::test]
async fn full_memory_store_fails_closed() {
    let f = Fixture::with(Algorithm::ES256, |b| {
        b.replay_store(tower_dpop::replay::MemoryReplayStore::new(2))
            .replay_key_quota(10)
    });
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().sign()).await,
        Err(Error::new(ErrorKind::Unavailable, "replay cache is full"))
    );
}

// ---- 5. Configuration ----------------------------------------------------------------

#[test]
fn configuration_is_validated_at_build_time() {
    let issuer = TestIssuer::new();
    let ok = || {
        DpopLayer::builder()
            .public_origin(ORIGIN)
            .token_validator(validator(&issuer))
    };
    assert!(ok().build().is_ok());
    let cases: Vec<(&str, DpopLayerBuilder)> = vec![
        (
            "no origin",
            DpopLayer::builder().token_validator(validator(&issuer)),
        ),
        ("no validator", DpopLayer::builder().public_origin(ORIGIN)),
        (
            "origin with a path",
            ok().public_origin("https://api.example.com/api"),
        ),
        (
            "origin not http",
            ok().public_origin("ftp://api.example.com"),
        ),
        ("no algorithms", ok().algorithms([])),
        ("zero max age", ok().max_proof_age(Duration::ZERO)),
        (
            "huge max age",
            ok().max_proof_age(Duration::from_secs(86_400)),
        ),
        ("huge leeway", ok().future_leeway(Duration::from_secs(3600))),
        ("tiny proof limit", ok().max_proof_size(10)),
    ];
    for (name, builder) in cases {
        let err = builder.build().unwrap_err();
        assert!(
            err.to_string().starts_with("invalid DPoP configuration"),
            "{name}: {err}"
        );
    }
    assert!(
        JwtValidator::builder().build().is_err(),
        "a JWT validator needs keys"
    );
    assert!(
        JwtValidator::builder().jwks_json("{").build().is_err(),
        "bad JWKS"
    );
    // HMAC and `none` cannot even be named (`Algorithm` has no such variant); an empty
    // list is refused.
    assert!(
        JwtValidator::builder()
            .jwks_json(&issuer.jwks_json())
            .any_issuer()
            .any_audience()
            .algorithms([])
            .build()
            .is_err(),
        "no algorithm"
    );
    assert_eq!(random_id(16).len(), 22);
}

// ---- 6. Hostile keys -----------------------------------------------------------------------

/// A proof whose header carries `jwk`, signed by some other key, for a token bound to `jwk`:
/// the only thing that can refuse it before the signature is the key import.
async fn hostile_key(alg: &str, jwk: serde_json::Value) -> Result<(), Error> {
    let f = Fixture::new();
    // A key the thumbprint function refuses is refused by the layer before the binding check,
    // so the token's jkt does not matter then.
    let jkt = tower_dpop::testing::jwk_thumbprint(&jwk.to_string()).unwrap_or_default();
    let token = f.issuer.token_for(&jkt, T0 + 3600);
    let signer = ClientKey::generate(Algorithm::ES256);
    let proof = signer
        .proof("GET", URL)
        .access_token(&token)
        .iat(T0)
        .header("alg", json!(alg))
        .header("jwk", jwk)
        .sign();
    f.send(Method::GET, "/api/me", &token, &proof).await
}

#[tokio::test]
async fn small_order_ed25519_keys_are_refused_at_import() {
    // The identity point (y = 1): every signature "verifies" under a lax check.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let x = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, identity);
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
    assert_eq!(
        hostile_key("EdDSA", jwk).await,
        proof_err(ErrorKind::ProofKey, "jwk is a small-order Ed25519 key")
    );
}

#[tokio::test]
async fn rsa_exponent_must_be_odd_and_at_least_three() {
    let key = ClientKey::generate(Algorithm::RS256);
    // 2, 1, 4, 65536.
    for e in ["Ag", "AQ", "BA", "AQAA"] {
        let mut jwk = key.public_jwk().clone();
        jwk["e"] = json!(e);
        assert_eq!(
            hostile_key("RS256", jwk).await,
            proof_err(
                ErrorKind::ProofKey,
                "jwk RSA exponent must be odd and at least 3"
            ),
            "e={e}"
        );
    }
    // 1 with a leading zero octet is not even read as a number: not minimal (RFC 7518).
    let mut jwk = key.public_jwk().clone();
    jwk["e"] = json!("AAE");
    assert_eq!(
        hostile_key("RS256", jwk).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA n or e has a leading zero octet (not minimal)"
        )
    );
    // 3 and 65537 pass the exponent check; these proofs then fail on their signature (the
    // proof is signed by another key).
    for e in ["Aw", "AQAB"] {
        let mut jwk = key.public_jwk().clone();
        jwk["e"] = json!(e);
        assert_eq!(
            hostile_key("RS256", jwk).await,
            proof_err(ErrorKind::ProofSignature, "proof signature is invalid"),
            "e={e}"
        );
    }
}

#[tokio::test]
async fn token_size_is_checked_before_anything_reads_it() {
    let f = Fixture::with(Algorithm::ES256, |b| b.max_token_size(1024));
    let huge = "A".repeat(1024 + 17);
    assert_eq!(
        f.send(Method::GET, "/api/me", &huge, &f.proof().sign())
            .await,
        Err(Error::new(
            ErrorKind::TokenTooLarge,
            "access token is too large"
        ))
    );
    // Within the limit (the header may be 16 bytes longer than the token limit, for the scheme
    // and spaces), the token reaches validation (and fails there as a non-JWT).
    let fits = "A".repeat(1024 + 16 - "DPoP ".len());
    let proof = f
        .client
        .proof("GET", URL)
        .access_token(&fits)
        .iat(T0)
        .sign();
    assert_eq!(
        f.send(Method::GET, "/api/me", &fits, &proof).await,
        Err(Error::new(
            ErrorKind::TokenInvalid,
            "access token is not a signed JWT"
        ))
    );
}

#[tokio::test]
async fn rsa_modulus_must_have_2048_to_4096_bits() {
    let key = ClientKey::generate(Algorithm::RS256);
    // 256 bytes, but the top byte 0x01: a 2041-bit modulus (the length check alone passes it).
    let mut n = vec![0xffu8; 256];
    n[0] = 0x01;
    let mut jwk = key.public_jwk().clone();
    jwk["n"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &n
    ));
    assert_eq!(
        hostile_key("RS256", jwk).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA modulus must be 2048 to 4096 bits"
        )
    );
    // The upper end: 4096 bits in 512 octets is accepted (this proof then fails on its
    // signature, made by another key); the same with a leading zero octet, 4104 bits in 513
    // octets, or 514 octets, are too long.
    let with_n = |n: Vec<u8>| {
        let mut jwk = key.public_jwk().clone();
        jwk["n"] = json!(base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &n
        ));
        jwk
    };
    assert_eq!(
        hostile_key("RS256", with_n(vec![0xff; 512])).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    let mut n4096 = vec![0u8];
    n4096.extend([0xffu8; 512]);
    assert_eq!(
        hostile_key("RS256", with_n(n4096)).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA modulus is too small, too large or malformed"
        )
    );
    assert_eq!(
        hostile_key("RS256", with_n(vec![0xff; 513])).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA modulus is too small, too large or malformed"
        )
    );
    let mut n514 = vec![0u8, 0];
    n514.extend([0xffu8; 512]);
    assert_eq!(
        hostile_key("RS256", with_n(n514)).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA modulus is too small, too large or malformed"
        )
    );
}

#[tokio::test]
async fn access_token_typ_and_crit_are_checked() {
    let f = Fixture::new();
    let claims = json!({"iss": f.issuer.issuer(), "aud": "https://api.example.com", "cnf": {"jkt": f.client.jkt()}, "exp": T0 + 60});
    let cases = [
        (
            json!({"alg": "ES256", "typ": "dpop+jwt"}),
            "access token typ is dpop+jwt: a DPoP proof, not an access token",
        ),
        (
            json!({"alg": "ES256", "typ": "application/okta-internal-at+jwt"}),
            "access token typ is application/okta-internal-at+jwt: a token of an Okta org \
             authorization server, which Okta does not support validating outside Okta; use a \
             custom authorization server",
        ),
        (
            json!({"alg": "ES256", "typ": "at+jwt", "crit": ["exp"]}),
            "access token has unsupported crit",
        ),
    ];
    for (header, reason) in cases {
        let token = format!("{}.{}.c2ln", b64(header.clone()), b64(claims.clone()));
        let proof = f
            .client
            .proof("GET", URL)
            .access_token(&token)
            .iat(T0)
            .sign();
        assert_eq!(
            f.send(Method::GET, "/api/me", &token, &proof).await,
            Err(Error::new(token_kind(reason), reason)),
            "{header}"
        );
    }
}

/// Ed448 (RFC 8037, `alg` EdDSA, `crv` Ed448) through OpenSSL: no helper in `testing` makes
/// Ed448 keys, so the proof is assembled and signed here with OpenSSL directly.
#[tokio::test]
async fn ed448_proofs_verify_and_tampered_ones_do_not() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;

    let key = PKey::generate_ed448().unwrap();
    let x = URL_SAFE_NO_PAD.encode(key.raw_public_key().unwrap());
    let jwk = json!({"kty": "OKP", "crv": "Ed448", "x": x});
    // A key the thumbprint function refuses is refused by the layer before the binding check,
    // so the token's jkt does not matter then.
    let jkt = tower_dpop::testing::jwk_thumbprint(&jwk.to_string()).unwrap_or_default();
    let f = Fixture::new();
    let token = f.issuer.token_for(&jkt, T0 + 3600);
    let sign = |alg: &str, jti: &str| {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        let claims = json!({"jti": jti, "htm": "GET", "htu": URL, "iat": T0,
            "ath": tower_dpop::testing::ath(&token)});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signer = Signer::new_without_digest(&key).unwrap();
        let sig = signer.sign_oneshot_to_vec(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    };
    assert_eq!(
        f.send(Method::GET, "/api/me", &token, &sign("EdDSA", "a"))
            .await,
        Ok(())
    );
    let mut tampered = sign("EdDSA", "b").into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        f.send(
            Method::GET,
            "/api/me",
            &token,
            std::str::from_utf8(&tampered).unwrap()
        )
        .await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    // The fully-specified `Ed25519` name does not fit an Ed448 key.
    assert_eq!(
        f.send(Method::GET, "/api/me", &token, &sign("Ed25519", "c"))
            .await,
        proof_err(
            ErrorKind::ProofAlgorithm,
            "proof alg does not match the jwk key type or curve"
        )
    );
}
