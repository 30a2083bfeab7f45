//! Capped exponential backoff with jitter, for retrying Redis and upstreams after a failure.

use std::time::Duration;

use crate::events::event::random_u64;

/// Delays that double from `initial` up to `max`; each delay is drawn uniformly from the upper
/// half of the current step ("equal jitter") so that many clients losing Redis at once do not
/// come back in lockstep, while the delay never drops below half a step.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
            step: initial,
        }
    }

    /// The delay before the next attempt; grows the step for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let half = step / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if jitter_nanos == 0 {
            0
        } else {
            random_u64() % (jitter_nanos + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Back to the initial step, after a success.
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        let steps = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (delay, step) in delays.iter().zip(steps) {
            let step = Duration::from_millis(step);
            assert!(
                *delay >= step / 2 && *delay <= step,
                "{delay:?} vs step {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
