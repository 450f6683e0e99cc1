//! Introspection as authorization servers deploy it, against stand-in endpoints on 127.0.0.1:
//! the phantom-token pattern (Curity: an opaque token whose introspection response carries
//! its claims and a JWT), `token_type` against the binding, and JWT introspection responses
//! (RFC 9701) verified against a JWKS served by the stand-in. Response shapes: see
//! tests/vectors/README.md.
#![cfg(all(feature = "axum", feature = "introspection"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use tower_dpop::clock::ManualClock;
use tower_dpop::testing::{ath, request_parts, unix_now, ClientKey};
use tower_dpop::token::introspection::IntrospectionValidator;
use tower_dpop::{Algorithm, DpopAuth, DpopLayer, Error, ErrorKind};

const CLIENT_ID: &str = "api-introspector";
const CLIENT_SECRET: &str = "s3cret";
const ISSUER: &str = "https://idsvr.example.com/oauth/v2/oauth-anonymous";
const AUDIENCE: &str = "https://api.example.com";
const ORIGIN: &str = "https://api.example.com";

/// Curity's opaque access tokens start with `_0XBPWQQ_`.
const OPAQUE: &str = "_0XBPWQQ_6a2b1f3e-9d0c-4a57-8e21-7f6c5b4a3d2e";
/// Says `token_type` DPoP but gives no `cnf.jkt`.
const DPOP_UNBOUND: &str = "_0XBPWQQ_dpop-without-cnf";
/// The same response without `token_type`: a plain unbound token.
const UNBOUND: &str = "_0XBPWQQ_unbound";
/// `cnf.jkt` under `token_type` Bearer.
const BEARER_WITH_JKT: &str = "_0XBPWQQ_bearer-with-jkt";
/// `cnf.jkt` with no `token_type`.
const BOUND_NO_TYPE: &str = "_0XBPWQQ_bound-no-type";

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A compact JWS signed with `key`, made by hand from the key's raw signature.
fn jws(key: &ClientKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = URL_SAFE_NO_PAD.encode(key.sign_raw(input.as_bytes()));
    format!("{input}.{sig}")
}

fn form_token(body: &str) -> String {
    let raw = body
        .split('&')
        .find_map(|p| p.strip_prefix("token="))
        .unwrap_or_default();
    // The tokens of this file need no percent-decoding but `_` and `-`, which stay as they are.
    raw.to_owned()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn proof_headers(client: &ClientKey, token: &str, ath_over: &str) -> HeaderMap {
    let proof = client
        .proof("GET", &format!("{ORIGIN}/api/me"))
        .claim("ath", json!(ath(ath_over)))
        .sign();
    let mut h = HeaderMap::new();
    h.insert("authorization", format!("DPoP {token}").parse().unwrap());
    h.insert("dpop", proof.parse().unwrap());
    h
}

fn bearer_headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    h
}

async fn authenticate(layer: &DpopLayer, headers: &HeaderMap) -> Result<(), Error> {
    layer
        .authenticate(&request_parts(&Method::GET, "/api/me", headers))
        .await
        .map(|_| ())
}

// ---------------------------------------------------------------------------------------
// The phantom-token pattern (Curity) and token_type.
// ---------------------------------------------------------------------------------------

struct Curity {
    jkt: String,
    /// The JWT the introspection response carries (the phantom token).
    phantom: String,
    asked: Mutex<Vec<String>>,
}

impl Curity {
    fn new(client: &ClientKey) -> Arc<Self> {
        let signer = ClientKey::generate(Algorithm::RS256);
        let now = unix_now();
        let phantom = jws(
            &signer,
            &json!({"alg": "RS256", "kid": "1555934847", "typ": "at+jwt"}),
            &json!({"jti": "b9d1c9bc", "delegationId": "e4c6a4d8", "exp": now + 300,
                    "nbf": now, "scope": "read", "iss": ISSUER, "sub": "johndoe",
                    "aud": AUDIENCE, "iat": now, "purpose": "access_token",
                    "cnf": {"jkt": client.jkt()}}),
        );
        Arc::new(Self {
            jkt: client.jkt().to_owned(),
            phantom,
            asked: Mutex::new(Vec::new()),
        })
    }

    /// The JSON introspection response for `token`, shaped as the Curity Identity Server
    /// answers with a token procedure that adds the phantom token.
    fn answer(&self, token: &str) -> Value {
        let now = unix_now();
        let mut v = json!({
            "active": true, "sub": "johndoe", "purpose": "access_token",
            "client_id": "web-client", "aud": ["web-client", AUDIENCE], "iss": ISSUER,
            "scope": "read", "delegationId": "e4c6a4d8", "exp": now + 300, "iat": now,
            "nbf": now,
        });
        match token {
            OPAQUE => {
                v["token_type"] = json!("DPoP");
                v["cnf"] = json!({"jkt": self.jkt});
                v["phantom_token"] = json!(self.phantom);
            }
            DPOP_UNBOUND => v["token_type"] = json!("DPoP"),
            UNBOUND => {}
            BEARER_WITH_JKT => {
                v["token_type"] = json!("bearer");
                v["cnf"] = json!({"jkt": self.jkt});
            }
            BOUND_NO_TYPE => v["cnf"] = json!({"jkt": self.jkt}),
            _ => return json!({"active": false}),
        }
        v
    }
}

async fn curity_introspect(State(curity): State<Arc<Curity>>, body: String) -> Response {
    let token = form_token(&body);
    let answer = curity.answer(&token);
    curity.asked.lock().unwrap().push(token);
    axum::Json(answer).into_response()
}

async fn curity(client: &ClientKey) -> (String, Arc<Curity>) {
    let state = Curity::new(client);
    let app = Router::new()
        .route("/oauth/v2/oauth-introspect", post(curity_introspect))
        .with_state(state.clone());
    let base = serve(app).await;
    (format!("{base}/oauth/v2/oauth-introspect"), state)
}

fn introspection_layer(endpoint: &str, allow_bearer: bool) -> DpopLayer {
    let validator = IntrospectionValidator::builder(endpoint)
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .allow_insecure_http(true)
        .build()
        .unwrap();
    DpopLayer::builder()
        .public_origin(ORIGIN)
        .token_validator(validator)
        .allow_bearer(allow_bearer)
        .build()
        .unwrap()
}

/// The phantom-token pattern end to end over HTTP: the client holds only the opaque token and
/// computes `ath` over it; the binding comes from the introspection response's `cnf.jkt`.
#[tokio::test]
async fn phantom_token_opaque_token_with_ath_over_it_is_accepted() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, state) = curity(&client).await;
    let app = Router::new()
        .route(
            "/api/me",
            get(|auth: DpopAuth| async move {
                axum::Json(json!({
                    "sub": auth.claims["sub"], "jkt": auth.jkt.to_string(),
                    "has_phantom": auth.claims.get("phantom_token").is_some(),
                }))
            }),
        )
        .layer(introspection_layer(&endpoint, false));
    let base = serve(app).await;
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/me"))
        .header("host", "api.example.com")
        .headers(proof_headers(&client, OPAQUE, OPAQUE))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"sub": "johndoe", "jkt": client.jkt(), "has_phantom": true})
    );
    assert_eq!(*state.asked.lock().unwrap(), vec![OPAQUE.to_owned()]);
}

/// `ath` binds the proof to the token the client sent (RFC 9449 section 4.3): a proof whose
/// `ath` is over the JWT the introspection returned is refused, though the JWT carries the
/// same claims and binding.
#[tokio::test]
async fn phantom_token_ath_over_the_returned_jwt_is_refused() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, state) = curity(&client).await;
    let layer = introspection_layer(&endpoint, false);
    let phantom = state.phantom.clone();

    let err = authenticate(&layer, &proof_headers(&client, OPAQUE, &phantom))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProofTokenHash, "{err:?}");
    assert!(
        state.asked.lock().unwrap().is_empty(),
        "refused before introspection"
    );
    // The control: the same request with `ath` over the opaque token passes.
    assert_eq!(
        authenticate(&layer, &proof_headers(&client, OPAQUE, OPAQUE)).await,
        Ok(())
    );

    // The phantom JWT itself is not a token of this API: it is introspected like any
    // other (never trusted for its looks), and the authorization server does not know it.
    let err = authenticate(&layer, &proof_headers(&client, &phantom, &phantom))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenInvalid, "{err:?}");
    assert!(err.description().contains("not active"), "{err}");
}

/// `token_type` DPoP without `cnf.jkt` must not pass as a Bearer token; the same response
/// without `token_type` does (it is an unbound token).
#[tokio::test]
async fn token_type_dpop_without_binding_is_refused_as_bearer() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, _) = curity(&client).await;
    let layer = introspection_layer(&endpoint, true);
    assert_eq!(authenticate(&layer, &bearer_headers(UNBOUND)).await, Ok(()));
    let err = authenticate(&layer, &bearer_headers(DPOP_UNBOUND))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenInvalid, "{err:?}");
    assert!(err.description().contains("token_type DPoP"), "{err}");
    // And it is no DPoP token either.
    let err = authenticate(&layer, &proof_headers(&client, DPOP_UNBOUND, DPOP_UNBOUND))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenInvalid, "{err:?}");
}

/// A bound token under any `token_type` but DPoP is refused for a DPoP request; without
/// `token_type` the binding alone decides.
#[tokio::test]
async fn token_type_must_be_dpop_for_a_bound_token() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (endpoint, _) = curity(&client).await;
    let layer = introspection_layer(&endpoint, true);
    assert_eq!(
        authenticate(
            &layer,
            &proof_headers(&client, BOUND_NO_TYPE, BOUND_NO_TYPE)
        )
        .await,
        Ok(())
    );
    let err = authenticate(
        &layer,
        &proof_headers(&client, BEARER_WITH_JKT, BEARER_WITH_JKT),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenInvalid, "{err:?}");
    assert!(err.description().contains("other than DPoP"), "{err}");
    // The DPoP-typed, bound phantom-token response is refused under Bearer (its cnf).
    let err = authenticate(&layer, &bearer_headers(OPAQUE))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenSenderConstrained, "{err:?}");
}

// ---------------------------------------------------------------------------------------
// JWT introspection responses (RFC 9701).
// ---------------------------------------------------------------------------------------

struct SigningAs {
    key: ClientKey,
    kid: Mutex<String>,
    other: ClientKey,
    jkt: String,
    introspections: AtomicUsize,
    jwks_fetches: AtomicUsize,
}

impl SigningAs {
    /// The response for `token`: the variant is chosen by the token's name.
    fn answer(&self, token: &str) -> Response {
        let now = unix_now();
        let kid = self.kid.lock().unwrap().clone();
        let mut header = json!({"alg": "ES256", "kid": kid, "typ": "token-introspection+jwt"});
        let mut inner = json!({
            "active": true, "iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
            "client_id": "web-client", "scope": "read", "exp": now + 300, "iat": now,
            "token_type": "DPoP", "cnf": {"jkt": self.jkt},
        });
        let mut claims = json!({"iss": ISSUER, "aud": CLIENT_ID, "iat": now});
        let mut key = &self.key;
        match token {
            t if t.starts_with("signed-ok") => {}
            "signed-by-another-key" => key = &self.other,
            "typ-at-jwt" => header["typ"] = json!("at+jwt"),
            "typ-missing" => {
                header.as_object_mut().unwrap().remove("typ");
            }
            "iss-other" => claims["iss"] = json!("https://evil.example.com"),
            "aud-other" => claims["aud"] = json!("another-resource-server"),
            "aud-token-audience" => claims["aud"] = json!(AUDIENCE),
            "iat-old" => claims["iat"] = json!(now - 3600),
            "iat-missing" => {
                claims.as_object_mut().unwrap().remove("iat");
            }
            "plain-json" => return axum::Json(inner).into_response(),
            "inner-inactive" => inner = json!({"active": false}),
            "inner-bearer-with-jkt" => inner["token_type"] = json!("Bearer"),
            "inner-other-audience" => inner["aud"] = json!("https://other-api.example.com"),
            // Genuine, but past the 64 KiB bound on a response body.
            "oversized" => inner["pad"] = json!("x".repeat(64 * 1024)),
            _ => inner = json!({"active": false}),
        }
        claims["token_introspection"] = inner;
        (
            [("content-type", "application/token-introspection+jwt")],
            jws(key, &header, &claims),
        )
            .into_response()
    }
}

async fn signed_introspect(
    State(state): State<Arc<SigningAs>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    state.introspections.fetch_add(1, Ordering::SeqCst);
    // RFC 9701 section 4: the resource server asks for the JWT response.
    if headers.get("accept").and_then(|v| v.to_str().ok())
        != Some("application/token-introspection+jwt")
    {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    }
    state.answer(&form_token(&body))
}

async fn signed_jwks(State(state): State<Arc<SigningAs>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let mut jwk = state.key.public_jwk().clone();
    jwk["kid"] = json!(*state.kid.lock().unwrap());
    jwk["use"] = json!("sig");
    axum::Json(json!({"keys": [jwk]})).into_response()
}

async fn signing_as(client: &ClientKey) -> (String, Arc<SigningAs>) {
    let state = Arc::new(SigningAs {
        key: ClientKey::generate(Algorithm::ES256),
        kid: Mutex::new("k1".to_owned()),
        other: ClientKey::generate(Algorithm::ES256),
        jkt: client.jkt().to_owned(),
        introspections: AtomicUsize::new(0),
        jwks_fetches: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/introspect", post(signed_introspect))
        .route("/jwks", get(signed_jwks))
        .with_state(state.clone());
    (serve(app).await, state)
}

fn signed_layer(base: &str) -> DpopLayer {
    signed_layer_with_clock(base, ManualClock::at_unix(unix_now()))
}

fn signed_layer_with_clock(base: &str, clock: ManualClock) -> DpopLayer {
    let validator = IntrospectionValidator::builder(format!("{base}/introspect"))
        .clock(clock)
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwt_response_issuer(ISSUER)
        .jwt_response_jwks_url(format!("{base}/jwks"))
        .allow_insecure_http(true)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    DpopLayer::builder()
        .public_origin(ORIGIN)
        .token_validator(validator)
        .build()
        .unwrap()
}

async fn signed_verdict(layer: &DpopLayer, client: &ClientKey, token: &str) -> Result<(), Error> {
    authenticate(layer, &proof_headers(client, token, token)).await
}

#[tokio::test]
async fn a_verified_jwt_response_is_read_as_the_introspection_response() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (base, state) = signing_as(&client).await;
    let app = Router::new()
        .route(
            "/api/me",
            get(|auth: DpopAuth| async move {
                axum::Json(json!({"sub": auth.claims["sub"], "jkt": auth.jkt.to_string()}))
            }),
        )
        .layer(signed_layer(&base));
    let api = serve(app).await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let resp = http
            .get(format!("{api}/api/me"))
            .header("host", "api.example.com")
            .headers(proof_headers(&client, "signed-ok", "signed-ok"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"sub": "alice", "jkt": client.jkt()}));
    }
    assert_eq!(state.introspections.load(Ordering::SeqCst), 1, "cached");
    assert_eq!(state.jwks_fetches.load(Ordering::SeqCst), 1);
}

/// A response that fails verification is not the authorization server speaking: 503, never
/// a pass and never a verdict on the token (which the refused-token cache would keep).
#[tokio::test]
async fn an_unverified_jwt_response_fails_closed() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (base, state) = signing_as(&client).await;
    let layer = signed_layer(&base);
    for token in [
        "signed-by-another-key",
        "typ-at-jwt",
        "typ-missing",
        "iss-other",
        "aud-other",
        "aud-token-audience",
        "iat-old",
        "iat-missing",
        "plain-json",
        "oversized",
    ] {
        let err = signed_verdict(&layer, &client, token).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{token}: {err:?}");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{token}");
    }
    // The same layer accepts the genuine response: the refusals above were the responses'.
    assert_eq!(signed_verdict(&layer, &client, "signed-ok").await, Ok(()));
    // 503s are not remembered: asking again asks the endpoint again.
    let before = state.introspections.load(Ordering::SeqCst);
    let _ = signed_verdict(&layer, &client, "iss-other").await;
    assert_eq!(state.introspections.load(Ordering::SeqCst), before + 1);
}

/// Inside a verified response, the RFC 7662 rules apply as to a plain one.
#[tokio::test]
async fn the_token_introspection_member_is_checked_like_a_plain_response() {
    let client = ClientKey::generate(Algorithm::ES256);
    let thief = ClientKey::generate(Algorithm::ES256);
    let (base, _) = signing_as(&client).await;
    let layer = signed_layer(&base);
    for (token, says) in [
        ("inner-inactive", "not active"),
        ("inner-bearer-with-jkt", "other than DPoP"),
        ("inner-other-audience", "audience"),
    ] {
        let err = signed_verdict(&layer, &client, token).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TokenInvalid, "{token}: {err:?}");
        assert!(err.description().contains(says), "{token}: {err}");
    }
    let err = signed_verdict(&layer, &thief, "signed-ok")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenKeyMismatch, "{err:?}");
}

/// A response signed with a key the validator has not seen yet (the authorization server
/// rotated its keys) makes the validator fetch the key set again, at most once per refresh
/// interval (30 s): before that it answers 503 without a fetch, after it the new key works.
#[tokio::test]
async fn a_rotated_response_signing_key_is_fetched_once_the_interval_allows() {
    let client = ClientKey::generate(Algorithm::ES256);
    let (base, state) = signing_as(&client).await;
    let clock = ManualClock::at_unix(unix_now());
    let layer = signed_layer_with_clock(&base, clock.clone());
    assert_eq!(signed_verdict(&layer, &client, "signed-ok-1").await, Ok(()));
    assert_eq!(state.jwks_fetches.load(Ordering::SeqCst), 1);
    // Same key material, new kid: only a fresh key set names it.
    *state.kid.lock().unwrap() = "k2".to_owned();
    let err = signed_verdict(&layer, &client, "signed-ok-2")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert_eq!(
        state.jwks_fetches.load(Ordering::SeqCst),
        1,
        "no fetch storm"
    );
    clock.advance(Duration::from_secs(31));
    assert_eq!(signed_verdict(&layer, &client, "signed-ok-3").await, Ok(()));
    assert_eq!(state.jwks_fetches.load(Ordering::SeqCst), 2);
}
