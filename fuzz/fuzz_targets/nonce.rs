//! Server nonce checks on arbitrary text: never panics, and nothing but an issued nonce passes.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tower_dpop::__private::Nonces;

const NOW: u64 = 1_800_000_000;

fn nonces() -> &'static Nonces {
    static N: OnceLock<Nonces> = OnceLock::new();
    N.get_or_init(|| Nonces::new(&[1; 32], Duration::from_secs(300)).expect("valid nonces"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for now in [NOW, 0, u64::MAX] {
        let _ = nonces().check(s, now);
    }
});
