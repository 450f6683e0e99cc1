//! The protected API, on its own origin: `DpopLayer` with required server nonces, and
//! tower-http's `CorsLayer` around it so the page's origin can call it (the policy of
//! `docs/browsers.md` and `examples/browser_cors.rs`).

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_dpop::nonce::{NoncePolicy, NonceSecret};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::{DpopAuth, DpopLayer};
use tower_http::cors::CorsLayer;

/// The CORS policy a browser DPoP client needs, for the page at `app_origin`.
pub fn cors(app_origin: &str) -> Result<CorsLayer, Box<dyn std::error::Error>> {
    Ok(CorsLayer::new()
        .allow_origin(HeaderValue::from_str(app_origin)?)
        .allow_methods([Method::GET, Method::POST])
        // The access token, the proof, and JSON bodies.
        .allow_headers([
            header::AUTHORIZATION,
            HeaderName::from_static("dpop"),
            header::CONTENT_TYPE,
        ])
        // The challenge and the next nonce, readable by the page's script.
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("dpop-nonce"),
        ])
        .max_age(Duration::from_secs(600)))
}

/// The DPoP layer of the API at `api_origin`, trusting the tokens of `issuer` (key set at
/// `jwks_url`) minted for this API, and requiring a server nonce in every proof.
pub fn dpop_layer(
    api_origin: &str,
    issuer: &str,
    jwks_url: &str,
) -> Result<DpopLayer, Box<dyn std::error::Error>> {
    let validator = JwtValidator::builder()
        .jwks_url(jwks_url)
        // The stand-in authorization server listens on 127.0.0.1, over plain HTTP.
        .allow_insecure_http(true)
        .issuer(issuer)
        .audience(api_origin)
        .build()?;
    Ok(DpopLayer::builder()
        .public_origin(api_origin)
        .token_validator(validator)
        .nonce_policy(NoncePolicy::Required)
        // One instance here; a fleet shares one secret so each accepts the others' nonces.
        .nonce_secret(NonceSecret::random()?)
        .build()?)
}

/// `GET /api/me` and `POST /api/echo` behind `layer`, all of it behind `cors`.
pub fn router(layer: DpopLayer, cors: CorsLayer) -> Router {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/echo", post(echo))
        // Inner: checks DPoP on matched routes (unknown paths stay 404).
        .route_layer(layer)
        // Outer: answers preflights itself, and exposes headers on every response, DPoP's
        // 401s included.
        .layer(cors)
}

/// Who the verified token says the caller is, and the key it is bound to.
async fn me(auth: DpopAuth) -> Json<Value> {
    let claim = |name: &str| auth.claims.get(name).cloned().unwrap_or(Value::Null);
    Json(json!({
        "sub": claim("sub"),
        "client_id": claim("client_id"),
        "jkt": auth.jkt.to_string(),
    }))
}

/// The request body back, with its `Content-Type`.
async fn echo(_auth: DpopAuth, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let mut out = HeaderMap::new();
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        out.insert(header::CONTENT_TYPE, ct.clone());
    }
    (out, body)
}
