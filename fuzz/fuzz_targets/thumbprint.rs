//! RFC 7638 thumbprints of arbitrary JSON text: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_dpop::testing::jwk_thumbprint;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(t) = jwk_thumbprint(s) {
            assert_eq!(t.len(), 43, "a thumbprint is 32 bytes in base64url");
        }
    }
});
