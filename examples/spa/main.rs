//! A single-page app calling a DPoP-protected API from the browser: `cargo run --example spa`,
//! then open the URL it prints.
//!
//! Two origins on ephemeral ports of 127.0.0.1:
//!
//! - the **app origin**: the page (`index.html`, `app.js`, `dpop.js`, `style.css`, embedded in
//!   this binary) and the authorization-server stand-in (`GET /jwks`, `POST /token`, see
//!   `auth_server.rs`); the token request is same-origin;
//! - the **API origin**: `GET /api/me` and `POST /api/echo` behind `DpopLayer` with required
//!   nonces, behind tower-http's `CorsLayer` allowing the app origin (`api.rs`).
//!
//! The page makes a non-extractable ES256 key with WebCrypto and keeps it in IndexedDB, gets a
//! token bound to it, calls the API with a fresh proof each time (answering `use_dpop_nonce`
//! by one retry, keeping the newest `DPoP-Nonce`), and shows that a replayed proof and a
//! stolen token are refused. Each step's status and challenge is shown on the page and kept
//! in `window.dpopResults`, which `tests/browser/run.mjs` reads in headless Chromium. Nothing
//! is loaded from anywhere else: the page's Content-Security-Policy allows only these two
//! origins. `docs/browsers.md` explains the setup.

mod api;
mod auth_server;

use std::future::IntoFuture as _;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const DPOP_JS: &str = include_str!("dpop.js");
const STYLE_CSS: &str = include_str!("style.css");

/// Binds an ephemeral port of 127.0.0.1; returns the listener and its `http://` origin.
async fn bind() -> std::io::Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    Ok((listener, origin))
}

/// The page and its configuration, with a Content-Security-Policy that lets it load scripts
/// and styles from its own origin only and talk to its own origin and the API's only.
fn page_router(api_origin: &str) -> Router {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self' {api_origin}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    let config = json!({ "api": api_origin, "token_endpoint": "/token" });
    let asset = |content_type: &'static str, body: &'static str| {
        move || async move { ([(header::CONTENT_TYPE, content_type)], body) }
    };
    Router::new()
        .route(
            "/",
            get(move || async move {
                ([(header::CONTENT_SECURITY_POLICY, csp)], Html(INDEX_HTML)).into_response()
            }),
        )
        .route("/app.js", get(asset("text/javascript", APP_JS)))
        .route("/dpop.js", get(asset("text/javascript", DPOP_JS)))
        .route("/style.css", get(asset("text/css", STYLE_CSS)))
        .route("/config.json", get(move || async move { Json(config) }))
        // No icon: answered so the browser's request for one is not a 404.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (app_listener, app_origin) = bind().await?;
    let (api_listener, api_origin) = bind().await?;

    let auth = auth_server::AuthServer::new(&app_origin, &api_origin);
    let app = page_router(&api_origin).merge(auth.router());

    let layer = api::dpop_layer(&api_origin, auth.issuer(), &format!("{app_origin}/jwks"))?;
    let api = api::router(layer, api::cors(&app_origin)?);

    println!("authorization server  {app_origin}/token (JWKS {app_origin}/jwks)");
    println!("protected API         {api_origin}/api/me, {api_origin}/api/echo (nonces required, CORS for {app_origin})");
    println!("open {app_origin}/ in a browser (Ctrl-C stops)");

    let app_server = axum::serve(app_listener, app).into_future();
    let api_server = axum::serve(api_listener, api).into_future();
    tokio::select! {
        r = app_server => r?,
        r = api_server => r?,
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}
