//! RFC 9449 §11.1: a `jti` is accepted once per key for the whole replay window, the store
//! is asked only after the signature verified, and a store that cannot answer fails closed.

use super::*;

#[tokio::test]
async fn jti_is_accepted_once_per_key() {
    let f = Fixture::new();
    let proof = f.proof().jti("same").sign();
    assert_eq!(f.get(&proof).await, Ok(()));
    assert_eq!(
        f.get(&proof).await,
        proof_err(ErrorKind::ProofReplayed, "proof jti was already used")
    );
    // A new proof reusing the jti is a replay too (same key).
    assert_eq!(
        f.get(&f.proof().jti("same").iat(T0 - 1).sign()).await,
        proof_err(ErrorKind::ProofReplayed, "proof jti was already used")
    );
    // Another key may use the same jti.
    let other = ClientKey::generate(Algorithm::ES256);
    let token = f.issuer.token_for(other.jkt(), T0 + 3600);
    let p = other
        .proof("GET", URL)
        .access_token(&token)
        .iat(T0)
        .jti("same")
        .sign();
    assert_eq!(f.send(Method::GET, "/api/me", &token, &p).await, Ok(()));
}

/// Records calls; answers as told.
#[derive(Debug, Default)]
struct ProbeStore {
    calls: AtomicUsize,
    fail: bool,
    ttls: std::sync::Mutex<Vec<Duration>>,
}

#[async_trait]
impl ReplayStore for ProbeStore {
    async fn check_and_insert(&self, _: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.ttls.lock().unwrap().push(ttl);
        if self.fail {
            Err(ReplayError::Backend("connection refused".into()))
        } else {
            Ok(Seen::First)
        }
    }
}

#[tokio::test]
async fn replay_store_is_asked_only_after_the_signature_verified() {
    let store = Arc::new(ProbeStore::default());
    let f = Fixture::with(Algorithm::ES256, |b| b.replay_store(store.clone()));
    let other = ClientKey::generate(Algorithm::ES256);
    let forged = other
        .proof("GET", URL)
        .access_token(&f.token)
        .iat(T0)
        .header("jwk", f.client.public_jwk().clone())
        .sign();
    for _ in 0..10 {
        assert_eq!(
            f.get(&forged).await,
            proof_err(ErrorKind::ProofSignature, "proof signature is invalid")
        );
    }
    assert_eq!(
        store.calls.load(Ordering::SeqCst),
        0,
        "unsigned proofs must never reach the store"
    );
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    assert_eq!(store.calls.load(Ordering::SeqCst), 1);
}

/// Every entry lives the whole replay window (max age + future leeway + clock skew
/// allowance), whatever the proof's `iat`: the store's clock, not the proof, decides when it
/// may go (tests/replay.rs shows why).
#[tokio::test]
async fn replay_entry_lives_the_whole_replay_window() {
    let store = Arc::new(ProbeStore::default());
    let f = Fixture::with(Algorithm::ES256, |b| {
        b.replay_store(store.clone())
            .clock_skew_allowance(Duration::from_secs(3))
    });
    assert_eq!(f.get(&f.proof().iat(T0).sign()).await, Ok(()));
    assert_eq!(f.get(&f.proof().iat(T0 - 50).sign()).await, Ok(()));
    assert_eq!(f.get(&f.proof().iat(T0 + 5).sign()).await, Ok(()));
    let ttls = store.ttls.lock().unwrap().clone();
    assert_eq!(ttls, vec![Duration::from_secs(68); 3]);
}

#[tokio::test]
async fn replay_store_failure_fails_closed() {
    let store = Arc::new(ProbeStore {
        fail: true,
        ..ProbeStore::default()
    });
    let f = Fixture::with(Algorithm::ES256, |b| b.replay_store(store.clone()));
    assert_eq!(
        f.get(&f.proof().sign()).await,
        Err(Error::new(
            ErrorKind::Unavailable,
            "replay store is unavailable"
        ))
    );
}

#[tokio::test]
async fn full_memory_store_fails_closed() {
    let f = Fixture::with(Algorithm::ES256, |b| {
        b.replay_store(tower_dpop::replay::MemoryReplayStore::new(2))
            .replay_key_quota(10)
    });
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    assert_eq!(f.get(&f.proof().sign()).await, Ok(()));
    assert_eq!(
        f.get(&f.proof().sign()).await,
        Err(Error::new(ErrorKind::Unavailable, "replay cache is full"))
    );
}
