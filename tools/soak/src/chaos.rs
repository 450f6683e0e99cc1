//! Injects the faults of the schedule and records when each really happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_dpop::nonce::NonceSecret;
use tower_dpop::testing::TestIssuer;

use crate::faults::{self, Action, SharedTimeline};
use crate::instance::Instance;
use crate::issuer::{AuthServer, JwksMode};
use crate::redis::RedisChild;

pub struct Chaos {
    timeline: SharedTimeline,
    /// The authorization server's key published but not signing yet.
    next_key: Option<Arc<TestIssuer>>,
    /// The nonce secret staged on both instances but not signing yet.
    next_secret: Option<NonceSecret>,
}

impl Chaos {
    pub fn new(timeline: SharedTimeline) -> Self {
        Self {
            timeline,
            next_key: None,
            next_secret: None,
        }
    }

    pub fn inject(
        &mut self,
        action: &Action,
        redis: &mut RedisChild,
        auth: &AuthServer,
        instances: [&Instance; 2],
    ) -> Result<(), String> {
        let timeline = &self.timeline;
        match action {
            Action::RedisKill { down } => {
                faults::lock(timeline).outages.push(faults::Outage {
                    kill_at: Instant::now(),
                    dead_at: None,
                    spawn_at: None,
                    ready_at: None,
                    first_ok: [None; 2],
                    last_503: [None; 2],
                });
                redis.kill();
                self.set_last(|o| o.dead_at = Some(Instant::now()));
                std::thread::sleep(*down);
                self.set_last(|o| o.spawn_at = Some(Instant::now()));
                redis.spawn()?;
                redis.wait_ready(Duration::from_secs(10))?;
                self.set_last(|o| o.ready_at = Some(Instant::now()));
            }
            Action::PublishKey => self.next_key = Some(auth.publish_new_key()),
            Action::SignWithNewKey => {
                if let Some(k) = self.next_key.take() {
                    auth.sign_with(&k);
                    faults::lock(timeline).key_rotations += 1;
                }
            }
            Action::WithdrawOldKeys => auth.withdraw_old_keys(),
            // Two steps, as a fleet must: the new secret accepted everywhere, then signing.
            Action::NonceStage => {
                let s = NonceSecret::random().map_err(|e| e.to_string())?;
                for i in instances {
                    i.layer
                        .accept_nonce_secret(s.clone())
                        .map_err(|e| e.to_string())?;
                }
                self.next_secret = Some(s);
            }
            Action::NonceRotate => {
                if let Some(s) = self.next_secret.take() {
                    for i in instances {
                        i.layer
                            .rotate_nonce_secret(s.clone())
                            .map_err(|e| e.to_string())?;
                    }
                    faults::lock(timeline).nonce_rotations += 1;
                }
            }
            Action::JwksFail => {
                faults::lock(timeline).jwks.push((Instant::now(), None));
                auth.set_mode(JwksMode::Fail);
            }
            Action::JwksHang => auth.set_mode(JwksMode::Hang),
            Action::JwksServe => {
                auth.set_mode(JwksMode::Serve);
                if let Some(last) = faults::lock(timeline).jwks.last_mut() {
                    last.1 = Some(Instant::now());
                }
            }
            Action::ClockJump { by, ahead } => {
                instances[1].clock.set_offset(*by, *ahead);
                faults::lock(timeline).clock_jumps += 1;
            }
            Action::ClockReset => {
                instances[1].clock.set_offset(Duration::ZERO, true);
                faults::lock(timeline).clock_jumps += 1;
            }
        }
        Ok(())
    }

    fn set_last(&self, f: impl FnOnce(&mut faults::Outage)) {
        if let Some(o) = faults::lock(&self.timeline).outages.last_mut() {
            f(o);
        }
    }
}
