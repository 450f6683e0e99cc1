//! A panicking handler behind the layer: nothing worse than the framework's own behaviour.
//! Without a panic-catching layer hyper drops that one connection; with tower-http's
//! `CatchPanicLayer` outside the DPoP layer the client gets a 500. Either way the server keeps
//! serving, and the proof of the panicking request stays used.
#![cfg(feature = "axum")]

use crate::common::{builder_for, listen, spawn_app};
use axum::routing::get;
use axum::Router;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth};
use tower_http::catch_panic::CatchPanicLayer;

async fn start(catch: bool) -> (String, TestIssuer, tokio::task::JoinHandle<()>) {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer).build().unwrap();
    let mut app = Router::new()
        .route(
            "/boom",
            get(|_auth: DpopAuth| async move {
                if unix_now() > 0 {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route(
            "/ok",
            get(|auth: DpopAuth| async move { auth.jkt.to_string() }),
        )
        .layer(layer);
    if catch {
        app = app.layer(CatchPanicLayer::new());
    }
    let task = spawn_app(listener, app);
    (origin, issuer, task)
}

async fn check(catch: bool) {
    let (origin, issuer, task) = start(catch).await;
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let client = reqwest::Client::new();
    let send = |path: &str, proof: String| {
        client
            .get(format!("{origin}{path}"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
    };
    let boom = key
        .proof("GET", &format!("{origin}/boom"))
        .access_token(&token)
        .sign();
    match send("/boom", boom.clone()).await {
        Ok(resp) => {
            assert!(catch, "without a catch layer the connection is dropped");
            assert_eq!(resp.status(), 500);
        }
        Err(_) => assert!(!catch, "with CatchPanicLayer the client gets a 500"),
    }
    // The server still serves, and the panicking request's proof was consumed.
    let ok = key
        .proof("GET", &format!("{origin}/ok"))
        .access_token(&token)
        .sign();
    assert_eq!(send("/ok", ok).await.unwrap().status(), 200);
    assert_eq!(
        send("/boom", boom)
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
        401
    );
    task.abort();
}

#[tokio::test]
async fn panic_without_catch_layer_drops_only_that_connection() {
    check(false).await;
}

#[tokio::test]
async fn panic_with_catch_layer_is_a_500() {
    check(true).await;
}
