//! The JWT validator's key-set parser on arbitrary text: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_dpop::token::jwt::JwtValidator;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = JwtValidator::builder()
            .jwks_json(s)
            .any_issuer()
            .any_audience()
            .build();
    }
});
