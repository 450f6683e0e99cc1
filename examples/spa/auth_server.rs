//! The authorization-server stand-in: a JWKS, and a token endpoint that checks the DPoP proof
//! it receives (RFC 9449 section 5) and binds the access token it issues to that proof's key.
//!
//! It authenticates no client and asks no user: any holder of a valid proof gets a token. What
//! it does check is what a real authorization server must check before it binds a token to a
//! key: the proof is a `dpop+jwt` signed with ES256 by the public key in its own `jwk` header,
//! for `POST` to this endpoint's URL, issued within the last minute, and not seen before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tower_dpop::testing::{jwk_thumbprint, random_id, unix_now, TestIssuer};

/// Largest `DPoP` header the token endpoint reads (an ES256 proof is about 600 bytes).
const MAX_PROOF_LEN: usize = 4096;
/// How old a proof's `iat` may be, in seconds.
const MAX_PROOF_AGE: u64 = 60;
/// How far in the future a proof's `iat` may be (clock differences), in seconds.
const FUTURE_LEEWAY: u64 = 5;
/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 64;
/// Most proofs remembered at once; past it the endpoint answers 503 rather than forget one.
const MAX_REMEMBERED: usize = 10_000;
/// Lifetime of the access tokens, in seconds.
pub const TOKEN_LIFETIME: u64 = 600;

/// The authorization server's state.
#[derive(Clone)]
pub struct AuthServer {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: TestIssuer,
    /// The token endpoint's URL, the `htu` its proofs must carry.
    token_url: String,
    /// The `aud` of the tokens: the protected API's origin.
    audience: String,
    /// `jti`s of accepted proofs and when each may be forgotten.
    seen: Mutex<HashMap<String, u64>>,
}

/// Why a token request was refused: `400 invalid_dpop_proof` (RFC 9449 section 5), or 503 when
/// the proof cache is full.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The proof is missing or fails a check; the text says which.
    Proof(&'static str),
    /// The form is not a `client_credentials` grant.
    Grant,
    /// Too many proofs remembered to take one more safely.
    Busy,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            Self::Proof(why) => (StatusCode::BAD_REQUEST, "invalid_dpop_proof", why),
            Self::Grant => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            ),
            Self::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "too many proofs in flight",
            ),
        };
        (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    }
}

/// The token request form.
#[derive(Deserialize)]
pub struct TokenRequest {
    grant_type: String,
}

/// What a valid proof says: the thumbprint of its key and its `jti`.
#[derive(Debug)]
pub struct CheckedProof {
    pub jkt: String,
    pub jti: String,
}

impl AuthServer {
    /// An authorization server at `origin` issuing tokens for `audience`.
    pub fn new(origin: &str, audience: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                issuer: TestIssuer::with_issuer(origin),
                token_url: format!("{origin}/token"),
                audience: audience.to_owned(),
                seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        self.inner.issuer.issuer()
    }

    /// `GET /jwks` and `POST /token`.
    pub fn router(&self) -> Router {
        let jwks = self.inner.issuer.jwks_json();
        Router::new()
            .route(
                "/jwks",
                get(move || async move { ([(header::CONTENT_TYPE, "application/json")], jwks) }),
            )
            .route("/token", post(token))
            .with_state(self.clone())
    }

    /// Checks the `DPoP` header of a token request at `now`, and remembers its `jti`.
    pub fn check_proof(&self, headers: &HeaderMap, now: u64) -> Result<CheckedProof, Refusal> {
        let mut values = headers.get_all("dpop").iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(Refusal::Proof("exactly one DPoP header is required"));
        };
        if value.len() > MAX_PROOF_LEN {
            return Err(Refusal::Proof("DPoP proof is too large"));
        }
        let proof = value
            .to_str()
            .map_err(|_| Refusal::Proof("DPoP proof is not ASCII"))?;
        let checked = verify_proof(proof, "POST", &self.inner.token_url, now)?;
        self.remember(&checked.jti, now)?;
        Ok(checked)
    }

    /// Records a proof's `jti`; refuses one already seen within the proof lifetime.
    fn remember(&self, jti: &str, now: u64) -> Result<(), Refusal> {
        let mut seen = self.inner.seen.lock().map_err(|_| Refusal::Busy)?;
        seen.retain(|_, until| *until > now);
        if seen.contains_key(jti) {
            return Err(Refusal::Proof("DPoP proof was already used"));
        }
        if seen.len() >= MAX_REMEMBERED {
            return Err(Refusal::Busy);
        }
        seen.insert(jti.to_owned(), now + MAX_PROOF_AGE + FUTURE_LEEWAY + 1);
        Ok(())
    }

    /// An access token bound to `jkt`, as the token endpoint answers it.
    pub fn issue(&self, jkt: &str, now: u64) -> Value {
        let token = self.inner.issuer.mint(&json!({
            "iss": self.issuer(),
            "sub": "alice",
            "aud": self.inner.audience,
            "client_id": "spa-example",
            "scope": "read write",
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "jti": random_id(12),
            "cnf": { "jkt": jkt },
        }));
        json!({
            "access_token": token,
            "token_type": "DPoP",
            "expires_in": TOKEN_LIFETIME,
        })
    }
}

/// `POST /token`: a `client_credentials` grant with a DPoP proof; the token is bound to the
/// proof's key (`cnf.jkt`) and `token_type` is `DPoP`.
async fn token(
    State(server): State<AuthServer>,
    headers: HeaderMap,
    Form(form): Form<TokenRequest>,
) -> Result<impl IntoResponse, Refusal> {
    let now = unix_now();
    let proof = server.check_proof(&headers, now)?;
    if form.grant_type != "client_credentials" {
        return Err(Refusal::Grant);
    }
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(server.issue(&proof.jkt, now)),
    ))
}

/// Decodes one base64url JSON object of a compact JWS.
fn json_part(part: &str, what: &'static str) -> Result<Map<String, Value>, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Refusal::Proof(what))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::Proof(what)),
    }
}

/// Checks a proof for `method` and `url` at `now`: its form, its signature by the key in its
/// own `jwk` header, and its `htm`, `htu`, `iat` and `jti`.
pub fn verify_proof(
    proof: &str,
    method: &str,
    url: &str,
    now: u64,
) -> Result<CheckedProof, Refusal> {
    let mut parts = proof.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Proof("DPoP proof is not a compact JWS"));
    };
    let header = json_part(head, "DPoP proof header is not a JSON object")?;
    let claims = json_part(body, "DPoP proof claims are not a JSON object")?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(Refusal::Proof("DPoP proof typ is not dpop+jwt"));
    }
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(Refusal::Proof("DPoP proof alg is not ES256"));
    }
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(Refusal::Proof("DPoP proof has no jwk header"));
    };
    if jwk.contains_key("d") {
        return Err(Refusal::Proof("DPoP proof jwk is a private key"));
    }
    if jwk.get("kty").and_then(Value::as_str) != Some("EC")
        || jwk.get("crv").and_then(Value::as_str) != Some("P-256")
    {
        return Err(Refusal::Proof("DPoP proof jwk is not a P-256 key"));
    }
    let key = josekit::jwk::Jwk::from_map(jwk.clone())
        .map_err(|_| Refusal::Proof("DPoP proof jwk is not a valid key"))?;
    let verifier = josekit::jws::ES256
        .verifier_from_jwk(&key)
        .map_err(|_| Refusal::Proof("DPoP proof jwk is not a valid key"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| Refusal::Proof("DPoP proof signature is not base64url"))?;
    let signed = proof.rsplit_once('.').map_or("", |(signed, _)| signed);
    verifier
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| Refusal::Proof("DPoP proof signature is invalid"))?;

    if claims.get("htm").and_then(Value::as_str) != Some(method) {
        return Err(Refusal::Proof("DPoP proof htm does not match the method"));
    }
    if claims.get("htu").and_then(Value::as_str) != Some(url) {
        return Err(Refusal::Proof("DPoP proof htu does not match the URL"));
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_u64) else {
        return Err(Refusal::Proof("DPoP proof has no numeric iat"));
    };
    if iat > now + FUTURE_LEEWAY {
        return Err(Refusal::Proof("DPoP proof iat is in the future"));
    }
    if now.saturating_sub(iat) > MAX_PROOF_AGE {
        return Err(Refusal::Proof("DPoP proof is too old"));
    }
    let jti = match claims.get("jti").and_then(Value::as_str) {
        Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti.to_owned(),
        _ => return Err(Refusal::Proof("DPoP proof jti is missing or too long")),
    };
    let jkt = jwk_thumbprint(&Value::Object(jwk.clone()).to_string())
        .ok_or(Refusal::Proof("DPoP proof jwk has no thumbprint"))?;
    Ok(CheckedProof { jkt, jti })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_dpop::testing::ClientKey;
    use tower_dpop::Algorithm;

    const URL: &str = "http://127.0.0.1:1/token";
    const NOW: u64 = 1_800_000_000;

    fn new_key() -> ClientKey {
        ClientKey::generate(Algorithm::ES256)
    }

    fn headers(proof: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("dpop", proof.parse().unwrap());
        h
    }

    #[test]
    fn a_valid_proof_gives_its_key_thumbprint() {
        let key = new_key();
        let proof = key.proof("POST", URL).iat(NOW).sign();
        let checked = verify_proof(&proof, "POST", URL, NOW).unwrap();
        assert_eq!(checked.jkt, key.jkt());
    }

    /// Each check of the token endpoint, by the proof that only it refuses.
    #[test]
    fn each_check_refuses_its_proof() {
        let key = new_key();
        let other = new_key();
        let valid = key.proof("POST", URL).iat(NOW).sign();
        // The signature of another key over the same header and claims.
        let (signed, _) = valid.rsplit_once('.').unwrap();
        let forged = format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(other.sign_raw(signed.as_bytes()))
        );
        let private = josekit::jws::ES256.generate_key_pair().unwrap();
        let private_jwk: Value =
            serde_json::from_str(&private.to_jwk_key_pair().to_string()).unwrap();
        struct Case {
            name: &'static str,
            proof: String,
            expected: &'static str,
        }
        let cases = [
            Case {
                name: "signed by another key",
                proof: forged,
                expected: "DPoP proof signature is invalid",
            },
            Case {
                name: "wrong method",
                proof: key.proof("GET", URL).iat(NOW).sign(),
                expected: "DPoP proof htm does not match the method",
            },
            Case {
                name: "wrong URL",
                proof: key
                    .proof("POST", "http://127.0.0.1:2/token")
                    .iat(NOW)
                    .sign(),
                expected: "DPoP proof htu does not match the URL",
            },
            Case {
                name: "too old",
                proof: key.proof("POST", URL).iat(NOW - MAX_PROOF_AGE - 1).sign(),
                expected: "DPoP proof is too old",
            },
            Case {
                name: "from the future",
                proof: key.proof("POST", URL).iat(NOW + FUTURE_LEEWAY + 1).sign(),
                expected: "DPoP proof iat is in the future",
            },
            Case {
                name: "no iat",
                proof: key.proof("POST", URL).without_claim("iat").sign(),
                expected: "DPoP proof has no numeric iat",
            },
            Case {
                name: "no jti",
                proof: key.proof("POST", URL).iat(NOW).without_claim("jti").sign(),
                expected: "DPoP proof jti is missing or too long",
            },
            Case {
                name: "wrong typ",
                proof: key
                    .proof("POST", URL)
                    .iat(NOW)
                    .header("typ", json!("JWT"))
                    .sign(),
                expected: "DPoP proof typ is not dpop+jwt",
            },
            Case {
                name: "no jwk",
                proof: key.proof("POST", URL).iat(NOW).without_header("jwk").sign(),
                expected: "DPoP proof has no jwk header",
            },
            Case {
                name: "private jwk",
                proof: key
                    .proof("POST", URL)
                    .iat(NOW)
                    .header("jwk", private_jwk)
                    .sign(),
                expected: "DPoP proof jwk is a private key",
            },
            Case {
                name: "not a JWS",
                proof: "a.b".into(),
                expected: "DPoP proof is not a compact JWS",
            },
        ];
        for case in cases {
            assert_eq!(
                verify_proof(&case.proof, "POST", URL, NOW).err(),
                Some(Refusal::Proof(case.expected)),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn a_proof_is_taken_once() {
        let server = AuthServer::new("http://127.0.0.1:1", "http://127.0.0.1:3");
        let now = unix_now();
        let proof = new_key().proof("POST", URL).iat(now).sign();
        assert!(server.check_proof(&headers(&proof), now).is_ok());
        assert_eq!(
            server.check_proof(&headers(&proof), now).err(),
            Some(Refusal::Proof("DPoP proof was already used"))
        );
        assert_eq!(
            server.check_proof(&HeaderMap::new(), now).err(),
            Some(Refusal::Proof("exactly one DPoP header is required"))
        );
    }

    /// The token is bound to the proof's key and accepted by the API's validator.
    #[test]
    fn the_token_is_bound_to_the_proof_key() {
        let server = AuthServer::new("http://127.0.0.1:1", "http://127.0.0.1:3");
        let key = new_key();
        let answer = server.issue(key.jkt(), unix_now());
        assert_eq!(answer["token_type"], "DPoP");
        let token = answer["access_token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["cnf"]["jkt"], key.jkt());
        assert_eq!(claims["aud"], "http://127.0.0.1:3");
        assert_eq!(claims["iss"], "http://127.0.0.1:1");
    }
}
