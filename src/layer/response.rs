//! Rejection responses: status, `WWW-Authenticate: DPoP ...` challenge, small JSON body.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response};

use crate::config::DpopConfig;
use crate::error::{sanitize_description, Error};

/// The `WWW-Authenticate` value for `error` (RFC 9449 section 7.1, RFC 6750 section 3).
pub(crate) fn challenge(error: &Error, config: &DpopConfig) -> Option<String> {
    let algs = &config.algs_param;
    match error.error_code() {
        _ if matches!(error, Error::Unavailable(_)) => None,
        None => Some(format!("DPoP algs=\"{algs}\"")),
        Some(code) => Some(format!(
            "DPoP error=\"{code}\", error_description=\"{}\", algs=\"{algs}\"",
            sanitize_description(error.description())
        )),
    }
}

/// The `DPoP-Nonce` response header.
pub(crate) static DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// Adds a fresh `DPoP-Nonce` (and `Cache-Control: no-store` unless the response set its own
/// caching, RFC 9449 section 8.2).
pub(crate) fn add_nonce<B>(response: &mut Response<B>, config: &DpopConfig) {
    let Some(nonces) = config.nonces.as_ref() else {
        return;
    };
    let nonce = nonces.issue(config.clock.unix_seconds());
    if let Ok(value) = HeaderValue::from_str(&nonce) {
        response.headers_mut().insert(DPOP_NONCE.clone(), value);
    }
    if !response.headers().contains_key(CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The response for a rejected request. The error is also put in the response extensions
/// so outer layers can see why.
pub(crate) fn rejection<B: From<Bytes>>(error: Error, config: &DpopConfig) -> Response<B> {
    let body = match error.error_code() {
        Some(code) => serde_json::json!({
            "error": code,
            "error_description": error.description(),
        }),
        None if matches!(error, Error::Unavailable(_)) => serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": error.description(),
        }),
        None => serde_json::json!({ "error": "unauthorized" }),
    };
    let mut response = Response::new(B::from(Bytes::from(body.to_string())));
    *response.status_mut() = error.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = challenge(&error, config).and_then(|c| HeaderValue::try_from(c).ok()) {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    response.extensions_mut().insert(error);
    response
}
