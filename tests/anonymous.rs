//! Routes that serve anonymous and authenticated callers: `allow_anonymous` with
//! `Option<DpopAuth>`, through a real server on 127.0.0.1.

mod common;

use axum::routing::get;
use axum::Router;
use common::{builder_for, listen, spawn_app};
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
