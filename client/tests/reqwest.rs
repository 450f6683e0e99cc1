//! `DpopReqwest` and the token client over reqwest, against the crate's own `DpopLayer` and a
//! stand-in token endpoint on 127.0.0.1, with nonces required on both sides.
#![cfg(feature = "reqwest")]

mod common;

use std::sync::Arc;

use common::*;
use tower_dpop::nonce::NoncePolicy;
use tower_dpop_client::clock::ManualClock;
use tower_dpop_client::{Algorithm, DpopKey, DpopOutcome, DpopReqwest, TokenClient};

/// A token over reqwest (the endpoint's nonce answered), then `POST` and `GET` at the API
/// (its nonce answered once, by replaying the cloned request), then no more retries.
#[tokio::test]
async fn reqwest_client_with_nonces_on_both_sides() {
    let clock = ManualClock::at_unix(T0);
    let auth = AuthServer::start(&clock).await;
    let api = ResourceServer::start(&auth, &clock, NoncePolicy::Required).await;
    let http = reqwest::Client::new();
    let tokens = Arc::new(
        TokenClient::builder(
            &auth.token_endpoint,
            CLIENT_ID,
            CLIENT_SECRET,
            DpopKey::generate(Algorithm::ES256).unwrap(),
        )
        .clock(clock.clone())
        .build(http.clone())
        .unwrap(),
    );
    let client = DpopReqwest::new(http, tokens.clone()).clock(clock.clone());

    let request = client
        .inner()
        .post(api.url("/api/me?x=1"))
        .body("posted")
        .build()
        .unwrap();
    let response = client.execute(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let outcome = *response.extensions().get::<DpopOutcome>().unwrap();
    assert!(outcome.retried());
    assert_eq!(response.text().await.unwrap(), "hello alice: posted");
    assert_eq!(api.hits(), 2);

    let request = client.inner().get(api.url("/api/me")).build().unwrap();
    let response = client.execute(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(!response
        .extensions()
        .get::<DpopOutcome>()
        .unwrap()
        .retried());
    assert_eq!(api.hits(), 3);
    assert_eq!(
        auth.grants(),
        [
            ("client_credentials".to_owned(), 400),
            ("client_credentials".to_owned(), 200)
        ]
    );
}

/// reqwest's client is refused a token endpoint response larger than the limit.
#[tokio::test]
async fn oversized_token_response_is_refused() {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/token",
        post(|| async { "x".repeat(tower_dpop_client::token::MAX_RESPONSE_LEN + 1) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let tokens = TokenClient::builder(
        url,
        "id",
        "secret",
        DpopKey::generate(Algorithm::ES256).unwrap(),
    )
    .build(reqwest::Client::new())
    .unwrap();
    let error = tokens.client_credentials().await.unwrap_err();
    assert_eq!(error.kind(), tower_dpop_client::ErrorKind::Transport);
    task.abort();
}
