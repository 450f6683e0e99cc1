//! Bearer coexistence (RFC 9449 section 7.2) and Protected Resource Metadata (RFC 9728),
//! through a real server on 127.0.0.1.
#![cfg(feature = "axum")]

use crate::common::{builder_for, listen, spawn_app, DEFAULT_ALGS as ALGS};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tower_dpop::metadata::{ProtectedResourceMetadata, WELL_KNOWN_PATH};
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth, TokenAuth};

struct Server {
    origin: String,
    issuer: TestIssuer,
    task: tokio::task::JoinHandle<()>,
}

async fn start(allow_bearer: bool) -> Server {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer)
        .allow_bearer(allow_bearer)
        .resource_metadata(format!("{origin}{WELL_KNOWN_PATH}"))
        .build()
        .unwrap();
    let metadata =
        ProtectedResourceMetadata::from_layer(&layer).authorization_server(issuer.issuer());
    let app = Router::new()
        .route(
            "/any",
            get(|a: TokenAuth| async move {
                json!({"sub": a.claims["sub"], "jkt": a.jkt.map(|j| j.to_string())}).to_string()
            }),
        )
        .route(
            "/dpop-only",
            get(|a: DpopAuth| async move { a.jkt.to_string() }),
        )
        .layer(layer)
        .merge(metadata.router());
    let task = spawn_app(listener, app);
    Server {
        origin,
        issuer,
        task,
    }
}

fn unbound(issuer: &TestIssuer) -> String {
    issuer.mint(&json!({"iss": issuer.issuer(), "aud": issuer.audience(), "sub": "legacy", "exp": unix_now() + 600}))
}

async fn get_with(url: &str, auth: Option<String>, proof: Option<String>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(p) = proof {
        req = req.header("dpop", p);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, www, resp.text().await.unwrap())
}

#[tokio::test]
async fn dpop_only_by_default_refuses_bearer_even_unbound() {
    let s = start(false).await;
    let url = format!("{}/any", s.origin);
    let (status, www, _) =
        get_with(&url, Some(format!("Bearer {}", unbound(&s.issuer))), None).await;
    assert_eq!(status, 401);
    let rm = format!("resource_metadata=\"{}{WELL_KNOWN_PATH}\"", s.origin);
    assert_eq!(www, format!("DPoP algs=\"{ALGS}\", {rm}"));
    s.task.abort();
}

#[tokio::test]
async fn bearer_and_dpop_on_one_server() {
    let s = start(true).await;
    let url = format!("{}/any", s.origin);
    let rm = format!("resource_metadata=\"{}{WELL_KNOWN_PATH}\"", s.origin);
    // Nothing: both challenges, no error (RFC 9449 figure 17).
    let (status, www, _) = get_with(&url, None, None).await;
    assert_eq!(
        (status, www),
        (401, format!("Bearer {rm}, DPoP algs=\"{ALGS}\", {rm}"))
    );
    // An unbound token under Bearer is accepted.
    let (status, _, body) =
        get_with(&url, Some(format!("Bearer {}", unbound(&s.issuer))), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"sub": "legacy", "jkt": null})
    );
    // A DPoP-bound token under Bearer is refused, with the error in the Bearer challenge.
    let key = ClientKey::generate(Algorithm::ES256);
    let bound = s.issuer.token_for(key.jkt(), unix_now() + 600);
    let (status, www, _) = get_with(&url, Some(format!("Bearer {bound}")), None).await;
    assert_eq!(status, 401);
    let refused = "Bearer error=\"invalid_token\", error_description=\"sender-constrained access token (cnf) presented as a Bearer token\"";
    assert!(www.starts_with(refused), "{www}");
    assert!(www.contains(&format!("DPoP algs=\"{ALGS}\"")), "{www}");
    // So is a token bound by mutual TLS (RFC 8705 `cnf.x5t#S256`): any confirmation means
    // its sender must prove possession, which Bearer cannot.
    let mtls = s.issuer.mint(&json!({
        "iss": s.issuer.issuer(), "aud": s.issuer.audience(), "sub": "mtls", "exp": unix_now() + 600,
        "cnf": { "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }
    }));
    let (status, www, _) = get_with(&url, Some(format!("Bearer {mtls}")), None).await;
    assert_eq!(status, 401);
    assert!(www.starts_with(refused), "{www}");
    // The same bound token with DPoP is accepted.
    let proof = key.proof("GET", &url).access_token(&bound).sign();
    let (status, _, body) = get_with(&url, Some(format!("DPoP {bound}")), Some(proof)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["jkt"],
        key.jkt()
    );
    // DPoP errors go in the DPoP challenge.
    let (status, www, _) = get_with(
        &url,
        Some(format!("DPoP {bound}")),
        Some(key.proof("POST", &url).access_token(&bound).sign()),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        www.starts_with(&format!("Bearer {rm}, DPoP error=\"invalid_dpop_proof\"")),
        "{www}"
    );
    // An unbound token under DPoP is still refused.
    let legacy = unbound(&s.issuer);
    let (status, www, _) = get_with(
        &url,
        Some(format!("DPoP {legacy}")),
        Some(key.proof("GET", &url).access_token(&legacy).sign()),
    )
    .await;
    assert_eq!(status, 401);
    assert!(www.contains("DPoP error=\"invalid_token\""), "{www}");
    // A handler that demands DPoP refuses a Bearer request with 401, not 500.
    let (status, www, _) = get_with(
        &format!("{}/dpop-only", s.origin),
        Some(format!("Bearer {legacy}")),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert!(www.contains("invalid_token"), "{www}");
    s.task.abort();
}

#[tokio::test]
async fn protected_resource_metadata_matches_the_configuration() {
    for allow_bearer in [false, true] {
        let s = start(allow_bearer).await;
        let doc: Value = reqwest::get(format!("{}{WELL_KNOWN_PATH}", s.origin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["resource"], s.origin);
        assert_eq!(doc["authorization_servers"], json!([s.issuer.issuer()]));
        let algs: Vec<&str> = doc["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            algs.join(" "),
            ALGS,
            "the same list as the challenges' algs"
        );
        assert_eq!(doc["dpop_bound_access_tokens_required"], !allow_bearer);
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        s.task.abort();
    }
}
