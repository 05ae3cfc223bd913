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
    /// Private and function-local memory one invocation may declare.
    /// Default 64 KiB (a 256 MiB private array hung lavapipe's compiler).
    pub max_private_bytes: u64,
    /// Nesting depth of one WGSL expression. Default 512 (a 100,000-deep
    /// chain overflowed the stack in shader compilation).
    pub max_expression_depth: u32,
    /// Nesting depth of a shader: blocks, `else if` branches (naga nests each
    /// inside the previous `else`), brackets, calls and template lists count
    /// together; also how deep types nest, and blocks through inlined calls.
    /// Default 127, WGSL's own limit on nested braces (the function body is
    /// level 1): naga and the driver recurse once per level, and a
    /// 2,000-branch `else if` chain overflowed the stack and aborted the
    /// process.
    pub max_nesting_depth: u32,
    /// Expressions and statements of a function that calls others, once
    /// every call in it is inlined, as drivers do. Default 2^19, about what
    /// 1 MiB of WGSL spells out without calls: 22 functions that each call
    /// the previous one twice (1.4 KB) expanded to millions of copies and got
    /// the process killed for memory inside pipeline creation; at 2^20 the
    /// driver still took 1.8 s and 500 MB.
    pub max_inlined_size: u64,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            max_buffer_bytes: 1 << 30,
            max_objects: 4096,
            max_workgroups_per_dispatch: 1 << 24,
            max_shader_bytes: 1 << 20,
            max_private_bytes: 64 << 10,
            max_expression_depth: 512,
            max_nesting_depth: 127,
            max_inlined_size: 1 << 19,
        }
    }
}
