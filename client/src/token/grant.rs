//! One token request: the form, client authentication, the proof, the nonce retry, and the
//! checks of the answer.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use serde::Deserialize;

use super::transport::TokenTransport;
use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind};
use crate::sign::Signer;

/// The longest access or refresh token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The longest OAuth `error` code kept from a refusal, in bytes.
const MAX_ERROR_CODE_LEN: usize = 128;

/// `Authorization: Basic` for `client_secret_basic` (RFC 6749 section 2.3.1): id and secret
/// each `application/x-www-form-urlencoded`, joined by `:`, then base64.
pub(super) fn basic_auth(client_id: &str, client_secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(client_secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A successful token response (RFC 6749 section 5.1) with `token_type` `DPoP`. `Debug`
/// never shows the tokens.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// The access token.
    #[must_use]
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The token type: `DPoP` (any case), or the response was refused.
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// Seconds the access token is valid for, if the server said.
    #[must_use]
    pub fn expires_in(&self) -> Option<u64> {
        self.expires_in
    }

    /// The refresh token, if one was issued.
    #[must_use]
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }

    /// The granted scope, if the server said.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    fn check(self) -> Result<Self, Error> {
        if !self.token_type.eq_ignore_ascii_case("DPoP") {
            return Err(Error::new(
                ErrorKind::TokenType,
                "the token endpoint issued a token that is not DPoP-bound",
            ));
        }
        let token68 = |t: &str| {
            !t.is_empty()
                && t.len() <= MAX_TOKEN_LEN
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
        };
        if !token68(&self.access_token) {
            return Err(Error::new(
                ErrorKind::InvalidTokenResponse,
                "the access token is empty, too long or not token68",
            ));
        }
        if self
            .refresh_token
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.len() > MAX_TOKEN_LEN)
        {
            return Err(Error::new(
                ErrorKind::InvalidTokenResponse,
                "the refresh token is empty or too long",
            ));
        }
        Ok(self)
    }
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

fn oauth_error(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorResponse>(body)
        .ok()
        .map(|e| e.error)
        .filter(|e| e.len() <= MAX_ERROR_CODE_LEN && e.bytes().all(|b| (0x20..0x7f).contains(&b)))
}

/// Sends the token request, answers one `use_dpop_nonce` with the nonce it came with, and
/// checks the answer.
pub(super) async fn request(
    transport: &dyn TokenTransport,
    signer: &Signer,
    credentials: &Credentials,
    endpoint: &Uri,
    authorization: &str,
    form: String,
) -> Result<TokenResponse, Error> {
    let authorization = HeaderValue::try_from(authorization).map_err(|_| {
        Error::new(
            ErrorKind::TokenEndpoint,
            "client credentials are not a header value",
        )
    })?;
    let body = Bytes::from(form);
    let mut retried = false;
    loop {
        let mut request = Request::new(body.clone());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = endpoint.clone();
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, authorization.clone());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let origin = signer.sign(credentials, &Method::POST, endpoint, headers)?;
        let response = transport.send(request).await?;
        let new_nonce = signer.nonces.remember_from(&origin, response.headers());
        let status = response.status();
        if status.is_success() {
            let token: TokenResponse = serde_json::from_slice(response.body()).map_err(|e| {
                Error::new(ErrorKind::InvalidTokenResponse, "not a token response").with_source(e)
            })?;
            return token.check();
        }
        let code = oauth_error(response.body());
        if status == StatusCode::BAD_REQUEST
            && code.as_deref() == Some("use_dpop_nonce")
            && new_nonce
            && !retried
        {
            retried = true;
            continue;
        }
        let error = Error::new(
            ErrorKind::TokenEndpoint,
            format!("the token endpoint answered {status}"),
        );
        return Err(match code {
            Some(code) => error.with_oauth_error(code),
            None => error,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6749 section 2.3.1: id and secret are form-urlencoded before base64.
    #[test]
    fn basic_auth_form_encodes() {
        let value = basic_auth("client id:1", "s3cr+t/é");
        let decoded = STANDARD
            .decode(value.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "client+id%3A1:s3cr%2Bt%2F%C3%A9"
        );
        assert_eq!(
            basic_auth("plain", "secret"),
            format!("Basic {}", STANDARD.encode("plain:secret"))
        );
    }

    /// A token that is not `DPoP` is refused; the type is compared without case.
    #[test]
    fn token_type_must_be_dpop() {
        let parse = |json: &str| serde_json::from_str::<TokenResponse>(json).unwrap().check();
        assert_eq!(
            parse(r#"{"access_token":"t","token_type":"Bearer"}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::TokenType
        );
        assert!(parse(r#"{"access_token":"t","token_type":"dpop"}"#).is_ok());
        assert_eq!(
            parse(r#"{"access_token":"a b","token_type":"DPoP"}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidTokenResponse
        );
    }
}
