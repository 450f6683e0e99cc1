//! The injected faults: their schedule, scaled to the run's length, and the record of when
//! each one really happened (the windows requests and log lines are judged against).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One kill and restart of Redis, as it happened.
#[derive(Debug, Clone)]
pub struct Outage {
    /// Just before SIGKILL was sent.
    pub kill_at: Instant,
    /// After the process was reaped: from here Redis cannot answer.
    pub dead_at: Option<Instant>,
    /// Just before the new process was spawned: until here Redis cannot answer.
    pub spawn_at: Option<Instant>,
    /// When it first answered `PING` with `PONG` (the data loaded).
    pub ready_at: Option<Instant>,
    /// Per instance: when the first request that got a 2xx after `ready_at` was sent.
    pub first_ok: [Option<Instant>; 2],
    /// Per instance: when the last request that got a 503 after `ready_at` was sent.
    pub last_503: [Option<Instant>; 2],
}

#[derive(Debug, Default)]
pub struct Timeline {
    pub outages: Vec<Outage>,
    /// JWKS endpoint failing or hanging: start, and end once it serves again.
    pub jwks: Vec<(Instant, Option<Instant>)>,
    pub key_rotations: u32,
    pub nonce_rotations: u32,
    pub clock_jumps: u32,
}

pub type SharedTimeline = Arc<Mutex<Timeline>>;

pub fn lock(t: &SharedTimeline) -> std::sync::MutexGuard<'_, Timeline> {
    t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Grace after Redis answers again within which 503s (and their logs) are still put down to
/// the outage: the recovery bound itself.
pub const RECOVERY_BOUND: Duration = Duration::from_secs(2);

impl Timeline {
    /// `true` when a request sent at `sent` and answered at `done` ran entirely while Redis
    /// could not answer: sent after the old process was reaped, answered before the new one
    /// was spawned.
    pub fn while_down(&self, sent: Instant, done: Instant) -> bool {
        self.outages.iter().any(|o| match o.dead_at {
            Some(dead) => sent >= dead && o.spawn_at.is_none_or(|spawn| done <= spawn),
            None => false,
        })
    }

    /// `true` when a request over `[sent, done]` overlaps an outage, from the kill to the end
    /// of the recovery bound after Redis answered again: a 503 or a transport error is then
    /// explained by the fault.
    pub fn overlaps_outage(&self, sent: Instant, done: Instant, grace: Duration) -> bool {
        self.outages.iter().any(|o| {
            let end = o.ready_at.map(|r| r + RECOVERY_BOUND + grace);
            done >= o.kill_at && end.is_none_or(|end| sent <= end)
        })
    }

    /// `true` when `at` is within a JWKS fault, or `grace` after it ended.
    pub fn in_jwks_fault(&self, at: Instant, grace: Duration) -> bool {
        self.jwks
            .iter()
            .any(|(start, end)| at >= *start && end.is_none_or(|e| at <= e + grace))
    }

    /// Notes a request to `instance` sent at `sent` with this status, for the recovery time.
    pub fn note_for_recovery(&mut self, instance: usize, sent: Instant, status: u16) {
        let Some(o) = self.outages.last_mut() else {
            return;
        };
        let Some(ready) = o.ready_at else {
            return;
        };
        if sent < ready || sent > ready + Duration::from_secs(10) {
            return;
        }
        let (Some(first_ok), Some(last_503)) =
            (o.first_ok.get_mut(instance), o.last_503.get_mut(instance))
        else {
            return;
        };
        if (200..300).contains(&status) {
            if first_ok.is_none() {
                *first_ok = Some(sent);
            }
        } else if status == 503 || status == 0 {
            *last_503 = Some(sent);
        }
    }

    /// Longest time, over every restart and instance, from Redis answering again until the
    /// instance answered requests again: the later of the first 2xx and the last 503 among the
    /// requests sent after Redis was ready. `None` when an instance never recovered.
    pub fn max_recovery(&self) -> Result<Duration, String> {
        let mut max = Duration::ZERO;
        for (i, o) in self.outages.iter().enumerate() {
            let Some(ready) = o.ready_at else {
                return Err(format!("restart {i}: Redis never answered again"));
            };
            for inst in 0..2 {
                let Some(Some(ok)) = o.first_ok.get(inst) else {
                    return Err(format!(
                        "restart {i}: instance {inst} served no request within 10 s"
                    ));
                };
                let mut back = *ok;
                if let Some(Some(bad)) = o.last_503.get(inst) {
                    back = back.max(*bad);
                }
                max = max.max(back.saturating_duration_since(ready));
            }
        }
        Ok(max)
    }
}

/// A fault, at an offset from the start of the run.
#[derive(Debug, Clone)]
pub enum Action {
    RedisKill {
        down: Duration,
    },
    PublishKey,
    SignWithNewKey,
    WithdrawOldKeys,
    NonceStage,
    NonceRotate,
    JwksFail,
    JwksHang,
    JwksServe,
    /// Instance B's clock moved to the system time plus (or minus) this.
    ClockJump {
        by: Duration,
        ahead: bool,
    },
    ClockReset,
}

/// Timings the instances and the workload are configured with, scaled to the run.
#[derive(Debug, Clone)]
pub struct Scale {
    pub seconds: u64,
    pub jwks_max_age: Duration,
    pub jwks_refresh_interval: Duration,
    pub jwks_timeout: Duration,
    pub token_renew: Duration,
    pub token_lifetime: Duration,
    pub nonce_lifetime: Duration,
    pub redis_every: Duration,
    pub redis_down: Duration,
    pub jwks_fault: Duration,
    pub clock_jump: Duration,
}

impl Scale {
    pub fn for_seconds(seconds: u64) -> Self {
        let long = seconds >= 300;
        Self {
            seconds,
            jwks_max_age: Duration::from_secs(if long { 10 } else { 2 }),
            jwks_refresh_interval: Duration::from_secs(if long { 5 } else { 1 }),
            jwks_timeout: Duration::from_secs(1),
            token_renew: Duration::from_secs(if long { 60 } else { 10 }),
            token_lifetime: Duration::from_secs(if long { 300 } else { 120 }),
            nonce_lifetime: Duration::from_secs(if long { 60 } else { 20 }),
            redis_every: Duration::from_secs((seconds / 4).clamp(20, 180)),
            redis_down: Duration::from_secs(if long { 5 } else { 3 }),
            jwks_fault: Duration::from_secs((seconds / 30).clamp(2, 20)),
            clock_jump: Duration::from_secs(3),
        }
    }

    /// The schedule, sorted by time.
    pub fn schedule(&self) -> Vec<(Duration, Action)> {
        let d = self.seconds as f64;
        let at = |f: f64| Duration::from_secs_f64(d * f);
        let mut s = Vec::new();
        let mut t = self.redis_every;
        while t + self.redis_down + Duration::from_secs(8) < Duration::from_secs(self.seconds) {
            s.push((
                t,
                Action::RedisKill {
                    down: self.redis_down,
                },
            ));
            t += self.redis_every;
        }
        // Publish first, sign once every instance has had time to fetch the new key, withdraw
        // the old one once no token it signed is still in use (clients renew theirs).
        let publish = at(0.15);
        let lead = self.jwks_max_age + self.jwks_refresh_interval + self.jwks_timeout * 2;
        s.push((publish, Action::PublishKey));
        s.push((publish + lead, Action::SignWithNewKey));
        s.push((
            publish + lead + self.token_renew + lead + Duration::from_secs(2),
            Action::WithdrawOldKeys,
        ));
        for f in [0.45, 0.85] {
            s.push((at(f), Action::NonceStage));
            s.push((at(f) + Duration::from_secs(1), Action::NonceRotate));
        }
        let jwks = at(0.55);
        s.push((jwks, Action::JwksFail));
        s.push((jwks + self.jwks_fault, Action::JwksHang));
        s.push((jwks + self.jwks_fault * 2, Action::JwksServe));
        s.push((
            at(0.62),
            Action::ClockJump {
                by: self.clock_jump,
                ahead: true,
            },
        ));
        s.push((
            at(0.70),
            Action::ClockJump {
                by: self.clock_jump,
                ahead: false,
            },
        ));
        s.push((at(0.78), Action::ClockReset));
        s.sort_by_key(|(t, _)| *t);
        s
    }
}
