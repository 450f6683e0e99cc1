//! The header names DPoP adds to HTTP (RFC 9449 sections 4.1 and 8.1).

use http::HeaderName;

/// The `DPoP` request header: the proof.
pub static DPOP: HeaderName = HeaderName::from_static("dpop");

/// The `DPoP-Nonce` response header: a server nonce for the client's next proof.
pub static DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");
