//! `htu` normalization on arbitrary text: never panics, and normal forms are fixed points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_dpop::htu::{matches_any, normalize, normalize_path, PublicOrigin};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = normalize(s) {
        let n = n.into_owned();
        assert_eq!(
            normalize(&n).as_deref(),
            Ok(n.as_str()),
            "normalize not idempotent"
        );
    }
    if let Ok(p) = normalize_path(s) {
        let p = p.into_owned();
        assert!(p.starts_with('/'));
        assert_eq!(
            normalize_path(&p).as_deref(),
            Ok(p.as_str()),
            "normalize_path not idempotent"
        );
    }
    if let Ok(o) = PublicOrigin::parse(s) {
        assert_eq!(
            PublicOrigin::parse(o.as_str())
                .as_ref()
                .map(PublicOrigin::as_str),
            Ok(o.as_str())
        );
    }
    // Split the input in two: a claim and a request path.
    let (htu, path) = s.split_at(s.find('\n').unwrap_or(s.len()));
    let origins: Vec<PublicOrigin> = ["https://api.example.com", "http://localhost:8080"]
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    let _ = matches_any(&origins, htu, path.trim_start_matches('\n'));
    let _ = matches_any(&origins, s, s);
});
