//! Counters by outcome and a custom rejection body, through a real server on 127.0.0.1.
#![cfg(feature = "axum")]

use crate::common::{builder_for, listen, spawn_app};
use axum::routing::get;
use axum::Router;
use http::HeaderValue;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth};

#[tokio::test]
async fn counters_and_problem_json_body() {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer)
        .rejection_body(|err| {
            let doc = serde_json::json!({
                "type": "about:blank",
                "status": err.status().as_u16(),
                "detail": err.description(),
            });
            (
                HeaderValue::from_static("application/problem+json"),
                doc.to_string().into(),
            )
        })
        .build()
        .unwrap();
    let app = Router::new()
        .route("/me", get(|a: DpopAuth| async move { a.jkt.to_string() }))
        .layer(layer.clone());
    let task = spawn_app(listener, app);
    let client = reqwest::Client::new();
    let url = format!("{origin}/me");
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let send = |proof: Option<String>| {
        let mut req = client.get(&url);
        if let Some(p) = proof {
            req = req
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", p);
        }
        req.send()
    };

    let proof = key.proof("GET", &url).access_token(&token).sign();
    assert_eq!(send(Some(proof.clone())).await.unwrap().status(), 200);
    let replay = send(Some(proof)).await.unwrap();
    assert_eq!(replay.status(), 401);
    // The RFC's headers are kept; only the body changes.
    assert!(replay.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_dpop_proof"));
    assert_eq!(replay.headers()["content-type"], "application/problem+json");
    let doc: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(doc["status"], 401);
    assert_eq!(doc["detail"], "proof jti was already used");
    assert_eq!(send(None).await.unwrap().status(), 401);

    let m = layer.metrics();
    assert_eq!(m.accepted_dpop, 1);
    assert_eq!(m.invalid_proof, 1);
    assert_eq!(m.missing_credentials, 1);
    assert_eq!(m.rejected(), 2);
    task.abort();
}
