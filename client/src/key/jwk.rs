//! JWK import and export of keys, and the RFC 7638 thumbprint.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::RsaPrivateKeyBuilder;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind};

fn b64(bytes: &[u8]) -> Value {
    Value::String(URL_SAFE_NO_PAD.encode(bytes))
}

/// The public JWK of a key: the members RFC 7638 requires and nothing else.
pub(super) fn public_jwk(pkey: &PKey<Private>) -> Result<Value, Error> {
    match pkey.id() {
        Id::EC => {
            let ec = pkey.ec_key()?;
            let group = ec.group();
            let (crv, len) = match group.curve_name() {
                Some(Nid::X9_62_PRIME256V1) => ("P-256", 32),
                Some(Nid::SECP384R1) => ("P-384", 48),
                _ => return Err(Error::new(ErrorKind::Key, "unsupported curve")),
            };
            let mut ctx = BigNumContext::new()?;
            let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
            ec.public_key()
                .affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
            Ok(json!({
                "kty": "EC",
                "crv": crv,
                "x": b64(&x.to_vec_padded(len)?),
                "y": b64(&y.to_vec_padded(len)?),
            }))
        }
        Id::ED25519 => Ok(json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64(&pkey.raw_public_key()?),
        })),
        Id::RSA => {
            let rsa = pkey.rsa()?;
            Ok(json!({
                "kty": "RSA",
                "n": b64(&rsa.n().to_vec()),
                "e": b64(&rsa.e().to_vec()),
            }))
        }
        _ => Err(Error::new(ErrorKind::Key, "unsupported key type")),
    }
}

/// The RFC 7638 thumbprint of a public JWK made by [`public_jwk`]: SHA-256 over the required
/// members in lexicographic order, without whitespace, base64url.
pub(super) fn thumbprint(jwk: &Value) -> Result<String, Error> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::new(ErrorKind::Key, "a JWK member is missing"))
    };
    // serde_json escapes strings exactly as RFC 7638 needs (these are base64url and names).
    let canonical = match member("kty")? {
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            Value::from(member("crv")?),
            Value::from(member("x")?),
            Value::from(member("y")?)
        ),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            Value::from(member("crv")?),
            Value::from(member("x")?)
        ),
        "RSA" => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            Value::from(member("e")?),
            Value::from(member("n")?)
        ),
        _ => return Err(Error::new(ErrorKind::Key, "unsupported key type")),
    };
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

fn object(json: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str(json) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::new(ErrorKind::Key, "the JWK is not a JSON object")),
    }
}

fn bytes(map: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, Error> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => URL_SAFE_NO_PAD.decode(s).map(Some).map_err(|_| {
            Error::new(
                ErrorKind::Key,
                format!("JWK member {name} is not base64url"),
            )
        }),
        Some(_) => Err(Error::new(
            ErrorKind::Key,
            format!("JWK member {name} is not a string"),
        )),
    }
}

fn required(map: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Error> {
    bytes(map, name)?
        .ok_or_else(|| Error::new(ErrorKind::Key, format!("JWK member {name} is missing")))
}

fn bn(map: &Map<String, Value>, name: &str) -> Result<BigNum, Error> {
    Ok(BigNum::from_slice(&required(map, name)?)?)
}

/// The private key a private JWK describes (EC P-256/P-384, OKP Ed25519, RSA).
pub(super) fn private_key(json: &str) -> Result<PKey<Private>, Error> {
    let map = object(json)?;
    let bad = |what: &'static str| move |e| Error::new(ErrorKind::Key, what).with_source(e);
    match map.get("kty").and_then(Value::as_str) {
        Some("EC") => {
            let nid = match map.get("crv").and_then(Value::as_str) {
                Some("P-256") => Nid::X9_62_PRIME256V1,
                Some("P-384") => Nid::SECP384R1,
                _ => return Err(Error::new(ErrorKind::Key, "unsupported curve")),
            };
            let group = EcGroup::from_curve_name(nid)?;
            let public = EcKey::from_public_key_affine_coordinates(
                &group,
                &*bn(&map, "x")?,
                &*bn(&map, "y")?,
            )
            .map_err(bad("the JWK's point is not on its curve"))?;
            let ec = EcKey::from_private_components(&group, &*bn(&map, "d")?, public.public_key())
                .map_err(bad("not a valid EC private key"))?;
            ec.check_key().map_err(bad("not a valid EC private key"))?;
            Ok(PKey::from_ec_key(ec)?)
        }
        Some("OKP") => {
            if map.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                return Err(Error::new(ErrorKind::Key, "unsupported curve"));
            }
            PKey::private_key_from_raw_bytes(&required(&map, "d")?, Id::ED25519)
                .map_err(bad("not a valid Ed25519 private key"))
        }
        Some("RSA") => {
            let mut builder =
                RsaPrivateKeyBuilder::new(bn(&map, "n")?, bn(&map, "e")?, bn(&map, "d")?)?;
            if map.contains_key("p") || map.contains_key("q") {
                builder = builder.set_factors(bn(&map, "p")?, bn(&map, "q")?)?;
                builder =
                    builder.set_crt_params(bn(&map, "dp")?, bn(&map, "dq")?, bn(&map, "qi")?)?;
            }
            let rsa = builder.build();
            if rsa.p().is_some() {
                rsa.check_key()
                    .map_err(bad("not a valid RSA private key"))?;
            }
            Ok(PKey::from_rsa(rsa)?)
        }
        _ => Err(Error::new(ErrorKind::Key, "unsupported or missing kty")),
    }
}

/// Refuses a JWK whose public members (`x`, `y`, `n`, `e`) are not those of its private key.
pub(super) fn check_public_members(json: &str, derived: &Value) -> Result<(), Error> {
    let map = object(json)?;
    for name in ["x", "y", "n", "e"] {
        let Some(given) = bytes(&map, name)? else {
            continue;
        };
        let ours = derived
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        // Compare as numbers: a leading zero byte does not change the key.
        let strip = |b: &[u8]| -> Vec<u8> { b.iter().copied().skip_while(|&x| x == 0).collect() };
        if ours.as_deref().map(strip) != Some(strip(&given)) {
            return Err(Error::new(
                ErrorKind::Key,
                format!("JWK member {name} does not belong to the private key"),
            ));
        }
    }
    Ok(())
}
