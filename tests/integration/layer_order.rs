//! Where the DPoP layer goes in an axum router, and what each placement does, as described in
//! `docs/layers.md`: `route_layer` against `layer` (unknown paths), nested routers (`htu` is the
//! full path), and the order of `CorsLayer` and `TraceLayer` around the DPoP layer.
//!
//! Every request goes through the `Router` with `tower::ServiceExt::oneshot`: what is checked
//! here is the composition of services, not the socket.
//!
//! axum applies `Router::layer` and `Router::route_layer` calls so that the last one added is
//! the outermost.
#![cfg(feature = "axum")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_dpop::nonce::NoncePolicy;
use tower_dpop::replay::{MemoryReplayStore, ReplayError, ReplayKey, ReplayStore, Seen};
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth, DpopLayer, DpopLayerBuilder};
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

/// The API's public origin: what proofs put in `htu`.
const ORIGIN: &str = "https://api.example.com";
/// The web app that calls the API from a browser.
const APP: &str = "https://app.example.com";

/// A layer builder trusting `issuer`'s keys.
fn builder(issuer: &TestIssuer) -> DpopLayerBuilder {
    DpopLayer::builder()
        .public_origin(ORIGIN)
        .token_validator(issuer.validator())
}

async fn me(auth: DpopAuth) -> String {
    auth.jkt.to_string()
}

/// A client key and a token bound to it.
struct Client {
    key: ClientKey,
    token: String,
}

impl Client {
    fn new(issuer: &TestIssuer) -> Self {
        let key = ClientKey::generate(Algorithm::ES256);
        let token = issuer.token_for(key.jkt(), unix_now() + 600);
        Self { key, token }
    }

    /// A fresh proof for `method` and `htu`, with the server's `nonce` if given.
    fn proof(&self, method: &Method, htu: &str, nonce: Option<&str>) -> String {
        let proof = self
            .key
            .proof(method.as_str(), htu)
            .access_token(&self.token);
        match nonce {
            Some(n) => proof.nonce(n).sign(),
            None => proof.sign(),
        }
    }

    /// `method path` with the token and this proof.
    fn signed(&self, method: Method, path: &str, proof: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("DPoP {}", self.token))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    }

    /// `method path` with the token and a proof whose `htu` is `ORIGIN` + `htu_path`.
    fn request_for(&self, method: Method, path: &str, htu_path: &str) -> Request<Body> {
        let proof = self.proof(&method, &format!("{ORIGIN}{htu_path}"), None);
        self.signed(method, path, &proof)
    }

    /// `method path` with the token and a proof for it.
    fn request(&self, method: Method, path: &str) -> Request<Body> {
        self.request_for(method, path, path)
    }
}

/// `method path` with no credentials.
fn bare(method: Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> Response {
    app.clone().oneshot(req).await.unwrap()
}

async fn body_text(res: Response) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// The challenge of a DPoP rejection, or `None`.
fn challenge(res: &Response) -> Option<&str> {
    header_str(res.headers(), "www-authenticate")
}

/// `Router::layer` wraps the router's fallback too: a path without a route answers with a DPoP
/// challenge instead of 404.
#[tokio::test]
async fn layer_turns_unknown_paths_into_401() {
    let issuer = TestIssuer::new();
    let app = Router::new()
        .route("/me", get(me))
        .layer(builder(&issuer).build().unwrap());

    let typo = send(&app, bare(Method::GET, "/helth")).await;
    assert_eq!(typo.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&typo).unwrap().starts_with("DPoP"), "{typo:?}");
    // Only a valid DPoP request gets to learn that the path does not exist.
    let signed = send(&app, Client::new(&issuer).request(Method::GET, "/helth")).await;
    assert_eq!(signed.status(), StatusCode::NOT_FOUND);
}

/// `Router::route_layer` runs only when a route matched: unknown paths keep their 404, the
/// routes it covers get every DPoP check, and routes added after it stay open.
#[tokio::test]
async fn route_layer_keeps_404_and_checks_matched_routes() {
    let issuer = TestIssuer::new();
    let app = Router::new()
        .route("/me", get(me))
        .route_layer(builder(&issuer).build().unwrap())
        .route("/health", get(|| async { "ok" }));
    let client = Client::new(&issuer);

    let typo = send(&app, bare(Method::GET, "/helth")).await;
    assert_eq!(typo.status(), StatusCode::NOT_FOUND);
    assert_eq!(challenge(&typo), None);

    let open = send(&app, bare(Method::GET, "/health")).await;
    assert_eq!(open.status(), StatusCode::OK);

    let anonymous = send(&app, bare(Method::GET, "/me")).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&anonymous).unwrap().starts_with("DPoP"));

    let proof = client.proof(&Method::GET, &format!("{ORIGIN}/me"), None);
    let replay = || client.signed(Method::GET, "/me", &proof);
    let ok = send(&app, replay()).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(body_text(ok).await, client.key.jkt());

    let replayed = send(&app, replay()).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&replayed).unwrap().contains("invalid_dpop_proof"));

    let wrong_htu = send(&app, client.request_for(Method::GET, "/me", "/other")).await;
    assert_eq!(wrong_htu.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&wrong_htu)
        .unwrap()
        .contains("invalid_dpop_proof"));
}

/// A matched path's other methods are covered too: axum's 405 sits behind the layer, so it is
/// only given to a request with valid DPoP credentials.
#[tokio::test]
async fn route_layer_covers_a_matched_path_s_missing_methods() {
    let issuer = TestIssuer::new();
    let app = Router::new()
        .route("/me", get(me))
        .route_layer(builder(&issuer).build().unwrap());

    let anonymous = send(&app, bare(Method::POST, "/me")).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let signed = send(&app, Client::new(&issuer).request(Method::POST, "/me")).await;
    assert_eq!(signed.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// Under `Router::nest` the inner router sees the path without its prefix; the layer reads
/// axum's `OriginalUri`, so `htu` must name the full path.
#[tokio::test]
async fn nested_layer_checks_htu_against_the_full_path() {
    let issuer = TestIssuer::new();
    let api = Router::new()
        .route("/me", get(me))
        .route_layer(builder(&issuer).build().unwrap());
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest("/api", api);
    let client = Client::new(&issuer);

    let full = send(&app, client.request(Method::GET, "/api/me")).await;
    assert_eq!(full.status(), StatusCode::OK);
    let stripped = send(&app, client.request_for(Method::GET, "/api/me", "/me")).await;
    assert_eq!(stripped.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&stripped).unwrap().contains("invalid_dpop_proof"));
}

/// How the inner router was wrapped, and whether it has its own fallback.
#[derive(Debug, Clone, Copy)]
enum Inner {
    Layer,
    RouteLayer,
    LayerWithFallback,
    RouteLayerWithFallback,
}

/// Nesting drops the inner router's default fallback, so unknown paths under the prefix reach
/// the outer router's 404 whether the inner router used `layer` or `route_layer`; an inner
/// router with its own fallback keeps it, and only `layer` puts that fallback behind DPoP.
#[tokio::test]
async fn nested_unknown_paths_by_inner_wrapping() {
    struct Case {
        inner: Inner,
        under_prefix: StatusCode,
    }
    let cases = [
        Case {
            inner: Inner::Layer,
            under_prefix: StatusCode::NOT_FOUND,
        },
        Case {
            inner: Inner::RouteLayer,
            under_prefix: StatusCode::NOT_FOUND,
        },
        Case {
            inner: Inner::LayerWithFallback,
            under_prefix: StatusCode::UNAUTHORIZED,
        },
        Case {
            inner: Inner::RouteLayerWithFallback,
            under_prefix: StatusCode::GONE,
        },
    ];
    let issuer = TestIssuer::new();
    for case in cases {
        let dpop = builder(&issuer).build().unwrap();
        let api = Router::new().route("/me", get(me));
        let api = match case.inner {
            Inner::Layer => api.layer(dpop),
            Inner::RouteLayer => api.route_layer(dpop),
            Inner::LayerWithFallback => api.fallback(|| async { StatusCode::GONE }).layer(dpop),
            Inner::RouteLayerWithFallback => api
                .fallback(|| async { StatusCode::GONE })
                .route_layer(dpop),
        };
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .nest("/api", api);

        let res = send(&app, bare(Method::GET, "/api/helth")).await;
        assert_eq!(res.status(), case.under_prefix, "{:?}", case.inner);
        let res = send(&app, bare(Method::GET, "/helth")).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{:?}", case.inner);
        let res = send(&app, bare(Method::GET, "/api/me")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{:?}", case.inner);
    }
}

/// The CORS policy of `docs/layers.md`.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(HeaderValue::from_static(APP))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            HeaderName::from_static("dpop"),
            header::CONTENT_TYPE,
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("dpop-nonce"),
        ])
}

/// Where `CorsLayer` sits relative to the DPoP layer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CorsOrder {
    /// `.route_layer(dpop).layer(cors)`: CORS outside.
    Outside,
    /// `.layer(cors).layer(dpop)`: CORS inside.
    InsideLayer,
    /// `.layer(cors).route_layer(dpop)`: CORS inside; `route_layer` does not change the order.
    InsideRouteLayer,
}

fn cors_app(issuer: &TestIssuer, order: CorsOrder) -> Router {
    let dpop = builder(issuer)
        .nonce_policy(NoncePolicy::Required)
        .build()
        .unwrap();
    let app = Router::new().route("/me", get(me));
    match order {
        CorsOrder::Outside => app.route_layer(dpop).layer(cors()),
        CorsOrder::InsideLayer => app.layer(cors()).layer(dpop),
        CorsOrder::InsideRouteLayer => app.layer(cors()).route_layer(dpop),
    }
}

fn preflight() -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/me")
        .header(header::ORIGIN, APP)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, dpop",
        )
        .body(Body::empty())
        .unwrap()
}

/// A cross-origin `GET /me` with credentials, as a browser sends it.
fn cross_origin(client: &Client, nonce: Option<&str>) -> Request<Body> {
    let proof = client.proof(&Method::GET, &format!("{ORIGIN}/me"), nonce);
    let mut req = client.signed(Method::GET, "/me", &proof);
    req.headers_mut()
        .insert(header::ORIGIN, HeaderValue::from_static(APP));
    req
}

/// `CorsLayer` outside the DPoP layer answers the preflight (which carries no credentials) and
/// marks DPoP's own 401 readable: `Access-Control-Allow-Origin`, the exposed `WWW-Authenticate`
/// and `DPoP-Nonce`, and `Vary`. Inside, DPoP refuses the preflight with 401 before CORS sees
/// it, and its 401s carry no CORS headers, so a browser script cannot read them.
#[tokio::test]
async fn cors_outside_dpop_answers_preflights_and_exposes_rejections() {
    let issuer = TestIssuer::new();
    let client = Client::new(&issuer);
    for order in [
        CorsOrder::Outside,
        CorsOrder::InsideLayer,
        CorsOrder::InsideRouteLayer,
    ] {
        let app = cors_app(&issuer, order);
        let outside = order == CorsOrder::Outside;

        let pre = send(&app, preflight()).await;
        let h = pre.headers();
        if outside {
            assert_eq!(pre.status(), StatusCode::OK, "{order:?}");
            assert_eq!(challenge(&pre), None, "{order:?}");
            assert_eq!(header_str(h, "access-control-allow-origin"), Some(APP));
            let allowed = header_str(h, "access-control-allow-headers").unwrap();
            for name in ["authorization", "dpop", "content-type"] {
                assert!(allowed.contains(name), "{order:?}: {allowed}");
            }
        } else {
            assert_eq!(pre.status(), StatusCode::UNAUTHORIZED, "{order:?}");
            assert!(challenge(&pre).unwrap().starts_with("DPoP"), "{order:?}");
            assert_eq!(header_str(h, "access-control-allow-origin"), None);
            assert_eq!(header_str(h, "access-control-allow-headers"), None);
        }

        // The nonce challenge: a browser client must read both headers to retry.
        let first = send(&app, cross_origin(&client, None)).await;
        assert_eq!(first.status(), StatusCode::UNAUTHORIZED, "{order:?}");
        assert!(challenge(&first).unwrap().contains("use_dpop_nonce"));
        let h = first.headers();
        let nonce = header_str(h, "dpop-nonce").unwrap().to_owned();
        if outside {
            assert_eq!(header_str(h, "access-control-allow-origin"), Some(APP));
            let exposed = header_str(h, "access-control-expose-headers").unwrap();
            assert!(
                exposed.contains("www-authenticate") && exposed.contains("dpop-nonce"),
                "{exposed}"
            );
            assert!(header_str(h, "vary").unwrap().contains("origin"));
        } else {
            assert_eq!(
                header_str(h, "access-control-allow-origin"),
                None,
                "{order:?}"
            );
            assert_eq!(header_str(h, "access-control-expose-headers"), None);
            assert_eq!(header_str(h, "vary"), None, "{order:?}");
        }

        // Accepted requests reach CORS either way.
        let retry = send(&app, cross_origin(&client, Some(&nonce))).await;
        assert_eq!(retry.status(), StatusCode::OK, "{order:?}");
        assert_eq!(
            header_str(retry.headers(), "access-control-allow-origin"),
            Some(APP),
            "{order:?}"
        );
    }
}

/// A replay store that can be switched off: then it cannot answer, and the layer gives 503.
#[derive(Debug, Default)]
struct SwitchableStore {
    down: AtomicBool,
    inner: MemoryReplayStore,
}

#[async_trait]
impl ReplayStore for SwitchableStore {
    async fn check_and_insert(&self, key: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ReplayError::Backend("switched off".into()));
        }
        self.inner.check_and_insert(key, ttl).await
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `status` of each "finished processing request" event `TraceLayer` logged.
fn traced_statuses(logs: &str) -> Vec<u16> {
    logs.lines()
        .filter(|line| line.contains("finished processing request"))
        .map(|line| {
            let (_, rest) = line.split_once("status=").expect("status field");
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// `TraceLayer` outside the DPoP layer logs every request with its status, refusals (401) and
/// backend failures (503) included; inside, it only sees the requests the layer accepted.
#[tokio::test]
async fn trace_outside_dpop_sees_rejections() {
    let issuer = TestIssuer::new();
    let client = Client::new(&issuer);
    for outside in [true, false] {
        let store = Arc::new(SwitchableStore::default());
        let dpop = builder(&issuer)
            .replay_store(store.clone())
            .build()
            .unwrap();
        let app = Router::new().route("/me", get(me));
        let app = if outside {
            app.route_layer(dpop).layer(TraceLayer::new_for_http())
        } else {
            app.layer(TraceLayer::new_for_http()).route_layer(dpop)
        };

        // Only tower-http's events: the DPoP layer logs its own outcomes under `tower_dpop`.
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("tower_http=debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // Current-thread test runtime and `oneshot`: every event is logged on this thread.
        let ok = send(&app, client.request(Method::GET, "/me")).await;
        let anonymous = send(&app, bare(Method::GET, "/me")).await;
        store.down.store(true, Ordering::SeqCst);
        let unavailable = send(&app, client.request(Method::GET, "/me")).await;
        drop(guard);

        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let started = logs.matches("started processing request").count();
        if outside {
            assert_eq!(traced_statuses(&logs), [200, 401, 503], "{logs}");
            assert_eq!(started, 3, "{logs}");
        } else {
            assert_eq!(traced_statuses(&logs), [200], "{logs}");
            assert_eq!(started, 1, "{logs}");
        }
    }
}

/// The full stack of `docs/layers.md`: every answer a browser gets from it, the DPoP layer's
/// refusals and a panicking handler's 500 included, carries CORS headers; unknown paths are 404.
#[tokio::test]
async fn recommended_stack() {
    let issuer = TestIssuer::new();
    let client = Client::new(&issuer);
    let app = Router::new()
        .route("/me", get(me))
        .route(
            "/boom",
            get(|_auth: DpopAuth| async move {
                if unix_now() > 0 {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route_layer(builder(&issuer).build().unwrap())
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(cors())
        .layer(TraceLayer::new_for_http());
    let with_origin = |mut req: Request<Body>| {
        req.headers_mut()
            .insert(header::ORIGIN, HeaderValue::from_static(APP));
        req
    };
    let allow_origin = |res: &Response| {
        header_str(res.headers(), "access-control-allow-origin").map(str::to_owned)
    };

    let pre = send(&app, preflight()).await;
    assert_eq!(pre.status(), StatusCode::OK);
    // Any OPTIONS request, preflight or not, is answered by `CorsLayer`.
    let options = send(&app, bare(Method::OPTIONS, "/me")).await;
    assert_eq!(options.status(), StatusCode::OK);
    assert_eq!(challenge(&options), None);

    let typo = send(&app, with_origin(bare(Method::GET, "/helth"))).await;
    assert_eq!(typo.status(), StatusCode::NOT_FOUND);
    assert_eq!(challenge(&typo), None);

    let refused = send(&app, with_origin(bare(Method::GET, "/me"))).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(allow_origin(&refused).as_deref(), Some(APP));

    let ok = send(&app, with_origin(client.request(Method::GET, "/me"))).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(allow_origin(&ok).as_deref(), Some(APP));

    let boom = send(&app, with_origin(client.request(Method::GET, "/boom"))).await;
    assert_eq!(boom.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(allow_origin(&boom).as_deref(), Some(APP));
}
