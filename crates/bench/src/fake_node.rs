//! In-process nodes that answer every assignment at once with a validly
//! signed receipt: load through the coordinator alone (scheduler, ledger,
//! protocol), without sandbox or GPU time in the way.

use suanli_net::Client;
use suanli_net::frame::{read_frame, write_frame};
use suanli_proto::{
    Assignment, AttemptResult, FromNode, GpuInfo, Metering, NodeCaps, NodeInfo, Outcome, Receipt,
    ReceiptSigner, ToNode,
};

/// A plausible GPU for fake nodes (no real device behind it).
pub fn fake_gpu() -> GpuInfo {
    GpuInfo {
        name: "Fake GPU".into(),
        backend: "vulkan".into(),
        device_type: "discrete".into(),
        driver: "fake".into(),
        metering: Metering::Timestamp,
        max_buffer_size: 1 << 30,
        max_storage_buffer_binding_size: 1 << 27,
        max_compute_workgroups_per_dimension: 65535,
        features: vec![],
    }
}

/// The receipt an honest node signs for assignment `a` of session
/// `node_id` (times 0 where it does not matter: the coordinator only
/// refuses GPU time above the wall time since assignment).
pub fn honest_receipt(
    node_id: u64,
    a: &Assignment,
    outcome: Outcome,
    gpu_ns: u64,
    output: Option<suanli_proto::Hash>,
) -> Receipt {
    Receipt {
        job: a.job,
        attempt: a.attempt,
        node_id,
        module: a.spec.module,
        input: a.spec.input,
        output,
        gpu_ns,
        wall_ns: gpu_ns,
        outcome,
        metering: Metering::Timestamp,
        started_ms: 1,
        ended_ms: 2,
    }
}

/// Registers on `client` (a node token's connection) with `slots` and the
/// key from `seed`, then answers every assignment `succeeded` (0 GPU ns, no
/// output) until the coordinator closes the stream.
pub async fn serve_instantly(
    client: Client,
    seed: u8,
    slots: u32,
) -> Result<(), suanli_net::NetError> {
    let signer = ReceiptSigner::from_seed(&[seed; 32]);
    let info = NodeInfo {
        gpu: fake_gpu(),
        slots,
        caps: NodeCaps::default(),
        public_key: signer.public_key(),
        in_flight: Vec::new(),
        devices: Vec::new(),
        simulated_faults: None,
    };
    let (mut send, mut recv, node_id, _) = client.register(info).await?;
    while let Some(message) = read_frame::<ToNode>(&mut recv).await? {
        let ToNode::Run(a) = message else { continue };
        let receipt = honest_receipt(node_id, &a, Outcome::Succeeded, 0, None);
        let result = AttemptResult {
            signature: signer.sign(&receipt),
            receipt,
            error: None,
            output_bytes: 0,
        };
        write_frame(&mut send, &FromNode::Finished(Box::new(result))).await?;
    }
    Ok(())
}
