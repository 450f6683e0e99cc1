//! Latency of one `RedisReplayStore` check (`SET NX PX`) on loopback.
//!
//! `cargo bench --features redis --bench redis_store` uses the Redis at `TOWER_DPOP_REDIS_URL`,
//! or starts `redis-server` on a free 127.0.0.1 port (and stops it). Reports p50/p99/p99.9 of
//! sequential checks, and the throughput and p50/p99 of 64 concurrent callers sharing one store.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_dpop::replay::{RedisReplayStore, ReplayKey, ReplayStore, Seen};
use tower_dpop::Thumbprint;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut child = None;
    let url = match std::env::var("TOWER_DPOP_REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            child = Some(
                Command::new("redis-server")
                    .args([
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        &port.to_string(),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server (Debian package) is installed"),
            );
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                std::thread::sleep(Duration::from_millis(20));
            }
            format!("redis://127.0.0.1:{port}")
        }
    };
    let store = Arc::new(
        RedisReplayStore::builder(url)
            .key_prefix("bench:")
            .build()
            .unwrap(),
    );
    let tp = Thumbprint::from_bytes([5; 32]);
    let run = tower_dpop::testing::random_id(6);
    let n = 20_000;

    // Warm-up: connect.
    for i in 0..200 {
        store
            .check_and_insert(
                ReplayKey::new(&tp, &format!("w{run}{i}")),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
    }
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let key = ReplayKey::new(&tp, &format!("s{run}{i}"));
        let t = Instant::now();
        let seen = store.check_and_insert(key, Duration::from_secs(60)).await;
        lat.push(t.elapsed().as_nanos() as u64);
        assert_eq!(seen, Ok(Seen::First));
    }
    lat.sort_unstable();
    println!(
        "redis_store: sequential checks={n} p50_us={:.1} p99_us={:.1} p999_us={:.1}",
        percentile(&lat, 0.5) as f64 / 1000.0,
        percentile(&lat, 0.99) as f64 / 1000.0,
        percentile(&lat, 0.999) as f64 / 1000.0
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = store.clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n / 64);
            for i in 0..n / 64 {
                let key = ReplayKey::new(&tp, &format!("c{run}{t}-{i}"));
                let s = Instant::now();
                assert_eq!(
                    store.check_and_insert(key, Duration::from_secs(60)).await,
                    Ok(Seen::First)
                );
                lat.push(s.elapsed().as_nanos() as u64);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "redis_store: concurrent callers=64 checks={} per_s={:.0} p50_us={:.1} p99_us={:.1}",
        all.len(),
        all.len() as f64 / secs,
        percentile(&all, 0.5) as f64 / 1000.0,
        percentile(&all, 0.99) as f64 / 1000.0
    );
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
}
