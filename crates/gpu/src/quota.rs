/// Per-job limits on GPU objects. Every limit is explicit so a job from a
/// stranger cannot exhaust a provider's GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Bytes of all live buffers of the job together. Default 1 GiB.
    pub max_buffer_bytes: u64,
    /// Live buffers + shaders + pipelines. Default 4096.
    pub max_objects: u32,
    /// `x * y * z` of one dispatch. Default 2^24 (16.7 M workgroups).
    pub max_workgroups_per_dispatch: u64,
    /// Bytes of WGSL source in one shader. Default 1 MiB.
    pub max_shader_bytes: usize,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            max_buffer_bytes: 1 << 30,
            max_objects: 4096,
            max_workgroups_per_dispatch: 1 << 24,
            max_shader_bytes: 1 << 20,
        }
    }
}
