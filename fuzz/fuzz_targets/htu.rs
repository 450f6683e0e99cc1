//! `htu` normalization on arbitrary text: never panics, and normal forms are fixed points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_dpop::__private::{normalize, normalize_path, Origins};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(n) = normalize(s) {
        assert_eq!(normalize(&n).as_deref(), Some(n.as_str()), "normalize not idempotent");
    }
    if let Some(p) = normalize_path(s) {
        assert!(p.starts_with('/'));
        assert_eq!(
            normalize_path(&p).as_deref(),
            Some(p.as_str()),
            "normalize_path not idempotent"
        );
    }
    if let Some(o) = Origins::parse(&[s]) {
        let text = o.as_strs()[0].to_owned();
        let again = Origins::parse(&[&text]).expect("a normalized origin parses");
        assert_eq!(again.as_strs(), vec![text.as_str()]);
    }
    // Split the input in two: a claim and a request path.
    let (htu, path) = s.split_at(s.find('\n').unwrap_or(s.len()));
    let origins = Origins::parse(&["https://api.example.com", "http://localhost:8080"])
        .expect("valid origins");
    let _ = origins.matches(htu, path.trim_start_matches('\n'));
    let _ = origins.matches(s, s);
});
