//! Log lines of the layer: stable field names, and never a token or a proof. In its own test
//! binary because tracing caches per-callsite interest process-wide.
#![cfg(feature = "axum")]

use crate::common::{builder_for, listen, spawn_app};
use axum::routing::get;
use axum::Router;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth};

#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Events carry the stable fields, and never the token or the proof.
#[tokio::test]
async fn tracing_fields_and_no_secrets_in_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let issuer = TestIssuer::new();
    let (listener, origin) = listen().await;
    let layer = builder_for(&origin, &issuer).build().unwrap();
    let app = Router::new()
        .route("/me", get(|a: DpopAuth| async move { a.jkt.to_string() }))
        .layer(layer);
    // Current-thread test runtime: the server task logs on this thread, to this subscriber.
    let task = spawn_app(listener, app);
    let client = reqwest::Client::new();
    let url = format!("{origin}/me");
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let proof = key.proof("GET", &url).access_token(&token).sign();
    for _ in 0..2 {
        client
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", &proof)
            .send()
            .await
            .unwrap();
    }
    task.abort();
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("outcome=\"accepted\""), "{logs}");
    assert!(logs.contains("outcome=\"rejected\""), "{logs}");
    assert!(logs.contains("error=\"invalid_dpop_proof\""), "{logs}");
    assert!(
        logs.contains("reason=\"proof jti was already used\""),
        "{logs}"
    );
    assert!(logs.contains("alg=\"ES256\""), "{logs}");
    assert!(logs.contains(&format!("jkt={}", &key.jkt()[..8])), "{logs}");
    assert!(logs.contains("dpop{method=GET path=/me"), "{logs}");
    assert!(!logs.contains(&token), "the token must never be logged");
    assert!(!logs.contains(&proof), "the proof must never be logged");
    assert!(
        !logs.contains(key.jkt()),
        "only a prefix of the thumbprint is logged"
    );
}

/// Runs `f` with a DEBUG subscriber on this thread; returns what it logged.
async fn logs_of<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) -> String {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    f().await;
    drop(guard);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    logs
}

/// An `htu` mismatch is logged at debug level with the expected origin and path and the
/// received `htu`'s origin and path (not its query), never the proof or the token.
#[tokio::test]
async fn an_htu_mismatch_logs_what_was_compared() {
    let issuer = TestIssuer::new();
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let proof = key
        .proof("GET", "http://api.example.com:8080/v1/me?x=secret-query")
        .access_token(&token)
        .sign();
    let logs = logs_of(|| async {
        let layer = builder_for("https://api.example.com", &issuer)
            .build()
            .unwrap();
        let r = layer
            .authenticate(&tower_dpop::testing::request_parts(
                &http::Method::GET,
                "/me",
                &tower_dpop::testing::dpop_headers(&token, &proof),
            ))
            .await;
        assert!(r.is_err());
    })
    .await;
    assert!(
        logs.contains("expected_origins=[\"https://api.example.com\"]"),
        "{logs}"
    );
    assert!(logs.contains("expected_path=\"/me\""), "{logs}");
    assert!(
        logs.contains("htu_origin=\"http://api.example.com:8080\""),
        "{logs}"
    );
    assert!(logs.contains("htu_path=\"/v1/me\""), "{logs}");
    assert!(!logs.contains("secret-query"), "{logs}");
    assert!(!logs.contains(&proof) && !logs.contains(&token), "{logs}");
}

/// Nonces required without a shared secret: a warning at build time says what a fleet needs.
#[tokio::test]
async fn required_nonces_without_a_secret_warn_at_build_time() {
    let issuer = TestIssuer::new();
    let build = |secret: bool| {
        let mut b = builder_for("https://api.example.com", &issuer)
            .nonce_policy(tower_dpop::nonce::NoncePolicy::Required);
        if secret {
            b = b.nonce_secret(tower_dpop::nonce::NonceSecret::random().unwrap());
        }
        b.build().unwrap()
    };
    let logs = logs_of(|| async {
        let _ = build(false);
    })
    .await;
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("no nonce_secret is set"), "{logs}");
    let logs = logs_of(|| async {
        let _ = build(true);
    })
    .await;
    assert!(!logs.contains("nonce_secret"), "{logs}");
}

/// `rejection_log_level` moves rejections to another level: at DEBUG they leave an INFO log.
#[tokio::test]
async fn rejections_can_be_logged_at_a_lower_level() {
    let issuer = TestIssuer::new();
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let wrong_method = key
        .proof("POST", "https://api.example.com/me")
        .access_token(&token)
        .sign();
    let headers = tower_dpop::testing::dpop_headers(&token, &wrong_method);
    let run = |level: Option<tracing::Level>| {
        let (issuer, headers) = (&issuer, headers.clone());
        async move {
            let capture = Capture::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            let _guard = tracing::subscriber::set_default(subscriber);
            let mut builder = builder_for("https://api.example.com", issuer);
            if let Some(level) = level {
                builder = builder.rejection_log_level(level);
            }
            let layer = builder.build().unwrap();
            let app = tower::ServiceBuilder::new().layer(layer).service_fn(
                |_: http::Request<axum::body::Body>| async {
                    Ok::<_, std::convert::Infallible>(
                        http::Response::new(axum::body::Body::empty()),
                    )
                },
            );
            let mut req = http::Request::get("https://api.example.com/me")
                .body(axum::body::Body::empty())
                .unwrap();
            *req.headers_mut() = headers;
            let resp = tower::ServiceExt::oneshot(app, req).await.unwrap();
            assert_eq!(resp.status(), 401);
            let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
            logs
        }
    };
    let default = run(None).await;
    assert!(default.contains("DPoP request rejected"), "{default}");
    let quiet = run(Some(tracing::Level::DEBUG)).await;
    assert!(!quiet.contains("DPoP request rejected"), "{quiet}");
}
