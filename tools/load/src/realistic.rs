//! The realistic mode: N clients with mixed algorithms, each with its own bound token refreshed
//! every M minutes, requests spread over them by a Zipf distribution, every proof minted before
//! the clock starts.
//!
//! Phases, each measured with the server's CPU time from `/proc/<pid>/task/*/schedstat`:
//!
//! 1. the floors: raw verify loops of each algorithm of the mix (and ES256, the tokens'
//!    algorithm), pinned to the server core, before the server starts;
//! 2. **cold**: every client's first request (a key the server never saw, a new token), in a
//!    random order, closed loop: server CPU per request against the floor of those requests
//!    (one proof verify of its algorithm + one token verify each);
//! 3. **health**: `GET /health` closed loop for 3 s: the HTTP stack's own CPU per request;
//! 4. **run**: the Zipf workload, closed loop, for `--duration` seconds after `--warmup`
//!    requests: req/s, p50/p99/p99.9, server CPU per request and its ratio to the floor of the
//!    requests sent (their algorithms, plus a token verify per token new to the server).
//!
//! Targets: a run within 1.3 × its floor, a cold first request within 2 ×.

use std::sync::Arc;
use std::time::Duration;

use tower_dpop::Algorithm;

use crate::args::{mix_label, Options};
use crate::clients::{floor_us, Plan, Population};
use crate::cpu::{CpuUsed, CpuWindow};
use crate::driver::{self, Outcome, Source, Stream};
use crate::floor::Floors;
use crate::report::{cpu_us_per, opt, percentile, print_outcome, us};
use crate::rng::Zipf;
use crate::{floor, mint, BoxError, Setup};

/// Every replay entry lives 70 s (60 s proof age + 5 s future leeway + 5 s clock skew).
pub const REPLAY_WINDOW_S: f64 = 70.0;

/// The server's environment for a population: caches that hold every client and its tokens,
/// a replay store for the highest rate the floors allow, and a per-key quota that fits the
/// busiest client (its Zipf share of that rate over a replay window, with 50 % headroom).
pub fn server_env(opts: &Options, floors: &Floors) -> Vec<(&'static str, String)> {
    let fastest = floors
        .0
        .iter()
        .map(floor::RawRate::us)
        .fold(f64::INFINITY, f64::min);
    let max_rate = if fastest.is_finite() && fastest > 0.0 {
        1e6 / fastest
    } else {
        50_000.0
    };
    server_env_for_rate(opts, max_rate)
}

/// [`server_env`] for a known highest rate.
pub fn server_env_for_rate(opts: &Options, max_rate: f64) -> Vec<(&'static str, String)> {
    let top = Zipf::new(opts.clients, opts.zipf).top_share();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let quota = ((top * max_rate * REPLAY_WINDOW_S * 1.5).ceil() as u64).max(10_000);
    vec![
        (
            "DPOP_KEY_CACHE_CAPACITY",
            (opts.clients * 2).max(10_000).to_string(),
        ),
        (
            "DPOP_TOKEN_CACHE_CAPACITY",
            (opts.clients * 4).max(10_000).to_string(),
        ),
        ("DPOP_REPLAY_CAPACITY", "4000000".into()),
        ("DPOP_REPLAY_KEY_QUOTA", quota.to_string()),
    ]
}

/// The algorithms whose floors a population needs: its mix and ES256 (the tokens).
pub fn floor_algorithms(opts: &Options) -> Vec<Algorithm> {
    let mut algs: Vec<Algorithm> = opts.mix.iter().map(|(a, _)| *a).collect();
    algs.push(Algorithm::ES256);
    algs
}

/// The floor of a request of the mix with a cached token, weighted by the clients' shares.
pub fn mix_floor_us(opts: &Options, floors: &Floors) -> Option<f64> {
    let total: u32 = opts.mix.iter().map(|(_, w)| w).sum();
    let mut sum = 0.0;
    for &(alg, w) in &opts.mix {
        sum += floors.us(alg)? * f64::from(w);
    }
    Some(sum / f64::from(total.max(1)))
}

/// A measured closed-loop phase.
pub struct Phase {
    pub outcome: Outcome,
    pub cpu: CpuUsed,
}

impl Phase {
    /// Server CPU µs per request sent.
    pub fn cpu_us(&self) -> Option<f64> {
        cpu_us_per(&self.cpu, self.outcome.sent())
    }
}

/// Runs `streams` for at most `length`, measuring the server's CPU.
pub fn measured(
    rt: &tokio::runtime::Runtime,
    setup: &Setup,
    opts: &Options,
    streams: Vec<Stream>,
    length: Duration,
) -> Result<(Vec<Outcome>, CpuUsed), BoxError> {
    let window = CpuWindow::start(setup.server.pid(), opts.server_core);
    let outcomes = rt.block_on(driver::run(setup.server.addr, streams, length, true))?;
    Ok((outcomes, window.stop()))
}

/// Every client's first request, closed loop: the cold phase (it also primes the server).
pub fn cold_phase(
    rt: &tokio::runtime::Runtime,
    setup: &Setup,
    opts: &Options,
    population: &mut Population,
) -> Result<(Plan, Phase), BoxError> {
    let plan = population.first_requests(&setup.issuer)?;
    println!();
    println!(
        "== cold: every client's first request ({}; minted in {:.1} s) ==",
        plan.list.len(),
        plan.mint_secs
    );
    let len = plan.list.len();
    let stream = Stream::closed(
        "cold",
        "/api/me",
        Arc::new(plan.list.clone()),
        0..len,
        opts.connections,
    );
    let (mut outcomes, cpu) = measured(rt, setup, opts, vec![stream], Duration::from_secs(50))?;
    let outcome = outcomes.pop().ok_or("no outcome")?;
    print_outcome(&outcome);
    Ok((plan, Phase { outcome, cpu }))
}

/// `GET /health`, closed loop, 3 s: what the HTTP stack costs per request.
pub fn health_phase(
    rt: &tokio::runtime::Runtime,
    setup: &Setup,
    opts: &Options,
) -> Result<Phase, BoxError> {
    println!();
    println!("== health: GET /health for 3 s (the HTTP stack alone) ==");
    let stream = Stream {
        source: Source::Same(Vec::new()),
        ..Stream::closed(
            "health",
            "/health",
            Arc::new(Vec::new()),
            0..usize::MAX,
            opts.connections,
        )
    };
    let (mut outcomes, cpu) = measured(rt, setup, opts, vec![stream], Duration::from_secs(3))?;
    let outcome = outcomes.pop().ok_or("no outcome")?;
    print_outcome(&outcome);
    Ok(Phase { outcome, cpu })
}

/// Runs the realistic mode.
pub fn run(opts: &Options) -> Result<(), BoxError> {
    if opts.raw_seconds <= 0.0 {
        return Err("the realistic mode needs the floors: --raw-seconds must be positive".into());
    }
    let floors = floor::measure(&floor_algorithms(opts), opts.server_core, opts.raw_seconds)?;
    let setup = Setup::start(opts, &server_env(opts, &floors))?;
    let result = run_with(opts, &setup, &floors);
    setup.stop();
    result
}

fn run_with(opts: &Options, setup: &Setup, floors: &Floors) -> Result<(), BoxError> {
    let rt = crate::runtime()?;
    let url = format!("http://{}/api/me", setup.server.addr);
    let mut population = Population::new(&setup.issuer, opts, url)?;
    let started = std::time::Instant::now();
    let (cold_plan, cold) = cold_phase(&rt, setup, opts, &mut population)?;
    let cold_floor = floor_us(&cold_plan, 0..cold_plan.list.len(), floors);
    let health = health_phase(&rt, setup, opts)?;

    // The run's proofs: planned at the rate the server would reach at 1.25 × its floor.
    let duration = opts.duration();
    let budget = mint::budget(duration)?;
    let mix_floor = mix_floor_us(opts, floors).ok_or("a floor is missing")?;
    let rate = 1e6 / (mix_floor * 1.25);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let count = (rate * duration.as_secs_f64()).ceil() as usize + opts.warmup();
    println!();
    println!(
        "load: minting {count} proofs for the run (planned at {rate:.0} req/s, budget {:.1} s)",
        budget.as_secs_f64()
    );
    let plan = population.zipf_requests(
        &setup.issuer,
        count,
        rate,
        started.elapsed().as_secs_f64(),
        budget,
    )?;
    println!(
        "load: minted {} proofs in {:.1} s{}",
        plan.list.len(),
        plan.mint_secs,
        if plan.capped {
            " [capped by the time budget: the run may stop early]"
        } else {
            ""
        }
    );
    let warm_end = opts.warmup().min(plan.list.len() / 10);
    let list = Arc::new(plan.list.clone());
    println!();
    println!(
        "== run: {} clients, Zipf {:.2}, {} warm-up requests, then {:.0} s over {} connections ==",
        opts.clients,
        opts.zipf,
        warm_end,
        duration.as_secs_f64(),
        opts.connections
    );
    rt.block_on(driver::run(
        setup.server.addr,
        vec![Stream::closed(
            "warm-up",
            "/api/me",
            Arc::clone(&list),
            0..warm_end,
            opts.connections,
        )],
        Duration::from_secs(10),
        false,
    ))?;
    let (length, cut_by_age) = mint::run_length(plan.minted_at, duration);
    let stream = Stream::closed(
        "run",
        "/api/me",
        list,
        warm_end..plan.list.len(),
        opts.connections,
    );
    let (mut outcomes, cpu) = measured(&rt, setup, opts, vec![stream], length)?;
    let outcome = outcomes.pop().ok_or("no outcome")?;
    print_outcome(&outcome);
    let sent = usize::try_from(outcome.sent()).unwrap_or(usize::MAX);
    let range = warm_end..(warm_end + sent).min(plan.list.len());
    let (by_alg, new_tokens) = plan.counts(range.clone());
    let run_floor = floor_us(&plan, range, floors);
    let run = Phase { outcome, cpu };
    let run_cpu = run.cpu_us();
    let ratio = run_cpu.zip(run_floor).map(|(c, f)| c / f);
    let cold_cpu = cold.cpu_us();
    let cold_ratio = cold_cpu.zip(cold_floor).map(|(c, f)| c / f);
    let health_cpu = health.cpu_us();
    // The part of a request's CPU beyond the HTTP stack's, against the floor.
    let net = |cpu: Option<f64>, floor: Option<f64>| {
        cpu.zip(health_cpu)
            .zip(floor)
            .map(|((c, h), f)| (c - h) / f)
    };
    let l = &run.outcome.latencies_ns;
    println!(
        "{:<15} server CPU {} us per request, floor {} us ({}), ratio {}; cold first request \
         {} us, floor {} us, ratio {}; /health {} us",
        "",
        opt(run_cpu, 1),
        opt(run_floor, 1),
        by_alg
            .iter()
            .map(|(a, n)| format!("{n} {a}"))
            .chain(std::iter::once(format!("{new_tokens} new tokens")))
            .collect::<Vec<_>>()
            .join(", "),
        opt(ratio, 3),
        opt(cold_cpu, 1),
        opt(cold_floor, 1),
        opt(cold_ratio, 3),
        opt(health_cpu, 1)
    );
    println!();
    println!("== summary ==");
    println!(
        "load: mode=realistic clients={} mix={} zipf={:.2} refresh_min={} requests={} secs={:.3} \
         rps={:.0} p50_us={:.0} p99_us={:.0} p999_us={:.0} max_us={:.0} non2xx={} errors={} \
         new_tokens={new_tokens} server_cpu_us={} floor_us={} ratio={} ratio_beyond_http={} \
         cold_requests={} cold_non2xx={} cold_cpu_us={} cold_floor_us={} cold_ratio={} \
         cold_ratio_beyond_http={} health_cpu_us={} floors_us={} server_core_busy_pct={} \
         conns={} early_stop={}",
        opts.clients,
        mix_label(&opts.mix),
        opts.zipf,
        opts.refresh_minutes,
        run.outcome.sent(),
        run.outcome.elapsed.as_secs_f64(),
        run.outcome.rps(),
        us(percentile(l, 0.50)),
        us(percentile(l, 0.99)),
        us(percentile(l, 0.999)),
        us(l.last().copied().unwrap_or(0)),
        run.outcome.non2xx(),
        run.outcome.errors,
        opt(run_cpu, 1),
        opt(run_floor, 1),
        opt(ratio, 3),
        opt(net(run_cpu, run_floor), 3),
        cold.outcome.sent(),
        cold.outcome.non2xx() + cold.outcome.errors,
        opt(cold_cpu, 1),
        opt(cold_floor, 1),
        opt(cold_ratio, 3),
        opt(net(cold_cpu, cold_floor), 3),
        opt(health_cpu, 1),
        floors.label(),
        opt(run.cpu.server_core_busy_pct, 1),
        opts.connections,
        if run.outcome.ran_out {
            "proofs"
        } else if cut_by_age {
            "proof-age"
        } else {
            "no"
        }
    );
    Ok(())
}
