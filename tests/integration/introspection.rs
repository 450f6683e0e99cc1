//! The RFC 7662 introspection validator against an introspection endpoint served on
//! 127.0.0.1, through `DpopLayer::verify` and through a real HTTP server.
#![cfg(all(feature = "axum", feature = "introspection"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use tower_dpop::testing::{unix_now, ClientKey};
use tower_dpop::token::introspection::IntrospectionValidator;
use tower_dpop::{Algorithm, DpopAuth, DpopLayer, Error, ErrorKind};

const CLIENT_ID: &str = "rs:api";
const CLIENT_SECRET: &str = "p@ss word+/=";
/// A token with characters that must be percent-encoded in the form body.
const BOUND: &str = "bound+token/with~specials==";
const INACTIVE: &str = "inactive-token";
const UNBOUND: &str = "unbound-token";
/// Active, bound, but issued for another API (or by another issuer).
const OTHER_AUDIENCE: &str = "other-audience-token";
const OTHER_ISSUER: &str = "other-issuer-token";
const ISSUER: &str = "https://as.example.com";
const AUDIENCE: &str = "https://api.example.com";

struct As {
    jkt: String,
    calls: AtomicUsize,
}

fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

async fn introspect(State(state): State<Arc<As>>, headers: HeaderMap, body: String) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    // RFC 6749 section 2.3.1: each part form-urlencoded, then Basic.
    let expected = format!("Basic {}", STANDARD.encode("rs%3Aapi:p%40ss+word%2B%2F%3D"));
    if headers.get("authorization").map(|v| v.to_str().unwrap()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic")],
            r#"{"error":"invalid_client"}"#,
        )
            .into_response();
    }
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(headers.get("accept").unwrap(), "application/json");
    let mut token = None;
    let mut hint = None;
    for pair in body.split('&') {
        let (k, v) = pair.split_once('=').unwrap();
        match k {
            "token" => token = Some(form_decode(v)),
            "token_type_hint" => hint = Some(form_decode(v)),
            other => panic!("unexpected form field {other}"),
        }
    }
    assert_eq!(hint.as_deref(), Some("access_token"));
    let exp = unix_now() + 3600;
    let answer = match token.unwrap().as_str() {
        BOUND => json!({
            "active": true, "sub": "alice", "client_id": "demo-client", "iss": ISSUER,
            "aud": [AUDIENCE, "https://other-api.example.com"], "exp": exp, "cnf": { "jkt": state.jkt }
        }),
        UNBOUND => {
            json!({ "active": true, "sub": "bob", "iss": ISSUER, "aud": AUDIENCE, "exp": exp })
        }
        OTHER_AUDIENCE => json!({
            "active": true, "sub": "alice", "iss": ISSUER, "aud": "https://other-api.example.com",
            "exp": exp, "cnf": { "jkt": state.jkt }
        }),
        OTHER_ISSUER => json!({
            "active": true, "sub": "alice", "iss": "https://elsewhere.example.com", "aud": AUDIENCE,
            "exp": exp, "cnf": { "jkt": state.jkt }
        }),
        _ => json!({ "active": false }),
    };
    axum::Json(answer).into_response()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// An authorization server whose endpoint knows the three tokens of this file.
async fn authorization_server(jkt: &str) -> (String, Arc<As>) {
    let state = Arc::new(As {
        jkt: jkt.to_owned(),
        calls: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/introspect", post(introspect))
        .with_state(state.clone());
    (format!("{}/introspect", serve(app).await), state)
}

fn layer(endpoint: &str, secret: &str) -> DpopLayer {
    let validator = IntrospectionValidator::builder(endpoint)
        .client_credentials(CLIENT_ID, secret)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .allow_insecure_http(true)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    DpopLayer::builder()
        .public_origin("https://api.example.com")
        .token_validator(validator)
        .build()
        .unwrap()
}

fn headers(client: &ClientKey, token: &str) -> HeaderMap {
    let proof = client
        .proof("GET", "https://api.example.com/api/me")
        .access_token(token)
        .sign();
    let mut h = HeaderMap::new();
    h.insert("authorization", format!("DPoP {token}").parse().unwrap());
    h.insert("dpop", proof.parse().unwrap());
    h
}

async fn verify(layer: &DpopLayer, client: &ClientKey, token: &str) -> Result<(), Error> {
    layer
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/api/me",
            &headers(client, token),
        ))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn active_bound_token_is_accepted_and_cached() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, state) = authorization_server(client.jkt()).await;
    let layer = layer(&endpoint, CLIENT_SECRET);
    for _ in 0..3 {
        let verified = layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/api/me",
                &headers(&client, BOUND),
            ))
            .await
            .unwrap();
        let _ = verified;
    }
    assert_eq!(state.calls.load(Ordering::SeqCst), 1, "the layer caches");
}

#[tokio::test]
async fn bound_token_with_another_key_is_rejected() {
    let client = ClientKey::generate(Algorithm::ES256);
    let thief = ClientKey::generate(Algorithm::ES256);
    let (endpoint, _) = authorization_server(client.jkt()).await;
    let err = verify(&layer(&endpoint, CLIENT_SECRET), &thief, BOUND)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenKeyMismatch, "{err:?}");
}

#[tokio::test]
async fn inactive_token_is_invalid() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, _) = authorization_server(client.jkt()).await;
    let err = verify(&layer(&endpoint, CLIENT_SECRET), &client, INACTIVE)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenInvalid, "{err:?}");
    assert!(err.description().contains("not active"), "{err}");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn active_unbound_token_is_invalid() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, _) = authorization_server(client.jkt()).await;
    let err = verify(&layer(&endpoint, CLIENT_SECRET), &client, UNBOUND)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenNotBound, "{err:?}");
}

#[tokio::test]
async fn wrong_client_secret_fails_closed() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, state) = authorization_server(client.jkt()).await;
    let err = verify(&layer(&endpoint, "wrong"), &client, BOUND)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(state.calls.load(Ordering::SeqCst), 1);
}

async fn assert_unavailable(endpoint: &str) {
    let client = ClientKey::generate(Algorithm::ES256);
    let err = verify(&layer(endpoint, CLIENT_SECRET), &client, BOUND)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{endpoint}: {err:?}");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn broken_endpoints_fail_closed() {
    let app = Router::new()
        .route(
            "/500",
            post(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(json!({"active": true})),
                )
            }),
        )
        .route("/html", post(|| async { "<html>active</html>" }))
        .route(
            "/array",
            post(|| async { axum::Json(json!([{"active": true}])) }),
        )
        .route(
            "/huge",
            post(|| async {
                let pad = "x".repeat(70 * 1024);
                axum::Json(json!({"active": true, "pad": pad}))
            }),
        )
        .route(
            "/redirect",
            post(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/500")]) }),
        )
        .route(
            "/hang",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                axum::Json(json!({"active": true}))
            }),
        );
    let base = serve(app).await;
    for path in ["/500", "/html", "/array", "/huge", "/redirect", "/missing"] {
        assert_unavailable(&format!("{base}{path}")).await;
    }
    let started = std::time::Instant::now();
    assert_unavailable(&format!("{base}/hang")).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timeout applies"
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    assert_unavailable(&format!("http://{addr}/introspect")).await;
}

#[tokio::test]
async fn debug_does_not_show_the_secret() {
    let v = IntrospectionValidator::builder("http://127.0.0.1:1/introspect")
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .any_issuer()
        .any_audience()
        .allow_insecure_http(true)
        .build()
        .unwrap();
    let dbg = format!("{v:?}");
    assert!(dbg.contains(CLIENT_ID), "{dbg}");
    assert!(
        !dbg.contains(CLIENT_SECRET) && !dbg.contains("p%40ss"),
        "{dbg}"
    );
}

#[tokio::test]
async fn over_real_http() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, state) = authorization_server(client.jkt()).await;
    let app = Router::new()
        .route(
            "/api/me",
            get(|auth: DpopAuth| async move {
                axum::Json(json!({ "sub": auth.claims["sub"], "jkt": auth.jkt.to_string() }))
            }),
        )
        .layer(layer(&endpoint, CLIENT_SECRET));
    let base = serve(app).await;
    let http = reqwest::Client::new();
    let send = |token: &'static str| {
        let h = headers(&client, token);
        http.get(format!("{base}/api/me"))
            .header("host", "api.example.com")
            .headers(h)
            .send()
    };
    let resp = send(BOUND).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "sub": "alice", "jkt": client.jkt() }));

    let resp = send(INACTIVE).await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(state.calls.load(Ordering::SeqCst), 2);
}

/// An active token is accepted only if the introspection response names this resource server
/// in `aud` and a configured issuer in `iss`.
#[tokio::test]
async fn active_tokens_for_another_audience_or_issuer_are_refused() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, _state) = authorization_server(client.jkt()).await;
    let layer = layer(&endpoint, CLIENT_SECRET);
    assert_eq!(verify(&layer, &client, BOUND).await, Ok(()));
    assert_eq!(
        verify(&layer, &client, OTHER_AUDIENCE).await,
        Err(Error::new(
            ErrorKind::TokenInvalid,
            "access token audience is not accepted"
        ))
    );
    assert_eq!(
        verify(&layer, &client, OTHER_ISSUER).await,
        Err(Error::new(
            ErrorKind::TokenInvalid,
            "access token issuer is not accepted"
        ))
    );
}
