//! The Redis replay store's key for arbitrary thumbprints, `jti`s and prefixes: the prefix
//! followed by exactly 43 base64url characters, whatever the `jti` holds (CR, LF, spaces, Redis
//! glob characters, invalid UTF-8 never reach it as text), and the same key for two proofs only
//! when their key and `jti` are the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_dpop::__private::redis_key;

fuzz_target!(|data: &[u8]| {
    // 32 bytes of thumbprint, a prefix length byte, the prefix, then two jtis split at the
    // first 0xFF byte.
    let Some((thumbprint, rest)) = data.split_first_chunk::<32>() else {
        return;
    };
    let Some((&prefix_len, rest)) = rest.split_first() else {
        return;
    };
    let prefix_len = usize::from(prefix_len % 32).min(rest.len());
    let (prefix, rest) = rest.split_at(prefix_len);
    let Ok(prefix) = std::str::from_utf8(prefix) else {
        return;
    };
    let (a, b) = match rest.iter().position(|&c| c == 0xFF) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[..0]),
    };
    let a = String::from_utf8_lossy(a);
    let b = String::from_utf8_lossy(b);

    let key_a = redis_key(prefix, thumbprint, &a);
    let key_b = redis_key(prefix, thumbprint, &b);
    for key in [&key_a, &key_b] {
        let tail = key.strip_prefix(prefix).expect("the key starts with the prefix");
        assert_eq!(tail.len(), 43, "32 bytes in base64url");
        assert!(
            tail.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{tail:?}"
        );
    }
    assert_eq!(key_a == key_b, a == b, "one Redis key per (thumbprint, jti)");

    let mut other = *thumbprint;
    other[0] ^= 1;
    assert_ne!(key_a, redis_key(prefix, &other, &a), "another key, another Redis key");
});
