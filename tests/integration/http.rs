//! End to end over real HTTP: a server on 127.0.0.1 behind `DpopLayer`, a JWKS server, and
//! reqwest as the client.
#![cfg(all(feature = "axum", feature = "jwks-fetch"))]

use std::time::Duration;

use crate::common::{Jwks, Rejection, TestServer, AUDIENCE, DEFAULT_ALGS};
use reqwest::Method;
use serde_json::{json, Value};
use tower_dpop::clock::ManualClock;
use tower_dpop::testing::{unix_now, ClientKey};
use tower_dpop::Algorithm;

async fn rejection(req: reqwest::RequestBuilder) -> Rejection {
    Rejection::read(req.send().await.expect("request sent")).await
}

// 1
#[tokio::test]
async fn valid_get_returns_the_token_claims() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    let resp = srv.dpop_get(&key, &token, "/api/me").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "sub": "alice", "jkt": key.jkt(), "client_id": "demo-client" })
    );
}

// 2
#[tokio::test]
async fn valid_post_echoes_the_body() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    let payload = r#"{"hello":"world","n":[1,2,3]}"#;
    let resp = srv
        .dpop_post(&key, &token, "/api/echo")
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), payload);
}

// 3
async fn algorithm_end_to_end(alg: Algorithm) {
    // Every algorithm the crate verifies, ES384 and ES512 included (not in the default list).
    let srv = TestServer::with_layer(|b| b.algorithms(Algorithm::ALL.iter().copied())).await;
    let key = ClientKey::generate(alg);
    let token = srv.token(&key);
    let proof = srv.proof(&key, &token, "GET", "/api/me");
    let header = proof.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], alg.as_str());
    let resp = srv
        .send_with(Method::GET, "/api/me", &token, &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{alg}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["jkt"], key.jkt(), "{alg}");
}

#[tokio::test]
async fn alg_es256_end_to_end() {
    algorithm_end_to_end(Algorithm::ES256).await;
}

#[tokio::test]
async fn alg_es384_end_to_end() {
    algorithm_end_to_end(Algorithm::ES384).await;
}

#[tokio::test]
async fn alg_es512_end_to_end() {
    algorithm_end_to_end(Algorithm::ES512).await;
}

#[tokio::test]
async fn alg_ps256_end_to_end() {
    algorithm_end_to_end(Algorithm::PS256).await;
}

#[tokio::test]
async fn alg_rs256_end_to_end() {
    algorithm_end_to_end(Algorithm::RS256).await;
}

#[tokio::test]
async fn alg_eddsa_end_to_end() {
    algorithm_end_to_end(Algorithm::EdDSA).await;
}

#[tokio::test]
async fn alg_ed25519_end_to_end() {
    algorithm_end_to_end(Algorithm::Ed25519).await;
}

// 4
#[tokio::test]
async fn replayed_proof_is_rejected() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    let proof = srv.proof(&key, &token, "GET", "/api/me");
    let first = srv.send_with(Method::GET, "/api/me", &token, &proof);
    assert_eq!(first.send().await.unwrap().status(), 200);
    let second = rejection(srv.send_with(Method::GET, "/api/me", &token, &proof)).await;
    second.assert_error(401, "invalid_dpop_proof");
    assert_eq!(second.description(), Some("proof jti was already used"));
}

// 5
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replays_let_exactly_one_through() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    let proof = srv.proof(&key, &token, "GET", "/api/me");
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let req = srv.send_with(Method::GET, "/api/me", &token, &proof);
            tokio::spawn(async move { Rejection::read(req.send().await.unwrap()).await })
        })
        .collect();
    let mut ok = 0;
    let mut replayed = 0;
    for t in futures::future::join_all(tasks).await {
        let r = t.unwrap();
        if r.status == 200 {
            ok += 1;
        } else {
            r.assert_error(401, "invalid_dpop_proof");
            assert_eq!(r.description(), Some("proof jti was already used"));
            replayed += 1;
        }
    }
    assert_eq!((ok, replayed), (1, 63));
    // All 64 validated the same token concurrently; the key set was still fetched once.
    assert_eq!(srv.jwks_fetches(), 1);
}

// 6
#[tokio::test]
async fn no_credentials_get_a_bare_challenge() {
    let srv = TestServer::start().await;
    let r = rejection(srv.client().get(srv.url("/api/me"))).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(format!("DPoP algs=\"{DEFAULT_ALGS}\"").as_str())
    );
    assert_eq!(r.body, json!({ "error": "unauthorized" }));
    assert_eq!(r.cache_control.as_deref(), Some("no-store"));

    let health = srv.client().get(srv.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("www-authenticate").is_none());
    assert_eq!(health.text().await.unwrap(), "ok");
}

// 7
#[tokio::test]
async fn repeated_authorization_or_dpop_headers_are_bad_requests() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);

    let proof = srv.proof(&key, &token, "GET", "/api/me");
    let two_auth = srv
        .send_with(Method::GET, "/api/me", &token, &proof)
        .header("authorization", format!("DPoP {token}"));
    let r = rejection(two_auth).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.description(), Some("more than one Authorization header"));

    let proof = srv.proof(&key, &token, "GET", "/api/me");
    let other = srv.proof(&key, &token, "GET", "/api/me");
    let two_dpop = srv
        .send_with(Method::GET, "/api/me", &token, &proof)
        .header("dpop", other);
    let r = rejection(two_dpop).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.description(), Some("more than one DPoP header"));

    // The rejected request did not consume its proof.
    let ok = srv.send_with(Method::GET, "/api/me", &token, &proof);
    assert_eq!(ok.send().await.unwrap().status(), 200);
}

// 8
#[tokio::test]
async fn stolen_token_with_another_key_is_rejected() {
    let srv = TestServer::start().await;
    let victim = ClientKey::generate(Algorithm::ES256);
    let attacker = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&victim);
    let r = rejection(srv.dpop_get(&attacker, &token, "/api/me")).await;
    r.assert_error(401, "invalid_token");
    assert_eq!(r.description(), Some("Invalid DPoP key binding"));
    assert_eq!(r.body["error_description"], "Invalid DPoP key binding");
}

// 9
#[tokio::test]
async fn scheme_bearer_is_no_credentials_and_dpop_is_case_insensitive() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);

    let proof = srv.proof(&key, &token, "GET", "/api/me");
    let bearer = srv
        .client()
        .get(srv.url("/api/me"))
        .header("authorization", format!("Bearer {token}"))
        .header("dpop", &proof);
    let r = rejection(bearer).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(format!("DPoP algs=\"{DEFAULT_ALGS}\"").as_str())
    );

    for scheme in ["dpop", "DPOP", "dPoP"] {
        let proof = srv.proof(&key, &token, "GET", "/api/me");
        let resp = srv
            .client()
            .get(srv.url("/api/me"))
            .header("authorization", format!("{scheme} {token}"))
            .header("dpop", proof)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["sub"], "alice");
    }
}

// 10
#[tokio::test]
async fn htm_and_htu_must_match_the_request() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);

    // A POST proof on a GET.
    let proof = srv.proof(&key, &token, "POST", "/api/me");
    let r = rejection(srv.send_with(Method::GET, "/api/me", &token, &proof)).await;
    r.assert_error(401, "invalid_dpop_proof");
    assert_eq!(
        r.description(),
        Some("htm does not match the request method")
    );

    // A proof for another path.
    let proof = srv.proof(&key, &token, "GET", "/api/echo");
    let r = rejection(srv.send_with(Method::GET, "/api/me", &token, &proof)).await;
    r.assert_error(401, "invalid_dpop_proof");
    assert_eq!(r.description(), Some("htu does not match the request URI"));

    // The path without the nest prefix (what the inner router sees) is not the request URI.
    let proof = srv.proof(&key, &token, "GET", "/me");
    let r = rejection(srv.send_with(Method::GET, "/api/me", &token, &proof)).await;
    r.assert_error(401, "invalid_dpop_proof");
    assert_eq!(r.description(), Some("htu does not match the request URI"));

    // Queries are ignored on both sides.
    let proof = srv.proof(&key, &token, "GET", "/api/me?x=1");
    let resp = srv
        .send_with(Method::GET, "/api/me?y=2", &token, &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["sub"], "alice");

    // Another authority.
    let other_port = srv.port().wrapping_add(1).max(1);
    for htu in [
        format!("http://127.0.0.1:{other_port}/api/me"),
        format!("http://localhost:{}/api/me", srv.port()),
        format!("https://127.0.0.1:{}/api/me", srv.port()),
        "http://127.0.0.1/api/me".to_owned(),
    ] {
        let proof = key.proof("GET", &htu).access_token(&token).sign();
        let r = rejection(srv.send_with(Method::GET, "/api/me", &token, &proof)).await;
        r.assert_error(401, "invalid_dpop_proof");
        assert_eq!(
            r.description(),
            Some("htu does not match the request URI"),
            "{htu}"
        );
    }
}

// 11
#[tokio::test]
async fn unbound_token_is_rejected() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let now = unix_now();
    let token = srv.issuer.mint(&json!({
        "iss": srv.issuer.issuer(),
        "sub": "alice",
        "aud": AUDIENCE,
        "client_id": "demo-client",
        "iat": now,
        "exp": now + 3600,
    }));
    let r = rejection(srv.dpop_get(&key, &token, "/api/me")).await;
    r.assert_error(401, "invalid_token");
    assert_eq!(
        r.description(),
        Some("access token is not DPoP-bound (no cnf.jkt)")
    );
}

// 12
#[tokio::test]
async fn expired_token_is_rejected() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.issuer.token_for(key.jkt(), unix_now() - 10);
    let r = rejection(srv.dpop_get(&key, &token, "/api/me")).await;
    r.assert_error(401, "invalid_token");
    assert_eq!(r.description(), Some("access token has expired"));
}

// 13
#[tokio::test]
async fn jwks_is_fetched_once_for_many_requests() {
    let srv = TestServer::start().await;
    assert_eq!(srv.jwks_fetches(), 0, "fetched lazily, on first use");
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    for i in 0..5 {
        let resp = srv.dpop_get(&key, &token, "/api/me").send().await.unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
    }
    // A second token (cache miss) is verified with the keys already held.
    let other = ClientKey::generate(Algorithm::ES256);
    let token2 = srv.token(&other);
    let resp = srv
        .dpop_get(&other, &token2, "/api/me")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(srv.jwks_fetches(), 1);
}

// 14
#[tokio::test]
async fn jwks_down_fails_closed_with_503() {
    let srv = TestServer::start_with(Jwks::Dead, |b| b).await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    for _ in 0..3 {
        let r = rejection(srv.dpop_get(&key, &token, "/api/me")).await;
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.www_authenticate, None);
        assert_eq!(r.cache_control.as_deref(), Some("no-store"));
        assert_eq!(
            r.body,
            json!({
                "error": "temporarily_unavailable",
                "error_description": "access token validation is unavailable",
            })
        );
    }
    assert_eq!(srv.jwks_fetches(), 0);
}

// 15
#[tokio::test]
async fn extractor_without_the_layer_is_a_500() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    // Even with valid credentials: nothing verified them.
    let resp = srv
        .dpop_get(&key, &token, "/unprotected/me")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.unwrap();
    assert!(text.contains("DpopLayer"), "{text}");
    assert!(text.contains("not behind"), "{text}");
}

// 16
#[tokio::test]
async fn oversized_proof_is_rejected() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    let huge = "a".repeat(9000);
    let r = rejection(srv.send_with(Method::GET, "/api/me", &token, &huge)).await;
    r.assert_error(401, "invalid_dpop_proof");
    assert_eq!(r.description(), Some("DPoP proof is too large"));

    // A real proof padded by a huge claim is rejected the same way.
    let padded = key
        .proof("GET", &srv.url("/api/me"))
        .access_token(&token)
        .claim("pad", json!("x".repeat(9000)))
        .sign();
    let r = rejection(srv.send_with(Method::GET, "/api/me", &token, &padded)).await;
    r.assert_error(401, "invalid_dpop_proof");
    assert_eq!(r.description(), Some("DPoP proof is too large"));
}

// 17
#[tokio::test]
async fn iat_outside_the_window_is_rejected() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    for (iat, why) in [
        (unix_now() - 300, "proof iat is too old"),
        (unix_now() + 120, "proof iat is in the future"),
    ] {
        let proof = key
            .proof("GET", &srv.url("/api/me"))
            .access_token(&token)
            .iat(iat)
            .sign();
        let r = rejection(srv.send_with(Method::GET, "/api/me", &token, &proof)).await;
        r.assert_error(401, "invalid_dpop_proof");
        assert_eq!(r.description(), Some(why));
    }
}

// 18
#[tokio::test]
async fn rejection_response_shape() {
    let srv = TestServer::start().await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.token(&key);
    let proof = key
        .proof("GET", &srv.url("/api/me"))
        .access_token(&token)
        .without_claim("jti")
        .sign();
    let resp = srv
        .send_with(Method::GET, "/api/me", &token, &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = resp.json().await.unwrap();
    let obj = body.as_object().expect("a JSON object");
    assert_eq!(obj.len(), 2, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof");
    let description = body["error_description"].as_str().expect("a string");
    assert!(!description.is_empty());
    assert_eq!(
        challenge,
        format!(
            "DPoP error=\"invalid_dpop_proof\", error_description=\"{description}\", algs=\"{DEFAULT_ALGS}\""
        )
    );
}

// 19: with an injected clock, a cached token still expires and proofs age.
#[tokio::test]
async fn manual_clock_drives_token_expiry_and_proof_age() {
    let now = unix_now();
    let clock = ManualClock::at_unix(now);
    let srv = TestServer::with_layer({
        let clock = clock.clone();
        move |b| b.clock(clock)
    })
    .await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = srv.issuer.token_for(key.jkt(), now + 120);
    let proof = |iat: u64| {
        key.proof("GET", &srv.url("/api/me"))
            .access_token(&token)
            .iat(iat)
            .sign()
    };

    let resp = srv
        .send_with(Method::GET, "/api/me", &token, &proof(now))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // 61 s later a proof made at `now` is too old, a fresh one passes.
    clock.advance(Duration::from_secs(61));
    let r = rejection(srv.send_with(Method::GET, "/api/me", &token, &proof(now))).await;
    r.assert_error(401, "invalid_dpop_proof");
    assert_eq!(r.description(), Some("proof iat is too old"));
    let resp = srv
        .send_with(Method::GET, "/api/me", &token, &proof(now + 61))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Past `exp`, the cached token is refused.
    clock.set_unix(now + 120);
    let r = rejection(srv.send_with(Method::GET, "/api/me", &token, &proof(now + 120))).await;
    r.assert_error(401, "invalid_token");
    assert_eq!(r.description(), Some("access token has expired"));
    assert_eq!(srv.jwks_fetches(), 1);
}

// 20: a restricted algorithm list is enforced and advertised.
#[tokio::test]
async fn restricted_algorithms_are_enforced_and_advertised() {
    let srv = TestServer::with_layer(|b| b.algorithms([Algorithm::ES256, Algorithm::EdDSA])).await;
    let r = rejection(srv.client().get(srv.url("/api/me"))).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some("DPoP algs=\"ES256 EdDSA\"")
    );

    let p384 = ClientKey::generate(Algorithm::ES384);
    let token = srv.token(&p384);
    let r = rejection(srv.dpop_get(&p384, &token, "/api/me")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), Some("invalid_dpop_proof"));
    assert_eq!(
        r.description(),
        Some("proof alg is not an accepted asymmetric algorithm")
    );
    assert!(
        r.www_authenticate
            .as_deref()
            .is_some_and(|c| c.ends_with("algs=\"ES256 EdDSA\"")),
        "{r:?}"
    );

    let ed = ClientKey::generate(Algorithm::EdDSA);
    let token = srv.token(&ed);
    let resp = srv.dpop_get(&ed, &token, "/api/me").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}
