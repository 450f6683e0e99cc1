//! The layer outside axum: around a bare `tower::service_fn` with `Full<Bytes>` bodies, in
//! front of a plain hyper server on 127.0.0.1 (with the peer address as `PeerAddr`), and in
//! front of a tonic gRPC service on 127.0.0.1 called with tonic's client.
//!
//! None of it needs a crate feature: the validator's keys are inline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HOST, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer as _, ServiceBuilder, ServiceExt as _};
use tower_dpop::layer::PeerAddr;
// The one item used from outside the paths the examples use: the builder's
// `forwarded_header` takes it.
use tower_dpop::layer::ForwardedHeader;
use tower_dpop::testing::{dpop_headers, unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, Authenticated, DpopLayer, DpopLayerBuilder};

const ORIGIN: &str = "https://api.example.com";

fn builder(issuer: &TestIssuer) -> DpopLayerBuilder {
    DpopLayer::builder()
        .public_origin(ORIGIN)
        .token_validator(issuer.validator())
}

/// A client key with a token bound to it.
fn client(issuer: &TestIssuer) -> (ClientKey, String) {
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 300);
    (key, token)
}

/// The handler: `200 <jkt>` for a DPoP request, 500 when the layer left nothing; counts its
/// calls.
fn handler(
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |request: Request<Full<Bytes>>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let answer = match request.extensions().get::<Authenticated>() {
            Some(Authenticated::Dpop(verified)) => Response::new(Full::from(format!(
                "{} {}",
                verified.token().subject().unwrap_or_default(),
                verified.jkt()
            ))),
            _ => {
                let mut r = Response::new(Full::from("no Authenticated extension"));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            }
        };
        async move { Ok(answer) }
    })
}

async fn body_text<B>(body: B) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes = body.collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------------------------------------
// A bare Tower service, through `ServiceExt::oneshot`.

/// Rule: a valid request reaches the inner service with `Authenticated::Dpop` in its
/// extensions, for the proof's key; the inner body comes back as it was.
#[tokio::test]
async fn service_fn_receives_authenticated_for_a_valid_request() {
    let issuer = TestIssuer::new();
    let (key, token) = client(&issuer);
    let proof = key
        .proof("GET", &format!("{ORIGIN}/me"))
        .access_token(&token)
        .sign();
    let calls = Arc::new(AtomicUsize::new(0));
    let service = builder(&issuer)
        .build()
        .unwrap()
        .layer(handler(calls.clone()));
    let mut request = Request::get("/me").body(Full::<Bytes>::default()).unwrap();
    *request.headers_mut() = dpop_headers(&token, &proof);

    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_text(response.into_body()).await,
        format!("alice {}", key.jkt())
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Rule: a request without credentials is answered 401 with the bare DPoP challenge by the
/// layer itself; the inner service is never called.
#[tokio::test]
async fn service_fn_is_not_called_without_credentials() {
    let issuer = TestIssuer::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let service = builder(&issuer)
        .build()
        .unwrap()
        .layer(handler(calls.clone()));
    let request = Request::get("/me").body(Full::<Bytes>::default()).unwrap();

    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("DPoP algs=\""), "{challenge}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------------
// A plain hyper server on 127.0.0.1.

/// Serves `layer` around the handler on a free port of 127.0.0.1 with hyper-util's `auto`
/// builder; with `peer_addr`, each request carries the TCP peer as `PeerAddr`.
async fn hyper_server(layer: DpopLayer, peer_addr: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let service = ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    if peer_addr {
                        request.extensions_mut().insert(PeerAddr(peer));
                    }
                    request
                })
                .layer(layer.clone())
                // The handler takes `Full<Bytes>`; the requests here have empty bodies.
                .map_request(|request: Request<Incoming>| request.map(|_| Full::default()))
                .service(handler(counter.clone()));
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    (addr, calls)
}

/// `GET /me` with these headers over a new HTTP/1.1 connection: status, headers, body.
async fn hyper_get(addr: SocketAddr, headers: HeaderMap) -> (StatusCode, HeaderMap, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::get("/me")
        .header(HOST, addr.to_string())
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    request.headers_mut().extend(headers);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body_text(body).await)
}

/// Rule: over a real socket, a valid request is served (200, the handler saw the proof's key)
/// and the same proof sent again is refused by the layer (401 `invalid_dpop_proof`, the
/// handler not called again).
#[tokio::test]
async fn hyper_server_serves_a_valid_request_and_refuses_its_replay() {
    let issuer = TestIssuer::new();
    let (key, token) = client(&issuer);
    let (addr, calls) = hyper_server(builder(&issuer).build().unwrap(), true).await;
    let proof = key
        .proof("GET", &format!("{ORIGIN}/me"))
        .access_token(&token)
        .sign();

    let (status, _, body) = hyper_get(addr, dpop_headers(&token, &proof)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, format!("alice {}", key.jkt()));

    let (status, headers, _) = hyper_get(addr, dpop_headers(&token, &proof)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = headers[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Rule: a request without credentials over a real socket gets the layer's 401 challenge.
#[tokio::test]
async fn hyper_server_challenges_a_request_without_credentials() {
    let issuer = TestIssuer::new();
    let (addr, calls) = hyper_server(builder(&issuer).build().unwrap(), true).await;
    let (status, headers, _) = hyper_get(addr, HeaderMap::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("DPoP algs=\""));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// Rule: the `PeerAddr` a hyper server puts in the extensions is what `trusted_proxy` is
/// checked against. From the trusted 127.0.0.1, the reported origin is accepted (200), and a
/// request that reports none is refused (400); the very same request without `PeerAddr`
/// comes from no known peer, so nothing is required of it (200).
#[tokio::test]
async fn hyper_server_peer_addr_is_checked_against_trusted_proxies() {
    let issuer = TestIssuer::new();
    let (key, token) = client(&issuer);
    let layer = || {
        builder(&issuer)
            .trusted_proxy("127.0.0.1")
            .forwarded_header(ForwardedHeader::XForwarded)
            .build()
            .unwrap()
    };
    let (with_peer, _) = hyper_server(layer(), true).await;
    let (without_peer, _) = hyper_server(layer(), false).await;
    let headers = |forwarded: bool| {
        let proof = key
            .proof("GET", &format!("{ORIGIN}/me"))
            .access_token(&token)
            .sign();
        let mut headers = dpop_headers(&token, &proof);
        if forwarded {
            headers.insert("x-forwarded-proto", "https".parse().unwrap());
            headers.insert("x-forwarded-host", "api.example.com".parse().unwrap());
        }
        headers
    };

    let (status, _, body) = hyper_get(with_peer, headers(true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _, body) = hyper_get(with_peer, headers(false)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("invalid_request"), "{body}");

    let (status, _, body) = hyper_get(without_peer, headers(false)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// ---------------------------------------------------------------------------------------------
// A tonic gRPC service on 127.0.0.1, called with tonic's client.

mod grpc {
    use super::*;
    use tonic::transport::server::TcpIncoming;
    use tonic::{Code, Status};
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    /// The request URI of `Health/Check` under the public origin: the proof's `htu`.
    pub(super) fn check_url() -> String {
        format!("{ORIGIN}/grpc.health.v1.Health/Check")
    }

    /// tonic-health's service behind `layer` (`Server::builder().layer(..)`, nothing else) on
    /// a free port of 127.0.0.1, and a client connected to it.
    async fn start(layer: DpopLayer) -> HealthClient<tonic::transport::Channel> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        tokio::spawn(
            tonic::transport::Server::builder()
                .layer(layer)
                .add_service(health)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        HealthClient::new(channel)
    }

    async fn check(
        client: &mut HealthClient<tonic::transport::Channel>,
        credentials: Option<(&str, &str)>,
    ) -> Result<ServingStatus, Status> {
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        if let Some((token, proof)) = credentials {
            let metadata = request.metadata_mut();
            metadata.insert("authorization", format!("DPoP {token}").parse().unwrap());
            metadata.insert("dpop", proof.parse().unwrap());
        }
        client.check(request).await.map(|r| r.into_inner().status())
    }

    /// The `algs` of the default challenge.
    const ALGS: &str = "algs=\"ES256 PS256 RS256 EdDSA Ed25519\"";

    /// What tonic's client makes of the layer's rejection of a gRPC call: a gRPC status,
    /// `Unauthenticated`, with the error description as its message and the challenge in its
    /// metadata. Returns the challenge.
    fn assert_unauthenticated(status: &Status) -> String {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        let metadata = status.metadata();
        assert_eq!(metadata.get("cache-control").unwrap(), "no-store");
        let challenge = metadata.get("www-authenticate").unwrap().to_str().unwrap();
        assert!(challenge.starts_with("DPoP "), "{challenge}");
        assert!(challenge.ends_with(ALGS), "{challenge}");
        challenge.to_owned()
    }

    fn assert_invalid_proof(status: &Status) {
        let challenge = assert_unauthenticated(status);
        assert!(
            challenge.starts_with("DPoP error=\"invalid_dpop_proof\", error_description=\""),
            "{challenge}"
        );
    }

    /// Rule: a call with `authorization: DPoP` and `dpop` metadata, its proof for
    /// `POST <origin>/grpc.health.v1.Health/Check`, goes through to the service.
    #[tokio::test]
    async fn a_valid_call_is_served() {
        let issuer = TestIssuer::new();
        let (key, token) = client(&issuer);
        let mut client = start(builder(&issuer).build().unwrap()).await;
        let proof = key.proof("POST", &check_url()).access_token(&token).sign();
        let answer = check(&mut client, Some((&token, &proof))).await.unwrap();
        assert_eq!(answer, ServingStatus::Serving);
    }

    /// Rule: a call without credentials is refused by the layer, and tonic's client sees
    /// `Code::Unauthenticated` with the bare challenge in the status's metadata.
    #[tokio::test]
    async fn a_call_without_credentials_is_refused() {
        let issuer = TestIssuer::new();
        let mut client = start(builder(&issuer).build().unwrap()).await;
        let status = check(&mut client, None).await.unwrap_err();
        assert_eq!(status.message(), "no DPoP credentials in the request");
        assert_eq!(assert_unauthenticated(&status), format!("DPoP {ALGS}"));
    }

    /// Rule: calls with a bad proof are refused the same way: signed for GET (every gRPC
    /// call is a POST), for another path, or sent a second time.
    #[tokio::test]
    async fn a_call_with_a_bad_proof_is_refused() {
        let issuer = TestIssuer::new();
        let (key, token) = client(&issuer);
        let mut client = start(builder(&issuer).build().unwrap()).await;

        let wrong_method = key.proof("GET", &check_url()).access_token(&token).sign();
        let status = check(&mut client, Some((&token, &wrong_method)))
            .await
            .unwrap_err();
        assert_invalid_proof(&status);

        let wrong_path = key
            .proof("POST", &format!("{ORIGIN}/grpc.health.v1.Health/Watch"))
            .access_token(&token)
            .sign();
        let status = check(&mut client, Some((&token, &wrong_path)))
            .await
            .unwrap_err();
        assert_invalid_proof(&status);

        let proof = key.proof("POST", &check_url()).access_token(&token).sign();
        assert!(check(&mut client, Some((&token, &proof))).await.is_ok());
        let status = check(&mut client, Some((&token, &proof)))
            .await
            .unwrap_err();
        assert_invalid_proof(&status);
    }

    /// Rule: a refused server-streaming call (`Health/Watch`) fails at once with the same
    /// `Unauthenticated` status and challenge (the rejection is a trailers-only response).
    #[tokio::test]
    async fn a_refused_streaming_call_is_unauthenticated_too() {
        let issuer = TestIssuer::new();
        let mut client = start(builder(&issuer).build().unwrap()).await;
        let status = client
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(assert_unauthenticated(&status), format!("DPoP {ALGS}"));
    }
}
