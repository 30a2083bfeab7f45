//! Capped exponential backoff with jitter: [`RetryPolicy`] spaces the deliveries of a failing
//! job (what is specific to job retries: the delay follows the delivery count carried with the
//! job, and a handler's `Retry-After` hint raises it); [`RetryPolicy::backoff`] gives the same
//! steps as the services' stateful [`Backoff`], for reconnecting to a queue that stopped
//! answering.

use std::time::Duration;

use strata_service::backoff::Backoff;

use crate::runtime::envelope::random_u64;

/// Delays that double from `initial` up to `max`. Each delay is drawn uniformly from the upper
/// half of its step ("equal jitter"): jobs that failed together (an upstream outage) come back
/// spread out, yet never sooner than half a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    initial: Duration,
    max: Duration,
}

impl RetryPolicy {
    /// Steps of `initial`, `2 × initial`, … capped at `max` (at least 1 ms; `max` at least
    /// `initial`).
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
        }
    }

    /// The step after `failures` failed deliveries (1 → `initial`), before jitter.
    pub fn step(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The delay before the next delivery after `failures` failed ones: jittered within the
    /// upper half of [`RetryPolicy::step`], and at least `hint` (a `Retry-After` the handler
    /// passed on) as long as the hint is below the cap.
    pub fn delay(&self, failures: u32, hint: Option<Duration>) -> Duration {
        let delay = jitter(self.step(failures));
        match hint {
            Some(hint) => delay.max(hint.min(self.max)),
            None => delay,
        }
    }

    /// The cap.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// A [`Backoff`] over the same steps, for reconnect loops: each failure grows the delay, a
    /// success resets it.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.initial, self.max)
    }
}

/// Uniform in `[step / 2, step]`.
fn jitter(step: Duration) -> Duration {
    let half = step / 2;
    let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let extra = if span == 0 {
        0
    } else {
        random_u64() % span.saturating_add(1)
    };
    half + Duration::from_nanos(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_up_to_the_cap() {
        let policy = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(1));
        let steps: Vec<u128> = (1..=7).map(|n| policy.step(n).as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(policy.step(0).as_millis(), 100);
        assert_eq!(policy.step(u32::MAX), Duration::from_secs(1));
        let huge = RetryPolicy::new(Duration::from_secs(3600), Duration::from_secs(u64::MAX / 4));
        assert!(huge.step(40) >= Duration::from_secs(3600));
    }

    #[test]
    fn delays_are_jittered_within_the_upper_half_of_the_step() {
        let policy = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut seen = std::collections::HashSet::new();
        for failures in 1..=6 {
            let step = policy.step(failures);
            for _ in 0..50 {
                let delay = policy.delay(failures, None);
                assert!(delay >= step / 2 && delay <= step, "{delay:?} vs {step:?}");
                seen.insert(delay);
            }
        }
        assert!(seen.len() > 10, "jitter should spread delays: {seen:?}");
    }

    #[test]
    fn hints_raise_the_delay_up_to_the_cap() {
        let policy = RetryPolicy::new(Duration::from_millis(10), Duration::from_secs(2));
        let hinted = policy.delay(1, Some(Duration::from_secs(1)));
        assert!(hinted >= Duration::from_secs(1), "{hinted:?}");
        let capped = policy.delay(1, Some(Duration::from_secs(3600)));
        assert_eq!(capped, Duration::from_secs(2));
        assert_eq!(
            RetryPolicy::new(Duration::ZERO, Duration::ZERO).max(),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn backoff_grows_and_resets() {
        let mut backoff =
            RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(1)).backoff();
        for step in [100, 200, 400, 800, 1000, 1000] {
            let delay = backoff.next_delay();
            let step = Duration::from_millis(step);
            assert!(delay >= step / 2 && delay <= step, "{delay:?} vs {step:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
