//! OAuth 2.0 Protected Resource Metadata (RFC 9728), generated from the layer's configuration.
//!
//! ```
//! # #[cfg(feature = "axum")] mod example {
//! use axum::Router;
//! use tower_dpop::metadata::ProtectedResourceMetadata;
//! use tower_dpop::{token::jwt::JwtValidator, DpopLayer};
//!
//! # pub fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"as-1",
//! #   "x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
//! #   "y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}]}"#;
//! let validator = JwtValidator::builder()
//!     .jwks_json(jwks)
//!     .issuer("https://as.example.com")
//!     .audience("https://api.example.com")
//!     .build()?;
//! let layer = DpopLayer::builder()
//!     .public_origin("https://api.example.com")
//!     .resource_metadata("https://api.example.com/.well-known/oauth-protected-resource")
//!     .token_validator(validator)
//!     .build()?;
//! let metadata = ProtectedResourceMetadata::from_layer(&layer)
//!     .authorization_server("https://as.example.com");
//! let app: Router = Router::new().merge(metadata.router());
//! # let _ = app;
//! # Ok(())
//! # }
//! # }
//! # fn main() {
//! #     #[cfg(feature = "axum")]
//! #     example::main().unwrap();
//! # }
//! ```

#[cfg(feature = "axum")]
use axum::{routing::get, Router};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use serde_json::{json, Value};

use crate::layer::DpopLayer;

/// The path RFC 9728 section 3 defines for the metadata document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The metadata document of a resource protected by a [`DpopLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResourceMetadata {
    resource: String,
    authorization_servers: Vec<String>,
    algs: Vec<&'static str>,
    bound_required: bool,
    resource_name: Option<String>,
    scopes: Vec<String>,
}

impl ProtectedResourceMetadata {
    /// Metadata matching `layer`: `resource` is its first public origin,
    /// `dpop_signing_alg_values_supported` its algorithms (the same list as the challenges'
    /// `algs`), and `dpop_bound_access_tokens_required` is true unless it accepts Bearer.
    pub fn from_layer(layer: &DpopLayer) -> Self {
        let config = layer.config();
        Self {
            resource: config.origins().next().unwrap_or_default().to_owned(),
            authorization_servers: Vec::new(),
            algs: config.algorithms().iter().map(|a| a.as_str()).collect(),
            bound_required: !config.allows_bearer(),
            resource_name: None,
            scopes: Vec::new(),
        }
    }

    /// Sets `resource` (default: the layer's first public origin).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = resource.into();
        self
    }

    /// Adds an issuer to `authorization_servers`.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Sets `resource_name`.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Adds a scope to `scopes_supported`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// The JSON document.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut doc = json!({
            "resource": self.resource,
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": self.algs,
            "dpop_bound_access_tokens_required": self.bound_required,
        });
        if let Some(map) = doc.as_object_mut() {
            if !self.authorization_servers.is_empty() {
                map.insert(
                    "authorization_servers".into(),
                    json!(self.authorization_servers),
                );
            }
            if let Some(name) = &self.resource_name {
                map.insert("resource_name".into(), json!(name));
            }
            if !self.scopes.is_empty() {
                map.insert("scopes_supported".into(), json!(self.scopes));
            }
        }
        doc
    }

    /// The document as an HTTP response (`200`, `application/json`), for any framework: serve
    /// it at [`WELL_KNOWN_PATH`], outside the DPoP layer.
    pub fn response<B: From<Bytes>>(&self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(Bytes::from(self.to_json().to_string())));
        response.headers_mut().insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }

    /// A router serving the document at [`WELL_KNOWN_PATH`] (unauthenticated: merge it
    /// outside the DPoP layer).
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let doc = self.to_json().to_string();
        Router::new().route(
            WELL_KNOWN_PATH,
            get(move || async move { ([(CONTENT_TYPE, "application/json")], doc) }),
        )
    }
}
