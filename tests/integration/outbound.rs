//! A request whose proof signature does not verify causes no outbound call: no JWKS fetch, no
//! introspection request. Introspection calls in flight are capped, failing closed. Through a
//! real JWKS server and a real introspection endpoint on 127.0.0.1, counting what reaches them.
#![cfg(all(feature = "axum", feature = "jwks-fetch", feature = "introspection"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::TestServer;
use axum::routing::post;
use axum::Router;
use http::{HeaderMap, Method};
use tower_dpop::testing::{dpop_headers, unix_now, ClientKey, TestIssuer};
use tower_dpop::token::introspection::IntrospectionValidator;
use tower_dpop::{Algorithm, DpopLayer, Error, ErrorKind};

/// A proof for `token` on `path` whose signature is another proof's: well formed, bound to
/// the token (`ath`) and naming `key`'s `jwk`, but not signed by anyone holding it.
fn forged_proof(key: &ClientKey, token: &str, url: &str) -> String {
    let a = key.proof("GET", url).access_token(token).sign();
    let b = key.proof("GET", url).access_token(token).sign();
    let (input, _) = a.rsplit_once('.').unwrap();
    let (_, signature) = b.rsplit_once('.').unwrap();
    format!("{input}.{signature}")
}

/// A token with a `kid` the server's key set does not have, from an issuer of the same name.
fn unknown_kid_token(key: &ClientKey) -> String {
    TestIssuer::new().token_for(key.jkt(), unix_now() + 600)
}

#[tokio::test]
async fn a_forged_proof_never_makes_the_validator_fetch_keys() {
    let server = TestServer::start().await;
    let attacker = ClientKey::generate(Algorithm::ES256);
    // Before any key was ever fetched, and with a kid nobody knows.
    for token in [
        unknown_kid_token(&attacker),
        "garbage.token.here".to_owned(),
    ] {
        for _ in 0..10 {
            let proof = forged_proof(&attacker, &token, &server.url("/api/me"));
            let resp = server
                .send_with(Method::GET, "/api/me", &token, &proof)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401);
        }
    }
    assert_eq!(server.jwks_fetches(), 0, "no fetch for forged proofs");

    // A real client: its proof verifies, so its new token may be validated with a fetch.
    let client = ClientKey::generate(Algorithm::ES256);
    let token = server.token(&client);
    let resp = server
        .dpop_get(&client, &token, "/api/me")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let fetched = server.jwks_fetches();
    assert_eq!(fetched, 1);

    // Keys in hand: forged proofs with unknown kids still fetch nothing.
    for _ in 0..10 {
        let token = unknown_kid_token(&attacker);
        let proof = forged_proof(&attacker, &token, &server.url("/api/me"));
        let resp = server
            .send_with(Method::GET, "/api/me", &token, &proof)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    assert_eq!(server.jwks_fetches(), fetched);
}

/// An introspection endpoint that counts calls, holds each for `delay`, and knows no token.
async fn introspection_endpoint(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = Router::new().route(
        "/introspect",
        post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                axum::Json(serde_json::json!({ "active": false }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/introspect"), calls)
}

fn introspecting_layer(endpoint: &str, max_in_flight: usize) -> DpopLayer {
    let validator = IntrospectionValidator::builder(endpoint)
        .client_credentials("rs", "secret")
        .any_issuer()
        .any_audience()
        .allow_insecure_http(true)
        .timeout(Duration::from_secs(5))
        .max_in_flight(max_in_flight)
        .build()
        .unwrap();
    DpopLayer::builder()
        .public_origin("https://api.example.com")
        .token_validator(validator)
        .build()
        .unwrap()
}

const URL: &str = "https://api.example.com/api/me";

async fn verify(layer: &DpopLayer, headers: &HeaderMap) -> Result<(), Error> {
    layer
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/api/me",
            headers,
        ))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_forged_proof_never_makes_the_validator_introspect() {
    let (endpoint, calls) = introspection_endpoint(Duration::ZERO).await;
    let layer = introspecting_layer(&endpoint, 64);
    let attacker = ClientKey::generate(Algorithm::ES256);
    for i in 0..20 {
        let token = format!("opaque-{i}");
        let headers = dpop_headers(&token, &forged_proof(&attacker, &token, URL));
        assert_eq!(
            verify(&layer, &headers).await,
            Err(Error::new(
                ErrorKind::ProofSignature,
                "proof signature is invalid"
            ))
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // A proof that verifies lets its token be introspected, once: the refusal is remembered.
    let token = "opaque-signed";
    for _ in 0..5 {
        let proof = attacker.proof("GET", URL).access_token(token).sign();
        assert_eq!(
            verify(&layer, &dpop_headers(token, &proof)).await,
            Err(Error::new(
                ErrorKind::TokenInvalid,
                "access token is not active"
            ))
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// With the endpoint slow, the calls in flight stop at the cap: the next token is refused
/// with 503 at once (not queued), and the cap frees up as calls end.
#[tokio::test]
async fn introspection_calls_in_flight_are_capped_and_fail_closed() {
    let (endpoint, calls) = introspection_endpoint(Duration::from_millis(1500)).await;
    let layer = introspecting_layer(&endpoint, 2);
    let client = ClientKey::generate(Algorithm::ES256);
    let request = |token: &str| {
        let proof = client.proof("GET", URL).access_token(token).sign();
        dpop_headers(token, &proof)
    };
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let layer = layer.clone();
            let headers = request(&format!("slow-{i}"));
            tokio::spawn(async move { verify(&layer, &headers).await })
        })
        .collect();
    // Both slow calls are in flight once the endpoint has seen them.
    while calls.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        verify(&layer, &request("third")).await,
        Err(Error::new(
            ErrorKind::Unavailable,
            "access token validation is unavailable"
        ))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the third was not sent");
    for task in slow {
        assert_eq!(
            task.await.unwrap(),
            Err(Error::new(
                ErrorKind::TokenInvalid,
                "access token is not active"
            ))
        );
    }
    // Room again.
    assert_eq!(
        verify(&layer, &request("fourth")).await,
        Err(Error::new(
            ErrorKind::TokenInvalid,
            "access token is not active"
        ))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
