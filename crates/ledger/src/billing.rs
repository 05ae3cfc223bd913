//! The billing rules, as pure functions over integers.
//!
//! **Cost rule** (the only place money is computed):
//! `cost_micros = round_half_up(charged_gpu_ns × price_micros_per_gpu_second / 10⁹)`,
//! once per attempt, with the product in `u128` so it cannot overflow; a
//! result past `u64::MAX` saturates. Half a micro-unit rounds up.
//!
//! **Charged time**: the metered GPU time, capped at the job's GPU budget
//! (`--max-gpu-seconds`) and at its wall timeout (a job cannot keep the GPU
//! busy longer than it may run), so the dispatch in flight when a budget runs
//! out is recorded but never charged. Attempts the tenant does not cause
//! (`node_lost`, `provider_fault`) are charged nothing.

use suanli_proto::JobLimits;
use suanli_proto::usage::UsageRecord;

const NS_PER_S: u128 = 1_000_000_000;

/// Micro-units for `gpu_ns` at `price` micro-units per GPU-second, rounded half-up.
pub fn cost_micros(gpu_ns: u64, price_micros_per_s: u64) -> u64 {
    let product = u128::from(gpu_ns) * u128::from(price_micros_per_s);
    let rounded = (product + NS_PER_S / 2) / NS_PER_S;
    u64::try_from(rounded).unwrap_or(u64::MAX)
}

/// Micro-units as units with six decimals (exact: `2500000` → `2.500000`),
/// the one way amounts are shown.
pub fn units(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Whether the tenant pays for an attempt that ended with `outcome`.
pub fn tenant_pays(outcome: &str) -> bool {
    !matches!(outcome, "node_lost" | "provider_fault")
}

/// The most GPU time one attempt of a job with these limits can be charged.
pub fn charge_cap_ns(limits: &JobLimits) -> u64 {
    limits.max_gpu_ns.unwrap_or(u64::MAX).min(limits.timeout_ns)
}

/// GPU time charged for an attempt.
pub fn charged_gpu_ns(outcome: &str, gpu_ns: u64, limits: &JobLimits) -> u64 {
    if tenant_pays(outcome) {
        gpu_ns.min(charge_cap_ns(limits))
    } else {
        0
    }
}

/// The most one attempt of a job can cost at `price`: what a credit limit
/// must hold back while the job is queued or running.
pub fn worst_case_micros(limits: &JobLimits, price_micros_per_s: u64) -> u64 {
    cost_micros(charge_cap_ns(limits), price_micros_per_s)
}

/// Re-checks one billed record on its own: the node's signature over the
/// receipt (so the metered time, outcome and hashes are the node's), that
/// no more GPU time was billed than metered, and the cost rule. Records the
/// coordinator ended itself carry no signature and must cost nothing.
pub fn check_record(r: &UsageRecord) -> Result<(), String> {
    let what = format!("job {} attempt {}", r.receipt.job, r.receipt.attempt);
    match &r.signature {
        Some(sig) => r
            .receipt
            .verify(&r.node_key, sig)
            .map_err(|e| format!("{what}: {e}"))?,
        None if r.cost_micros == 0 && r.charged_gpu_ns == 0 => {}
        None => return Err(format!("{what}: billed without a signed receipt")),
    }
    if r.charged_gpu_ns > r.receipt.gpu_ns {
        return Err(format!(
            "{what}: billed {} GPU ns but the receipt metered {}",
            r.charged_gpu_ns, r.receipt.gpu_ns
        ));
    }
    if !tenant_pays(&r.receipt.outcome) && r.charged_gpu_ns != 0 {
        return Err(format!(
            "{what}: {} attempts are not billed",
            r.receipt.outcome
        ));
    }
    let cost = cost_micros(r.charged_gpu_ns, r.price_micros);
    if cost != r.cost_micros {
        return Err(format!(
            "{what}: cost {} does not follow the rule ({} ns at {} per GPU-second is {cost})",
            r.cost_micros, r.charged_gpu_ns, r.price_micros
        ));
    }
    Ok(())
}

/// The price class of an adapter: its name without parenthesised details
/// (driver versions), lower case, runs of other characters as one `-`.
/// "NVIDIA H200" → `nvidia-h200`; "llvmpipe (LLVM 15.0.6, 256 bits)" → `llvmpipe`.
pub fn gpu_class(adapter_name: &str) -> String {
    let mut out = String::new();
    let mut depth = 0u32;
    let mut dash = false;
    for c in adapter_name.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            c if c.is_ascii_alphanumeric() => {
                if dash && !out.is_empty() {
                    out.push('-');
                }
                dash = false;
                out.push(c.to_ascii_lowercase());
            }
            _ => dash = true,
        }
    }
    if out.is_empty() {
        "unknown".into()
    } else {
        out
    }
}

/// Whether `class` is a well-formed class name (what `gpu_class` produces).
pub fn valid_class(class: &str) -> bool {
    !class.is_empty()
        && class.len() <= 64
        && class
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The class whose price covers every class without its own.
pub const DEFAULT_CLASS: &str = "default";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_rule_edges() {
        assert_eq!(cost_micros(0, 1_000_000), 0);
        assert_eq!(cost_micros(1_000_000_000, 0), 0);
        // 1 ns at 1 unit/s is 10⁻³ micro: rounds to 0.
        assert_eq!(cost_micros(1, 1_000_000), 0);
        // 1 ns at 5e8 micro/s is exactly half a micro: rounds up.
        assert_eq!(cost_micros(1, 500_000_000), 1);
        assert_eq!(cost_micros(1, 499_999_999), 0);
        // The boundary in general: x.5 up, x.4999… down.
        assert_eq!(cost_micros(1_500_000_000, 1), 2); // 1.5 → 2
        assert_eq!(cost_micros(1_499_999_999, 1), 1); // 1.499999999 → 1
        assert_eq!(cost_micros(2_500_000_000, 1), 3); // half-up, not half-even
        // One GPU-second at the price is the price.
        assert_eq!(cost_micros(1_000_000_000, 2_500_000), 2_500_000);
        assert_eq!(cost_micros(50_000_000, 2_000_000), 100_000);
        // Huge values neither overflow nor lose precision.
        assert_eq!(cost_micros(u64::MAX, 1_000_000_000), u64::MAX);
        assert_eq!(cost_micros(u64::MAX, 1), 18_446_744_074); // 18446744073.709… → …074
        assert_eq!(cost_micros(u64::MAX, u64::MAX), u64::MAX, "saturates");
        assert_eq!(
            cost_micros(86_400 * 365 * 1_000_000_000, 3_000_000),
            86_400 * 365 * 3_000_000
        );
    }

    #[test]
    fn who_pays_and_how_much() {
        let limits = JobLimits {
            max_gpu_ns: Some(50_000_000),
            timeout_ns: 60_000_000_000,
            max_memory_bytes: 1 << 20,
        };
        for outcome in [
            "succeeded",
            "job_error",
            "trap",
            "timeout",
            "memory_limit",
            "gpu_budget_exceeded",
            "log_limit",
            "invalid_job",
            "cancelled",
        ] {
            assert!(tenant_pays(outcome), "{outcome}");
        }
        assert_eq!(charged_gpu_ns("node_lost", 10, &limits), 0);
        assert_eq!(charged_gpu_ns("provider_fault", 10, &limits), 0);
        assert_eq!(charged_gpu_ns("succeeded", 10, &limits), 10);
        assert_eq!(
            charged_gpu_ns("gpu_budget_exceeded", 73_000_000, &limits),
            50_000_000,
            "the overrun is not charged"
        );
        let no_budget = JobLimits {
            max_gpu_ns: None,
            timeout_ns: 1_000,
            ..limits
        };
        assert_eq!(charged_gpu_ns("timeout", 5_000, &no_budget), 1_000);
        assert_eq!(worst_case_micros(&limits, 2_000_000), 100_000);
    }

    #[test]
    fn classes_are_normalised_adapter_names() {
        assert_eq!(gpu_class("NVIDIA H200"), "nvidia-h200");
        assert_eq!(gpu_class("llvmpipe (LLVM 15.0.6, 256 bits)"), "llvmpipe");
        assert_eq!(
            gpu_class("NVIDIA GeForce RTX 4090 "),
            "nvidia-geforce-rtx-4090"
        );
        assert_eq!(
            gpu_class("AMD Radeon RX 7900 XTX (RADV NAVI31)"),
            "amd-radeon-rx-7900-xtx"
        );
        assert_eq!(gpu_class("  ((("), "unknown");
        for name in ["NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)", "é"] {
            assert!(valid_class(&gpu_class(name)), "{name}");
        }
        assert!(!valid_class("Has Space"));
        assert!(!valid_class(""));
    }
}
