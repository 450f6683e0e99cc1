//! A real API server (behind `DpopLayer`) and a real JWKS server on 127.0.0.1, for tests that
//! go over HTTP with reqwest; and the pieces for tests that build their own app instead
//! (`listen`, `builder_for`, `spawn_app`).

#![allow(dead_code)]
// Without `jwks-fetch` only `TestServer`'s methods drop out (below); what they alone use is unused.
#![cfg_attr(not(feature = "jwks-fetch"), allow(unused_imports))]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::{DpopAuth, DpopLayer, DpopLayerBuilder};

/// The audience the validator requires (the one `TestIssuer::token_for` writes).
pub const AUDIENCE: &str = "https://api.example.com";

/// The `algs` of the default challenge.
pub const DEFAULT_ALGS: &str = "ES256 PS256 RS256 EdDSA Ed25519";

/// Where the validator fetches its keys.
pub enum Jwks {
    /// The test's own JWKS server.
    Served,
    /// A URL nothing listens on.
    Dead,
}

pub struct TestServer {
    pub issuer: Arc<TestIssuer>,
    /// How many times `GET /jwks` was served.
    pub jwks_hits: Arc<AtomicUsize>,
    pub jwks_url: String,
    addr: SocketAddr,
    client: reqwest::Client,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn me(auth: DpopAuth) -> Json<Value> {
    Json(json!({
        "sub": auth.claims["sub"],
        "jkt": auth.jkt.to_string(),
        "client_id": auth.claims["client_id"],
    }))
}

async fn echo(_auth: DpopAuth, body: String) -> String {
    body
}

/// A listener on a free port of 127.0.0.1, and its origin `http://127.0.0.1:<port>`.
pub async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, origin)
}

/// A layer builder whose public origin is `origin` and whose JWT validator trusts `issuer`'s
/// key set, given inline (no JWKS server), with its issuer and audience
/// ([`TestIssuer::validator`]). Callers add their own settings and `build()`.
pub fn builder_for(origin: &str, issuer: &TestIssuer) -> DpopLayerBuilder {
    let validator = issuer.validator();
    DpopLayer::builder()
        .public_origin(origin)
        .token_validator(validator)
}

/// Serves `app` on `listener` in a background task; abort the handle to stop it.
pub fn spawn_app(listener: TcpListener, app: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server runs");
    })
}

/// [`spawn_app`], with the TCP peer's address as `ConnectInfo<SocketAddr>` (what
/// `trusted_proxy` checks).
pub fn spawn_app_with_connect_info(listener: TcpListener, app: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server runs");
    })
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

// `TestServer` fetches its keys over HTTP, so it needs `jwks-fetch`; the helpers above do not,
// and the test binaries that use only them still build without default features.
#[cfg(feature = "jwks-fetch")]
impl TestServer {
    /// Default layer, JWKS served.
    pub async fn start() -> Self {
        Self::start_with(Jwks::Served, |b| b).await
    }

    /// Default JWKS server, layer builder customized by `f`.
    pub async fn with_layer(f: impl FnOnce(DpopLayerBuilder) -> DpopLayerBuilder) -> Self {
        Self::start_with(Jwks::Served, f).await
    }

    pub async fn start_with(
        jwks: Jwks,
        f: impl FnOnce(DpopLayerBuilder) -> DpopLayerBuilder,
    ) -> Self {
        let issuer = Arc::new(TestIssuer::new());
        let jwks_hits = Arc::new(AtomicUsize::new(0));

        // (1) The JWKS server.
        let jwks_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind jwks");
        let jwks_port = jwks_listener.local_addr().expect("addr").port();
        let (hits, doc) = (jwks_hits.clone(), issuer.jwks_json());
        let jwks_app = Router::new().route(
            "/jwks",
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                let doc = doc.clone();
                async move { ([("content-type", "application/json")], doc) }
            }),
        );
        let jwks_task = spawn_app(jwks_listener, jwks_app);
        let jwks_url = match jwks {
            Jwks::Served => format!("http://127.0.0.1:{jwks_port}/jwks"),
            Jwks::Dead => format!("http://127.0.0.1:{}/jwks", closed_port().await),
        };

        // (2) The API server; its origin must be known before the layer is built.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind api");
        let addr = listener.local_addr().expect("addr");
        let validator = JwtValidator::builder()
            .jwks_url(jwks_url.clone())
            .allow_insecure_http(true)
            .jwks_timeout(Duration::from_secs(2))
            .issuer(issuer.issuer())
            .audience(AUDIENCE)
            .build()
            .expect("validator config");
        let builder = DpopLayer::builder()
            .public_origin(format!("http://{addr}"))
            .token_validator(validator);
        let layer = f(builder).build().expect("layer config");
        let protected = Router::new()
            .route("/me", get(me))
            .route("/echo", post(echo))
            .layer(layer);
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/unprotected/me", get(me))
            .nest("/api", protected);
        let api_task = spawn_app(listener, app);

        Self {
            issuer,
            jwks_hits,
            jwks_url,
            addr,
            client: reqwest::Client::new(),
            tasks: vec![jwks_task, api_task],
        }
    }

    /// `http://127.0.0.1:<port>`, the public origin.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    /// A token bound to `key`, valid for an hour.
    pub fn token(&self, key: &ClientKey) -> String {
        self.issuer.token_for(key.jkt(), unix_now() + 3600)
    }

    /// A fresh proof for `method` on `path` (the htu is the public origin + path).
    pub fn proof(&self, key: &ClientKey, token: &str, method: &str, path: &str) -> String {
        key.proof(method, &self.url(path))
            .access_token(token)
            .sign()
    }

    /// A request carrying `Authorization: DPoP <token>` and this proof.
    pub fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        proof: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
    }

    /// `GET path` with a fresh, valid proof.
    pub fn dpop_get(&self, key: &ClientKey, token: &str, path: &str) -> reqwest::RequestBuilder {
        let proof = self.proof(key, token, "GET", path);
        self.send_with(reqwest::Method::GET, path, token, &proof)
    }

    /// `POST path` with a fresh, valid proof.
    pub fn dpop_post(&self, key: &ClientKey, token: &str, path: &str) -> reqwest::RequestBuilder {
        let proof = self.proof(key, token, "POST", path);
        self.send_with(reqwest::Method::POST, path, token, &proof)
    }
}

/// What a rejection carried.
#[derive(Debug)]
pub struct Rejection {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub cache_control: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Rejection {
    pub async fn read(resp: reqwest::Response) -> Self {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().expect("ASCII header").to_owned())
        };
        let (www_authenticate, cache_control, content_type) = (
            header("www-authenticate"),
            header("cache-control"),
            header("content-type"),
        );
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            www_authenticate,
            cache_control,
            content_type,
            body,
        }
    }

    /// The challenge's `error` parameter.
    pub fn error(&self) -> Option<&str> {
        let c = self.www_authenticate.as_deref()?;
        let rest = &c[c.find("error=\"")? + 7..];
        Some(&rest[..rest.find('"')?])
    }

    /// The challenge's `error_description` parameter.
    pub fn description(&self) -> Option<&str> {
        let c = self.www_authenticate.as_deref()?;
        let rest = &c[c.find("error_description=\"")? + 19..];
        Some(&rest[..rest.find('"')?])
    }

    /// Asserts a 401/400 with this `error` code, consistent between header and body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.error(), Some(code), "{self:?}");
        assert_eq!(self.body["error"], code, "{self:?}");
        assert!(
            self.www_authenticate
                .as_deref()
                .is_some_and(|c| c.starts_with("DPoP ")),
            "{self:?}"
        );
        assert_eq!(self.cache_control.as_deref(), Some("no-store"), "{self:?}");
    }
}
