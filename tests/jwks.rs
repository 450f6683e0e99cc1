//! The JWT validator's remote key set, served over HTTP on 127.0.0.1: fetched once, refreshed
//! when a token names an unknown `kid` at most once per interval, failing closed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tower_dpop::testing::{unix_now, TestIssuer};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::token::{TokenError, TokenValidator};

struct Jwks {
    body: Arc<RwLock<String>>,
    fetches: Arc<AtomicUsize>,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

async fn serve(initial: String) -> Jwks {
    let body = Arc::new(RwLock::new(initial));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (b, f) = (body.clone(), fetches.clone());
    let app = Router::new().route(
        "/jwks",
        get(move || {
            f.fetch_add(1, Ordering::SeqCst);
            let json = b.read().unwrap().clone();
            async move { json }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Jwks {
        body,
        fetches,
        url,
        task,
    }
}

fn token(issuer: &TestIssuer) -> String {
    issuer.token_for(
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        unix_now() + 600,
    )
}

#[tokio::test]
async fn unknown_kid_refreshes_at_most_once_per_interval() {
    let old = TestIssuer::new();
    let new = TestIssuer::new();
    let unknown = TestIssuer::new();
    let jwks = serve(old.jwks_json()).await;
    let validator = JwtValidator::builder()
        .jwks_url(&jwks.url)
        .jwks_refresh_interval(Duration::from_millis(600))
        .build()
        .unwrap();

    // First use fetches; later tokens with the same kid don't.
    for _ in 0..3 {
        validator.validate(&token(&old)).await.unwrap();
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);

    // The authorization server rotates: a token with the new kid triggers one refresh.
    *jwks.body.write().unwrap() = new.jwks_json();
    tokio::time::sleep(Duration::from_millis(700)).await;
    validator.validate(&token(&new)).await.unwrap();
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);

    // Tokens with kids nobody publishes cannot make it fetch again within the interval.
    for _ in 0..5 {
        let err = validator.validate(&token(&unknown)).await.unwrap_err();
        assert!(matches!(err, TokenError::Invalid(_)), "{err:?}");
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
    // After the interval, one more fetch is allowed.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(validator.validate(&token(&unknown)).await.is_err());
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 3);
    // A known kid never refetches, even when the interval would allow it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    validator.validate(&token(&new)).await.unwrap();
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 3);
    jwks.task.abort();
}

#[tokio::test]
async fn the_validator_bounds_token_size_itself() {
    let issuer = TestIssuer::new();
    let validator = issuer.validator();
    let too_large = "A".repeat(tower_dpop::token::jwt::MAX_TOKEN_LEN + 1);
    assert_eq!(
        validator.validate(&too_large).await.unwrap_err(),
        TokenError::invalid("access token is too large")
    );
    let fits = "A".repeat(tower_dpop::token::jwt::MAX_TOKEN_LEN);
    assert_eq!(
        validator.validate(&fits).await.unwrap_err(),
        TokenError::invalid("access token is not a signed JWT")
    );
    assert_eq!(tower_dpop::token::jwt::MAX_TOKEN_LEN, 16 * 1024);
    // Three non-empty parts, or it is not a JWS (whatever the parts would decode to).
    let real = issuer.token_for("x", unix_now() + 600);
    let parts: Vec<&str> = real.split('.').collect();
    for bad in [
        format!(".{}.{}", parts[1], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}", parts[0], parts[1]),
        format!("{real}.{}", parts[2]),
    ] {
        assert_eq!(
            validator.validate(&bad).await.unwrap_err(),
            TokenError::invalid("access token is not a signed JWT"),
            "{bad}"
        );
    }
    assert!(validator.validate(&real).await.is_ok());
}

#[tokio::test]
async fn failed_refresh_keeps_the_old_keys_and_no_keys_fails_closed() {
    let issuer = TestIssuer::new();
    let jwks = serve(issuer.jwks_json()).await;
    let validator = JwtValidator::builder().jwks_url(&jwks.url).build().unwrap();
    validator.validate(&token(&issuer)).await.unwrap();
    // The server now serves garbage: known kids keep working from the cached keys.
    *jwks.body.write().unwrap() = "not json".into();
    validator.validate(&token(&issuer)).await.unwrap();

    // A validator that never got keys answers "unavailable" (503), never "valid".
    let fresh = JwtValidator::builder()
        .jwks_url(&jwks.url)
        .jwks_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let err = fresh.validate(&token(&issuer)).await.unwrap_err();
    assert!(matches!(err, TokenError::Unavailable(_)), "{err:?}");
    jwks.task.abort();
}

/// An access token signed with `alg` by `key`, and the JWKS that publishes `key` as `kid` `k1`.
fn token_and_jwks(
    alg: tower_dpop::Algorithm,
    key: &tower_dpop::testing::ClientKey,
) -> (String, String) {
    let name = if alg == tower_dpop::Algorithm::Ed25519 {
        "EdDSA"
    } else {
        alg.as_str()
    };
    let header = serde_json::json!({"typ": "at+jwt", "alg": name, "kid": "k1"});
    let claims = serde_json::json!({"sub": "alice", "exp": unix_now() + 600, "cnf": {"jkt": "x"}});
    let mut jwk = key.public_jwk().clone();
    jwk["kid"] = serde_json::json!("k1");
    jwk["alg"] = serde_json::json!(name);
    (
        signed(key, header, claims),
        serde_json::json!({"keys": [jwk]}).to_string(),
    )
}

#[tokio::test]
async fn tokens_signed_with_every_supported_algorithm_validate() {
    use tower_dpop::Algorithm::*;
    for alg in [
        RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA,
    ] {
        let key = tower_dpop::testing::ClientKey::generate(alg);
        let (token, jwks) = token_and_jwks(alg, &key);
        let validator = JwtValidator::builder().jwks_json(&jwks).build().unwrap();
        let access = validator
            .validate(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(access.subject(), Some("alice"), "{alg}");
        // The same token with one byte of its signature changed is refused.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(validator.validate(&tampered).await.is_err(), "{alg}");
    }
}

/// A compact JWS of this JOSE header and these claims, signed by `key` (with its own algorithm).
fn signed(
    key: &tower_dpop::testing::ClientKey,
    header: serde_json::Value,
    claims: serde_json::Value,
) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(key.sign_raw(input.as_bytes()))
    )
}

#[tokio::test]
async fn typ_audience_and_key_set_forms() {
    use serde_json::json;
    let key = tower_dpop::testing::ClientKey::generate(tower_dpop::Algorithm::ES256);
    let (_, jwks) = token_and_jwks(tower_dpop::Algorithm::ES256, &key);
    let claims = json!({"sub": "alice", "aud": "https://api.example.com"});
    let lax = JwtValidator::builder().jwks_json(&jwks).build().unwrap();
    let strict = JwtValidator::builder()
        .jwks_json(&jwks)
        .require_at_jwt_typ(true)
        .build()
        .unwrap();
    let typ_error = TokenError::invalid("access token typ is not at+jwt");
    for (typ, lax_ok, strict_ok) in [
        (Some("at+jwt"), true, true),
        (Some("application/at+JWT"), true, true),
        (Some("JWT"), true, false),
        (None, true, false),
        (Some("dpop+jwt"), false, false),
    ] {
        let mut header = json!({"alg": "ES256", "kid": "k1"});
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        let token = signed(&key, header, claims.clone());
        for (validator, ok) in [(&lax, lax_ok), (&strict, strict_ok)] {
            let got = validator.validate(&token).await;
            if ok {
                assert!(got.is_ok(), "{typ:?}: {got:?}");
            } else {
                assert_eq!(got.unwrap_err(), typ_error, "{typ:?}");
            }
        }
    }

    // An `aud` array must contain the audience; other members do not count.
    let with_aud = JwtValidator::builder()
        .jwks_json(&jwks)
        .audience("https://api.example.com")
        .build()
        .unwrap();
    let header = json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"});
    for (aud, ok) in [
        (json!(["x", "https://api.example.com"]), true),
        (json!(["x", "y"]), false),
        (json!([]), false),
        (json!(7), false),
    ] {
        let token = signed(&key, header.clone(), json!({"aud": aud}));
        assert_eq!(with_aud.validate(&token).await.is_ok(), ok, "{aud}");
    }

    // The key set can be given parsed as well as as JSON.
    let set = josekit::jwk::JwkSet::from_bytes(jwks.as_bytes()).unwrap();
    let parsed = JwtValidator::builder().jwks(set).build().unwrap();
    let token = signed(&key, header, claims);
    assert!(parsed.validate(&token).await.is_ok());
}

#[tokio::test]
async fn algorithm_allow_list_and_key_set_max_age() {
    let issuer = TestIssuer::new(); // signs ES256
    let rsa_only = JwtValidator::builder()
        .jwks_json(&issuer.jwks_json())
        .algorithms(["RS256", "PS256"])
        .build()
        .unwrap();
    assert_eq!(
        rsa_only.validate(&token(&issuer)).await.unwrap_err(),
        TokenError::invalid("access token alg is not accepted")
    );
    let es = JwtValidator::builder()
        .jwks_json(&issuer.jwks_json())
        .algorithms(["ES256"])
        .build()
        .unwrap();
    assert!(es.validate(&token(&issuer)).await.is_ok());
    for bad in [vec![], vec!["HS256"], vec!["none"], vec!["XX1"]] {
        assert!(
            JwtValidator::builder()
                .jwks_json(&issuer.jwks_json())
                .algorithms(bad.clone())
                .build()
                .is_err(),
            "{bad:?}"
        );
    }

    // The key set is fetched again once it is older than jwks_max_age, even for a known kid.
    let jwks = serve(issuer.jwks_json()).await;
    let validator = JwtValidator::builder()
        .jwks_url(&jwks.url)
        .jwks_max_age(Duration::from_millis(300))
        .build()
        .unwrap();
    validator.validate(&token(&issuer)).await.unwrap();
    validator.validate(&token(&issuer)).await.unwrap();
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    validator.validate(&token(&issuer)).await.unwrap();
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
    jwks.task.abort();
}
