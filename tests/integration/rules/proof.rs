//! RFC 9449 §4.2 and §4.3 steps 1–6: the proof is a compact JWS with `typ` `dpop+jwt`, an
//! allowed asymmetric `alg` that fits its public `jwk`, typed claims, and a signature that
//! verifies with that key.

use super::*;

#[tokio::test]
async fn compact_jws_with_three_parts() {
    let f = Fixture::new();
    let proof = f.proof().sign();
    let (h, rest) = proof.split_once('.').unwrap();
    let (p, _) = rest.split_once('.').unwrap();
    for bad in [
        format!("{h}.{p}"),
        format!("{h}.{p}.sig.extra"),
        format!("{h}..{p}"),
        format!("{h}.{p}."),
    ] {
        assert_eq!(
            f.get(&bad).await,
            proof_err(
                ErrorKind::ProofMalformed,
                "proof is not a compact JWS with three parts"
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn typ_must_be_dpop_jwt() {
    let f = Fixture::new();
    assert_eq!(
        f.get(&f.proof().header("typ", json!("JWT")).sign()).await,
        proof_err(ErrorKind::ProofType, "proof typ is not dpop+jwt")
    );
    assert_eq!(
        f.get(&f.proof().header("typ", json!("at+jwt")).sign())
            .await,
        proof_err(ErrorKind::ProofType, "proof typ is not dpop+jwt")
    );
    assert_eq!(
        f.get(&f.proof().without_header("typ").sign()).await,
        proof_err(ErrorKind::ProofType, "proof header has no typ")
    );
}

#[tokio::test]
async fn alg_must_be_asymmetric_and_allowed() {
    let f = Fixture::new();
    for alg in ["none", "HS256", "HS512", "ES256K", "es256", ""] {
        assert_eq!(
            f.get(&f.proof().header("alg", json!(alg)).sign()).await,
            proof_err(
                ErrorKind::ProofAlgorithm,
                "proof alg is not an accepted asymmetric algorithm"
            ),
            "{alg}"
        );
    }
    assert_eq!(
        f.get(&f.proof().without_header("alg").sign()).await,
        proof_err(ErrorKind::ProofAlgorithm, "proof header has no alg")
    );
    // The allow-list is honoured: an EdDSA proof against an ES256-only layer.
    let g = Fixture::with(Algorithm::EdDSA, |b| b.algorithms([Algorithm::ES256]));
    assert_eq!(
        g.get(&g.proof().sign()).await,
        proof_err(
            ErrorKind::ProofAlgorithm,
            "proof alg is not an accepted asymmetric algorithm"
        )
    );
}

#[tokio::test]
async fn alg_must_fit_the_key() {
    // Every algorithm allowed, so that the refusal is the mismatch with the key.
    let f = Fixture::with(Algorithm::ES256, |b| {
        b.algorithms(Algorithm::ALL.iter().copied())
    });
    for alg in ["ES384", "ES512", "RS256", "PS256", "EdDSA", "Ed25519"] {
        assert_eq!(
            f.get(&f.proof().header("alg", json!(alg)).sign()).await,
            proof_err(
                ErrorKind::ProofAlgorithm,
                "proof alg does not match the jwk key type or curve"
            ),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn jwk_must_be_public() {
    let f = Fixture::new();
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        let mut jwk = f.client.public_jwk().clone();
        jwk[member] = json!("AAAA");
        assert_eq!(
            f.get(&f.proof().header("jwk", jwk).sign()).await,
            proof_err(
                ErrorKind::ProofKey,
                "jwk contains private or symmetric key material"
            ),
            "{member}"
        );
    }
    assert_eq!(
        f.get(&f.proof().without_header("jwk").sign()).await,
        proof_err(ErrorKind::ProofKey, "proof header has no jwk")
    );
    let g = Fixture::with(Algorithm::RS256, |b| b);
    let mut jwk = g.client.public_jwk().clone();
    jwk["d"] = json!("AAAA");
    assert_eq!(
        g.get(&g.proof().header("jwk", jwk).sign()).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk contains private or symmetric key material"
        )
    );
}

/// RFC 7518 §6.3.1: RSA `n` and `e` are minimal octet strings. A zero octet in front of `n`
/// is the same key under another text, with another thumbprint: refused, even with a token
/// bound to that other thumbprint and a signature that verifies.
#[tokio::test]
async fn rsa_jwk_must_be_minimal() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let g = Fixture::with(Algorithm::RS256, |b| b);
    let mut jwk = g.client.public_jwk().clone();
    let mut n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    n.insert(0, 0);
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode(&n));
    // RFC 7638 by hand (the crate's own parser refuses this jwk).
    let members = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        jwk["e"].as_str().unwrap(),
        jwk["n"].as_str().unwrap()
    );
    let jkt = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(members));
    assert_ne!(jkt, g.client.jkt(), "a second thumbprint for the same key");
    let token = g.issuer.token_for(&jkt, T0 + 3600);
    let proof = g
        .client
        .proof("GET", URL)
        .access_token(&token)
        .iat(T0)
        .header("jwk", jwk)
        .sign();
    assert_eq!(
        g.send(Method::GET, "/api/me", &token, &proof).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA n or e has a leading zero octet (not minimal)"
        )
    );
}

/// Keys are cached by the exact text of `jwk`: once a key is known, every other text of it is
/// checked from scratch, and the known text is only reused with the `alg` it was verified with.
#[tokio::test]
async fn a_cached_key_does_not_skip_the_jwk_checks() {
    let f = Fixture::with(Algorithm::ES256, |b| {
        b.algorithms(Algorithm::ALL.iter().copied())
    });
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    let mut private = f.client.public_jwk().clone();
    private["d"] = json!("AAAA");
    assert_eq!(
        f.get(&f.proof().header("jwk", private).sign()).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk contains private or symmetric key material"
        )
    );
    assert_eq!(
        f.get(&f.proof().header("alg", json!("ES384")).sign()).await,
        proof_err(
            ErrorKind::ProofAlgorithm,
            "proof alg does not match the jwk key type or curve"
        )
    );
    // Another text of the same key (an extra member): same thumbprint, so still bound.
    let mut with_kid = f.client.public_jwk().clone();
    with_kid["kid"] = json!("k1");
    assert_eq!(
        f.get(&f.proof().header("jwk", with_kid).sign()).await,
        Ok(())
    );
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
}

#[tokio::test]
async fn signature_must_verify_with_the_jwk() {
    let f = Fixture::new();
    // Signed by another key, but carrying the bound key's jwk.
    let forged = f.forged_by(&ClientKey::generate(Algorithm::ES256));
    assert_eq!(
        f.get(&forged).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    // A valid proof whose claims were changed after signing.
    let good = f.proof().sign();
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let changed = f
        .client
        .proof("GET", URL)
        .access_token(&f.token)
        .iat(T0)
        .jti("other")
        .sign();
    parts[1] = changed.split('.').nth(1).unwrap().to_owned();
    assert_eq!(
        f.get(&parts.join(".")).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    // A truncated signature.
    let short = format!("{}.{}.AAAA", parts[0], changed.split('.').nth(1).unwrap());
    assert_eq!(
        f.get(&short).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
}

#[tokio::test]
async fn required_claims_present_and_typed() {
    let f = Fixture::new();
    for claim in ["jti", "htm", "htu", "iat", "ath"] {
        let reason: &'static str = match claim {
            "jti" => "proof has no jti",
            "htm" => "proof has no htm",
            "htu" => "proof has no htu",
            "iat" => "proof has no iat",
            _ => "proof has no ath",
        };
        assert_eq!(
            f.get(&f.proof().without_claim(claim).sign()).await,
            proof_err(ErrorKind::ProofMalformed, reason),
            "{claim}"
        );
    }
    let mistyped = "proof claims are not a JSON object with claims of the right types";
    for (claim, value) in [
        ("iat", json!("1800000000")),
        ("jti", json!(12)),
        ("htm", json!(["GET"])),
        ("ath", json!({})),
    ] {
        assert_eq!(
            f.get(&f.proof().claim(claim, value.clone()).sign()).await,
            proof_err(ErrorKind::ProofMalformed, mistyped),
            "{claim}={value}"
        );
    }
    // A null claim counts as absent.
    assert_eq!(
        f.get(&f.proof().claim("htu", json!(null)).sign()).await,
        proof_err(ErrorKind::ProofMalformed, "proof has no htu")
    );
    assert_eq!(
        f.get(&f.proof().jti("").sign()).await,
        proof_err(ErrorKind::ProofMalformed, "proof jti is empty or too long")
    );
    assert_eq!(
        f.get(&f.proof().jti(&"j".repeat(257)).sign()).await,
        proof_err(ErrorKind::ProofMalformed, "proof jti is empty or too long")
    );
    // 256 bytes is the longest jti accepted.
    assert_eq!(f.get(&f.proof().jti(&"j".repeat(256)).sign()).await, Ok(()));
}

/// The default allow-list leaves out ES384 and ES512 (several P-256 verifies each), so a client
/// holding its own valid token cannot make each request cost several; named, they verify.
#[tokio::test]
async fn the_default_algorithms_leave_out_the_dear_curves() {
    for alg in [Algorithm::ES384, Algorithm::ES512] {
        let f = Fixture::with(alg, |b| b);
        assert_eq!(
            f.get(&f.proof().sign()).await,
            proof_err(
                ErrorKind::ProofAlgorithm,
                "proof alg is not an accepted asymmetric algorithm"
            ),
            "{alg}"
        );
        let f = Fixture::with(alg, |b| b.algorithms([Algorithm::ES256, alg]));
        assert_eq!(f.get(&f.proof().sign()).await, Ok(()), "{alg}");
    }
}
