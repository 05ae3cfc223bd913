//! The billing rules, as pure functions over integers: no SQLite and no
//! I/O, so the ledger, the CLI and any client share one definition.
//!
//! **Cost rule** (the only place money is computed):
//! `cost_micros = round_half_up(charged_gpu_ns × price_micros_per_gpu_second / 10⁹)`,
//! once per attempt, with the product in `u128` so it cannot overflow; a
//! result past `u64::MAX` saturates. Half a micro-unit rounds up.
//!
//! **Charged time**: the metered GPU time, capped at
//! `min(timeout, budget + max_dispatch)` (just `timeout` without a budget),
//! with saturating arithmetic. The GPU budget (`--max-gpu-seconds`) is a stop
//! signal: no dispatch starts once it is spent, but the dispatch in flight
//! when it runs out kept the device busy for the tenant, and may run up to
//! `max_dispatch` (`--max-dispatch-seconds`) before the node ends it
//! `gpu_hang`; so its GPU time is charged, up to the cap. A dispatch still
//! running at the deadline is metered once the device is idle and charged
//! the same way. The timeout bounds the charge too: a job cannot be charged
//! more GPU time than it may run. The cap is known before the job starts,
//! which is what credit-limit admission holds ([`worst_case_micros`]).
//!
//! **Who pays** ([`tenant_pays`]): the tenant, for every outcome its job
//! causes or could have caused, including `crashed` (only the GPU time of
//! dispatches the node measured before the worker died) and `gpu_hang` (its
//! own kernel hung); not for `node_lost` or `provider_fault`.

use suanli_proto::usage::UsageRecord;
use suanli_proto::{JobLimits, Outcome};

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

/// Why a typed amount is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{0:?} is not an amount: write units with up to six decimals, like 2.5 or 0.000001")]
    Malformed(String),
    #[error("{0:?} has more than six decimals: amounts are exact to the micro-unit (0.000001)")]
    TooPrecise(String),
    #[error("{0:?} is too large: at most {max} units", max = units(u64::MAX))]
    TooLarge(String),
}

/// Units as a person types them (`2.5`, `50`, `0.000001`) to micro-units,
/// exactly: the inverse of [`units`]. No sign, exponent or separators; more
/// than six decimals is refused rather than rounded.
pub fn parse_units(text: &str) -> Result<u64, AmountError> {
    let malformed = || AmountError::Malformed(text.to_owned());
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(malformed());
    }
    if text.ends_with('.') {
        return Err(malformed());
    }
    if fraction.len() > 6 {
        return Err(AmountError::TooPrecise(text.to_owned()));
    }
    let too_large = || AmountError::TooLarge(text.to_owned());
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let micros: u64 = format!("{fraction:0<6}").parse().map_err(|_| malformed())?;
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(micros))
        .ok_or_else(too_large)
}

/// Nanoseconds as seconds with nine decimals (exact: `1500000000` → `1.500000000`).
pub fn seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Whether the tenant pays for an attempt that ended with `outcome`.
///
/// A `match` with no wildcard: a new outcome does not compile until someone
/// decides who pays for it.
/// - The job's own doing (`succeeded` … `cancelled`): the tenant pays.
/// - `crashed`: the worker process died under the job. The tenant pays for
///   the dispatches the node measured before it died (a crash can be a
///   hostile job's doing, and the provider did run its kernels); the node
///   reports only completed, measured dispatches. Retried once, elsewhere.
/// - `gpu_hang`: the job's own kernel ran past `max_dispatch`; the tenant
///   pays (up to the cap) and the job is not retried.
/// - `node_lost`, `provider_fault`: the provider's side failed; free, retried.
pub fn tenant_pays(outcome: Outcome) -> bool {
    match outcome {
        Outcome::Succeeded
        | Outcome::JobError
        | Outcome::Trap
        | Outcome::Timeout
        | Outcome::MemoryLimit
        | Outcome::GpuBudgetExceeded
        | Outcome::LogLimit
        | Outcome::InvalidJob
        | Outcome::Cancelled
        | Outcome::Crashed
        | Outcome::GpuHang => true,
        Outcome::NodeLost | Outcome::ProviderFault => false,
    }
}

/// The most GPU time one attempt of a job with these limits can be charged:
/// `min(timeout, budget + max_dispatch)`, or the timeout without a budget.
pub fn charge_cap_ns(limits: &JobLimits) -> u64 {
    match limits.max_gpu_ns {
        Some(budget) => limits
            .timeout_ns
            .min(budget.saturating_add(limits.max_dispatch_ns)),
        None => limits.timeout_ns,
    }
}

/// GPU time charged for an attempt that metered `gpu_ns` under a cap of
/// `cap_ns` (see [`charge_cap_ns`]).
pub fn charged_under_cap(outcome: Outcome, gpu_ns: u64, cap_ns: u64) -> u64 {
    if tenant_pays(outcome) {
        gpu_ns.min(cap_ns)
    } else {
        0
    }
}

/// GPU time charged for an attempt of a job with `limits`.
pub fn charged_gpu_ns(outcome: Outcome, gpu_ns: u64, limits: &JobLimits) -> u64 {
    charged_under_cap(outcome, gpu_ns, charge_cap_ns(limits))
}

/// The most one attempt of a job can cost at `price`: what a credit limit
/// must hold back while the job is queued or running.
pub fn worst_case_micros(limits: &JobLimits, price_micros_per_s: u64) -> u64 {
    cost_micros(charge_cap_ns(limits), price_micros_per_s)
}

/// Re-checks one billed record on its own: the node's signature over the
/// receipt (so the metered time, outcome and hashes are the node's), that
/// the charged time follows the rule (`min(metered, cap)` when the tenant
/// pays, else 0), and the cost rule. Records the coordinator ended itself
/// carry no signature and must cost nothing.
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
    let outcome = r.receipt.outcome;
    if !tenant_pays(outcome) && r.charged_gpu_ns != 0 {
        return Err(format!("{what}: {outcome} attempts are not billed"));
    }
    let expected = charged_under_cap(outcome, r.receipt.gpu_ns, r.charge_cap_ns);
    if r.charged_gpu_ns != expected {
        return Err(format!(
            "{what}: billed {} GPU ns; the rule gives {expected} ({} metered, capped at {})",
            r.charged_gpu_ns, r.receipt.gpu_ns, r.charge_cap_ns
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
    fn amounts_parse_exactly_to_micro_units_and_round_trip() {
        for (text, micros) in [
            ("2.5", 2_500_000),
            ("50", 50_000_000),
            ("0.000001", 1),
            (".5", 500_000),
            ("0", 0),
            ("007.010000", 7_010_000),
            ("18446744073709.551615", u64::MAX),
        ] {
            assert_eq!(parse_units(text), Ok(micros), "{text}");
            assert_eq!(parse_units(&units(micros)), Ok(micros));
        }
        for bad in [
            "", ".", "5.", "-1", "+1", "1e3", "1,5", "1 000", "abc", "1.2.3", " 1",
        ] {
            assert!(
                matches!(parse_units(bad), Err(AmountError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_units("1.0000001"),
            Err(AmountError::TooPrecise(_))
        ));
        for big in [
            "18446744073709.551616",
            "18446744073710",
            "99999999999999999999",
        ] {
            assert!(
                matches!(parse_units(big), Err(AmountError::TooLarge(_))),
                "{big}"
            );
        }
    }

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

    fn limits(budget: Option<u64>, timeout: u64, dispatch: u64) -> JobLimits {
        JobLimits {
            max_gpu_ns: budget,
            timeout_ns: timeout,
            max_memory_bytes: 1 << 20,
            max_dispatch_ns: dispatch,
        }
    }

    #[test]
    fn who_pays_is_decided_for_every_outcome() {
        let paid: Vec<Outcome> = Outcome::ALL
            .into_iter()
            .filter(|o| tenant_pays(*o))
            .collect();
        assert_eq!(
            paid,
            [
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
            ]
        );
        let l = limits(Some(50_000_000), 60_000_000_000, 10_000_000_000);
        for free in [Outcome::NodeLost, Outcome::ProviderFault] {
            assert!(!tenant_pays(free));
            assert_eq!(charged_gpu_ns(free, 10, &l), 0);
            assert_eq!(charged_gpu_ns(free, u64::MAX, &l), 0);
        }
        assert_eq!(charged_gpu_ns(Outcome::Succeeded, 10, &l), 10);
        assert_eq!(charged_gpu_ns(Outcome::Crashed, 7_000, &l), 7_000);
    }

    /// The cap `min(timeout, budget + max_dispatch)` at its edges, with the
    /// overrun of the dispatch in flight charged up to it.
    #[test]
    fn the_charge_cap_with_overruns_at_the_edges() {
        const S: u64 = 1_000_000_000;
        let budget = 50_000_000;
        let l = limits(Some(budget), 60 * S, 10 * S);
        let cap = budget + 10 * S;
        assert_eq!(charge_cap_ns(&l), cap);
        let charged = |gpu| charged_gpu_ns(Outcome::GpuBudgetExceeded, gpu, &l);
        // Budget exactly hit, and overrun by 1 ns: all charged.
        assert_eq!(charged(budget), budget);
        assert_eq!(charged(budget + 1), budget + 1);
        // The dispatch in flight ran to the dispatch limit: all charged.
        assert_eq!(charged(cap), cap);
        // Past budget + max_dispatch: the cap.
        assert_eq!(charged(cap + 1), cap);
        assert_eq!(charged(u64::MAX), cap);
        assert_eq!(
            charged_gpu_ns(Outcome::GpuHang, 20 * S, &l),
            cap,
            "a hung kernel is charged up to the cap"
        );
        // A timeout smaller than budget + dispatch caps the charge.
        let short = limits(Some(budget), S, 10 * S);
        assert_eq!(charge_cap_ns(&short), S);
        assert_eq!(charged_gpu_ns(Outcome::Timeout, S + 1, &short), S);
        assert_eq!(charged_gpu_ns(Outcome::Timeout, S - 1, &short), S - 1);
        // Equal: budget + dispatch == timeout.
        let equal = limits(Some(S), 11 * S, 10 * S);
        assert_eq!(charge_cap_ns(&equal), 11 * S);
        // No budget: the timeout alone.
        let none = limits(None, 1_000, 10 * S);
        assert_eq!(charge_cap_ns(&none), 1_000);
        assert_eq!(charged_gpu_ns(Outcome::Timeout, 5_000, &none), 1_000);
        // u64::MAX anywhere saturates instead of wrapping.
        let huge = limits(Some(u64::MAX), u64::MAX, u64::MAX);
        assert_eq!(charge_cap_ns(&huge), u64::MAX);
        assert_eq!(
            charged_gpu_ns(Outcome::Succeeded, u64::MAX, &huge),
            u64::MAX
        );
        let wrap = limits(Some(u64::MAX - 1), u64::MAX - 5, 2);
        assert_eq!(charge_cap_ns(&wrap), u64::MAX - 5, "no wrap to 0");
        assert_eq!(charge_cap_ns(&limits(None, u64::MAX, 0)), u64::MAX);
        // A zero budget still pays for the one dispatch it could start.
        assert_eq!(charge_cap_ns(&limits(Some(0), 60 * S, 10 * S)), 10 * S);
    }

    #[test]
    fn the_worst_case_is_the_cap_at_the_price() {
        const S: u64 = 1_000_000_000;
        // 50 ms budget + 10 s dispatch at 2 units/s: 20.1 units.
        let l = limits(Some(50_000_000), 60 * S, 10 * S);
        assert_eq!(worst_case_micros(&l, 2_000_000), 20_100_000);
        // Timeout 50 ms under budget + dispatch: 0.1 units.
        let short = limits(Some(S), 50_000_000, 10 * S);
        assert_eq!(worst_case_micros(&short, 2_000_000), 100_000);
        // No budget: the timeout.
        assert_eq!(
            worst_case_micros(&limits(None, 3 * S, 10 * S), 1_000_000),
            3_000_000
        );
        assert_eq!(
            worst_case_micros(&limits(Some(u64::MAX), u64::MAX, u64::MAX), u64::MAX),
            u64::MAX
        );
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
