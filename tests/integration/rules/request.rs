//! RFC 9449 §4.3 steps 7–12: the proof's claims against the request: `htm`, `htu`
//! (public origin and path, never the `Host` header), `iat` in the window, `ath`.

use super::*;

#[tokio::test]
async fn htm_must_equal_the_method_exactly() {
    let f = Fixture::new();
    let lower = f
        .client
        .proof("get", URL)
        .access_token(&f.token)
        .iat(T0)
        .sign();
    assert_eq!(
        f.get(&lower).await,
        proof_err(
            ErrorKind::ProofMethod,
            "htm does not match the request method"
        )
    );
    let post = f
        .client
        .proof("POST", URL)
        .access_token(&f.token)
        .iat(T0)
        .sign();
    assert_eq!(
        f.get(&post).await,
        proof_err(
            ErrorKind::ProofMethod,
            "htm does not match the request method"
        )
    );
    let post_ok = f
        .client
        .proof("POST", URL)
        .access_token(&f.token)
        .iat(T0)
        .sign();
    assert_eq!(
        f.send(Method::POST, "/api/me", &f.token, &post_ok).await,
        Ok(())
    );
}

#[tokio::test]
async fn htu_must_match_the_public_origin_and_path() {
    let f = Fixture::new();
    let with = |htu: &str| {
        f.client
            .proof("GET", htu)
            .access_token(&f.token)
            .iat(T0)
            .sign()
    };
    let accepted = [
        "https://api.example.com/api/me",
        "HTTPS://API.EXAMPLE.COM/api/me",
        "https://api.example.com:443/api/me",
        "https://api.example.com/api/me?x=1",
        "https://api.example.com/api/me#frag",
        "https://api.example.com/api/%6De",
    ];
    for htu in accepted {
        assert_eq!(f.get(&with(htu)).await, Ok(()), "{htu}");
    }
    let rejected = [
        "https://api.example.com/api/you",
        "https://api.example.com/API/me",
        "https://api.example.com/api/me/",
        "http://api.example.com/api/me",
        "https://api.example.com:8443/api/me",
        "https://evil.example.com/api/me",
        "https://api.example.com.evil.com/api/me",
        "/api/me",
        "api.example.com/api/me",
        "https://user@api.example.com/api/me",
    ];
    for htu in rejected {
        assert_eq!(
            f.get(&with(htu)).await,
            proof_err(ErrorKind::ProofUri, "htu does not match the request URI"),
            "{htu}"
        );
    }
    // The request's query is ignored too, and a path with dot segments never matches.
    assert_eq!(
        f.send(Method::GET, "/api/me?page=2", &f.token, &with(URL))
            .await,
        Ok(())
    );
    assert_eq!(
        f.send(Method::GET, "/api/x/../me", &f.token, &with(URL))
            .await,
        proof_err(ErrorKind::ProofUri, "htu does not match the request URI")
    );
}

#[tokio::test]
async fn htu_never_comes_from_the_host_header() {
    let f = Fixture::new();
    let evil = f
        .client
        .proof("GET", "https://evil.example.com/api/me")
        .access_token(&f.token)
        .iat(T0)
        .sign();
    let mut h = dpop_headers(&f.token, &evil);
    h.insert("host", HeaderValue::from_static("evil.example.com"));
    h.insert(
        "x-forwarded-host",
        HeaderValue::from_static("evil.example.com"),
    );
    assert_eq!(
        f.layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/api/me",
                &h
            ))
            .await
            .unwrap_err(),
        Error::new(ErrorKind::ProofUri, "htu does not match the request URI")
    );
}

#[tokio::test]
async fn several_public_origins() {
    let f = Fixture::with(Algorithm::ES256, |b| {
        b.public_origin("http://localhost:8080")
    });
    let local = f
        .client
        .proof("GET", "http://localhost:8080/api/me")
        .access_token(&f.token)
        .iat(T0)
        .sign();
    assert_eq!(f.get(&local).await, Ok(()));
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
}

#[tokio::test]
async fn iat_window_boundaries() {
    let f = Fixture::new();
    // Defaults: 60 s in the past, 5 s in the future.
    assert_eq!(f.get(&f.proof().iat(T0 - 60).sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().iat(T0 - 61).sign()).await,
        proof_err(ErrorKind::ProofTooOld, "proof iat is too old")
    );
    assert_eq!(f.get(&f.proof().iat(T0 + 5).sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().iat(T0 + 6).sign()).await,
        proof_err(ErrorKind::ProofFromTheFuture, "proof iat is in the future")
    );
    // Configured windows.
    let g = Fixture::with(Algorithm::ES256, |b| {
        b.max_proof_age(Duration::from_secs(10))
            .future_leeway(Duration::ZERO)
    });
    assert_eq!(
        g.get(&g.proof().iat(T0 - 11).sign()).await,
        proof_err(ErrorKind::ProofTooOld, "proof iat is too old")
    );
    assert_eq!(
        g.get(&g.proof().iat(T0 + 1).sign()).await,
        proof_err(ErrorKind::ProofFromTheFuture, "proof iat is in the future")
    );
    assert_eq!(g.get(&g.proof().iat(T0 - 10).sign()).await, Ok(()));
    // Moving the clock makes a once-fresh proof stale.
    let proof = f.proof().sign();
    f.clock.advance(Duration::from_secs(61));
    assert_eq!(
        f.get(&proof).await,
        proof_err(ErrorKind::ProofTooOld, "proof iat is too old")
    );
}

/// The FAPI 2.0 preset: PS256, ES256 and EdDSA proofs only; `iat` from 60 s in the past to
/// 10 s in the future.
#[tokio::test]
async fn fapi2_security_profile_algorithms_and_iat_window() {
    let fapi = |alg| Fixture::with(alg, DpopLayerBuilder::fapi2_security_profile);
    for alg in [Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA] {
        let f = fapi(alg);
        assert_eq!(f.get(&f.proof().sign()).await, Ok(()), "{alg}");
    }
    for alg in [
        Algorithm::RS256,
        Algorithm::ES384,
        Algorithm::PS512,
        Algorithm::Ed25519,
    ] {
        let f = fapi(alg);
        assert_eq!(
            f.get(&f.proof().sign()).await,
            proof_err(
                ErrorKind::ProofAlgorithm,
                "proof alg is not an accepted asymmetric algorithm"
            ),
            "{alg}"
        );
    }
    let f = fapi(Algorithm::ES256);
    assert_eq!(f.get(&f.proof().iat(T0 - 60).sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().iat(T0 - 61).sign()).await,
        proof_err(ErrorKind::ProofTooOld, "proof iat is too old")
    );
    assert_eq!(f.get(&f.proof().iat(T0 + 10).sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().iat(T0 + 11).sign()).await,
        proof_err(ErrorKind::ProofFromTheFuture, "proof iat is in the future")
    );
}

#[tokio::test]
async fn ath_must_be_the_token_hash() {
    let f = Fixture::new();
    let other = f.issuer.token_for(f.client.jkt(), T0 + 3600);
    let for_other = f
        .client
        .proof("GET", URL)
        .access_token(&other)
        .iat(T0)
        .sign();
    assert_eq!(
        f.get(&for_other).await,
        proof_err(
            ErrorKind::ProofTokenHash,
            "ath does not match the access token"
        )
    );
    assert_eq!(
        f.get(&f.proof().claim("ath", json!("not-a-hash")).sign())
            .await,
        proof_err(
            ErrorKind::ProofTokenHash,
            "ath does not match the access token"
        )
    );
    // The same hash in standard base64 (with padding) is not base64url.
    let std_b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        <sha2::Sha256 as sha2::Digest>::digest(f.token.as_bytes()),
    );
    assert_eq!(
        f.get(&f.proof().claim("ath", json!(std_b64)).sign()).await,
        proof_err(
            ErrorKind::ProofTokenHash,
            "ath does not match the access token"
        )
    );
}
