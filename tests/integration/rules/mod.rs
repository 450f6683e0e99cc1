//! One test per rule a resource server must enforce, grouped by RFC 9449 section (one module
//! each), run through the verification pipeline with an injected clock. Each asserts the exact
//! rejection, so removing the rule turns it red.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::json;
use tower_dpop::clock::ManualClock;
use tower_dpop::replay::{ReplayError, ReplayKey, ReplayStore, Seen};
use tower_dpop::testing::{dpop_headers, random_id, ClientKey, TestIssuer};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::token::{AccessToken, TokenError, TokenValidator};
use tower_dpop::{Algorithm, DpopLayer, DpopLayerBuilder, Error, ErrorKind};

mod configuration;
mod headers;
mod hostile_keys;
mod proof;
mod replay;
mod request;
mod token;

const T0: u64 = 1_800_000_000;
const ORIGIN: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/api/me";

struct Fixture {
    issuer: TestIssuer,
    client: ClientKey,
    token: String,
    clock: ManualClock,
    layer: DpopLayer,
}

fn validator(issuer: &TestIssuer) -> JwtValidator {
    JwtValidator::builder()
        .jwks_json(&issuer.jwks_json())
        .issuer(issuer.issuer())
        .audience("https://api.example.com")
        .build()
        .unwrap()
}

impl Fixture {
    fn new() -> Self {
        Self::with(Algorithm::ES256, |b| b)
    }

    fn with(alg: Algorithm, configure: impl FnOnce(DpopLayerBuilder) -> DpopLayerBuilder) -> Self {
        let issuer = TestIssuer::new();
        let client = ClientKey::generate(alg);
        let token = issuer.token_for(client.jkt(), T0 + 3600);
        let clock = ManualClock::at_unix(T0);
        let builder = DpopLayer::builder()
            .public_origin(ORIGIN)
            .token_validator(validator(&issuer))
            .clock(clock.clone());
        let layer = configure(builder).build().unwrap();
        Self {
            issuer,
            client,
            token,
            clock,
            layer,
        }
    }

    fn proof(&self) -> tower_dpop::testing::ProofBuilder<'_> {
        self.client
            .proof("GET", URL)
            .access_token(&self.token)
            .iat(T0)
    }

    /// A proof for the token signed by `other`, carrying the bound key's `jwk`.
    fn forged_by(&self, other: &ClientKey) -> String {
        other
            .proof("GET", URL)
            .access_token(&self.token)
            .iat(T0)
            .header("jwk", self.client.public_jwk().clone())
            .sign()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        proof: &str,
    ) -> Result<(), Error> {
        self.layer
            .authenticate(&tower_dpop::testing::request_parts(
                &method,
                path,
                &dpop_headers(token, proof),
            ))
            .await
            .map(|_| ())
    }

    async fn get(&self, proof: &str) -> Result<(), Error> {
        self.send(Method::GET, "/api/me", &self.token, proof).await
    }
}

/// base64url of a JSON value's text, for hand-made JWS parts.
fn b64(v: serde_json::Value) -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        v.to_string(),
    )
}

/// The kind of a token refusal by its reason: the layer's own time checks, else the validator's.
fn token_kind(reason: &str) -> ErrorKind {
    match reason {
        "access token has expired" => ErrorKind::TokenExpired,
        "access token is not yet valid" => ErrorKind::TokenNotYetValid,
        _ => ErrorKind::TokenInvalid,
    }
}

fn missing() -> Error {
    Error::new(
        ErrorKind::MissingCredentials,
        "no DPoP credentials in the request",
    )
}

fn proof_err(kind: ErrorKind, reason: &'static str) -> Result<(), Error> {
    Err(Error::new(kind, reason))
}

#[tokio::test]
async fn a_valid_request_is_accepted_for_every_default_algorithm() {
    for &alg in Algorithm::DEFAULT {
        let f = Fixture::with(alg, |b| b);
        let ok = f
            .layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/api/me",
                &dpop_headers(&f.token, &f.proof().sign()),
            ))
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let tower_dpop::Authenticated::Dpop(ok) = ok else {
            panic!("{alg}: not a DPoP request: {ok:?}");
        };
        assert_eq!(ok.algorithm(), alg);
        assert_eq!(ok.jkt().to_base64url(), f.client.jkt());
        assert_eq!(ok.token().subject(), Some("alice"));
    }
}
