//! RFC 9449 §6.1 and §7.1, RFC 9068: the access token: its size bound, its own checks, its
//! validity, and its binding to the proof key; a validator that cannot answer fails closed.

use super::*;

#[tokio::test]
async fn token_must_be_bound_to_the_proof_key() {
    let f = Fixture::new();
    let thief = ClientKey::generate(Algorithm::ES256);
    let stolen = || {
        thief
            .proof("GET", URL)
            .access_token(&f.token)
            .iat(T0)
            .sign()
    };
    assert_eq!(
        f.get(&stolen()).await,
        Err(Error::new(
            ErrorKind::TokenKeyMismatch,
            "Invalid DPoP key binding"
        ))
    );
    // Still refused once the layer knows the thief's key (cached after a valid request with
    // the thief's own token): a cached key skips parsing, never the binding.
    let own_token = f.issuer.token_for(thief.jkt(), T0 + 3600);
    let own = thief
        .proof("GET", URL)
        .access_token(&own_token)
        .iat(T0)
        .sign();
    assert_eq!(
        f.send(Method::GET, "/api/me", &own_token, &own).await,
        Ok(())
    );
    assert_eq!(
        f.get(&stolen()).await,
        Err(Error::new(
            ErrorKind::TokenKeyMismatch,
            "Invalid DPoP key binding"
        ))
    );
}

/// Once the owner's key is remembered with the token (a proof verified), a thief's proof is
/// still refused: with the thief's own header it is not bound, with the owner's header the
/// signature does not verify; and the owner still gets in.
#[tokio::test]
async fn a_token_remembering_its_key_still_refuses_other_keys() {
    let f = Fixture::new();
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    let thief = ClientKey::generate(Algorithm::ES256);
    let own = thief.proof("GET", URL).access_token(&f.token).iat(T0);
    assert_eq!(
        f.get(&own.sign()).await,
        Err(Error::new(
            ErrorKind::TokenKeyMismatch,
            "Invalid DPoP key binding"
        ))
    );
    assert_eq!(
        f.get(&f.forged_by(&thief)).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
}

#[tokio::test]
async fn token_without_cnf_jkt_is_refused_under_dpop() {
    let f = Fixture::new();
    let unbound = f.issuer.mint(&json!({"iss": f.issuer.issuer(), "aud": "https://api.example.com", "sub": "bob", "exp": T0 + 60}));
    let proof = f
        .client
        .proof("GET", URL)
        .access_token(&unbound)
        .iat(T0)
        .sign();
    assert_eq!(
        f.send(Method::GET, "/api/me", &unbound, &proof).await,
        Err(Error::new(
            ErrorKind::TokenNotBound,
            "access token is not DPoP-bound (no cnf.jkt)"
        ))
    );
}

#[tokio::test]
async fn token_validity() {
    let f = Fixture::new();
    let mint = |claims: serde_json::Value| f.issuer.mint(&claims);
    let base = json!({"iss": f.issuer.issuer(), "aud": "https://api.example.com", "sub": "a", "cnf": {"jkt": f.client.jkt()}, "exp": T0 + 60});
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        mint(c)
    };
    let cases = [
        (
            "expired",
            with("exp", json!(T0)),
            "access token has expired",
        ),
        (
            "not yet valid",
            with("nbf", json!(T0 + 10)),
            "access token is not yet valid",
        ),
        (
            "other issuer",
            with("iss", json!("https://evil.example.com")),
            "access token issuer is not accepted",
        ),
        (
            "other audience",
            with("aud", json!("https://other.example.com")),
            "access token audience is not accepted",
        ),
        (
            "signed by another issuer",
            TestIssuer::new().mint(&base),
            "access token signature is invalid or its key is unknown",
        ),
        (
            "not a JWT",
            "opaque-token".to_owned(),
            "access token is not a signed JWT",
        ),
    ];
    for (name, token, reason) in cases {
        let proof = f
            .client
            .proof("GET", URL)
            .access_token(&token)
            .iat(T0)
            .sign();
        assert_eq!(
            f.send(Method::GET, "/api/me", &token, &proof).await,
            Err(Error::new(token_kind(reason), reason)),
            "{name}"
        );
    }
    // The boundaries: valid from `nbf` on, and until the second before `exp` (no leeway by
    // default).
    for (name, token) in [
        ("nbf now", with("nbf", json!(T0))),
        ("exp next second", with("exp", json!(T0 + 1))),
    ] {
        let proof = f
            .client
            .proof("GET", URL)
            .access_token(&token)
            .iat(T0)
            .sign();
        assert_eq!(
            f.send(Method::GET, "/api/me", &token, &proof).await,
            Ok(()),
            "{name}"
        );
    }
    // aud may be an array that contains the audience.
    let arr = with("aud", json!(["x", "https://api.example.com"]));
    let proof = f.client.proof("GET", URL).access_token(&arr).iat(T0).sign();
    assert_eq!(f.send(Method::GET, "/api/me", &arr, &proof).await, Ok(()));
}

#[tokio::test]
async fn token_with_unsigned_or_mac_alg_is_refused() {
    let f = Fixture::new();
    let claims = json!({"iss": f.issuer.issuer(), "aud": "https://api.example.com", "cnf": {"jkt": f.client.jkt()}, "exp": T0 + 60});
    for alg in ["none", "HS256"] {
        let token = format!(
            "{}.{}.c2ln",
            b64(json!({"alg": alg, "typ": "at+jwt"})),
            b64(claims.clone())
        );
        let proof = f
            .client
            .proof("GET", URL)
            .access_token(&token)
            .iat(T0)
            .sign();
        assert_eq!(
            f.send(Method::GET, "/api/me", &token, &proof).await,
            Err(Error::new(
                ErrorKind::TokenInvalid,
                "access token alg is not accepted"
            )),
            "{alg}"
        );
    }
}

/// Counts validations, to show a token is validated once, not per request.
#[derive(Debug)]
struct Counting<V> {
    inner: V,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl<V: TokenValidator> TokenValidator for Counting<V> {
    async fn validate(&self, token: &str) -> Result<AccessToken, TokenError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.validate(token).await
    }
}

#[tokio::test]
async fn token_is_validated_once_and_expires_from_the_cache() {
    let calls = Arc::new(AtomicUsize::new(0));
    let issuer = TestIssuer::new();
    let f = {
        let counting = Counting {
            inner: validator(&issuer),
            calls: calls.clone(),
        };
        let client = ClientKey::generate(Algorithm::ES256);
        let token = issuer.token_for(client.jkt(), T0 + 30);
        let clock = ManualClock::at_unix(T0);
        let layer = DpopLayer::builder()
            .public_origin(ORIGIN)
            .token_validator(counting)
            .clock(clock.clone())
            .build()
            .unwrap();
        Fixture {
            issuer,
            client,
            token,
            clock,
            layer,
        }
    };
    for _ in 0..5 {
        assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Past `exp` the cached token is refused, whatever the cache holds.
    f.clock.advance(Duration::from_secs(30));
    let late = f.proof().iat(T0 + 30).sign();
    assert_eq!(
        f.get(&late).await,
        Err(Error::new(
            ErrorKind::TokenExpired,
            "access token has expired"
        ))
    );
    // A refused token is remembered for `refused_token_cache_ttl` (5 s): sent again in that
    // time it is refused without asking the validator; after it, the validator is asked again.
    let bad = "a.b.c";
    let f = &f;
    let send_bad = |iat: u64| {
        let proof = f.client.proof("GET", URL).access_token(bad).iat(iat).sign();
        async move { f.send(Method::GET, "/api/me", bad, &proof).await }
    };
    for _ in 0..3 {
        assert!(send_bad(T0 + 30).await.unwrap_err().kind() == ErrorKind::TokenInvalid);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    f.clock.advance(Duration::from_millis(4_999));
    assert!(send_bad(T0 + 34).await.unwrap_err().kind() == ErrorKind::TokenInvalid);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    f.clock.advance(Duration::from_millis(1));
    assert!(send_bad(T0 + 35).await.unwrap_err().kind() == ErrorKind::TokenInvalid);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[derive(Debug)]
struct Unavailable;

#[async_trait]
impl TokenValidator for Unavailable {
    async fn validate(&self, _: &str) -> Result<AccessToken, TokenError> {
        Err(TokenError::unavailable("authorization server down"))
    }
}

#[tokio::test]
async fn token_validator_that_cannot_answer_fails_closed() {
    let f = Fixture::with(Algorithm::ES256, |b| b.token_validator(Unavailable));
    assert_eq!(
        f.get(&f.proof().sign()).await,
        Err(Error::new(
            ErrorKind::Unavailable,
            "access token validation is unavailable"
        ))
    );
}

#[tokio::test]
async fn token_size_is_checked_before_anything_reads_it() {
    let f = Fixture::with(Algorithm::ES256, |b| b.max_token_size(1024));
    let huge = "A".repeat(1024 + 17);
    assert_eq!(
        f.send(Method::GET, "/api/me", &huge, &f.proof().sign())
            .await,
        Err(Error::new(
            ErrorKind::TokenTooLarge,
            "access token is too large"
        ))
    );
    // Within the limit (the header may be 16 bytes longer than the token limit, for the scheme
    // and spaces), the token reaches validation (and fails there as a non-JWT).
    let fits = "A".repeat(1024 + 16 - "DPoP ".len());
    let proof = f
        .client
        .proof("GET", URL)
        .access_token(&fits)
        .iat(T0)
        .sign();
    assert_eq!(
        f.send(Method::GET, "/api/me", &fits, &proof).await,
        Err(Error::new(
            ErrorKind::TokenInvalid,
            "access token is not a signed JWT"
        ))
    );
}

#[tokio::test]
async fn access_token_typ_and_crit_are_checked() {
    let f = Fixture::new();
    let claims = json!({"iss": f.issuer.issuer(), "aud": "https://api.example.com", "cnf": {"jkt": f.client.jkt()}, "exp": T0 + 60});
    let cases = [
        (
            json!({"alg": "ES256", "typ": "dpop+jwt"}),
            "access token typ is dpop+jwt: a DPoP proof, not an access token",
        ),
        (
            json!({"alg": "ES256", "typ": "application/okta-internal-at+jwt"}),
            "access token typ is application/okta-internal-at+jwt: a token of an Okta org \
             authorization server, which Okta does not support validating outside Okta; use a \
             custom authorization server",
        ),
        (
            json!({"alg": "ES256", "typ": "at+jwt", "crit": ["exp"]}),
            "access token has unsupported crit",
        ),
    ];
    for (header, reason) in cases {
        let token = format!("{}.{}.c2ln", b64(header.clone()), b64(claims.clone()));
        let proof = f
            .client
            .proof("GET", URL)
            .access_token(&token)
            .iat(T0)
            .sign();
        assert_eq!(
            f.send(Method::GET, "/api/me", &token, &proof).await,
            Err(Error::new(token_kind(reason), reason)),
            "{header}"
        );
    }
}
