//! DPoP (RFC 9449) for Tower and Axum resource servers: accept an access token only from the
//! client that holds the key it is bound to.
//!
//! A stolen bearer token works for anyone. With DPoP the authorization server binds the token
//! to a client key (`cnf.jkt`, the RFC 7638 thumbprint of the key), and on every request the
//! client sends `Authorization: DPoP <token>` and a `DPoP` header: a fresh JWT signed by that
//! key, naming the method, the URI, the time, a unique id and the token's hash. [`DpopLayer`]
//! checks all of it (RFC 9449 sections 4.3 and 7) and rejects anything else with the right
//! `WWW-Authenticate: DPoP` challenge; [`DpopAuth`] hands handlers the verified claims.
//!
//! ```
//! # #[cfg(feature = "axum")] mod example {
//! use axum::{routing::get, Router};
//! use tower_dpop::{token::jwt::JwtValidator, DpopAuth, DpopLayer};
//!
//! async fn me(auth: DpopAuth) -> String {
//!     format!("hello {}", auth.claims["sub"])
//! }
//!
//! # pub fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"as-1",
//!   "x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
//!   "y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}]}"#;
//! let layer = DpopLayer::builder()
//!     .public_origin("https://api.example.com")
//!     .token_validator(
//!         JwtValidator::builder()
//!             .jwks_json(jwks)
//!             .issuer("https://as.example.com")
//!             .audience("https://api.example.com")
//!             .build()?,
//!     )
//!     .build()?;
//!
//! let app: Router = Router::new().route("/me", get(me)).route_layer(layer);
//! # let _ = app;
//! # Ok(())
//! # }
//! # }
//! # fn main() {
//! #     #[cfg(feature = "axum")]
//! #     example::main().unwrap();
//! # }
//! ```
//!
//! `route_layer` runs the layer only on matched routes, so an unknown path still answers 404
//! rather than a DPoP challenge. Where the layer goes among `CorsLayer`, `TraceLayer` and the
//! others: [`guides::layers`].
//!
//! # What is checked, in order
//!
//! 1. One `Authorization` and one `DPoP` field, well formed (else 400 `invalid_request`); no
//!    credentials at all gives a bare 401 challenge.
//! 2. The proof: size, compact JWS, `typ` `dpop+jwt`, `alg` on the allow-list and fitting the
//!    `jwk`, a public `jwk`, `jti`, `htm`, `htu`, `iat`, `ath` present and well typed; `htm` and
//!    `htu` match the request under the configured public origin; `iat` in the window; `ath` is
//!    the token's hash (401 `invalid_dpop_proof`).
//! 3. The access token, through a [`TokenValidator`](token::TokenValidator) (cached until
//!    `exp`), bound with `cnf.jkt` to the proof's key (401 `invalid_token`). A token known
//!    without I/O (cached, or a JWT whose key is at hand) is checked here, before the proof's
//!    signature, so a forged token costs one token signature check.
//! 4. The proof's signature. A token that needs an outbound call (a key-set fetch,
//!    introspection) is validated only now, once the proof is known to be signed by its key.
//! 5. The server nonce, when the [nonce policy](nonce::NoncePolicy) asks for one (401
//!    `use_dpop_nonce` with a fresh `DPoP-Nonce`).
//! 6. The proof's key holds fewer live replay entries than its
//!    [quota](DpopLayerBuilder::replay_key_quota) (else 429 with `Retry-After`).
//! 7. The `jti` has not been seen for this key (replay store, asked last; 503 when it cannot
//!    answer). Every entry lives the whole [replay window](layer::DpopConfig::replay_window).

//!
//! # Other frameworks
//!
//! The layer wraps any Tower HTTP service and body (hyper, tonic, axum): its responses are
//! [`layer::ResponseBody`]. Outside Tower, [`DpopLayer::authenticate`] checks a request's head
//! exactly as the service does and [`DpopLayer::rejection`] builds the answer.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `axum` | yes | the extractors ([`DpopAuth`], [`TokenAuth`]), the metadata router, reading axum's `OriginalUri`, `ConnectInfo` and `MatchedPath`; without it the crate depends on neither axum nor hyper-util |
//! | `jwks-fetch` | yes | fetch the [`JwtValidator`](token::jwt::JwtValidator)'s key set from a URL (reqwest, tokio) |
//! | `native-tls` | yes | the TLS of the key-set and introspection clients: the platform's (OpenSSL here) |
//! | `rustls` | no | the same with rustls (and its default crypto provider) instead |
//! | `introspection` | no | [`IntrospectionValidator`](token::introspection::IntrospectionValidator): opaque tokens through RFC 7662 introspection, with RFC 9701 signed responses; turns on `jwks-fetch` |
//! | `redis` | no | [`RedisReplayStore`](replay::RedisReplayStore): one replay store for a fleet |
//! | `test-util` | no | [`testing`]: client keys, an issuer, request helpers, the replay-store conformance suite |
//!
//! # Guides
//!
//! The guides in the repository's `docs/` folder: getting started, configuration (every setting,
//! its default and why), deployment (fleets, Redis, proxies, clocks), security (the threat
//! model and the test that holds each defence), performance, and the crate's architecture. The
//! layer-order guide is compiled here as [`guides::layers`] (feature `axum`), and the
//! configuration of Okta, Auth0, Keycloak, PingFederate and Entra ID as
//! [`guides::identity_providers`] (features `axum` and `jwks-fetch`).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

#[cfg(feature = "test-util")]
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod authenticated;
pub mod clock;
mod error;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
/// Guides, from the repository's `docs/` folder; their code blocks run as doctests.
#[cfg(all(any(doc, doctest), feature = "axum"))]
pub mod guides {
    #[doc = include_str!("../docs/layers.md")]
    pub mod layers {}
    #[doc = include_str!("../docs/browsers.md")]
    pub mod browsers {}
    #[cfg(feature = "jwks-fetch")]
    #[doc = include_str!("../docs/identity-providers.md")]
    pub mod identity_providers {}
}
pub mod header;
#[cfg(any(feature = "jwks-fetch", feature = "introspection"))]
mod http_fetch;
pub mod layer;
pub mod metadata;
pub mod metrics;
pub mod nonce;
mod proof;
pub mod replay;
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
pub mod token;
mod verify;

/// The `async_trait` attribute, for implementing [`TokenValidator`](token::TokenValidator) and
/// [`ReplayStore`](replay::ReplayStore) without a dependency of your own.
pub use async_trait::async_trait;
pub use authenticated::{Authenticated, BearerRequest, VerifiedRequest};
pub use error::{ConfigError, Error, ErrorKind, Scheme};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{DpopAuth, DpopAuthRejection, TokenAuth};
pub use layer::{Dpop, DpopLayer, DpopLayerBuilder};
pub use proof::algorithm::{Algorithm, UnknownAlgorithm};
pub use proof::thumbprint::Thumbprint;
pub use proof::ProofClaims;
