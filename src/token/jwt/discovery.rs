//! Authorization server metadata: where the key set of an issuer is found when only the
//! issuer is configured. The metadata document is fetched from the issuer's well-known URL
//! (RFC 8414 §3.1, or OpenID Connect Discovery 1.0 §4), its `issuer` must be the configured
//! one exactly (RFC 8414 §3.3, OpenID Connect Discovery §4.3), and its `jwks_uri` is where
//! the keys are fetched from, under the same `https:` rule as a configured JWKS URL.
//!
//! The document is fetched inside the key set's own fetches ([`super::remote`]): with their
//! rules (one at a time, one per interval, only after a proof verified) and, when it cannot be
//! fetched, with their bounds (a `jwks_uri` learnt less than `jwks_max_age + jwks_max_stale`
//! ago is still used; with none, the answer is 503).

use std::sync::{Mutex, PoisonError};

use reqwest::Url;
use serde::Deserialize;

use crate::error::ConfigError;
use crate::http_fetch::HttpFetch;

/// Largest metadata document accepted (real ones are a few KiB).
const MAX_METADATA_BYTES: usize = 256 * 1024;
const ACCEPT: &str = "application/json";

/// Which metadata document an issuer publishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataDocument {
    /// OpenID Connect Discovery 1.0 §4: the issuer followed by
    /// `/.well-known/openid-configuration` (a trailing `/` of the issuer removed first):
    /// `https://tenant.auth0.com/` gives
    /// `https://tenant.auth0.com/.well-known/openid-configuration`. Served by Okta, Auth0,
    /// Keycloak, PingFederate, Curity and Entra ID. The default.
    #[default]
    OpenIdConfiguration,
    /// RFC 8414 §3.1: `/.well-known/oauth-authorization-server` inserted between the host and
    /// the path of the issuer: `https://as.example.com/tenant1` gives
    /// `https://as.example.com/.well-known/oauth-authorization-server/tenant1`.
    OAuthAuthorizationServer,
}

impl MetadataDocument {
    /// The metadata URL of `issuer` (already parsed and checked).
    fn url_for(self, issuer: &Url) -> Url {
        let mut url = issuer.clone();
        match self {
            Self::OpenIdConfiguration => {
                let path = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.path().trim_end_matches('/')
                );
                url.set_path(&path);
            }
            Self::OAuthAuthorizationServer => {
                let path = match issuer.path() {
                    "" | "/" => "/.well-known/oauth-authorization-server".to_owned(),
                    path => format!("/.well-known/oauth-authorization-server{path}"),
                };
                url.set_path(&path);
            }
        }
        url
    }
}

/// The members of the metadata document that are used; the others are ignored. Typed, so a
/// repeated `issuer` or `jwks_uri` makes the document unreadable.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
}

/// An issuer whose key set is found through its metadata.
#[derive(Debug)]
pub(crate) struct Discovered {
    issuer: String,
    metadata_url: Url,
    /// The `jwks_uri` last learnt, and when (milliseconds since the Unix epoch).
    learnt: Mutex<Option<(Url, u64)>>,
}

impl Discovered {
    /// Checks `issuer` (`https:` unless the client allows plain `http:`; no query or fragment,
    /// RFC 8414 §2) and derives its metadata URL.
    pub(crate) fn new(
        issuer: &str,
        document: MetadataDocument,
        http: &HttpFetch,
    ) -> Result<Self, ConfigError> {
        let parsed = http.check_url("issuer", issuer)?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(ConfigError::new(format!(
                "issuer {issuer:?} has a query or fragment, which an issuer identifier must \
                 not have (RFC 8414 §2)"
            )));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            metadata_url: document.url_for(&parsed),
            learnt: Mutex::new(None),
        })
    }

    /// The configured issuer, which names this source in logs.
    pub(super) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `jwks_uri` learnt and when, if any.
    pub(super) fn learnt(&self) -> Option<(Url, u64)> {
        self.learnt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Fetches the metadata, checks it, and remembers its `jwks_uri` as learnt at `now()`.
    pub(super) async fn fetch(&self, http: &HttpFetch, now: u64) -> Result<Url, String> {
        let body = http
            .get(&self.metadata_url, ACCEPT, MAX_METADATA_BYTES)
            .await
            .map_err(|e| format!("metadata {}: {e}", self.metadata_url))?;
        let jwks_uri = self.read(&body, http)?;
        *self.learnt.lock().unwrap_or_else(PoisonError::into_inner) = Some((jwks_uri.clone(), now));
        Ok(jwks_uri)
    }

    /// The `jwks_uri` of a metadata document, once its `issuer` is checked.
    pub(crate) fn read(&self, body: &[u8], http: &HttpFetch) -> Result<Url, String> {
        let unreadable = |e: &dyn std::fmt::Display| {
            format!("metadata {} does not parse: {e}", self.metadata_url)
        };
        // A derived struct would also read a JSON array; the document is an object.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(unreadable(&"not a JSON object"));
        }
        // UTF-8 already: `HttpFetch` refuses a body that is not (serde would skip the bytes of
        // an ignored member without looking).
        let metadata: Metadata = serde_json::from_slice(body).map_err(|e| unreadable(&e))?;
        if metadata.issuer != self.issuer {
            return Err(format!(
                "metadata {} names issuer {:?}, not the configured {:?} (RFC 8414 §3.3): \
                 refusing its keys",
                self.metadata_url, metadata.issuer, self.issuer
            ));
        }
        let jwks_uri = metadata
            .jwks_uri
            .ok_or_else(|| format!("metadata {} has no jwks_uri", self.metadata_url))?;
        http.check_url("jwks_uri", &jwks_uri)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn http(allow_http: bool) -> HttpFetch {
        HttpFetch::new(Duration::from_secs(1), 3, allow_http).unwrap()
    }

    #[test]
    fn metadata_urls_per_document() {
        #[rustfmt::skip]
        let cases = [
            ("https://as.example.com", MetadataDocument::OpenIdConfiguration, "https://as.example.com/.well-known/openid-configuration"),
            ("https://tenant.auth0.com/", MetadataDocument::OpenIdConfiguration, "https://tenant.auth0.com/.well-known/openid-configuration"),
            ("https://kc.example.com/realms/api", MetadataDocument::OpenIdConfiguration, "https://kc.example.com/realms/api/.well-known/openid-configuration"),
            ("https://as.example.com", MetadataDocument::OAuthAuthorizationServer, "https://as.example.com/.well-known/oauth-authorization-server"),
            ("https://as.example.com/", MetadataDocument::OAuthAuthorizationServer, "https://as.example.com/.well-known/oauth-authorization-server"),
            ("https://as.example.com/tenant1", MetadataDocument::OAuthAuthorizationServer, "https://as.example.com/.well-known/oauth-authorization-server/tenant1"),
            ("https://dev-1.okta.com/oauth2/default", MetadataDocument::OAuthAuthorizationServer, "https://dev-1.okta.com/.well-known/oauth-authorization-server/oauth2/default"),
        ];
        for (issuer, document, expected) in cases {
            let d = Discovered::new(issuer, document, &http(false)).unwrap();
            assert_eq!(d.metadata_url.as_str(), expected, "{issuer} {document:?}");
            assert_eq!(d.issuer(), issuer);
        }
    }

    #[test]
    fn the_issuer_must_be_https_without_query_or_fragment() {
        let doc = MetadataDocument::default();
        for bad in [
            "http://as.example.com",
            "https://as.example.com/?tenant=1",
            "https://as.example.com/#x",
            "not a url",
        ] {
            assert!(Discovered::new(bad, doc, &http(false)).is_err(), "{bad}");
        }
        assert!(Discovered::new("http://127.0.0.1:1", doc, &http(true)).is_ok());
    }

    #[test]
    fn the_document_must_name_the_configured_issuer_and_an_https_jwks_uri() {
        let strict = http(false);
        let d = Discovered::new(
            "https://as.example.com",
            MetadataDocument::default(),
            &strict,
        )
        .unwrap();
        let read = |body: &str| d.read(body.as_bytes(), &strict);
        let ok = read(
            r#"{"issuer":"https://as.example.com","jwks_uri":"https://keys.example.com/jwks","x":[1]}"#,
        );
        assert_eq!(ok.unwrap().as_str(), "https://keys.example.com/jwks");
        for (body, says) in [
            (
                r#"{"issuer":"https://as.example.com/","jwks_uri":"https://as.example.com/jwks"}"#,
                "not the configured",
            ),
            (
                r#"{"issuer":"https://AS.example.com","jwks_uri":"https://as.example.com/jwks"}"#,
                "not the configured",
            ),
            (
                r#"{"issuer":"https://evil.example","jwks_uri":"https://as.example.com/jwks"}"#,
                "not the configured",
            ),
            (
                r#"{"jwks_uri":"https://as.example.com/jwks"}"#,
                "does not parse",
            ),
            (r#"{"issuer":"https://as.example.com"}"#, "no jwks_uri"),
            (
                r#"{"issuer":"https://as.example.com","jwks_uri":"http://as.example.com/jwks"}"#,
                "must be https",
            ),
            (
                r#"{"issuer":"https://as.example.com","issuer":"https://as.example.com","jwks_uri":"https://as.example.com/jwks"}"#,
                "does not parse",
            ),
            (r#"["https://as.example.com"]"#, "does not parse"),
        ] {
            let err = read(body).unwrap_err();
            assert!(err.contains(says), "{body}: {err}");
        }
    }
}
