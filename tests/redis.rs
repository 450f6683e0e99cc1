//! The Redis replay store against a real Redis: shared by two servers, atomic across them,
//! failing closed when Redis is down or slow, recovering when it is back.
//!
//! Tests that only need a Redis use the one named by `TOWER_DPOP_REDIS_URL` (`.ci/run` starts
//! one on a free 127.0.0.1 port), each under its own key prefix; without that variable they
//! start their own. Tests that stop and restart Redis always start their own `redis-server`
//! (Debian's package, which `.ci/run` installs). Without the binary the tests are skipped
//! locally, and fail in CI.
#![cfg(all(feature = "axum", feature = "redis"))]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use tower_dpop::replay::{RedisReplayStore, ReplayKey, ReplayStore, Seen};
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::Thumbprint;
use tower_dpop::{Algorithm, DpopAuth, DpopLayer};

/// A `redis-server` child process, killed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    /// More `redis-server` arguments, kept for restarts.
    args: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Redis {
    /// Starts a server, or returns `None` (outside CI) when redis-server is not installed.
    fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// The same, with more `redis-server` arguments.
    fn start_with(args: &[&str]) -> Option<Self> {
        let mut redis = Self {
            child: None,
            port: free_port(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        if !redis.spawn() {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is required in CI"
            );
            eprintln!("redis-server not found: skipping (install Debian's redis-server)");
            return None;
        }
        Some(redis)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        assert!(self.spawn());
    }

    fn store(&self) -> RedisReplayStore {
        Shared {
            url: self.url(),
            prefix: "dpop:jti:".into(),
            _own: None,
        }
        .store()
    }
}

/// A Redis for tests that do not stop it: the CI one under a fresh prefix, or our own.
struct Shared {
    url: String,
    prefix: String,
    _own: Option<Redis>,
}

impl Shared {
    fn get() -> Option<Self> {
        match std::env::var("TOWER_DPOP_REDIS_URL") {
            Ok(url) => Some(Self {
                url,
                prefix: format!("test:{}:", tower_dpop::testing::random_id(6)),
                _own: None,
            }),
            Err(_) => {
                let own = Redis::start()?;
                Some(Self {
                    url: own.url(),
                    prefix: "dpop:jti:".into(),
                    _own: Some(own),
                })
            }
        }
    }

    fn store(&self) -> RedisReplayStore {
        RedisReplayStore::builder(self.url.clone())
            .key_prefix(self.prefix.clone())
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap()
    }

    async fn command(&self, args: &[&str]) -> redis::Value {
        command(&self.url, args).await
    }
}

impl Redis {
    async fn command(&self, args: &[&str]) -> redis::Value {
        command(&self.url(), args).await
    }
}

async fn command(url: &str, args: &[&str]) -> redis::Value {
    {
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut conn).await.unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn key(n: u8) -> ReplayKey {
    ReplayKey::new(&Thumbprint::from_bytes([n; 32]), "jti")
}

#[tokio::test]
async fn first_use_then_replay_with_exact_expiry() {
    let Some(redis) = Shared::get() else { return };
    let store = redis.store();
    assert_eq!(
        store
            .check_and_insert(key(1), Duration::from_secs(60))
            .await,
        Ok(Seen::First)
    );
    assert_eq!(
        store
            .check_and_insert(key(1), Duration::from_secs(60))
            .await,
        Ok(Seen::Replay)
    );
    // One key per proof: the prefix and 43 base64url characters, value "1", a TTL <= 60 s.
    let pattern = format!("{}*", redis.prefix);
    let keys = redis.command(&["KEYS", &pattern]).await;
    let redis::Value::Array(keys) = keys else {
        panic!("{keys:?}")
    };
    assert_eq!(keys.len(), 1);
    let redis::Value::BulkString(name) = &keys[0] else {
        panic!()
    };
    let name = String::from_utf8(name.clone()).unwrap();
    assert!(
        name.starts_with(&redis.prefix) && name.len() == redis.prefix.len() + 43,
        "{name}"
    );
    assert_eq!(
        redis.command(&["GET", &name]).await,
        redis::Value::BulkString(b"1".to_vec())
    );
    let redis::Value::Int(pttl) = redis.command(&["PTTL", &name]).await else {
        panic!()
    };
    assert!((59_000..=60_000).contains(&pttl), "{pttl}");
    // Entries expire when the proof can no longer be accepted.
    assert_eq!(
        store
            .check_and_insert(key(2), Duration::from_millis(200))
            .await,
        Ok(Seen::First)
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store
            .check_and_insert(key(2), Duration::from_millis(200))
            .await,
        Ok(Seen::First)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_have_one_winner() {
    let Some(redis) = Shared::get() else { return };
    let stores = [redis.store(), redis.store()];
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            store
                .check_and_insert(key(9), Duration::from_secs(60))
                .await
        }));
    }
    let mut first = 0;
    for t in tasks {
        if t.await.unwrap() == Ok(Seen::First) {
            first += 1;
        }
    }
    assert_eq!(first, 1);
}

#[tokio::test]
async fn prefix_is_configurable() {
    let Some(redis) = Shared::get() else { return };
    let prefix = format!("{}app1:", redis.prefix);
    let store = RedisReplayStore::builder(redis.url.clone())
        .key_prefix(prefix.clone())
        .build()
        .unwrap();
    store
        .check_and_insert(key(3), Duration::from_secs(5))
        .await
        .unwrap();
    let pattern = format!("{prefix}*");
    let redis::Value::Array(keys) = redis.command(&["KEYS", &pattern]).await else {
        panic!()
    };
    assert_eq!(keys.len(), 1);
}

#[tokio::test]
async fn down_or_slow_redis_fails_closed_and_recovers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let store = redis.store();
    assert_eq!(
        store
            .check_and_insert(key(1), Duration::from_secs(60))
            .await,
        Ok(Seen::First)
    );
    // Slow: a paused Redis answers after the timeout.
    redis.command(&["CLIENT", "PAUSE", "1500", "ALL"]).await;
    let started = Instant::now();
    let slow = store
        .check_and_insert(key(2), Duration::from_secs(60))
        .await;
    assert!(slow.is_err(), "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "the timeout bounds the call"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // Down.
    redis.stop();
    for _ in 0..3 {
        assert!(store
            .check_and_insert(key(3), Duration::from_secs(60))
            .await
            .is_err());
    }
    // Back: the same store works again without being rebuilt.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store
            .check_and_insert(key(4), Duration::from_secs(60))
            .await
        {
            Ok(seen) => {
                assert_eq!(seen, Seen::First);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "no recovery: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two API servers behind one public origin (as behind a load balancer), sharing one Redis.
struct Fleet {
    issuer: TestIssuer,
    ports: [u16; 2],
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

const ORIGIN: &str = "https://api.example.com";

impl Fleet {
    async fn start(redis: &impl Fn() -> RedisReplayStore) -> Self {
        let issuer = TestIssuer::new();
        let mut ports = [0; 2];
        let mut tasks = Vec::new();
        for port in &mut ports {
            let validator = issuer.validator();
            let layer = DpopLayer::builder()
                .public_origin(ORIGIN)
                .token_validator(validator)
                .replay_store(redis())
                .build()
                .unwrap();
            let app = Router::new()
                .route(
                    "/api/me",
                    get(|auth: DpopAuth| async move { auth.jkt.to_string() }),
                )
                .layer(layer);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            *port = listener.local_addr().unwrap().port();
            tasks.push(tokio::spawn(async move {
                axum::serve(listener, app).await.unwrap()
            }));
        }
        Self {
            issuer,
            ports,
            tasks,
        }
    }

    fn request(
        &self,
        client: &reqwest::Client,
        server: usize,
        token: &str,
        proof: &str,
    ) -> reqwest::RequestBuilder {
        client
            .get(format!(
                "http://127.0.0.1:{}/api/me",
                self.ports[server % 2]
            ))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[tokio::test]
async fn a_proof_accepted_by_one_server_is_rejected_by_the_other() {
    let Some(redis) = Shared::get() else { return };
    let fleet = Fleet::start(&|| redis.store()).await;
    let client = reqwest::Client::new();
    let key = ClientKey::generate(Algorithm::ES256);
    let token = fleet.issuer.token_for(key.jkt(), unix_now() + 3600);
    let proof = key
        .proof("GET", &format!("{ORIGIN}/api/me"))
        .access_token(&token)
        .sign();
    assert_eq!(
        fleet
            .request(&client, 0, &token, &proof)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let replay = fleet
        .request(&client, 1, &token, &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert!(replay.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_dpop_proof"));
    // A fresh proof goes through the other server.
    let fresh = key
        .proof("GET", &format!("{ORIGIN}/api/me"))
        .access_token(&token)
        .sign();
    assert_eq!(
        fleet
            .request(&client, 1, &token, &fresh)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_identical_proofs_across_two_servers_give_one_success() {
    let Some(redis) = Shared::get() else { return };
    let fleet = Arc::new(Fleet::start(&|| redis.store()).await);
    let client = reqwest::Client::new();
    let key = ClientKey::generate(Algorithm::ES256);
    let token = fleet.issuer.token_for(key.jkt(), unix_now() + 3600);
    let proof = key
        .proof("GET", &format!("{ORIGIN}/api/me"))
        .access_token(&token)
        .sign();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let req = fleet.request(&client, i, &token, &proof);
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        63,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn redis_down_gives_503_and_never_200_then_recovers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let fleet = Fleet::start(&|| redis.store()).await;
    let client = reqwest::Client::new();
    let key = ClientKey::generate(Algorithm::ES256);
    let token = fleet.issuer.token_for(key.jkt(), unix_now() + 3600);
    let url = format!("{ORIGIN}/api/me");
    assert_eq!(
        fleet
            .request(
                &client,
                0,
                &token,
                &key.proof("GET", &url).access_token(&token).sign()
            )
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    redis.stop();
    for i in 0..4 {
        let resp = fleet
            .request(
                &client,
                i,
                &token,
                &key.proof("GET", &url).access_token(&token).sign(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503, "server {}", i % 2);
    }
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    for server in 0..2 {
        loop {
            let proof = key.proof("GET", &url).access_token(&token).sign();
            let status = fleet
                .request(&client, server, &token, &proof)
                .send()
                .await
                .unwrap()
                .status();
            if status == 200 {
                break;
            }
            assert_eq!(status, 503);
            assert!(Instant::now() < deadline, "server {server} did not recover");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The system clock, this far behind.
#[derive(Debug)]
struct Behind(Duration);

impl tower_dpop::clock::Clock for Behind {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now() - self.0
    }
}

/// Two instances share Redis; the second's clock is 800 ms behind, within a 1 s clock skew
/// allowance. A proof used on the first is still refused on the second after the first has
/// stopped accepting its `iat` (while the second still would): the entry lives the whole
/// replay window, not what was left of the proof's age on the first instance's clock.
#[tokio::test]
async fn instances_with_clocks_apart_refuse_a_replay_through_redis() {
    use tower_dpop::clock::{Clock as _, SystemClock};
    use tower_dpop::{Error, ErrorKind};

    let Some(redis) = Shared::get() else { return };
    let issuer = TestIssuer::new();
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 600);
    let build =
        |clock: Box<dyn Fn(tower_dpop::DpopLayerBuilder) -> tower_dpop::DpopLayerBuilder>| {
            clock(
                DpopLayer::builder()
                    .public_origin(ORIGIN)
                    .token_validator(issuer.validator())
                    .replay_store(redis.store())
                    .max_proof_age(Duration::from_secs(1))
                    .future_leeway(Duration::ZERO)
                    .clock_skew_allowance(Duration::from_secs(1)),
            )
            .build()
            .unwrap()
        };
    let first = build(Box::new(|b| b.clock(SystemClock)));
    let second = build(Box::new(|b| b.clock(Behind(Duration::from_millis(800)))));
    let send = |layer: &DpopLayer, proof: &str| {
        let headers = tower_dpop::testing::dpop_headers(&token, proof);
        let layer = layer.clone();
        async move {
            layer
                .authenticate(&tower_dpop::testing::request_parts(
                    &http::Method::GET,
                    "/api/me",
                    &headers,
                ))
                .await
                .map(|_| ())
        }
    };
    // Start early in a second, so the first use is early in its `iat`'s second.
    let ms = SystemClock.unix_millis() % 1000;
    tokio::time::sleep(Duration::from_millis(1000 - ms + 20)).await;
    let iat = SystemClock.unix_seconds();
    let proof = key
        .proof("GET", &format!("{ORIGIN}/api/me"))
        .access_token(&token)
        .iat(iat)
        .sign();
    assert_eq!(send(&first, &proof).await, Ok(()));
    // 1.7 s after `iat`: too old for the first instance, not yet for the second.
    let wait = (iat * 1000 + 1700).saturating_sub(SystemClock.unix_millis());
    tokio::time::sleep(Duration::from_millis(wait)).await;
    assert_eq!(
        send(&first, &proof).await,
        Err(Error::new(ErrorKind::ProofTooOld, "proof iat is too old"))
    );
    assert_eq!(
        send(&second, &proof).await,
        Err(Error::new(
            ErrorKind::ProofReplayed,
            "proof jti was already used"
        ))
    );
}

/// The store's connection is a Tokio task: built outside a runtime, the store is a
/// configuration error, not a panic.
#[test]
fn building_outside_a_tokio_runtime_is_a_config_error() {
    let built = RedisReplayStore::builder("redis://127.0.0.1:6379").build();
    let err = built.unwrap_err();
    assert!(err.to_string().contains("inside a Tokio runtime"), "{err}");
}

/// The `tower_dpop` events of this thread, as text. A current-thread test runtime runs the
/// tasks it spawns on this thread too, so their events land here.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURING: std::cell::RefCell<Option<Capture>> = const { std::cell::RefCell::new(None) };
}

/// Writes an event into this thread's [`Capture`], if there is one.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURING.with(|c| {
            if let Some(capture) = &*c.borrow() {
                capture.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stops capturing this thread's events.
struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.with(|c| c.borrow_mut().take());
    }
}

impl Capture {
    /// Captures this thread's events until the guard drops. One global subscriber for the
    /// whole test binary: with a per-test `set_default` one, a callsite first reached on
    /// another test's thread could be cached as disabled for every thread.
    fn install(&self) -> Capturing {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("tower_dpop=debug"))
                .with_ansi(false)
                .with_writer(|| ThreadWriter)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
        });
        CAPTURING.with(|c| *c.borrow_mut() = Some(self.clone()));
        Capturing
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    /// The log lines about the eviction policy, once there is one (the check runs in the
    /// background after Redis first answered).
    async fn policy_lines(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines: Vec<String> = self
                .text()
                .lines()
                .filter(|l| l.contains("maxmemory-policy"))
                .map(str::to_owned)
                .collect();
            if !lines.is_empty() {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "nothing logged about the maxmemory-policy: {}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How many times Redis ran `CONFIG GET`.
async fn config_get_calls(redis: &Redis) -> u64 {
    let info = match redis.command(&["INFO", "commandstats"]).await {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("{other:?}"),
    };
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_config|get:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// Every `maxmemory-policy` but `noeviction` may evict replay keys (each has a TTL), and an
/// evicted entry is a replay let through: the store asks Redis once, after its first answer,
/// and warns naming the policy and the fix. Requests go on either way.
#[tokio::test]
async fn an_evicting_maxmemory_policy_is_warned_about_once() {
    struct Case {
        policy: &'static str,
        warns: bool,
    }
    let cases = [
        Case {
            policy: "allkeys-lru",
            warns: true,
        },
        Case {
            policy: "allkeys-lfu",
            warns: true,
        },
        Case {
            policy: "allkeys-random",
            warns: true,
        },
        Case {
            policy: "volatile-lru",
            warns: true,
        },
        Case {
            policy: "volatile-lfu",
            warns: true,
        },
        Case {
            policy: "volatile-random",
            warns: true,
        },
        Case {
            policy: "volatile-ttl",
            warns: true,
        },
        Case {
            policy: "noeviction",
            warns: false,
        },
    ];
    // Our own Redis: the shared one's policy is not ours to change.
    let Some(redis) = Redis::start() else { return };
    let capture = Capture::default();
    let _guard = capture.install();
    for (n, case) in cases.iter().enumerate() {
        capture.clear();
        redis
            .command(&["CONFIG", "SET", "maxmemory-policy", case.policy])
            .await;
        let calls_before = config_get_calls(&redis).await;
        let store = redis.store();
        let n = u8::try_from(n).unwrap();
        assert_eq!(
            store
                .check_and_insert(key(n), Duration::from_secs(60))
                .await,
            Ok(Seen::First),
            "{}",
            case.policy
        );
        let lines = capture.policy_lines().await;
        let warnings: Vec<&String> = lines.iter().filter(|l| l.contains(" WARN ")).collect();
        if case.warns {
            assert_eq!(warnings.len(), 1, "{}: {lines:?}", case.policy);
            let warning = warnings[0];
            assert!(
                warning.contains("tower_dpop")
                    && warning.contains(&format!("policy={}", case.policy))
                    && warning.contains("set `maxmemory-policy noeviction`"),
                "{warning}"
            );
        } else {
            assert!(warnings.is_empty(), "{}: {lines:?}", case.policy);
            assert!(
                lines.iter().any(|l| l.contains(" DEBUG ")
                    && l.contains("tower_dpop")
                    && l.contains("noeviction")),
                "{lines:?}"
            );
        }
        // Once per store: later answers do not ask again (the commands of one connection run
        // in order, so a second question would be counted by the last answer).
        for _ in 0..3 {
            assert_eq!(
                store
                    .check_and_insert(key(n), Duration::from_secs(60))
                    .await,
                Ok(Seen::Replay)
            );
        }
        assert_eq!(
            config_get_calls(&redis).await - calls_before,
            1,
            "{}",
            case.policy
        );
        assert_eq!(capture.policy_lines().await, lines, "{}", case.policy);
    }
}

/// A question Redis did not answer (it went down) is asked again after its next answer.
#[tokio::test]
async fn the_policy_is_asked_again_when_redis_did_not_answer() {
    let Some(mut redis) = Redis::start_with(&["--maxmemory-policy", "allkeys-lru"]) else {
        return;
    };
    let capture = Capture::default();
    let _guard = capture.install();
    let store = redis.store();
    assert_eq!(
        store
            .check_and_insert(key(1), Duration::from_secs(60))
            .await,
        Ok(Seen::First)
    );
    // The check is spawned on this current-thread runtime and cannot run before the next
    // await: stopped now, Redis is gone when it asks (and the store's 300 ms timeout has
    // passed before it is back).
    redis.stop();
    tokio::time::sleep(Duration::from_millis(400)).await;
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store
        .check_and_insert(key(2), Duration::from_secs(60))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = capture.policy_lines().await;
    assert!(
        lines.len() == 1 && lines[0].contains(" WARN ") && lines[0].contains("allkeys-lru"),
        "{lines:?}"
    );
}

/// Managed Redis often refuses `CONFIG`: the store says so at debug level and goes on.
#[tokio::test]
async fn a_refused_config_command_is_logged_at_debug_and_requests_go_on() {
    let Some(redis) = Redis::start_with(&["--rename-command", "CONFIG", ""]) else {
        return;
    };
    let capture = Capture::default();
    let _guard = capture.install();
    let store = redis.store();
    assert_eq!(
        store
            .check_and_insert(key(1), Duration::from_secs(60))
            .await,
        Ok(Seen::First)
    );
    let lines = capture.policy_lines().await;
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" DEBUG ") && l.contains("tower_dpop")),
        "{lines:?}"
    );
    assert_eq!(
        store
            .check_and_insert(key(1), Duration::from_secs(60))
            .await,
        Ok(Seen::Replay)
    );
    assert_eq!(
        store
            .check_and_insert(key(2), Duration::from_secs(60))
            .await,
        Ok(Seen::First)
    );
    assert!(!capture.text().contains(" WARN "), "{}", capture.text());
}

/// The conformance suite every store runs (`testing::check_replay_store`), against Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conforms() {
    let Some(redis) = Shared::get() else { return };
    tower_dpop::testing::check_replay_store(redis.store()).await;
}
