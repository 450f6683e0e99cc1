//! Captures every WARN and ERROR event of the process (both instances, the Redis client, the
//! HTTP stack), each classified when it is logged against the injected faults under way.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::faults::SharedTimeline;

/// What the captured WARN and ERROR events were put down to.
#[derive(Debug, Default, Clone)]
pub struct Classified {
    /// The replay store failing (and the 503 it caused) while Redis was down or recovering.
    pub redis_outage: u64,
    /// A JWKS fetch failing while the endpoint failed or hung.
    pub jwks_fault: u64,
    /// Anything else: a failure of the run.
    pub unexplained: u64,
    /// The first unexplained events, for the report.
    pub samples: Vec<String>,
}

/// Unexplained events kept for the report.
const SAMPLES: usize = 10;

/// Classifies each event as it is logged, against the fault timeline; keeps counts only, so
/// that a fault logging on every request does not make the soak itself grow.
#[derive(Clone)]
pub struct Capture {
    timeline: SharedTimeline,
    /// How long after a fault's window its log lines are still its own: the Redis timeout
    /// (a request in flight when Redis came back), or the JWKS fetch timeout.
    redis_grace: Duration,
    jwks_grace: Duration,
    out: Arc<Mutex<Classified>>,
}

impl Capture {
    /// Installs the capture as the process's subscriber.
    pub fn install(
        timeline: SharedTimeline,
        redis_grace: Duration,
        jwks_grace: Duration,
    ) -> Result<Self, String> {
        let capture = Self {
            timeline,
            redis_grace,
            jwks_grace,
            out: Arc::default(),
        };
        tracing_subscriber::registry()
            .with(capture.clone())
            .try_init()
            .map_err(|e| e.to_string())?;
        Ok(capture)
    }

    pub fn classified(&self) -> Classified {
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn classify(&self, target: &str, fields: &Fields) -> Cause {
        let now = Instant::now();
        let t = crate::faults::lock(&self.timeline);
        let in_outage = t.overlaps_outage(now, now, self.redis_grace);
        let in_jwks = t.in_jwks_fault(now, self.jwks_grace);
        drop(t);
        let store_failed = fields.message.contains("replay store failed")
            || (fields.message.contains("DPoP request refused")
                && fields.detail.contains("replay store is unavailable"));
        if target.starts_with("tower_dpop") {
            if store_failed && in_outage {
                return Cause::Redis;
            }
            if fields.message.contains("JWKS fetch failed") && in_jwks {
                return Cause::Jwks;
            }
        } else if target.starts_with("redis") && in_outage {
            return Cause::Redis;
        }
        Cause::Unexplained
    }
}

enum Cause {
    Redis,
    Jwks,
    Unexplained,
}

#[derive(Default)]
struct Fields {
    message: String,
    detail: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "reason" | "error" => {
                let _ = write!(self.detail, "{}={value:?} ", field.name());
            }
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "reason" | "error" => {
                let _ = write!(self.detail, "{}={value} ", field.name());
            }
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        *metadata.level() <= Level::WARN
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::WARN {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let cause = self.classify(meta.target(), &fields);
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match cause {
            Cause::Redis => out.redis_outage += 1,
            Cause::Jwks => out.jwks_fault += 1,
            Cause::Unexplained => {
                out.unexplained += 1;
                if out.samples.len() < SAMPLES {
                    out.samples.push(format!(
                        "{} {}: {} {}",
                        meta.level(),
                        meta.target(),
                        fields.message,
                        fields.detail.trim_end()
                    ));
                }
            }
        }
    }
}
