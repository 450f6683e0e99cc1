//! The checks every RFC 7662 introspection response goes through, whether it came as plain
//! JSON or inside a verified RFC 9701 JWT: a JSON object, `active` exactly `true`, `iss` and
//! `aud` as configured, and a `token_type` that agrees with the token's binding.

use serde_json::{Map, Value};

use crate::token::expect::Expected;
use crate::token::{AccessToken, TokenError};

/// The RFC 9449 token type (section 5): the one `token_type` a DPoP-bound token may carry.
const DPOP: &str = "DPoP";

/// Why a token type and a binding disagree.
const DPOP_UNBOUND: &str = "introspection says token_type DPoP but gives no cnf.jkt";
const JKT_NOT_DPOP: &str = "introspection gives cnf.jkt but a token_type other than DPoP";

/// The token described by one introspection response (`claims`, the RFC 7662 members).
///
/// - `active` must be the JSON value `true` (a string `"true"` is not): anything else is a
///   token the authorization server does not vouch for.
/// - `iss` and `aud` as configured ([`Expected`]).
/// - `token_type` (RFC 7662 section 2.2; compared without case, as RFC 6749 section 7.1
///   says), when present, must agree with `cnf.jkt`: a token with `cnf.jkt` must be of type
///   `DPoP`, and a token of type `DPoP` must have `cnf.jkt` (RFC 9449 section 6.2). Without
///   this a response that calls a token `DPoP` but forgot its binding would let it through as
///   a Bearer token, and one that calls a bound token `Bearer` would be trusted for a binding
///   the authorization server does not stand behind. Other types (RFC 8705 certificate-bound
///   `Bearer` tokens with `cnf.x5t#S256`, or names some servers use such as `access_token`)
///   are left to the binding rules of the layer: a token without `cnf.jkt` never passes a DPoP
///   request, and a token with any `cnf` never passes a Bearer one.
pub(super) fn token_from_response(
    claims: Map<String, Value>,
    expected: &Expected,
) -> Result<AccessToken, TokenError> {
    if claims.get("active") != Some(&Value::Bool(true)) {
        return Err(TokenError::invalid("access token is not active"));
    }
    expected.check(&claims)?;
    check_token_type(&claims)?;
    AccessToken::from_claims(claims)
}

fn check_token_type(claims: &Map<String, Value>) -> Result<(), TokenError> {
    let has_jkt = claims
        .get("cnf")
        .and_then(Value::as_object)
        .is_some_and(|cnf| cnf.contains_key("jkt"));
    match claims.get("token_type") {
        None => Ok(()),
        Some(Value::String(t)) if t.eq_ignore_ascii_case(DPOP) => {
            if has_jkt {
                Ok(())
            } else {
                Err(TokenError::invalid(DPOP_UNBOUND))
            }
        }
        Some(Value::String(_)) if has_jkt => Err(TokenError::invalid(JKT_NOT_DPOP)),
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(TokenError::invalid(
            "introspection token_type is not a string",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::thumbprint::Thumbprint;
    use serde_json::json;

    struct Case {
        name: &'static str,
        response: Value,
        expected: Result<(), &'static str>,
    }

    fn expected() -> Expected {
        use crate::token::expect::Wanted;
        let mut iss = Wanted::default();
        iss.push("https://as".into());
        let mut aud = Wanted::default();
        aud.push("api".into());
        Expected::from_wanted(iss, aud).unwrap()
    }

    #[test]
    fn response_rules() {
        let jkt = Thumbprint::from_bytes([7; 32]).to_base64url();
        let base = |extra: Value| {
            let mut v = json!({"active": true, "iss": "https://as", "aud": "api"});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        let cases = [
            Case {
                name: "active, bound, DPoP",
                response: base(json!({"token_type": "DPoP", "cnf": {"jkt": jkt}})),
                expected: Ok(()),
            },
            Case {
                name: "token_type compared without case",
                response: base(json!({"token_type": "dpop", "cnf": {"jkt": jkt}})),
                expected: Ok(()),
            },
            Case {
                name: "bound, no token_type",
                response: base(json!({"cnf": {"jkt": jkt}})),
                expected: Ok(()),
            },
            Case {
                name: "unbound Bearer",
                response: base(json!({"token_type": "Bearer"})),
                expected: Ok(()),
            },
            Case {
                name: "certificate-bound Bearer (RFC 8705)",
                response: base(json!({"token_type": "Bearer", "cnf": {"x5t#S256": "x"}})),
                expected: Ok(()),
            },
            Case {
                name: "DPoP without cnf.jkt",
                response: base(json!({"token_type": "DPoP"})),
                expected: Err(DPOP_UNBOUND),
            },
            Case {
                name: "DPoP with only a certificate binding",
                response: base(json!({"token_type": "DPoP", "cnf": {"x5t#S256": "x"}})),
                expected: Err(DPOP_UNBOUND),
            },
            Case {
                name: "cnf.jkt under token_type Bearer",
                response: base(json!({"token_type": "Bearer", "cnf": {"jkt": jkt}})),
                expected: Err(JKT_NOT_DPOP),
            },
            Case {
                name: "cnf.jkt under another token_type",
                response: base(json!({"token_type": "access_token", "cnf": {"jkt": jkt}})),
                expected: Err(JKT_NOT_DPOP),
            },
            Case {
                name: "token_type not a string",
                response: base(json!({"token_type": 1, "cnf": {"jkt": jkt}})),
                expected: Err("introspection token_type is not a string"),
            },
            Case {
                name: "inactive",
                response: base(json!({"active": false, "cnf": {"jkt": jkt}})),
                expected: Err("access token is not active"),
            },
            Case {
                name: "active as a string",
                response: base(json!({"active": "true", "cnf": {"jkt": jkt}})),
                expected: Err("access token is not active"),
            },
            Case {
                name: "active missing",
                response: json!({"iss": "https://as", "aud": "api"}),
                expected: Err("access token is not active"),
            },
            Case {
                name: "another issuer",
                response: base(json!({"iss": "https://elsewhere"})),
                expected: Err("access token issuer is not accepted"),
            },
            Case {
                name: "another audience",
                response: base(json!({"aud": ["other"]})),
                expected: Err("access token audience is not accepted"),
            },
        ];
        let expected_lists = expected();
        for case in cases {
            let got =
                token_from_response(case.response.as_object().cloned().unwrap(), &expected_lists)
                    .map(|_| ());
            let want = case.expected.map_err(TokenError::invalid);
            assert_eq!(got, want, "{}", case.name);
        }
    }

    #[test]
    fn the_token_carries_the_response_claims() {
        let jkt = Thumbprint::from_bytes([7; 32]);
        let t = token_from_response(
            json!({"active": true, "iss": "https://as", "aud": "api", "sub": "alice",
                   "exp": 10, "cnf": {"jkt": jkt.to_base64url()}})
            .as_object()
            .cloned()
            .unwrap(),
            &expected(),
        )
        .unwrap();
        assert_eq!(t.jkt(), Some(jkt));
        assert_eq!(t.subject(), Some("alice"));
        assert_eq!(t.expires_at(), Some(10));
    }
}
