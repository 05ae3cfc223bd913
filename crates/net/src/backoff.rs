//! One retry policy for every retry and reconnect loop (a client's upload
//! the coordinator is too busy for, a waiting client whose coordinator
//! restarted, a node reconnecting): exponential pauses with jitter, so
//! peers that failed together do not all come back in the same instant.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Pauses between tries: steps of `first`, doubling up to `max`; each
/// pause is a random point between half its step and the whole of it
/// ("equal jitter"), so none is longer than `max`. At most `times` pauses
/// (`None`: without end).
pub fn pauses(
    first: Duration,
    max: Duration,
    times: Option<usize>,
) -> impl Iterator<Item = Duration> {
    // backon's jitter adds up to the delay itself: half steps, jittered,
    // land between half and all of each step.
    let builder = ExponentialBuilder::new()
        .with_min_delay(first / 2)
        .with_max_delay(max / 2)
        .with_jitter();
    match times {
        Some(n) => builder.with_max_times(n),
        None => builder.without_max_times(),
    }
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_cap_and_stop_after_times() {
        let first = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let taken: Vec<Duration> = pauses(first, max, Some(8)).collect();
        assert_eq!(taken.len(), 8);
        assert!(
            taken.iter().all(|p| *p >= first / 2 && *p <= max),
            "{taken:?}"
        );
        assert!(taken[0] <= first, "{taken:?}");
        assert!(taken[7] >= max / 2, "{taken:?}");
        assert_eq!(pauses(first, max, None).take(1000).count(), 1000);
    }
}
