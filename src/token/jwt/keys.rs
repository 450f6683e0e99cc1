//! A key set prepared for verification: each usable key of a JWKS imported once, when the set
//! is loaded, into the same verifiers the proof keys use ([`crate::proof::jwk`] for the bounds,
//! [`VerifyingKey`] for the signature), and found by `kid` and `alg` for each token.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::proof::algorithm::Algorithm;
use crate::proof::jwk::{PublicJwk, RawJwk};
use crate::proof::key::VerifyingKey;

/// Keys of one set beyond this many are skipped: real sets hold a handful, and each key costs
/// an import when the set loads.
pub(crate) const MAX_KEYS: usize = 64;

/// The JWKS document: its `keys`, each kept as raw JSON so that one bad key does not make the
/// whole set unreadable.
#[derive(Deserialize)]
struct RawSet<'a> {
    #[serde(borrow)]
    keys: Vec<&'a RawValue>,
}

/// The members of a JWKS entry that say what the key is for (RFC 7517 §4). The key members
/// themselves are read by [`RawJwk`]; other members (`x5c`, `x5t#S256`, ...) are ignored.
#[derive(Deserialize)]
struct KeyUse<'a> {
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    kid: Option<Cow<'a, str>>,
    #[serde(
        rename = "use",
        borrow,
        default,
        deserialize_with = "crate::proof::borrowed_str"
    )]
    key_use: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    alg: Option<Cow<'a, str>>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
}

/// One usable key: its `kid` and a ready verifier for each algorithm it may be used with.
struct Entry {
    kid: Option<Box<str>>,
    verifiers: Vec<(Algorithm, VerifyingKey)>,
}

impl Entry {
    fn verifier(&self, alg: Algorithm) -> Option<&VerifyingKey> {
        self.verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
    }
}

/// The usable keys of one JWKS.
#[derive(Default)]
pub(crate) struct KeyRing {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "kids",
                &self
                    .entries
                    .iter()
                    .map(|e| e.kid.as_deref())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What a key set has for a token's `kid` and `alg`.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    /// The one key that can have signed it.
    Key(&'a VerifyingKey),
    /// No key has this `kid`: the set may have been rotated since it was loaded.
    UnknownKid,
    /// The set cannot verify this token (the reason is safe to show).
    Refused(&'static str),
}

impl KeyRing {
    /// Loads a JWKS document, keeping the keys usable for signatures with `algorithms`.
    ///
    /// # Errors
    /// When the document is not a JSON object with a `keys` array. A key that cannot be used
    /// is skipped (logged at debug with its `kid` and the reason), not an error.
    pub(crate) fn parse(json: &[u8], algorithms: &[Algorithm]) -> Result<Self, String> {
        let set: RawSet<'_> =
            serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        if set.keys.len() > MAX_KEYS {
            tracing::warn!(
                target: "tower_dpop",
                keys = set.keys.len(),
                kept = MAX_KEYS,
                "JWKS has more keys than are used; the rest are skipped"
            );
        }
        let mut entries = Vec::new();
        for raw in set.keys.iter().take(MAX_KEYS) {
            match prepare(raw.get(), algorithms) {
                Ok(entry) => entries.push(entry),
                Err((kid, why)) => {
                    tracing::debug!(target: "tower_dpop", kid = ?kid, reason = why, "JWKS key skipped");
                }
            }
        }
        Ok(Self { entries })
    }

    /// How many keys are usable.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The key for a token with this `kid` (when it has one) and `alg`. A token without `kid`
    /// is given a key only when exactly one key of the set fits its `alg`, so that every token
    /// costs at most one signature check.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let named = |e: &&Entry| kid.is_none_or(|kid| e.kid.as_deref() == Some(kid));
        let mut fitting = self
            .entries
            .iter()
            .filter(named)
            .filter_map(|e| e.verifier(alg));
        match (fitting.next(), fitting.next(), kid) {
            (Some(key), None, _) => Lookup::Key(key),
            (Some(_), Some(_), Some(_)) => {
                Lookup::Refused("several keys of the key set have the access token's kid")
            }
            (Some(_), Some(_), None) => Lookup::Refused(
                "access token has no kid and the key set has several keys for its alg",
            ),
            (None, _, Some(_)) if self.entries.iter().any(|e| named(&e)) => {
                Lookup::Refused("access token alg does not fit the key its kid names")
            }
            (None, _, Some(_)) => Lookup::UnknownKid,
            (None, _, None) => Lookup::Refused("no key of the key set fits the access token alg"),
        }
    }
}

type Skipped = (Option<String>, &'static str);

/// Imports one JWKS entry for each allowed algorithm it fits, or says why it is skipped.
fn prepare(json: &str, algorithms: &[Algorithm]) -> Result<Entry, Skipped> {
    let meta: KeyUse<'_> = serde_json::from_str(json).map_err(|_| {
        (
            None,
            "kid, use, alg or key_ops is malformed (or the entry is not an object)",
        )
    })?;
    let kid = meta.kid.as_deref().map(str::to_owned);
    let skip = |why: &'static str| (kid.clone(), why);
    if meta.key_use.as_deref().is_some_and(|u| u != "sig") {
        return Err(skip("use is not sig"));
    }
    if meta
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Err(skip("key_ops does not include verify"));
    }
    let key_alg = match meta.alg.as_deref() {
        None => None,
        Some(name) => match Algorithm::from_name(name) {
            Some(alg) if algorithms.contains(&alg) => Some(alg),
            _ => return Err(skip("alg is not an allowed token algorithm")),
        },
    };
    let raw: RawJwk<'_> =
        serde_json::from_str(json).map_err(|_| skip("key members are malformed or repeated"))?;
    let jwk = PublicJwk::from_raw(raw).map_err(skip)?;
    let mut verifiers = Vec::new();
    for &alg in algorithms {
        if key_alg.is_some_and(|k| k != alg) || !jwk.fits(alg) {
            continue;
        }
        verifiers.push((alg, VerifyingKey::import(alg, &jwk).map_err(skip)?));
    }
    if verifiers.is_empty() {
        return Err(skip("the key fits no allowed token algorithm"));
    }
    Ok(Entry {
        kid: kid.map(String::into_boxed_str),
        verifiers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ClientKey;
    use serde_json::{json, Value};

    fn jwk(key: &ClientKey, extra: Value) -> Value {
        let mut jwk = key.public_jwk().clone();
        for (k, v) in extra.as_object().unwrap() {
            jwk[k] = v.clone();
        }
        jwk
    }

    fn ring(keys: Vec<Value>, algorithms: &[Algorithm]) -> KeyRing {
        KeyRing::parse(json!({ "keys": keys }).to_string().as_bytes(), algorithms).unwrap()
    }

    fn found(l: Lookup<'_>) -> *const VerifyingKey {
        match l {
            Lookup::Key(k) => k,
            other => panic!("{other:?}"),
        }
    }

    /// Each key is imported once, when the set loads: lookups hand out the same verifier.
    #[test]
    fn lookups_share_the_verifier_imported_at_load() {
        let es = ClientKey::generate(Algorithm::ES256);
        let r = ring(vec![jwk(&es, json!({"kid": "a"}))], Algorithm::ALL);
        let first = found(r.find(Some("a"), Algorithm::ES256));
        assert_eq!(first, found(r.find(Some("a"), Algorithm::ES256)));
        assert_eq!(first, found(r.find(None, Algorithm::ES256)));
    }

    #[test]
    fn keys_are_chosen_by_kid_and_alg() {
        let es = ClientKey::generate(Algorithm::ES256);
        let rsa = ClientKey::generate(Algorithm::RS256);
        let ed = ClientKey::generate(Algorithm::EdDSA);
        let r = ring(
            vec![
                jwk(&es, json!({"kid": "es"})),
                jwk(&rsa, json!({"kid": "rsa", "alg": "PS256"})),
                jwk(&ed, json!({"kid": "ed"})),
            ],
            Algorithm::ALL,
        );
        assert_eq!(r.len(), 3);
        assert!(matches!(
            r.find(Some("es"), Algorithm::ES256),
            Lookup::Key(_)
        ));
        assert!(matches!(
            r.find(Some("rsa"), Algorithm::PS256),
            Lookup::Key(_)
        ));
        assert!(matches!(
            r.find(Some("ed"), Algorithm::EdDSA),
            Lookup::Key(_)
        ));
        assert!(matches!(
            r.find(Some("ed"), Algorithm::Ed25519),
            Lookup::Key(_)
        ));
        // The key's `alg` must be the token's; the key type must fit the token's alg.
        let misfit = "access token alg does not fit the key its kid names";
        for (kid, alg) in [
            ("rsa", Algorithm::RS256),
            ("rsa", Algorithm::PS384),
            ("es", Algorithm::ES384),
            ("es", Algorithm::RS256),
            ("ed", Algorithm::ES256),
        ] {
            assert!(
                matches!(r.find(Some(kid), alg), Lookup::Refused(m) if m == misfit),
                "{kid} {alg}"
            );
        }
        assert!(matches!(
            r.find(Some("nope"), Algorithm::ES256),
            Lookup::UnknownKid
        ));
        // Without kid: only when exactly one key fits the alg.
        assert!(matches!(r.find(None, Algorithm::ES256), Lookup::Key(_)));
        assert!(matches!(r.find(None, Algorithm::PS256), Lookup::Key(_)));
        assert!(matches!(
            r.find(None, Algorithm::ES384),
            Lookup::Refused("no key of the key set fits the access token alg")
        ));
    }

    #[test]
    fn a_token_without_kid_is_refused_when_several_keys_fit() {
        let keys: Vec<_> = (0..3)
            .map(|i| {
                jwk(
                    &ClientKey::generate(Algorithm::ES256),
                    json!({"kid": i.to_string()}),
                )
            })
            .collect();
        let r = ring(keys, Algorithm::ALL);
        assert!(matches!(
            r.find(None, Algorithm::ES256),
            Lookup::Refused("access token has no kid and the key set has several keys for its alg")
        ));
        assert!(matches!(
            r.find(Some("1"), Algorithm::ES256),
            Lookup::Key(_)
        ));
        // Two keys under one kid, both fitting: refused rather than tried in turn.
        let a = ClientKey::generate(Algorithm::ES256);
        let b = ClientKey::generate(Algorithm::ES256);
        let r = ring(
            vec![jwk(&a, json!({"kid": "x"})), jwk(&b, json!({"kid": "x"}))],
            Algorithm::ALL,
        );
        assert!(matches!(
            r.find(Some("x"), Algorithm::ES256),
            Lookup::Refused("several keys of the key set have the access token's kid")
        ));
    }

    #[test]
    fn unusable_keys_are_skipped_and_the_rest_kept() {
        let es = ClientKey::generate(Algorithm::ES256);
        let rsa = ClientKey::generate(Algorithm::RS256);
        let mut leading_zero = jwk(&rsa, json!({"kid": "zero"}));
        leading_zero["n"] = json!(format!("AA{}", leading_zero["n"].as_str().unwrap()));
        let mut small = jwk(&rsa, json!({"kid": "small"}));
        small["n"] = json!("g".repeat(171)); // about 1024 bits
        let skipped = vec![
            jwk(&es, json!({"kid": "enc", "use": "enc"})),
            jwk(&es, json!({"kid": "ops", "key_ops": ["encrypt"]})),
            jwk(&es, json!({"kid": "hs", "alg": "HS256"})),
            jwk(&es, json!({"kid": "rs384", "alg": "RS384"})),
            jwk(&es, json!({"kid": "private", "d": "AAAA"})),
            jwk(&es, json!({"kid": 7})),
            json!({"kty": "oct", "kid": "oct", "k": "AAAA"}),
            json!("not an object"),
            leading_zero,
            small,
        ];
        let mut keys = skipped;
        keys.push(jwk(
            &es,
            json!({"kid": "ok", "use": "sig", "key_ops": ["verify"], "x5t#S256": "x", "x5c": []}),
        ));
        let algorithms = [Algorithm::ES256, Algorithm::RS256];
        let r = ring(keys, &algorithms);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(matches!(
            r.find(Some("ok"), Algorithm::ES256),
            Lookup::Key(_)
        ));
        for kid in ["enc", "ops", "hs", "rs384", "private", "zero", "small"] {
            assert!(
                matches!(r.find(Some(kid), Algorithm::ES256), Lookup::UnknownKid),
                "{kid}"
            );
        }
        // A key without `alg` gets a verifier only for the allowed algorithms it fits.
        let r = ring(vec![jwk(&rsa, json!({"kid": "r"}))], &algorithms);
        assert!(matches!(
            r.find(Some("r"), Algorithm::RS256),
            Lookup::Key(_)
        ));
        assert!(matches!(
            r.find(Some("r"), Algorithm::PS256),
            Lookup::Refused(_)
        ));
    }

    #[test]
    fn the_document_must_be_a_key_set() {
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"keys\":{}}",
            b"{\"keys\":[],\"keys\":[]}",
            b"{}",
        ] {
            assert!(KeyRing::parse(bad, Algorithm::ALL).is_err(), "{bad:?}");
        }
        let ed = ClientKey::generate(Algorithm::EdDSA);
        let many: Vec<_> = (0..MAX_KEYS + 5)
            .map(|i| jwk(&ed, json!({"kid": i.to_string()})))
            .collect();
        let r = ring(many, Algorithm::ALL);
        assert_eq!(r.len(), MAX_KEYS);
        let last = (MAX_KEYS - 1).to_string();
        assert!(matches!(
            r.find(Some(&last), Algorithm::EdDSA),
            Lookup::Key(_)
        ));
        let past = MAX_KEYS.to_string();
        assert!(matches!(
            r.find(Some(&past), Algorithm::EdDSA),
            Lookup::UnknownKid
        ));
    }
}
