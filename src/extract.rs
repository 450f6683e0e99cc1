//! The Axum extractor that hands handlers what the layer verified.

use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::authenticated::Authenticated;
use crate::proof::thumbprint::Thumbprint;
use crate::proof::ProofClaims;

/// The verified access-token claims (deserialized into `T`), the key thumbprint and the
/// proof's claims of a request that passed [`DpopLayer`](crate::DpopLayer).
///
/// ```
/// use axum::{routing::get, Json};
/// use serde::Deserialize;
/// use tower_dpop::DpopAuth;
///
/// #[derive(Deserialize)]
/// struct Claims {
///     sub: String,
/// }
///
/// async fn me(auth: DpopAuth<Claims>) -> String {
///     format!("{} with key {}", auth.claims.sub, auth.jkt)
/// }
///
/// async fn raw(auth: DpopAuth) -> Json<serde_json::Value> {
///     Json(auth.claims)
/// }
/// # let _app: axum::Router = axum::Router::new().route("/me", get(me)).route("/raw", get(raw));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DpopAuth<T = Value> {
    /// The access token's claims.
    pub claims: T,
    /// The thumbprint of the client key (the token's `cnf.jkt`).
    pub jkt: Thumbprint,
    /// The claims of the DPoP proof of this request.
    pub proof: ProofClaims,
}

impl<T> DpopAuth<T> {
    /// What the extractor would give a handler, for the handler's unit tests:
    ///
    /// ```
    /// use tower_dpop::{DpopAuth, ProofClaims, Thumbprint};
    ///
    /// async fn me(auth: DpopAuth) -> String {
    ///     format!("hello {}", auth.claims["sub"].as_str().unwrap_or("?"))
    /// }
    ///
    /// let auth = DpopAuth::new(
    ///     serde_json::json!({ "sub": "alice" }),
    ///     Thumbprint::from_bytes([7; 32]),
    ///     ProofClaims::new("jti-1", "GET", "https://api.example.com/me", 1_700_000_000, "ath"),
    /// );
    /// assert_eq!(futures::executor::block_on(me(auth)), "hello alice");
    /// ```
    pub fn new(claims: T, jkt: Thumbprint, proof: ProofClaims) -> Self {
        Self { claims, jkt, proof }
    }
}

impl<T> TokenAuth<T> {
    /// What the extractor would give a handler (`jkt` `None` for a Bearer request), for the
    /// handler's unit tests.
    pub fn new(claims: T, jkt: Option<Thumbprint>) -> Self {
        Self { claims, jkt }
    }
}

/// Why [`DpopAuth`] or [`TokenAuth`] could not be extracted.
///
/// Answered like a rejection of the layer itself: the same status, `WWW-Authenticate`
/// challenge (with `algs` and `resource_metadata`), `Cache-Control: no-store`, `DPoP-Nonce`
/// when the route requires nonces, and the body of the layer's
/// [`rejection_body`](crate::DpopLayerBuilder::rejection_body). Only a route that no layer
/// covers is answered differently: 500, because that is a server bug.
#[derive(Debug)]
pub struct DpopAuthRejection {
    reason: Reason,
    /// The layer that let the request through, whose challenge and body are used, and what
    /// about the request shapes the answer (a nonce, gRPC).
    layer: Option<(crate::layer::Installed, crate::layer::response::Answering)>,
}

#[derive(Debug)]
enum Reason {
    /// No layer covers the route.
    MissingLayer,
    /// The claims do not deserialize into the handler's type.
    InvalidClaims(serde_json::Error),
    /// A Bearer request reached an extractor that needs DPoP.
    NotDpop,
    /// An anonymous request (the layer allows them) reached an extractor that needs
    /// credentials.
    Anonymous,
}

impl DpopAuthRejection {
    fn new(reason: Reason, parts: &Parts) -> Self {
        let layer = parts.extensions.get::<crate::layer::Installed>().map(|l| {
            (
                l.clone(),
                crate::layer::response::Answering::of(&l.0, parts),
            )
        });
        Self { reason, layer }
    }

    /// The layer error this rejection is answered as; `None` for a route without a layer.
    fn error(&self) -> Option<crate::Error> {
        use crate::error::{Error, ErrorKind};
        match &self.reason {
            Reason::MissingLayer => None,
            Reason::InvalidClaims(_) => Some(Error::new(ErrorKind::TokenClaims, self.body_text())),
            Reason::NotDpop => Some(Error::new(ErrorKind::DpopRequired, self.body_text()).bearer()),
            Reason::Anonymous => Some(Error::new(ErrorKind::MissingCredentials, self.body_text())),
        }
    }

    /// The status the rejection is answered with: 500 for a route without a layer, else 401.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self.error() {
            None => StatusCode::INTERNAL_SERVER_ERROR,
            Some(e) => e.status(),
        }
    }

    /// A short description (the `error_description`, or the 500's text).
    #[must_use]
    pub fn body_text(&self) -> &'static str {
        match self.reason {
            Reason::MissingLayer => {
                "DpopAuth extractor used on a route that is not behind DpopLayer; is the layer installed?"
            }
            Reason::InvalidClaims(_) => "access token claims do not have the expected form",
            Reason::NotDpop => "this resource requires a DPoP-bound access token",
            Reason::Anonymous => "no DPoP credentials in the request",
        }
    }

    /// `true` when no layer covers the route (a server bug).
    #[must_use]
    pub fn is_missing_layer(&self) -> bool {
        matches!(self.reason, Reason::MissingLayer)
    }

    /// `true` when the request carried no credentials (the layer allows anonymous requests,
    /// and the handler takes `DpopAuth` or `TokenAuth` rather than an `Option` of it).
    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        matches!(self.reason, Reason::Anonymous)
    }

    /// `true` when a Bearer request reached a handler that needs a DPoP-bound token.
    #[must_use]
    pub fn is_not_dpop(&self) -> bool {
        matches!(self.reason, Reason::NotDpop)
    }

    /// `true` when the token's claims do not deserialize into the handler's type (the cause is
    /// the [`source`](std::error::Error::source)).
    #[must_use]
    pub fn is_invalid_claims(&self) -> bool {
        matches!(self.reason, Reason::InvalidClaims(_))
    }
}

impl fmt::Display for DpopAuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.body_text())
    }
}

impl std::error::Error for DpopAuthRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.reason {
            Reason::InvalidClaims(e) => Some(e),
            _ => None,
        }
    }
}

impl IntoResponse for DpopAuthRejection {
    fn into_response(self) -> Response {
        let (Some(error), Some(layer)) = (self.error(), self.layer.as_ref()) else {
            tracing::error!(target: "tower_dpop", "{}", self.body_text());
            return (self.status(), self.body_text()).into_response();
        };
        if let Reason::InvalidClaims(e) = &self.reason {
            tracing::info!(target: "tower_dpop", error = %e, "token claims rejected by the extractor");
        }
        crate::layer::response::reject(error, &layer.0 .0, layer.1)
    }
}

impl<T, S> FromRequestParts<S> for DpopAuth<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = DpopAuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let verified = match parts.extensions.get::<Authenticated>() {
            Some(Authenticated::Dpop(verified)) => verified,
            Some(Authenticated::Bearer(_)) => {
                return Err(DpopAuthRejection::new(Reason::NotDpop, parts))
            }
            Some(Authenticated::Anonymous) => {
                return Err(DpopAuthRejection::new(Reason::Anonymous, parts))
            }
            None => return Err(DpopAuthRejection::new(Reason::MissingLayer, parts)),
        };
        let claims = T::deserialize(verified.token().claims())
            .map_err(|e| DpopAuthRejection::new(Reason::InvalidClaims(e), parts))?;
        Ok(Self {
            claims,
            jkt: *verified.jkt(),
            proof: verified.proof().clone(),
        })
    }
}

/// The verified access-token claims of a request that passed the layer under either scheme:
/// DPoP (then `jkt` is the bound key) or, when the layer accepts it, Bearer (`jkt` is `None`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenAuth<T = Value> {
    /// The access token's claims.
    pub claims: T,
    /// The key thumbprint for a DPoP request; `None` for a Bearer request.
    pub jkt: Option<Thumbprint>,
}

impl<T, S> FromRequestParts<S> for TokenAuth<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = DpopAuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (token, jkt) = match parts.extensions.get::<Authenticated>() {
            Some(Authenticated::Dpop(v)) => (v.token(), Some(*v.jkt())),
            Some(Authenticated::Bearer(b)) => (b.token(), None),
            Some(Authenticated::Anonymous) => {
                return Err(DpopAuthRejection::new(Reason::Anonymous, parts))
            }
            None => return Err(DpopAuthRejection::new(Reason::MissingLayer, parts)),
        };
        let claims = T::deserialize(token.claims())
            .map_err(|e| DpopAuthRejection::new(Reason::InvalidClaims(e), parts))?;
        Ok(Self { claims, jkt })
    }
}

/// `Option<DpopAuth>` and `Option<TokenAuth>`: `None` for an anonymous request let through by a
/// layer built with [`allow_anonymous`](crate::DpopLayerBuilder::allow_anonymous); still a 500
/// when no layer covers the route, and still a rejection for credentials that fail.
macro_rules! optional_when_anonymous {
    ($extractor:ident) => {
        impl<T, S> OptionalFromRequestParts<S> for $extractor<T>
        where
            T: DeserializeOwned,
            S: Send + Sync,
        {
            type Rejection = DpopAuthRejection;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Option<Self>, Self::Rejection> {
                if matches!(
                    parts.extensions.get::<Authenticated>(),
                    Some(Authenticated::Anonymous)
                ) {
                    return Ok(None);
                }
                <Self as FromRequestParts<S>>::from_request_parts(parts, state)
                    .await
                    .map(Some)
            }
        }
    };
}

optional_when_anonymous!(DpopAuth);
optional_when_anonymous!(TokenAuth);
