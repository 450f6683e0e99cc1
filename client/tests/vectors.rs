//! Proofs made by this crate with fixed keys, checked by an independent implementation
//! (panva `jose` 5.10.0 for Node.js, `tests/vectors/verify_proofs.mjs`, run once; its verdicts
//! are committed). This test needs no Node: it reads the committed proofs and verdicts and
//! checks that jose accepted every proof made by the client and refused the tampered one, and
//! that jose's thumbprints, `ath`s and claims are the ones this crate computes today.
//!
//! To regenerate (new proofs, then new verdicts): see tests/vectors/README.md.

use std::path::PathBuf;

use serde_json::{json, Value};
use tower_dpop_client::clock::ManualClock;
use tower_dpop_client::{ath, Algorithm, DpopKey};

/// The `iat` of every vector proof.
const IAT: u64 = 1_764_000_000;
const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ2ZWN0b3IifQ.c2lnbmF0dXJl";
const RESOURCE: &str = "https://API.example.com:443/orders/7?expand=items#top";
const RESOURCE_HTU: &str = "https://api.example.com/orders/7";
const TOKEN_ENDPOINT: &str = "https://as.example.com/token";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

fn keys() -> Vec<(String, DpopKey)> {
    let keys = read("keys.json");
    keys.as_object()
        .unwrap()
        .iter()
        .map(|(name, k)| {
            let alg: Algorithm = k["alg"].as_str().unwrap().parse().unwrap();
            let key = match (k.get("pem"), k.get("jwk")) {
                (Some(pem), _) => DpopKey::from_pkcs8_pem(alg, pem.as_str().unwrap()),
                (_, Some(jwk)) => DpopKey::from_jwk(alg, &jwk.to_string()),
                _ => panic!("{name}: no key"),
            };
            (name.clone(), key.unwrap())
        })
        .collect()
}

/// Writes `keys.json` (only when absent) and `proofs.json`. Run by hand:
/// `cargo test -p tower-dpop-client --test vectors -- --ignored generate`.
#[test]
#[ignore = "writes the vectors; run by hand, then verify_proofs.mjs"]
fn generate() {
    let keys_path = dir().join("keys.json");
    if !keys_path.exists() {
        let mut keys = serde_json::Map::new();
        for &alg in Algorithm::ALL {
            let key = DpopKey::generate(alg).unwrap();
            keys.insert(
                format!("{alg}-pem"),
                json!({ "alg": alg.as_str(), "pem": key.to_pkcs8_pem().unwrap() }),
            );
        }
        // One key given as a private JWK (josekit's), to cover that loader too.
        let ec = josekit::jws::ES256.generate_key_pair().unwrap();
        let jwk: Value = serde_json::from_str(&ec.to_jwk_key_pair().to_string()).unwrap();
        keys.insert("ES256-jwk".into(), json!({ "alg": "ES256", "jwk": jwk }));
        std::fs::write(
            &keys_path,
            serde_json::to_string_pretty(&keys).unwrap() + "\n",
        )
        .unwrap();
    }
    let clock = ManualClock::at_unix(IAT);
    let mut cases = Vec::new();
    for (name, key) in keys() {
        let uri = RESOURCE.parse().unwrap();
        let proof = key
            .proof(&http::Method::GET, &uri)
            .unwrap()
            .access_token(TOKEN)
            .nonce(Some("server-nonce-1"))
            .clock(&clock)
            .sign()
            .unwrap();
        cases.push(json!({
            "name": format!("{name} resource"), "key": name, "expect": "valid",
            "htm": "GET", "htu": RESOURCE_HTU, "token": TOKEN, "nonce": "server-nonce-1",
            "proof": proof,
        }));
        let uri = TOKEN_ENDPOINT.parse().unwrap();
        let proof = key
            .proof(&http::Method::POST, &uri)
            .unwrap()
            .clock(&clock)
            .sign()
            .unwrap();
        cases.push(json!({
            "name": format!("{name} token request"), "key": name, "expect": "valid",
            "htm": "POST", "htu": TOKEN_ENDPOINT, "proof": proof,
        }));
    }
    // A proof with one claim changed after signing: jose must refuse it.
    let tampered = {
        let valid = cases[0]["proof"].as_str().unwrap().to_owned();
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        let claims = parts[1].clone();
        let mut claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
                .unwrap(),
        )
        .unwrap();
        claims["htm"] = json!("DELETE");
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims.to_string(),
        );
        parts.join(".")
    };
    let mut bad = cases[0].clone();
    bad["name"] = json!("tampered claims");
    bad["expect"] = json!("invalid");
    bad["htm"] = json!("DELETE");
    bad["proof"] = json!(tampered);
    cases.push(bad);
    let doc = json!({ "iat": IAT, "cases": cases });
    std::fs::write(
        dir().join("proofs.json"),
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
}

/// jose accepted every proof this crate made (signature with the embedded key, `typ`, `alg`,
/// `htm`, `htu`, `iat`, `ath`, `nonce`, a 128-bit `jti`, public members only) and refused the
/// tampered one; its thumbprints and `ath`s are the ones this crate computes for the same keys
/// and token.
#[test]
fn jose_verdicts_on_client_proofs() {
    let proofs = read("proofs.json");
    let verdicts = read("verdicts.json");
    assert_eq!(verdicts["verifier"], "node jose 5.10.0");
    let keys = keys();
    let cases = proofs["cases"].as_array().unwrap();
    let verdicts = verdicts["verdicts"].as_array().unwrap();
    assert_eq!(cases.len(), verdicts.len());
    assert!(cases.len() > 2 * Algorithm::ALL.len());
    let mut algs_seen = std::collections::HashSet::new();
    for (case, verdict) in cases.iter().zip(verdicts) {
        let name = case["name"].as_str().unwrap();
        assert_eq!(verdict["name"], name);
        assert_eq!(
            verdict["proof"], case["proof"],
            "{name}: the verdict is for this proof"
        );
        if case["expect"] == "invalid" {
            assert_eq!(verdict["ok"], false, "{name}: jose must refuse it");
            assert_eq!(
                verdict["error"], "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
                "{name}"
            );
            continue;
        }
        assert_eq!(verdict["ok"], true, "{name}: {}", verdict["error"]);
        let (_, key) = keys
            .iter()
            .find(|(n, _)| n == case["key"].as_str().unwrap())
            .unwrap();
        algs_seen.insert(key.algorithm());
        assert_eq!(
            verdict["jkt"],
            key.thumbprint(),
            "{name}: RFC 7638 thumbprint"
        );
        assert_eq!(verdict["alg"], key.algorithm().as_str(), "{name}");
        assert_eq!(
            &verdict["jwk"],
            key.public_jwk(),
            "{name}: the embedded jwk"
        );
        assert_eq!(verdict["claims"]["htu"], case["htu"], "{name}");
        assert_eq!(verdict["claims"]["iat"], IAT, "{name}");
        if let Some(token) = case["token"].as_str() {
            assert_eq!(
                verdict["ath"],
                ath(token),
                "{name}: jose's SHA-256 of the token"
            );
            assert_eq!(verdict["claims"]["ath"], ath(token), "{name}");
        } else {
            assert!(
                verdict["claims"].get("ath").is_none(),
                "{name}: no token, no ath"
            );
        }
    }
    assert_eq!(
        algs_seen.len(),
        Algorithm::ALL.len(),
        "every algorithm covered"
    );
    // The htu rule itself, independent of the committed data.
    let uri: http::Uri = RESOURCE.parse().unwrap();
    assert_eq!(tower_dpop_client::proof::htu(&uri).unwrap(), RESOURCE_HTU);
}
