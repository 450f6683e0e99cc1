//! The classic mode: one client key and token, unique ES256 proofs for `GET /api/me`, as fast
//! as the server answers; then `GET /health` (the HTTP stack alone); then the raw ES256 floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::AUTHORIZATION;
use http::HeaderValue;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::Algorithm;

use crate::args::{Options, TargetSel};
use crate::cpu::{CpuUsed, CpuWindow};
use crate::driver::{self, dpop, Headers, Outcome, Source, Stream};
use crate::report::{opt, pct_of, percentile, print_outcome, us};
use crate::{floor, mint, BoxError, Setup};

/// One measured target.
struct Measured {
    name: &'static str,
    outcome: Outcome,
    cpu: CpuUsed,
    cut_by_age: bool,
}

impl Measured {
    fn rps_per_server_cpu(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        self.cpu
            .server_ns
            .filter(|ns| *ns > 0)
            .map(|ns| self.outcome.sent() as f64 / (ns as f64 / 1e9))
    }

    fn summary(&self, opts: &Options, client_cores: &str) {
        let o = &self.outcome;
        let l = &o.latencies_ns;
        println!(
            "load: target={} rps={:.0} p50_us={:.0} p90_us={:.0} p99_us={:.0} max_us={:.0} \
             non2xx={} errors={} requests={} secs={:.3} conns={} server_core={} \
             client_core={client_cores} server_cpu_pct={} client_cpu_pct={} \
             server_core_busy_pct={} rps_per_server_cpu_s={} early_stop={}",
            self.name,
            o.rps(),
            us(percentile(l, 0.50)),
            us(percentile(l, 0.90)),
            us(percentile(l, 0.99)),
            us(l.last().copied().unwrap_or(0)),
            o.non2xx(),
            o.errors,
            o.sent(),
            o.elapsed.as_secs_f64(),
            opts.connections,
            opts.server_core,
            opt(pct_of(self.cpu.server_ns, o.elapsed), 1),
            opt(pct_of(self.cpu.client_ns, o.elapsed), 1),
            opt(self.cpu.server_core_busy_pct, 1),
            opt(self.rps_per_server_cpu(), 0),
            if o.ran_out {
                "proofs"
            } else if self.cut_by_age {
                "proof-age"
            } else {
                "no"
            }
        );
    }
}

/// The proofs of the DPoP target, minted before the clock starts.
fn dpop_requests(
    opts: &Options,
    issuer: &TestIssuer,
    url: &str,
) -> Result<(Vec<Headers>, Instant), BoxError> {
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 3600);
    let auth = HeaderValue::try_from(format!("DPoP {token}"))?;
    let wanted = opts.proof_count();
    if wanted <= opts.warmup() {
        return Err(format!(
            "--proofs {wanted} leaves nothing after the {} warm-up requests",
            opts.warmup()
        )
        .into());
    }
    let budget = mint::budget(opts.duration())?;
    println!(
        "load: minting {wanted} ES256 proofs for GET {url} (single thread, budget {:.1} s)",
        budget.as_secs_f64()
    );
    let first_minted = Instant::now();
    let mut list = Vec::with_capacity(wanted);
    for i in 0..wanted {
        let proof = key.proof("GET", url).access_token(&token).sign();
        list.push(vec![
            (AUTHORIZATION, auth.clone()),
            (dpop(), HeaderValue::try_from(proof)?),
        ]);
        if i % 256 == 255 && first_minted.elapsed() >= budget {
            println!(
                "load: WARNING: minting capped by the time budget at {} proofs",
                list.len()
            );
            break;
        }
    }
    let secs = first_minted.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = list.len() as f64 / secs;
    println!(
        "load: minted {} proofs in {secs:.2} s ({rate:.0}/s); token size {} bytes",
        list.len(),
        token.len()
    );
    if list.len() <= opts.warmup() {
        return Err("too few proofs minted within the time budget".into());
    }
    Ok((list, first_minted))
}

async fn measure(
    opts: &Options,
    setup: &Setup,
    name: &'static str,
    uri: &'static str,
    make: impl Fn(std::ops::Range<usize>) -> Source,
    len: usize,
    minted_at: Option<Instant>,
) -> Result<Measured, BoxError> {
    println!();
    println!(
        "== {name}: GET {uri} over {} keep-alive connections ==",
        opts.connections
    );
    let addr = setup.server.addr;
    let warm_end = opts.warmup().min(len);
    let stream = |range: std::ops::Range<usize>| Stream {
        source: make(range.clone()),
        ..Stream::closed(name, uri, Arc::new(Vec::new()), range, opts.connections)
    };
    let warm = driver::run(
        addr,
        vec![stream(0..warm_end)],
        Duration::from_secs(10),
        false,
    )
    .await?;
    if let Some(w) = warm.first() {
        println!(
            "warm-up         {} requests in {:.3} s (non-2xx {}, {} errors)",
            w.sent(),
            w.elapsed.as_secs_f64(),
            w.statuses_label(),
            w.errors
        );
        if warm_end > 0 && w.ok == 0 {
            return Err(format!("no successful request during the {name} warm-up").into());
        }
    }
    let (length, cut_by_age) = match minted_at {
        Some(m) => mint::run_length(m, opts.duration()),
        None => (opts.duration(), false),
    };
    let window = CpuWindow::start(setup.server.pid(), opts.server_core);
    let mut outcomes = driver::run(addr, vec![stream(warm_end..len)], length, true).await?;
    let cpu = window.stop();
    let outcome = outcomes.pop().ok_or("no outcome")?;
    print_outcome(&outcome);
    println!(
        "{:<15} server CPU {}% of a core (core busy {}% in all), generator {}%",
        "",
        opt(pct_of(cpu.server_ns, outcome.elapsed), 1),
        opt(cpu.server_core_busy_pct, 1),
        opt(pct_of(cpu.client_ns, outcome.elapsed), 1)
    );
    let cut_by_age = cut_by_age && !outcome.ran_out;
    Ok(Measured {
        name,
        outcome,
        cpu,
        cut_by_age,
    })
}

/// Runs the classic mode.
pub fn run(opts: &Options, setup: &Setup) -> Result<(), BoxError> {
    let rt = crate::runtime()?;
    let mut results = Vec::new();
    if matches!(opts.target, TargetSel::Dpop | TargetSel::Both) {
        let url = format!("http://{}/api/me", setup.server.addr);
        let (list, minted_at) = dpop_requests(opts, &setup.issuer, &url)?;
        let list = Arc::new(list);
        let len = list.len();
        let l = Arc::clone(&list);
        results.push(rt.block_on(measure(
            opts,
            setup,
            "dpop",
            "/api/me",
            move |_| Source::List(Arc::clone(&l)),
            len,
            Some(minted_at),
        ))?);
    }
    if matches!(opts.target, TargetSel::Health | TargetSel::Both) {
        results.push(rt.block_on(measure(
            opts,
            setup,
            "health",
            "/health",
            |_| Source::Same(Vec::new()),
            usize::MAX,
            None,
        ))?);
    }
    drop(rt);

    let raw = if opts.raw_seconds > 0.0 {
        println!();
        Some(floor::measure(
            &[Algorithm::ES256],
            opts.server_core,
            opts.raw_seconds,
        )?)
    } else {
        None
    };
    println!();
    println!("== summary ==");
    for r in &results {
        r.summary(opts, &setup.client_cores);
    }
    if let Some(raw) = raw.as_ref().and_then(|f| f.0.first()) {
        println!(
            "load: target=raw-verify verifies_per_s={:.0} verifies_per_cpu_s={} core={} \
             alg=ES256(openssl P-256)",
            raw.per_s,
            opt(raw.per_cpu_s, 0),
            opts.server_core
        );
        if let Some(d) = results.iter().find(|r| r.name == "dpop") {
            // The CPU-time ratio discounts whatever else ran on the server core.
            let cpu_ratio = d
                .rps_per_server_cpu()
                .zip(raw.per_cpu_s)
                .map(|(a, b)| a / b);
            println!(
                "load: target=ratio dpop_rps={:.0} raw_verifies_per_s={:.0} ratio={:.3} \
                 cpu_ratio={}",
                d.outcome.rps(),
                raw.per_s,
                d.outcome.rps() / raw.per_s,
                opt(cpu_ratio, 3)
            );
        }
    }
    Ok(())
}
