//! DPoP proofs (RFC 9449 section 4.2) and the `htu` of a request URI.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{Method, Uri};
use serde_json::{json, Map, Value};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind};
use crate::key::{ath, DpopKey};

/// The random bytes of a proof's `jti` (128 bits), from OpenSSL's random generator.
pub const JTI_BYTES: usize = 16;

/// The `htu` of a request URI (RFC 9449 section 4.2): scheme, host, port and path, without
/// query and fragment (and without userinfo), the scheme and host in lower case and a default
/// port left out.
///
/// ```
/// use tower_dpop_client::proof::htu;
///
/// let uri = "https://API.example.com:443/r?x=1#top".parse().unwrap();
/// assert_eq!(htu(&uri).unwrap(), "https://api.example.com/r");
/// ```
///
/// # Errors
/// [`ErrorKind::Uri`] for a URI that is not absolute `http` or `https`.
pub fn htu(uri: &Uri) -> Result<String, Error> {
    let mut out = origin(uri)?;
    match uri.path() {
        "" => out.push('/'),
        path => out.push_str(path),
    }
    Ok(out)
}

/// The origin (`scheme://host[:port]`) of an absolute `http` or `https` URI, normalized as in
/// [`htu`]: the key under which server nonces are remembered.
///
/// # Errors
/// [`ErrorKind::Uri`] for a URI that is not absolute `http` or `https`.
pub fn origin(uri: &Uri) -> Result<String, Error> {
    let not_absolute = || Error::new(ErrorKind::Uri, "the request URI is not absolute http(s)");
    let scheme = uri
        .scheme_str()
        .ok_or_else(not_absolute)?
        .to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(not_absolute()),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(not_absolute)?;
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if let Some(port) = uri.port_u16().filter(|&p| p != default_port) {
        out.push(':');
        out.push_str(&port.to_string());
    }
    Ok(out)
}

/// A random base64url `jti` of [`JTI_BYTES`] bytes.
fn random_jti() -> Result<String, Error> {
    let mut buf = [0u8; JTI_BYTES];
    openssl::rand::rand_bytes(&mut buf)
        .map_err(|e| Error::new(ErrorKind::Signing, "no randomness for a jti").with_source(e))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// A proof being built for one request; [`sign`](Self::sign) makes the compact JWS.
///
/// ```
/// use tower_dpop_client::{Algorithm, DpopKey};
///
/// let key = DpopKey::generate(Algorithm::ES256)?;
/// let uri = "https://api.example.com/me?page=2".parse().unwrap();
/// let proof = key
///     .proof(&http::Method::GET, &uri)?
///     .access_token("the-token")
///     .nonce(Some("server-nonce"))
///     .sign()?;
/// assert_eq!(proof.split('.').count(), 3);
/// # Ok::<(), tower_dpop_client::Error>(())
/// ```
#[must_use]
pub struct ProofBuilder<'k> {
    key: &'k DpopKey,
    htm: String,
    htu: String,
    ath: Option<String>,
    nonce: Option<String>,
    iat: Option<u64>,
}

impl std::fmt::Debug for ProofBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofBuilder")
            .field("htm", &self.htm)
            .field("htu", &self.htu)
            .field("ath", &self.ath.is_some())
            .field("nonce", &self.nonce.is_some())
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// Starts a proof for a request with this method and URI (`htm`, `htu`).
    ///
    /// # Errors
    /// [`ErrorKind::Uri`] for a URI that is not absolute `http` or `https`.
    pub fn proof(&self, method: &Method, uri: &Uri) -> Result<ProofBuilder<'_>, Error> {
        Ok(ProofBuilder {
            key: self,
            htm: method.as_str().to_owned(),
            htu: htu(uri)?,
            ath: None,
            nonce: None,
            iat: None,
        })
    }
}

impl ProofBuilder<'_> {
    /// Binds the proof to the access token sent with it: `ath` = base64url(SHA-256(token)).
    pub fn access_token(mut self, token: &str) -> Self {
        self.ath = Some(ath(token));
        self
    }

    /// The server's nonce, if there is one.
    pub fn nonce(mut self, nonce: Option<&str>) -> Self {
        self.nonce = nonce.map(str::to_owned);
        self
    }

    /// `iat` from this clock (the system clock otherwise).
    pub fn clock(mut self, clock: &dyn Clock) -> Self {
        self.iat = Some(clock.unix_seconds());
        self
    }

    /// Signs the proof: header `typ` `dpop+jwt`, the key's `alg` and public `jwk`; claims
    /// `jti` (random, 128 bits), `htm`, `htu`, `iat`, and `ath` and `nonce` when set.
    ///
    /// # Errors
    /// [`ErrorKind::Signing`] when the random generator or the signature fails.
    pub fn sign(self) -> Result<String, Error> {
        let header = json!({
            "typ": "dpop+jwt",
            "alg": self.key.algorithm().as_str(),
            "jwk": self.key.public_jwk(),
        });
        let mut claims = Map::new();
        claims.insert("jti".into(), Value::String(random_jti()?));
        claims.insert("htm".into(), Value::String(self.htm));
        claims.insert("htu".into(), Value::String(self.htu));
        let iat = self.iat.unwrap_or_else(|| SystemClock.unix_seconds());
        claims.insert("iat".into(), Value::from(iat));
        if let Some(ath) = self.ath {
            claims.insert("ath".into(), Value::String(ath));
        }
        if let Some(nonce) = self.nonce {
            claims.insert("nonce".into(), Value::String(nonce));
        }
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string()));
        let signature = self.key.sign(out.as_bytes())?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        uri: &'static str,
        htu: Option<&'static str>,
    }

    /// `htu` leaves out query, fragment, userinfo and a default port, and refuses relative
    /// or non-http URIs.
    #[test]
    fn htu_table() {
        let cases = [
            Case {
                name: "plain",
                uri: "https://api.example.com/r",
                htu: Some("https://api.example.com/r"),
            },
            Case {
                name: "query",
                uri: "https://api.example.com/r?a=1&b=2",
                htu: Some("https://api.example.com/r"),
            },
            Case {
                name: "empty path",
                uri: "https://api.example.com",
                htu: Some("https://api.example.com/"),
            },
            Case {
                name: "case",
                uri: "HTTPS://Api.Example.COM/Path",
                htu: Some("https://api.example.com/Path"),
            },
            Case {
                name: "default port",
                uri: "http://h.example:80/x",
                htu: Some("http://h.example/x"),
            },
            Case {
                name: "other port",
                uri: "http://127.0.0.1:8080/x",
                htu: Some("http://127.0.0.1:8080/x"),
            },
            Case {
                name: "userinfo",
                uri: "https://user:pw@h.example/x",
                htu: Some("https://h.example/x"),
            },
            Case {
                name: "relative",
                uri: "/x",
                htu: None,
            },
            Case {
                name: "other scheme",
                uri: "ftp://h.example/x",
                htu: None,
            },
        ];
        for case in cases {
            let uri: Uri = case.uri.parse().unwrap();
            assert_eq!(htu(&uri).ok().as_deref(), case.htu, "{}", case.name);
        }
    }

    /// Every proof gets a new random `jti` of 128 bits.
    #[test]
    fn jti_is_fresh_and_long() {
        let a = random_jti().unwrap();
        let b = random_jti().unwrap();
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), JTI_BYTES);
        const { assert!(JTI_BYTES * 8 >= 128) };
    }
}
