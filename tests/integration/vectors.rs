//! Proofs and tokens this crate did not make: the examples of RFC 9449 and RFC 7638, and
//! fixtures generated once by an independent JOSE implementation (node `jose`, see
//! `tests/vectors/README.md`). All verified with an injected clock.

use async_trait::async_trait;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{json, Value};
use tower_dpop::clock::ManualClock;
use tower_dpop::testing::jwk_thumbprint;
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::token::{AccessToken, TokenError, TokenValidator};
use tower_dpop::{Algorithm, DpopLayer, Error, ErrorKind};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn headers(token: &str, proof: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("DPoP {token}")).unwrap(),
    );
    h.insert("dpop", HeaderValue::from_str(proof).unwrap());
    h
}

fn flip_signature(proof: &str) -> String {
    let (rest, sig) = proof.rsplit_once('.').unwrap();
    let mut sig: Vec<u8> = sig.bytes().collect();
    // Change the first character: a different signature, still base64url.
    sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
    format!("{rest}.{}", String::from_utf8(sig).unwrap())
}

/// The RFC's access token is opaque; this validator knows it and its binding.
#[derive(Debug)]
struct RfcTokens;

const RFC_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

#[async_trait]
impl TokenValidator for RfcTokens {
    async fn validate(&self, token: &str) -> Result<AccessToken, TokenError> {
        if token != RFC_TOKEN {
            return Err(TokenError::invalid("unknown token"));
        }
        let claims = json!({ "sub": "rfc", "cnf": { "jkt": RFC_JKT } });
        AccessToken::from_claims(claims.as_object().unwrap().clone())
    }
}

fn rfc_layer(clock: &ManualClock) -> DpopLayer {
    DpopLayer::builder()
        .public_origin("https://resource.example.org")
        .algorithms(Algorithm::ALL.iter().copied())
        .token_validator(RfcTokens)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn rfc_proof(name: &str) -> Value {
    load("rfc9449.json")["proofs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn rfc9449_figure_13_resource_request_is_accepted() {
    let p = rfc_proof("figure13");
    let clock = ManualClock::at_unix(p["iat"].as_u64().unwrap());
    let layer = rfc_layer(&clock);
    let proof = p["proof"].as_str().unwrap();
    let ok = layer
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/protectedresource",
            &headers(RFC_TOKEN, proof),
        ))
        .await
        .unwrap();
    let ok = ok.dpop().expect("a DPoP request");
    assert_eq!(ok.jkt().to_base64url(), RFC_JKT);
    assert_eq!(ok.proof().jti, "e1j3V_bKic8-LAEB");
    assert_eq!(
        ok.proof().ath,
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
    assert_eq!(ok.token().subject(), Some("rfc"));
}

#[tokio::test]
async fn rfc9449_figure_13_rejected_when_anything_differs() {
    let p = rfc_proof("figure13");
    let iat = p["iat"].as_u64().unwrap();
    let proof = p["proof"].as_str().unwrap();
    let h = headers(RFC_TOKEN, proof);

    let clock = ManualClock::at_unix(iat);
    let replayed = rfc_layer(&clock);
    replayed
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/protectedresource",
            &h,
        ))
        .await
        .unwrap();
    assert_eq!(
        replayed
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/protectedresource",
                &h
            ))
            .await
            .unwrap_err(),
        Error::new(ErrorKind::ProofReplayed, "proof jti was already used")
    );

    let cases: [(&str, Method, &str, HeaderMap, u64, Error); 5] = [
        (
            "other method",
            Method::POST,
            "/protectedresource",
            h.clone(),
            iat,
            Error::new(
                ErrorKind::ProofMethod,
                "htm does not match the request method",
            ),
        ),
        (
            "other path",
            Method::GET,
            "/other",
            h.clone(),
            iat,
            Error::new(ErrorKind::ProofUri, "htu does not match the request URI"),
        ),
        (
            "too late",
            Method::GET,
            "/protectedresource",
            h.clone(),
            iat + 61,
            Error::new(ErrorKind::ProofTooOld, "proof iat is too old"),
        ),
        (
            "too early",
            Method::GET,
            "/protectedresource",
            h.clone(),
            iat - 6,
            Error::new(ErrorKind::ProofFromTheFuture, "proof iat is in the future"),
        ),
        (
            "forged signature",
            Method::GET,
            "/protectedresource",
            headers(RFC_TOKEN, &flip_signature(proof)),
            iat,
            Error::new(ErrorKind::ProofSignature, "proof signature is invalid"),
        ),
    ];
    for (name, method, path, h, now, expected) in cases {
        let layer = rfc_layer(&ManualClock::at_unix(now));
        assert_eq!(
            layer
                .authenticate(&tower_dpop::testing::request_parts(&method, path, &h))
                .await
                .unwrap_err(),
            expected,
            "{name}"
        );
    }
}

#[tokio::test]
async fn rfc9449_figure_2_token_request_proof_is_refused_by_a_resource_server() {
    // A proof made for the token endpoint carries no `ath`: it cannot authorize a resource.
    let p = rfc_proof("figure2");
    let clock = ManualClock::at_unix(p["iat"].as_u64().unwrap());
    let layer = DpopLayer::builder()
        .public_origin("https://server.example.com")
        .algorithms(Algorithm::ALL.iter().copied())
        .token_validator(RfcTokens)
        .clock(clock)
        .build()
        .unwrap();
    let h = headers(RFC_TOKEN, p["proof"].as_str().unwrap());
    assert_eq!(
        layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::POST,
                "/token",
                &h
            ))
            .await
            .unwrap_err(),
        Error::new(ErrorKind::ProofMalformed, "proof has no ath")
    );
}

#[test]
fn rfc7638_and_rfc9449_thumbprints() {
    let v = load("rfc9449.json");
    let jwk = v["rfc7638"]["jwk"].to_string();
    assert_eq!(
        jwk_thumbprint(&jwk).unwrap(),
        v["rfc7638"]["thumbprint"].as_str().unwrap()
    );
    for p in v["proofs"].as_array().unwrap() {
        let header = p["proof"].as_str().unwrap().split('.').next().unwrap();
        let header: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            jwk_thumbprint(&header["jwk"].to_string()).unwrap(),
            p["jkt"].as_str().unwrap()
        );
    }
}

#[test]
fn rfc9449_ath_example() {
    assert_eq!(
        tower_dpop::testing::ath(RFC_TOKEN),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

fn independent_layer(v: &Value, clock: &ManualClock) -> DpopLayer {
    let validator = JwtValidator::builder()
        .jwks_json(&v["as_jwks"].to_string())
        .issuer(v["issuer"].as_str().unwrap())
        .audience(v["audience"].as_str().unwrap())
        .require_at_jwt_typ(true)
        .build()
        .unwrap();
    DpopLayer::builder()
        .public_origin("https://rs.example.com")
        .algorithms(Algorithm::ALL.iter().copied())
        .token_validator(validator)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn request_path(url: &str) -> String {
    let rest = url.strip_prefix("https://rs.example.com").unwrap();
    rest.to_owned()
}

#[tokio::test]
async fn independent_proofs_and_tokens_are_accepted() {
    let v = load("independent.json");
    let clock = ManualClock::at_unix(v["now"].as_u64().unwrap());
    let layer = independent_layer(&v, &clock);
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let method: Method = case["method"].as_str().unwrap().parse().unwrap();
        let path = request_path(case["request_url"].as_str().unwrap());
        let h = headers(
            case["access_token"].as_str().unwrap(),
            case["proof"].as_str().unwrap(),
        );
        let ok = layer
            .authenticate(&tower_dpop::testing::request_parts(&method, &path, &h))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ok = ok.dpop().expect("a DPoP request");
        assert_eq!(
            ok.jkt().to_base64url(),
            case["jkt"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            ok.algorithm().as_str(),
            case["alg"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            ok.token().jkt().map(|t| t.to_base64url()).as_deref(),
            case["jkt"].as_str(),
            "{name}"
        );
        if name == "es256-nonce" {
            assert_eq!(ok.proof().nonce.as_deref(), Some("server-nonce-123"));
        }
    }
}

#[tokio::test]
async fn independent_proofs_are_rejected_when_tampered_or_misused() {
    let v = load("independent.json");
    let now = v["now"].as_u64().unwrap();
    let cases = v["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let method: Method = case["method"].as_str().unwrap().parse().unwrap();
        let path = request_path(case["request_url"].as_str().unwrap());
        let token = case["access_token"].as_str().unwrap();
        let proof = case["proof"].as_str().unwrap();
        let other_method = if method == Method::GET {
            Method::DELETE
        } else {
            Method::GET
        };
        let other = &cases[(cases.iter().position(|c| c == case).unwrap() + 1) % cases.len()];
        let checks: [(&str, Method, &str, HeaderMap, u64); 5] = [
            (
                "signature",
                method.clone(),
                &path,
                headers(token, &flip_signature(proof)),
                now,
            ),
            ("method", other_method, &path, headers(token, proof), now),
            (
                "path",
                method.clone(),
                "/api/other",
                headers(token, proof),
                now,
            ),
            (
                "expired proof",
                method.clone(),
                &path,
                headers(token, proof),
                now + 120,
            ),
            (
                "token of another client",
                method.clone(),
                &path,
                headers(other["access_token"].as_str().unwrap(), proof),
                now,
            ),
        ];
        for (what, m, p, h, at) in checks {
            let layer = independent_layer(&v, &ManualClock::at_unix(at));
            let err = layer
                .authenticate(&tower_dpop::testing::request_parts(&m, p, &h))
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err.error_code(),
                    Some("invalid_dpop_proof" | "invalid_token")
                ),
                "{name} / {what}: {err:?}"
            );
        }
    }
}
