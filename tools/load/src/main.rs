//! End-to-end load benchmark of `examples/resource_server.rs` over HTTP/1.1 keep-alive.
//!
//! ```text
//! scripts/load.sh [options]          # builds, then runs this pinned to core 1, server on core 0
//! cargo run --release -p tower-dpop-load -- [options]   # from the repository root
//! ```
//!
//! Three modes (`--mode`):
//!
//! - **classic** (default): one client key and token, unique ES256 proofs for `GET /api/me` as
//!   fast as the server answers; then `GET /health` (the HTTP stack alone); then the raw ES256
//!   verify rate on the server core ([`classic`]).
//! - **realistic**: N clients (mixed algorithms, each with its own bound token, refreshed every
//!   M minutes), requests spread by a Zipf distribution; reports req/s, p50/p99/p99.9, server CPU
//!   per request and its ratio to the floor, and the same for every client's first request
//!   ([`realistic`]).
//! - **hostile**: the same clients at half the server's measured capacity while an attacker
//!   sends, at the same rate, one kind of attack per mix; reports the legitimate success rate
//!   and p99, the server CPU per attack request as a ratio of a legitimate one, and accepted
//!   replays ([`hostile`], [`attack`]).
//!
//! Options:
//!
//! | option | modes | meaning | default |
//! |---|---|---|---|
//! | `--mode M` | | `classic`, `realistic` or `hostile` | classic |
//! | `--connections N` | all | keep-alive connections (one task each, one request at a time); the hostile mode gives each stream half | 64 |
//! | `--duration S` | all | seconds per measured run (per mix in the hostile mode; the replay-store mix runs 4 ×) | classic 10, realistic 20, hostile 6 |
//! | `--warmup N` | all | uncounted requests before the measured run | classic 500, realistic 2 000, hostile 0 |
//! | `--server-core K` | all | core the server (and the raw verify loops) is pinned to | 0 |
//! | `--server-bin PATH` | all | the `resource_server` binary | `target/release/examples/resource_server` |
//! | `--raw-seconds S` | all | seconds of each raw verify loop (0: skip; the realistic mode needs them) | 3 |
//! | `--seed N` | realistic, hostile | seed of the key shuffle, the Zipf draws and the refresh phases | 1 |
//! | `--proofs N` | classic | DPoP proofs to mint before the clock starts (warm-up included) | 200000 |
//! | `--rate R` | classic | expected DPoP req/s; without `--proofs`, mints `R × S × 1.1` (+ warm-up) | unset |
//! | `--target T` | classic | `dpop` (`GET /api/me`), `health` (`GET /health`) or `both` | both |
//! | `--clients N` | realistic, hostile | distinct client keys, each with its own bound token | 10000 |
//! | `--mix LIST` | realistic, hostile | client algorithms and weights, e.g. `es256=50,eddsa=40,ps256=10` | `es256=50,eddsa=40,ps256=10` |
//! | `--zipf S` | realistic, hostile | Zipf exponent of the requests over clients (0: uniform) | 1.0 |
//! | `--refresh-minutes M` | realistic, hostile | each client gets a new token every M minutes (each at its own phase) | 5 |
//! | `--key-cache DIR` | realistic, hostile | where generated RSA keys are kept between runs | `target/load-keys` |
//! | `--attacks LIST` | hostile | the mixes to run (names below; `all`) | all |
//! | `--capacity R` | hostile | the server's capacity in req/s instead of measuring it | measured |
//! | `--attacker-alg ALG` | hostile | the algorithm of the attacker's own key | ES256 |
//!
//! The PS256 share of the default mix is 10 %: an RSA-2048 signature costs the generator about
//! 1 ms, and every proof is minted before the clock starts, within the 57 s a batch of proofs
//! stays usable (minting stops at the budget and the run is then shorter). The RSA keys
//! themselves are generated once, in parallel, and cached under `--key-cache`.
//!
//! The tool sets the server's environment: no nonce, no Redis, and caches sized to the run
//! (`DPOP_KEY_CACHE_CAPACITY` twice the clients, `DPOP_TOKEN_CACHE_CAPACITY` four times,
//! `DPOP_REPLAY_CAPACITY` 4 000 000, `DPOP_REPLAY_KEY_QUOTA` what the busiest client needs in a
//! 70 s replay window with 50 % headroom: at the highest rate the floors allow in the realistic
//! mode; at the legitimate rate of the mixes in the hostile mode, whose server is restarted
//! with it once the capacity is measured, so the replay-store filler reaches its quota).
//!
//! Each mode ends with machine-readable lines starting with `load: ` (one per target, mix or
//! attack, and one summary line per mode).

mod args;
pub mod attack;
mod classic;
mod clients;
mod cpu;
mod driver;
mod floor;
pub mod hostile;
mod mint;
pub mod realistic;
mod report;
mod rng;
mod server;

use std::process::ExitCode;

use tower_dpop::testing::TestIssuer;

use crate::args::{Mode, Options, USAGE};
use crate::cpu::{allowed_cpus, cpu_list_contains};
use crate::server::{JwksServer, ServerProcess};

/// The error type of the tool.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("raw-verify") {
        return floor::main(args.get(1..).unwrap_or_default());
    }
    if args.first().map(String::as_str) == Some("rsa-keys") {
        return clients::rsa_keys_main(args.get(1..).unwrap_or_default());
    }
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match opts.mode {
        Mode::Classic => Setup::start(&opts, &classic_env()).and_then(|s| {
            let r = classic::run(&opts, &s);
            s.stop();
            r
        }),
        Mode::Realistic => realistic::run(&opts),
        Mode::Hostile => hostile::run(&opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One client key sends the whole classic run: lift the per-key replay quota, which would
/// otherwise answer 429 past 10 000 proofs in a replay window.
fn classic_env() -> Vec<(&'static str, String)> {
    vec![
        ("DPOP_REPLAY_KEY_QUOTA", "100000000".into()),
        ("DPOP_REPLAY_CAPACITY", "100000000".into()),
    ]
}

/// The current-thread runtime the generator drives the server with.
fn runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The authorization server's stand-in, its JWKS server and the resource server.
pub struct Setup {
    pub issuer: TestIssuer,
    jwks: JwksServer,
    pub server: ServerProcess,
    /// The cores this generator may run on.
    pub client_cores: String,
}

impl Setup {
    /// Starts the JWKS server and the resource server with `env` on top of the common settings.
    pub fn start(opts: &Options, env: &[(&str, String)]) -> Result<Self, BoxError> {
        let client_cores = allowed_cpus("self").unwrap_or_else(|| "?".into());
        println!(
            "load: generator pid {} on cores {client_cores}, server core {}, {} connections, \
             {:.1} s per run, {} core(s) available to the generator",
            std::process::id(),
            opts.server_core,
            opts.connections,
            opts.duration().as_secs_f64(),
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
        let server = ServerProcess::start(
            &opts.server_bin,
            opts.server_core,
            &jwks.url(),
            issuer.issuer(),
            env,
        )?;
        println!(
            "load: server pid {} listening on http://{} (cores {}), JWKS at {}; {}",
            server.pid(),
            server.addr,
            allowed_cpus(&server.pid().to_string()).unwrap_or_else(|| "?".into()),
            jwks.url(),
            env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        Ok(Self {
            issuer,
            jwks,
            server,
            client_cores,
        })
    }

    /// Replaces the resource server with a fresh one (empty caches and replay store) started
    /// with `env`; the authorization server stays.
    pub fn restart_server(
        &mut self,
        opts: &Options,
        env: &[(&str, String)],
    ) -> Result<(), BoxError> {
        let server = ServerProcess::start(
            &opts.server_bin,
            opts.server_core,
            &self.jwks.url(),
            self.issuer.issuer(),
            env,
        )?;
        println!(
            "load: server restarted: pid {} listening on http://{}; {}",
            server.pid(),
            server.addr,
            env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        std::mem::replace(&mut self.server, server).stop();
        Ok(())
    }

    /// Stops both servers.
    pub fn stop(self) {
        self.server.stop();
        self.jwks.stop();
    }
}
