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

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{ReplayError, ReplayKey, ReplayStore, Seen};
use crate::config::ConfigError;

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
}

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
        let mut out = String::with_capacity(self.prefix.len() + 43);
        out.push_str(&self.prefix);
        URL_SAFE_NO_PAD.encode_string(key.as_bytes(), &mut out);
        out
    }
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

    /// Builds the store. It connects lazily: a Redis that is down at start makes requests
    /// fail with 503 until it is up, it does not stop the server from starting.
    ///
    /// # Errors
    /// When the URL is invalid, the timeout is zero, or there is no Tokio runtime.
    pub fn build(self) -> Result<RedisReplayStore, ConfigError> {
        if self.timeout.is_zero() {
            return Err(ConfigError::new("the Redis timeout must not be zero"));
        }
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| ConfigError::new(format!("Redis URL is invalid: {e}")))?;
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
        match reply {
            Ok(Ok(Some(_))) => Ok(Seen::First),
            Ok(Ok(None)) => Ok(Seen::Replay),
            Ok(Err(e)) => Err(ReplayError::Backend(format!("Redis error: {e}"))),
            Err(_) => Err(ReplayError::Backend(format!(
                "Redis did not answer within {:?}",
                self.timeout
            ))),
        }
    }
}
