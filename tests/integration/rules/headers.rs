//! RFC 9449 §4.1 and §7.1, RFC 6750 §3.1: the `Authorization` and `DPoP` headers, their
//! syntax and counts, and the size bound before anything is decoded.

use super::*;

#[tokio::test]
async fn header_rules() {
    let f = Fixture::new();
    let proof = f.proof().sign();
    let auth = format!("DPoP {}", f.token);
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Error);
    let cases: Vec<Case> = vec![
        ("nothing at all", vec![], missing()),
        (
            "proof without token",
            vec![("dpop", proof.clone())],
            missing(),
        ),
        (
            "bearer scheme",
            vec![
                ("authorization", format!("Bearer {}", f.token)),
                ("dpop", proof.clone()),
            ],
            missing(),
        ),
        (
            "basic scheme",
            vec![("authorization", "Basic YTpi".into())],
            missing(),
        ),
        (
            "two authorization fields",
            vec![
                ("authorization", auth.clone()),
                ("authorization", auth.clone()),
                ("dpop", proof.clone()),
            ],
            Error::new(
                ErrorKind::MalformedRequest,
                "more than one Authorization header",
            ),
        ),
        (
            "two dpop fields",
            vec![
                ("authorization", auth.clone()),
                ("dpop", proof.clone()),
                ("dpop", proof.clone()),
            ],
            Error::new(ErrorKind::MalformedRequest, "more than one DPoP header"),
        ),
        (
            "two dpop fields, no token",
            vec![("dpop", proof.clone()), ("dpop", proof.clone())],
            Error::new(ErrorKind::MalformedRequest, "more than one DPoP header"),
        ),
        (
            "scheme without token",
            vec![("authorization", "DPoP".into()), ("dpop", proof.clone())],
            Error::new(
                ErrorKind::MalformedRequest,
                "Authorization DPoP credentials are not a token68 value",
            ),
        ),
        (
            "token not token68",
            vec![
                ("authorization", "DPoP a,b".into()),
                ("dpop", proof.clone()),
            ],
            Error::new(
                ErrorKind::MalformedRequest,
                "Authorization DPoP credentials are not a token68 value",
            ),
        ),
        (
            "two tokens",
            vec![
                ("authorization", format!("{auth} {}", f.token)),
                ("dpop", proof.clone()),
            ],
            Error::new(
                ErrorKind::MalformedRequest,
                "Authorization DPoP credentials are not a token68 value",
            ),
        ),
        (
            "dpop not token68",
            vec![
                ("authorization", auth.clone()),
                ("dpop", format!("{proof} x")),
            ],
            Error::new(
                ErrorKind::MalformedRequest,
                "DPoP header is not a token68 value",
            ),
        ),
        (
            "empty dpop",
            vec![("authorization", auth.clone()), ("dpop", String::new())],
            Error::new(
                ErrorKind::MalformedRequest,
                "DPoP header is not a token68 value",
            ),
        ),
        (
            "token without proof",
            vec![("authorization", auth.clone())],
            Error::new(ErrorKind::ProofMissing, "missing DPoP proof header"),
        ),
    ];
    for (name, fields, expected) in cases {
        let mut h = HeaderMap::new();
        for (k, v) in fields {
            h.append(k, HeaderValue::from_str(&v).unwrap());
        }
        assert_eq!(
            f.layer
                .authenticate(&tower_dpop::testing::request_parts(
                    &Method::GET,
                    "/api/me",
                    &h
                ))
                .await
                .unwrap_err(),
            expected,
            "{name}"
        );
    }
}

#[tokio::test]
async fn scheme_is_case_insensitive_and_extra_spaces_allowed() {
    let f = Fixture::new();
    for scheme in ["dpop", "DPOP", "DPoP", "dPoP"] {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("{scheme}  {}", f.token)).unwrap(),
        );
        h.insert("dpop", HeaderValue::from_str(&f.proof().sign()).unwrap());
        f.layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/api/me",
                &h,
            ))
            .await
            .unwrap_or_else(|e| panic!("{scheme}: {e}"));
    }
}

#[tokio::test]
async fn proof_size_is_checked_before_decoding() {
    let f = Fixture::new();
    // Not even a JWS: the size check must fire first.
    let huge = "A".repeat(8 * 1024 + 1);
    assert_eq!(
        f.get(&huge).await,
        proof_err(ErrorKind::ProofTooLarge, "DPoP proof is too large")
    );
    // A real proof padded past the limit with an extra claim.
    let padded = f.proof().claim("pad", json!("x".repeat(9000))).sign();
    assert_eq!(
        f.get(&padded).await,
        proof_err(ErrorKind::ProofTooLarge, "DPoP proof is too large")
    );
    // The limit is configurable.
    let g = Fixture::with(Algorithm::ES256, |b| b.max_proof_size(16 * 1024));
    let padded = g.proof().claim("pad", json!("x".repeat(9000))).sign();
    assert_eq!(g.get(&padded).await, Ok(()));
    // Exactly at the limit is not too large: it reaches the JWS parser.
    assert_eq!(
        f.get(&"A".repeat(8 * 1024)).await,
        proof_err(
            ErrorKind::ProofMalformed,
            "proof is not a compact JWS with three parts"
        )
    );
}
