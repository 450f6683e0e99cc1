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

/// What about the request shapes its rejection: whether its route needs a nonce, and whether
/// it is a gRPC call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answering {
    nonce_required: bool,
    grpc: bool,
}

impl Answering {
    pub(crate) fn of(config: &DpopConfig, parts: &http::request::Parts) -> Self {
        let uri = super::request_uri(parts);
        Self {
            nonce_required: config
                .nonce_required(&parts.method, uri.path(), &parts.headers)
                .is_some(),
            grpc: parts
                .headers
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc")),
        }
    }
}

/// The response for a rejected request, from the layer or from an extractor behind it: the
/// status, the challenge, the configured body, a fresh `DPoP-Nonce` when the error asks for one
/// or the route needs one and the request was refused with 401, and the error in the response
/// extensions so outer layers can see why. A gRPC call (`content-type: application/grpc...`)
/// gets a gRPC status instead of an HTTP error (see [`grpc`]), with the same headers.
pub(crate) fn reject<B: From<Bytes>>(
    error: Error,
    config: &DpopConfig,
    answering: Answering,
) -> Response<B> {
    let nonce = error.error_code() == Some("use_dpop_nonce")
        || (answering.nonce_required && error.status() == http::StatusCode::UNAUTHORIZED);
    let mut response = if answering.grpc {
        grpc(error, config)
    } else {
        rejection(error, config)
    };
    if nonce {
        add_nonce(&mut response, config);
    }
    response
}

/// A rejection as gRPC answers one ("trailers-only": HTTP 200, `grpc-status`, `grpc-message`,
/// no message), so that a gRPC client sees the status the rejection means rather than a
/// protocol error on a JSON body: 401 is `UNAUTHENTICATED` (16), 400 `INVALID_ARGUMENT` (3),
/// 429 `RESOURCE_EXHAUSTED` (8), 503 `UNAVAILABLE` (14). `WWW-Authenticate`, `Retry-After`
/// and `DPoP-Nonce` are headers as for HTTP, which gRPC clients read as response metadata.
fn grpc<B: From<Bytes>>(error: Error, config: &DpopConfig) -> Response<B> {
    let code: u16 = match error.status().as_u16() {
        400 => 3,
        401 => 16,
        429 => 8,
        503 => 14,
        _ => 2,
    };
    let mut response = Response::new(B::from(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(code));
    if let Ok(message) = HeaderValue::try_from(grpc_message(error.description())) {
        headers.insert("grpc-message", message);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    challenge_headers(&error, config, headers);
    response.extensions_mut().insert(error);
    response
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2): everything outside printable ASCII,
/// and `%` itself.
fn grpc_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `WWW-Authenticate` (when the error has a challenge) and `Retry-After` (when it has a wait).
fn challenge_headers(error: &Error, config: &DpopConfig, headers: &mut http::HeaderMap) {
    if let Some(value) = challenge(error, config).and_then(|c| HeaderValue::try_from(c).ok()) {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    if let Some(wait) = error.retry_after() {
        let secs = wait.as_millis().div_ceil(1000).max(1);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from(u64::try_from(secs).unwrap_or(u64::MAX)),
        );
    }
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
    challenge_headers(&error, config, headers);
    response.extensions_mut().insert(error);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// A gRPC call's rejection is a trailers-only gRPC status (HTTP 200, `application/grpc`,
    /// `grpc-status` by the HTTP status it stands for, the description percent-encoded in
    /// `grpc-message`), with the challenge and `Retry-After` kept as headers, and no body.
    #[test]
    fn a_grpc_call_gets_the_grpc_status_of_its_rejection() {
        let issuer = crate::testing::TestIssuer::new();
        let layer = crate::DpopLayer::builder()
            .public_origin("https://grpc.example.com")
            .token_validator(issuer.validator())
            .build()
            .unwrap();
        let mut request = http::Request::post("https://grpc.example.com/pkg.Svc/Method")
            .header(CONTENT_TYPE, "application/grpc+proto")
            .body(())
            .unwrap();
        let (parts, ()) = std::mem::replace(&mut request, http::Request::new(())).into_parts();
        let cases = [
            (ErrorKind::MissingCredentials, "16"),
            (ErrorKind::ProofReplayed, "16"),
            (ErrorKind::MalformedRequest, "3"),
            (ErrorKind::Unavailable, "14"),
        ];
        for (kind, code) in cases {
            let error = Error::new(kind, "100% wrong");
            let response: Response<Vec<u8>> = layer.rejection(&error, &parts);
            assert_eq!(response.status(), http::StatusCode::OK, "{kind:?}");
            let h = response.headers();
            assert_eq!(h[CONTENT_TYPE], "application/grpc");
            assert_eq!(h["grpc-status"], code, "{kind:?}");
            assert_eq!(h["grpc-message"], "100%25 wrong");
            assert_eq!(
                h.contains_key(WWW_AUTHENTICATE),
                error.status() == http::StatusCode::UNAUTHORIZED
                    || error.status() == http::StatusCode::BAD_REQUEST,
                "{kind:?}"
            );
            assert!(response.body().is_empty());
            assert_eq!(response.extensions().get::<Error>(), Some(&error));
        }
        let quota = Error::key_quota_exceeded(std::time::Duration::from_millis(2500));
        let response: Response<Vec<u8>> = layer.rejection(&quota, &parts);
        assert_eq!(response.headers()["grpc-status"], "8");
        assert_eq!(response.headers()[RETRY_AFTER], "3");
        // The same error for a plain HTTP request stays an HTTP 401.
        let (http_parts, ()) = http::Request::get("https://grpc.example.com/x")
            .body(())
            .unwrap()
            .into_parts();
        let error = Error::new(ErrorKind::ProofReplayed, "x");
        let response: Response<Vec<u8>> = layer.rejection(&error, &http_parts);
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
        assert!(!response.headers().contains_key("grpc-status"));
    }
}
