//! A DPoP-protected API that browser clients on another origin can call: the CORS setup.
//!
//! ```text
//! DPOP_JWKS_URL=https://as.example.com/jwks DPOP_ISSUER=https://as.example.com \
//!   DPOP_AUDIENCE=http://127.0.0.1:8080 cargo run --example browser_cors
//! ```
//!
//! Browsers only let a script read CORS-safelisted response headers unless the server exposes
//! others (RFC 9449 sections 7.1 and 8). A DPoP client must read two of them:
//!
//! - `WWW-Authenticate`, to learn why a request was refused (and the accepted `algs`);
//! - `DPoP-Nonce`, to learn the nonce it must put in its next proof.
//!
//! And it must be allowed to send two request headers: `Authorization` and `DPoP`.
//!
//! The `CorsLayer` goes **outside** the `DpopLayer`: a preflight `OPTIONS` request carries no
//! credentials, so it must be answered by CORS before DPoP would refuse it with 401, and the
//! `Access-Control-Expose-Headers` header must be added to DPoP's own 401 responses too.
//! `docs/layers.md` explains the order of layers and each part of this policy;
//! `cargo run --example spa` runs the same policy with a page calling the API from a browser
//! (`docs/browsers.md`).

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::get;
use axum::Router;
use tower_dpop::nonce::NoncePolicy;
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::{DpopAuth, DpopLayer};
use tower_http::cors::CorsLayer;

/// The CORS policy a browser DPoP client needs, for the web app at `app_origin`.
fn cors(app_origin: &str) -> Result<CorsLayer, Box<dyn std::error::Error>> {
    Ok(CorsLayer::new()
        .allow_origin(HeaderValue::from_str(app_origin)?)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        // The access token and the proof.
        .allow_headers([
            header::AUTHORIZATION,
            HeaderName::from_static("dpop"),
            header::CONTENT_TYPE,
        ])
        // The challenge and the next nonce, readable by the script.
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("dpop-nonce"),
        ])
        .max_age(Duration::from_secs(600)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let jwks_url = std::env::var("DPOP_JWKS_URL").map_err(|_| "set DPOP_JWKS_URL")?;
    let issuer = std::env::var("DPOP_ISSUER").map_err(|_| "set DPOP_ISSUER")?;
    let audience = std::env::var("DPOP_AUDIENCE").map_err(|_| "set DPOP_AUDIENCE")?;
    let app_origin = std::env::var("APP_ORIGIN").unwrap_or_else(|_| "http://localhost:5173".into());

    let layer = DpopLayer::builder()
        .public_origin("http://127.0.0.1:8080")
        .token_validator(
            JwtValidator::builder()
                .jwks_url(jwks_url)
                .issuer(issuer)
                .audience(audience)
                .build()?,
        )
        .nonce_policy(NoncePolicy::Required)
        .build()?;

    let app = Router::new()
        .route(
            "/api/me",
            get(|auth: DpopAuth| async move { auth.jkt.to_string() }),
        )
        .route_layer(layer) // inner: checks DPoP on matched routes (unknown paths stay 404)
        .layer(cors(&app_origin)?); // outer: answers preflights, exposes headers on every response

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("listening on http://127.0.0.1:8080 (CORS for {app_origin})");
    axum::serve(listener, app).await?;
    Ok(())
}
