//! Issuer metadata documents (OpenID Connect discovery, RFC 8414) as the JWT validator reads
//! them, for a fixed issuer: never panics, and a `jwks_uri` is taken only from a JSON object
//! whose `issuer` is the configured one exactly, and only when it is an `https:` URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_dpop::__private::discovery_jwks_uri;

const ISSUER: &str = "https://as.example.com/tenant";

fuzz_target!(|data: &[u8]| {
    let Some(uri) = discovery_jwks_uri(ISSUER, data) else {
        return;
    };
    assert!(uri.starts_with("https://"), "{uri}");
    let text = std::str::from_utf8(data).expect("a document it read is UTF-8");
    // serde_json's `Value` refuses some escapes (lone surrogates) in members the reader ignores;
    // where it parses, the issuer is the configured one.
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) {
        assert_eq!(doc["issuer"], ISSUER, "the issuer must be the configured one");
    }
});
