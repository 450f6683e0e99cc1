//! Builder settings are validated at build time and name the setting that is wrong.

use super::*;

#[test]
fn configuration_is_validated_at_build_time() {
    let issuer = TestIssuer::new();
    let ok = || {
        DpopLayer::builder()
            .public_origin(ORIGIN)
            .token_validator(validator(&issuer))
    };
    assert!(ok().build().is_ok());
    let cases: Vec<(&str, DpopLayerBuilder)> = vec![
        (
            "no origin",
            DpopLayer::builder().token_validator(validator(&issuer)),
        ),
        ("no validator", DpopLayer::builder().public_origin(ORIGIN)),
        (
            "origin with a path",
            ok().public_origin("https://api.example.com/api"),
        ),
        (
            "origin not http",
            ok().public_origin("ftp://api.example.com"),
        ),
        ("no algorithms", ok().algorithms([])),
        ("zero max age", ok().max_proof_age(Duration::ZERO)),
        (
            "huge max age",
            ok().max_proof_age(Duration::from_secs(86_400)),
        ),
        ("huge leeway", ok().future_leeway(Duration::from_secs(3600))),
        ("tiny proof limit", ok().max_proof_size(10)),
    ];
    for (name, builder) in cases {
        let err = builder.build().unwrap_err();
        assert!(
            err.to_string().starts_with("invalid DPoP configuration"),
            "{name}: {err}"
        );
    }
    assert!(
        JwtValidator::builder().build().is_err(),
        "a JWT validator needs keys"
    );
    assert!(
        JwtValidator::builder().jwks_json("{").build().is_err(),
        "bad JWKS"
    );
    // HMAC and `none` cannot even be named (`Algorithm` has no such variant); an empty
    // list is refused.
    assert!(
        JwtValidator::builder()
            .jwks_json(&issuer.jwks_json())
            .any_issuer()
            .any_audience()
            .algorithms([])
            .build()
            .is_err(),
        "no algorithm"
    );
    assert_eq!(random_id(16).len(), 22);
}
