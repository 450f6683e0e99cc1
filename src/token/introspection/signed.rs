//! JWT introspection responses (RFC 9701): the authorization server signs its answer, and the
//! resource server verifies it before reading a word of it.
//!
//! A response is accepted only when it is a compact JWS whose header has `typ`
//! `token-introspection+jwt` (RFC 9701 section 5; `application/` prefix and case tolerated, as
//! for media types), no `crit`, and an allowed `alg`; whose signature verifies with a key of
//! the authorization server's key set (chosen by `kid` and `alg`, as for access tokens); and
//! whose claims have `iss` equal to the authorization server's issuer identifier, `aud` naming
//! this resource server, and `iat` within the allowed age. Its `token_introspection` member is
//! then the RFC 7662 response, checked like a plain one.
//!
//! A response that fails any of this is not the authorization server speaking: it says nothing
//! about the token, so it gives [`TokenError::Unavailable`](crate::token::TokenError) (503),
//! never an answer about the token either way.

use std::borrow::Cow;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::proof::algorithm::Algorithm;
use crate::token::jwt::keys::{KeyRing, Lookup};
use crate::token::jwt::remote::RemoteJwks;

/// The `Accept` of a request for a JWT response (RFC 9701 section 4).
pub(super) const ACCEPT: &str = "application/token-introspection+jwt";

/// How far in the future an `iat` may be (clock skew between the two servers).
const MAX_IAT_AHEAD_SECS: u64 = 10;

/// Where the keys come from.
#[derive(Debug)]
pub(super) enum Keys {
    Static(KeyRing),
    Remote(Arc<RemoteJwks>),
}

/// What a JWT response must satisfy.
#[derive(Debug)]
pub(super) struct SignedResponses {
    pub(super) keys: Keys,
    pub(super) algorithms: Vec<Algorithm>,
    pub(super) issuer: String,
    pub(super) audience: String,
    pub(super) max_age_secs: u64,
    pub(super) clock: Arc<dyn Clock>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// A compact JWS split and its header read.
struct Jws<'b> {
    alg: Algorithm,
    kid: Option<String>,
    signing_input: &'b str,
    signature: Vec<u8>,
    claims: Map<String, Value>,
}

/// What a key set says of one response.
enum Check {
    Verified,
    UnknownKid,
    Refused(Cow<'static, str>),
}

fn typ_ok(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("token-introspection+jwt")
            || t.eq_ignore_ascii_case("application/token-introspection+jwt")
    })
}

impl SignedResponses {
    fn parse<'b>(&self, body: &'b [u8]) -> Result<Jws<'b>, String> {
        let text = std::str::from_utf8(body)
            .map_err(|_| "JWT response is not UTF-8".to_owned())?
            .trim_matches(|c: char| c.is_ascii_whitespace());
        let not_jws =
            || "response is not a compact JWS (is the endpoint answering with plain JSON?)";
        let mut dots = memchr::memchr_iter(b'.', text.as_bytes());
        let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
            return Err(not_jws().to_owned());
        };
        let header = text.get(..first).unwrap_or_default();
        let payload = text.get(first + 1..second).unwrap_or_default();
        let signature = text.get(second + 1..).unwrap_or_default();
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| "JWT response header is not base64url".to_owned())?;
        let header: Header<'_> = serde_json::from_slice(&header_json)
            .map_err(|_| "JWT response header is malformed".to_owned())?;
        if header.crit.is_some() {
            return Err("JWT response has crit".to_owned());
        }
        if !typ_ok(header.typ.as_deref()) {
            return Err(format!(
                "JWT response typ is {:?}, not token-introspection+jwt",
                header.typ.as_deref()
            ));
        }
        let alg = header
            .alg
            .as_deref()
            .and_then(Algorithm::from_name)
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| format!("JWT response alg {:?} is not accepted", header.alg))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "JWT response signature is not base64url".to_owned())?;
        let claims: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or_else(|| "JWT response claims are not a JSON object".to_owned())?;
        Ok(Jws {
            alg,
            kid: header.kid.map(Cow::into_owned),
            signing_input: text.get(..second).unwrap_or_default(),
            signature,
            claims,
        })
    }

    /// The RFC 7662 members of a verified response; `Err` says why for the logs.
    pub(super) async fn open(&self, body: &[u8]) -> Result<Map<String, Value>, String> {
        let jws = self.parse(body)?;
        self.verify_signature(&jws).await?;
        self.check_claims(jws.claims)
    }

    async fn verify_signature(&self, jws: &Jws<'_>) -> Result<(), String> {
        let check = |ring: &KeyRing| match ring.find(jws.kid.as_deref(), jws.alg) {
            Lookup::Key(key) if key.verify(jws.signing_input.as_bytes(), &jws.signature) => {
                Check::Verified
            }
            Lookup::Key(_) => Check::Refused("JWT response signature does not verify".into()),
            Lookup::UnknownKid => Check::UnknownKid,
            Lookup::Refused(why) => Check::Refused(why.into()),
        };
        let last = |check: Check| match check {
            Check::Verified => Ok(()),
            Check::UnknownKid => Err("JWT response kid is not in the key set".to_owned()),
            Check::Refused(why) => Err(why.into_owned()),
        };
        let remote = match &self.keys {
            Keys::Static(ring) => return last(check(ring)),
            Keys::Remote(remote) => remote,
        };
        // As for access tokens: stale keys answer at once while a refresh runs; an unknown
        // `kid` waits for the one fetch that may bring it.
        let view = remote.view();
        if let Some(ring) = &view.keys {
            if view.refresh_due {
                remote.refresh_in_background();
            }
            match check(ring) {
                Check::UnknownKid => {}
                other => return last(other),
            }
        }
        remote.fetch_and_wait().await;
        match &remote.view().keys {
            Some(ring) => last(check(ring)),
            None => Err("no usable JWKS for the JWT responses".to_owned()),
        }
    }

    fn check_claims(&self, mut claims: Map<String, Value>) -> Result<Map<String, Value>, String> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err("JWT response iss is not the authorization server's issuer".to_owned());
        }
        let for_us = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !for_us {
            return Err("JWT response aud does not name this resource server".to_owned());
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_f64)
            .ok_or_else(|| "JWT response has no numeric iat".to_owned())?;
        let now = self.clock.unix_seconds();
        #[allow(clippy::cast_precision_loss)]
        let (earliest, latest) = (
            now.saturating_sub(self.max_age_secs) as f64,
            now.saturating_add(MAX_IAT_AHEAD_SECS) as f64,
        );
        if !(earliest..=latest).contains(&iat) {
            return Err(format!(
                "JWT response iat {iat} is outside [{earliest}, {latest}]"
            ));
        }
        match claims.remove("token_introspection") {
            Some(Value::Object(inner)) => Ok(inner),
            _ => Err("JWT response has no token_introspection object".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::testing::ClientKey;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn jws(key: &ClientKey, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = URL_SAFE_NO_PAD.encode(key.sign_raw(input.as_bytes()));
        format!("{input}.{sig}")
    }

    fn responses(key: &ClientKey) -> SignedResponses {
        let mut jwk = key.public_jwk().clone();
        jwk["kid"] = json!("as-1");
        let set = json!({ "keys": [jwk] }).to_string();
        SignedResponses {
            keys: Keys::Static(KeyRing::parse(set.as_bytes(), Algorithm::DEFAULT).unwrap()),
            algorithms: Algorithm::DEFAULT.to_vec(),
            issuer: "https://as".into(),
            audience: "rs-client".into(),
            max_age_secs: 60,
            clock: Arc::new(ManualClock::at_unix(NOW)),
        }
    }

    struct Case {
        name: &'static str,
        header: Value,
        claims: Value,
        says: Option<&'static str>,
    }

    #[tokio::test]
    async fn response_jwt_rules() {
        let key = ClientKey::generate(Algorithm::ES256);
        let other = ClientKey::generate(Algorithm::ES256);
        let v = responses(&key);
        let header = json!({"alg": "ES256", "kid": "as-1", "typ": "token-introspection+jwt"});
        let claims = json!({"iss": "https://as", "aud": "rs-client", "iat": NOW,
                            "token_introspection": {"active": true, "sub": "alice"}});
        let with = |base: &Value, k: &str, x: Value| {
            let mut v = base.clone();
            if x.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = x;
            }
            v
        };
        let cases = vec![
            Case {
                name: "valid",
                header: header.clone(),
                claims: claims.clone(),
                says: None,
            },
            Case {
                name: "media type form of typ",
                header: with(&header, "typ", json!("application/token-introspection+JWT")),
                claims: claims.clone(),
                says: None,
            },
            Case {
                name: "aud as an array",
                header: header.clone(),
                claims: with(&claims, "aud", json!(["x", "rs-client"])),
                says: None,
            },
            Case {
                name: "iat at the edge of the window",
                header: header.clone(),
                claims: with(&claims, "iat", json!(NOW - 60)),
                says: None,
            },
            Case {
                name: "typ of an access token",
                header: with(&header, "typ", json!("at+jwt")),
                claims: claims.clone(),
                says: Some("typ"),
            },
            Case {
                name: "no typ",
                header: with(&header, "typ", Value::Null),
                claims: claims.clone(),
                says: Some("typ"),
            },
            Case {
                name: "crit",
                header: with(&header, "crit", json!(["exp"])),
                claims: claims.clone(),
                says: Some("crit"),
            },
            Case {
                name: "alg none",
                header: with(&header, "alg", json!("none")),
                claims: claims.clone(),
                says: Some("alg"),
            },
            Case {
                name: "another issuer",
                header: header.clone(),
                claims: with(&claims, "iss", json!("https://as/")),
                says: Some("iss"),
            },
            Case {
                name: "no issuer",
                header: header.clone(),
                claims: with(&claims, "iss", Value::Null),
                says: Some("iss"),
            },
            Case {
                name: "for another resource server",
                header: header.clone(),
                claims: with(&claims, "aud", json!("other-rs")),
                says: Some("aud"),
            },
            Case {
                name: "no iat",
                header: header.clone(),
                claims: with(&claims, "iat", Value::Null),
                says: Some("iat"),
            },
            Case {
                name: "iat too old",
                header: header.clone(),
                claims: with(&claims, "iat", json!(NOW - 61)),
                says: Some("iat"),
            },
            Case {
                name: "iat in the future",
                header: header.clone(),
                claims: with(&claims, "iat", json!(NOW + 11)),
                says: Some("iat"),
            },
            Case {
                name: "no token_introspection",
                header: header.clone(),
                claims: with(&claims, "token_introspection", Value::Null),
                says: Some("token_introspection"),
            },
            Case {
                name: "RFC 7662 members at the top level instead",
                header: header.clone(),
                claims: with(&claims, "token_introspection", json!(true)),
                says: Some("token_introspection"),
            },
            Case {
                name: "unknown kid",
                header: with(&header, "kid", json!("as-2")),
                claims: claims.clone(),
                says: Some("kid"),
            },
        ];
        for case in cases {
            let body = jws(&key, &case.header, &case.claims);
            let got = v.open(body.as_bytes()).await;
            match case.says {
                None => assert_eq!(got.unwrap()["sub"], "alice", "{}", case.name),
                Some(word) => {
                    let err = got.unwrap_err();
                    assert!(err.contains(word), "{}: {err}", case.name);
                }
            }
        }

        // Signed by another key, or altered after signing.
        let forged = jws(&other, &header, &claims);
        assert!(v
            .open(forged.as_bytes())
            .await
            .unwrap_err()
            .contains("signature"));
        let good = jws(&key, &header, &claims);
        let (input, sig) = good.rsplit_once('.').unwrap();
        let (head, _) = input.split_once('.').unwrap();
        let altered = with(&claims, "aud", json!("rs-client"));
        let altered = with(
            &altered,
            "token_introspection",
            json!({"active": true, "sub": "mallory"}),
        );
        let tampered = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(altered.to_string())
        );
        assert!(v
            .open(tampered.as_bytes())
            .await
            .unwrap_err()
            .contains("signature"));
        // A trailing newline is tolerated; plain JSON is not a JWT response.
        assert!(v.open(format!("{good}\r\n").as_bytes()).await.is_ok());
        let plain = br#"{"active":true,"sub":"alice"}"#;
        assert!(v
            .open(plain)
            .await
            .unwrap_err()
            .contains("not a compact JWS"));
        assert!(v.open(b"a.b.c.d").await.is_err());
        assert!(v.open(&[0xff, b'.', b'.']).await.is_err());
    }
}
