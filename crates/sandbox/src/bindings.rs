//! Host bindings of the `suanli:gpu` WIT package, generated in one place.

wasmtime::component::bindgen!({
    world: "job",
    path: "../../guest-sdk/wit",
    imports: { default: trappable },
    with: {
        "suanli:gpu/compute.buffer": crate::host::BufferHandle,
        "suanli:gpu/compute.shader": crate::host::ShaderHandle,
        "suanli:gpu/compute.pipeline": crate::host::PipelineHandle,
    },
});

pub(crate) use suanli::gpu::compute;
