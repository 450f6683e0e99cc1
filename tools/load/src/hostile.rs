//! The hostile mode: the realistic clients at half of the server's measured capacity while an
//! attacker sends, at the same rate, one kind of attack per mix ([`crate::attack`]).
//!
//! 1. floors (for the server's replay quota), the server, the clients; every client's first
//!    request (primes the caches);
//! 2. capacity: the Zipf workload closed loop for 4 s (or `--capacity`);
//! 3. for each attack, three rounds of: a baseline (legitimate traffic alone at half capacity
//!    for a third of `--duration`: server CPU per legitimate request), then at once the mix (the
//!    attack beside legitimate traffic, both paced at half capacity, open loop: latency counts
//!    from the instant a request was due) for a third of `--duration` (of 4 × `--duration` for
//!    the replay-store filler, so it reaches its quota). A round's attack cost is the mix's
//!    server CPU minus its legitimate requests at the cost of the baseline just before, divided
//!    by the attack requests; the ratio reported is the median over the rounds of that cost ÷
//!    the round's baseline (paired rounds, so the machine's drift cancels, as in the benches).
//!
//! Targets: legitimate success ≥ 99.9 % in every mix; an attack refused before the signature
//! ≤ 0.05 × a legitimate request, none ≥ 1.2 ×; zero accepted replays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::args::{mix_label, Options};
use crate::attack::{self, Attack, Attacker, Refused};
use crate::clients::{floor_us, Population};
use crate::driver::{Capture, Outcome, Stream};
use crate::floor::Floors;
use crate::realistic::{
    cold_phase, floor_algorithms, measured, mix_floor_us, server_env, server_env_for_rate,
};
use crate::report::{cpu_us_per, opt, percentile, print_outcome, us};
use crate::{floor, mint, BoxError, Setup};

/// What one mix measured.
struct MixResult {
    attack: Attack,
    legit: Outcome,
    attacker: Option<Outcome>,
    /// Server CPU µs per legitimate request in each round's baseline.
    legit_cpu: Vec<f64>,
    /// Each round's server CPU µs per attack request, with that round's baseline.
    attack_cpu: Vec<(f64, f64)>,
    /// The floor of the baselines' legitimate requests (µs per request).
    legit_floor: Option<f64>,
}

impl MixResult {
    /// The median over the rounds of the baseline cost.
    fn legit_cpu(&self) -> Option<f64> {
        median(self.legit_cpu.clone())
    }

    /// The median over the rounds of an attack request's cost.
    fn attack_cpu(&self) -> Option<f64> {
        median(self.attack_cpu.iter().map(|(a, _)| *a).collect())
    }

    /// The median over the rounds of an attack request's cost ÷ that round's baseline.
    fn ratio(&self) -> Option<f64> {
        median(self.attack_cpu.iter().map(|(a, l)| a / l).collect())
    }

    /// The same, less the cost of a `/health` request (`health` µs) first.
    fn ratio_beyond(&self, health: Option<f64>) -> Option<f64> {
        let h = health?;
        median(self.attack_cpu.iter().map(|(a, l)| (a - h) / l).collect())
    }
}

/// Baseline and mix rounds per attack.
const ROUNDS: usize = 3;

impl MixResult {
    fn legit_p99_us(&self) -> f64 {
        us(percentile(&self.legit.latencies_ns, 0.99))
    }
}

/// One attack: a baseline (legitimate traffic alone, `--duration`), then the mix (the
/// legitimate traffic and the attack, both at `rate`).
#[allow(clippy::too_many_arguments)]
fn one_mix(
    rt: &tokio::runtime::Runtime,
    setup: &Setup,
    opts: &Options,
    population: &mut Population,
    attacker: &Attacker,
    attack: Attack,
    rate: f64,
    started: Instant,
    floors: &Floors,
) -> Result<MixResult, BoxError> {
    let base = opts.duration();
    let duration = match attack {
        Attack::FillReplayStore => base.mul_f64(4.0),
        _ => base,
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (base_count, count) = (
        (rate * base.as_secs_f64()).ceil() as usize,
        (rate * duration.as_secs_f64()).ceil() as usize,
    );
    let conns = (opts.connections / 2).max(1);
    println!();
    println!(
        "== mix {}: baseline {:.0} s, then the mix {:.0} s ==",
        attack.name(),
        base.as_secs_f64(),
        duration.as_secs_f64()
    );
    let minting = Instant::now();
    let pace = attack::Pace {
        count,
        rate,
        connections: conns,
    };
    let capture = Arc::new(Capture::default());
    // The attack first (the replays need the legitimate list, so they come after).
    let prepared = match attack {
        Attack::Replay => None,
        a => Some(attack::stream(
            a,
            &setup.issuer,
            attacker,
            pace,
            &Arc::new(Vec::new()),
            &capture,
        )?),
    };
    let budget = mint::budget(base + duration)?.saturating_sub(minting.elapsed());
    let mut plan = population.zipf_requests(
        &setup.issuer,
        base_count + count,
        rate,
        started.elapsed().as_secs_f64(),
        budget,
    )?;
    println!(
        "load: minted in {:.1} s{}",
        minting.elapsed().as_secs_f64(),
        if plan.capped {
            " [legitimate proofs capped by the time budget]"
        } else {
            ""
        }
    );
    let legit_list = Arc::new(std::mem::take(&mut plan.list));
    let total = legit_list.len();
    let legit = |range: std::ops::Range<usize>, capture: Option<Arc<Capture>>| Stream {
        rate: Some(rate),
        capture,
        ..Stream::closed(
            "legitimate",
            "/api/me",
            Arc::clone(&legit_list),
            range,
            conns,
        )
    };
    let attack_stream = match prepared {
        Some(s) => s,
        None => attack::stream(attack, &setup.issuer, attacker, pace, &legit_list, &capture)?,
    };

    // Rounds of (baseline, mix), so that the machine's drift between the two cancels.
    let rounds = ROUNDS;
    let (base_n, mix_n) = (base_count / rounds, count / rounds);
    let mut result = MixResult {
        attack,
        legit: Outcome::default(),
        attacker: Some(Outcome::default()),
        legit_cpu: Vec::new(),
        attack_cpu: Vec::new(),
        legit_floor: None,
    };
    let mut legit_floor_sum = 0.0;
    for r in 0..rounds {
        let start = (r * (base_n + mix_n)).min(total);
        let mid = (start + base_n).min(total);
        let end = (mid + mix_n).min(total);
        let (length, _) = mint::run_length(minting, base.div_f64(rounds as f64));
        let (mut outcomes, cpu) = measured(rt, setup, opts, vec![legit(start..mid, None)], length)?;
        let baseline = outcomes.pop().ok_or("no outcome")?;
        let legit_cpu = cpu_us_per(&cpu, baseline.sent());
        let sent = usize::try_from(baseline.sent()).unwrap_or(usize::MAX);
        legit_floor_sum += floor_us(&plan, start..start + sent.min(base_n), floors).unwrap_or(0.0);

        let streams = vec![
            legit(
                mid..end,
                (attack == Attack::Replay).then(|| Arc::clone(&capture)),
            ),
            attack_stream.slice(r * mix_n..(r + 1) * mix_n),
        ];
        let (length, _) = mint::run_length(minting, duration.div_f64(rounds as f64));
        let (mut outcomes, cpu) = measured(rt, setup, opts, streams, length)?;
        let attacker_out = outcomes.pop().ok_or("no outcome")?;
        let legit_out = outcomes.pop().ok_or("no outcome")?;
        #[allow(clippy::cast_precision_loss)]
        let attack_cpu = legit_cpu.zip(cpu.server_ns).and_then(|(l, ns)| {
            let n = attacker_out.sent() as f64;
            (n > 0.0).then(|| (ns as f64 / 1000.0 - legit_out.sent() as f64 * l) / n)
        });
        result.legit_cpu.extend(legit_cpu);
        result.attack_cpu.extend(attack_cpu.zip(legit_cpu));
        result.legit.merge(legit_out);
        if let Some(a) = result.attacker.as_mut() {
            a.merge(attacker_out);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let rounds_f = rounds as f64;
    result.legit_floor = (legit_floor_sum > 0.0).then(|| legit_floor_sum / rounds_f);
    result.legit.name = "legitimate".into();
    print_outcome(&result.legit);
    if let Some(a) = result.attacker.as_mut() {
        a.name = attack.name().into();
        print_outcome(a);
    }
    Ok(result)
}

/// The median of some values.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => Some((v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0),
    }
}

fn attacks(opts: &Options) -> Result<Vec<Attack>, BoxError> {
    if opts.attacks.is_empty() || opts.attacks.iter().any(|a| a == "all") {
        return Ok(attack::ALL.to_vec());
    }
    opts.attacks
        .iter()
        .map(|name| {
            Attack::parse(name).ok_or_else(|| {
                format!(
                    "unknown attack {name:?}; known: {}",
                    attack::ALL
                        .iter()
                        .map(|a| a.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .into()
            })
        })
        .collect()
}

/// Runs the hostile mode.
pub fn run(opts: &Options) -> Result<(), BoxError> {
    let attacks = attacks(opts)?;
    let floors = if opts.raw_seconds > 0.0 {
        let mut algs = floor_algorithms(opts);
        algs.push(opts.attacker_alg);
        floor::measure(&algs, opts.server_core, opts.raw_seconds)?
    } else {
        Floors::default()
    };
    let mut setup = Setup::start(opts, &server_env(opts, &floors))?;
    let result = run_with(opts, &mut setup, &floors, &attacks);
    setup.stop();
    result
}

#[allow(clippy::too_many_lines)]
fn run_with(
    opts: &Options,
    setup: &mut Setup,
    floors: &Floors,
    attacks: &[Attack],
) -> Result<(), BoxError> {
    let rt = crate::runtime()?;
    let url = format!("http://{}/api/me", setup.server.addr);
    let mut population = Population::new(&setup.issuer, opts, url.clone())?;
    let started = Instant::now();
    let (_, cold) = cold_phase(&rt, setup, opts, &mut population)?;
    if cold.outcome.ok == 0 {
        return Err("no client's first request succeeded".into());
    }
    let measure_capacity = opts.capacity.is_none();

    // Capacity: the Zipf workload as fast as the server answers.
    let capacity = if let Some(c) = opts.capacity {
        c
    } else {
        let guess = mix_floor_us(opts, floors).map_or(20_000.0, |f| 1e6 / f);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let count = (guess * 4.0) as usize;
        let plan = population.zipf_requests(
            &setup.issuer,
            count,
            guess,
            started.elapsed().as_secs_f64(),
            Duration::from_secs(40),
        )?;
        println!();
        println!("== capacity: the Zipf workload closed loop for 4 s ==");
        let len = plan.list.len();
        let stream = Stream::closed(
            "capacity",
            "/api/me",
            Arc::new(plan.list),
            0..len,
            opts.connections,
        );
        let (mut outcomes, _) = measured(&rt, setup, opts, vec![stream], Duration::from_secs(4))?;
        let o = outcomes.pop().ok_or("no outcome")?;
        print_outcome(&o);
        o.rps()
    };
    let rate = capacity / 2.0;
    let conns = (opts.connections / 2).max(1);
    // The per-key replay quota is what stops one client filling the store: a fresh server
    // gets one sized to the busiest legitimate client at the mixes' rate (both streams'
    // worth, with headroom), so the filler reaches it while legitimate clients never do.
    if measure_capacity {
        setup.restart_server(opts, &server_env_for_rate(opts, rate))?;
        population.retarget(format!("http://{}/api/me", setup.server.addr));
        let (_, cold) = cold_phase(&rt, setup, opts, &mut population)?;
        if cold.outcome.ok == 0 {
            return Err("no client's first request succeeded on the new server".into());
        }
    }
    let url = format!("http://{}/api/me", setup.server.addr);
    println!();
    println!(
        "load: capacity {capacity:.0} req/s; legitimate clients and attacker at {rate:.0} req/s \
         each, {conns} connections each"
    );

    let attacker = Attacker::new(&setup.issuer, opts.attacker_alg, url)?;
    let mut results: Vec<MixResult> = Vec::new();
    for &attack in attacks {
        results.push(one_mix(
            &rt,
            setup,
            opts,
            &mut population,
            &attacker,
            attack,
            rate,
            started,
            floors,
        )?);
    }

    let baselines: Vec<f64> = results.iter().filter_map(MixResult::legit_cpu).collect();
    #[allow(clippy::cast_precision_loss)]
    let legit_cpu =
        (!baselines.is_empty()).then(|| baselines.iter().sum::<f64>() / baselines.len() as f64);
    let health_cpu = results
        .iter()
        .find(|r| r.attack == Attack::Health)
        .and_then(MixResult::attack_cpu);

    println!();
    println!("== summary ==");
    let mut min_success = f64::INFINITY;
    let mut max_p99 = 0.0f64;
    let mut accepted_replays = 0;
    let mut worst_before: (f64, &str) = (0.0, "-");
    let mut worst_any: (f64, &str) = (0.0, "-");
    for r in &results {
        min_success = min_success.min(r.legit.success_pct());
        max_p99 = max_p99.max(r.legit_p99_us());
        let name = r.attack.name();
        let refused = r.attack.refused();
        let cpu = r.attack_cpu();
        let ratio = r.ratio();
        let beyond_http = r.ratio_beyond(health_cpu);
        let a = r.attacker.as_ref();
        if r.attack == Attack::Replay {
            accepted_replays += a.map_or(0, |a| a.ok);
        }
        if let Some(q) = ratio {
            if refused == Refused::BeforeSignature && q > worst_before.0 {
                worst_before = (q, name);
            }
            if r.attack != Attack::Health && q > worst_any.0 {
                worst_any = (q, name);
            }
        }
        println!(
            "load: mode=hostile-mix attack={name} refused={} legit_rate={rate:.0} \
             legit_requests={} legit_success_pct={:.3} legit_p50_us={:.0} legit_p99_us={:.0} \
             legit_p999_us={:.0} legit_non2xx={} legit_errors={} attack_requests={} \
             attack_2xx={} attack_statuses={} attack_errors={} attack_cpu_us={} \
             legit_cpu_us={} legit_floor_us={} attacker_alg_floor_us={} cpu_ratio={} \
             cpu_ratio_beyond_http={} cpu_ratio_rounds={}{}",
            match refused {
                Refused::Served => "served",
                Refused::BeforeSignature => "before-signature",
                Refused::AfterSignature => "after-signature",
            },
            r.legit.sent(),
            r.legit.success_pct(),
            us(percentile(&r.legit.latencies_ns, 0.50)),
            r.legit_p99_us(),
            us(percentile(&r.legit.latencies_ns, 0.999)),
            r.legit.statuses_label(),
            r.legit.errors,
            a.map_or(0, Outcome::sent),
            a.map_or(0, |a| a.ok),
            a.map_or_else(|| "-".into(), Outcome::statuses_label),
            a.map_or(0, |a| a.errors),
            opt(cpu, 1),
            opt(r.legit_cpu(), 1),
            opt(r.legit_floor, 1),
            opt(floors.us(opts.attacker_alg), 1),
            opt(ratio, 3),
            opt(beyond_http, 3),
            r.attack_cpu
                .iter()
                .map(|(a, l)| format!("{:.3}", a / l))
                .collect::<Vec<_>>()
                .join(","),
            if r.attack == Attack::Replay {
                format!(" accepted_replays={}", a.map_or(0, |a| a.ok))
            } else {
                String::new()
            }
        );
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!(
        "load: mode=hostile clients={} mix={} capacity_rps={capacity:.0} rate_each={rate:.0} \
         mixes={} min_legit_success_pct={:.3} max_legit_p99_us={max_p99:.0} \
         accepted_replays={accepted_replays} legit_cpu_us={} baselines_cpu_us={} \
         health_cpu_us={} worst_before_signature={}:{:.3} worst_attack={}:{:.3} \
         success_ok={} before_signature_ok={} max_ratio_ok={} replays_ok={}",
        opts.clients,
        mix_label(&opts.mix),
        results.len(),
        min_success,
        opt(legit_cpu, 1),
        baselines
            .iter()
            .map(|b| format!("{b:.1}"))
            .collect::<Vec<_>>()
            .join(","),
        opt(health_cpu, 1),
        worst_before.1,
        worst_before.0,
        worst_any.1,
        worst_any.0,
        yes(min_success >= 99.9),
        yes(worst_before.0 <= 0.05),
        yes(worst_any.0 < 1.2),
        yes(accepted_replays == 0),
    );
    Ok(())
}
