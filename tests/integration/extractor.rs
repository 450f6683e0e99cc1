//! The extractors answer like the layer: their rejections carry the layer's challenge, its
//! rejection body and `Cache-Control: no-store`; and the same layer applied twice verifies a
//! request once. Through a real server on 127.0.0.1.
#![cfg(feature = "axum")]

use crate::common::{builder_for, listen, spawn_app, DEFAULT_ALGS};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth, DpopLayer};

fn problem_body(err: &tower_dpop::Error) -> (http::HeaderValue, bytes::Bytes) {
    let doc = serde_json::json!({ "status": err.status().as_u16(), "detail": err.description() });
    (
        http::HeaderValue::from_static("application/problem+json"),
        doc.to_string().into(),
    )
}

/// Claims the test tokens cannot have: `role` is absent.
#[derive(Deserialize)]
#[allow(dead_code)]
struct NeedsRole {
    role: String,
}

#[tokio::test]
async fn extractor_rejections_use_the_layer_challenge_and_body() {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer)
        .allow_bearer(true)
        .rejection_body(problem_body)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/role",
            get(|a: DpopAuth<NeedsRole>| async move { a.claims.role }),
        )
        .route(
            "/dpop-only",
            get(|a: DpopAuth| async move { a.jkt.to_string() }),
        )
        .layer(layer);
    let task = spawn_app(listener, app);
    let client = reqwest::Client::new();
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);

    // Claims that do not deserialize: 401 invalid_token in the DPoP challenge.
    let url = format!("{origin}/role");
    let resp = client
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", key.proof("GET", &url).access_token(&token).sign())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        www,
        format!(
            "Bearer, DPoP error=\"invalid_token\", error_description=\"access token claims do not have the expected form\", algs=\"{DEFAULT_ALGS}\""
        )
    );
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "access token claims do not have the expected form"
    );

    // A Bearer request where DPoP is required: the error goes in the Bearer challenge.
    let unbound = issuer.mint(&serde_json::json!({
        "iss": issuer.issuer(), "aud": "https://api.example.com", "sub": "legacy", "exp": unix_now() + 600
    }));
    let resp = client
        .get(format!("{origin}/dpop-only"))
        .header("authorization", format!("Bearer {unbound}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        www.starts_with("Bearer error=\"invalid_token\", error_description=\"this resource requires a DPoP-bound access token\""),
        "{www}"
    );
    assert!(
        www.contains(&format!("DPoP algs=\"{DEFAULT_ALGS}\"")),
        "{www}"
    );
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    task.abort();
}

/// With nonces required, an extractor's 401 carries a fresh `DPoP-Nonce`, as the layer's do.
#[tokio::test]
async fn extractor_rejections_carry_a_nonce_when_nonces_are_required() {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer)
        .nonce_policy(tower_dpop::nonce::NoncePolicy::Required)
        .build()
        .unwrap();
    let nonce = layer.fresh_nonce().unwrap().to_str().unwrap().to_owned();
    let app = Router::new()
        .route(
            "/role",
            get(|a: DpopAuth<NeedsRole>| async move { a.claims.role }),
        )
        .layer(layer);
    let task = spawn_app(listener, app);
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let url = format!("{origin}/role");
    let resp = reqwest::Client::new()
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header(
            "dpop",
            key.proof("GET", &url)
                .access_token(&token)
                .nonce(&nonce)
                .sign(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("dpop-nonce"));
    task.abort();
}

/// The same layer on a router and again on a router nested in it (sharing one replay store):
/// a valid request is verified once and served; its replay is still refused.
#[tokio::test]
async fn the_same_layer_applied_twice_verifies_a_request_once() {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer: DpopLayer = builder_for(&origin, &issuer).build().unwrap();
    let inner = Router::new()
        .route("/me", get(|a: DpopAuth| async move { a.jkt.to_string() }))
        .layer(layer.clone());
    let app = Router::new().nest("/api", inner).layer(layer);
    let task = spawn_app(listener, app);
    let client = reqwest::Client::new();
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let url = format!("{origin}/api/me");
    let proof = key.proof("GET", &url).access_token(&token).sign();
    let send = || {
        client
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", &proof)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.text().await.unwrap(), key.jkt());
    let replay = send().await.unwrap();
    assert_eq!(replay.status(), 401);
    task.abort();
}
