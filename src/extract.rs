//! The Axum extractor that hands handlers what the layer verified.

use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::proof::ProofClaims;
use crate::thumbprint::Thumbprint;
use crate::verify::{Anonymous, BearerRequest, VerifiedRequest};

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

/// Why [`DpopAuth`] could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum DpopAuthRejection {
    /// No [`VerifiedRequest`] in the request: the route is not behind a `DpopLayer`. A
    /// server bug, answered with 500.
    MissingLayer,
    /// The token's claims do not deserialize into the handler's type: answered with 401
    /// `invalid_token`.
    InvalidClaims(serde_json::Error),
    /// The request was authenticated with a Bearer token (the layer accepts Bearer), but this
    /// extractor needs a DPoP-bound one: answered with 401 `invalid_token`. Use [`TokenAuth`]
    /// on routes that serve both.
    NotDpop,
}

impl DpopAuthRejection {
    /// The status the rejection is answered with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidClaims(_) | Self::NotDpop => StatusCode::UNAUTHORIZED,
        }
    }

    /// The response body text.
    #[must_use]
    pub fn body_text(&self) -> &'static str {
        match self {
            Self::MissingLayer => {
                "DpopAuth extractor used on a route that is not behind DpopLayer; is the layer installed?"
            }
            Self::InvalidClaims(_) => "access token claims do not have the expected form",
            Self::NotDpop => "this resource requires a DPoP-bound access token",
        }
    }

    /// `true` when the layer is missing from the route.
    #[must_use]
    pub fn is_missing_layer(&self) -> bool {
        matches!(self, Self::MissingLayer)
    }
}

impl fmt::Display for DpopAuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.body_text())
    }
}

impl std::error::Error for DpopAuthRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::MissingLayer | Self::NotDpop => None,
            Self::InvalidClaims(e) => Some(e),
        }
    }
}

impl IntoResponse for DpopAuthRejection {
    fn into_response(self) -> Response {
        match &self {
            Self::MissingLayer => {
                tracing::error!(target: "tower_dpop", "{}", self.body_text());
                (self.status(), self.body_text()).into_response()
            }
            Self::InvalidClaims(_) | Self::NotDpop => {
                if let Self::InvalidClaims(e) = &self {
                    tracing::info!(target: "tower_dpop", error = %e, "token claims rejected by the extractor");
                }
                let challenge = format!(
                    "DPoP error=\"invalid_token\", error_description=\"{}\"",
                    self.body_text()
                );
                (
                    self.status(),
                    [(http::header::WWW_AUTHENTICATE, challenge)],
                    self.body_text(),
                )
                    .into_response()
            }
        }
    }
}

impl<T, S> FromRequestParts<S> for DpopAuth<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = DpopAuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(verified) = parts.extensions.get::<VerifiedRequest>() else {
            return Err(if parts.extensions.get::<BearerRequest>().is_some() {
                DpopAuthRejection::NotDpop
            } else {
                DpopAuthRejection::MissingLayer
            });
        };
        let claims =
            T::deserialize(verified.token().claims()).map_err(DpopAuthRejection::InvalidClaims)?;
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
        let (token, jkt) = if let Some(v) = parts.extensions.get::<VerifiedRequest>() {
            (v.token(), Some(*v.jkt()))
        } else if let Some(b) = parts.extensions.get::<BearerRequest>() {
            (b.token(), None)
        } else {
            return Err(DpopAuthRejection::MissingLayer);
        };
        let claims = T::deserialize(token.claims()).map_err(DpopAuthRejection::InvalidClaims)?;
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
                if parts.extensions.get::<Anonymous>().is_some() {
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
