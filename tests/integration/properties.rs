//! Property tests: JWK thumbprints, the verification pipeline under tampering and garbage
//! input, and nonce checks (`htu` normalization has its own, in the crate's unit tests). Each property runs at most 256 cases so the
//! whole file stays fast in a debug build.

use std::sync::OnceLock;
use std::time::Duration;

use futures::executor::block_on;
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use serde_json::{json, Value};
use tower_dpop::__private::Nonces;
use tower_dpop::clock::ManualClock;
use tower_dpop::testing::jwk_thumbprint;
use tower_dpop::testing::{ClientKey, TestIssuer};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::{Algorithm, DpopLayer};

const T0: u64 = 1_800_000_000;
const ORIGIN: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/api/me";
const PATH: &str = "/api/me";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- thumbprints --------------------------------------------------------------------------

/// (members, expected thumbprint) for an EC, an RSA and an OKP key.
fn known_keys() -> Vec<(Vec<(&'static str, &'static str)>, &'static str)> {
    vec![
        (
            vec![
                ("kty", "EC"),
                ("crv", "P-256"),
                ("x", "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"),
                ("y", "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"),
            ],
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        ),
        (
            vec![
                ("kty", "RSA"),
                ("n", "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"),
                ("e", "AQAB"),
            ],
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        ),
        (
            // RFC 8037 appendix A.3.
            vec![
                ("kty", "OKP"),
                ("crv", "Ed25519"),
                ("x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            ],
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        ),
    ]
}

const EXTRAS: &[(&str, &str)] = &[
    ("kid", "key-1"),
    ("alg", "ES256"),
    ("use", "sig"),
    ("x5t", "abc"),
];

const WHITESPACE: &[&str] = &["", " ", "\n", "\t", "\r\n  "];

fn spell_jwk(members: &[(&str, &str)], ws: &[usize]) -> String {
    let w = |i: usize| WHITESPACE[ws[i % ws.len()] % WHITESPACE.len()];
    let mut out = format!("{}{{", w(0));
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{}\"{k}\"{}:{}\"{v}\"{}",
            w(4 * i + 1),
            w(4 * i + 2),
            w(4 * i + 3),
            w(4 * i + 4)
        ));
    }
    out.push_str(&format!("}}{}", w(members.len() * 4 + 5)));
    out
}

fn generated_keys() -> &'static Vec<Value> {
    static KEYS: OnceLock<Vec<Value>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA]
            .into_iter()
            .map(|alg| ClientKey::generate(alg).public_jwk().clone())
            .collect()
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn thumbprint_ignores_order_whitespace_and_extra_members(
        key in 0..3usize,
        extras in prop::sample::subsequence(EXTRAS, 0..=EXTRAS.len()),
        order in any::<u64>(),
        ws in prop::collection::vec(0..WHITESPACE.len(), 1..16),
    ) {
        let (members, expected) = known_keys().swap_remove(key);
        let mut all: Vec<(&str, &str)> = members.into_iter().chain(extras).collect();
        // A pseudo-random permutation from `order`.
        let mut seed = order;
        for i in (1..all.len()).rev() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let j = usize::try_from(seed >> 33).unwrap() % (i + 1);
            all.swap(i, j);
        }
        let json = spell_jwk(&all, &ws);
        prop_assert_eq!(jwk_thumbprint(&json), Some(expected.to_owned()), "{}", json);
    }

    #[test]
    fn thumbprint_of_generated_keys_ignores_order_and_extras(
        key in 0..3usize,
        extras in prop::sample::subsequence(EXTRAS, 0..=EXTRAS.len()),
        order in any::<u64>(),
        ws in prop::collection::vec(0..WHITESPACE.len(), 1..16),
    ) {
        let jwk = &generated_keys()[key];
        let expected = jwk_thumbprint(&jwk.to_string());
        prop_assert!(expected.is_some());
        let obj = jwk.as_object().unwrap();
        let mut members: Vec<(String, String)> = obj
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .chain(extras.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
            .collect();
        members.sort_by_key(|(k, _)| {
            let mut h = order;
            for b in k.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
            h
        });
        let refs: Vec<(&str, &str)> =
            members.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let json = spell_jwk(&refs, &ws);
        prop_assert_eq!(jwk_thumbprint(&json), expected, "{}", json);
    }

    #[test]
    fn thumbprint_never_panics(s in prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                Just("{".to_owned()), Just("}".to_owned()), Just(",".to_owned()),
                Just(":".to_owned()), Just("\"kty\"".to_owned()), Just("\"EC\"".to_owned()),
                Just("\"OKP\"".to_owned()), Just("\"RSA\"".to_owned()), Just("\"crv\"".to_owned()),
                Just("\"P-256\"".to_owned()), Just("\"Ed25519\"".to_owned()),
                Just("\"x\"".to_owned()), Just("\"y\"".to_owned()), Just("\"n\"".to_owned()),
                Just("\"e\"".to_owned()), Just("\"d\"".to_owned()),
                "\"[A-Za-z0-9_-]{0,90}\"",
                any::<i64>().prop_map(|n| n.to_string()),
            ],
            0..20,
        ).prop_map(|p| p.concat()),
    ]) {
        let _ = jwk_thumbprint(&s);
    }
}

// ---- the verification pipeline ------------------------------------------------------------

struct Fixture {
    issuer: TestIssuer,
    client: ClientKey,
    token: String,
    proof: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let issuer = TestIssuer::new();
        let client = ClientKey::generate(Algorithm::ES256);
        let token = issuer.token_for(client.jkt(), T0 + 3600);
        let proof = client.proof("GET", URL).access_token(&token).iat(T0).sign();
        Fixture {
            issuer,
            client,
            token,
            proof,
        }
    })
}

/// A fresh layer (fresh replay store and caches) for the fixture's issuer, at `T0`.
fn layer(f: &Fixture) -> DpopLayer {
    let validator = JwtValidator::builder()
        .jwks_json(&f.issuer.jwks_json())
        .issuer(f.issuer.issuer())
        .audience("https://api.example.com")
        .build()
        .unwrap();
    DpopLayer::builder()
        .public_origin(ORIGIN)
        .algorithms(Algorithm::ALL.iter().copied())
        .token_validator(validator)
        .clock(ManualClock::at_unix(T0))
        .build()
        .unwrap()
}

fn headers(authorization: &[u8], proof: &[u8]) -> Option<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_bytes(authorization).ok()?,
    );
    h.insert("dpop", HeaderValue::from_bytes(proof).ok()?);
    Some(h)
}

fn auth(token: &str) -> Vec<u8> {
    format!("DPoP {token}").into_bytes()
}

#[test]
fn the_untampered_fixture_is_accepted() {
    let f = fixture();
    let h = headers(&auth(&f.token), f.proof.as_bytes()).unwrap();
    block_on(layer(f).authenticate(&tower_dpop::testing::request_parts(&Method::GET, PATH, &h)))
        .unwrap();
    // And its replay is not: the per-case fresh layers below are what rules replay out.
    let l = layer(f);
    block_on(l.authenticate(&tower_dpop::testing::request_parts(&Method::GET, PATH, &h))).unwrap();
    assert!(
        block_on(l.authenticate(&tower_dpop::testing::request_parts(&Method::GET, PATH, &h)))
            .is_err()
    );
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_single_byte_change_to_the_proof_is_rejected(
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let f = fixture();
        let mut proof = f.proof.clone().into_bytes();
        let i = pos.index(proof.len());
        prop_assume!(proof[i] != byte);
        proof[i] = byte;
        // A value HTTP cannot carry never reaches the layer.
        if let Some(h) = headers(&auth(&f.token), &proof) {
            let got = block_on(layer(f).authenticate(&tower_dpop::testing::request_parts(&Method::GET, PATH, &h)));
            prop_assert!(got.is_err(), "byte {i} -> {byte:#04x} accepted");
        }
    }

    #[test]
    fn any_single_byte_change_to_the_token_is_rejected(
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let f = fixture();
        let mut token = f.token.clone().into_bytes();
        let i = pos.index(token.len());
        prop_assume!(token[i] != byte);
        token[i] = byte;
        let mut authorization = b"DPoP ".to_vec();
        authorization.extend_from_slice(&token);
        if let Some(h) = headers(&authorization, f.proof.as_bytes()) {
            let got = block_on(layer(f).authenticate(&tower_dpop::testing::request_parts(&Method::GET, PATH, &h)));
            prop_assert!(got.is_err(), "token byte {i} -> {byte:#04x} accepted");
        }
    }

    #[test]
    fn a_fresh_proof_with_one_changed_byte_is_rejected(
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        // Same as above, but with a freshly signed proof per case (new jti, new signature).
        let f = fixture();
        let mut proof = f.client.proof("GET", URL).access_token(&f.token).iat(T0).sign().into_bytes();
        let i = pos.index(proof.len());
        prop_assume!(proof[i] != byte);
        proof[i] = byte;
        if let Some(h) = headers(&auth(&f.token), &proof) {
            let l = layer(f);
            prop_assert!(block_on(l.authenticate(&tower_dpop::testing::request_parts(&Method::GET, PATH, &h))).is_err());
        }
    }
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(|b| Method::from_bytes(&b).unwrap_or(Method::GET)),
    ]
}

/// Header bytes: random, or mostly valid with random damage.
fn header_bytes(valid: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        any::<String>().prop_map(String::into_bytes),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(move |(a, b)| {
            let (a, b) = (a.index(valid.len() + 1), b.index(valid.len() + 1));
            valid[a.min(b)..a.max(b)].to_vec()
        }),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6).prop_map(
            move |edits| {
                let mut v = valid.to_vec();
                for (i, b) in edits {
                    let i = i.index(v.len());
                    v[i] = b;
                }
                v
            }
        ),
    ]
}

fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

fn valid_auth() -> &'static [u8] {
    static A: OnceLock<&'static [u8]> = OnceLock::new();
    A.get_or_init(|| leak(auth(&fixture().token)))
}

fn valid_proof() -> &'static [u8] {
    static P: OnceLock<&'static [u8]> = OnceLock::new();
    P.get_or_init(|| leak(fixture().proof.clone().into_bytes()))
}

/// A JSON value of any shape, for claims and header parameters.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::from),
        Just(json!(URL)),
        Just(json!("GET")),
        Just(json!("ES256")),
        Just(json!("dpop+jwt")),
        Just(json!(T0)),
        Just(json!(1e300)),
        Just(json!(-1)),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const CLAIMS: &[&str] = &["jti", "htm", "htu", "iat", "ath", "nonce", "exp"];
const HEADER_PARAMS: &[&str] = &["typ", "alg", "jwk", "kid", "crit", "b64"];

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn verification_never_panics_on_arbitrary_headers(
        authorization in header_bytes(valid_auth()),
        proof in header_bytes(valid_proof()),
        method in method(),
        path in prop_oneof![Just(PATH.to_owned()), any::<String>(), "/[a-zA-Z0-9%/._~-]{0,40}"],
    ) {
        // Only a path that is a valid request URI can reach the layer (the server parsed it).
        if let (Some(h), Ok(_)) = (headers(&authorization, &proof), path.parse::<http::Uri>()) {
            let _ = block_on(layer(fixture()).authenticate(&tower_dpop::testing::request_parts(&method, &path, &h)));
        }
    }

    #[test]
    fn verification_never_panics_on_signed_proofs_with_odd_claims(
        claims in prop::collection::vec((prop::sample::select(CLAIMS), json_value()), 0..3),
        params in prop::collection::vec((prop::sample::select(HEADER_PARAMS), json_value()), 0..2),
        removed in prop::option::of(prop::sample::select(CLAIMS)),
    ) {
        let f = fixture();
        let mut b = f.client.proof("GET", URL).access_token(&f.token).iat(T0);
        if let Some(name) = removed {
            b = b.without_claim(name);
        }
        for (name, value) in &claims {
            b = b.claim(name, value.clone());
        }
        for (name, value) in &params {
            b = b.header(name, value.clone());
        }
        let proof = b.sign();
        let h = headers(&auth(&f.token), proof.as_bytes()).unwrap();
        let _ = block_on(layer(f).authenticate(&tower_dpop::testing::request_parts(&Method::GET, PATH, &h)));
    }
}

// ---- nonces -------------------------------------------------------------------------------

fn nonces() -> Nonces {
    Nonces::new(&[1; 32], Duration::from_secs(300)).unwrap()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn nonce_check_never_panics(s in any::<String>(), now in any::<u64>()) {
        let n = nonces();
        let _ = n.check(&s, now);
        let _ = n.check(&s, T0);
    }

    #[test]
    fn nonce_check_never_panics_on_nonce_like_text(s in "[A-Za-z0-9_=+/-]{38,42}", now in any::<u64>()) {
        let _ = nonces().check(&s, now);
    }

    #[test]
    fn any_single_char_change_of_a_valid_nonce_is_rejected(
        issued in 0..u64::MAX / 2,
        age in 0..300u64,
        pos in any::<prop::sample::Index>(),
        c in any::<char>(),
    ) {
        let n = nonces();
        let now = issued + age;
        let nonce = n.issue(issued);
        prop_assert_eq!(n.check(&nonce, now), Some(issued));
        let mut chars: Vec<char> = nonce.chars().collect();
        let i = pos.index(chars.len());
        prop_assume!(chars[i] != c);
        chars[i] = c;
        let changed: String = chars.into_iter().collect();
        prop_assert_eq!(n.check(&changed, now), None, "{} -> {}", nonce, changed);
    }

    #[test]
    fn a_nonce_from_another_secret_is_rejected(issued in 0..u64::MAX / 2, byte in 2u8..) {
        let other = Nonces::new(&[byte; 32], Duration::from_secs(300)).unwrap();
        prop_assert_eq!(nonces().check(&other.issue(issued), issued), None);
    }
}

#[test]
fn the_fuzz_seed_nonce_is_valid() {
    // fuzz/corpus/nonce/seed-0 was computed outside the crate (HMAC over the documented
    // format) for secret [1; 32] at T0; it must pass, or the seed corpus is useless.
    let seed = include_str!("../../fuzz/corpus/nonce/seed-0");
    assert_eq!(nonces().check(seed, T0), Some(T0));
}

#[test]
fn the_fuzz_seed_requests_are_accepted() {
    // The verify_request fuzz target's layer, and its seed corpus (from
    // tests/vectors/independent.json): every seed but the bearer one must pass, so the fuzzer
    // starts from inputs that reach the signature and replay checks.
    let validator = JwtValidator::builder()
        .jwks_json(include_str!("../../fuzz/jwks.json"))
        .issuer("https://as.example.com")
        .audience("https://rs.example.com")
        .build()
        .unwrap();
    let layer = DpopLayer::builder()
        .public_origin("https://rs.example.com")
        .algorithms(Algorithm::ALL.iter().copied())
        .token_validator(validator)
        .clock(ManualClock::at_unix(1_764_000_000))
        .build()
        .unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/verify_request");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") || name == "seed-bearer" {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let fields: Vec<&[u8]> = data.splitn(4, |&b| b == b'\n').collect();
        let h = headers(fields[0], fields[1]).unwrap();
        let method = Method::from_bytes(fields[2]).unwrap();
        let path = std::str::from_utf8(fields[3]).unwrap();
        block_on(layer.authenticate(&tower_dpop::testing::request_parts(&method, path, &h)))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} seeds");
}

#[test]
fn every_position_of_the_proof_and_token_is_covered() {
    // The properties above sample positions; this walks all of them with a few replacement
    // bytes each (one fresh layer per request, so a replay is never the reason).
    let f = fixture();
    let check = |authorization: &[u8], proof: &[u8], what: &str| {
        if let Some(h) = headers(authorization, proof) {
            let got = block_on(layer(f).authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                PATH,
                &h,
            )));
            assert!(got.is_err(), "{what} accepted");
        }
    };
    for i in 0..f.proof.len() {
        for b in [f.proof.as_bytes()[i] ^ 1, b'A', b'.', b'_'] {
            let mut proof = f.proof.clone().into_bytes();
            if proof[i] != b {
                proof[i] = b;
                check(
                    &auth(&f.token),
                    &proof,
                    &format!("proof byte {i} -> {b:#04x}"),
                );
            }
        }
    }
    let authorization = auth(&f.token);
    for i in 5..authorization.len() {
        for b in [authorization[i] ^ 1, b'A', b'.'] {
            let mut a = authorization.clone();
            if a[i] != b {
                a[i] = b;
                check(
                    &a,
                    f.proof.as_bytes(),
                    &format!("token byte {} -> {b:#04x}", i - 5),
                );
            }
        }
    }
}
