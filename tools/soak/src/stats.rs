//! Counters and a latency histogram, fixed in size so that the soak itself does not grow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Original,
    Replay,
    DelayedReplay,
}

/// Latency buckets of 50 µs up to 10 s; slower ones land in the last.
const BUCKET_US: u64 = 50;
const BUCKETS: usize = 200_000;
/// Refusal descriptions kept for the report.
const SAMPLES: usize = 12;

#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub originals: AtomicU64,
    pub originals_ok: AtomicU64,
    pub replays: AtomicU64,
    pub delayed_replays: AtomicU64,
    /// A proof accepted twice.
    pub accepted_replays: AtomicU64,
    /// A proof first accepted when replayed (its original was refused, e.g. with 503).
    pub first_use_on_replay: AtomicU64,
    pub ok_while_down: AtomicU64,
    pub expected_unavailable: AtomicU64,
    pub nonce_challenges: AtomicU64,
    /// Legitimate requests refused for no injected fault.
    pub refused: AtomicU64,
    pub status_503: AtomicU64,
    latency: Mutex<Vec<u64>>,
    samples: Mutex<Vec<String>>,
}

impl Stats {
    pub fn new() -> Self {
        Self {
            latency: Mutex::new(vec![0; BUCKETS]),
            ..Self::default()
        }
    }

    pub fn latency(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = usize::try_from(us / BUCKET_US)
            .unwrap_or(BUCKETS - 1)
            .min(BUCKETS - 1);
        let mut h = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = h.get_mut(i) {
            *b += 1;
        }
    }

    /// The `p` quantile (0..1) of the latencies, in milliseconds (bucket upper bound).
    pub fn quantile_ms(&self, p: f64) -> f64 {
        let h = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let total: u64 = h.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let want = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (i, n) in h.iter().enumerate() {
            seen += n;
            if seen >= want {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        (BUCKETS as u64 * BUCKET_US) as f64 / 1000.0
    }

    pub fn response(&self, kind: Kind, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status == 503 {
            self.status_503.fetch_add(1, Ordering::Relaxed);
        }
        match kind {
            Kind::Original => {
                self.originals.fetch_add(1, Ordering::Relaxed);
                if (200..300).contains(&status) {
                    self.originals_ok.fetch_add(1, Ordering::Relaxed);
                }
            }
            Kind::Replay => {
                self.replays.fetch_add(1, Ordering::Relaxed);
            }
            Kind::DelayedReplay => {
                self.delayed_replays.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A replay's outcome: `original_ok` whether the proof had been accepted before.
    pub fn replay(&self, _kind: Kind, original_ok: bool, replay_ok: bool) {
        if replay_ok {
            if original_ok {
                self.accepted_replays.fetch_add(1, Ordering::Relaxed);
            } else {
                self.first_use_on_replay.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn ok_while_down(&self) {
        self.ok_while_down.fetch_add(1, Ordering::Relaxed);
    }

    pub fn expected_unavailable(&self) {
        self.expected_unavailable.fetch_add(1, Ordering::Relaxed);
    }

    pub fn nonce_challenge(&self) {
        self.nonce_challenges.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, instance: usize, status: u16, detail: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let mut s = self
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.len() < SAMPLES {
            let detail: String = detail.chars().take(200).collect();
            s.push(format!("instance {instance}: {status} {detail}"));
        }
    }

    pub fn samples(&self) -> Vec<String> {
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
