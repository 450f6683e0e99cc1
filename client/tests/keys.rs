//! Keys: every algorithm makes proofs the crate's own `DpopLayer` accepts; PKCS#8 PEM and
//! JWK loading; thumbprints agree with independent implementations.

use josekit::jws;
use tower_dpop::clock::ManualClock;
use tower_dpop::testing::{dpop_headers, jwk_thumbprint, request_parts, ClientKey, TestIssuer};
use tower_dpop::DpopLayer;
use tower_dpop_client::clock::ManualClock as ClientClock;
use tower_dpop_client::{Algorithm, DpopKey, ErrorKind};

const T0: u64 = 1_900_000_000;

fn server_alg(alg: Algorithm) -> tower_dpop::Algorithm {
    alg.as_str().parse().unwrap()
}

/// A proof signed by each algorithm's key, for a token bound to its thumbprint, passes the
/// server layer (signature, `htm`, `htu` without the query, `iat`, `ath`, `jkt`).
#[tokio::test]
async fn every_algorithm_is_accepted_by_the_server_layer() {
    let issuer = TestIssuer::new();
    let layer = DpopLayer::builder()
        .public_origin("https://api.example.com")
        .token_validator(issuer.validator())
        .algorithms(tower_dpop::Algorithm::ALL.iter().copied())
        .clock(ManualClock::at_unix(T0))
        .build()
        .unwrap();
    for &alg in Algorithm::ALL {
        let key = DpopKey::generate(alg).unwrap();
        let token = issuer.token_for(key.thumbprint(), T0 + 600);
        let uri = "https://api.example.com/r?page=2".parse().unwrap();
        let proof = key
            .proof(&http::Method::POST, &uri)
            .unwrap()
            .access_token(&token)
            .clock(&ClientClock::at_unix(T0))
            .sign()
            .unwrap();
        let parts = request_parts(
            &http::Method::POST,
            "/r?page=2",
            &dpop_headers(&token, &proof),
        );
        let accepted = layer.authenticate(&parts).await;
        assert!(accepted.is_ok(), "{alg}: {accepted:?}");

        // The same proof for another method is refused: the layer really checks it.
        let parts = request_parts(&http::Method::GET, "/r", &dpop_headers(&token, &proof));
        assert!(layer.authenticate(&parts).await.is_err(), "{alg}");
    }
}

/// The thumbprint is RFC 7638's, as the server layer and josekit's JWK compute it.
#[test]
fn thumbprint_agrees_with_the_server_and_josekit() {
    for &alg in Algorithm::ALL {
        let key = DpopKey::generate(alg).unwrap();
        assert_eq!(
            jwk_thumbprint(&key.public_jwk().to_string()).as_deref(),
            Some(key.thumbprint()),
            "{alg}"
        );
        let jwk = josekit::jwk::Jwk::from_bytes(key.public_jwk().to_string()).unwrap();
        assert!(jwk.parameter("d").is_none(), "{alg}: public only");
        let members = key.public_jwk().as_object().unwrap();
        assert!(
            members
                .keys()
                .all(|m| ["kty", "crv", "x", "y", "n", "e"].contains(&m.as_str())),
            "{alg}: {members:?}"
        );
    }
}

/// A key saved as PKCS#8 PEM loads back with the same thumbprint, and the server crate's own
/// loader reads the same PEM to the same thumbprint; the wrong algorithm is refused.
#[test]
fn pkcs8_pem_round_trip() {
    for &alg in Algorithm::ALL {
        let key = DpopKey::generate(alg).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg}");
        let loaded = DpopKey::from_pkcs8_pem(alg, &pem).unwrap();
        assert_eq!(loaded.thumbprint(), key.thumbprint(), "{alg}");
        let theirs = ClientKey::from_pkcs8_pem(server_alg(alg), &pem).unwrap();
        assert_eq!(theirs.jkt(), key.thumbprint(), "{alg}");
    }
    let ec = DpopKey::generate(Algorithm::ES256)
        .unwrap()
        .to_pkcs8_pem()
        .unwrap();
    for wrong in [Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256] {
        let error = DpopKey::from_pkcs8_pem(wrong, &ec).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Key, "{wrong}");
    }
    assert!(DpopKey::from_pkcs8_pem(Algorithm::ES256, "not a pem").is_err());
    // A traditional (SEC 1) EC key is not PKCS#8.
    let sec1 = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap()
    .private_key_to_pem()
    .unwrap();
    assert!(
        DpopKey::from_pkcs8_pem(Algorithm::ES256, std::str::from_utf8(&sec1).unwrap()).is_err()
    );
    // RSA smaller than 2048 bits is refused.
    let small = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
    let small = String::from_utf8(small.private_key_to_pem_pkcs8().unwrap()).unwrap();
    assert!(DpopKey::from_pkcs8_pem(Algorithm::RS256, &small).is_err());
}

/// Private JWKs made by josekit load with the thumbprint of josekit's public key; a JWK whose
/// public members belong to another key, or a public-only JWK, is refused.
#[test]
fn private_jwk_loading() {
    let cases: Vec<(Algorithm, josekit::jwk::Jwk, josekit::jwk::Jwk)> = {
        let ec = jws::ES256.generate_key_pair().unwrap();
        let ec384 = jws::ES384.generate_key_pair().unwrap();
        let ed = jws::EdDSA
            .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
            .unwrap();
        let rsa = jws::RS256.generate_key_pair(2048).unwrap();
        vec![
            (
                Algorithm::ES256,
                ec.to_jwk_key_pair(),
                ec.to_jwk_public_key(),
            ),
            (
                Algorithm::ES384,
                ec384.to_jwk_key_pair(),
                ec384.to_jwk_public_key(),
            ),
            (
                Algorithm::EdDSA,
                ed.to_jwk_key_pair(),
                ed.to_jwk_public_key(),
            ),
            (
                Algorithm::PS256,
                rsa.to_jwk_key_pair(),
                rsa.to_jwk_public_key(),
            ),
            (
                Algorithm::RS256,
                rsa.to_jwk_key_pair(),
                rsa.to_jwk_public_key(),
            ),
        ]
    };
    for (alg, private, public) in cases {
        let key = DpopKey::from_jwk(alg, &private.to_string()).unwrap();
        assert_eq!(
            jwk_thumbprint(&public.to_string()).as_deref(),
            Some(key.thumbprint()),
            "{alg}"
        );
        assert!(
            DpopKey::from_jwk(alg, &public.to_string()).is_err(),
            "{alg}: no d"
        );
    }

    // Another key's x with this key's d.
    let a = jws::ES256.generate_key_pair().unwrap().to_jwk_key_pair();
    let b = jws::ES256.generate_key_pair().unwrap().to_jwk_key_pair();
    let mut mixed = a.as_ref().clone();
    mixed.insert("d".into(), b.as_ref()["d"].clone());
    let mixed = serde_json::Value::Object(mixed).to_string();
    assert!(DpopKey::from_jwk(Algorithm::ES256, &mixed).is_err());

    let ed = jws::EdDSA
        .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
        .unwrap()
        .to_jwk_key_pair();
    let mut wrong_x = ed.as_ref().clone();
    wrong_x.insert("x".into(), a.as_ref()["x"].clone());
    let wrong_x = serde_json::Value::Object(wrong_x).to_string();
    assert!(DpopKey::from_jwk(Algorithm::EdDSA, &wrong_x).is_err());

    assert!(DpopKey::from_jwk(Algorithm::ES256, "{}").is_err());
    assert!(DpopKey::from_jwk(Algorithm::ES256, &"x".repeat(20_000)).is_err());
    assert!(
        DpopKey::from_jwk(Algorithm::RS256, &a.to_string()).is_err(),
        "wrong type"
    );
}

/// `Debug` shows the thumbprint, never private material.
#[test]
fn debug_hides_the_private_key() {
    let key = DpopKey::generate(Algorithm::EdDSA).unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    let debug = format!("{key:?}");
    assert!(debug.contains(key.thumbprint()));
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!debug.contains(&body));
}
