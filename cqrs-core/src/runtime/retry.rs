//! How often, and how patiently, a command is retried after a concurrency conflict.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The retry policy for concurrency conflicts: on a conflict the runtime reloads the
/// aggregate, handles the command again against the new state and appends again, up to
/// `max_retries` times, waiting an exponentially growing, jittered delay in between.
///
/// ```
/// use std::time::Duration;
/// use cqrs_core::RetryPolicy;
///
/// let patient = RetryPolicy::retries(10).with_backoff(Duration::from_millis(2), Duration::from_millis(200));
/// assert_eq!(patient.max_retries(), 10);
/// assert_eq!(RetryPolicy::never().max_retries(), 0);
/// assert_eq!(RetryPolicy::default().max_retries(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    min_delay: Duration,
    max_delay: Duration,
    jitter: bool,
}

impl Default for RetryPolicy {
    /// Three retries, 1 ms to 100 ms apart, with jitter.
    fn default() -> Self {
        Self::retries(3)
    }
}

impl RetryPolicy {
    /// Never retry: a conflict is returned to the caller at once. The command is not
    /// kept for a second decision either, so a rejection decided on a cached state that
    /// another process has since moved is returned as decided (with retries, the runtime
    /// checks the stream's version and decides again on the stored state).
    pub fn never() -> Self {
        Self::retries(0)
    }

    /// Retry up to `n` times, 1 ms to 100 ms apart, with jitter.
    pub fn retries(n: u32) -> Self {
        Self {
            max_retries: n,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(100),
            jitter: true,
        }
    }

    /// Sets the first and the largest delay.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_delay = min;
        self.max_delay = max.max(min);
        self
    }

    /// Turns the random jitter on or off.
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// How many retries follow the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The delays before each retry.
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let mut b = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries as usize);
        if self.jitter {
            b = b.with_jitter();
        }
        b.build()
    }
}
