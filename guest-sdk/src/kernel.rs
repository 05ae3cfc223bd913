use crate::bindings::suanli::gpu::compute;
use crate::{Buffer, Result};

/// A compiled compute entry point of a WGSL module.
///
/// Bindings are positional: `bindings[i]` of [`Kernel::dispatch`] is
/// `@group(0) @binding(i)` in the shader.
pub struct Kernel {
    pipeline: compute::Pipeline,
}

impl Kernel {
    /// Compiles `wgsl` and builds a pipeline for `entry_point`. Invalid WGSL
    /// comes back as an error carrying naga's diagnostic.
    pub fn new(wgsl: &str, entry_point: &str) -> Result<Kernel> {
        let shader = compute::Shader::compile(wgsl)?;
        let pipeline = compute::Pipeline::create(&shader, entry_point)?;
        Ok(Kernel { pipeline })
    }

    /// Runs the kernel over `workgroups` = `[x, y, z]` and waits for it.
    pub fn dispatch(&self, bindings: &[&Buffer], workgroups: [u32; 3]) -> Result<()> {
        let raw: Vec<&compute::Buffer> = bindings.iter().map(|b| &b.raw).collect();
        let [x, y, z] = workgroups;
        compute::dispatch(&self.pipeline, &raw, x, y, z)?;
        Ok(())
    }
}

/// Workgroup counts covering `items` invocations with `workgroup_size`
/// invocations each. Above 65535 workgroups the grid folds into `y`; the
/// shader then computes its index as `id.x + id.y * num_workgroups.x * size`.
pub fn grid(items: usize, workgroup_size: u32) -> [u32; 3] {
    const MAX_PER_DIM: u64 = 65535;
    let groups = (items as u64).div_ceil(u64::from(workgroup_size.max(1)));
    if groups <= MAX_PER_DIM {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(MAX_PER_DIM);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}
