//! What the layer proved about a request.

use std::sync::Arc;

use crate::proof::algorithm::Algorithm;
use crate::proof::thumbprint::Thumbprint;
use crate::proof::ProofClaims;
use crate::token::AccessToken;

/// A request with a valid DPoP proof for a token bound to its key.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    token: Arc<AccessToken>,
    jkt: Thumbprint,
    proof: Arc<ProofClaims>,
    alg: Algorithm,
    /// The client's nonce is in the last third of its life: send the next one.
    pub(crate) refresh_nonce: bool,
}

impl VerifiedRequest {
    /// The validated access token.
    #[must_use]
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// The thumbprint of the key that signed the proof, equal to the token's `cnf.jkt`.
    #[must_use]
    pub fn jkt(&self) -> &Thumbprint {
        &self.jkt
    }

    /// The claims of the proof.
    #[must_use]
    pub fn proof(&self) -> &ProofClaims {
        &self.proof
    }

    /// The algorithm the proof was signed with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// A request authenticated with a Bearer token (only when the layer accepts Bearer, and only
/// for tokens that are not sender-constrained).
#[derive(Debug, Clone)]
pub struct BearerRequest {
    token: Arc<AccessToken>,
}

impl BearerRequest {
    /// The validated access token.
    #[must_use]
    pub fn token(&self) -> &AccessToken {
        &self.token
    }
}

/// What the layer proved about a request: a DPoP request, (when accepted) a Bearer request, or
/// (when allowed) an anonymous one. Returned by
/// [`DpopLayer::authenticate`](crate::DpopLayer::authenticate), and put in the extensions of
/// every request the layer lets through, where the extractors read it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Authenticated {
    /// `Authorization: DPoP` with a valid proof.
    Dpop(VerifiedRequest),
    /// `Authorization: Bearer` with an unbound token.
    Bearer(BearerRequest),
    /// No credentials at all (neither `Authorization` nor `DPoP`), on a layer that
    /// [allows anonymous requests](crate::DpopLayerBuilder::allow_anonymous).
    Anonymous,
}

impl VerifiedRequest {
    pub(crate) fn new(
        token: Arc<AccessToken>,
        jkt: Thumbprint,
        proof: Arc<ProofClaims>,
        alg: Algorithm,
        refresh_nonce: bool,
    ) -> Self {
        Self {
            token,
            jkt,
            proof,
            alg,
            refresh_nonce,
        }
    }
}

impl BearerRequest {
    pub(crate) fn new(token: Arc<AccessToken>) -> Self {
        Self { token }
    }
}

impl Authenticated {
    /// The DPoP request, when it is one.
    #[must_use]
    pub fn dpop(&self) -> Option<&VerifiedRequest> {
        match self {
            Self::Dpop(v) => Some(v),
            _ => None,
        }
    }

    /// The validated access token, for a DPoP or a Bearer request.
    #[must_use]
    pub fn token(&self) -> Option<&AccessToken> {
        match self {
            Self::Dpop(v) => Some(v.token()),
            Self::Bearer(b) => Some(b.token()),
            Self::Anonymous => None,
        }
    }
}
