//! Server-provided nonces (RFC 9449 sections 8 and 9), with an injected clock and through a
//! real server.
#![cfg(feature = "axum")]

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http::{HeaderMap, HeaderValue, Method};
use tower_dpop::clock::ManualClock;
use tower_dpop::nonce::{NoncePolicy, NonceSecret};
use tower_dpop::testing::{ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth, DpopLayer, DpopLayerBuilder, Error, ErrorKind};

const T0: u64 = 1_800_000_000;
const URL: &str = "https://api.example.com/api/me";

struct World {
    issuer: TestIssuer,
    client: ClientKey,
    token: String,
    clock: ManualClock,
}

impl World {
    fn new() -> Self {
        let issuer = TestIssuer::new();
        let client = ClientKey::generate(Algorithm::ES256);
        let token = issuer.token_for(client.jkt(), T0 + 7200);
        Self {
            issuer,
            client,
            token,
            clock: ManualClock::at_unix(T0),
        }
    }

    fn layer(&self, configure: impl FnOnce(DpopLayerBuilder) -> DpopLayerBuilder) -> DpopLayer {
        let validator = self.issuer.validator();
        configure(
            DpopLayer::builder()
                .public_origin("https://api.example.com")
                .token_validator(validator)
                .clock(self.clock.clone()),
        )
        .build()
        .unwrap()
    }

    fn headers(&self, nonce: Option<&str>) -> HeaderMap {
        self.headers_for("GET", nonce)
    }

    fn headers_for(&self, method: &str, nonce: Option<&str>) -> HeaderMap {
        let mut p = self
            .client
            .proof(method, URL)
            .access_token(&self.token)
            .iat(self.clock_now());
        if let Some(n) = nonce {
            p = p.nonce(n);
        }
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("DPoP {}", self.token)).unwrap(),
        );
        h.insert("dpop", HeaderValue::from_str(&p.sign()).unwrap());
        h
    }

    fn clock_now(&self) -> u64 {
        use tower_dpop::clock::Clock;
        self.clock.unix_seconds()
    }
}

fn secret(b: u8) -> NonceSecret {
    NonceSecret::from_bytes(&[b; 32]).unwrap()
}

/// A nonce `layer` issues at `at` (seconds), on a layer whose clock is `clock`.
fn issue_on(clock: &ManualClock, layer: &DpopLayer, at: u64) -> String {
    use tower_dpop::clock::Clock;
    let now = clock.unix_millis();
    clock.set_unix(at);
    let nonce = layer.fresh_nonce().expect("the layer uses nonces");
    clock.set_unix_millis(now);
    nonce.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn required_nonce_round_trip_and_expiry() {
    let w = World::new();
    let layer = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_lifetime(Duration::from_secs(60))
    });
    let get = |h: HeaderMap| {
        let layer = layer.clone();
        async move {
            layer
                .authenticate(&tower_dpop::testing::request_parts(
                    &Method::GET,
                    "/api/me",
                    &h,
                ))
                .await
                .map(|_| ())
        }
    };
    assert_eq!(
        get(w.headers(None)).await,
        Err(Error::new(
            ErrorKind::NonceRequired,
            "Resource server requires nonce in DPoP proof"
        ))
    );
    let nonce = issue_on(&w.clock, &layer, T0);
    assert_eq!(get(w.headers(Some(&nonce))).await, Ok(()));
    w.clock.advance(Duration::from_secs(59));
    assert_eq!(get(w.headers(Some(&nonce))).await, Ok(()));
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(
        get(w.headers(Some(&nonce))).await,
        Err(Error::new(
            ErrorKind::NonceInvalid,
            "DPoP nonce has expired"
        ))
    );
}

#[tokio::test]
async fn forged_or_foreign_nonces_are_refused() {
    let w = World::new();
    let layer = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_secret(secret(1))
    });
    let foreign = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_secret(secret(2))
    });
    let good = issue_on(&w.clock, &layer, T0);
    let mut forged = good.clone().into_bytes();
    forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for (name, nonce) in [
        ("forged", forged),
        ("other secret", issue_on(&w.clock, &foreign, T0)),
        ("made up", "eyJ7S_zG.eyJH0-Z.HX4w-7v".to_owned()),
    ] {
        let err = layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/api/me",
                &w.headers(Some(&nonce)),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Error::new(
                ErrorKind::NonceInvalid,
                "DPoP nonce is not one this server issued"
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn nonce_error_only_after_the_signature_verified() {
    let w = World::new();
    let layer = w.layer(|b| b.nonce_policy(NoncePolicy::Required));
    let thief = ClientKey::generate(Algorithm::ES256);
    let forged = thief
        .proof("GET", URL)
        .access_token(&w.token)
        .iat(T0)
        .header("jwk", w.client.public_jwk().clone())
        .sign();
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("DPoP {}", w.token)).unwrap(),
    );
    h.insert("dpop", HeaderValue::from_str(&forged).unwrap());
    assert_eq!(
        layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/api/me",
                &h
            ))
            .await
            .unwrap_err(),
        Error::new(ErrorKind::ProofSignature, "proof signature is invalid")
    );
}

#[tokio::test]
async fn rotation_causes_no_rejection() {
    let w = World::new();
    let before = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_secret(secret(1))
    });
    let after = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_secret(secret(2))
            .nonce_secret(secret(1))
    });
    let old = issue_on(&w.clock, &before, T0);
    let new = issue_on(&w.clock, &after, T0);
    after
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/api/me",
            &w.headers(Some(&old)),
        ))
        .await
        .unwrap();
    after
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/api/me",
            &w.headers(Some(&new)),
        ))
        .await
        .unwrap();
    // The new secret signs: a layer that only knows the old one refuses it.
    assert!(before
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/api/me",
            &w.headers(Some(&new))
        ))
        .await
        .is_err());
}

#[tokio::test]
async fn two_layers_sharing_a_secret_accept_each_others_nonces() {
    let w = World::new();
    let a = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_secret(secret(9))
    });
    let b = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_secret(secret(9))
    });
    let from_a = issue_on(&w.clock, &a, T0);
    b.authenticate(&tower_dpop::testing::request_parts(
        &Method::GET,
        "/api/me",
        &w.headers(Some(&from_a)),
    ))
    .await
    .unwrap();
    // Without a configured secret, each layer makes its own: they do not.
    let c = w.layer(|b| b.nonce_policy(NoncePolicy::Required));
    let d = w.layer(|b| b.nonce_policy(NoncePolicy::Required));
    let from_c = issue_on(&w.clock, &c, T0);
    assert!(d
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/api/me",
            &w.headers(Some(&from_c))
        ))
        .await
        .is_err());
}

#[tokio::test]
async fn per_request_policy() {
    let w = World::new();
    let layer = w.layer(|b| b.nonce_policy(NoncePolicy::when(|method, _, _| !method.is_safe())));
    // GET is safe: no nonce needed.
    layer
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/api/me",
            &w.headers(None),
        ))
        .await
        .unwrap();
    // POST needs one.
    assert!(matches!(
        layer
            .authenticate(&tower_dpop::testing::request_parts(&Method::POST, "/api/me", &w.headers_for("POST", None)))
            .await,
        Err(e) if e.kind() == ErrorKind::NonceRequired
    ));
    let nonce = issue_on(&w.clock, &layer, T0);
    layer
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::POST,
            "/api/me",
            &w.headers_for("POST", Some(&nonce)),
        ))
        .await
        .unwrap();
    // Off by default: a nonce in the proof is ignored.
    let off = w.layer(|b| b);
    off.authenticate(&tower_dpop::testing::request_parts(
        &Method::GET,
        "/api/me",
        &w.headers(Some("anything")),
    ))
    .await
    .unwrap();
    assert!(off.fresh_nonce().is_none());
}

/// Through a real server: the challenge, the retry, success, and the refresh on success.
#[tokio::test]
async fn round_trip_over_http_with_refresh() {
    let w = World::new();
    // The server's clock is the real one here, so proofs use the real time.
    let issuer = &w.issuer;
    let validator = issuer.validator();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    // A manual clock kept at the real time, so that nonces from the past can be issued.
    let clock = ManualClock::at_unix(tower_dpop::testing::unix_now());
    let layer = DpopLayer::builder()
        .public_origin(&origin)
        .token_validator(validator)
        .nonce_policy(NoncePolicy::Required)
        .nonce_lifetime(Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .unwrap();
    let issuing = layer.clone();
    let app = Router::new()
        .route(
            "/api/me",
            get(|auth: DpopAuth| async move { auth.proof.nonce.unwrap_or_default() }),
        )
        .layer(layer);
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let now = tower_dpop::testing::unix_now();
    let token = issuer.token_for(w.client.jkt(), now + 3600);
    let url = format!("{origin}/api/me");
    let client = reqwest::Client::new();
    let send = |nonce: Option<String>| {
        let mut p = w.client.proof("GET", &url).access_token(&token);
        if let Some(n) = &nonce {
            p = p.nonce(n);
        }
        client
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", p.sign())
            .send()
    };

    // 1. No nonce: 401 use_dpop_nonce with a fresh DPoP-Nonce.
    let first = send(None).await.unwrap();
    assert_eq!(first.status(), 401);
    let challenge = first.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("DPoP error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    // 2. Retry with it: 200; the nonce is young, so no new one is sent.
    let second = send(Some(nonce.clone())).await.unwrap();
    assert_eq!(second.status(), 200);
    assert!(second.headers().get("dpop-nonce").is_none());
    assert_eq!(second.text().await.unwrap(), nonce);
    // 3. A nonce in the last third of its life: 200 and the next nonce, not cacheable.
    let old = issue_on(&clock, &issuing, now - 21);
    let third = send(Some(old)).await.unwrap();
    assert_eq!(third.status(), 200);
    let next = third.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(third.headers()["cache-control"], "no-store");
    assert_ne!(next, nonce);
    assert_eq!(send(Some(next)).await.unwrap().status(), 200);
    // 4. An expired nonce: 401 with a fresh one.
    let expired = send(Some(issue_on(&clock, &issuing, now - 31)))
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    assert!(expired.headers().contains_key("dpop-nonce"));
    server.abort();
}

/// `authenticate` with a proof carrying `nonce`.
async fn with_nonce(w: &World, layer: &DpopLayer, nonce: &str) -> Result<(), Error> {
    layer
        .authenticate(&tower_dpop::testing::request_parts(
            &Method::GET,
            "/api/me",
            &w.headers(Some(nonce)),
        ))
        .await
        .map(|_| ())
}

fn unknown_nonce() -> Error {
    Error::new(
        ErrorKind::NonceInvalid,
        "DPoP nonce is not one this server issued",
    )
}

#[tokio::test]
async fn runtime_rotation_signs_with_the_new_secret_and_accepts_the_old_until_expiry() {
    let w = World::new();
    let layer = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_secret(secret(1))
            .nonce_lifetime(Duration::from_secs(60))
    });
    let only_new = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_secret(secret(2))
    });
    let old = issue_on(&w.clock, &layer, T0);
    // A clone (as every service of the router holds) sees the rotation.
    layer.clone().rotate_nonce_secret(secret(2)).unwrap();
    let new = issue_on(&w.clock, &layer, T0);
    assert_eq!(
        with_nonce(&w, &only_new, &new).await,
        Ok(()),
        "the new secret signs"
    );
    assert_eq!(with_nonce(&w, &only_new, &old).await, Err(unknown_nonce()));
    assert_eq!(
        with_nonce(&w, &layer, &old).await,
        Ok(()),
        "the old one still verifies"
    );
    w.clock.advance(Duration::from_secs(59));
    assert_eq!(with_nonce(&w, &layer, &old).await, Ok(()));
    // Once its nonces have expired, the old secret is gone: a nonce it signs now (say, with
    // a leaked secret) is not one this server issued.
    w.clock.advance(Duration::from_secs(7));
    let before = w.layer(|b| {
        b.nonce_policy(NoncePolicy::Required)
            .nonce_secret(secret(1))
    });
    let late_old = issue_on(&w.clock, &before, T0 + 66);
    assert_eq!(
        with_nonce(&w, &layer, &late_old).await,
        Err(unknown_nonce())
    );
    let late_new = issue_on(&w.clock, &layer, T0 + 66);
    assert_eq!(with_nonce(&w, &layer, &late_new).await, Ok(()));
}

#[tokio::test]
async fn fleet_rotation_in_two_steps_refuses_no_nonce() {
    let w = World::new();
    let make = || {
        w.layer(|b| {
            b.nonce_policy(NoncePolicy::Required)
                .nonce_secret(secret(1))
        })
    };
    let (a, b) = (make(), make());
    a.accept_nonce_secret(secret(2)).unwrap();
    b.accept_nonce_secret(secret(2)).unwrap();
    // Still signing with the first secret after the first step.
    let staged = issue_on(&w.clock, &a, T0);
    let only_old = make();
    assert_eq!(with_nonce(&w, &only_old, &staged).await, Ok(()));
    // `a` rotates before `b`: each accepts the other's nonces in between.
    a.rotate_nonce_secret(secret(2)).unwrap();
    let from_a = issue_on(&w.clock, &a, T0);
    let from_b = issue_on(&w.clock, &b, T0);
    assert_eq!(with_nonce(&w, &b, &from_a).await, Ok(()));
    assert_eq!(with_nonce(&w, &a, &from_b).await, Ok(()));
    b.rotate_nonce_secret(secret(2)).unwrap();
    let from_b = issue_on(&w.clock, &b, T0);
    assert_eq!(with_nonce(&w, &a, &from_b).await, Ok(()));
    assert_eq!(
        with_nonce(&w, &only_old, &from_b).await,
        Err(unknown_nonce())
    );
}

#[tokio::test]
async fn rotation_needs_nonces_in_use() {
    let w = World::new();
    let layer = w.layer(|b| b);
    let err = layer.rotate_nonce_secret(secret(2)).unwrap_err();
    assert_eq!(err.setting_name(), Some("nonce_policy"));
    assert!(layer.accept_nonce_secret(secret(2)).is_err());
}
