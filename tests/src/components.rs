//! Job components built by hand from core modules (for attacks the Rust
//! toolchain would not emit: many memories, random bodies).

use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction, MemorySection,
    MemoryType, Module, TypeSection, ValType,
};

use crate::workspace_root;

/// A `job` component whose core module defines `count` memories of `pages`
/// 64 KiB pages each (multi-memory); `run` itself is `unreachable`.
pub fn many_memories(count: u32, pages: u64) -> Vec<u8> {
    let memory = MemoryType {
        minimum: pages,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    };
    as_job_component(&job_core_module(&vec![memory; count as usize]))
}

/// A core module with the exports a `job` component needs: `run` with the
/// canonical ABI's signature for `func(list<u8>) -> result<list<u8>,
/// string>`, `cabi_realloc` (both `unreachable`) and `memories`, the first
/// exported as `memory`.
pub fn job_core_module(memories: &[MemoryType]) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types
        .ty()
        .function([ValType::I32, ValType::I32], [ValType::I32]);
    types.ty().function(
        [ValType::I32, ValType::I32, ValType::I32, ValType::I32],
        [ValType::I32],
    );
    module.section(&types);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    funcs.function(1);
    module.section(&funcs);
    let mut section = MemorySection::new();
    for memory in memories {
        section.memory(*memory);
    }
    module.section(&section);
    let mut exports = ExportSection::new();
    exports.export("run", ExportKind::Func, 0);
    exports.export("cabi_realloc", ExportKind::Func, 1);
    exports.export("memory", ExportKind::Memory, 0);
    module.section(&exports);
    let mut code = CodeSection::new();
    for _ in 0..2 {
        let mut f = Function::new([]);
        f.instruction(&Instruction::Unreachable);
        f.instruction(&Instruction::End);
        code.function(&f);
    }
    module.section(&code);
    module.finish()
}

/// A core module with the job's exports (`run`, `cabi_realloc`, `memory`),
/// wrapped as a `suanli:gpu/job` component; `None` if it does not fit.
pub fn try_job_component(module: &[u8]) -> Option<Vec<u8>> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(workspace_root().join("guest-sdk/wit"))
        .expect("the job WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("job"))
        .expect("world job");
    let mut module = module.to_vec();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .ok()?;
    wit_component::ComponentEncoder::default()
        .module(&module)
        .ok()?
        .validate(true)
        .encode()
        .ok()
}

/// [`try_job_component`] for modules known to fit.
pub fn as_job_component(module: &[u8]) -> Vec<u8> {
    try_job_component(module).expect("the module becomes a job component")
}
