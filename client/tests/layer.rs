//! The Tower client layer around hyper-util's client, against the crate's own `DpopLayer` and
//! stand-in servers on 127.0.0.1: nonces, the single retry, streamed bodies, replays.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt as _, Full, StreamBody};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt as _};
use tower_dpop::nonce::NoncePolicy;
use tower_dpop_client::clock::ManualClock;
use tower_dpop_client::{Algorithm, Credentials, DpopClientLayer, DpopKey, DpopOutcome};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct World {
    clock: ManualClock,
    _auth: AuthServer,
    api: ResourceServer,
    key: Arc<DpopKey>,
    token: String,
}

impl World {
    async fn new(policy: NoncePolicy) -> Self {
        let clock = ManualClock::at_unix(T0);
        let auth = AuthServer::start(&clock).await;
        let api = ResourceServer::start(&auth, &clock, policy).await;
        let key = Arc::new(DpopKey::generate(Algorithm::ES256).unwrap());
        let token = auth.issuer.token_for(key.thumbprint(), T0 + 3600);
        Self {
            clock,
            _auth: auth,
            api,
            key,
            token,
        }
    }

    fn layer(&self) -> DpopClientLayer {
        DpopClientLayer::new(Credentials::new(self.key.clone(), self.token.as_str()))
            .clock(self.clock.clone())
    }
}

fn outcome<B>(response: &http::Response<B>) -> DpopOutcome {
    *response.extensions().get::<DpopOutcome>().unwrap()
}

/// With nonces required, the first request is answered `use_dpop_nonce`, retried once with
/// the nonce, and accepted; the next request carries the remembered nonce and needs no retry.
#[tokio::test]
async fn nonce_required_retries_once_then_remembers() {
    let w = World::new(NoncePolicy::Required).await;
    let mut client = ServiceBuilder::new()
        .layer(w.layer())
        .service(hyper_client::<Full<Bytes>>());

    let request = Request::post(w.api.url("/api/me?x=1"))
        .body(full("one"))
        .unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(outcome(&response).retried());
    assert!(!outcome(&response).nonce_challenge());
    assert_eq!(text(response.into_body()).await, "hello alice: one");
    assert_eq!(w.api.hits(), 2, "the refused request and its retry");

    let request = Request::get(w.api.url("/api/me")).body(full("")).unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!outcome(&response).retried(), "the nonce was remembered");
    assert_eq!(w.api.hits(), 3);
}

/// Without a nonce policy, requests go through the first time: a token, a proof, no retry.
#[tokio::test]
async fn no_nonce_policy_no_retry() {
    let w = World::new(NoncePolicy::Off).await;
    let mut client = w.layer().layer_on(hyper_client::<Full<Bytes>>());
    let request = Request::get(w.api.url("/api/me")).body(full("")).unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!outcome(&response).retried());
    assert_eq!(w.api.hits(), 1);
    assert!(w.layer().nonces().is_empty());
}

trait LayerOn {
    fn layer_on<S>(self, s: S) -> tower_dpop_client::DpopClient<S>;
}

impl LayerOn for DpopClientLayer {
    fn layer_on<S>(self, s: S) -> tower_dpop_client::DpopClient<S> {
        tower_layer::Layer::layer(&self, s)
    }
}

/// A streamed body is never replayed: the `use_dpop_nonce` answer is handed back (the outcome
/// says so) after one request, and the nonce is kept for the next request.
#[tokio::test]
async fn streamed_body_is_not_retried() {
    let w = World::new(NoncePolicy::Required).await;
    let mut client = w
        .layer()
        .layer_on(hyper_client::<BoxBody<Bytes, BoxError>>());
    let stream = futures_util::stream::iter([Ok::<_, BoxError>(http_body::Frame::data(
        Bytes::from_static(b"streamed"),
    ))]);
    let request = Request::post(w.api.url("/api/me"))
        .body(BoxBody::new(StreamBody::new(stream)))
        .unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!outcome(&response).retried());
    assert!(outcome(&response).nonce_challenge());
    assert_eq!(w.api.hits(), 1, "sent once");

    // The nonce was remembered: the next streamed request is accepted the first time.
    let stream = futures_util::stream::iter([Ok::<_, BoxError>(http_body::Frame::data(
        Bytes::from_static(b"again"),
    ))]);
    let request = Request::post(w.api.url("/api/me"))
        .body(BoxBody::new(StreamBody::new(stream)))
        .unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response.into_body()).await, "hello alice: again");
    assert_eq!(w.api.hits(), 2);
}

/// A server that answers every request `use_dpop_nonce` with a new nonce is asked twice,
/// never more: the client does not loop.
#[tokio::test]
async fn retries_at_most_once() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/r",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                (
                    StatusCode::UNAUTHORIZED,
                    [
                        (
                            "www-authenticate",
                            r#"DPoP error="use_dpop_nonce""#.to_owned(),
                        ),
                        ("dpop-nonce", format!("n-{n}")),
                    ],
                )
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/r", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let key = DpopKey::generate(Algorithm::EdDSA).unwrap();
    let mut client =
        DpopClientLayer::new(Credentials::new(key, "t")).layer_on(hyper_client::<Full<Bytes>>());
    let response = client
        .ready()
        .await
        .unwrap()
        .call(Request::get(&url).body(full("")).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(outcome(&response).retried());
    assert!(outcome(&response).nonce_challenge());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    task.abort();
}

/// A `DPoP-Nonce` on a successful response is remembered too, and sent in the next proof;
/// a 401 that is not `use_dpop_nonce` is not retried.
#[tokio::test]
async fn nonce_from_success_and_no_retry_on_other_errors() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let app = Router::new()
        .route(
            "/ok",
            get(move |headers: HeaderMap| {
                let proof = headers["dpop"].to_str().unwrap().to_owned();
                log.lock().unwrap().push(proof);
                async move { ([("dpop-nonce", "from-success")], "ok") }
            }),
        )
        .route(
            "/denied",
            get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    [
                        ("www-authenticate", r#"DPoP error="invalid_token""#),
                        ("dpop-nonce", "other"),
                    ],
                )
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let key = DpopKey::generate(Algorithm::ES384).unwrap();
    let layer = DpopClientLayer::new(Credentials::new(key, "t"));
    let mut client = layer.clone().layer_on(hyper_client::<Full<Bytes>>());
    for _ in 0..2 {
        let request = Request::get(format!("{base}/ok")).body(full("")).unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let proofs = seen.lock().unwrap().clone();
    assert_eq!(claims_of(&proofs[0]).get("nonce"), None);
    assert_eq!(claims_of(&proofs[1])["nonce"], "from-success");
    assert_eq!(layer.nonces().get(&base).as_deref(), Some("from-success"));

    let request = Request::get(format!("{base}/denied"))
        .body(full(""))
        .unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!outcome(&response).retried());
    assert!(!outcome(&response).nonce_challenge());
    task.abort();
}

/// Every request gets a fresh proof; a proof captured on the wire and sent again (same token,
/// within its `iat` window) is refused by the server as a replay.
#[tokio::test]
async fn replayed_proof_is_refused() {
    let w = World::new(NoncePolicy::Off).await;
    let captured = Arc::new(Mutex::new(Vec::<http::HeaderMap>::new()));
    let log = captured.clone();
    let mut client = ServiceBuilder::new()
        .layer(w.layer())
        .map_request(move |request: Request<Full<Bytes>>| {
            log.lock().unwrap().push(request.headers().clone());
            request
        })
        .service(hyper_client::<Full<Bytes>>());
    for _ in 0..2 {
        let request = Request::get(w.api.url("/api/me")).body(full("")).unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let headers = captured.lock().unwrap().clone();
    let (first, second) = (&headers[0]["dpop"], &headers[1]["dpop"]);
    assert_ne!(first, second, "a fresh proof per request");
    let claims = claims_of(first.to_str().unwrap());
    assert_ne!(claims["jti"], claims_of(second.to_str().unwrap())["jti"]);
    assert_eq!(claims["htu"], w.api.url("/api/me"), "no query in htu");
    assert_eq!(claims["htm"], "GET");
    assert_eq!(claims["iat"], T0);
    assert_eq!(claims["ath"], tower_dpop_client::ath(&w.token));
    assert_eq!(
        headers[0]["authorization"],
        format!("DPoP {}", w.token).as_str()
    );

    // The first request's headers, sent again by hand.
    let mut replay = Request::get(w.api.url("/api/me")).body(full("")).unwrap();
    *replay.headers_mut() = headers[0].clone();
    let response = hyper_client::<Full<Bytes>>().request(replay).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
}

/// The layer refuses a request whose URI has no origin (nothing to put in `htu`), before
/// sending anything.
#[tokio::test]
async fn relative_uri_is_an_error() {
    let key = DpopKey::generate(Algorithm::ES256).unwrap();
    let mut client =
        DpopClientLayer::new(Credentials::new(key, "t")).layer_on(hyper_client::<Full<Bytes>>());
    let request = Request::get("/relative").body(full("")).unwrap();
    let error = client
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap_err();
    let error = error.downcast::<tower_dpop_client::Error>().unwrap();
    assert_eq!(error.kind(), tower_dpop_client::ErrorKind::Uri);
    let _ = Full::new(Bytes::new()).boxed();
}

/// A body of any type marked `NoReplay` goes through the layer and is never retried.
#[tokio::test]
async fn no_replay_marked_body_is_not_retried() {
    let w = World::new(NoncePolicy::Required).await;
    let mut client = w.layer().layer_on(hyper_client::<
        tower_dpop_client::layer::NoReplay<Full<Bytes>>,
    >());
    let request = Request::post(w.api.url("/api/me"))
        .body(tower_dpop_client::layer::NoReplay(full("x")))
        .unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(outcome(&response).nonce_challenge());
    assert!(!outcome(&response).retried());
    assert_eq!(w.api.hits(), 1);
}
