//! Percentiles, units and the printing shared by the modes.

use std::time::Duration;

use crate::cpu::CpuUsed;
use crate::driver::Outcome;

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
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

/// Nanoseconds as microseconds.
pub fn us(ns: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let v = ns as f64 / 1000.0;
    v
}

/// A value or `?`.
pub fn opt(v: Option<f64>, decimals: usize) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| "?".into(), |v| format!("{v:.decimals$}"))
}

/// Server CPU microseconds per request of a phase that sent `requests`.
pub fn cpu_us_per(cpu: &CpuUsed, requests: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    cpu.server_ns
        .filter(|_| requests > 0)
        .map(|ns| ns as f64 / 1000.0 / requests as f64)
}

/// Percentage of `elapsed` a CPU time is.
pub fn pct_of(ns: Option<u64>, elapsed: Duration) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    ns.map(|ns| 100.0 * ns as f64 / elapsed.as_nanos().max(1) as f64)
}

/// The human-readable lines of one stream's outcome.
pub fn print_outcome(o: &Outcome) {
    let l = &o.latencies_ns;
    println!(
        "{:<15} {} sent in {:.3} s ({:.0}/s): {} 2xx, non-2xx {}, {} transport errors{}",
        o.name,
        o.sent(),
        o.elapsed.as_secs_f64(),
        o.rps(),
        o.ok,
        o.statuses_label(),
        o.errors,
        if o.ran_out {
            " [stopped early: requests ran out]"
        } else {
            ""
        }
    );
    println!(
        "{:<15} latency p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
        "",
        us(percentile(l, 0.50)),
        us(percentile(l, 0.99)),
        us(percentile(l, 0.999)),
        us(l.last().copied().unwrap_or(0))
    );
    if let Some(f) = &o.first_failure {
        println!("{:<15} first failure: {f}", "");
    }
}
