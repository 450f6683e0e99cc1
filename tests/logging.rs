//! Log lines of the layer: stable field names, and never a token or a proof. In its own test
//! binary because tracing caches per-callsite interest process-wide.

mod common;

use axum::routing::get;
use axum::Router;
use common::{builder_for, listen, spawn_app};
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
