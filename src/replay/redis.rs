//! A replay store in Redis, shared by every instance of a fleet, failing closed.
//!
//! One command per request: `SET <prefix><key> 1 NX PX <ttl>`, atomic in Redis, so of any
//! number of instances racing on the same proof exactly one sees `OK`. Keys are the
//! fixed-size [`ReplayKey`] (43 base64url characters after the prefix) and expire exactly when
//! the proof can no longer be accepted; nothing else is stored.
//!
//! Every call is bounded by a timeout. An error, a timeout or a refused connection is returned
//! as [`ReplayError::Backend`], which the layer answers with 503: a request is never accepted
//! because Redis could not be asked. The connection manager reconnects on its own, so requests
//! succeed again as soon as Redis is back.
//!
//! An evicted entry is a replay let through, and every `maxmemory-policy` but `noeviction` may
//! evict replay keys (the `allkeys-*` policies any key, the `volatile-*` ones any key with a
//! TTL, which every replay key has). After Redis first answers a request, the store asks it
//! once, in a background task, for its policy, and logs a warning (target `tower_dpop`) unless
//! it is `noeviction`; a Redis that refuses `CONFIG` (managed ones often do) is noted at debug
//! level. The answer never changes what a request gets, and no request waits for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{ReplayError, ReplayKey, ReplayStore, Seen};
use crate::error::ConfigError;

/// A [`ReplayStore`] in Redis. Cheap to clone (one shared multiplexed connection).
///
/// ```no_run
/// # fn main() -> Result<(), tower_dpop::ConfigError> {
/// use std::time::Duration;
/// use tower_dpop::replay::RedisReplayStore;
///
/// let store = RedisReplayStore::builder("redis://127.0.0.1:6379")
///     .key_prefix("myapi:dpop:")
///     .timeout(Duration::from_millis(200))
///     .build()?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisReplayStore {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    /// The runtime the connection runs on, for the eviction-policy check.
    runtime: tokio::runtime::Handle,
    /// Whether Redis was asked for its `maxmemory-policy`: [`UNASKED`], [`ASKING`] or [`ASKED`].
    policy_check: Arc<AtomicU8>,
}

const UNASKED: u8 = 0;
const ASKING: u8 = 1;
const ASKED: u8 = 2;

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// Starts configuring a store for the Redis at `url` (`redis://host:port[/db]`,
    /// `rediss://` for TLS if the `redis` crate was built with it).
    pub fn builder(url: impl Into<String>) -> RedisReplayStoreBuilder {
        RedisReplayStoreBuilder {
            url: url.into(),
            prefix: "dpop:jti:".to_owned(),
            timeout: Duration::from_millis(500),
        }
    }

    /// The Redis key for a proof.
    fn key(&self, key: &ReplayKey) -> String {
        redis_key(&self.prefix, key)
    }

    /// Called when Redis answered a request: the first time, asks it for its eviction policy
    /// in a task of its own, so the request does not wait. Asked again after a later answer
    /// if Redis did not answer the question.
    fn check_eviction_policy_once(&self) {
        if self.policy_check.load(Ordering::Relaxed) != UNASKED
            || self
                .policy_check
                .compare_exchange(UNASKED, ASKING, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let conn = self.conn.clone();
        let timeout = self.timeout;
        let state = Arc::clone(&self.policy_check);
        self.runtime.spawn(async move {
            let settled = check_eviction_policy(conn, timeout).await;
            state.store(if settled { ASKED } else { UNASKED }, Ordering::Release);
        });
    }
}

/// Asks Redis for its `maxmemory-policy` and warns unless it is `noeviction`. Returns whether
/// the question is settled: `false` when Redis did not answer (down, slow), to ask again later.
async fn check_eviction_policy(mut conn: ConnectionManager, timeout: Duration) -> bool {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("maxmemory-policy");
    let reply = tokio::time::timeout(
        timeout,
        cmd.query_async::<HashMap<String, String>>(&mut conn),
    )
    .await;
    let answer = match reply {
        Err(_) => return false,
        Ok(Err(e))
            if e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal() =>
        {
            return false
        }
        Ok(Err(e)) => {
            tracing::debug!(
                target: "tower_dpop",
                error = %e,
                "Redis refused `CONFIG GET maxmemory-policy`; make sure the policy is \
                 noeviction, or evicted replay entries let replays through"
            );
            return true;
        }
        Ok(Ok(answer)) => answer,
    };
    match answer.get("maxmemory-policy") {
        Some(policy) if policy.eq_ignore_ascii_case("noeviction") => {
            tracing::debug!(
                target: "tower_dpop",
                "Redis maxmemory-policy is noeviction: replay entries are never evicted"
            );
        }
        Some(policy) => {
            tracing::warn!(
                target: "tower_dpop",
                policy = %policy,
                "Redis maxmemory-policy may evict replay entries, and an evicted entry lets \
                 a replayed proof through; set `maxmemory-policy noeviction`"
            );
        }
        None => {
            tracing::debug!(
                target: "tower_dpop",
                "Redis did not report its maxmemory-policy; make sure it is noeviction, or \
                 evicted replay entries let replays through"
            );
        }
    }
    true
}

/// `<prefix><43 base64url characters of the key>`: the prefix is configuration, the rest is the
/// fixed-size hash of the proof's key and `jti`, so nothing a client sends reaches Redis as
/// text, and two proofs share a Redis key only if they share key and `jti`.
pub(crate) fn redis_key(prefix: &str, key: &ReplayKey) -> String {
    let mut out = String::with_capacity(prefix.len() + 43);
    out.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(key.as_bytes(), &mut out);
    out
}

/// Configures a [`RedisReplayStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisReplayStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
}

impl RedisReplayStoreBuilder {
    /// Prefix of every key (default `dpop:jti:`), to share a Redis with other data.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Longest a check may take, connecting included (default 500 ms); past it the request
    /// is refused with 503.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the store, inside the Tokio runtime that will serve requests (the connection
    /// runs as one of its tasks). It connects lazily: a Redis that is down at start makes
    /// requests fail with 503 until it is up, it does not stop the server from starting.
    ///
    /// # Errors
    /// When the URL is invalid, the timeout is zero, or it is called outside a Tokio runtime.
    pub fn build(self) -> Result<RedisReplayStore, ConfigError> {
        if self.timeout.is_zero() {
            return Err(ConfigError::new("the Redis timeout must not be zero"));
        }
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| ConfigError::new(format!("Redis URL is invalid: {e}")))?;
        // The connection manager spawns its tasks at once, and would panic without a runtime.
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError::new(
                "the Redis replay store must be built inside a Tokio runtime \
                 (its connection runs as a Tokio task)",
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| ConfigError::new(format!("cannot set up the Redis connection: {e}")))?;
        Ok(RedisReplayStore {
            conn,
            prefix: self.prefix,
            timeout: self.timeout,
            runtime,
            policy_check: Arc::new(AtomicU8::new(UNASKED)),
        })
    }
}

#[async_trait]
impl ReplayStore for RedisReplayStore {
    async fn check_and_insert(&self, key: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis);
        let reply =
            tokio::time::timeout(self.timeout, cmd.query_async::<Option<String>>(&mut conn)).await;
        let seen = match reply {
            Ok(Ok(Some(_))) => Seen::First,
            Ok(Ok(None)) => Seen::Replay,
            Ok(Err(e)) => return Err(ReplayError::Backend(format!("Redis error: {e}"))),
            Err(_) => {
                return Err(ReplayError::Backend(format!(
                    "Redis did not answer within {:?}",
                    self.timeout
                )))
            }
        };
        self.check_eviction_policy_once();
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::thumbprint::Thumbprint;

    #[test]
    fn the_key_is_the_prefix_and_the_hash_only() {
        let t = Thumbprint::from_bytes([7; 32]);
        let key = redis_key("api:", &ReplayKey::new(&t, "a b\r\n*"));
        let tail = key.strip_prefix("api:").unwrap();
        assert_eq!(tail.len(), 43);
        assert!(tail
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(key, redis_key("api:", &ReplayKey::new(&t, "a b\r\n")));
        assert_ne!(
            key,
            redis_key(
                "api:",
                &ReplayKey::new(&Thumbprint::from_bytes([8; 32]), "a b\r\n*")
            )
        );
    }
}
