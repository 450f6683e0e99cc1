//! RFC 9449 §4.3 step 5, RFC 7518 §6, RFC 8037: keys an attacker chooses (small-order
//! Ed25519 points, bad RSA exponents and moduli) are refused at import; Ed448 verifies.

use super::*;

/// A proof whose header carries `jwk`, signed by some other key, for a token bound to `jwk`:
/// the only thing that can refuse it before the signature is the key import.
async fn hostile_key(alg: &str, jwk: serde_json::Value) -> Result<(), Error> {
    let f = Fixture::new();
    // A key the thumbprint function refuses is refused by the layer before the binding check,
    // so the token's jkt does not matter then.
    let jkt = tower_dpop::testing::jwk_thumbprint(&jwk.to_string()).unwrap_or_default();
    let token = f.issuer.token_for(&jkt, T0 + 3600);
    let signer = ClientKey::generate(Algorithm::ES256);
    let proof = signer
        .proof("GET", URL)
        .access_token(&token)
        .iat(T0)
        .header("alg", json!(alg))
        .header("jwk", jwk)
        .sign();
    f.send(Method::GET, "/api/me", &token, &proof).await
}

#[tokio::test]
async fn small_order_ed25519_keys_are_refused_at_import() {
    // The identity point (y = 1): every signature "verifies" under a lax check.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let x = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, identity);
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
    assert_eq!(
        hostile_key("EdDSA", jwk).await,
        proof_err(ErrorKind::ProofKey, "jwk is a small-order Ed25519 key")
    );
}

#[tokio::test]
async fn rsa_exponent_must_be_odd_and_at_least_three() {
    let key = ClientKey::generate(Algorithm::RS256);
    // 2, 1, 4, 65536.
    for e in ["Ag", "AQ", "BA", "AQAA"] {
        let mut jwk = key.public_jwk().clone();
        jwk["e"] = json!(e);
        assert_eq!(
            hostile_key("RS256", jwk).await,
            proof_err(
                ErrorKind::ProofKey,
                "jwk RSA exponent must be odd and at least 3"
            ),
            "e={e}"
        );
    }
    // 1 with a leading zero octet is not even read as a number: not minimal (RFC 7518).
    let mut jwk = key.public_jwk().clone();
    jwk["e"] = json!("AAE");
    assert_eq!(
        hostile_key("RS256", jwk).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA n or e has a leading zero octet (not minimal)"
        )
    );
    // 3 and 65537 pass the exponent check; these proofs then fail on their signature (the
    // proof is signed by another key).
    for e in ["Aw", "AQAB"] {
        let mut jwk = key.public_jwk().clone();
        jwk["e"] = json!(e);
        assert_eq!(
            hostile_key("RS256", jwk).await,
            proof_err(ErrorKind::ProofSignature, "proof signature is invalid"),
            "e={e}"
        );
    }
}

#[tokio::test]
async fn rsa_modulus_must_have_2048_to_4096_bits() {
    let key = ClientKey::generate(Algorithm::RS256);
    // 256 bytes, but the top byte 0x01: a 2041-bit modulus (the length check alone passes it).
    let mut n = vec![0xffu8; 256];
    n[0] = 0x01;
    let mut jwk = key.public_jwk().clone();
    jwk["n"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &n
    ));
    assert_eq!(
        hostile_key("RS256", jwk).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA modulus must be 2048 to 4096 bits"
        )
    );
    // The upper end: 4096 bits in 512 octets is accepted (this proof then fails on its
    // signature, made by another key); the same with a leading zero octet, 4104 bits in 513
    // octets, or 514 octets, are too long.
    let with_n = |n: Vec<u8>| {
        let mut jwk = key.public_jwk().clone();
        jwk["n"] = json!(base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &n
        ));
        jwk
    };
    assert_eq!(
        hostile_key("RS256", with_n(vec![0xff; 512])).await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    let mut n4096 = vec![0u8];
    n4096.extend([0xffu8; 512]);
    assert_eq!(
        hostile_key("RS256", with_n(n4096)).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA modulus is too small, too large or malformed"
        )
    );
    assert_eq!(
        hostile_key("RS256", with_n(vec![0xff; 513])).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA modulus is too small, too large or malformed"
        )
    );
    let mut n514 = vec![0u8, 0];
    n514.extend([0xffu8; 512]);
    assert_eq!(
        hostile_key("RS256", with_n(n514)).await,
        proof_err(
            ErrorKind::ProofKey,
            "jwk RSA modulus is too small, too large or malformed"
        )
    );
}

/// Ed448 (RFC 8037, `alg` EdDSA, `crv` Ed448) through OpenSSL: no helper in `testing` makes
/// Ed448 keys, so the proof is assembled and signed here with OpenSSL directly.
#[tokio::test]
async fn ed448_proofs_verify_and_tampered_ones_do_not() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;

    let key = PKey::generate_ed448().unwrap();
    let x = URL_SAFE_NO_PAD.encode(key.raw_public_key().unwrap());
    let jwk = json!({"kty": "OKP", "crv": "Ed448", "x": x});
    // A key the thumbprint function refuses is refused by the layer before the binding check,
    // so the token's jkt does not matter then.
    let jkt = tower_dpop::testing::jwk_thumbprint(&jwk.to_string()).unwrap_or_default();
    let f = Fixture::new();
    let token = f.issuer.token_for(&jkt, T0 + 3600);
    let sign = |alg: &str, jti: &str| {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        let claims = json!({"jti": jti, "htm": "GET", "htu": URL, "iat": T0,
            "ath": tower_dpop::testing::ath(&token)});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signer = Signer::new_without_digest(&key).unwrap();
        let sig = signer.sign_oneshot_to_vec(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    };
    assert_eq!(
        f.send(Method::GET, "/api/me", &token, &sign("EdDSA", "a"))
            .await,
        Ok(())
    );
    let mut tampered = sign("EdDSA", "b").into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        f.send(
            Method::GET,
            "/api/me",
            &token,
            std::str::from_utf8(&tampered).unwrap()
        )
        .await,
        proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
    );
    // The fully-specified `Ed25519` name does not fit an Ed448 key.
    assert_eq!(
        f.send(Method::GET, "/api/me", &token, &sign("Ed25519", "c"))
            .await,
        proof_err(
            ErrorKind::ProofAlgorithm,
            "proof alg does not match the jwk key type or curve"
        )
    );
}
