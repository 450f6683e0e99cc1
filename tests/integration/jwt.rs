//! The JWT validator with a key set given in code: the checks before the signature, the key
//! chosen by `kid` and `alg` (one signature check per token at most), the claim defaults
//! (`iss`, `aud`, `exp` required), and `validate_offline` agreeing with `validate`.

use serde_json::{json, Value};
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::token::jwt::{JwtValidator, JwtValidatorBuilder};

/// The validator's own bound on a token (the layer's `max_token_size` is at most this).
const MAX_TOKEN_LEN: usize = 64 * 1024;
use tower_dpop::token::{AccessToken, TokenError, TokenValidator};
use tower_dpop::Algorithm;

const ISS: &str = "https://as.example.com";
const AUD: &str = "https://api.example.com";

/// A compact JWS of this JOSE header and these claims, signed by `key` (its own algorithm).
fn signed(key: &ClientKey, header: Value, claims: Value) -> String {
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

/// Claims that pass every check of `builder()`.
fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "exp": unix_now() + 600, "cnf": {"jkt": "x"}})
}

fn header(alg: &str, kid: Option<&str>) -> Value {
    let mut h = json!({"typ": "at+jwt", "alg": alg});
    if let Some(kid) = kid {
        h["kid"] = json!(kid);
    }
    h
}

/// `key`'s public JWK with these extra members.
fn jwk(key: &ClientKey, extra: Value) -> Value {
    let mut jwk = key.public_jwk().clone();
    for (k, v) in extra.as_object().unwrap() {
        jwk[k] = v.clone();
    }
    jwk
}

fn set(keys: Vec<Value>) -> String {
    json!({ "keys": keys }).to_string()
}

fn builder(jwks: &str) -> JwtValidatorBuilder {
    JwtValidator::builder()
        .jwks_json(jwks)
        .issuer(ISS)
        .audience(AUD)
}

/// `validate` and `validate_offline` (which a static set always answers) agree; the answer.
async fn check(v: &JwtValidator, token: &str) -> Result<AccessToken, TokenError> {
    let offline = v
        .validate_offline(token)
        .expect("a static key set answers offline");
    let online = v.validate(token).await;
    assert_eq!(offline, online, "validate_offline and validate disagree");
    online
}

fn invalid(reason: &str) -> Result<AccessToken, TokenError> {
    Err(TokenError::Invalid(reason.to_owned().into()))
}

fn reason(r: Result<AccessToken, TokenError>) -> String {
    match r {
        Err(TokenError::Invalid(r)) => r.into_owned(),
        other => panic!("not refused as invalid: {other:?}"),
    }
}

#[tokio::test]
async fn tokens_signed_with_every_supported_algorithm_validate() {
    for &alg in Algorithm::ALL {
        let key = ClientKey::generate(alg);
        let name = alg.as_str();
        let jwks = set(vec![jwk(&key, json!({"kid": "k1", "alg": name}))]);
        let v = builder(&jwks).build().unwrap();
        let token = signed(&key, header(name, Some("k1")), claims());
        let access = check(&v, &token)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(access.subject(), Some("alice"), "{alg}");
        // One byte of the signature changed: refused.
        let mut tampered = token.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(check(&v, &tampered).await.is_err(), "{alg}");
    }
}

#[tokio::test]
async fn the_validator_bounds_token_size_and_form_itself() {
    let issuer = TestIssuer::new();
    let v = issuer.validator();
    let too_large = "A".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(
        check(&v, &too_large).await,
        invalid("access token is too large")
    );
    let fits = "A".repeat(MAX_TOKEN_LEN);
    assert_eq!(
        check(&v, &fits).await,
        invalid("access token is not a signed JWT")
    );
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
            check(&v, &bad).await,
            invalid("access token is not a signed JWT"),
            "{bad}"
        );
    }
    assert!(check(&v, &real).await.is_ok());
}

#[tokio::test]
async fn header_rules_typ_crit_and_alg() {
    let key = ClientKey::generate(Algorithm::ES256);
    let jwks = set(vec![jwk(&key, json!({"kid": "k1"}))]);
    let lax = builder(&jwks).build().unwrap();
    let strict = builder(&jwks).require_at_jwt_typ(true).build().unwrap();
    let strict_only =
        "access token typ is not at+jwt (RFC 9068 section 2.1), which this validator requires";
    let okta_org = "access token typ is application/okta-internal-at+jwt: a token of an Okta org \
                    authorization server, which Okta does not support validating outside Okta; \
                    use a custom authorization server";
    let proof = "access token typ is dpop+jwt: a DPoP proof, not an access token";
    let other = "access token typ is neither at+jwt nor JWT: the JWT is not an access token";
    // (typ, refusal by the default validator, refusal by the strict one)
    for (typ, lax_says, strict_says) in [
        (Some("at+jwt"), None, None),
        (Some("application/at+JWT"), None, None),
        (Some("AT+JWT"), None, None),
        (Some("JWT"), None, Some(strict_only)),
        (Some("application/jwt"), None, Some(strict_only)),
        (None, None, Some(strict_only)),
        (
            Some("application/okta-internal-at+jwt"),
            Some(okta_org),
            Some(okta_org),
        ),
        (Some("okta-internal-at+jwt"), Some(okta_org), Some(okta_org)),
        (Some("dpop+jwt"), Some(proof), Some(proof)),
        (Some("logout+jwt"), Some(other), Some(other)),
        (Some("application/"), Some(other), Some(other)),
        (Some(""), Some(other), Some(other)),
    ] {
        let mut h = json!({"alg": "ES256", "kid": "k1"});
        if let Some(typ) = typ {
            h["typ"] = json!(typ);
        }
        let token = signed(&key, h, claims());
        for (v, says) in [(&lax, lax_says), (&strict, strict_says)] {
            let got = check(v, &token).await;
            match says {
                None => assert!(got.is_ok(), "{typ:?}: {got:?}"),
                Some(says) => assert_eq!(got, invalid(says), "{typ:?}"),
            }
        }
    }
    let crit = signed(
        &key,
        json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}),
        claims(),
    );
    assert_eq!(
        check(&lax, &crit).await,
        invalid("access token has unsupported crit")
    );
    let repeated = {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let token = signed(&key, header("ES256", Some("k1")), claims());
        let (_, rest) = token.split_once('.').unwrap();
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","alg":"none","kid":"k1"}"#);
        format!("{h}.{rest}")
    };
    assert_eq!(
        check(&lax, &repeated).await,
        invalid("access token header is malformed")
    );

    // The algorithm allow-list is a list of `Algorithm`s; `none` and HMAC cannot be named.
    for alg in ["none", "HS256", "XX1", "es256"] {
        let token = signed(&key, header(alg, Some("k1")), claims());
        assert_eq!(
            check(&lax, &token).await,
            invalid("access token alg is not accepted"),
            "{alg}"
        );
    }
    let rsa_only = builder(&jwks)
        .algorithms([Algorithm::RS256, Algorithm::PS256])
        .build();
    assert!(
        rsa_only.is_err(),
        "no key of the set is usable with these algorithms"
    );
    let with_rsa = set(vec![
        jwk(&key, json!({"kid": "k1"})),
        jwk(&ClientKey::generate(Algorithm::RS256), json!({"kid": "r"})),
    ]);
    let rsa_only = builder(&with_rsa)
        .algorithms([Algorithm::RS256, Algorithm::PS256])
        .build()
        .unwrap();
    let es = signed(&key, header("ES256", Some("k1")), claims());
    assert_eq!(
        check(&rsa_only, &es).await,
        invalid("access token alg is not accepted")
    );
    assert!(builder(&jwks).algorithms([]).build().is_err());
}

/// A key is chosen by `kid` and `alg`: the key's own `alg` must be the token's, the key type
/// must fit the token's `alg`.
#[tokio::test]
async fn the_key_is_chosen_by_kid_and_alg() {
    let rsa = ClientKey::generate(Algorithm::PS256);
    let es = ClientKey::generate(Algorithm::ES256);
    let jwks = set(vec![
        jwk(&rsa, json!({"kid": "rsa", "alg": "PS256"})),
        jwk(&es, json!({"kid": "es"})),
    ]);
    let v = builder(&jwks).build().unwrap();
    assert!(
        check(&v, &signed(&rsa, header("PS256", Some("rsa")), claims()))
            .await
            .is_ok()
    );
    assert!(
        check(&v, &signed(&es, header("ES256", Some("es")), claims()))
            .await
            .is_ok()
    );
    let misfit = "access token alg does not fit the key its kid names";
    // The PS256 key signing RS256 (a valid RS256 signature by that very key): refused.
    let rs = ClientKey::generate(Algorithm::RS256);
    let rs_jwks = set(vec![jwk(&rs, json!({"kid": "rs", "alg": "PS256"}))]);
    let rs_v = builder(&rs_jwks).build().unwrap();
    let rs_token = signed(&rs, header("RS256", Some("rs")), claims());
    assert_eq!(check(&rs_v, &rs_token).await, invalid(misfit));
    // The EC key named with an RSA alg.
    let token = signed(&rsa, header("PS256", Some("es")), claims());
    assert_eq!(check(&v, &token).await, invalid(misfit));
    // An unknown kid.
    let token = signed(&es, header("ES256", Some("nope")), claims());
    assert_eq!(
        check(&v, &token).await,
        invalid("access token signature is invalid or its key is unknown")
    );
}

/// A token without `kid` costs at most one signature check too: it is verified only when one
/// key of the set fits its `alg`, never tried against each key.
#[tokio::test]
async fn a_token_without_kid_is_verified_only_when_one_key_fits() {
    let keys: Vec<ClientKey> = (0..3)
        .map(|_| ClientKey::generate(Algorithm::ES256))
        .collect();
    let jwks = set(keys
        .iter()
        .enumerate()
        .map(|(i, k)| jwk(k, json!({"kid": i.to_string()})))
        .collect());
    let v = builder(&jwks).build().unwrap();
    // Signed by the second key, which a try-each-key loop would find.
    let token = signed(&keys[1], header("ES256", None), claims());
    let why = reason(check(&v, &token).await);
    assert!(
        why.contains("no kid") && why.contains("several keys"),
        "{why}"
    );
    assert!(
        check(&v, &signed(&keys[1], header("ES256", Some("1")), claims()))
            .await
            .is_ok()
    );

    // One EC key beside an RSA key: the EC key is the only one that fits ES256.
    let rsa = ClientKey::generate(Algorithm::RS256);
    let jwks = set(vec![jwk(&rsa, json!({})), jwk(&keys[0], json!({}))]);
    let v = builder(&jwks).build().unwrap();
    assert!(
        check(&v, &signed(&keys[0], header("ES256", None), claims()))
            .await
            .is_ok()
    );
    assert!(check(&v, &signed(&rsa, header("RS256", None), claims()))
        .await
        .is_ok());
    assert!(
        check(&v, &signed(&keys[1], header("ES256", None), claims()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn keys_that_cannot_sign_tokens_are_skipped() {
    let es = ClientKey::generate(Algorithm::ES256);
    let enc = ClientKey::generate(Algorithm::ES256);
    let jwks = set(vec![
        jwk(&enc, json!({"kid": "enc", "use": "enc"})),
        jwk(
            &es,
            json!({"kid": "sig", "use": "sig", "x5t#S256": "abc", "key_ops": ["verify"]}),
        ),
    ]);
    let v = builder(&jwks).build().unwrap();
    assert!(
        check(&v, &signed(&es, header("ES256", Some("sig")), claims()))
            .await
            .is_ok()
    );
    assert!(
        check(&v, &signed(&enc, header("ES256", Some("enc")), claims()))
            .await
            .is_err()
    );
    // A set with no usable key is a configuration error.
    let err = builder(&set(vec![jwk(&enc, json!({"use": "enc"}))]))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no key usable"), "{err}");
    assert!(builder("{").build().is_err());
    assert!(JwtValidator::builder()
        .issuer(ISS)
        .audience(AUD)
        .build()
        .is_err());
}

#[tokio::test]
async fn exp_is_required_unless_allowed_absent() {
    let key = ClientKey::generate(Algorithm::ES256);
    let jwks = set(vec![jwk(&key, json!({"kid": "k1"}))]);
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    let token = signed(&key, header("ES256", Some("k1")), no_exp);
    let v = builder(&jwks).build().unwrap();
    assert_eq!(check(&v, &token).await, invalid("access token has no exp"));
    let lax = builder(&jwks).allow_tokens_without_exp().build().unwrap();
    let access = check(&lax, &token).await.unwrap();
    assert_eq!(access.expires_at(), None);
}

#[tokio::test]
async fn issuer_and_audience_are_required_in_the_configuration() {
    let jwks = TestIssuer::new().jwks_json();
    let message = |b: JwtValidatorBuilder| b.build().unwrap_err().to_string();
    let no_iss = message(JwtValidator::builder().jwks_json(&jwks).audience(AUD));
    assert!(
        no_iss.contains("no issuer") && no_iss.contains("any_issuer()"),
        "{no_iss}"
    );
    let no_aud = message(JwtValidator::builder().jwks_json(&jwks).issuer(ISS));
    assert!(
        no_aud.contains("no audience") && no_aud.contains("any_audience()"),
        "{no_aud}"
    );
    let both = message(builder(&jwks).any_audience());
    assert!(both.contains("audience(..) and any_audience()"), "{both}");
    let both = message(builder(&jwks).any_issuer());
    assert!(both.contains("issuer(..) and any_issuer()"), "{both}");
    assert!(JwtValidator::builder()
        .jwks_json(&jwks)
        .any_issuer()
        .any_audience()
        .build()
        .is_ok());
}

/// Several issuers and audiences, each call adding one; `iss` compared exactly; `aud` a
/// string or an array, accepted when any of its values is configured.
#[tokio::test]
async fn several_issuers_and_audiences_and_exact_comparison() {
    let key = ClientKey::generate(Algorithm::ES256);
    let jwks = set(vec![jwk(&key, json!({"kid": "k1"}))]);
    let v = builder(&jwks)
        .issuer("https://as2.example.com")
        .audience("https://api2.example.com")
        .build()
        .unwrap();
    let with = |k: &str, val: Value| {
        let mut c = claims();
        c[k] = val;
        signed(&key, header("ES256", Some("k1")), c)
    };
    let iss_refused = "access token issuer is not accepted";
    let aud_refused = "access token audience is not accepted";
    let cases = [
        ("first issuer", with("iss", json!(ISS)), None),
        (
            "second issuer",
            with("iss", json!("https://as2.example.com")),
            None,
        ),
        (
            "trailing slash",
            with("iss", json!("https://as.example.com/")),
            Some(iss_refused),
        ),
        (
            "other case",
            with("iss", json!("https://AS.example.com")),
            Some(iss_refused),
        ),
        (
            "iss not a string",
            with("iss", json!(["https://as.example.com"])),
            Some(iss_refused),
        ),
        (
            "second audience",
            with("aud", json!("https://api2.example.com")),
            None,
        ),
        (
            "aud array",
            with("aud", json!(["x", "https://api2.example.com"])),
            None,
        ),
        (
            "aud array without ours",
            with("aud", json!(["x", "y"])),
            Some(aud_refused),
        ),
        ("empty aud array", with("aud", json!([])), Some(aud_refused)),
        ("aud a number", with("aud", json!(7)), Some(aud_refused)),
    ];
    for (name, token, refused) in cases {
        let got = check(&v, &token).await;
        match refused {
            None => assert!(got.is_ok(), "{name}: {got:?}"),
            Some(r) => assert_eq!(got, invalid(r), "{name}"),
        }
    }
    let mut no_iss = claims();
    no_iss.as_object_mut().unwrap().remove("iss");
    let token = signed(&key, header("ES256", Some("k1")), no_iss);
    assert_eq!(check(&v, &token).await, invalid(iss_refused));
    let any = JwtValidator::builder()
        .jwks_json(&jwks)
        .any_issuer()
        .any_audience()
        .build()
        .unwrap();
    assert!(check(&any, &token).await.is_ok());
}

/// The claims are checked before the key and the signature: a token with a wrong audience and
/// a made-up signature is refused for its audience.
#[tokio::test]
async fn claims_are_checked_before_the_signature() {
    let key = ClientKey::generate(Algorithm::ES256);
    let jwks = set(vec![jwk(&key, json!({"kid": "k1"}))]);
    let v = builder(&jwks).build().unwrap();
    let mut c = claims();
    c["aud"] = json!("https://other.example.com");
    let token = signed(&key, header("ES256", Some("unknown")), c);
    let (input, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{input}.AAAA");
    assert_eq!(
        check(&v, &forged).await,
        invalid("access token audience is not accepted")
    );
}
