//! Soak and chaos run (scripts/soak.sh): two instances of the layer sharing one Redis behind
//! one public origin, under a workload of many clients, for N seconds, while Redis is killed
//! and restarted, the authorization server's signing key rotates, the nonce secret rotates on
//! both instances, the JWKS endpoint fails and hangs, and one instance's clock jumps.
//!
//! ```text
//! soak [--seconds N] [--clients N] [--workers N] [--redis-persistence aof|none]
//!      [--max-rss-growth-mib N]
//! ```
//!
//! Prints one summary line and exits non-zero when an invariant breaks:
//! - no proof accepted twice (each is replayed at the other instance, some again later);
//! - no 2xx for a request that ran entirely while Redis could not answer (sent after the
//!   killed process was reaped, answered before the new one was spawned);
//! - every instance serves again within 2 s of Redis answering `PING`;
//! - no legitimate request refused but for a Redis outage (no refusal because of a key or
//!   secret rotation, a JWKS outage or a clock jump);
//! - RSS growth after warm-up within the bound; no panic;
//! - no WARN or ERROR log line that an injected fault under way does not explain.

mod chaos;
mod faults;
mod instance;
mod issuer;
mod logs;
mod redis;
mod stats;
mod workload;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faults::{Scale, SharedTimeline};
use instance::{Instance, Settings};
use issuer::AuthServer;
use redis::{Persistence, RedisChild};
use stats::Stats;
use tower_dpop::nonce::NonceSecret;

struct Options {
    seconds: u64,
    clients: usize,
    workers: usize,
    persistence: Persistence,
    max_rss_growth_mib: f64,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut o = Self {
            seconds: 600,
            clients: 1000,
            workers: 8,
            persistence: Persistence::Aof,
            max_rss_growth_mib: 64.0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
            match a.as_str() {
                "--seconds" => o.seconds = num(&value()?)?,
                "--clients" => o.clients = num(&value()?)?,
                "--workers" => o.workers = num(&value()?)?,
                "--max-rss-growth-mib" => o.max_rss_growth_mib = num(&value()?)?,
                "--redis-persistence" => {
                    o.persistence = match value()?.as_str() {
                        "aof" => Persistence::Aof,
                        "none" => Persistence::None,
                        other => return Err(format!("--redis-persistence aof|none, not {other}")),
                    }
                }
                "-h" | "--help" => {
                    return Err("usage: soak [--seconds N] [--clients N] [--workers N] \
                                [--redis-persistence aof|none] [--max-rss-growth-mib N]"
                        .into())
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if o.seconds < 30 {
            return Err("--seconds must be at least 30 (the faults need room)".into());
        }
        if o.clients == 0 || o.workers == 0 {
            return Err("--clients and --workers must be at least 1".into());
        }
        Ok(o)
    }
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn main() -> ExitCode {
    let opts = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

static PANICS: AtomicU64 = AtomicU64::new(0);

fn run(opts: &Options) -> Result<bool, String> {
    let scale = Scale::for_seconds(opts.seconds);
    let timeline = SharedTimeline::default();
    let redis_timeout = Duration::from_millis(250);
    let capture = logs::Capture::install(
        timeline.clone(),
        redis_timeout + Duration::from_millis(250),
        scale.jwks_timeout + Duration::from_secs(1),
    )?;
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let mut redis = RedisChild::start(opts.persistence)?;
    let as_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("auth-server")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let auth = AuthServer::start(as_runtime.handle())?;
    let secret = NonceSecret::random().map_err(|e| e.to_string())?;
    let settings = |name| Settings {
        name,
        redis_url: redis.url(),
        redis_timeout,
        jwks_url: auth.jwks_url(),
        issuer: issuer::ISSUER.to_owned(),
        audience: auth.audience().to_owned(),
        jwks_max_age: scale.jwks_max_age,
        jwks_refresh_interval: scale.jwks_refresh_interval,
        jwks_timeout: scale.jwks_timeout,
        nonce_secret: secret.clone(),
        nonce_lifetime: scale.nonce_lifetime,
    };
    let a = Instance::start(settings("a"))?;
    let b = Instance::start(settings("b"))?;
    eprintln!(
        "soak: redis {} ({:?}), instances a={} b={}, JWKS {}, {} s, {} clients, {} workers",
        redis.url(),
        opts.persistence,
        a.addr,
        b.addr,
        auth.jwks_url(),
        opts.seconds,
        opts.clients,
        opts.workers
    );
    let t_keys = Instant::now();
    let clients = workload::Clients::generate(opts.clients, &auth, scale.token_lifetime);
    eprintln!(
        "soak: {} client keys in {:.1?}",
        opts.clients,
        t_keys.elapsed()
    );

    let stats = Arc::new(Stats::new());
    let stop = Arc::new(AtomicBool::new(false));
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("clients")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let work = {
        let _guard = client_runtime.enter();
        Arc::new(workload::Workload::new(
            clients,
            auth.clone(),
            [a.addr, b.addr],
            stats.clone(),
            timeline.clone(),
            &scale,
            stop.clone(),
        )?)
    };
    let start = Instant::now();
    let mut workers = Vec::new();
    for i in 0..opts.workers {
        workers.push(client_runtime.spawn(work.clone().worker(0x9E37_79B9_7F4A_7C15 ^ i as u64)));
    }

    // The faults, on this thread; RSS sampled between them.
    let warm = Duration::from_secs((opts.seconds / 10).max(5));
    let mut rss_base: Option<(f64, u64)> = None;
    // At half time too: a leak grows in the second half as in the first, caches filling up
    // (the token cache holds a token for up to 5 min) do not.
    let mut rss_half: Option<f64> = None;
    let mut rss_max = 0.0f64;
    let mut schedule = scale.schedule().into_iter().peekable();
    let deadline = start + Duration::from_secs(opts.seconds);
    let mut chaos = chaos::Chaos::new(timeline.clone());
    let mut progress = start;
    while Instant::now() < deadline {
        let elapsed = start.elapsed();
        if rss_base.is_none() && elapsed >= warm {
            rss_base = Some((rss_mib(), Stats::get(&stats.requests)));
        }
        if rss_base.is_some() {
            rss_max = rss_max.max(rss_mib());
        }
        if rss_half.is_none() && elapsed.as_secs() >= opts.seconds / 2 {
            rss_half = Some(rss_mib());
        }
        if progress.elapsed() >= Duration::from_secs(30) {
            progress = Instant::now();
            eprintln!(
                "soak: {:>4} s requests={} ok={} 503={} refused={} accepted_replays={} rss={:.1} MiB",
                elapsed.as_secs(),
                Stats::get(&stats.requests),
                Stats::get(&stats.originals_ok),
                Stats::get(&stats.status_503),
                Stats::get(&stats.refused),
                Stats::get(&stats.accepted_replays),
                rss_mib()
            );
        }
        match schedule.peek() {
            Some((at, _)) if *at <= elapsed => {
                if let Some((at, action)) = schedule.next() {
                    eprintln!("soak: {:>4} s {action:?}", at.as_secs());
                    chaos.inject(&action, &mut redis, &auth, [&a, &b])?;
                }
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    stop.store(true, Ordering::SeqCst);
    client_runtime.block_on(async {
        for w in workers {
            let _ = w.await;
        }
    });
    let elapsed = start.elapsed();
    let rss_end = rss_mib();
    rss_max = rss_max.max(rss_end);

    let t = faults::lock(&timeline);
    let recovery = t.max_recovery();
    let outages = t.outages.len();
    let jwks_faults = t.jwks.len();
    let (key_rotations, nonce_rotations, clock_jumps) =
        (t.key_rotations, t.nonce_rotations, t.clock_jumps);
    drop(t);
    let logs = capture.classified();
    let panics = PANICS.load(Ordering::SeqCst);
    let requests = Stats::get(&stats.requests);
    let (rss_base_mib, base_requests) = rss_base.unwrap_or((rss_end, 0));
    let growth = (rss_end - rss_base_mib).max(0.0);
    let measured_requests = requests.saturating_sub(base_requests).max(1);
    let growth_per_m = growth / (measured_requests as f64 / 1e6);
    let accepted_replays = Stats::get(&stats.accepted_replays);
    let ok_while_down = Stats::get(&stats.ok_while_down);
    let refused = Stats::get(&stats.refused);
    let p99 = stats.quantile_ms(0.99);

    let mut broken = Vec::new();
    if accepted_replays > 0 {
        broken.push(format!("{accepted_replays} replayed proofs accepted"));
    }
    if ok_while_down > 0 {
        broken.push(format!("{ok_while_down} 2xx while Redis was down"));
    }
    let recovery_ms = match &recovery {
        Ok(d) => {
            if *d > faults::RECOVERY_BOUND {
                broken.push(format!("recovery took {d:?}"));
            }
            d.as_millis().to_string()
        }
        Err(e) => {
            broken.push(e.clone());
            "none".to_owned()
        }
    };
    if refused > 0 {
        broken.push(format!("{refused} legitimate requests refused"));
    }
    if growth > opts.max_rss_growth_mib {
        broken.push(format!(
            "RSS grew {growth:.1} MiB after warm-up (bound {} MiB)",
            opts.max_rss_growth_mib
        ));
    }
    if panics > 0 {
        broken.push(format!("{panics} panics"));
    }
    if logs.unexplained > 0 {
        broken.push(format!(
            "{} unexplained WARN/ERROR log lines",
            logs.unexplained
        ));
    }
    // The faults must have happened, or the run proves nothing.
    if outages > 0 && Stats::get(&stats.expected_unavailable) == 0 {
        broken.push("no request saw a Redis outage".into());
    }
    if jwks_faults > 0 && logs.jwks_fault == 0 {
        broken.push("no JWKS fetch failure was logged during the JWKS fault".into());
    }
    if Stats::get(&stats.delayed_replays) == 0 {
        broken.push("no delayed replay was sent".into());
    }
    let errors = refused + logs.unexplained + panics;

    eprintln!(
        "soak: originals={} ok={} replays={} delayed_replays={} first_use_on_replay={} \
         nonce_challenges={} expected_503={} redis_restarts={outages} key_rotations={key_rotations} \
         nonce_rotations={nonce_rotations} jwks_faults={jwks_faults} clock_jumps={clock_jumps} \
         logs_redis={} logs_jwks={} rss_base_mib={rss_base_mib:.1} rss_half_mib={:.1} rss_max_mib={rss_max:.1} \
         rss_end_mib={rss_end:.1} p50_ms={:.2} p999_ms={:.2} rps={:.0} jwks_fetches={}",
        Stats::get(&stats.originals),
        Stats::get(&stats.originals_ok),
        Stats::get(&stats.replays),
        Stats::get(&stats.delayed_replays),
        Stats::get(&stats.first_use_on_replay),
        Stats::get(&stats.nonce_challenges),
        Stats::get(&stats.expected_unavailable),
        logs.redis_outage,
        logs.jwks_fault,
        rss_half.unwrap_or(rss_end),
        stats.quantile_ms(0.5),
        stats.quantile_ms(0.999),
        requests as f64 / elapsed.as_secs_f64(),
        auth.fetches.load(Ordering::Relaxed),
    );
    for s in stats.samples() {
        eprintln!("soak: refused: {s}");
    }
    for s in &logs.samples {
        eprintln!("soak: unexplained log: {s}");
    }
    println!(
        "soak: seconds={} requests={requests} accepted_replays={accepted_replays} \
         2xx_while_redis_down={ok_while_down} max_recovery_ms={recovery_ms} \
         rss_growth_mib={growth:.1} rss_growth_mib_per_million={growth_per_m:.1} \
         p99_ms={p99:.2} errors={errors}",
        elapsed.as_secs()
    );
    for b in &broken {
        eprintln!("soak: INVARIANT BROKEN: {b}");
    }
    drop(a);
    drop(b);
    drop(redis);
    as_runtime.shutdown_background();
    client_runtime.shutdown_background();
    Ok(broken.is_empty())
}

/// Resident set size of this process (both instances, the clients and the stand-in
/// authorization server), in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
