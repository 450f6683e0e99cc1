//! One conformance suite for every [`ReplayStore`]: the built-in stores run it, and so can
//! yours.

// A test suite: it reports a deviation the way a test does, by panicking.
#![allow(clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::proof::thumbprint::Thumbprint;
use crate::replay::{ReplayKey, ReplayStore, Seen};

/// A key no other run uses (a random thumbprint), so a store shared with other tests (one
/// Redis) is never confused.
fn fresh_key(jti: &str) -> ReplayKey {
    let mut bytes = [0u8; 32];
    // The OS random generator; a failure only makes keys less unique between runs.
    let _ = openssl::rand::rand_bytes(&mut bytes);
    ReplayKey::new(&Thumbprint::from_bytes(bytes), jti)
}

/// Checks that `store` behaves as the layer needs: a key is [`Seen::First`] once and then
/// [`Seen::Replay`]; keys of other thumbprints or `jti`s are independent; of 64 concurrent
/// inserts of one key exactly one is first; an entry lives at least its `ttl` and then may go.
/// Panics (as a test does) on the first deviation. Takes about two seconds (it waits for an
/// entry to expire).
///
/// Call it from a multi-threaded Tokio test, so that the concurrent inserts really race:
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() {
/// use tower_dpop::replay::MemoryReplayStore;
///
/// tower_dpop::testing::check_replay_store(MemoryReplayStore::new(1000)).await;
/// # }
/// ```
///
/// # Panics
/// When the store does not behave as described, or answers with an error.
pub async fn check_replay_store<S: ReplayStore>(store: S) {
    let store = Arc::new(store);
    let long = Duration::from_secs(60);

    // First use, then replay.
    let key = fresh_key("a");
    assert_eq!(store.check_and_insert(key, long).await, Ok(Seen::First));
    assert_eq!(store.check_and_insert(key, long).await, Ok(Seen::Replay));

    // Independent keys: another jti, another thumbprint with the same jti.
    assert_eq!(
        store.check_and_insert(fresh_key("b"), long).await,
        Ok(Seen::First)
    );
    assert_eq!(
        store.check_and_insert(fresh_key("a"), long).await,
        Ok(Seen::First)
    );

    // 64 concurrent inserts of one key: one winner.
    let raced = fresh_key("raced");
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.check_and_insert(raced, long).await })
        })
        .collect();
    let mut first = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(Seen::First)) => first += 1,
            Ok(Ok(Seen::Replay)) => {}
            Ok(Err(e)) => panic!("the store failed: {e}"),
            Err(e) => panic!("an insert panicked: {e}"),
        }
    }
    assert_eq!(first, 1, "exactly one of 64 concurrent inserts is first");

    // An entry lives at least its ttl, and may go after it.
    let ttl = Duration::from_millis(1100);
    let expiring = fresh_key("expiring");
    let inserted = Instant::now();
    assert_eq!(store.check_and_insert(expiring, ttl).await, Ok(Seen::First));
    tokio::time::sleep(Duration::from_millis(600)).await;
    if inserted.elapsed() < ttl {
        assert_eq!(
            store.check_and_insert(expiring, ttl).await,
            Ok(Seen::Replay),
            "an entry must live its whole ttl"
        );
    }
    tokio::time::sleep(ttl + Duration::from_millis(600)).await;
    assert_eq!(
        store.check_and_insert(expiring, ttl).await,
        Ok(Seen::First),
        "an entry past its ttl must not block the key forever"
    );
}
