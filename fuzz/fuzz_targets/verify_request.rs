//! The whole verification pipeline (`DpopLayer::verify`) on arbitrary `Authorization` and
//! `DPoP` header bytes, with a fixed issuer key and a fixed clock: never panics.
//!
//! Input layout: `authorization \n dpop [\n method [\n path]]`; fields that HTTP cannot carry
//! are skipped. The DPoP proof is checked against `https://api.example.com`.
#![no_main]

use std::sync::OnceLock;

use futures::executor::block_on;
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use tower_dpop::clock::ManualClock;
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::DpopLayer;

/// The time of the seed corpus (`tests/vectors/independent.json`, `now`).
const NOW: u64 = 1_764_000_000;

/// The key set of `tests/vectors/independent.json`, so its proofs and tokens in the seed
/// corpus get past the token check and exercise the signature and replay steps too.
const JWKS: &str = include_str!("../jwks.json");

fn layer() -> &'static DpopLayer {
    static L: OnceLock<DpopLayer> = OnceLock::new();
    L.get_or_init(|| {
        let validator = JwtValidator::builder()
            .jwks_json(JWKS)
            .issuer("https://as.example.com")
            .audience("https://rs.example.com")
            .build()
            .expect("the fixed key set is valid");
        DpopLayer::builder()
            .public_origin("https://rs.example.com")
            // The seed corpus has proofs of every algorithm.
            .algorithms(tower_dpop::Algorithm::ALL.iter().copied())
            .token_validator(validator)
            .clock(ManualClock::at_unix(NOW))
            .build()
            .expect("the fixed configuration is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(4, |&b| b == b'\n');
    let authorization = fields.next().unwrap_or_default();
    let dpop = fields.next().unwrap_or_default();
    let method = fields
        .next()
        .and_then(|m| Method::from_bytes(m).ok())
        .unwrap_or(Method::GET);
    let path = fields
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .unwrap_or("/api/me");
    // A request target HTTP cannot carry never reaches the layer (hyper refuses it first).
    if path.parse::<http::Uri>().is_err() {
        return;
    }
    let mut headers = HeaderMap::new();
    if !authorization.is_empty() {
        let Ok(v) = HeaderValue::from_bytes(authorization) else {
            return;
        };
        headers.insert("authorization", v);
    }
    if !dpop.is_empty() {
        let Ok(v) = HeaderValue::from_bytes(dpop) else {
            return;
        };
        headers.insert("dpop", v);
    }
    let _ = block_on(layer().authenticate(&tower_dpop::testing::request_parts(&method, path, &headers)));
});
