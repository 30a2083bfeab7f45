//! [`Health`]: what the edge knows about one registry — its latency average (EWMA) and its
//! circuit breaker.
//!
//! The breaker is closed while calls succeed. `failure_threshold` consecutive failures open it:
//! the registry gets no calls for `cooldown`. After the cool-down exactly one call is let
//! through as a probe (half-open); its success closes the circuit, its failure opens it for
//! another cool-down. A "failure" is a call that got no answer (connection refused, timeout, a
//! transport-level UNAVAILABLE or INTERNAL) or the registry's own "unavailable" (overloaded,
//! storage down). Every answer the registry's handler gave about the request — not found, bad
//! path, forbidden, and also "the upstream mirror failed" — is a success for health: a client
//! can provoke those at will, and they say nothing about the registry (see
//! `RegistryPool::call`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Weight of the newest sample in the latency average.
const EWMA_ALPHA: f64 = 0.3;

/// Whether a call may go to the registry now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Circuit closed: call.
    Closed,
    /// Circuit half-open: this call is the one probe.
    Probe,
    /// Circuit open (or a probe is already out): skip this registry.
    Rejected,
}

#[derive(Debug, Default)]
struct State {
    /// Latency average in milliseconds; `None` before the first sample.
    ewma_ms: Option<f64>,
    consecutive_failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// Health of one registry.
#[derive(Debug)]
pub struct Health {
    state: Mutex<State>,
    failure_threshold: u32,
    cooldown: Duration,
}

impl Health {
    /// A registry with no history: closed circuit, no latency known.
    pub fn new(failure_threshold: u32, cooldown: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            failure_threshold,
            cooldown,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Asks to send a call; a [`Admission::Probe`] must be followed by
    /// [`Health::success`] or [`Health::failure`].
    pub fn admit(&self) -> Admission {
        self.with(|s| match s.open_until {
            None => Admission::Closed,
            Some(until) if Instant::now() >= until && !s.probing => {
                s.probing = true;
                Admission::Probe
            }
            Some(_) => Admission::Rejected,
        })
    }

    /// Whether calls may go out now without waiting for a cool-down.
    pub fn is_closed(&self) -> bool {
        self.with(|s| s.open_until.is_none())
    }

    /// Whether a call would be admitted now (closed, or a probe is due).
    pub fn is_available(&self) -> bool {
        self.with(|s| match s.open_until {
            None => true,
            Some(until) => Instant::now() >= until && !s.probing,
        })
    }

    /// The latency average in milliseconds (0 before any sample, so new registries get tried).
    pub fn latency_ms(&self) -> f64 {
        self.with(|s| s.ewma_ms.unwrap_or(0.0))
    }

    /// A call got an answer after `latency`.
    pub fn success(&self, latency: Duration) {
        let sample = latency.as_secs_f64() * 1000.0;
        self.with(|s| {
            s.ewma_ms = Some(match s.ewma_ms {
                None => sample,
                Some(avg) => EWMA_ALPHA * sample + (1.0 - EWMA_ALPHA) * avg,
            });
            s.consecutive_failures = 0;
            s.open_until = None;
            s.probing = false;
        });
    }

    /// A call got no answer. Returns whether this opened the circuit.
    pub fn failure(&self) -> bool {
        let cooldown = self.cooldown;
        let threshold = self.failure_threshold;
        self.with(|s| {
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            let was_open = s.open_until.is_some();
            if s.probing || s.consecutive_failures >= threshold {
                s.open_until = Some(Instant::now() + cooldown);
                s.probing = false;
            }
            !was_open && s.open_until.is_some()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_once_after_cooldown() {
        let h = Health::new(2, Duration::ZERO);
        assert_eq!(h.admit(), Admission::Closed);
        assert!(!h.failure());
        assert!(h.failure());
        // Cool-down zero: one probe at a time.
        assert_eq!(h.admit(), Admission::Probe);
        assert_eq!(h.admit(), Admission::Rejected);
        h.failure();
        assert_eq!(h.admit(), Admission::Probe);
        h.success(Duration::from_millis(10));
        assert_eq!(h.admit(), Admission::Closed);
        assert!(h.is_closed());
    }

    #[test]
    fn open_circuit_rejects_until_cooldown() {
        let h = Health::new(1, Duration::from_secs(3600));
        h.failure();
        assert_eq!(h.admit(), Admission::Rejected);
        assert!(!h.is_available());
    }

    #[test]
    fn latency_average_moves_toward_samples() {
        let h = Health::new(1, Duration::ZERO);
        assert_eq!(h.latency_ms(), 0.0);
        h.success(Duration::from_millis(100));
        assert!((h.latency_ms() - 100.0).abs() < 1e-9);
        h.success(Duration::from_millis(0));
        assert!((h.latency_ms() - 70.0).abs() < 1e-9);
    }
}
