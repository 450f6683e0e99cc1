//! The token client against a stand-in token endpoint on 127.0.0.1 that requires its own DPoP
//! nonce, authenticates `client_secret_basic` and binds tokens to the proof's key; and the
//! tokens used at the crate's own `DpopLayer`.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Service, ServiceExt as _};
use tower_dpop::nonce::NoncePolicy;
use tower_dpop_client::clock::ManualClock;
use tower_dpop_client::token::ServiceTransport;
use tower_dpop_client::DpopClient;
use tower_dpop_client::{
    Algorithm, Credentials, DpopClientLayer, DpopKey, DpopOutcome, ErrorKind, TokenClient,
};
use tower_layer::Layer as _;

type Hyper = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

struct World {
    clock: ManualClock,
    auth: AuthServer,
    api: ResourceServer,
}

impl World {
    async fn new(policy: NoncePolicy) -> Self {
        let clock = ManualClock::at_unix(T0);
        let auth = AuthServer::start(&clock).await;
        let api = ResourceServer::start(&auth, &clock, policy).await;
        Self { clock, auth, api }
    }

    fn token_client(&self, key: DpopKey) -> TokenClient {
        TokenClient::builder(&self.auth.token_endpoint, CLIENT_ID, CLIENT_SECRET, key)
            .scope("read")
            .clock(self.clock.clone())
            .build(ServiceTransport(hyper_client::<Full<Bytes>>()))
            .unwrap()
    }

    async fn get(&self, client: &mut DpopClient<Hyper>) -> (StatusCode, DpopOutcome, String) {
        let request = Request::get(self.api.url("/api/me"))
            .body(full(""))
            .unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        let outcome = *response.extensions().get::<DpopOutcome>().unwrap();
        (response.status(), outcome, text(response.into_body()).await)
    }
}

/// The first token request is answered `400 use_dpop_nonce` with a nonce; the client retries
/// once with it and gets a token bound to its key (the endpoint checks the proof, `htu` the
/// endpoint, and `client_secret_basic` with form-urlencoded id and secret).
#[tokio::test]
async fn token_endpoint_nonce_answered_once() {
    let w = World::new(NoncePolicy::Off).await;
    let key = DpopKey::generate(Algorithm::ES256).unwrap();
    let jkt = key.thumbprint().to_owned();
    let tokens = w.token_client(key);
    let response = tokens.client_credentials().await.unwrap();
    assert!(response.token_type().eq_ignore_ascii_case("dpop"));
    assert_eq!(response.expires_in(), Some(300));
    let requests = w.auth.requests();
    let requests: Vec<_> = requests
        .iter()
        .map(|(g, k, s)| (g.as_str(), k.as_str(), *s))
        .collect();
    assert_eq!(
        requests,
        [
            ("client_credentials", jkt.as_str(), 400),
            ("client_credentials", jkt.as_str(), 200)
        ]
    );
    assert_eq!(
        tokens
            .nonces()
            .get(w.auth.token_endpoint.trim_end_matches("/token"))
            .as_deref(),
        Some("as-nonce-0")
    );

    // A stale nonce later: one more retry, not a loop.
    w.auth.rotate_nonce();
    tokens.client_credentials().await.unwrap();
    assert_eq!(w.auth.grants().len(), 4);
}

/// Wrong client credentials are refused, not retried, with the OAuth error code kept.
#[tokio::test]
async fn token_endpoint_refusal_is_an_error() {
    let w = World::new(NoncePolicy::Off).await;
    let key = DpopKey::generate(Algorithm::ES256).unwrap();
    let tokens = TokenClient::builder(&w.auth.token_endpoint, CLIENT_ID, "wrong", key)
        .clock(w.clock.clone())
        .build(ServiceTransport(hyper_client::<Full<Bytes>>()))
        .unwrap();
    let error = tokens.client_credentials().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TokenEndpoint);
    assert_eq!(error.oauth_error(), Some("invalid_client"));
    assert_eq!(w.auth.grants(), [("client_credentials".to_owned(), 401)]);
}

/// A token endpoint that answers with a bearer token is refused: it is not DPoP-bound.
#[tokio::test]
async fn bearer_token_type_refused() {
    let w = World::new(NoncePolicy::Off).await;
    w.auth.log.lock().unwrap().token_type = Some("Bearer".into());
    let tokens = w.token_client(DpopKey::generate(Algorithm::ES256).unwrap());
    let error = tokens.client_credentials().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TokenType);
    assert!(tokens.access_token().await.is_err());
}

/// The whole path, with nonces on both sides: a token from the endpoint (after its nonce),
/// then the API (after its nonce). The token is cached: a second call makes no token request.
#[tokio::test]
async fn token_then_resource_with_nonces_on_both_sides() {
    let w = World::new(NoncePolicy::Required).await;
    let tokens = Arc::new(w.token_client(DpopKey::generate(Algorithm::EdDSA).unwrap()));
    let mut client = DpopClientLayer::new(tokens.clone())
        .clock(w.clock.clone())
        .layer(hyper_client::<Full<Bytes>>());
    let (status, outcome, body) = w.get(&mut client).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(outcome.retried(), "the API's nonce");
    assert_eq!(body, "hello alice: ");
    let (status, outcome, _) = w.get(&mut client).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!outcome.retried());
    assert_eq!(
        w.auth.grants(),
        [
            ("client_credentials".to_owned(), 400),
            ("client_credentials".to_owned(), 200)
        ],
        "one token for both calls"
    );
    assert_eq!(w.api.hits(), 3);
}

/// A cached token is replaced shortly before it expires: with the refresh token, bound to the
/// same key. Past its expiry the server refuses the old token, and the client never sends it.
#[tokio::test]
async fn token_expiry_and_refresh() {
    let w = World::new(NoncePolicy::Off).await;
    w.auth.log.lock().unwrap().expires_in = 120;
    let tokens = Arc::new(w.token_client(DpopKey::generate(Algorithm::ES256).unwrap()));
    let mut client = DpopClientLayer::new(tokens.clone())
        .clock(w.clock.clone())
        .layer(hyper_client::<Full<Bytes>>());
    let first = tokens.access_token().await.unwrap();
    assert_eq!(w.get(&mut client).await.0, StatusCode::OK);

    // Still more than the 30 s margin left: the same token.
    w.clock.advance(60);
    assert_eq!(w.get(&mut client).await.0, StatusCode::OK);
    assert_eq!(
        w.auth.grants().len(),
        2,
        "nonce refusal and the first token only"
    );

    // Inside the margin: refreshed before use.
    w.clock.advance(40);
    assert_eq!(w.get(&mut client).await.0, StatusCode::OK);
    let grants = w.auth.grants();
    assert_eq!(grants.last().unwrap(), &("refresh_token".to_owned(), 200));
    let second = tokens.access_token().await.unwrap();
    assert_ne!(first.access_token(), second.access_token());

    // The first token, now expired, is refused by the server.
    w.clock.advance(30);
    let mut stale = DpopClientLayer::new(first.clone())
        .clock(w.clock.clone())
        .layer(hyper_client::<Full<Bytes>>());
    let (status, _, _) = w.get(&mut stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(w.get(&mut client).await.0, StatusCode::OK);
}

/// A refused refresh token (here: the endpoint forgot it) falls back to client credentials.
#[tokio::test]
async fn refused_refresh_falls_back_to_client_credentials() {
    let w = World::new(NoncePolicy::Off).await;
    w.auth.log.lock().unwrap().expires_in = 60;
    let tokens = w.token_client(DpopKey::generate(Algorithm::ES256).unwrap());
    tokens.access_token().await.unwrap();
    w.auth.log.lock().unwrap().refresh_tokens.clear();
    w.clock.advance(45);
    tokens.access_token().await.unwrap();
    let grants: Vec<_> = w
        .auth
        .grants()
        .into_iter()
        .map(|(g, s)| format!("{g} {s}"))
        .collect();
    assert_eq!(
        grants,
        [
            "client_credentials 400",
            "client_credentials 200",
            "refresh_token 400",
            "client_credentials 200"
        ]
    );
}

/// Key rotation: after `rotate_key` the next request obtains a token bound to the new key
/// (the old token is never sent with the new key), and the server accepts it. The old token
/// with the new key's proofs is refused by the server.
#[tokio::test]
async fn key_rotation() {
    let w = World::new(NoncePolicy::Off).await;
    let old_key = DpopKey::generate(Algorithm::ES256).unwrap();
    let tokens = Arc::new(w.token_client(old_key.clone()));
    let mut client = DpopClientLayer::new(tokens.clone())
        .clock(w.clock.clone())
        .layer(hyper_client::<Full<Bytes>>());
    assert_eq!(w.get(&mut client).await.0, StatusCode::OK);
    let old = tokens.access_token().await.unwrap();
    assert_eq!(old.key().thumbprint(), old_key.thumbprint());

    let new_key = DpopKey::generate(Algorithm::PS256).unwrap();
    tokens.rotate_key(new_key.clone());
    assert_eq!(w.get(&mut client).await.0, StatusCode::OK);
    let new = tokens.access_token().await.unwrap();
    assert_eq!(new.key().thumbprint(), new_key.thumbprint());
    assert_ne!(new.access_token(), old.access_token());
    assert_eq!(
        w.auth.requests().last().unwrap().1,
        new_key.thumbprint(),
        "bound to the new key"
    );

    // The old token under the new key: refused (its cnf.jkt names the old key).
    let mixed = Credentials::new(new_key, old.access_token().unwrap());
    let mut mixed = DpopClientLayer::new(mixed)
        .clock(w.clock.clone())
        .layer(hyper_client::<Full<Bytes>>());
    let (status, _, _) = w.get(&mut mixed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// An endpoint that asks for a new nonce every time is asked twice, then the client gives up
/// with its `use_dpop_nonce` refusal: no loop.
#[tokio::test]
async fn token_endpoint_nonce_retried_at_most_once() {
    let w = World::new(NoncePolicy::Off).await;
    w.auth.log.lock().unwrap().always_new_nonce = true;
    let tokens = w.token_client(DpopKey::generate(Algorithm::ES256).unwrap());
    let error = tokens.client_credentials().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TokenEndpoint);
    assert_eq!(error.oauth_error(), Some("use_dpop_nonce"));
    assert_eq!(w.auth.grants().len(), 2);
}

/// A token endpoint answer larger than the limit is refused through a Tower transport too.
#[tokio::test]
async fn oversized_token_response_is_refused_by_service_transport() {
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
    .build(ServiceTransport(hyper_client::<Full<Bytes>>()))
    .unwrap();
    let error = tokens.client_credentials().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport);
    task.abort();
}

/// Neither the client secret nor a token appears in `Debug` output or error messages.
#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let w = World::new(NoncePolicy::Off).await;
    let tokens = w.token_client(DpopKey::generate(Algorithm::ES256).unwrap());
    let credentials = tokens.access_token().await.unwrap();
    let token = credentials.access_token().unwrap().to_owned();
    let response = tokens.client_credentials().await.unwrap();
    for debug in [
        format!("{tokens:?}"),
        format!("{credentials:?}"),
        format!("{response:?}"),
    ] {
        assert!(!debug.contains(CLIENT_SECRET), "{debug}");
        assert!(!debug.contains(&token), "{debug}");
        assert!(!debug.contains(response.access_token()), "{debug}");
        assert!(
            !debug.contains(response.refresh_token().unwrap()),
            "{debug}"
        );
    }
    let refused = TokenClient::builder(
        &w.auth.token_endpoint,
        CLIENT_ID,
        "wrong-secret-value",
        DpopKey::generate(Algorithm::ES256).unwrap(),
    )
    .build(ServiceTransport(hyper_client::<Full<Bytes>>()))
    .unwrap()
    .client_credentials()
    .await
    .unwrap_err();
    assert!(!format!("{refused} {refused:?}").contains("wrong-secret-value"));
}
