//! DPoP (RFC 9449) for HTTP clients: sign every request with a proof of possession of a key,
//! answer the server's nonces, and obtain access tokens bound to the key.
//!
//! The client half of [`tower-dpop`](https://docs.rs/tower-dpop), without its server
//! dependencies (no axum, moka or redis; reqwest only with the `reqwest` feature).
//!
//! - [`DpopKey`]: generate or load a key (ES256, ES384, EdDSA, PS256, RS256), its RFC 7638
//!   [thumbprint](DpopKey::thumbprint), and [proofs](DpopKey::proof).
//! - [`DpopClientLayer`]: a Tower layer for any `Service<http::Request<B>>` (hyper-util's
//!   client; tonic channels with [`layer::NoReplay`]) that adds `Authorization: DPoP` and a
//!   fresh proof to every request, remembers each origin's `DPoP-Nonce`, and retries once on
//!   `use_dpop_nonce` when the body can be replayed. [`DpopReqwest`] does the same around a `reqwest::Client`.
//! - [`TokenClient`]: DPoP-bound tokens from a token endpoint (client credentials with
//!   `client_secret_basic`, refresh tokens), answering the authorization server's nonce,
//!   cached until shortly before they expire.
//!
//! ```
//! use std::task::{Context, Poll};
//!
//! use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower_dpop_client::{Algorithm, Credentials, DpopClientLayer, DpopKey, DpopOutcome};
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # futures::executor::block_on(async {
//! // A stand-in server: asks for a nonce until a proof carries one, then answers with the
//! // `Authorization` it got.
//! #[derive(Clone)]
//! struct Server;
//! impl Service<Request<Full<Bytes>>> for Server {
//!     type Response = Response<String>;
//!     type Error = std::convert::Infallible;
//!     type Future = std::future::Ready<Result<Response<String>, Self::Error>>;
//!     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
//!         Poll::Ready(Ok(()))
//!     }
//!     fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
//!         let proof = request.headers()["dpop"].to_str().unwrap();
//!         let claims = URL_SAFE_NO_PAD.decode(proof.split('.').nth(1).unwrap()).unwrap();
//!         let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
//!         let response = if claims["nonce"] != "n-1" {
//!             Response::builder()
//!                 .status(401)
//!                 .header("www-authenticate", r#"DPoP error="use_dpop_nonce""#)
//!                 .header("dpop-nonce", "n-1")
//!                 .body(String::new())
//!         } else {
//!             let authorization = request.headers()["authorization"].to_str().unwrap();
//!             Response::builder().body(authorization.to_owned())
//!         };
//!         std::future::ready(Ok(response.unwrap()))
//!     }
//! }
//!
//! let key = DpopKey::generate(Algorithm::ES256)?;
//! let mut client = DpopClientLayer::new(Credentials::new(key, "token-123")).layer(Server);
//! let request = Request::get("https://api.example.com/me").body(Full::new(Bytes::new()))?;
//! let response = client.call(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.body(), "DPoP token-123");
//! assert!(response.extensions().get::<DpopOutcome>().unwrap().retried());
//! # Ok(())
//! # })
//! # }
//! ```
//!
//! # Nonces
//!
//! Each client remembers the last `DPoP-Nonce` of every origin (a [`NonceCache`], bounded in
//! nonce size and number of origins) and puts it in the next proof for that origin. A nonce
//! comes from any response that carries one, in particular the resource server's `401` with
//! `WWW-Authenticate: DPoP error="use_dpop_nonce"` and the authorization server's `400`
//! `{"error":"use_dpop_nonce"}`. Either is answered by sending the request once more, with a
//! new proof: never twice, and for a resource request only when the body can be replayed
//! ([`layer::ReplayableBody`]; `reqwest::Request::try_clone` for [`DpopReqwest`]). The
//! response's [`DpopOutcome`] says whether that happened.
//!
//! # Tokens
//!
//! A [`TokenClient`] is a [`CredentialSource`]: give it to the layer and each request gets the
//! current token with the key it is bound to. Rotating the key
//! ([`TokenClient::rotate_key`]) drops the token, so the old token is never sent with proofs
//! of the new key. For the authorization code flow, [`token::with_dpop_jkt`] adds the
//! `dpop_jkt` parameter (RFC 9449 section 10) to an authorization request.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `reqwest` | no | [`DpopReqwest`], and `reqwest::Client` as the [`TokenClient`]'s transport |
//! | `native-tls` | no | reqwest's TLS through the platform (OpenSSL here), for `https` |
//! | `rustls` | no | reqwest's TLS through rustls and its default crypto provider |
//!
//! With `reqwest` alone, reqwest has no TLS: enable `native-tls` or `rustls` here, or a TLS
//! feature of your own reqwest dependency (the features unify), to reach `https` servers.
//!
//! What the crate depends on, without and with the feature:
//!
//! ```sh
//! cargo tree -p tower-dpop-client -e normal --no-default-features
//! cargo tree -p tower-dpop-client -e normal --features reqwest
//! ```

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

pub mod clock;
mod credentials;
// The README's example compiles.
#[cfg(all(doctest, feature = "reqwest"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
mod error;
mod key;
pub mod layer;
pub mod nonce;
pub mod proof;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
mod reqwest;
mod sign;
pub mod token;

pub use credentials::{CredentialSource, Credentials, CredentialsFuture};
pub use error::{BoxError, Error, ErrorKind};
pub use key::{ath, Algorithm, DpopKey, MAX_JWK_LEN, RSA_BITS};
pub use layer::{DpopClient, DpopClientLayer};
pub use nonce::NonceCache;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use reqwest::DpopReqwest;
pub use sign::{DpopOutcome, DPOP};
pub use token::{TokenClient, TokenClientBuilder, TokenResponse};
