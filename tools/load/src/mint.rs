//! Proof lifetimes: how long a batch minted before the clock stays usable.

use std::time::{Duration, Instant};

/// Proofs are rejected once their `iat` is more than 60 s old; `iat` is whole seconds, so a
/// proof may look up to 1 s older than it is. Stop using a batch at this age.
pub const PROOF_USABLE_FOR: Duration = Duration::from_secs(57);
/// Time kept aside between the end of minting and the start of the measured run (warm-up).
pub const WARMUP_ALLOWANCE: Duration = Duration::from_secs(3);

/// The time a batch may take to mint so that minting, the warm-up and a run of `duration` all
/// fit in the proofs' lifetime (the first proof minted may be the last one sent, when the
/// server answers more slowly than planned).
pub fn budget(duration: Duration) -> Result<Duration, String> {
    PROOF_USABLE_FOR
        .checked_sub(duration + WARMUP_ALLOWANCE)
        .filter(|b| *b >= Duration::from_secs(1))
        .ok_or_else(|| {
            format!(
                "--duration {:.1} s does not fit in the {} s a batch of proofs stays usable \
                 (minus {} s for minting and warm-up); use --duration {} or less",
                duration.as_secs_f64(),
                PROOF_USABLE_FOR.as_secs(),
                WARMUP_ALLOWANCE.as_secs() + 1,
                PROOF_USABLE_FOR.as_secs() - WARMUP_ALLOWANCE.as_secs() - 1
            )
        })
}

/// How long a run may last from now with a batch whose first proof was minted at
/// `minted_at`: `duration`, or less if the batch would expire first. The flag says it was cut.
pub fn run_length(minted_at: Instant, duration: Duration) -> (Duration, bool) {
    let left = (minted_at + PROOF_USABLE_FOR).saturating_duration_since(Instant::now());
    if left < duration {
        (left, true)
    } else {
        (duration, false)
    }
}
