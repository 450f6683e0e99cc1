//! Rejection responses: status, `WWW-Authenticate: DPoP ...` challenge, small JSON body.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response};

use crate::error::{sanitize_description, Error, ErrorKind, Scheme};
use crate::layer::DpopConfig;

/// The `WWW-Authenticate` value for `error` (RFC 9449 sections 7.1 and 7.2, RFC 6750 section 3).
///
/// With Bearer accepted too, both challenges are sent, and the error information goes in the
/// challenge of the scheme the client used (RFC 9449 section 7.2).
pub(crate) fn challenge(error: &Error, config: &DpopConfig) -> Option<String> {
    // Neither is about credentials: the client's are fine, or were not looked at.
    if matches!(
        error.kind(),
        ErrorKind::Unavailable | ErrorKind::KeyQuotaExceeded
    ) {
        return None;
    }
    let mut bearer: Vec<String> = Vec::new();
    let mut dpop: Vec<String> = Vec::new();
    if let Some(code) = error.error_code() {
        let params = format!(
            "error=\"{code}\", error_description=\"{}\"",
            sanitize_description(error.description())
        );
        if error.scheme() == Scheme::Bearer {
            bearer.push(params);
        } else {
            dpop.push(params);
        }
    }
    dpop.push(format!("algs=\"{}\"", config.algs_param));
    if let Some(url) = &config.resource_metadata {
        let param = format!("resource_metadata=\"{url}\"");
        if config.allow_bearer {
            bearer.push(param.clone());
        }
        dpop.push(param);
    }
    let dpop = format!("DPoP {}", dpop.join(", "));
    if !config.allow_bearer {
        return Some(dpop);
    }
    let bearer = if bearer.is_empty() {
        "Bearer".to_owned()
    } else {
        format!("Bearer {}", bearer.join(", "))
    };
    Some(format!("{bearer}, {dpop}"))
}

/// Adds a fresh `DPoP-Nonce` (and `Cache-Control: no-store` unless the response set its own
/// caching, RFC 9449 section 8.2).
pub(crate) fn add_nonce<B>(response: &mut Response<B>, config: &DpopConfig) {
    let Some(nonces) = config.nonces.as_ref() else {
        return;
    };
    let nonce = nonces.issue(config.clock.unix_seconds());
    if let Ok(value) = HeaderValue::from_str(&nonce) {
        response
            .headers_mut()
            .insert(crate::header::DPOP_NONCE.clone(), value);
    }
    if !response.headers().contains_key(CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The default body: `{"error": ..., "error_description": ...}`.
fn default_body(error: &Error) -> serde_json::Value {
    match error.error_code() {
        Some(code) => serde_json::json!({
            "error": code,
            "error_description": error.description(),
        }),
        None if error.kind() == ErrorKind::Unavailable => serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": error.description(),
        }),
        None if error.kind() == ErrorKind::KeyQuotaExceeded => serde_json::json!({
            "error": "too_many_requests",
            "error_description": error.description(),
        }),
        None => serde_json::json!({ "error": "unauthorized" }),
    }
}

/// The response for a rejected request, from the layer or from an extractor behind it: the
/// status, the challenge, the configured body, and a fresh `DPoP-Nonce` when the error asks
/// for one or the request needed one (`nonce_required`) and was refused with 401.
pub(crate) fn reject<B: From<Bytes>>(
    error: Error,
    config: &DpopConfig,
    nonce_required: bool,
) -> Response<B> {
    let nonce = error.error_code() == Some("use_dpop_nonce")
        || (nonce_required && error.status() == http::StatusCode::UNAUTHORIZED);
    let mut response = rejection(error, config);
    if nonce {
        add_nonce(&mut response, config);
    }
    response
}

/// The response for a rejected request. The error is also put in the response extensions
/// so outer layers can see why.
fn rejection<B: From<Bytes>>(error: Error, config: &DpopConfig) -> Response<B> {
    let (content_type, body) = match &config.rejection_body {
        Some(make) => make(&error),
        None => (
            HeaderValue::from_static("application/json"),
            Bytes::from(default_body(&error).to_string()),
        ),
    };
    let mut response = Response::new(B::from(body));
    *response.status_mut() = error.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = challenge(&error, config).and_then(|c| HeaderValue::try_from(c).ok()) {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    if let Some(wait) = error.retry_after() {
        let secs = wait.as_millis().div_ceil(1000).max(1);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from(u64::try_from(secs).unwrap_or(u64::MAX)),
        );
    }
    response.extensions_mut().insert(error);
    response
}
