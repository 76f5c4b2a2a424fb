//! How often and how far apart a failed call to another service is tried again: the one
//! backoff policy of the Ironic and Swift clients, the Keystone session and the database.
//!
//! What this module must not do: decide what is worth retrying, or log. Each caller
//! classifies its own failures and names its service in its own messages; this only counts
//! the retries and hands out the pauses between them.

use std::time::Duration;

/// A retry policy: how many retries after the first attempt, and the pause before each.
///
/// Pauses start at `first_pause` and double with each retry, up to `max_pause`; with
/// `max_pause == first_pause` they are all the same (a fixed interval).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Retries after the first attempt; `None`: for ever.
    pub max_retries: Option<u32>,
    /// Pause before the first retry.
    pub first_pause: Duration,
    /// Longest pause.
    pub max_pause: Duration,
}

impl Backoff {
    /// `max_retries` retries, `pause` apart.
    pub const fn fixed(max_retries: Option<u32>, pause: Duration) -> Backoff {
        Backoff {
            max_retries,
            first_pause: pause,
            max_pause: pause,
        }
    }

    /// `max_retries` retries, the pause doubling from `first_pause` up to `max_pause`.
    pub const fn doubling(
        max_retries: Option<u32>,
        first_pause: Duration,
        max_pause: Duration,
    ) -> Backoff {
        Backoff {
            max_retries,
            first_pause,
            max_pause,
        }
    }

    /// The pause before retry number `retry` (1 for the first).
    pub fn pause(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.first_pause
            .saturating_mul(1u32 << doublings)
            .min(self.max_pause)
    }

    /// The retries of one call under this policy, none made yet.
    pub fn start(self) -> Retries {
        Retries {
            policy: self,
            done: 0,
        }
    }
}

/// The retries of one call: counts them and hands out the pauses.
#[derive(Clone, Copy, Debug)]
pub struct Retries {
    policy: Backoff,
    done: u32,
}

impl Retries {
    /// Counts one more retry and answers the pause to wait before it; `None` when the
    /// policy allows no more (the count then stays as it was).
    pub fn next_pause(&mut self) -> Option<Duration> {
        if self.policy.max_retries.is_some_and(|max| self.done >= max) {
            return None;
        }
        self.done = self.done.saturating_add(1);
        Some(self.policy.pause(self.done))
    }

    /// Retries made so far.
    pub fn done(&self) -> u32 {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pauses(policy: Backoff, n: usize) -> Vec<Option<u64>> {
        let mut retries = policy.start();
        (0..n)
            .map(|_| retries.next_pause().map(|p| p.as_millis() as u64))
            .collect()
    }

    #[test]
    fn fixed_pauses_stop_after_the_last_retry() {
        let policy = Backoff::fixed(Some(2), Duration::from_secs(1));
        assert_eq!(pauses(policy, 4), [Some(1000), Some(1000), None, None]);
        let mut retries = policy.start();
        while retries.next_pause().is_some() {}
        assert_eq!(retries.done(), 2);
        assert_eq!(pauses(Backoff::fixed(Some(0), Duration::ZERO), 1), [None]);
    }

    #[test]
    fn doubling_pauses_reach_the_cap() {
        let policy = Backoff::doubling(Some(6), Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(
            pauses(policy, 7),
            [
                Some(1000),
                Some(2000),
                Some(4000),
                Some(8000),
                Some(10_000),
                Some(10_000),
                None
            ]
        );
        assert_eq!(policy.pause(u32::MAX), Duration::from_secs(10));
        let uncapped = Backoff::doubling(None, Duration::from_millis(20), Duration::MAX);
        assert_eq!(uncapped.pause(4), Duration::from_millis(160));
    }

    #[test]
    fn unlimited_retries_never_run_out() {
        let mut retries = Backoff::fixed(None, Duration::ZERO).start();
        for _ in 0..1000 {
            assert_eq!(retries.next_pause(), Some(Duration::ZERO));
        }
        assert_eq!(retries.done(), 1000);
    }
}
