//! The CORS setup of `examples/browser_cors.rs`, checked through a real server: preflights pass
//! without credentials, and DPoP's 401 exposes `WWW-Authenticate` and `DPoP-Nonce`.
#![cfg(feature = "axum")]

use crate::common::{builder_for, listen, spawn_app};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::get;
use axum::Router;
use tower_dpop::nonce::NoncePolicy;
use tower_dpop::testing::{ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth};
use tower_http::cors::CorsLayer;

const APP: &str = "http://app.example.com";

#[tokio::test]
async fn browser_client_can_preflight_and_read_dpop_headers() {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer)
        .nonce_policy(NoncePolicy::Required)
        .build()
        .unwrap();
    let cors = CorsLayer::new()
        .allow_origin(HeaderValue::from_static(APP))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, HeaderName::from_static("dpop")])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("dpop-nonce"),
        ]);
    let app = Router::new()
        .route(
            "/api/me",
            get(|auth: DpopAuth| async move { auth.jkt.to_string() }),
        )
        .layer(layer)
        .layer(cors);
    let server = spawn_app(listener, app);
    let client = reqwest::Client::new();
    let url = format!("{origin}/api/me");

    // The preflight carries no credentials and is answered by CORS, not refused by DPoP.
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", APP)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization, dpop")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert_eq!(preflight.headers()["access-control-allow-origin"], APP);
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        allowed.contains("authorization") && allowed.contains("dpop"),
        "{allowed}"
    );

    // DPoP's own 401 is readable by the script: challenge and nonce are exposed.
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), tower_dpop::testing::unix_now() + 3600);
    let first = client
        .get(&url)
        .header("origin", APP)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", key.proof("GET", &url).access_token(&token).sign())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 401);
    let exposed = first.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("dpop-nonce"),
        "{exposed}"
    );
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let retry = client
        .get(&url)
        .header("origin", APP)
        .header("authorization", format!("DPoP {token}"))
        .header(
            "dpop",
            key.proof("GET", &url)
                .access_token(&token)
                .nonce(&nonce)
                .sign(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["access-control-allow-origin"], APP);
    server.abort();
}
