//! Usage and billing reports: what `suanli usage`, `suanli invoice` and
//! `suanli price` exchange with the coordinator.

use serde::{Deserialize, Serialize};

use crate::{PublicKey, Receipt, Signature};

/// The price of one GPU class, in integer micro-units per GPU-second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub class: String,
    pub micros: u64,
    pub set_ms: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupBy {
    /// One total.
    #[default]
    Nothing,
    Tenant,
    /// By node token name: a provider's earnings.
    Node,
    Class,
    /// By the UTC day the attempt ended.
    Day,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s {
            "none" => GroupBy::Nothing,
            "tenant" => GroupBy::Tenant,
            "node" => GroupBy::Node,
            "class" => GroupBy::Class,
            "day" => GroupBy::Day,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Nothing => "none",
            GroupBy::Tenant => "tenant",
            GroupBy::Node => "node",
            GroupBy::Class => "class",
            GroupBy::Day => "day",
        }
    }
}

/// Which usage to report. Attempts are dated by when they ended;
/// `since_ms` is inclusive, `until_ms` exclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageQuery {
    pub tenant: Option<String>,
    pub node: Option<String>,
    pub class: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub group_by: GroupBy,
}

/// Sums over a set of ended attempts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageGroup {
    /// The group's tenant, node, class or day (`YYYY-MM-DD`); empty for a total.
    pub key: String,
    pub attempts: u64,
    /// GPU time as metered (including any overrun past a job's budget).
    pub gpu_ns: u64,
    /// GPU time billed.
    pub charged_gpu_ns: u64,
    pub wall_ns: u64,
    pub cost_micros: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    pub groups: Vec<UsageGroup>,
    pub total: UsageGroup,
}

/// One ended attempt as billed, with the receipt its node signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub tenant: String,
    /// The node token's name (the provider).
    pub node: String,
    pub node_key: PublicKey,
    pub gpu_class: String,
    pub price_micros: u64,
    /// `min(receipt.gpu_ns, charge_cap_ns)` when the tenant pays for the
    /// outcome, else 0.
    pub charged_gpu_ns: u64,
    /// The most GPU time the attempt could be charged, from its job's limits
    /// (`min(timeout, budget + max_dispatch)`; attempts recorded before
    /// schema version 3 keep the cap of their time, `min(budget, timeout)`).
    pub charge_cap_ns: u64,
    pub cost_micros: u64,
    /// For an unsigned record, the coordinator's description of the attempt:
    /// nothing was measured (`gpu_ns` and `wall_ns` are 0, and `metering`,
    /// NULL in the ledger, reads as `timestamp`, a placeholder).
    pub receipt: Receipt,
    /// `None` for attempts the coordinator ended itself (`node_lost`, a
    /// rejected receipt's `provider_fault`): there is no node statement to
    /// sign, and they cost nothing.
    pub signature: Option<Signature>,
}
