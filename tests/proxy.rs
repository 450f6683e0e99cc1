//! Forwarding headers are trusted only from configured proxy addresses (the TCP peer, from
//! axum's `ConnectInfo`), through a real server on 127.0.0.1.

mod common;

use axum::routing::get;
use axum::Router;
use common::{builder_for, listen, spawn_app_with_connect_info};
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth};

async fn start(trusted: &str) -> (String, TestIssuer, tokio::task::JoinHandle<()>) {
    let issuer = TestIssuer::new();
    let (listener, local) = listen().await;
    let layer = builder_for("https://api.example.com", &issuer)
        .trusted_proxy(trusted)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/me", get(|a: DpopAuth| async move { a.jkt.to_string() }))
        .layer(layer);
    let task = spawn_app_with_connect_info(listener, app);
    (local, issuer, task)
}

async fn status(local: &str, issuer: &TestIssuer, htu: &str, headers: &[(&str, &str)]) -> u16 {
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let mut req = reqwest::Client::new()
        .get(format!("{local}/me"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", key.proof("GET", htu).access_token(&token).sign());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn forwarded_origin_from_a_trusted_proxy() {
    let (local, issuer, task) = start("127.0.0.0/8").await;
    let xf = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "shop.example.com"),
    ];
    assert_eq!(
        status(&local, &issuer, "https://shop.example.com/me", &xf).await,
        200
    );
    let fwd = [(
        "forwarded",
        "for=203.0.113.9;proto=https;host=shop.example.com",
    )];
    assert_eq!(
        status(&local, &issuer, "https://shop.example.com/me", &fwd).await,
        200
    );
    // The configured origin still works; a host the proxy did not report does not.
    assert_eq!(
        status(&local, &issuer, "https://api.example.com/me", &[]).await,
        200
    );
    assert_eq!(
        status(&local, &issuer, "https://evil.example.com/me", &xf).await,
        401
    );
    task.abort();
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let (local, issuer, task) = start("10.0.0.0/8").await;
    let xf = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "shop.example.com"),
    ];
    assert_eq!(
        status(&local, &issuer, "https://shop.example.com/me", &xf).await,
        401
    );
    let host = [("host", "shop.example.com")];
    assert_eq!(
        status(&local, &issuer, "http://shop.example.com/me", &host).await,
        401
    );
    task.abort();
}
