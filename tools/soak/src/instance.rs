//! One instance of the resource server: its own runtime and thread, its own `DpopLayer`,
//! `RedisReplayStore`, JWT validator (fetching the JWKS) and caches, on its own 127.0.0.1
//! port, with a clock that can be jumped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::routing::{get, post};
use axum::Router;
use tower_dpop::clock::Clock;
use tower_dpop::nonce::{NoncePolicy, NonceSecret};
use tower_dpop::replay::RedisReplayStore;
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::{DpopAuth, DpopLayer};

/// Every instance's public origin: clients sign `htu`s for it whichever instance they reach.
pub const ORIGIN: &str = "https://api.soak.test";

/// The system clock moved by an offset that can be changed at run time (a clock jump).
#[derive(Debug, Clone, Default)]
pub struct JumpClock {
    offset_ms: Arc<AtomicI64>,
}

impl JumpClock {
    pub fn set_offset(&self, offset: Duration, ahead: bool) {
        let ms = i64::try_from(offset.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms
            .store(if ahead { ms } else { -ms }, Ordering::SeqCst);
    }
}

impl Clock for JumpClock {
    fn now(&self) -> SystemTime {
        let off = self.offset_ms.load(Ordering::SeqCst);
        let now = SystemTime::now();
        let by = Duration::from_millis(off.unsigned_abs());
        if off >= 0 {
            now + by
        } else {
            now - by
        }
    }
}

pub struct Settings {
    pub name: &'static str,
    pub redis_url: String,
    pub redis_timeout: Duration,
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    pub jwks_max_age: Duration,
    pub jwks_refresh_interval: Duration,
    pub jwks_timeout: Duration,
    pub nonce_secret: NonceSecret,
    pub nonce_lifetime: Duration,
}

pub struct Instance {
    pub addr: SocketAddr,
    pub layer: DpopLayer,
    pub clock: JumpClock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    pub fn start(settings: Settings) -> Result<Self, String> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let name = settings.name;
        let thread = std::thread::Builder::new()
            .name(format!("instance-{name}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match serve(settings).await {
                        Ok((addr, layer, clock, server)) => {
                            let _ = ready_tx.send(Ok((addr, layer, clock)));
                            tokio::select! {
                                _ = server => {}
                                _ = stop_rx => {}
                            }
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| e.to_string())?;
        let (addr, layer, clock) = ready_rx
            .recv()
            .map_err(|e| format!("instance {name} did not start: {e}"))??;
        Ok(Self {
            addr,
            layer,
            clock,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

type Served = (
    SocketAddr,
    DpopLayer,
    JumpClock,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
);

async fn serve(s: Settings) -> Result<Served, String> {
    let clock = JumpClock::default();
    let store = RedisReplayStore::builder(&s.redis_url)
        .key_prefix("soak:dpop:")
        .timeout(s.redis_timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let validator = JwtValidator::builder()
        .jwks_url(&s.jwks_url)
        .allow_insecure_http(true)
        .jwks_max_age(s.jwks_max_age)
        .jwks_refresh_interval(s.jwks_refresh_interval)
        .jwks_timeout(s.jwks_timeout)
        .clock(clock.clone())
        .issuer(&s.issuer)
        .audience(&s.audience)
        .build()
        .map_err(|e| e.to_string())?;
    let layer = DpopLayer::builder()
        .public_origin(ORIGIN)
        .token_validator(validator)
        .replay_store(store)
        .clock(clock.clone())
        .nonce_policy(NoncePolicy::Required)
        .nonce_secret(s.nonce_secret)
        .nonce_lifetime(s.nonce_lifetime)
        .build()
        .map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/api/me", get(me))
        .route("/api/orders", post(order))
        .layer(layer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = Box::pin(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, layer, clock, server))
}

async fn me(auth: DpopAuth) -> String {
    auth.claims["sub"].as_str().unwrap_or("").to_owned()
}

async fn order(auth: DpopAuth) -> String {
    format!("order for {}", auth.claims["sub"].as_str().unwrap_or(""))
}
