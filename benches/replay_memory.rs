//! Memory and insert latency of the in-memory replay store at scale.
//!
//! `cargo bench --bench replay_memory` inserts 1 M distinct proofs into a `MemoryReplayStore`,
//! reports the resident-memory growth per live entry (from /proc/self/statm) and the insert
//! latency percentiles. Not a criterion bench: one pass, like a load test.

use std::time::{Duration, Instant};

use tower_dpop::replay::{MemoryReplayStore, ReplayKey, Seen};
use tower_dpop::Thumbprint;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm");
    pages * 4096
}

fn main() {
    let n: u64 = std::env::args()
        .skip_while(|a| a != "--entries")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tp = Thumbprint::from_bytes([3; 32]);
    let keys: Vec<ReplayKey> = (0..n)
        .map(|i| ReplayKey::new(&tp, &format!("jti-{i}")))
        .collect();
    let store = MemoryReplayStore::new(n + 1);
    // The latency buffer is written before the first RSS reading, so its pages are not
    // counted as the store's.
    let mut lat: Vec<u64> = vec![u64::MAX; n as usize];
    let before = rss_bytes();
    for (key, slot) in keys.iter().zip(lat.iter_mut()) {
        let t = Instant::now();
        let seen = tower_dpop::__private::memory_insert(&store, *key, Duration::from_secs(600));
        *slot = t.elapsed().as_nanos() as u64;
        assert_eq!(seen, Ok(Seen::First));
    }
    let after = rss_bytes();
    assert_eq!(store.len(), n);
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    println!(
        "replay_memory: entries={n} rss_growth_bytes={} bytes_per_entry={:.1} insert_p50_ns={} insert_p99_ns={} insert_p999_ns={} insert_max_ns={}",
        after - before,
        (after - before) as f64 / n as f64,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        lat[lat.len() - 1]
    );
    // A replay of every 1000th key is still caught at this size.
    for key in keys.iter().step_by(1000) {
        assert_eq!(
            tower_dpop::__private::memory_insert(&store, *key, Duration::from_secs(600)),
            Ok(Seen::Replay)
        );
    }
}
