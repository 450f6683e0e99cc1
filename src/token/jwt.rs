//! The built-in JWT access-token validator (RFC 9068 profile): the signature with a key of a
//! JWKS given in code, fetched from a URL or found from the issuer's metadata, chosen by `kid`
//! and `alg` among the keys of the issuer the token names; `iss`, `aud` and `exp`
//! required by default; an algorithm allow-list.
//!
//! Each usable key of a set is imported once, when the set is loaded, into a ready verifier
//! (the same code that verifies proof keys), so a token costs its cheap checks and one
//! signature verification, never a key import and never more than one verification.

use std::sync::Arc;

use async_trait::async_trait;

use super::{AccessToken, TokenError, TokenValidator};
use crate::error::ConfigError;

mod builder;
mod checks;
#[cfg(feature = "jwks-fetch")]
pub(crate) mod discovery;
// Crate-visible for the verification of signed introspection responses (RFC 9701).
pub(crate) mod keys;
#[cfg(feature = "jwks-fetch")]
pub(crate) mod remote;

pub use builder::JwtValidatorBuilder;
use checks::{Checked, Policy, BAD_SIGNATURE};
#[cfg(feature = "jwks-fetch")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
pub use discovery::MetadataDocument;
use keys::{KeyRing, Lookup};

/// Largest access token the validator reads, in bytes: the layer's own bound
/// ([`max_token_size`](crate::DpopLayerBuilder::max_token_size), at most 64 KiB) applies
/// before the validator is asked; this one only guards direct calls.
const MAX_TOKEN_LEN: usize = 64 * 1024;

#[derive(Debug)]
enum KeySource {
    Static(KeyRing),
    #[cfg(feature = "jwks-fetch")]
    Remote(Arc<remote::RemoteJwks>),
}

/// Validates JWT access tokens.
///
/// Checks, in order, before any signature: size (the layer's `max_token_size`), compact form,
/// header and claims decoded (`crit` refused); the issuer: `iss` one of the configured issuers,
/// compared exactly, which selects whose policy and keys apply when the validator holds several
/// ([`for_issuers`](Self::for_issuers)); `typ` (`at+jwt`, `JWT` or absent, the `application/`
/// prefix optional; only `at+jwt` with
/// [`require_at_jwt_typ`](JwtValidatorBuilder::require_at_jwt_typ); any other refused, saying
/// why); `alg` on the allow-list; the claims that do not change with time (`aud` a string or an
/// array holding a configured audience; `exp` present); and the key of the selected issuer: the one key of the set with the token's `kid` whose type fits `alg` (and whose
/// own `alg`, when it has one, is the token's). A token without `kid` is verified only when
/// exactly one key fits its `alg`. Then one signature check. `exp` and `nbf` are compared with
/// the clock by the layer, on every request.
///
/// The key set is given ([`jwks_json`](JwtValidatorBuilder::jwks_json)), fetched from a URL
/// ([`jwks_url`](JwtValidatorBuilder::jwks_url)) or found from the issuer's metadata
/// ([`discover`](JwtValidatorBuilder::discover)).
///
/// With a JWKS URL or discovery, [`validate_offline`](TokenValidator::validate_offline) answers from the
/// keys held when that needs no fetch: the keys are usable (fresh, or stale within
/// `jwks_max_stale`), no background refresh is due, and the token's `kid` is in the set, or is
/// not but no fetch may start now (then it is refused at once). Otherwise it answers `None`
/// and [`validate`](TokenValidator::validate) starts the refresh (in the background, answering
/// from the stale keys) or waits for the one fetch that may give the token's key.
///
/// ```
/// use tower_dpop::token::jwt::JwtValidator;
///
/// let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
///   "x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
///   "y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}]}"#;
/// let validator = JwtValidator::builder()
///     .jwks_json(jwks)
///     .issuer("https://as.example.com")
///     .audience("https://api.example.com")
///     .build()
///     .expect("valid configuration");
/// # let _ = validator;
/// ```
#[derive(Debug, Clone)]
pub struct JwtValidator {
    /// One entry per configured issuer (or set of issuers sharing a key set); a token's `iss`
    /// selects the one whose policy and keys apply.
    issuers: Arc<[Arc<Trusted>]>,
}

/// One issuer (or several sharing one key set): its key source and what its tokens must
/// satisfy.
#[derive(Debug)]
struct Trusted {
    source: KeySource,
    policy: Policy,
}

fn unknown_key() -> TokenError {
    TokenError::invalid(BAD_SIGNATURE)
}

#[cfg(feature = "jwks-fetch")]
fn unavailable() -> TokenError {
    TokenError::unavailable(
        "no usable JWKS: not fetched yet, or older than jwks_max_age + jwks_max_stale, and the \
         endpoint did not answer",
    )
}

/// What a key set answers for a checked token.
enum Answer<'t> {
    Done(Result<AccessToken, TokenError>),
    /// The set has no key with the token's `kid`; the token is handed back for another try.
    UnknownKid(#[cfg_attr(not(feature = "jwks-fetch"), allow(dead_code))] Checked<'t>),
}

fn answer<'t>(checked: Checked<'t>, ring: &KeyRing) -> Answer<'t> {
    match ring.find(checked.kid.as_deref(), checked.alg) {
        Lookup::Key(key) => Answer::Done(checked.verify(key)),
        Lookup::Refused(why) => Answer::Done(Err(TokenError::invalid(why))),
        Lookup::UnknownKid => Answer::UnknownKid(checked),
    }
}

/// The answer from `ring`, an unknown `kid` being final.
fn final_answer(checked: Checked<'_>, ring: &KeyRing) -> Result<AccessToken, TokenError> {
    match answer(checked, ring) {
        Answer::Done(result) => result,
        Answer::UnknownKid(_) => Err(unknown_key()),
    }
}

impl JwtValidator {
    /// Starts configuring a validator.
    pub fn builder() -> JwtValidatorBuilder {
        JwtValidatorBuilder::default()
    }

    /// One validator for the tokens of several issuers, each with its own key set (given or
    /// discovered), audiences and policy: Auth0 custom domains, multi-tenant APIs, a migration
    /// from one authorization server to another.
    ///
    /// The token's `iss`, read from its payload before any signature is checked (the token
    /// is at most 64 KiB), selects the one validator that accepts that issuer; a token of an
    /// issuer none accepts is refused before any key is looked up, and a token is only ever
    /// verified with the keys of the issuer it names, so a token that claims issuer A but is
    /// signed with a key of issuer B is refused.
    ///
    /// ```
    /// use tower_dpop::token::jwt::JwtValidator;
    /// # let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
    /// #   "x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    /// #   "y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}]}"#;
    /// let old = JwtValidator::builder()
    ///     .jwks_json(jwks)
    ///     .issuer("https://old-as.example.com")
    ///     .audience("https://api.example.com")
    ///     .build()?;
    /// # #[cfg(feature = "jwks-fetch")] {
    /// let new = JwtValidator::builder()
    ///     .discover("https://new-as.example.com") // issuer and key set from its metadata
    ///     .audience("https://api.example.com")
    ///     .build()?;
    /// let validator = JwtValidator::for_issuers([old, new])?;
    /// # let _ = validator;
    /// # }
    /// # Ok::<(), tower_dpop::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// When no validator is given; when one of several accepts any issuer
    /// ([`any_issuer`](JwtValidatorBuilder::any_issuer)), since the issuer could then not
    /// select it; when two accept the same issuer.
    pub fn for_issuers(
        validators: impl IntoIterator<Item = JwtValidator>,
    ) -> Result<Self, ConfigError> {
        let issuers: Vec<Arc<Trusted>> = validators
            .into_iter()
            .flat_map(|v| v.issuers.iter().cloned().collect::<Vec<_>>())
            .collect();
        if issuers.is_empty() {
            return Err(ConfigError::new("for_issuers(..) was given no validator"));
        }
        if issuers.len() > 1 {
            let mut seen: Vec<&str> = Vec::new();
            for trusted in &issuers {
                let Some(names) = trusted.policy.expected.issuers() else {
                    return Err(ConfigError::new(
                        "a validator given to for_issuers(..) accepts any issuer \
                         (any_issuer()): with several issuers each must name its own",
                    ));
                };
                for name in names {
                    if seen.contains(&name.as_str()) {
                        return Err(ConfigError::new(format!(
                            "issuer {name:?} is accepted by two validators given to \
                             for_issuers(..): each issuer must have one key set"
                        )));
                    }
                    seen.push(name);
                }
            }
        }
        Ok(Self {
            issuers: issuers.into(),
        })
    }

    /// A validator of one issuer entry.
    fn single(trusted: Trusted) -> Self {
        Self {
            issuers: Arc::from([Arc::new(trusted)]),
        }
    }

    /// Parses `token`, selects its issuer's entry by `iss` (before any signature), and runs
    /// that entry's checks.
    fn select<'s, 't>(&'s self, token: &'t str) -> Result<(&'s Trusted, Checked<'t>), TokenError> {
        let parsed = checks::parse(token)?;
        let trusted = self
            .issuers
            .iter()
            .find(|t| t.policy.accepts_issuer(parsed.issuer()))
            .ok_or_else(|| TokenError::invalid("access token issuer is not accepted"))?;
        Ok((trusted, trusted.policy.admit(parsed)?))
    }
}

#[cfg(feature = "jwks-fetch")]
async fn validate_remote(
    remote: &Arc<remote::RemoteJwks>,
    checked: Checked<'_>,
) -> Result<AccessToken, TokenError> {
    let view = remote.view();
    let checked = match &view.keys {
        Some(ring) => {
            if view.refresh_due {
                remote.refresh_in_background();
            }
            match answer(checked, ring) {
                Answer::Done(result) => return result,
                Answer::UnknownKid(checked) => checked,
            }
        }
        None => checked,
    };
    // No usable key for this token: wait for the one fetch that may bring it (in flight, or
    // started now if the interval allows), then answer from what is held.
    remote.fetch_and_wait().await;
    match &remote.view().keys {
        Some(ring) => final_answer(checked, ring),
        None => Err(unavailable()),
    }
}

/// `validate_remote`'s answer when it needs no fetch and starts none; `None` otherwise.
#[cfg(feature = "jwks-fetch")]
fn offline_remote(
    remote: &remote::RemoteJwks,
    checked: Checked<'_>,
) -> Option<Result<AccessToken, TokenError>> {
    let view = remote.view();
    match &view.keys {
        // `validate` starts the refresh (and answers from these keys at once).
        Some(_) if view.refresh_due => None,
        Some(ring) => match answer(checked, ring) {
            Answer::Done(result) => Some(result),
            // `validate` would wait for a fetch; with none allowed it refuses at once.
            Answer::UnknownKid(_) => (!view.can_fetch).then(|| Err(unknown_key())),
        },
        None => (!view.can_fetch).then(|| Err(unavailable())),
    }
}

#[async_trait]
impl TokenValidator for JwtValidator {
    async fn validate(&self, token: &str) -> Result<AccessToken, TokenError> {
        let (trusted, checked) = self.select(token)?;
        match &trusted.source {
            KeySource::Static(ring) => final_answer(checked, ring),
            #[cfg(feature = "jwks-fetch")]
            KeySource::Remote(remote) => validate_remote(remote, checked).await,
        }
    }

    fn validate_offline(&self, token: &str) -> Option<Result<AccessToken, TokenError>> {
        let (trusted, checked) = match self.select(token) {
            Ok(selected) => selected,
            Err(e) => return Some(Err(e)),
        };
        match &trusted.source {
            KeySource::Static(ring) => Some(final_answer(checked, ring)),
            #[cfg(feature = "jwks-fetch")]
            KeySource::Remote(remote) => offline_remote(remote, checked),
        }
    }
}
