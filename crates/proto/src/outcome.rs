//! How an attempt ended and how its GPU time was measured, as enums: on the
//! wire, in receipts (by their canonical names), in the ledger (CHECK
//! constraints over the same names) and in the billing rules (a `match` with
//! no wildcard, so a new outcome cannot be billed by accident).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How one attempt of a job ended. The snake_case names are a public
/// contract: `--json` output, receipts' signed bytes, ledger rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// `run` returned `Err(message)`.
    JobError,
    /// The job trapped (panic, unreachable, stack overflow, forged handle, ...).
    Trap,
    /// The wall-time limit passed.
    Timeout,
    /// The job tried to grow its memory (or instances, tables) past the limit.
    MemoryLimit,
    /// Metered GPU time reached `max_gpu_ns`.
    GpuBudgetExceeded,
    /// The job wrote past the log limit and was configured to stop on it.
    LogLimit,
    /// Not a loadable `suanli:gpu/job` component.
    InvalidJob,
    /// Stopped on request (`suanli cancel`).
    Cancelled,
    /// The worker process running the job died (stack overflow in a native
    /// library, abort, driver segfault). Retried once on another node.
    Crashed,
    /// One dispatch ran past the dispatch limit; the slot was recovered.
    GpuHang,
    /// The node's connection ended while the attempt ran (coordinator-made).
    NodeLost,
    /// The node failed the attempt for reasons of its own, or its receipt was
    /// refused.
    ProviderFault,
}

impl Outcome {
    /// Every outcome, for exhaustive tests and the ledger's CHECK constraint.
    pub const ALL: [Outcome; 13] = [
        Outcome::Succeeded,
        Outcome::JobError,
        Outcome::Trap,
        Outcome::Timeout,
        Outcome::MemoryLimit,
        Outcome::GpuBudgetExceeded,
        Outcome::LogLimit,
        Outcome::InvalidJob,
        Outcome::Cancelled,
        Outcome::Crashed,
        Outcome::GpuHang,
        Outcome::NodeLost,
        Outcome::ProviderFault,
    ];

    /// The canonical name (also the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::JobError => "job_error",
            Outcome::Trap => "trap",
            Outcome::Timeout => "timeout",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::GpuBudgetExceeded => "gpu_budget_exceeded",
            Outcome::LogLimit => "log_limit",
            Outcome::InvalidJob => "invalid_job",
            Outcome::Cancelled => "cancelled",
            Outcome::Crashed => "crashed",
            Outcome::GpuHang => "gpu_hang",
            Outcome::NodeLost => "node_lost",
            Outcome::ProviderFault => "provider_fault",
        }
    }

    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an attempt's GPU time was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metering {
    /// GPU timestamps around each compute pass.
    Timestamp,
    /// Host time from submit to done (the device has no timestamp queries).
    Wall,
}

impl Metering {
    pub const ALL: [Metering; 2] = [Metering::Timestamp, Metering::Wall];

    pub fn as_str(self) -> &'static str {
        match self {
            Metering::Timestamp => "timestamp",
            Metering::Wall => "wall",
        }
    }

    pub fn parse(name: &str) -> Option<Metering> {
        Metering::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl fmt::Display for Metering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{o}\""));
        }
        for m in Metering::ALL {
            assert_eq!(Metering::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!(Outcome::parse("Succeeded"), None);
        assert_eq!(Metering::parse(""), None);
    }
}
