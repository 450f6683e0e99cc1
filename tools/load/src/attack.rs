//! The attacks of the hostile mode, each a stream of requests prepared before the clock starts
//! (except the replays, which resend what the legitimate clients just had accepted).
//!
//! The attacker holds a key of its own (`--attacker-alg`, ES256 by default) and a valid access
//! token bound to it, as any registered client could. Each request below is new: a fresh `jti`
//! (a fresh token or key where the attack says so), so no cache of the server helps it.
//!
//! | name | what each request is | where the server should refuse it |
//! |---|---|---|
//! | `health` | `GET /health` (control: the HTTP stack alone, not an attack) | served, 200 |
//! | `malformed` | in turn: a `DPoP` header that is not token68; `Authorization: DPoP` credentials that are not token68; two `DPoP` headers; a proof of two parts; a JOSE header that is not JSON; no `DPoP` header; a 9 KiB `DPoP` header | header syntax and size, before any decoding |
//! | `claims` | a proof signed by the attacker's key with its valid token, but for `POST`, for another `htu`, or with an `iat` an hour old, in turn | the claims, before the signature |
//! | `garbage-token` | a random 600-character token with an unsigned proof (random signature bytes) whose `ath` is that token's hash | the token (not a JWT), before the signature |
//! | `forged-token-nokid` | a well-formed token without `kid` (right `iss`, `aud`, `exp`, bound to the attacker's key) with random signature bytes, and a proof the attacker really signed | the token's signature (one ES256 verify), never the proof's |
//! | `forged-token-unknown-kid` | the same with a `kid` the key set lacks | the unknown `kid` (while no key-set fetch may start), before any signature |
//! | `forged-signature` | the attacker's own valid token with a proof whose signature is random bytes | the proof's signature (one verify of the attacker's algorithm) |
//! | `cold-keys` | a proof signed by a fresh key each time, with the attacker's valid token (bound to its usual key) | the binding `cnf.jkt` ≠ thumbprint, before the signature |
//! | `replay` | a legitimate client's request (token and proof) resent once the server accepted it | the replay store, after the signature; must never be 2xx |
//! | `fill-replay-store` | the attacker's own valid token and properly signed fresh proofs, as fast as the legitimate clients together | accepted until its key's replay quota, then 429; the legitimate clients keep their room |

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Uri};
use serde_json::json;
use tower_dpop::testing::{ath, random_id, unix_now, ClientKey, TestIssuer};
use tower_dpop::Algorithm;

use crate::driver::{dpop, Capture, Headers, Source, Stream};
use crate::BoxError;

/// One kind of hostile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    Health,
    Malformed,
    Claims,
    GarbageToken,
    ForgedTokenNoKid,
    ForgedTokenUnknownKid,
    ForgedSignature,
    ColdKeys,
    Replay,
    FillReplayStore,
}

/// Every attack, in the order the hostile mode runs them.
pub const ALL: &[Attack] = &[
    Attack::Health,
    Attack::Malformed,
    Attack::Claims,
    Attack::GarbageToken,
    Attack::ForgedTokenNoKid,
    Attack::ForgedTokenUnknownKid,
    Attack::ForgedSignature,
    Attack::ColdKeys,
    Attack::Replay,
    Attack::FillReplayStore,
];

/// Where the server is expected to refuse an attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not refused (the control, or the replay-store filler until its quota).
    Served,
    /// Before any signature check: target at most 0.05 × a legitimate request.
    BeforeSignature,
    /// After one signature check: target under 1.2 × a legitimate request.
    AfterSignature,
}

impl Attack {
    /// The name used by `--attacks` and in the summary lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Malformed => "malformed",
            Self::Claims => "claims",
            Self::GarbageToken => "garbage-token",
            Self::ForgedTokenNoKid => "forged-token-nokid",
            Self::ForgedTokenUnknownKid => "forged-token-unknown-kid",
            Self::ForgedSignature => "forged-signature",
            Self::ColdKeys => "cold-keys",
            Self::Replay => "replay",
            Self::FillReplayStore => "fill-replay-store",
        }
    }

    /// An attack by name.
    pub fn parse(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Where the server should refuse it.
    pub fn refused(self) -> Refused {
        match self {
            Self::Health | Self::FillReplayStore => Refused::Served,
            Self::Malformed
            | Self::Claims
            | Self::GarbageToken
            | Self::ForgedTokenUnknownKid
            | Self::ColdKeys => Refused::BeforeSignature,
            Self::ForgedTokenNoKid | Self::ForgedSignature | Self::Replay => {
                Refused::AfterSignature
            }
        }
    }
}

/// What the attacker has.
pub struct Attacker {
    pub key: ClientKey,
    pub token: String,
    pub auth: HeaderValue,
    /// `http://<server>/api/me`.
    pub url: String,
}

impl Attacker {
    /// A key of `alg` and a valid token bound to it.
    pub fn new(issuer: &TestIssuer, alg: Algorithm, url: String) -> Result<Self, BoxError> {
        let key = ClientKey::generate(alg);
        let token = issuer.token_for(key.jkt(), unix_now() + 3600);
        let auth = HeaderValue::try_from(format!("DPoP {token}"))?;
        Ok(Self {
            key,
            token,
            auth,
            url,
        })
    }
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn value(s: String) -> Result<HeaderValue, BoxError> {
    Ok(HeaderValue::try_from(s)?)
}

/// A proof by `key`'s header with these claims and a signature no key made, of the right
/// length; an ECDSA one has `r` and `s` below the group order (their top byte cleared), so
/// the verifier runs the whole verification rather than refusing an out-of-range value at once,
/// as a careful attacker would make it.
fn unsigned_proof(key: &ClientKey, claims: &serde_json::Value) -> Result<String, BoxError> {
    let header = json!({ "typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": key.public_jwk() });
    let (len, half) = match key.alg() {
        Algorithm::ES256 => (64, Some(32)),
        Algorithm::ES384 => (96, Some(48)),
        Algorithm::ES512 => (132, Some(66)),
        Algorithm::EdDSA | Algorithm::Ed25519 => (64, None),
        _ => (256, None),
    };
    let mut sig = vec![0u8; len];
    openssl::rand::rand_bytes(&mut sig)?;
    if let Some(half) = half {
        for i in [0, half] {
            if let Some(b) = sig.get_mut(i) {
                *b = 0;
            }
        }
    }
    Ok(format!(
        "{}.{}.{}",
        b64(&header),
        b64(claims),
        URL_SAFE_NO_PAD.encode(sig)
    ))
}

/// A well-formed access token for the attacker's key, signed by no one.
fn forged_token(issuer: &TestIssuer, jkt: &str, kid: Option<&str>) -> String {
    let mut header = json!({ "typ": "at+jwt", "alg": "ES256" });
    if let (Some(kid), Some(h)) = (kid, header.as_object_mut()) {
        h.insert("kid".into(), json!(kid));
    }
    let now = unix_now();
    let claims = json!({
        "iss": issuer.issuer(), "sub": "mallory", "aud": issuer.audience(),
        "client_id": "mallory", "iat": now, "exp": now + 3600, "jti": random_id(12),
        "cnf": { "jkt": jkt },
    });
    format!("{}.{}.{}", b64(&header), b64(&claims), random_id(64))
}

/// `count` requests of `attack` (`None`: the replays, which need no preparation).
fn requests(
    attack: Attack,
    issuer: &TestIssuer,
    a: &Attacker,
    count: usize,
) -> Result<Vec<Headers>, BoxError> {
    let mut list = Vec::with_capacity(count);
    let url = a.url.as_str();
    let now = unix_now();
    for i in 0..count {
        let signed =
            |m: &str, u: &str, iat: u64| a.key.proof(m, u).access_token(&a.token).iat(iat).sign();
        let headers: Headers = match attack {
            Attack::Health | Attack::Replay => Vec::new(),
            Attack::Malformed => match i % 7 {
                0 => vec![
                    (AUTHORIZATION, a.auth.clone()),
                    (
                        dpop(),
                        HeaderValue::from_static("not a proof, {\"alg\":\"none\"}"),
                    ),
                ],
                1 => vec![
                    (
                        AUTHORIZATION,
                        HeaderValue::from_static("DPoP ***not token68***"),
                    ),
                    (dpop(), HeaderValue::from_static("a.b.c")),
                ],
                2 => vec![
                    (AUTHORIZATION, a.auth.clone()),
                    (dpop(), HeaderValue::from_static("a.b.c")),
                    (dpop(), HeaderValue::from_static("d.e.f")),
                ],
                3 => vec![
                    (AUTHORIZATION, a.auth.clone()),
                    (
                        dpop(),
                        value(format!("{}.{}", random_id(60), random_id(200)))?,
                    ),
                ],
                4 => vec![
                    (AUTHORIZATION, a.auth.clone()),
                    (
                        dpop(),
                        value(format!(
                            "{}.{}.{}",
                            URL_SAFE_NO_PAD.encode("this is no JSON"),
                            random_id(150),
                            random_id(64)
                        ))?,
                    ),
                ],
                5 => vec![(AUTHORIZATION, a.auth.clone())],
                _ => vec![
                    (AUTHORIZATION, a.auth.clone()),
                    (dpop(), value("A".repeat(9 * 1024))?),
                ],
            },
            Attack::Claims => {
                let proof = match i % 3 {
                    0 => signed("POST", url, now),
                    1 => signed("GET", "http://other.example/api/me", now),
                    _ => signed("GET", url, now.saturating_sub(3600)),
                };
                vec![(AUTHORIZATION, a.auth.clone()), (dpop(), value(proof)?)]
            }
            Attack::GarbageToken => {
                let token = random_id(450);
                let claims = json!({
                    "jti": random_id(16), "htm": "GET", "htu": url, "iat": now,
                    "ath": ath(&token),
                });
                vec![
                    (AUTHORIZATION, value(format!("DPoP {token}"))?),
                    (dpop(), value(unsigned_proof(&a.key, &claims)?)?),
                ]
            }
            Attack::ForgedTokenNoKid | Attack::ForgedTokenUnknownKid => {
                let kid = random_id(8);
                let kid = (attack == Attack::ForgedTokenUnknownKid).then_some(kid.as_str());
                let token = forged_token(issuer, a.key.jkt(), kid);
                let proof = a.key.proof("GET", url).access_token(&token).sign();
                vec![
                    (AUTHORIZATION, value(format!("DPoP {token}"))?),
                    (dpop(), value(proof)?),
                ]
            }
            Attack::ForgedSignature => {
                let claims = json!({
                    "jti": random_id(16), "htm": "GET", "htu": url, "iat": now,
                    "ath": ath(&a.token),
                });
                vec![
                    (AUTHORIZATION, a.auth.clone()),
                    (dpop(), value(unsigned_proof(&a.key, &claims)?)?),
                ]
            }
            Attack::ColdKeys => {
                let fresh = ClientKey::generate(Algorithm::ES256);
                let proof = fresh.proof("GET", url).access_token(&a.token).sign();
                vec![(AUTHORIZATION, a.auth.clone()), (dpop(), value(proof)?)]
            }
            Attack::FillReplayStore => {
                vec![
                    (AUTHORIZATION, a.auth.clone()),
                    (dpop(), value(signed("GET", url, now))?),
                ]
            }
        };
        list.push(headers);
    }
    Ok(list)
}

/// How many requests a stream sends, how fast, over how many connections.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub count: usize,
    pub rate: f64,
    pub connections: usize,
}

/// The attacker's stream of `attack`. `legit` and `capture` are the legitimate stream's
/// requests and the record of those accepted, for the replays.
pub fn stream(
    attack: Attack,
    issuer: &TestIssuer,
    attacker: &Attacker,
    pace: Pace,
    legit: &Arc<Vec<Headers>>,
    capture: &Arc<Capture>,
) -> Result<Stream, BoxError> {
    let Pace {
        count,
        rate,
        connections,
    } = pace;
    let source = match attack {
        Attack::Health => Source::Same(Vec::new()),
        Attack::Replay => Source::Replay {
            of: Arc::clone(legit),
            capture: Arc::clone(capture),
        },
        _ => Source::List(Arc::new(requests(attack, issuer, attacker, count)?)),
    };
    Ok(Stream {
        name: attack.name().to_owned(),
        method: Method::GET,
        uri: Uri::from_static(if attack == Attack::Health {
            "/health"
        } else {
            "/api/me"
        }),
        source,
        range: 0..count,
        rate: Some(rate),
        connections,
        capture: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attack_has_a_distinct_name_that_parses_back() {
        for a in ALL {
            assert_eq!(Attack::parse(a.name()), Some(*a));
        }
        let mut names: Vec<_> = ALL.iter().map(|a| a.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert_eq!(Attack::parse("nothing"), None);
    }

    /// Each prepared attack request differs from the others where the attack says it is new
    /// (no cache of the server can answer it), and none is a valid legitimate request.
    #[test]
    fn prepared_attacks_are_fresh_each_time() {
        let issuer = TestIssuer::new();
        let a = Attacker::new(
            &issuer,
            Algorithm::ES256,
            "http://127.0.0.1:1/api/me".into(),
        )
        .unwrap();
        for attack in [
            Attack::Claims,
            Attack::GarbageToken,
            Attack::ForgedTokenNoKid,
            Attack::ForgedTokenUnknownKid,
            Attack::ForgedSignature,
            Attack::ColdKeys,
            Attack::FillReplayStore,
        ] {
            let list = requests(attack, &issuer, &a, 6).unwrap();
            let proofs: Vec<_> = list
                .iter()
                .map(|h| h.iter().find(|(n, _)| n == dpop()).unwrap().1.clone())
                .collect();
            for (i, p) in proofs.iter().enumerate() {
                assert!(
                    !proofs[..i].contains(p),
                    "{}: a proof repeats",
                    attack.name()
                );
            }
        }
        let malformed = requests(Attack::Malformed, &issuer, &a, 7).unwrap();
        assert_eq!(malformed[2].iter().filter(|(n, _)| n == dpop()).count(), 2);
        assert!(malformed[5].iter().all(|(n, _)| n != dpop()));
        assert!(malformed[6].iter().any(|(_, v)| v.len() > 8 * 1024));
    }
}
