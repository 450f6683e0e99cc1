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
    let doc: serde_json::Value = serde_json::from_slice(data).expect("a document it read is JSON");
    assert_eq!(doc["issuer"], ISSUER, "the issuer must be the configured one");
});
