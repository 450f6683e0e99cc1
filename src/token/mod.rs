//! Access-token validation: the [`TokenValidator`] trait, the claims it returns, and the
//! built-in JWT validator.
//!
//! The layer calls the validator once per distinct token: valid tokens are cached by the
//! SHA-256 that `ath` needs anyway (an internal cache), until their `exp`. Time claims (`exp`,
//! `nbf`) are checked by the layer against its [`Clock`](crate::clock::Clock) on every request,
//! cached or not, so validators only check what does not change with time.

use std::borrow::Cow;
use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::proof::thumbprint::Thumbprint;

pub(crate) mod cache;
pub(crate) mod expect;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub mod introspection;
pub mod jwt;

/// A validated access token: its claims and the key it is bound to.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    /// Always a JSON object.
    claims: Value,
    /// `cnf.jkt` decoded once, here, rather than on every request; `None` when absent or not
    /// the base64url of 32 bytes (a token no key can match).
    jkt: Option<Thumbprint>,
    /// `cnf` has at least one member: the token is sender-constrained (DPoP, mutual TLS, ...).
    constrained: bool,
    exp: Option<u64>,
    nbf: Option<u64>,
}

impl AccessToken {
    /// Builds the token from its claims (a JWT payload or an introspection response),
    /// reading `cnf.jkt`, `exp` and `nbf`.
    ///
    /// # Errors
    /// When `cnf`, `cnf.jkt`, `exp` or `nbf` is present but of the wrong type.
    pub fn from_claims(claims: Map<String, Value>) -> Result<Self, TokenError> {
        let (jkt, constrained) = match claims.get("cnf") {
            None => (None, false),
            Some(Value::Object(cnf)) => match cnf.get("jkt") {
                None => (None, !cnf.is_empty()),
                Some(Value::String(jkt)) => (Some(jkt.clone()), true),
                Some(_) => return Err(TokenError::invalid("cnf.jkt is not a string")),
            },
            Some(_) => return Err(TokenError::invalid("cnf is not an object")),
        };
        let exp = numeric_date(&claims, "exp")?;
        let nbf = numeric_date(&claims, "nbf")?;
        let jkt = jkt.as_deref().and_then(Thumbprint::from_jkt);
        Ok(Self {
            claims: Value::Object(claims),
            jkt,
            constrained,
            exp,
            nbf,
        })
    }

    /// All claims of the token, as a JSON object.
    #[must_use]
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// One claim by name.
    #[must_use]
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// The key thumbprint the token is bound to (`cnf.jkt`), if it has one that is a valid
    /// RFC 7638 SHA-256 thumbprint.
    #[must_use]
    pub fn jkt(&self) -> Option<Thumbprint> {
        self.jkt
    }

    /// `true` when the token carries a confirmation (`cnf`) of any kind: bound to a DPoP key
    /// (`jkt`), a TLS client certificate (`x5t#S256`, RFC 8705) or anything else. Such a token
    /// must never be accepted as a plain Bearer token.
    #[must_use]
    pub fn is_sender_constrained(&self) -> bool {
        self.constrained
    }

    /// `true` when `cnf.jkt` is this thumbprint (compared in constant time).
    pub(crate) fn is_bound_to(&self, thumbprint: &Thumbprint) -> bool {
        self.jkt.is_some_and(|b| b.matches(thumbprint))
    }

    /// `exp`, in seconds since the Unix epoch.
    #[must_use]
    pub fn expires_at(&self) -> Option<u64> {
        self.exp
    }

    /// `nbf`, in seconds since the Unix epoch.
    #[must_use]
    pub fn not_before(&self) -> Option<u64> {
        self.nbf
    }

    /// `sub`, when it is a string.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// The OAuth client the token was issued to: the first of these claims that is a string,
    /// in this order:
    ///
    /// | claim | who sends it |
    /// |---|---|
    /// | `client_id` | RFC 9068 §2.2 (Auth0's RFC 9068 profile, PingFederate, Curity, introspection responses, RFC 7662 §2.2) |
    /// | `azp` | OpenID Connect's authorized party (Auth0's default profile, Keycloak, Entra ID v2.0) |
    /// | `cid` | Okta |
    ///
    /// Entra ID v1.0 tokens name the client in `appid`; read it with
    /// [`claim("appid")`](Self::claim).
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        ["client_id", "azp", "cid"]
            .into_iter()
            .find_map(|name| self.claims.get(name).and_then(Value::as_str))
    }

    /// The scopes granted, from the first of these claims that is present, `scope` or `scp`,
    /// each either one string of scopes separated by spaces or an array of strings:
    ///
    /// | claim | form | who sends it |
    /// |---|---|---|
    /// | `scope` | a string, space-delimited (RFC 9068 §2.2.3, RFC 7662 §2.2) | Auth0, Keycloak, Curity, PingFederate (by default), introspection responses |
    /// | `scope` | an array of strings | PingFederate, when its JWT access token manager is set to |
    /// | `scp` | an array of strings | Okta |
    /// | `scp` | a string, space-delimited | Entra ID (delegated permissions) |
    ///
    /// Empty when neither is present, or when the claim is of another type (a number, an
    /// object): a scope is never guessed, and `scp` is not read when `scope` is present. Entra
    /// ID application permissions are in `roles`, not here.
    #[must_use]
    pub fn scopes(&self) -> Vec<&str> {
        match self.claims.get("scope").or_else(|| self.claims.get("scp")) {
            Some(Value::String(s)) => s.split(' ').filter(|s| !s.is_empty()).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// `true` when [`scopes`](Self::scopes) holds `scope` (compared exactly).
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().contains(&scope)
    }
}

fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None => n
                .as_f64()
                .filter(|f| (0.0..9.0e15).contains(f))
                .map(|f| {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let secs = f.floor() as u64;
                    Some(secs)
                })
                .ok_or_else(|| TokenError::invalid(format!("{name} is out of range"))),
        },
        Some(_) => Err(TokenError::invalid(format!("{name} is not a number"))),
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is invalid: answered with 401 `invalid_token` and this description.
    Invalid(Cow<'static, str>),
    /// The validator could not decide (key set or introspection endpoint unreachable):
    /// answered with 503, never accepted.
    Unavailable(Cow<'static, str>),
}

impl TokenError {
    /// An invalid token, with a short description safe to show to the client.
    pub fn invalid(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Invalid(reason.into())
    }

    /// A backend failure, with a description for the logs.
    pub fn unavailable(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Unavailable(reason.into())
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(r) => write!(f, "invalid token: {r}"),
            Self::Unavailable(r) => write!(f, "token validation unavailable: {r}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Validates access tokens.
///
/// Return the token's claims for a token that is authentic and meant for this resource server
/// (signature, issuer, audience, revocation...). Do not check `exp` and `nbf`: the layer checks
/// them with its clock on every request. Return [`TokenError::Unavailable`] when you cannot
/// decide; the request is then refused with 503.
///
/// ```
/// use async_trait::async_trait;
/// use tower_dpop::token::{AccessToken, TokenError, TokenValidator};
///
/// #[derive(Debug)]
/// struct Opaque;
///
/// #[async_trait]
/// impl TokenValidator for Opaque {
///     async fn validate(&self, token: &str) -> Result<AccessToken, TokenError> {
///         if token != "let-me-in" {
///             return Err(TokenError::invalid("unknown token"));
///         }
///         let claims = serde_json::json!({ "sub": "alice", "cnf": { "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" } });
///         AccessToken::from_claims(claims.as_object().cloned().unwrap_or_default())
///     }
/// }
/// ```
///
/// # Outbound calls and cost
///
/// A validator that makes outbound calls (a key-set fetch, an introspection request) makes
/// them only from [`validate`](Self::validate): for a DPoP request the layer calls it only
/// once the proof's signature has verified, so a request from someone who holds no key makes
/// no outbound call. A validator that can answer from what it holds (a JWT whose key is at
/// hand) should also implement [`validate_offline`](Self::validate_offline): the layer asks it
/// first, before the proof's signature, so a forged token costs one token signature check and
/// no proof check.
#[async_trait]
pub trait TokenValidator: Debug + Send + Sync + 'static {
    /// Validates `token` (the credentials of the `Authorization` header). May make outbound
    /// calls. For a DPoP request it is called only after the proof's signature verified; for a
    /// Bearer request (when the layer accepts Bearer) whenever
    /// [`validate_offline`](Self::validate_offline) gave no answer.
    async fn validate(&self, token: &str) -> Result<AccessToken, TokenError>;

    /// Validates `token` at once, without I/O and without starting any (no fetch, no
    /// background refresh), when that is possible; `None`, the default, sends the layer to
    /// [`validate`](Self::validate). The layer calls this before it checks the proof's
    /// signature, so it must cost at most about one signature verification whatever the
    /// token. An answer given here must be the one `validate` would give.
    fn validate_offline(&self, token: &str) -> Option<Result<AccessToken, TokenError>> {
        let _ = token;
        None
    }
}

/// A shared validator: several layers (or a layer and your own code) may hold the same one.
#[async_trait]
impl<T: TokenValidator + ?Sized> TokenValidator for std::sync::Arc<T> {
    async fn validate(&self, token: &str) -> Result<AccessToken, TokenError> {
        (**self).validate(token).await
    }

    fn validate_offline(&self, token: &str) -> Option<Result<AccessToken, TokenError>> {
        (**self).validate_offline(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// The binding is decoded once; only the exact 32-byte thumbprint matches.
    #[test]
    fn is_bound_to_only_the_decoded_jkt() {
        let tp = Thumbprint::from_bytes([7; 32]);
        let jkt = tp.to_base64url();
        let bound = |jkt: &str| {
            AccessToken::from_claims(obj(json!({"cnf": {"jkt": jkt}})))
                .unwrap()
                .is_bound_to(&tp)
        };
        assert!(bound(&jkt));
        assert!(!bound(&Thumbprint::from_bytes([8; 32]).to_base64url()));
        assert!(!bound(&format!("{jkt}=")), "padded");
        assert!(!bound(&jkt[..42]), "truncated");
        assert!(!bound("abc"));
        let unbound = AccessToken::from_claims(obj(json!({"sub": "a"}))).unwrap();
        assert!(!unbound.is_bound_to(&tp));
    }

    #[test]
    fn reads_binding_and_times() {
        let t = AccessToken::from_claims(obj(
            json!({"sub":"a","cnf":{"jkt":"abc"},"exp":10,"nbf":2.5}),
        ))
        .unwrap();
        assert_eq!(t.jkt(), None, "not a thumbprint");
        assert!(t.is_sender_constrained(), "still bound");
        assert_eq!(t.expires_at(), Some(10));
        assert_eq!(t.not_before(), Some(2));
        assert_eq!(t.subject(), Some("a"));
        assert_eq!(t.client_id(), None);
        assert_eq!(t.claim("sub"), Some(&json!("a")));
        assert_eq!(t.claim("cnf"), Some(&json!({"jkt":"abc"})));
        assert_eq!(t.claim("aud"), None);
        assert_eq!(t.claims()["exp"], json!(10));
        let c = AccessToken::from_claims(obj(json!({"client_id":"app"}))).unwrap();
        assert_eq!(c.client_id(), Some("app"));
    }

    /// `client_id`, else `azp`, else `cid`; a claim of another type is skipped.
    #[test]
    fn client_id_from_client_id_azp_or_cid() {
        let cases = [
            (json!({"client_id": "a", "azp": "b", "cid": "c"}), Some("a")),
            (json!({"azp": "b", "cid": "c"}), Some("b")),
            (json!({"cid": "c"}), Some("c")),
            (json!({"client_id": 5, "azp": "b"}), Some("b")),
            (json!({"client_id": null, "cid": "c"}), Some("c")),
            (json!({"appid": "d"}), None),
            (json!({}), None),
        ];
        for (claims, expected) in cases {
            let t = AccessToken::from_claims(obj(claims.clone())).unwrap();
            assert_eq!(t.client_id(), expected, "{claims}");
        }
    }

    /// `scope` first, else `scp`; each a space-delimited string or an array of strings.
    #[test]
    fn scopes_from_scope_or_scp() {
        let cases: [(Value, &[&str]); 9] = [
            (
                json!({"scope": "openid read:a  write"}),
                &["openid", "read:a", "write"],
            ),
            (json!({"scp": ["read", "write"]}), &["read", "write"]),
            (
                json!({"scp": "User.Read Mail.Send"}),
                &["User.Read", "Mail.Send"],
            ),
            (json!({"scope": "a", "scp": ["b"]}), &["a"]),
            (json!({"scope": ["a"], "scp": ["b"]}), &["a"]),
            (json!({"scp": ["a", 1, "b"]}), &["a", "b"]),
            (json!({"scp": 5}), &[]),
            (json!({"scope": ""}), &[]),
            (json!({}), &[]),
        ];
        for (claims, expected) in cases {
            let t = AccessToken::from_claims(obj(claims.clone())).unwrap();
            assert_eq!(t.scopes(), expected, "{claims}");
        }
        let t = AccessToken::from_claims(obj(json!({"scp": ["read"]}))).unwrap();
        assert!(t.has_scope("read"));
        assert!(!t.has_scope("rea"));
    }

    #[test]
    fn error_display() {
        assert_eq!(
            TokenError::invalid("bad aud").to_string(),
            "invalid token: bad aud"
        );
        assert_eq!(
            TokenError::unavailable("JWKS down").to_string(),
            "token validation unavailable: JWKS down"
        );
    }

    #[test]
    fn rejects_mistyped_claims() {
        for claims in [
            json!({"cnf":"abc"}),
            json!({"cnf":{"jkt":5}}),
            json!({"exp":"10"}),
            json!({"nbf":-1}),
        ] {
            assert!(
                AccessToken::from_claims(obj(claims.clone())).is_err(),
                "{claims}"
            );
        }
        let mtls = AccessToken::from_claims(obj(json!({"cnf":{"x5t#S256":"z"}}))).unwrap();
        assert_eq!(mtls.jkt(), None);
        assert!(mtls.is_sender_constrained(), "bound, though not with DPoP");
        let dpop = AccessToken::from_claims(obj(json!({"cnf":{"jkt":"abc"}}))).unwrap();
        assert!(dpop.is_sender_constrained());
        for unbound in [json!({}), json!({"cnf":{}})] {
            let t = AccessToken::from_claims(obj(unbound.clone())).unwrap();
            assert!(!t.is_sender_constrained(), "{unbound}");
        }
    }
}
