//! The authorization server stand-in: mints tokens with its current signing key and serves
//! its JWKS over HTTP on 127.0.0.1. The key rotates (a new `kid` is published first, signs
//! later, and the old one is withdrawn after the tokens it signed are no longer used), and the
//! endpoint can be made to fail (500) or hang.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tower_dpop::testing::TestIssuer;

pub const ISSUER: &str = "https://as.soak.test";

/// How the JWKS endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksMode {
    Serve = 0,
    Fail = 1,
    Hang = 2,
}

struct Keys {
    /// Signs new tokens.
    signing: Arc<TestIssuer>,
    /// Published in the JWKS, the signing key among them.
    published: Vec<Arc<TestIssuer>>,
}

pub struct AuthServer {
    keys: RwLock<Keys>,
    mode: AtomicU8,
    /// How many JWKS requests were answered with keys.
    pub fetches: AtomicU64,
    pub addr: SocketAddr,
}

impl AuthServer {
    /// Serves the JWKS on `runtime`.
    pub fn start(runtime: &tokio::runtime::Handle) -> Result<Arc<Self>, String> {
        let first = Arc::new(TestIssuer::with_issuer(ISSUER));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let server = Arc::new(Self {
            keys: RwLock::new(Keys {
                signing: first.clone(),
                published: vec![first],
            }),
            mode: AtomicU8::new(JwksMode::Serve as u8),
            fetches: AtomicU64::new(0),
            addr,
        });
        let app = Router::new()
            .route("/jwks", get(jwks))
            .with_state(server.clone());
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            let _ = axum::serve(listener, app).await;
        });
        Ok(server)
    }

    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    pub fn audience(&self) -> &'static str {
        self.signing().audience()
    }

    pub fn signing(&self) -> Arc<TestIssuer> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .signing
            .clone()
    }

    /// Publishes a new key (it does not sign yet).
    pub fn publish_new_key(&self) -> Arc<TestIssuer> {
        let next = Arc::new(TestIssuer::with_issuer(ISSUER));
        self.write().published.push(next.clone());
        next
    }

    /// Signs with `key` from now on (it must be published).
    pub fn sign_with(&self, key: &Arc<TestIssuer>) {
        self.write().signing = key.clone();
    }

    /// Withdraws every published key but the signing one.
    pub fn withdraw_old_keys(&self) {
        let mut keys = self.write();
        let signing = keys.signing.clone();
        keys.published.retain(|k| Arc::ptr_eq(k, &signing));
    }

    pub fn set_mode(&self, mode: JwksMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn jwks_json(&self) -> String {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = Vec::new();
        for k in &keys.published {
            if let Ok(Value::Object(mut doc)) = serde_json::from_str::<Value>(&k.jwks_json()) {
                if let Some(Value::Array(list)) = doc.remove("keys") {
                    all.extend(list);
                }
            }
        }
        serde_json::json!({ "keys": all }).to_string()
    }
}

async fn jwks(State(server): State<Arc<AuthServer>>) -> Response {
    match server.mode.load(Ordering::SeqCst) {
        1 => (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response(),
        2 => {
            // Longer than any fetch timeout: the client gives up first.
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::INTERNAL_SERVER_ERROR, "hung").into_response()
        }
        _ => {
            server.fetches.fetch_add(1, Ordering::Relaxed);
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                server.jwks_json(),
            )
                .into_response()
        }
    }
}
