//! The legitimate workload: many client keys (ES256, EdDSA, some PS256), each with its own
//! bound token renewed on a schedule, chosen by a Zipf distribution; nonces as a client keeps
//! them. Every proof is sent to one instance and then replayed against the other; some
//! accepted requests are replayed again later, to either instance, while their proof is still
//! within its age (a delayed replay, across Redis restarts too).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tower_dpop::testing::{unix_now, ClientKey};
use tower_dpop::Algorithm;

use crate::faults::{self, SharedTimeline};
use crate::instance::ORIGIN;
use crate::issuer::AuthServer;
use crate::stats::{Kind, Stats};

struct ClientState {
    key: ClientKey,
    token: String,
    token_at: Instant,
    /// The last `DPoP-Nonce` received, and when.
    nonce: Option<(String, Instant)>,
}

pub struct Clients {
    clients: Vec<Mutex<ClientState>>,
    /// Cumulative Zipf weights.
    cdf: Vec<f64>,
}

impl Clients {
    pub fn generate(n: usize, issuer: &AuthServer, token_lifetime: Duration) -> Self {
        let mut clients = Vec::with_capacity(n);
        for i in 0..n {
            // 5 % PS256 (slow to make and to sign), the rest ES256 and EdDSA alike.
            let alg = match i % 20 {
                0 => Algorithm::PS256,
                x if x % 2 == 0 => Algorithm::ES256,
                _ => Algorithm::EdDSA,
            };
            let key = ClientKey::generate(alg);
            let token = issuer
                .signing()
                .token_for(key.jkt(), unix_now() + token_lifetime.as_secs());
            clients.push(Mutex::new(ClientState {
                key,
                token,
                token_at: Instant::now(),
                nonce: None,
            }));
        }
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for rank in 1..=n {
            sum += 1.0 / rank as f64;
            cdf.push(sum);
        }
        Self { clients, cdf }
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        let total = self.cdf.last().copied().unwrap_or(1.0);
        let x = rng.unit() * total;
        self.cdf
            .partition_point(|c| *c < x)
            .min(self.clients.len() - 1)
    }
}

/// xorshift64*: enough for spreading requests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An accepted request kept for a delayed replay.
struct Captured {
    method: reqwest::Method,
    path: &'static str,
    token: String,
    proof: String,
    at: Instant,
}

pub struct Workload {
    pub clients: Clients,
    pub issuer: Arc<AuthServer>,
    pub http: reqwest::Client,
    pub addrs: [std::net::SocketAddr; 2],
    pub stats: Arc<Stats>,
    pub timeline: SharedTimeline,
    pub token_renew: Duration,
    pub token_lifetime: Duration,
    pub nonce_lifetime: Duration,
    pub stop: Arc<AtomicBool>,
    pool: Mutex<VecDeque<Captured>>,
}

/// Delayed replays kept at once.
const POOL: usize = 2048;
/// A delayed replay is sent while the proof is younger than this (the layer accepts 60 s).
const REPLAY_WITHIN: Duration = Duration::from_secs(50);
/// A nonce refused while younger than its lifetime minus this is a refusal the client did not
/// earn (the margin covers the clock jump and a nonce handed out late in its life).
const NONCE_MARGIN: Duration = Duration::from_secs(10);

pub struct Sent {
    pub status: u16,
    pub nonce: Option<String>,
    pub use_dpop_nonce: bool,
    pub detail: String,
}

impl Workload {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        clients: Clients,
        issuer: Arc<AuthServer>,
        addrs: [std::net::SocketAddr; 2],
        stats: Arc<Stats>,
        timeline: SharedTimeline,
        scale: &faults::Scale,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            clients,
            issuer,
            http,
            addrs,
            stats,
            timeline,
            token_renew: scale.token_renew,
            token_lifetime: scale.token_lifetime,
            nonce_lifetime: scale.nonce_lifetime,
            stop,
            pool: Mutex::new(VecDeque::with_capacity(POOL)),
        })
    }

    async fn send(
        &self,
        instance: usize,
        method: &reqwest::Method,
        path: &str,
        token: &str,
        proof: &str,
    ) -> Sent {
        let addr = self.addrs[instance];
        let req = self
            .http
            .request(method.clone(), format!("http://{addr}{path}"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof);
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let nonce = resp
                    .headers()
                    .get("dpop-nonce")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let _ = resp.bytes().await;
                Sent {
                    status,
                    nonce,
                    use_dpop_nonce: challenge.contains("use_dpop_nonce"),
                    detail: challenge,
                }
            }
            Err(e) => Sent {
                status: 0,
                nonce: None,
                use_dpop_nonce: false,
                detail: e.to_string(),
            },
        }
    }

    /// One worker: requests until told to stop.
    pub async fn worker(self: Arc<Self>, seed: u64) {
        let mut rng = Rng::new(seed);
        let mut n: u64 = 0;
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            if n % 8 == 0 {
                self.delayed_replay(&mut rng).await;
            }
            self.one_request(&mut rng).await;
        }
    }

    async fn one_request(&self, rng: &mut Rng) {
        let c = self.clients.pick(rng);
        let (method, path) = if rng.below(10) == 0 {
            (reqwest::Method::POST, "/api/orders")
        } else {
            (reqwest::Method::GET, "/api/me")
        };
        let instance = usize::from(rng.below(2) == 1);
        // At most: a first contact without a nonce, and a nonce that had expired.
        for _attempt in 0..3 {
            let Some(state) = self.clients.clients.get(c) else {
                return;
            };
            let (token, proof, nonce_age) = {
                let mut s = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if s.token_at.elapsed() >= self.token_renew {
                    s.token = self
                        .issuer
                        .signing()
                        .token_for(s.key.jkt(), unix_now() + self.token_lifetime.as_secs());
                    s.token_at = Instant::now();
                }
                let url = format!("{ORIGIN}{path}");
                let mut p = s.key.proof(method.as_str(), &url).access_token(&s.token);
                if let Some((nonce, _)) = &s.nonce {
                    p = p.nonce(nonce);
                }
                let proof = p.sign();
                (
                    s.token.clone(),
                    proof,
                    s.nonce.as_ref().map(|(_, at)| at.elapsed()),
                )
            };
            let sent_at = Instant::now();
            let got = self.send(instance, &method, path, &token, &proof).await;
            let done = Instant::now();
            if let Some(nonce) = &got.nonce {
                let mut s = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                s.nonce = Some((nonce.clone(), Instant::now()));
            }
            let ok = (200..300).contains(&got.status);
            self.stats.latency(done - sent_at);
            if got.status == 401 && got.use_dpop_nonce {
                let earned = match nonce_age {
                    None => true,
                    Some(age) => age + NONCE_MARGIN >= self.nonce_lifetime,
                };
                if earned {
                    self.stats.nonce_challenge();
                } else {
                    self.stats.refused(
                        instance,
                        got.status,
                        &format!("nonce refused: {}", got.detail),
                    );
                }
                self.record(Kind::Original, instance, sent_at, done, &got);
                continue;
            }
            self.record(Kind::Original, instance, sent_at, done, &got);
            // The same proof at the other instance: a replay, whatever the first answer was.
            let other = 1 - instance;
            let r_sent = Instant::now();
            let replay = self.send(other, &method, path, &token, &proof).await;
            let r_done = Instant::now();
            self.stats
                .replay(Kind::Replay, ok, (200..300).contains(&replay.status));
            self.record(Kind::Replay, other, r_sent, r_done, &replay);
            if ok && rng.below(4) == 0 {
                let mut pool = self
                    .pool
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if pool.len() >= POOL {
                    pool.pop_front();
                }
                pool.push_back(Captured {
                    method: method.clone(),
                    path,
                    token,
                    proof,
                    at: done,
                });
            }
            return;
        }
    }

    /// Replays a request accepted a while ago, at either instance.
    async fn delayed_replay(&self, rng: &mut Rng) {
        let captured = {
            let mut pool = self
                .pool
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while pool.front().is_some_and(|c| c.at.elapsed() > REPLAY_WITHIN) {
                pool.pop_front();
            }
            if pool.is_empty() {
                return;
            }
            let i = rng.below(pool.len() as u64) as usize;
            match pool.get(i) {
                Some(c) if c.at.elapsed() >= Duration::from_millis(500) => pool.remove(i),
                _ => None,
            }
        };
        let Some(c) = captured else {
            return;
        };
        let instance = usize::from(rng.below(2) == 1);
        let sent = Instant::now();
        let got = self
            .send(instance, &c.method, c.path, &c.token, &c.proof)
            .await;
        let done = Instant::now();
        self.stats
            .replay(Kind::DelayedReplay, true, (200..300).contains(&got.status));
        self.record(Kind::DelayedReplay, instance, sent, done, &got);
    }

    /// Judges a response against the fault windows.
    fn record(&self, kind: Kind, instance: usize, sent: Instant, done: Instant, got: &Sent) {
        let ok = (200..300).contains(&got.status);
        let mut t = faults::lock(&self.timeline);
        if ok && t.while_down(sent, done) {
            self.stats.ok_while_down();
        }
        t.note_for_recovery(instance, sent, got.status);
        let explained = t.overlaps_outage(sent, done, Duration::ZERO);
        drop(t);
        self.stats.response(kind, got.status);
        if kind != Kind::Original || ok || (got.status == 401 && got.use_dpop_nonce) {
            return;
        }
        if (got.status == 503 || got.status == 0) && explained {
            self.stats.expected_unavailable();
        } else {
            self.stats.refused(instance, got.status, &got.detail);
        }
    }
}
