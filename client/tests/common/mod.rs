//! A stand-in authorization server (a token endpoint that requires its own DPoP nonce and
//! binds tokens to the proof's key, and a JWKS) and a resource server behind the crate's own
//! `DpopLayer`, both on 127.0.0.1.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower_dpop::nonce::NoncePolicy;
use tower_dpop::testing::{jwk_thumbprint, TestIssuer};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::{DpopAuth, DpopLayer};
use tower_dpop_client::clock::{Clock as _, ManualClock};

/// The start of test time.
pub const T0: u64 = 1_900_000_000;
pub const CLIENT_ID: &str = "svc client:1";
pub const CLIENT_SECRET: &str = "s3cr+t/=é";

/// The client's `ManualClock` as the server's clock: one time for both sides.
#[derive(Debug, Clone)]
pub struct ServerClock(pub ManualClock);

impl tower_dpop::clock::Clock for ServerClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.unix_seconds())
    }
}

/// What the token endpoint saw and decided.
#[derive(Debug, Default)]
pub struct AsLog {
    /// Every request: (grant_type or "", the proof's key thumbprint or "", the answer's status).
    pub requests: Vec<(String, String, u16)>,
    /// The current nonce.
    pub nonce: String,
    pub nonce_counter: u32,
    /// Refresh token -> the thumbprint it is bound to.
    pub refresh_tokens: HashMap<String, String>,
    pub seen_jtis: HashSet<String>,
    /// `expires_in` of the next tokens.
    pub expires_in: u64,
    /// Issue this `token_type` instead of `DPoP`.
    pub token_type: Option<String>,
    /// Answer every request `use_dpop_nonce` with a new nonce.
    pub always_new_nonce: bool,
}

struct AsState {
    issuer: Arc<TestIssuer>,
    clock: ManualClock,
    endpoint: String,
    log: Arc<Mutex<AsLog>>,
}

pub struct AuthServer {
    pub issuer: Arc<TestIssuer>,
    pub token_endpoint: String,
    pub jwks_url: String,
    pub log: Arc<Mutex<AsLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AuthServer {
    pub async fn start(clock: &ManualClock) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = Arc::new(TestIssuer::with_issuer(&base));
        let log = Arc::new(Mutex::new(AsLog {
            nonce: "as-nonce-0".into(),
            expires_in: 300,
            ..AsLog::default()
        }));
        let state = Arc::new(AsState {
            issuer: issuer.clone(),
            clock: clock.clone(),
            endpoint: format!("{base}/token"),
            log: log.clone(),
        });
        let jwks = issuer.jwks_json();
        let app = Router::new()
            .route("/token", post(token))
            .route(
                "/jwks",
                get(move || async move { ([("content-type", "application/json")], jwks) }),
            )
            .with_state(state);
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            issuer,
            token_endpoint: format!("{base}/token"),
            jwks_url: format!("{base}/jwks"),
            log,
            task,
        }
    }

    /// Makes the endpoint's current nonce stale: the next request must learn a new one.
    pub fn rotate_nonce(&self) {
        let mut log = self.log.lock().unwrap();
        log.nonce_counter += 1;
        log.nonce = format!("as-nonce-{}", log.nonce_counter);
    }

    /// Every request: (grant_type, the proof key's thumbprint, the answer's status).
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.log.lock().unwrap().requests.clone()
    }

    pub fn grants(&self) -> Vec<(String, u16)> {
        let log = self.log.lock().unwrap();
        log.requests
            .iter()
            .map(|(g, _, s)| (g.clone(), *s))
            .collect()
    }
}

fn oauth_error(status: StatusCode, code: &str, nonce: Option<&str>) -> Response {
    let mut response = (status, Json(json!({ "error": code }))).into_response();
    if let Some(n) = nonce {
        response
            .headers_mut()
            .insert("dpop-nonce", n.parse().unwrap());
    }
    response
}

/// Verifies a DPoP proof for `POST endpoint` with josekit (an implementation independent of
/// both halves of this repository); the key's thumbprint and the claims.
fn verify_proof(proof: &str, endpoint: &str) -> Result<(String, Value), &'static str> {
    use josekit::jws;
    let mut parts = proof.split('.');
    let (h, c, s) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(c), Some(s), None) => (h, c, s),
        _ => return Err("not a compact JWS"),
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| "b64")?)
        .map_err(|_| "header json")?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).map_err(|_| "b64")?)
        .map_err(|_| "claims json")?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| "b64")?;
    if header["typ"] != "dpop+jwt" {
        return Err("typ");
    }
    let jwk_json = header["jwk"].to_string();
    let jwk = josekit::jwk::Jwk::from_bytes(jwk_json.as_bytes()).map_err(|_| "jwk")?;
    let message = format!("{h}.{c}");
    let ok = match header["alg"].as_str() {
        Some("ES256") => jws::ES256
            .verifier_from_jwk(&jwk)
            .map(|v| v.verify(message.as_bytes(), &signature).is_ok()),
        Some("ES384") => jws::ES384
            .verifier_from_jwk(&jwk)
            .map(|v| v.verify(message.as_bytes(), &signature).is_ok()),
        Some("EdDSA") => jws::EdDSA
            .verifier_from_jwk(&jwk)
            .map(|v| v.verify(message.as_bytes(), &signature).is_ok()),
        Some("PS256") => jws::PS256
            .verifier_from_jwk(&jwk)
            .map(|v| v.verify(message.as_bytes(), &signature).is_ok()),
        Some("RS256") => jws::RS256
            .verifier_from_jwk(&jwk)
            .map(|v| v.verify(message.as_bytes(), &signature).is_ok()),
        _ => return Err("alg"),
    };
    if !ok.map_err(|_| "key")? {
        return Err("signature");
    }
    if claims["htm"] != "POST" || claims["htu"] != endpoint || claims.get("ath").is_some() {
        return Err("htm/htu/ath");
    }
    let jkt = jwk_thumbprint(&jwk_json).ok_or("thumbprint")?;
    Ok((jkt, claims))
}

/// client_secret_basic, decoded as RFC 6749 section 2.3.1 says.
fn client_authenticated(headers: &HeaderMap) -> bool {
    let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(basic) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((id, secret)) = decoded.split_once(':') else {
        return false;
    };
    let undo = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    undo(id) == CLIENT_ID && undo(secret) == CLIENT_SECRET
}

async fn token(State(state): State<Arc<AsState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    let proof = headers.get("dpop").and_then(|v| v.to_str().ok());
    let verified = proof.map(|p| verify_proof(p, &state.endpoint));
    let jkt = match &verified {
        Some(Ok((jkt, _))) => jkt.clone(),
        _ => String::new(),
    };
    let response = answer(&state, &headers, &form, &grant, verified);
    let status = response.status().as_u16();
    state
        .log
        .lock()
        .unwrap()
        .requests
        .push((grant, jkt, status));
    response
}

fn answer(
    state: &AsState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    grant: &str,
    verified: Option<Result<(String, Value), &'static str>>,
) -> Response {
    let mut log = state.log.lock().unwrap();
    if log.always_new_nonce {
        log.nonce_counter += 1;
        log.nonce = format!("as-nonce-{}", log.nonce_counter);
    }
    let nonce = log.nonce.clone();
    if !client_authenticated(headers) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", None);
    }
    let (jkt, claims) = match verified {
        Some(Ok(v)) => v,
        _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", None),
    };
    let now = state.clock.unix_seconds();
    let iat = claims["iat"].as_u64().unwrap_or(0);
    if iat + 60 < now || iat > now + 5 {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", None);
    }
    if claims["nonce"] != nonce.as_str() {
        return oauth_error(StatusCode::BAD_REQUEST, "use_dpop_nonce", Some(&nonce));
    }
    let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
    if !log.seen_jtis.insert(jti) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", None);
    }
    match grant {
        "client_credentials" => {}
        "refresh_token" => {
            let given = form.get("refresh_token").cloned().unwrap_or_default();
            match log.refresh_tokens.remove(&given) {
                Some(bound) if bound == jkt => {}
                _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", None),
            }
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", None),
    }
    let expires_in = log.expires_in;
    let access_token = state.issuer.token_for(&jkt, now + expires_in);
    let refresh_token = tower_dpop::testing::random_id(16);
    log.refresh_tokens.insert(refresh_token.clone(), jkt);
    let token_type = log.token_type.clone().unwrap_or_else(|| "DPoP".into());
    Json(json!({
        "access_token": access_token,
        "token_type": token_type,
        "expires_in": expires_in,
        "refresh_token": refresh_token,
    }))
    .into_response()
}

/// A resource server behind `DpopLayer`: `GET|POST /api/me` answers `hello <sub>: <body>`.
pub struct ResourceServer {
    pub base: String,
    /// Requests that reached the server (before the layer).
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn me(auth: DpopAuth, body: String) -> String {
    format!(
        "hello {}: {body}",
        auth.claims["sub"].as_str().unwrap_or("?")
    )
}

impl ResourceServer {
    pub async fn start(auth: &AuthServer, clock: &ManualClock, policy: NoncePolicy) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let validator = JwtValidator::builder()
            .jwks_url(&auth.jwks_url)
            .allow_insecure_http(true)
            .issuer(auth.issuer.issuer())
            .audience(auth.issuer.audience())
            .build()
            .unwrap();
        let layer = DpopLayer::builder()
            .public_origin(&base)
            .token_validator(validator)
            .algorithms(tower_dpop::Algorithm::ALL.iter().copied())
            .clock(ServerClock(clock.clone()))
            .nonce_policy(policy)
            .build()
            .unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = Router::new()
            .route("/api/me", get(me).post(me))
            .route_layer(layer)
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    next.run(request)
                },
            ));
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, hits, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// hyper-util's client, the Tower service the layer wraps.
pub fn hyper_client<B>() -> Client<HttpConnector, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn full(body: &str) -> Full<Bytes> {
    Full::new(Bytes::from(body.to_owned()))
}

/// The claims of a compact JWS, unverified.
pub fn claims_of(proof: &str) -> Value {
    let c = proof.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap()
}

/// The header of a compact JWS, unverified.
pub fn header_of(proof: &str) -> Value {
    let h = proof.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

/// Reads a response body to a string.
pub async fn text<B>(body: B) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    use http_body_util::BodyExt as _;
    String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
}
