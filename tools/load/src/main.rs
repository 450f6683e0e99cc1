//! End-to-end load benchmark of `examples/resource_server.rs` over HTTP/1.1 keep-alive.
//!
//! ```text
//! scripts/load.sh [options]          # builds, then runs this pinned to core 1, server on core 0
//! cargo run --release -p tower-dpop-load -- [options]   # from the repository root
//! ```
//!
//! Options:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `--connections N` | concurrent keep-alive connections (one task each, sequential requests) | 64 |
//! | `--duration S` | seconds per measured run | 10 |
//! | `--proofs N` | DPoP proofs to mint before the clock starts (warm-up included) | 200000 |
//! | `--rate R` | expected DPoP req/s; without `--proofs`, mints `R × S × 1.1` (+ warm-up) | unset |
//! | `--warmup N` | uncounted requests before each measured run | 500 |
//! | `--server-core K` | core the server (and the raw verify loop) is pinned to | 0 |
//! | `--server-bin PATH` | the `resource_server` binary | `target/release/examples/resource_server` |
//! | `--target T` | `dpop` (`GET /api/me`), `health` (`GET /health`) or `both` | both |
//! | `--raw-seconds S` | seconds of the raw P-256 verify loop (0: skip it) | 3 |
//!
//! What it does:
//!
//! 1. serves the JWKS of a [`TestIssuer`] on `127.0.0.1:0` (axum, on its own small runtime);
//! 2. starts the server with `taskset -c <server core>`, reads its port from the
//!    `listening on` line, and kills it at the end (also on error);
//! 3. mints one access token and N unique ES256 proofs for `GET /api/me` before the clock
//!    starts, single-threaded (proofs live 60 s: the mint time plus the run must fit);
//! 4. warms up, then drives the server with C connections for S seconds (or until the
//!    proofs run out) with hyper's low-level HTTP/1.1 client on a current-thread runtime;
//! 5. reports req/s, latency percentiles (send → full body read), non-2xx responses and the
//!    CPU time the server and this generator used (from `/proc/<pid>/task/*/schedstat`);
//! 6. repeats against `GET /health` (the HTTP stack alone);
//! 7. runs `load raw-verify` pinned to the server core: OpenSSL P-256 ECDSA verifies in a
//!    loop with a ready key, the ceiling for one-verify-per-request DPoP throughput.
//!
//! Each run ends with a machine-readable line starting with `load: `.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::Algorithm;

const USAGE: &str = "usage: load [--connections N] [--duration S] [--proofs N] [--rate R] \
[--warmup N] [--server-core K] [--server-bin PATH] [--target dpop|health|both] [--raw-seconds S]
       load raw-verify [--seconds S]";

/// Proofs are rejected once their `iat` is more than 60 s old; `iat` is whole seconds, so a
/// proof may look up to 1 s older than it is. Stop using the batch at this age.
const PROOF_USABLE_FOR: Duration = Duration::from_secs(57);
/// Time kept aside between the end of minting and the start of the measured run (warm-up).
const WARMUP_ALLOWANCE: Duration = Duration::from_secs(3);
/// How long the server may take to print its `listening on` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetSel {
    Dpop,
    Health,
    Both,
}

#[derive(Debug, Clone)]
struct Options {
    connections: usize,
    duration: Duration,
    proofs: Option<usize>,
    rate: Option<f64>,
    warmup: usize,
    server_core: usize,
    server_bin: PathBuf,
    target: TargetSel,
    raw_seconds: f64,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Self {
            connections: 64,
            duration: Duration::from_secs(10),
            proofs: None,
            rate: None,
            warmup: 500,
            server_core: 0,
            server_bin: PathBuf::from("target/release/examples/resource_server"),
            target: TargetSel::Both,
            raw_seconds: 3.0,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "-h" || flag == "--help" {
                return Err("help requested".into());
            }
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .as_str();
            let bad = |e: &dyn std::fmt::Display| format!("{flag} {value:?}: {e}");
            match flag.as_str() {
                "--connections" => {
                    o.connections = value.parse().map_err(|e| bad(&e))?;
                    if o.connections == 0 {
                        return Err("--connections must be at least 1".into());
                    }
                }
                "--duration" => {
                    let s: f64 = value.parse().map_err(|e| bad(&e))?;
                    if !(s > 0.0 && s < 3600.0) {
                        return Err("--duration must be a positive number of seconds".into());
                    }
                    o.duration = Duration::from_secs_f64(s);
                }
                "--proofs" => o.proofs = Some(value.parse().map_err(|e| bad(&e))?),
                "--rate" => {
                    let r: f64 = value.parse().map_err(|e| bad(&e))?;
                    if !(r > 0.0 && r.is_finite()) {
                        return Err("--rate must be positive".into());
                    }
                    o.rate = Some(r);
                }
                "--warmup" => o.warmup = value.parse().map_err(|e| bad(&e))?,
                "--server-core" => o.server_core = value.parse().map_err(|e| bad(&e))?,
                "--server-bin" => o.server_bin = PathBuf::from(value),
                "--target" => {
                    o.target = match value {
                        "dpop" => TargetSel::Dpop,
                        "health" => TargetSel::Health,
                        "both" => TargetSel::Both,
                        _ => return Err(bad(&"expected dpop, health or both")),
                    }
                }
                "--raw-seconds" => {
                    o.raw_seconds = value.parse().map_err(|e| bad(&e))?;
                    if !(o.raw_seconds >= 0.0 && o.raw_seconds < 600.0) {
                        return Err("--raw-seconds must be between 0 and 600".into());
                    }
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(o)
    }

    /// Proofs to mint, warm-up included.
    fn proof_count(&self) -> usize {
        match (self.proofs, self.rate) {
            (Some(n), _) => n,
            (None, Some(rate)) => {
                // Truncation is fine: this is an estimate with 10 % headroom.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let n = (rate * self.duration.as_secs_f64() * 1.1).ceil() as usize;
                n + self.warmup
            }
            (None, None) => 200_000,
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("raw-verify") {
        return raw_verify_main(args.get(1..).unwrap_or_default());
    }
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: error: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Orchestration
// ---------------------------------------------------------------------------------------------

fn run(opts: &Options) -> Result<(), BoxError> {
    let client_cores = allowed_cpus("self").unwrap_or_else(|| "?".into());
    println!(
        "load: generator pid {} on cores {client_cores}, server core {}, {} connections, \
         {:.1} s per run, {} core(s) available to the generator",
        std::process::id(),
        opts.server_core,
        opts.connections,
        opts.duration.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
    );
    if cpu_list_contains(&client_cores, opts.server_core) {
        println!(
            "load: WARNING: the generator may run on the server core {}; pin it elsewhere \
             (scripts/load.sh runs it with `taskset -c 1`)",
            opts.server_core
        );
    }
    if !opts.server_bin.is_file() {
        return Err(format!(
            "server binary {} not found; build it with \
             `cargo build --release --example resource_server` or pass --server-bin",
            opts.server_bin.display()
        )
        .into());
    }

    let issuer = TestIssuer::new();
    let jwks = JwksServer::start(issuer.jwks_json())?;
    let server = ServerProcess::start(opts, &jwks.url(), issuer.issuer())?;
    let addr = server.addr;
    println!(
        "load: server pid {} listening on http://{addr} (cores {}), JWKS at {}",
        server.pid(),
        allowed_cpus(&server.pid().to_string()).unwrap_or_else(|| "?".into()),
        jwks.url()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build the load generator's tokio runtime");

    let mut results = Vec::new();
    if matches!(opts.target, TargetSel::Dpop | TargetSel::Both) {
        let target = Arc::new(dpop_target(opts, &issuer, addr)?);
        results.push(rt.block_on(measure(opts, addr, target, server.pid()))?);
    }
    if matches!(opts.target, TargetSel::Health | TargetSel::Both) {
        let target = Arc::new(Target::plain("health", "/health", addr));
        results.push(rt.block_on(measure(opts, addr, target, server.pid()))?);
    }
    drop(rt);
    server.stop();
    jwks.stop();

    let raw = if opts.raw_seconds > 0.0 {
        Some(raw_verify_child(opts)?)
    } else {
        None
    };

    println!();
    println!("== summary ==");
    for r in &results {
        r.print_summary_line(opts, &client_cores);
    }
    if let Some(raw) = raw {
        println!(
            "load: target=raw-verify verifies_per_s={:.0} verifies_per_cpu_s={} core={} \
             alg=ES256(openssl P-256)",
            raw.per_s,
            raw.per_cpu_s
                .map_or_else(|| "?".into(), |r| format!("{r:.0}")),
            opts.server_core
        );
        if let Some(d) = results.iter().find(|r| r.name == "dpop") {
            // The CPU-time ratio discounts whatever else ran on the server core.
            let cpu_ratio = d
                .rps_per_server_cpu()
                .zip(raw.per_cpu_s)
                .map_or_else(|| "?".into(), |(a, b)| format!("{:.3}", a / b));
            println!(
                "load: target=ratio dpop_rps={:.0} raw_verifies_per_s={:.0} ratio={:.3} \
                 cpu_ratio={cpu_ratio}",
                d.rps(),
                raw.per_s,
                d.rps() / raw.per_s
            );
        }
    }
    Ok(())
}

/// The DPoP target: mints the token and the proofs, checking they will live long enough.
fn dpop_target(opts: &Options, issuer: &TestIssuer, addr: SocketAddr) -> Result<Target, BoxError> {
    let url = format!("http://{addr}/api/me");
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 3600);
    let wanted = opts.proof_count();
    if wanted <= opts.warmup {
        return Err(format!(
            "--proofs {wanted} leaves nothing after the {} warm-up requests",
            opts.warmup
        )
        .into());
    }
    // Minting, warm-up and the run must all fit in the proofs' lifetime.
    let mint_budget = PROOF_USABLE_FOR
        .checked_sub(opts.duration + WARMUP_ALLOWANCE)
        .filter(|b| *b >= Duration::from_secs(1))
        .ok_or_else(|| {
            format!(
                "--duration {:.1} s does not fit in the {} s a batch of proofs stays usable \
                 (minus {} s for minting and warm-up); use --duration {} or less",
                opts.duration.as_secs_f64(),
                PROOF_USABLE_FOR.as_secs(),
                WARMUP_ALLOWANCE.as_secs() + 1,
                PROOF_USABLE_FOR.as_secs() - WARMUP_ALLOWANCE.as_secs() - 1
            )
        })?;

    println!(
        "load: minting {wanted} ES256 proofs for GET {url} (single thread, budget {:.1} s)",
        mint_budget.as_secs_f64()
    );
    let first_minted = Instant::now();
    let mut proofs = Vec::with_capacity(wanted);
    let mut capped = false;
    for i in 0..wanted {
        let proof = key.proof("GET", &url).access_token(&token).sign();
        proofs.push(HeaderValue::try_from(proof).expect("a signed proof is a valid header value"));
        // After a sample, check the projected mint time, then keep checking the real one.
        if i == 999 {
            let per = first_minted.elapsed().as_secs_f64() / 1000.0;
            #[allow(clippy::cast_precision_loss)]
            let projected = per * wanted as f64;
            if projected > mint_budget.as_secs_f64() {
                println!(
                    "load: WARNING: minting {wanted} proofs would take ~{projected:.1} s \
                     ({:.0}/s), more than the {:.1} s budget; minting fewer",
                    1.0 / per,
                    mint_budget.as_secs_f64()
                );
            }
        }
        if i % 256 == 255 && first_minted.elapsed() >= mint_budget {
            capped = true;
            break;
        }
    }
    let mint_secs = first_minted.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = proofs.len() as f64 / mint_secs;
    println!(
        "load: minted {} proofs in {mint_secs:.2} s ({rate:.0}/s){}; proof size {} bytes, \
         token size {} bytes",
        proofs.len(),
        if capped {
            " [capped by the time budget]"
        } else {
            ""
        },
        proofs.first().map_or(0, HeaderValue::len),
        token.len()
    );
    if proofs.len() <= opts.warmup {
        return Err("too few proofs minted within the time budget".into());
    }
    Ok(Target {
        name: "dpop",
        method: Method::GET,
        uri: Uri::from_static("/api/me"),
        host: host_header(addr),
        auth: Some(
            HeaderValue::try_from(format!("DPoP {token}"))
                .expect("a token is a valid header value"),
        ),
        proofs: Some(Arc::new(proofs)),
        proofs_valid_until: Some(first_minted + PROOF_USABLE_FOR),
    })
}

fn host_header(addr: SocketAddr) -> HeaderValue {
    HeaderValue::try_from(addr.to_string()).expect("a socket address is a valid Host header")
}

// ---------------------------------------------------------------------------------------------
// The JWKS server
// ---------------------------------------------------------------------------------------------

/// An axum server publishing the JWKS at `/jwks`, on its own thread and current-thread runtime.
struct JwksServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JwksServer {
    fn start(jwks: String) -> Result<Self, BoxError> {
        let (addr_tx, addr_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("jwks".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = addr_tx.send(Err(format!("JWKS runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = addr_tx.send(Err(format!("JWKS bind: {e}")));
                            return;
                        }
                    };
                    let _ = addr_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                    let app = Router::new().route(
                        "/jwks",
                        get(move || {
                            let body = jwks.clone();
                            async move { ([(CONTENT_TYPE, "application/json")], body) }
                        }),
                    );
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop_rx.await;
                        })
                        .await;
                });
            })?;
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e| format!("the JWKS server did not start: {e}"))??;
        Ok(Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// The server child process
// ---------------------------------------------------------------------------------------------

/// The resource server, pinned with `taskset`; killed (by PID) when dropped.
struct ServerProcess {
    child: Option<Child>,
    addr: SocketAddr,
    pid: u32,
}

impl ServerProcess {
    fn start(opts: &Options, jwks_url: &str, issuer: &str) -> Result<Self, BoxError> {
        let mut cmd = Command::new("taskset");
        cmd.arg("-c")
            .arg(opts.server_core.to_string())
            .arg(&opts.server_bin)
            .env("DPOP_LISTEN", "127.0.0.1:0")
            .env("DPOP_JWKS_URL", jwks_url)
            .env("DPOP_ISSUER", issuer)
            .env_remove("DPOP_PUBLIC_URL")
            .env(
                "DPOP_AUDIENCE",
                tower_dpop::testing::TestIssuer::new().audience(),
            )
            .env_remove("DPOP_NONCE")
            .env_remove("DPOP_REDIS_URL")
            // One client key sends the whole run: lift the per-key replay quota, which would
            // otherwise answer 429 past 10 000 proofs in a replay window.
            .env("DPOP_REPLAY_KEY_QUOTA", "100000000")
            .env("DPOP_REPLAY_CAPACITY", "100000000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            // Keep per-request logging out of the measurement unless asked for.
            cmd.env("RUST_LOG", "warn");
        }
        // `taskset` execs the server, so the child's PID is the server's.
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "cannot start `taskset ... {}`: {e}",
                opts.server_bin.display()
            )
        })?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        let mut this = Self {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
        };

        // Read stdout on a thread (it keeps draining after the `listening on` line).
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        std::thread::Builder::new()
            .name("server-stdout".into())
            .spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(tx) = tx.take_if(|_| line.contains("listening on")) {
                        let addr = line
                            .rsplit("http://")
                            .next()
                            .and_then(|a| a.trim().trim_end_matches('/').parse().ok());
                        match addr {
                            Some(a) => {
                                let _ = tx.send(a);
                            }
                            None => eprintln!("load: cannot parse the server's line {line:?}"),
                        }
                    } else {
                        println!("server: {line}");
                    }
                }
            })?;
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => {
                    this.addr = addr;
                    return Ok(this);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = this.child.as_mut().and_then(|c| c.wait().ok());
                    return Err(format!(
                        "the server closed its stdout without a `listening on` line \
                         (exit status {status:?})"
                    )
                    .into());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = this
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok())
                        .flatten()
                    {
                        return Err(format!("the server exited during start-up: {status}").into());
                    }
                    if started.elapsed() > STARTUP_TIMEOUT {
                        return Err(format!(
                            "the server printed no `listening on` line within {} s",
                            STARTUP_TIMEOUT.as_secs()
                        )
                        .into());
                    }
                }
            }
        }
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = child.kill() {
                eprintln!("load: cannot kill the server (pid {}): {e}", self.pid);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// The load driver
// ---------------------------------------------------------------------------------------------

/// What every request of a run looks like.
struct Target {
    name: &'static str,
    method: Method,
    uri: Uri,
    host: HeaderValue,
    /// `Authorization: DPoP <token>`.
    auth: Option<HeaderValue>,
    /// One unused proof per request.
    proofs: Option<Arc<Vec<HeaderValue>>>,
    /// The instant the oldest proof stops being usable.
    proofs_valid_until: Option<Instant>,
}

impl Target {
    fn plain(name: &'static str, path: &'static str, addr: SocketAddr) -> Self {
        Self {
            name,
            method: Method::GET,
            uri: Uri::from_static(path),
            host: host_header(addr),
            auth: None,
            proofs: None,
            proofs_valid_until: None,
        }
    }

    fn request(&self, i: usize) -> Request<Empty<Bytes>> {
        let mut req = Request::new(Empty::new());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        if let Some(auth) = &self.auth {
            h.insert(AUTHORIZATION, auth.clone());
        }
        if let Some(proof) = self.proofs.as_ref().and_then(|p| p.get(i)) {
            h.insert(HeaderName::from_static("dpop"), proof.clone());
        }
        req
    }

    fn request_limit(&self) -> usize {
        self.proofs.as_ref().map_or(usize::MAX, |p| p.len())
    }
}

/// State shared by the connection tasks of one phase.
struct Phase {
    target: Arc<Target>,
    /// Next request number (for DPoP: the index of the next unused proof).
    next: AtomicUsize,
    limit: usize,
    deadline: Instant,
    ran_out: AtomicBool,
    /// The first failure seen, for the report.
    first_failure: Mutex<Option<String>>,
    record: bool,
}

impl Phase {
    fn note_failure(&self, what: String) {
        if let Ok(mut f) = self.first_failure.lock() {
            f.get_or_insert(what);
        }
    }
}

struct TaskResult {
    sender: Option<SendRequest<Empty<Bytes>>>,
    latencies_ns: Vec<u64>,
    ok: u64,
    non2xx: u64,
    errors: u64,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Errors surface on the sending side, where they are counted.
        let _ = conn.await;
    });
    Ok(sender)
}

async fn connection_task(
    addr: SocketAddr,
    mut sender: SendRequest<Empty<Bytes>>,
    phase: Arc<Phase>,
) -> TaskResult {
    let mut r = TaskResult {
        sender: None,
        latencies_ns: Vec::with_capacity(if phase.record { 4096 } else { 0 }),
        ok: 0,
        non2xx: 0,
        errors: 0,
    };
    let mut now = Instant::now();
    while now < phase.deadline {
        let i = phase.next.fetch_add(1, Ordering::Relaxed);
        if i >= phase.limit {
            phase.ran_out.store(true, Ordering::Relaxed);
            break;
        }
        let req = phase.target.request(i);
        let start = Instant::now();
        let outcome = match sender.ready().await {
            Ok(()) => match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let www = if status.is_success() {
                        None
                    } else {
                        resp.headers().get("www-authenticate").cloned()
                    };
                    match resp.into_body().collect().await {
                        Ok(body) => Ok((status, www, body.to_bytes())),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        now = Instant::now();
        match outcome {
            Ok((status, www, body)) => {
                if phase.record {
                    let ns = u64::try_from((now - start).as_nanos()).unwrap_or(u64::MAX);
                    r.latencies_ns.push(ns);
                }
                if status.is_success() {
                    r.ok += 1;
                } else {
                    r.non2xx += 1;
                    phase.note_failure(format!(
                        "HTTP {status}, WWW-Authenticate: {:?}, body: {:?}",
                        www,
                        String::from_utf8_lossy(body.get(..body.len().min(200)).unwrap_or(&[]))
                    ));
                }
            }
            Err(e) => {
                r.errors += 1;
                phase.note_failure(format!("transport error: {e}"));
                match connect(addr).await {
                    Ok(s) => sender = s,
                    Err(e) => {
                        phase.note_failure(format!("reconnect failed: {e}"));
                        return r;
                    }
                }
                now = Instant::now();
            }
        }
    }
    r.sender = Some(sender);
    r
}

struct PhaseOutcome {
    senders: Vec<SendRequest<Empty<Bytes>>>,
    latencies_ns: Vec<u64>,
    ok: u64,
    non2xx: u64,
    errors: u64,
    elapsed: Duration,
    ran_out: bool,
    first_failure: Option<String>,
}

/// Runs one phase on `senders` (one task per connection) and gives the connections back.
async fn drive(
    addr: SocketAddr,
    senders: Vec<SendRequest<Empty<Bytes>>>,
    target: &Arc<Target>,
    first: usize,
    limit: usize,
    deadline: Instant,
    record: bool,
) -> PhaseOutcome {
    let phase = Arc::new(Phase {
        target: Arc::clone(target),
        next: AtomicUsize::new(first),
        limit,
        deadline,
        ran_out: AtomicBool::new(false),
        first_failure: Mutex::new(None),
        record,
    });
    let start = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|s| tokio::spawn(connection_task(addr, s, Arc::clone(&phase))))
        .collect();
    let mut out = PhaseOutcome {
        senders: Vec::with_capacity(tasks.len()),
        latencies_ns: Vec::new(),
        ok: 0,
        non2xx: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        ran_out: false,
        first_failure: None,
    };
    for t in tasks {
        let r = t.await.expect("a connection task panicked");
        out.senders.extend(r.sender);
        out.latencies_ns.extend_from_slice(&r.latencies_ns);
        out.ok += r.ok;
        out.non2xx += r.non2xx;
        out.errors += r.errors;
    }
    out.elapsed = start.elapsed();
    out.ran_out = phase.ran_out.load(Ordering::Relaxed);
    out.first_failure = phase.first_failure.lock().ok().and_then(|mut f| f.take());
    out
}

/// Warm-up, then the measured run, for one target.
async fn measure(
    opts: &Options,
    addr: SocketAddr,
    target: Arc<Target>,
    server_pid: u32,
) -> Result<RunResult, BoxError> {
    println!();
    println!(
        "== {}: {} {} over {} keep-alive connections ==",
        target.name, target.method, target.uri, opts.connections
    );

    let mut senders = Vec::with_capacity(opts.connections);
    for _ in 0..opts.connections {
        senders.push(
            connect(addr)
                .await
                .map_err(|e| format!("cannot connect to the server at {addr}: {e}"))?,
        );
    }

    // Warm-up: not recorded.
    let limit = target.request_limit();
    let warm_end = opts.warmup.min(limit);
    let warm = drive(
        addr,
        senders,
        &target,
        0,
        warm_end,
        Instant::now() + Duration::from_secs(10),
        false,
    )
    .await;
    println!(
        "warm-up         {} requests in {:.3} s ({} non-2xx, {} errors)",
        warm.ok + warm.non2xx,
        warm.elapsed.as_secs_f64(),
        warm.non2xx,
        warm.errors
    );
    if let Some(f) = &warm.first_failure {
        println!("warm-up failure {f}");
    }
    if warm.ok == 0 {
        return Err(format!("no successful request during the {} warm-up", target.name).into());
    }
    let mut senders = warm.senders;
    while senders.len() < opts.connections {
        senders.push(connect(addr).await?);
    }

    // The measured run.
    let now = Instant::now();
    let mut deadline = now + opts.duration;
    let mut cut_by_age = false;
    if let Some(valid_until) = target.proofs_valid_until {
        if valid_until < deadline {
            deadline = valid_until;
            cut_by_age = true;
        }
    }
    let client_core = single_cpu("self");
    let server_core0 = core_times(opts.server_core);
    let client_core0 = client_core.and_then(core_times);
    let server_cpu0 = cpu_ns(&server_pid.to_string());
    let client_cpu0 = cpu_ns("self");
    let run = drive(addr, senders, &target, warm_end, limit, deadline, true).await;
    let server_cpu1 = cpu_ns(&server_pid.to_string());
    let client_cpu1 = cpu_ns("self");
    let server_core1 = core_times(opts.server_core);
    let client_core1 = client_core.and_then(core_times);
    let pct = |a: Option<u64>, b: Option<u64>| {
        a.zip(b).map(|(a, b)| {
            #[allow(clippy::cast_precision_loss)]
            let used = b.saturating_sub(a) as f64;
            100.0 * used / run.elapsed.as_nanos().max(1) as f64
        })
    };

    let mut latencies = run.latencies_ns;
    latencies.sort_unstable();
    let result = RunResult {
        name: target.name,
        requests: run.ok + run.non2xx,
        non2xx: run.non2xx,
        errors: run.errors,
        elapsed: run.elapsed,
        p50: percentile(&latencies, 0.50),
        p90: percentile(&latencies, 0.90),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(0),
        ran_out: run.ran_out,
        cut_by_age: cut_by_age && !run.ran_out,
        server_cpu_pct: pct(server_cpu0, server_cpu1),
        client_cpu_pct: pct(client_cpu0, client_cpu1),
        server_core_busy_pct: busy_pct(server_core0, server_core1),
        client_core_busy_pct: busy_pct(client_core0, client_core1),
        connections: opts.connections,
    };
    result.print(opts);
    if let Some(f) = &run.first_failure {
        println!("first failure   {f}");
    }
    drop(run.senders);
    Ok(result)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or(0)
}

struct RunResult {
    name: &'static str,
    requests: u64,
    non2xx: u64,
    errors: u64,
    elapsed: Duration,
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    ran_out: bool,
    cut_by_age: bool,
    server_cpu_pct: Option<f64>,
    client_cpu_pct: Option<f64>,
    /// How busy the server's core was, whoever used it (from `/proc/stat`).
    server_core_busy_pct: Option<f64>,
    /// How busy the generator's core was (when it is pinned to a single core).
    client_core_busy_pct: Option<f64>,
    connections: usize,
}

fn us(ns: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let v = ns as f64 / 1000.0;
    v
}

fn fmt_pct(p: Option<f64>) -> String {
    p.map_or_else(|| "?".into(), |p| format!("{p:.1}"))
}

impl RunResult {
    fn rps(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let n = self.requests as f64;
        n / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Requests per second of server CPU time: less sensitive to other load on the machine.
    fn rps_per_server_cpu(&self) -> Option<f64> {
        self.server_cpu_pct
            .filter(|p| *p > 0.0)
            .map(|p| self.rps() * 100.0 / p)
    }

    fn print(&self, opts: &Options) {
        println!(
            "requests        {} in {:.3} s ({} non-2xx, {} transport errors){}",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.non2xx,
            self.errors,
            if self.ran_out {
                " [stopped early: proofs ran out; raise --proofs]"
            } else if self.cut_by_age {
                " [stopped early: the proofs were about to expire]"
            } else {
                ""
            }
        );
        println!("throughput      {:.0} req/s", self.rps());
        println!(
            "latency         p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us",
            us(self.p50),
            us(self.p90),
            us(self.p99),
            us(self.max)
        );
        println!(
            "cpu             server {}% of a core (core {} busy {}% in all), generator {}% \
             of a core (its core busy {}% in all)",
            fmt_pct(self.server_cpu_pct),
            opts.server_core,
            fmt_pct(self.server_core_busy_pct),
            fmt_pct(self.client_cpu_pct),
            fmt_pct(self.client_core_busy_pct)
        );
        if let Some(r) = self.rps_per_server_cpu() {
            println!("efficiency      {r:.0} requests per server CPU-second");
        }
    }

    fn print_summary_line(&self, opts: &Options, client_cores: &str) {
        println!(
            "load: target={} rps={:.0} p50_us={:.0} p90_us={:.0} p99_us={:.0} max_us={:.0} \
             non2xx={} errors={} requests={} secs={:.3} conns={} server_core={} \
             client_core={} server_cpu_pct={} client_cpu_pct={} server_core_busy_pct={} \
             client_core_busy_pct={} rps_per_server_cpu_s={} early_stop={}",
            self.name,
            self.rps(),
            us(self.p50),
            us(self.p90),
            us(self.p99),
            us(self.max),
            self.non2xx,
            self.errors,
            self.requests,
            self.elapsed.as_secs_f64(),
            self.connections,
            opts.server_core,
            client_cores,
            fmt_pct(self.server_cpu_pct),
            fmt_pct(self.client_cpu_pct),
            fmt_pct(self.server_core_busy_pct),
            fmt_pct(self.client_core_busy_pct),
            self.rps_per_server_cpu()
                .map_or_else(|| "?".into(), |r| format!("{r:.0}")),
            if self.ran_out {
                "proofs"
            } else if self.cut_by_age {
                "proof-age"
            } else {
                "no"
            }
        );
    }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc
// ---------------------------------------------------------------------------------------------

/// Nanoseconds of CPU time used so far by all threads of `pid` (`"self"` for this process),
/// summed from `/proc/<pid>/task/*/schedstat`.
fn cpu_ns(pid: &str) -> Option<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    let mut any = false;
    for entry in dir.flatten() {
        let Ok(s) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            total += ns;
            any = true;
        }
    }
    any.then_some(total)
}

/// `(busy, total)` jiffies of one core, from `/proc/stat`.
fn core_times(core: usize) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let prefix = format!("cpu{core} ");
    let line = stat.lines().find(|l| l.starts_with(&prefix))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
    // counted in user and nice.
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

fn busy_pct(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<f64> {
    let ((busy0, total0), (busy1, total1)) = a.zip(b)?;
    let total = total1.checked_sub(total0).filter(|t| *t > 0)?;
    #[allow(clippy::cast_precision_loss)]
    let pct = 100.0 * busy1.saturating_sub(busy0) as f64 / total as f64;
    Some(pct)
}

/// The one core a process is pinned to, if it is pinned to exactly one.
fn single_cpu(pid: &str) -> Option<usize> {
    allowed_cpus(pid)?.trim().parse().ok()
}

/// `Cpus_allowed_list` of a process.
fn allowed_cpus(pid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_owned())
}

/// Whether a CPU list such as `0-1,4` contains `cpu`.
fn cpu_list_contains(list: &str, cpu: usize) -> bool {
    list.split(',').any(|part| {
        let mut ends = part.trim().splitn(2, '-').map(str::parse::<usize>);
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), None) => a == cpu,
            (Some(Ok(a)), Some(Ok(b))) => (a..=b).contains(&cpu),
            _ => false,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Raw verify rate
// ---------------------------------------------------------------------------------------------

/// Verifies per wall-clock second and per CPU-second.
struct RawRate {
    per_s: f64,
    per_cpu_s: Option<f64>,
}

/// Runs `load raw-verify` pinned to the server core.
fn raw_verify_child(opts: &Options) -> Result<RawRate, BoxError> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    println!();
    println!(
        "== raw-verify: OpenSSL P-256 ECDSA verify loop on core {} for {:.1} s ==",
        opts.server_core, opts.raw_seconds
    );
    let out = Command::new("taskset")
        .arg("-c")
        .arg(opts.server_core.to_string())
        .arg(&exe)
        .arg("raw-verify")
        .arg("--seconds")
        .arg(opts.raw_seconds.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `taskset ... {} raw-verify`: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        return Err(format!("raw-verify failed: {}", out.status).into());
    }
    let field = |name: &str| {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Ok(RawRate {
        per_s: field("verifies_per_s=").ok_or("raw-verify printed no verifies_per_s=")?,
        per_cpu_s: field("verifies_per_cpu_s="),
    })
}

/// The hidden `raw-verify` subcommand: P-256 ECDSA verifies of one signature with a ready key.
fn raw_verify_main(args: &[String]) -> ExitCode {
    use openssl::bn::BigNumContext;
    use openssl::ec::{EcGroup, EcKey, PointConversionForm};
    use openssl::ecdsa::EcdsaSig;
    use openssl::nid::Nid;

    let mut seconds = 3.0f64;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next().map(|v| v.parse::<f64>())) {
            ("--seconds", Some(Ok(s))) if s > 0.0 && s < 600.0 => seconds = s,
            _ => {
                eprintln!("load raw-verify: bad arguments {args:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("OpenSSL knows P-256");
    let private = EcKey::generate(&group).expect("P-256 key generation works");
    // A public-only key, as a verifier holds it, imported from its encoded point.
    let mut ctx = BigNumContext::new().expect("BigNumContext::new works");
    let point = private
        .public_key()
        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
        .expect("encoding the public point works");
    let point = openssl::ec::EcPoint::from_bytes(&group, &point, &mut ctx)
        .expect("decoding the public point works");
    let public = EcKey::from_public_key(&group, &point).expect("a valid public key");
    let digest: [u8; 32] = openssl::sha::sha256(b"tower-dpop raw verify benchmark");
    let sig = EcdsaSig::sign(&digest, &private).expect("ECDSA signing works");
    assert!(
        sig.verify(&digest, &public).expect("ECDSA verify runs"),
        "the signature verifies"
    );

    let budget = Duration::from_secs_f64(seconds);
    let cpu0 = cpu_ns("self");
    let start = Instant::now();
    let mut count: u64 = 0;
    loop {
        for _ in 0..64 {
            let ok = sig
                .verify(std::hint::black_box(&digest), &public)
                .expect("ECDSA verify runs");
            assert!(ok, "the signature verifies");
        }
        count += 64;
        if start.elapsed() >= budget {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_secs = cpu_ns("self")
        .zip(cpu0)
        .map(|(b, a)| {
            #[allow(clippy::cast_precision_loss)]
            let s = b.saturating_sub(a) as f64 / 1e9;
            s
        })
        .filter(|s| *s > 0.0);
    #[allow(clippy::cast_precision_loss)]
    let rate = count as f64 / secs;
    #[allow(clippy::cast_precision_loss)]
    let per_cpu = cpu_secs.map_or_else(|| "?".into(), |c| format!("{:.0}", count as f64 / c));
    println!(
        "raw-verify: verifies_per_s={rate:.0} verifies_per_cpu_s={per_cpu} verifies={count} \
         secs={secs:.3} cpu_pct={} us_per_verify={:.2} cores={}",
        fmt_pct(cpu_secs.map(|c| 100.0 * c / secs)),
        1e6 / rate,
        allowed_cpus("self").unwrap_or_else(|| "?".into())
    );
    ExitCode::SUCCESS
}
