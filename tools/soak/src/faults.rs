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
        // Each jump moves the clock by `clock_jump`, within the 5 s the instances of a fleet
        // may disagree by: ahead and back, then behind and back.
        s.push((
            at(0.62),
            Action::ClockJump {
                by: self.clock_jump,
                ahead: true,
            },
        ));
        s.push((at(0.67), Action::ClockReset));
        s.push((
            at(0.72),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    /// Killed at 1 s, reaped at 1.1 s, spawned at 4 s, answering at 4.2 s.
    fn timeline(base: Instant) -> Timeline {
        Timeline {
            outages: vec![Outage {
                kill_at: ms(base, 1000),
                dead_at: Some(ms(base, 1100)),
                spawn_at: Some(ms(base, 4000)),
                ready_at: Some(ms(base, 4200)),
                first_ok: [None; 2],
                last_503: [None; 2],
            }],
            ..Timeline::default()
        }
    }

    #[test]
    fn while_down_is_only_a_request_inside_dead_to_spawn() {
        let base = Instant::now();
        let t = timeline(base);
        struct Case {
            name: &'static str,
            sent: u64,
            done: u64,
            down: bool,
        }
        for c in [
            Case {
                name: "inside",
                sent: 1200,
                done: 1300,
                down: true,
            },
            Case {
                name: "edges",
                sent: 1100,
                done: 4000,
                down: true,
            },
            Case {
                name: "sent before the reap",
                sent: 1050,
                done: 1300,
                down: false,
            },
            Case {
                name: "answered after the spawn",
                sent: 3900,
                done: 4100,
                down: false,
            },
            Case {
                name: "after",
                sent: 4300,
                done: 4400,
                down: false,
            },
            Case {
                name: "before",
                sent: 100,
                done: 200,
                down: false,
            },
        ] {
            assert_eq!(
                t.while_down(ms(base, c.sent), ms(base, c.done)),
                c.down,
                "{}",
                c.name
            );
        }
        // Still down (no spawn yet): everything sent after the reap is while down.
        let mut open = timeline(base);
        open.outages[0].spawn_at = None;
        assert!(open.while_down(ms(base, 5000), ms(base, 9000)));
    }

    #[test]
    fn outage_explains_from_the_kill_to_the_recovery_bound() {
        let base = Instant::now();
        let t = timeline(base);
        assert!(!t.overlaps_outage(ms(base, 500), ms(base, 999), Duration::ZERO));
        assert!(t.overlaps_outage(ms(base, 500), ms(base, 1000), Duration::ZERO));
        assert!(t.overlaps_outage(ms(base, 6200), ms(base, 6300), Duration::ZERO));
        assert!(!t.overlaps_outage(ms(base, 6201), ms(base, 6300), Duration::ZERO));
        assert!(t.overlaps_outage(ms(base, 6300), ms(base, 6300), Duration::from_millis(100)));
    }

    #[test]
    fn recovery_is_the_later_of_first_success_and_last_503() {
        let base = Instant::now();
        let mut t = timeline(base);
        assert!(
            t.max_recovery().is_err(),
            "no instance served: not recovered"
        );
        t.note_for_recovery(0, ms(base, 4100), 200); // sent before ready: ignored
        t.note_for_recovery(0, ms(base, 4300), 503);
        t.note_for_recovery(0, ms(base, 4400), 200);
        t.note_for_recovery(1, ms(base, 4250), 200);
        t.note_for_recovery(1, ms(base, 5700), 503);
        t.note_for_recovery(1, ms(base, 20_000), 503); // past the 10 s horizon
        assert_eq!(t.max_recovery(), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn jwks_fault_window_with_grace() {
        let base = Instant::now();
        let t = Timeline {
            jwks: vec![(ms(base, 1000), Some(ms(base, 2000)))],
            ..Timeline::default()
        };
        assert!(!t.in_jwks_fault(ms(base, 999), Duration::ZERO));
        assert!(t.in_jwks_fault(ms(base, 1500), Duration::ZERO));
        assert!(!t.in_jwks_fault(ms(base, 2500), Duration::ZERO));
        assert!(t.in_jwks_fault(ms(base, 2500), Duration::from_secs(1)));
    }

    #[test]
    fn schedule_scales_and_fits_in_the_run() {
        for seconds in [60, 600] {
            let s = Scale::for_seconds(seconds);
            let plan = s.schedule();
            let kills = plan
                .iter()
                .filter(|(_, a)| matches!(a, Action::RedisKill { .. }))
                .count();
            assert!(kills >= 2, "{seconds}: {kills} kills");
            assert!(plan.iter().all(|(t, _)| t.as_secs() < seconds), "{seconds}");
            // The new key is published before it signs, and signs before the old is withdrawn.
            let when = |f: fn(&Action) -> bool| plan.iter().find(|(_, a)| f(a)).map(|(t, _)| *t);
            let publish = when(|a| matches!(a, Action::PublishKey)).unwrap();
            let sign = when(|a| matches!(a, Action::SignWithNewKey)).unwrap();
            let withdraw = when(|a| matches!(a, Action::WithdrawOldKeys)).unwrap();
            assert!(
                publish < sign && sign + s.token_renew < withdraw,
                "{seconds}"
            );
            // The JWKS outage starts after the old key is withdrawn (no rotation needs it).
            let jwks = when(|a| matches!(a, Action::JwksFail)).unwrap();
            assert!(withdraw < jwks, "{seconds}");
        }
    }
}
