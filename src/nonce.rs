//! Server-provided nonces (RFC 9449 sections 8 and 9), made and checked without storage.
//!
//! A nonce is `base64url(version || issued_at || salt || HMAC-SHA-256(secret, label || version
//! || issued_at || salt)[..16])`, with 5 random salt bytes so that no two nonces are alike: 30
//! bytes, 40 characters. It is valid for a configured lifetime from
//! `issued_at` by the server's clock, so it bounds a proof's life by the server's clock rather
//! than the client's. Any instance given the same secret accepts it; secrets rotate by listing
//! several (the first signs, all verify), or at run time with
//! [`DpopLayer::rotate_nonce_secret`](crate::DpopLayer::rotate_nonce_secret): the new secret
//! signs, the previous one is still accepted until the nonces it signed have expired. MACs are
//! compared in constant time.
//!
//! Nonces are not secret and not single-use: the replay store still refuses a repeated `jti`.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method};
use sha2::Sha256;

use crate::error::ConfigError;

const VERSION: u8 = 1;
const LABEL: &[u8] = b"tower-dpop nonce";
/// What a secret's id is the MAC of (never a nonce's head: those start with [`LABEL`]).
const ID_LABEL: &[u8] = b"tower-dpop nonce secret id";
const TAG_LEN: usize = 16;
const SALT_LEN: usize = 5;
const HEAD_LEN: usize = 1 + 8 + SALT_LEN;
const RAW_LEN: usize = HEAD_LEN + TAG_LEN;
/// Length of an encoded nonce, in characters.
pub const NONCE_LEN: usize = 40;
/// How far in the future (by this server's clock) a nonce's issue time may be: instances of a
/// fleet disagree a little about the time.
const FUTURE_SKEW: u64 = 5;

/// A secret nonces are made from: at least 32 bytes. Held as a keyed HMAC state.
#[derive(Clone)]
pub struct NonceSecret {
    mac: Hmac<Sha256>,
    /// Tells secrets apart without keeping their bytes: a MAC of a fixed label.
    id: [u8; 16],
}

impl fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceSecret(..)")
    }
}

impl NonceSecret {
    /// Smallest accepted secret, in bytes.
    pub const MIN_LEN: usize = 32;

    /// A secret from raw bytes.
    ///
    /// # Errors
    /// When it is shorter than 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() < Self::MIN_LEN {
            return Err(ConfigError::new(format!(
                "a nonce secret needs at least {} bytes, got {}",
                Self::MIN_LEN,
                bytes.len()
            )));
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes)
            .map_err(|_| ConfigError::new("the nonce secret cannot key HMAC-SHA-256"))?;
        let mut id = [0u8; 16];
        let mut idmac = mac.clone();
        idmac.update(ID_LABEL);
        for (dst, src) in id.iter_mut().zip(idmac.finalize().into_bytes().iter()) {
            *dst = *src;
        }
        Ok(Self { mac, id })
    }

    /// A secret from its base64url form (padding optional), as stored in configuration.
    ///
    /// # Errors
    /// When it is not base64url or decodes to fewer than 32 bytes.
    pub fn from_base64url(text: &str) -> Result<Self, ConfigError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|_| ConfigError::new("a nonce secret must be base64url"))?;
        Self::from_bytes(&bytes)
    }

    /// A new random 32-byte secret, for a single instance.
    ///
    /// # Errors
    /// When the operating system's random generator fails.
    pub fn random() -> Result<Self, ConfigError> {
        let mut bytes = [0u8; 32];
        openssl::rand::rand_bytes(&mut bytes)
            .map_err(|e| ConfigError::new(format!("no randomness for the nonce secret: {e}")))?;
        Self::from_bytes(&bytes)
    }

    /// The MAC over the nonce's head (version, issue time, salt).
    fn mac(&self, head: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(LABEL);
        mac.update(head);
        mac
    }
}

/// Random bytes that make every nonce unique. Should the generator fail, the nonce is still
/// authentic, only not unique within its second.
fn random_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    if openssl::rand::rand_bytes(&mut salt).is_err() {
        tracing::warn!(target: "tower_dpop", "no randomness for a nonce salt");
    }
    salt
}

/// A per-request nonce decision: method, path, headers.
pub type NonceRule = dyn Fn(&Method, &str, &HeaderMap) -> bool + Send + Sync;

/// When a request must carry a server nonce.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum NoncePolicy {
    /// Never (the default): proofs are bounded by `iat` and the replay store only.
    #[default]
    Off,
    /// On every request.
    Required,
    /// When the function says so for the request's method and path.
    When(Arc<NonceRule>),
}

impl NoncePolicy {
    /// A policy decided per request, for example only for unsafe methods:
    ///
    /// ```
    /// use tower_dpop::nonce::NoncePolicy;
    /// let policy = NoncePolicy::when(|method, _path, _headers| !method.is_safe());
    /// # let _ = policy;
    /// ```
    pub fn when(f: impl Fn(&Method, &str, &HeaderMap) -> bool + Send + Sync + 'static) -> Self {
        Self::When(Arc::new(f))
    }

    pub(crate) fn applies(&self, method: &Method, path: &str, headers: &HeaderMap) -> bool {
        match self {
            Self::Off => false,
            Self::Required => true,
            Self::When(f) => f(method, path, headers),
        }
    }
}

impl fmt::Debug for NoncePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("Off"),
            Self::Required => f.write_str("Required"),
            Self::When(_) => f.write_str("When(..)"),
        }
    }
}

/// Why a nonce was refused (all answered with `use_dpop_nonce` and a fresh nonce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceError {
    Malformed,
    Expired,
    FromTheFuture,
    UnknownKey,
}

impl NonceError {
    pub(crate) fn description(self) -> &'static str {
        match self {
            Self::Malformed => "DPoP nonce is not one this server issued",
            Self::Expired => "DPoP nonce has expired",
            Self::FromTheFuture => "DPoP nonce is not yet valid",
            Self::UnknownKey => "DPoP nonce is not one this server issued",
        }
    }
}

/// A secret that verifies but no longer (or not yet) signs.
#[derive(Debug, Clone)]
struct Accepted {
    secret: NonceSecret,
    /// Dropped from this time on (Unix seconds); `None`: kept (configured, or staged).
    until: Option<u64>,
}

/// The secrets in use: one signs, all verify.
#[derive(Debug, Clone)]
struct SecretSet {
    signing: NonceSecret,
    accepted: Vec<Accepted>,
}

impl SecretSet {
    /// The secrets that verify at `now`, the signing one first.
    fn verifying(&self, now: u64) -> impl Iterator<Item = &NonceSecret> {
        std::iter::once(&self.signing).chain(
            self.accepted
                .iter()
                .filter(move |a| a.until.is_none_or(|until| now < until))
                .map(|a| &a.secret),
        )
    }

    fn knows(&self, id: &[u8; 16]) -> bool {
        self.signing.id == *id || self.accepted.iter().any(|a| a.secret.id == *id)
    }

    /// Drops the retired secrets whose time has passed.
    fn prune(&mut self, now: u64) {
        self.accepted
            .retain(|a| a.until.is_none_or(|until| now < until));
    }
}

/// Most secrets one layer holds at once: rotation drops the retired ones, so only a caller
/// staging secrets without ever rotating reaches it.
const MAX_SECRETS: usize = 16;

/// Makes and checks nonces.
#[derive(Debug)]
pub(crate) struct Nonces {
    /// Read on every request that carries or is given a nonce; written by rotation only.
    secrets: RwLock<SecretSet>,
    lifetime: Duration,
}

impl Nonces {
    /// Nonces signed with the first secret, accepted under any, valid for `lifetime`.
    ///
    /// # Errors
    /// When no secret is given or the lifetime is not between 10 s and 1 h.
    pub(crate) fn new(secrets: Vec<NonceSecret>, lifetime: Duration) -> Result<Self, ConfigError> {
        let mut secrets = secrets.into_iter();
        let Some(signing) = secrets.next() else {
            return Err(ConfigError::new("no nonce secret"));
        };
        if lifetime < Duration::from_secs(10) || lifetime > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "the nonce lifetime must be between 10 s and 1 h",
            ));
        }
        let accepted = secrets
            .map(|secret| Accepted {
                secret,
                until: None,
            })
            .collect();
        Ok(Self {
            secrets: RwLock::new(SecretSet { signing, accepted }),
            lifetime,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SecretSet> {
        // No code panics while holding the lock; a poisoned lock still holds a whole set.
        self.secrets.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, SecretSet> {
        self.secrets.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts nonces signed with `secret` from now on, without signing with it (the first
    /// step of a fleet's rotation). Nothing changes when the secret is already known.
    pub(crate) fn accept(&self, secret: NonceSecret, now: u64) -> Result<(), ConfigError> {
        let mut set = self.write();
        set.prune(now);
        if set.knows(&secret.id) {
            return Ok(());
        }
        if set.accepted.len() + 1 >= MAX_SECRETS {
            return Err(ConfigError::new(format!(
                "a layer holds at most {MAX_SECRETS} nonce secrets; rotate to retire old ones"
            )));
        }
        set.accepted.push(Accepted {
            secret,
            until: None,
        });
        Ok(())
    }

    /// Signs with `secret` from `now` on. The secret that signed until now is still accepted
    /// until every nonce it could have signed has expired: the lifetime, plus the skew allowed
    /// for a nonce issued by an instance whose clock is ahead. Rotating to the secret that
    /// already signs changes nothing.
    pub(crate) fn rotate(&self, secret: NonceSecret, now: u64) {
        let mut set = self.write();
        set.prune(now);
        if set.signing.id == secret.id {
            return;
        }
        set.accepted.retain(|a| a.secret.id != secret.id);
        let until = now
            .saturating_add(self.lifetime.as_secs())
            .saturating_add(FUTURE_SKEW)
            .saturating_add(1);
        let previous = std::mem::replace(&mut set.signing, secret);
        set.accepted.push(Accepted {
            secret: previous,
            until: Some(until),
        });
    }

    /// A nonce issued at `now` (seconds since the Unix epoch).
    #[must_use]
    pub(crate) fn issue(&self, now: u64) -> String {
        let mut raw = [0u8; RAW_LEN];
        let (head, tag) = raw.split_at_mut(HEAD_LEN);
        let mut fields = head.iter_mut();
        let salt = random_salt();
        for (dst, src) in (&mut fields).zip([VERSION].iter().chain(&now.to_be_bytes()).chain(&salt))
        {
            *dst = *src;
        }
        let full = self.read().signing.mac(head).finalize().into_bytes();
        for (dst, src) in tag.iter_mut().zip(full.iter()) {
            *dst = *src;
        }
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce at `now`, returning its issue time.
    pub(crate) fn check(&self, nonce: &str, now: u64) -> Result<u64, NonceError> {
        if nonce.len() != NONCE_LEN {
            return Err(NonceError::Malformed);
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(nonce.as_bytes(), &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(NonceError::Malformed),
        }
        let (head, tag) = raw.split_at(HEAD_LEN);
        let (&version, rest) = head.split_first().ok_or(NonceError::Malformed)?;
        if version != VERSION {
            return Err(NonceError::Malformed);
        }
        let time = rest.first_chunk::<8>().ok_or(NonceError::Malformed)?;
        let issued_at = u64::from_be_bytes(*time);
        // The MAC first: an unauthenticated time says nothing.
        if !self
            .read()
            .verifying(now)
            .any(|s| s.mac(head).verify_truncated_left(tag).is_ok())
        {
            return Err(NonceError::UnknownKey);
        }
        if issued_at > now.saturating_add(FUTURE_SKEW) {
            return Err(NonceError::FromTheFuture);
        }
        if now.saturating_sub(issued_at) >= self.lifetime.as_secs() {
            return Err(NonceError::Expired);
        }
        Ok(issued_at)
    }

    /// `true` when a nonce issued at `issued_at` has less than a third of its life left at
    /// `now`, so a successful response should hand the client the next one.
    pub(crate) fn should_refresh(&self, issued_at: u64, now: u64) -> bool {
        let age = now.saturating_sub(issued_at);
        age.saturating_mul(3) >= self.lifetime.as_secs().saturating_mul(2)
    }

    /// How long a nonce is accepted after it was issued.
    #[cfg(test)]
    fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(b: u8) -> NonceSecret {
        NonceSecret::from_bytes(&[b; 32]).unwrap()
    }

    fn nonces(secrets: Vec<NonceSecret>) -> Nonces {
        Nonces::new(secrets, Duration::from_secs(300)).unwrap()
    }

    const T: u64 = 1_800_000_000;

    #[test]
    fn round_trip_and_lifetime() {
        let n = nonces(vec![secret(1)]);
        let nonce = n.issue(T);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_eq!(n.check(&nonce, T), Ok(T));
        assert_eq!(n.check(&nonce, T + 299), Ok(T));
        assert_eq!(n.check(&nonce, T + 300), Err(NonceError::Expired));
        assert_eq!(n.check(&nonce, T - 6), Err(NonceError::FromTheFuture));
        assert_eq!(n.check(&nonce, T - 5), Ok(T));
    }

    #[test]
    fn forged_and_malformed_nonces_are_refused() {
        let n = nonces(vec![secret(1)]);
        let nonce = n.issue(T);
        // Every single-character change is refused.
        for i in 0..nonce.len() {
            let mut bytes = nonce.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(n.check(&changed, T).is_err(), "position {i}");
        }
        for bad in [
            "",
            "short",
            &"A".repeat(NONCE_LEN),
            &format!("{nonce}A"),
            "eyJ7S_zG.eyJH0-Z.HX4w-7v",
        ] {
            assert!(n.check(bad, T).is_err(), "{bad}");
        }
        // A later issue time with the old tag: the MAC covers the time.
        let other = nonces(vec![secret(2)]);
        assert_eq!(other.check(&nonce, T), Err(NonceError::UnknownKey));
    }

    #[test]
    fn nonces_are_unique() {
        let n = nonces(vec![secret(1)]);
        assert_ne!(n.issue(T), n.issue(T));
    }

    #[test]
    fn rotation_signs_with_newest_and_accepts_all() {
        let old = nonces(vec![secret(1)]);
        let rotated = nonces(vec![secret(2), secret(1)]);
        let from_old = old.issue(T);
        let from_new = rotated.issue(T);
        assert_eq!(rotated.check(&from_old, T), Ok(T));
        assert_eq!(rotated.check(&from_new, T), Ok(T));
        assert_eq!(old.check(&from_new, T), Err(NonceError::UnknownKey));
    }

    #[test]
    fn runtime_rotation_keeps_the_previous_secret_for_one_lifetime() {
        let n = nonces(vec![secret(1)]);
        let before = n.issue(T);
        n.rotate(secret(2), T);
        let after = n.issue(T);
        // The new secret signs: a layer with the old one alone refuses its nonces.
        assert_eq!(
            nonces(vec![secret(1)]).check(&after, T),
            Err(NonceError::UnknownKey)
        );
        assert_eq!(nonces(vec![secret(2)]).check(&after, T), Ok(T));
        // Both verify while the old one's nonces can still be valid...
        assert_eq!(n.check(&before, T + 299), Ok(T));
        assert_eq!(n.check(&after, T + 299), Ok(T));
        // ...including one issued by an instance whose clock is ahead, until it expires.
        let ahead = nonces(vec![secret(1)]).issue(T + FUTURE_SKEW);
        assert_eq!(n.check(&ahead, T + FUTURE_SKEW + 299), Ok(T + FUTURE_SKEW));
        // Then the old secret is dropped; the new one goes on.
        let late = T + 300 + FUTURE_SKEW + 1;
        let forged_late = nonces(vec![secret(1)]).issue(late);
        assert_eq!(n.check(&forged_late, late), Err(NonceError::UnknownKey));
        let fresh = n.issue(late);
        assert_eq!(n.check(&fresh, late), Ok(late));
        n.rotate(secret(3), late);
        assert_eq!(n.read().accepted.len(), 1, "the retired secret was pruned");
    }

    #[test]
    fn staged_secret_verifies_before_it_signs() {
        let n = nonces(vec![secret(1)]);
        let other = nonces(vec![secret(2)]);
        let from_other = other.issue(T);
        assert_eq!(n.check(&from_other, T), Err(NonceError::UnknownKey));
        n.accept(secret(2), T).unwrap();
        assert_eq!(n.check(&from_other, T), Ok(T));
        // Still signing with the first secret.
        assert_eq!(nonces(vec![secret(1)]).check(&n.issue(T), T), Ok(T));
        // Accepting again, or rotating to it, does not duplicate it; rotating to the signing
        // secret changes nothing.
        n.accept(secret(2), T).unwrap();
        n.rotate(secret(2), T);
        n.rotate(secret(2), T);
        let set = n.read();
        assert_eq!(set.accepted.len(), 1);
        assert_eq!(set.accepted[0].secret.id, secret(1).id);
        assert!(set.accepted[0].until.is_some());
    }

    #[test]
    fn staged_secrets_are_bounded() {
        let n = nonces(vec![secret(0)]);
        for b in 1..MAX_SECRETS as u8 {
            n.accept(secret(b), T).unwrap();
        }
        assert!(n.accept(secret(200), T).is_err());
        assert_ne!(secret(1).id, secret(2).id);
    }

    #[test]
    fn accessors_and_debug() {
        assert_eq!(nonces(vec![secret(1)]).lifetime(), Duration::from_secs(300));
        assert_eq!(format!("{:?}", NoncePolicy::Off), "Off");
        assert_eq!(format!("{:?}", NoncePolicy::Required), "Required");
        assert_eq!(
            format!("{:?}", NoncePolicy::when(|_, _, _| true)),
            "When(..)"
        );
    }

    #[test]
    fn refresh_in_the_last_third() {
        let n = nonces(vec![secret(1)]);
        assert!(!n.should_refresh(T, T + 199));
        assert!(n.should_refresh(T, T + 200));
    }

    #[test]
    fn secrets_are_bounded_and_parsed() {
        assert!(NonceSecret::from_bytes(&[0; 31]).is_err());
        assert!(NonceSecret::from_base64url(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_ok());
        assert!(NonceSecret::from_base64url("not base64!").is_err());
        assert!(NonceSecret::random().is_ok());
        assert!(Nonces::new(vec![], Duration::from_secs(60)).is_err());
        assert!(Nonces::new(vec![secret(1)], Duration::from_secs(1)).is_err());
        assert_eq!(format!("{:?}", secret(1)), "NonceSecret(..)");
    }
}
