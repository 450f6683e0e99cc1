//! A JWT validator configured with an issuer alone: the metadata document and the key set are
//! served on 127.0.0.1 by an authorization server whose answers the tests switch at runtime,
//! with time driven by a `ManualClock`. The metadata's `issuer` must be the configured one, its
//! `jwks_uri` is fetched with the key set's rules (one fetch at a time, never before a proof
//! verified), and when discovery cannot answer the request gets 503.
#![cfg(all(feature = "axum", feature = "jwks-fetch"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use http::Method;
use serde_json::json;
use tower_dpop::clock::ManualClock;
use tower_dpop::testing::{dpop_headers, request_parts, ClientKey, TestIssuer};
use tower_dpop::token::jwt::{JwtValidator, JwtValidatorBuilder, MetadataDocument};
use tower_dpop::token::{TokenError, TokenValidator};
use tower_dpop::{Algorithm, DpopLayer, ErrorKind};

const T0: u64 = 1_700_000_000;
const AUD: &str = "https://api.example.com";
const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

/// What the metadata endpoint answers.
#[derive(Clone)]
enum Metadata {
    /// The document, naming this issuer (`None`: the server's own) and its JWKS URL.
    Serve(Option<String>),
    Fail,
}

/// An authorization server on 127.0.0.1: metadata at the well-known path for `tenant` (`""`
/// for an issuer without a path), keys at `/jwks`; both count their requests.
struct AuthServer {
    issuer: String,
    keys: TestIssuer,
    metadata: Arc<Mutex<Metadata>>,
    metadata_hits: Arc<AtomicUsize>,
    jwks_hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl AuthServer {
    async fn start(tenant: &str, document: MetadataDocument) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{origin}{tenant}");
        let keys = TestIssuer::with_issuer(&issuer);
        let metadata = Arc::new(Mutex::new(Metadata::Serve(None)));
        let (metadata_hits, jwks_hits) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let path = match document {
            MetadataDocument::OAuthAuthorizationServer => {
                format!("/.well-known/oauth-authorization-server{tenant}")
            }
            _ => format!("{tenant}/.well-known/openid-configuration"),
        };
        let (m, mh, jh, jwks) = (
            metadata.clone(),
            metadata_hits.clone(),
            jwks_hits.clone(),
            keys.jwks_json(),
        );
        let own_issuer = issuer.clone();
        let jwks_uri = format!("{origin}/jwks");
        let app = Router::new()
            .route(
                &path,
                get(move || {
                    mh.fetch_add(1, Ordering::SeqCst);
                    let answer = m.lock().unwrap().clone();
                    let (own, uri) = (own_issuer.clone(), jwks_uri.clone());
                    async move {
                        match answer {
                            Metadata::Serve(named) => axum::Json(json!({
                                "issuer": named.unwrap_or(own),
                                "jwks_uri": uri,
                                "token_endpoint": "https://unused.example/token",
                                "dpop_signing_alg_values_supported": ["ES256"],
                            }))
                            .into_response(),
                            Metadata::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                        }
                    }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    jh.fetch_add(1, Ordering::SeqCst);
                    let body = jwks.clone();
                    async move { body }
                }),
            );
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            issuer,
            keys,
            metadata,
            metadata_hits,
            jwks_hits,
            task,
        }
    }

    fn set(&self, answer: Metadata) {
        *self.metadata.lock().unwrap() = answer;
    }

    fn hits(&self) -> (usize, usize) {
        (
            self.metadata_hits.load(Ordering::SeqCst),
            self.jwks_hits.load(Ordering::SeqCst),
        )
    }

    fn validator(&self, clock: &ManualClock) -> JwtValidatorBuilder {
        JwtValidator::builder()
            .discover(&self.issuer)
            .allow_insecure_http(true)
            .clock(clock.clone())
            .audience(AUD)
    }

    fn token(&self) -> String {
        self.keys.token_for(JKT, T0 + 3600)
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// OpenID Connect discovery (the default) and RFC 8414 with the well-known segment inserted
/// before the issuer's path: the keys come from the metadata's `jwks_uri`.
#[tokio::test]
async fn the_key_set_is_found_from_the_issuer_alone() {
    for (tenant, document) in [
        ("", MetadataDocument::OpenIdConfiguration),
        ("/realms/api", MetadataDocument::OpenIdConfiguration),
        ("", MetadataDocument::OAuthAuthorizationServer),
        ("/tenant1", MetadataDocument::OAuthAuthorizationServer),
    ] {
        let server = AuthServer::start(tenant, document).await;
        let clock = ManualClock::at_unix(T0);
        let v = server
            .validator(&clock)
            .metadata_document(document)
            .build()
            .unwrap();
        assert_eq!(server.hits(), (0, 0), "nothing fetched at build");
        let t = v.validate(&server.token()).await;
        assert!(t.is_ok(), "{tenant:?} {document:?}: {t:?}");
        assert_eq!(server.hits(), (1, 1), "{tenant:?} {document:?}");
        // The issuer was added to the accepted ones; another issuer's token is refused.
        let other = TestIssuer::with_issuer("https://other.example.com");
        assert_eq!(
            v.validate(&other.token_for(JKT, T0 + 3600))
                .await
                .unwrap_err(),
            TokenError::invalid("access token issuer is not accepted")
        );
    }
}

/// Metadata that names another issuer (a trailing slash is another issuer too): its keys are
/// never fetched, and the answer is 503 until a document that names the issuer is served.
#[tokio::test]
async fn metadata_naming_another_issuer_is_refused() {
    let server = AuthServer::start("", MetadataDocument::OpenIdConfiguration).await;
    let clock = ManualClock::at_unix(T0);
    let v = server.validator(&clock).build().unwrap();
    for named in [
        "https://evil.example".to_owned(),
        format!("{}/", server.issuer),
    ] {
        server.set(Metadata::Serve(Some(named.clone())));
        let got = v.validate(&server.token()).await;
        assert!(
            matches!(got, Err(TokenError::Unavailable(_))),
            "{named}: {got:?}"
        );
        assert_eq!(server.hits().1, 0, "{named}: no key fetched");
        clock.advance(Duration::from_secs(30));
    }
    server.set(Metadata::Serve(None));
    assert!(v.validate(&server.token()).await.is_ok());
    assert_eq!(server.hits().1, 1);
}

/// Discovery down: 503 through the layer (never a pass), at most one attempt per interval;
/// once it answers, tokens are accepted.
#[tokio::test]
async fn discovery_down_gives_503() {
    let server = AuthServer::start("", MetadataDocument::OpenIdConfiguration).await;
    server.set(Metadata::Fail);
    let clock = ManualClock::at_unix(T0);
    let client = ClientKey::generate(Algorithm::ES256);
    let token = server.keys.token_for(client.jkt(), T0 + 3600);
    let layer = DpopLayer::builder()
        .public_origin(AUD)
        .token_validator(server.validator(&clock).build().unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let send = |jti: &str| {
        let proof = client
            .proof("GET", &format!("{AUD}/orders"))
            .access_token(&token)
            .iat(T0)
            .jti(jti)
            .sign();
        let parts = request_parts(&Method::GET, "/orders", &dpop_headers(&token, &proof));
        let layer = layer.clone();
        async move { layer.authenticate(&parts).await }
    };
    for jti in ["a", "b", "c"] {
        let err = send(jti).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert_eq!(err.status(), 503);
    }
    assert_eq!(server.hits(), (1, 0), "one attempt per interval");
    server.set(Metadata::Serve(None));
    clock.advance(Duration::from_secs(30));
    assert!(send("d").await.is_ok());
    assert_eq!(server.hits(), (2, 1));
}

/// Many new tokens at once: one metadata fetch and one key fetch, shared.
#[tokio::test]
async fn concurrent_first_tokens_share_one_discovery() {
    let server = AuthServer::start("/t", MetadataDocument::OpenIdConfiguration).await;
    let clock = ManualClock::at_unix(T0);
    let v = server.validator(&clock).build().unwrap();
    let token = server.token();
    let all = futures::future::join_all((0..16).map(|_| v.validate(&token))).await;
    assert!(all.iter().all(Result::is_ok), "{all:?}");
    assert_eq!(server.hits(), (1, 1));
}

/// The metadata is refreshed with the keys once older than `jwks_max_age`; when the refresh
/// fails, the `jwks_uri` learnt before is used for the keys (bounded like the keys).
#[tokio::test]
async fn metadata_is_refreshed_with_the_keys_and_outlives_a_failure() {
    let server = AuthServer::start("", MetadataDocument::OpenIdConfiguration).await;
    let clock = ManualClock::at_unix(T0);
    let v = server
        .validator(&clock)
        .jwks_max_age(Duration::from_secs(60))
        .jwks_max_stale(Duration::from_secs(120))
        .build()
        .unwrap();
    let token = server.token();
    assert!(v.validate(&token).await.is_ok());
    assert_eq!(server.hits(), (1, 1));
    // A new kid within max_age: only the keys are fetched again.
    clock.advance(Duration::from_secs(30));
    let rotated = TestIssuer::with_issuer(&server.issuer);
    let _ = v.validate(&rotated.token_for(JKT, T0 + 3600)).await;
    assert_eq!(server.hits(), (1, 2), "the jwks_uri learnt is still fresh");
    // Past max_age, with the metadata endpoint failing: the keys are refreshed from the
    // jwks_uri learnt before.
    server.set(Metadata::Fail);
    clock.advance(Duration::from_secs(61));
    assert!(
        v.validate(&token).await.is_ok(),
        "stale keys answer at once"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.hits() != (2, 3) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(server.hits(), (2, 3), "metadata tried, keys fetched anyway");
}

/// A proof that does not verify makes no outbound call, discovery included.
#[tokio::test]
async fn a_forged_proof_never_makes_the_validator_discover() {
    let server = AuthServer::start("", MetadataDocument::OpenIdConfiguration).await;
    let clock = ManualClock::at_unix(T0);
    let client = ClientKey::generate(Algorithm::ES256);
    let token = server.keys.token_for(client.jkt(), T0 + 3600);
    let layer = DpopLayer::builder()
        .public_origin(AUD)
        .token_validator(server.validator(&clock).build().unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let attacker = ClientKey::generate(Algorithm::ES256);
    let forged = attacker
        .proof("GET", &format!("{AUD}/orders"))
        .access_token(&token)
        .iat(T0)
        .header("jwk", client.public_jwk().clone())
        .sign();
    for _ in 0..3 {
        let parts = request_parts(&Method::GET, "/orders", &dpop_headers(&token, &forged));
        let err = layer.authenticate(&parts).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProofSignature, "{err}");
    }
    assert_eq!(server.hits(), (0, 0));
}

/// Configuration: one key source, an https issuer unless allowed.
#[test]
fn discovery_configuration_errors() {
    let err = |b: JwtValidatorBuilder| b.audience(AUD).build().unwrap_err().to_string();
    assert!(err(JwtValidator::builder().discover("http://as.example.com")).contains("https"));
    assert!(err(JwtValidator::builder()
        .discover("https://as.example.com")
        .jwks_url("https://as.example.com/jwks"))
    .contains("one key source"));
    assert!(
        err(JwtValidator::builder().discover("https://as.example.com/?x=1"))
            .contains("query or fragment")
    );
    assert!(JwtValidator::builder()
        .discover("https://as.example.com")
        .audience(AUD)
        .build()
        .is_ok());
}
