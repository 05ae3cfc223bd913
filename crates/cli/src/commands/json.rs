//! The `--json` objects of the cluster commands. Field names are a public
//! contract, documented in the README.

use serde_json::{Value, json};
use suanli_proto::{AttemptView, JobView, NodeView};

pub fn job(v: &JobView) -> Value {
    json!({
        "id": v.id,
        "tenant": v.tenant,
        "state": v.state.as_str(),
        "outcome": v.outcome,
        "error": v.error,
        "waiting_reason": v.waiting_reason,
        "module": v.spec.module.to_hex(),
        "input": v.spec.input.to_hex(),
        "output": v.output.map(|h| h.to_hex()),
        "output_bytes": v.output_bytes,
        "min_gpu_memory": v.spec.requirements.min_gpu_memory,
        "max_gpu_ns": v.spec.limits.max_gpu_ns,
        "timeout_ns": v.spec.limits.timeout_ns,
        "max_memory_bytes": v.spec.limits.max_memory_bytes,
        "max_dispatch_ns": v.spec.limits.max_dispatch_ns,
        "max_attempts": v.spec.max_attempts,
        "submitted_ms": v.submitted_ms,
        "finished_ms": v.finished_ms,
        "attempts": v.attempts.iter().map(attempt).collect::<Vec<_>>(),
    })
}

pub fn attempt(a: &AttemptView) -> Value {
    json!({
        "attempt": a.attempt,
        "node_id": a.node_id,
        "node": a.node,
        "outcome": a.outcome,
        "error": a.error,
        "gpu_ns": a.gpu_ns,
        "wall_ns": a.wall_ns,
        "metering": a.metering,
        "started_ms": a.started_ms,
        "ended_ms": a.ended_ms,
        "gpu_class": a.gpu_class,
        "price_micros": a.price_micros,
        "charged_gpu_ns": a.charged_gpu_ns,
        "cost_micros": a.cost_micros,
    })
}

pub fn node(n: &NodeView) -> Value {
    json!({
        "id": n.id,
        "name": n.name,
        "adapter": n.gpu.name,
        "gpu_class": n.gpu_class,
        "public_key": n.public_key.to_hex(),
        "backend": n.gpu.backend,
        "device_type": n.gpu.device_type,
        "driver": n.gpu.driver,
        "metering": n.gpu.metering,
        "max_buffer_size": n.gpu.max_buffer_size,
        "features": n.gpu.features,
        "slots": n.slots,
        "allowed_slots": n.allowed_slots,
        "caps": n.caps,
        "running": n.running,
        "draining": n.draining,
        "quarantine": n.quarantine,
        "simulated_faults": n.simulated_faults.map(|s| serde_json::json!({
            "wrong_output_ppm": s.wrong_output_ppm,
            "gpu_time_permille": s.gpu_time_permille,
        })),
        "jobs_run": n.jobs_run,
        "connected": n.connected,
        "connected_ms": n.connected_ms,
        "devices": n.devices.iter().map(device).collect::<Vec<_>>(),
    })
}

/// One GPU of a node, as `nodes --json` lists it.
pub fn device(d: &suanli_proto::DeviceInfo) -> Value {
    json!({
        "index": d.index,
        "name": d.name,
        "pci_bus_id": d.pci_bus_id,
        "slots": d.slots,
    })
}

/// One GPU of a node, as the `nodes` table lists it.
pub fn device_line(d: &suanli_proto::DeviceInfo) -> String {
    let bus = if d.pci_bus_id.is_empty() {
        "no PCI bus id"
    } else {
        &d.pci_bus_id
    };
    format!("GPU {}: {} ({bus}), {} slots", d.index, d.name, d.slots)
}

/// One line per attempt, for people.
pub fn attempt_line(a: &AttemptView) -> String {
    format!(
        "  attempt {} on node {} ({}, {}): {} — GPU {}, wall {}, cost {} ({} GPU-s at {}/GPU-s){}",
        a.attempt,
        a.node_id,
        a.node,
        a.gpu_class,
        a.outcome.map_or("running", |o| o.as_str()),
        super::units::ns(a.gpu_ns),
        super::units::ns(a.wall_ns),
        super::billing::micros(a.cost_micros),
        super::billing::seconds(a.charged_gpu_ns),
        super::billing::micros(a.price_micros),
        a.error
            .as_deref()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default()
    )
}

pub fn job_text(v: &JobView) -> String {
    let mut out = format!("job {} ({}): {}", v.id, v.tenant, v.state.as_str());
    if let Some(o) = &v.outcome {
        out.push_str(&format!(", outcome {o}"));
    }
    if let Some(r) = &v.waiting_reason {
        out.push_str(&format!(" — {r}"));
    }
    if let Some(e) = &v.error {
        out.push_str(&format!("\n  error: {e}"));
    }
    out.push_str(&format!(
        "\n  submitted {}{}",
        super::units::utc(v.submitted_ms),
        v.finished_ms
            .map(|f| format!(", finished {}", super::units::utc(f)))
            .unwrap_or_default()
    ));
    if v.output.is_some() {
        out.push_str(&format!(
            "\n  output: {} ({} bytes)",
            super::units::Bytes(v.output_bytes),
            v.output_bytes
        ));
    }
    for a in &v.attempts {
        out.push('\n');
        out.push_str(&attempt_line(a));
    }
    out
}
