//! Routes that serve anonymous and authenticated callers: `allow_anonymous` with
//! `Option<DpopAuth>`, through a real server on 127.0.0.1.
#![cfg(feature = "axum")]

use crate::common::{builder_for, listen, spawn_app};
use axum::routing::get;
use axum::Router;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth};

#[tokio::test]
async fn optional_extractor_with_anonymous_callers() {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer)
        .allow_anonymous(true)
        .build()
        .unwrap();
    let greet = |auth: Option<DpopAuth>| async move {
        match auth {
            Some(a) => format!("hello {}", a.claims["sub"].as_str().unwrap_or("?")),
            None => "hello stranger".to_owned(),
        }
    };
    let app = Router::new()
        .route("/greet", get(greet))
        .layer(layer)
        .route("/unlayered", get(greet));
    let task = spawn_app(listener, app);
    let client = reqwest::Client::new();
    let url = format!("{origin}/greet");

    let anon = client.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), 200);
    assert_eq!(anon.text().await.unwrap(), "hello stranger");

    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let signed = client
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", key.proof("GET", &url).access_token(&token).sign())
        .send()
        .await
        .unwrap();
    assert_eq!(signed.text().await.unwrap(), "hello alice");

    // Credentials that are present but wrong are still refused, never treated as anonymous.
    let bad = client
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", key.proof("POST", &url).access_token(&token).sign())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let no_proof = client
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_proof.status(), 401);

    // Without a layer, Option<DpopAuth> is still a server error, not a silent None.
    let unlayered = client
        .get(format!("{origin}/unlayered"))
        .send()
        .await
        .unwrap();
    assert_eq!(unlayered.status(), 500);
    task.abort();
}

/// Two sub-routers with different layers: each applies its own settings.
#[tokio::test]
async fn sub_routers_with_different_settings() {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = |algs: &[Algorithm]| {
        builder_for(&origin, &issuer)
            .algorithms(algs.to_vec())
            .build()
            .unwrap()
    };
    let me = get(|a: DpopAuth| async move { a.jkt.to_string() });
    let app = Router::new()
        .nest(
            "/ec",
            Router::new()
                .route("/me", me.clone())
                .layer(layer(&[Algorithm::ES256])),
        )
        .nest(
            "/ed",
            Router::new()
                .route("/me", me)
                .layer(layer(&[Algorithm::EdDSA])),
        );
    let task = spawn_app(listener, app);
    let client = reqwest::Client::new();
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let send = |path: &str| {
        let url = format!("{origin}{path}");
        client
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", key.proof("GET", &url).access_token(&token).sign())
            .send()
    };
    assert_eq!(send("/ec/me").await.unwrap().status(), 200);
    let ed = send("/ed/me").await.unwrap();
    assert_eq!(ed.status(), 401);
    assert!(ed.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("algs=\"EdDSA\""));
    task.abort();
}

/// On an anonymous route, credentials of any kind are checked: another scheme (Basic, an
/// unknown one, Bearer where Bearer is not accepted) or a `DPoP` proof without a token is
/// refused with the layer's challenge, never let through as anonymous.
#[tokio::test]
async fn other_schemes_on_an_anonymous_route_are_refused_with_the_challenge() {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer)
        .allow_anonymous(true)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/greet",
            get(|a: Option<DpopAuth>| async move {
                if a.is_some() {
                    "known"
                } else {
                    "anon"
                }
            }),
        )
        .layer(layer);
    let task = spawn_app(listener, app);
    let client = reqwest::Client::new();
    let url = format!("{origin}/greet");
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let proof = key.proof("GET", &url).access_token(&token).sign();
    let cases: [(&str, Vec<(&str, String)>); 5] = [
        (
            "basic",
            vec![("authorization", "Basic YWxpY2U6cGFzcw==".into())],
        ),
        (
            "unknown scheme",
            vec![("authorization", "Magic abc".into())],
        ),
        (
            "bearer not accepted",
            vec![("authorization", format!("Bearer {token}"))],
        ),
        (
            "empty authorization",
            vec![("authorization", String::new())],
        ),
        ("proof without a token", vec![("dpop", proof.clone())]),
    ];
    for (name, headers) in cases {
        let mut req = client.get(&url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{name}");
        let www = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(www.starts_with("DPoP algs=\""), "{name}: {www}");
        assert_eq!(resp.headers()["cache-control"], "no-store", "{name}");
    }
    // Nothing at all is anonymous.
    let anon = client.get(&url).send().await.unwrap();
    assert_eq!(anon.text().await.unwrap(), "anon");
    task.abort();
}

/// A handler that takes `DpopAuth` (not `Option<DpopAuth>`) behind a layer that allows
/// anonymous requests answers an anonymous one with the layer's 401 challenge (`algs`,
/// `resource_metadata`) and the layer's rejection body, not with a 500.
#[tokio::test]
async fn a_required_extractor_answers_anonymous_requests_with_the_layer_challenge() {
    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer)
        .allow_anonymous(true)
        .resource_metadata(format!("{origin}/.well-known/oauth-protected-resource"))
        .rejection_body(|err| {
            let doc =
                serde_json::json!({ "status": err.status().as_u16(), "detail": err.description() });
            (
                http::HeaderValue::from_static("application/problem+json"),
                doc.to_string().into(),
            )
        })
        .build()
        .unwrap();
    let app = Router::new()
        .route("/me", get(|a: DpopAuth| async move { a.jkt.to_string() }))
        .layer(layer);
    let task = spawn_app(listener, app);
    let resp = reqwest::get(format!("{origin}/me")).await.unwrap();
    assert_eq!(resp.status(), 401);
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        www,
        format!(
            "DPoP algs=\"{}\", resource_metadata=\"{origin}/.well-known/oauth-protected-resource\"",
            crate::common::DEFAULT_ALGS
        )
    );
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], 401);
    task.abort();
}
