//! Static checks on a job's WGSL that wgpu leaves to the driver, run before
//! wgpu sees the shader. Found by the hostile-shader corpus: a 256 MiB private
//! array made lavapipe's compiler hang inside pipeline creation (a host call
//! the job's deadline cannot interrupt); a 100,000-term `a + 1u + 1u …`, and
//! a 2,000-branch `if … else if …` chain, overflowed the thread's stack in
//! shader compilation and aborted the node; 50 functions that each call the
//! next from 100 blocks deep overflowed it in pipeline creation; and 22
//! functions that each call the previous one twice (1.4 KB of WGSL) got the
//! process killed for memory in the driver, which inlines every call.
//!
//! The text checks (`text.rs`) come first because naga's own parser recurses;
//! the checks on the parsed module are loops over naga's arenas, in which
//! operands, parts and callees always precede their users.

mod text;

use naga::{Expression, Function, Handle, Module, Statement};

use crate::{ErrorKind, GpuError};

/// What one shader may ask for. Part of the pipeline cache's key: a verdict
/// holds only under the limits it was reached with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ShaderLimits {
    /// Private + function-local memory per invocation.
    pub(crate) max_private_bytes: u64,
    /// Workgroup memory (the device's `max_compute_workgroup_storage_size`).
    pub(crate) max_workgroup_bytes: u64,
    /// Nesting depth of one expression, and operators in one statement.
    pub(crate) max_expression_depth: u32,
    /// Nesting of blocks, `else if` branches, brackets and template lists in
    /// the text; of types; and of blocks through calls.
    pub(crate) max_nesting_depth: u32,
    /// Expressions and statements of one function with every call inlined.
    pub(crate) max_inlined_size: u64,
}

fn refuse(message: String) -> GpuError {
    GpuError::new(ErrorKind::InvalidShader, message)
}

/// `Ok` if the shader is within `limits`, or if it does not parse (wgpu
/// reports parse errors with better messages).
pub(crate) fn check(wgsl: &str, limits: &ShaderLimits) -> Result<(), GpuError> {
    let code = text::strip_comments(wgsl);
    text::check_nesting(&code, limits.max_nesting_depth)?;
    text::check_statements(&code, limits.max_expression_depth)?;
    let Ok(module) = naga::front::wgsl::parse_str(wgsl) else {
        return Ok(());
    };
    check_depth(&module, limits.max_expression_depth)?;
    check_types(&module, limits.max_nesting_depth)?;
    check_calls(&module, limits)?;
    check_memory(&module, limits)
}

fn check_memory(module: &Module, limits: &ShaderLimits) -> Result<(), GpuError> {
    let mut layouter = naga::proc::Layouter::default();
    if layouter.update(module.to_ctx()).is_err() {
        return Err(refuse("shader types are too large to lay out".into()));
    }
    let size = |ty: Handle<naga::Type>| u64::from(layouter[ty].size);
    let mut private = 0u64;
    let mut workgroup = 0u64;
    for (_, var) in module.global_variables.iter() {
        match var.space {
            naga::AddressSpace::Private => private = private.saturating_add(size(var.ty)),
            naga::AddressSpace::WorkGroup => workgroup = workgroup.saturating_add(size(var.ty)),
            _ => {}
        }
    }
    // Conservatively, as if every function were live in one call chain.
    for f in functions(module) {
        for (_, local) in f.local_variables.iter() {
            private = private.saturating_add(size(local.ty));
        }
    }
    if private > limits.max_private_bytes {
        return Err(refuse(format!(
            "the shader asks for {private} bytes of private and function memory per invocation; the limit is {}",
            limits.max_private_bytes
        )));
    }
    if workgroup > limits.max_workgroup_bytes {
        return Err(refuse(format!(
            "the shader asks for {workgroup} bytes of workgroup memory; this device allows {}",
            limits.max_workgroup_bytes
        )));
    }
    Ok(())
}

/// Every function body of the module, entry points included.
fn functions(module: &Module) -> impl Iterator<Item = &Function> {
    module
        .functions
        .iter()
        .map(|(_, f)| f)
        .chain(module.entry_points.iter().map(|e| &e.function))
}

/// How deep types nest (`array<array<…>>`, structs in structs, which the text
/// scan cannot see): naga's writers and the driver walk types recursively.
fn check_types(module: &Module, max: u32) -> Result<(), GpuError> {
    use naga::TypeInner as T;
    let mut depth: Vec<u32> = Vec::with_capacity(module.types.len());
    for (_, ty) in module.types.iter() {
        let of = |h: Handle<naga::Type>| depth.get(h.index()).copied().unwrap_or(0);
        let parts = match &ty.inner {
            T::Pointer { base, .. } | T::Array { base, .. } | T::BindingArray { base, .. } => {
                of(*base)
            }
            T::Struct { members, .. } => members.iter().map(|m| of(m.ty)).max().unwrap_or(0),
            _ => 0,
        };
        let d = parts + 1;
        if d > max {
            return Err(refuse(format!(
                "a type nests {d} levels deep (arrays of arrays, structs in structs); \
                 the limit is {max} (max_nesting_depth)"
            )));
        }
        depth.push(d);
    }
    Ok(())
}

/// One function body on its own: its size, its deepest block, and its calls
/// with the block depth of each call site. Walked with a stack, not recursion.
struct Body {
    size: u64,
    depth: u32,
    calls: Vec<(Handle<Function>, u32)>,
}

fn body(f: &Function) -> Body {
    let mut b = Body {
        size: f.expressions.len() as u64,
        depth: 0,
        calls: Vec::new(),
    };
    let mut blocks = vec![(&f.body, 0u32)];
    while let Some((block, depth)) = blocks.pop() {
        b.size = b.size.saturating_add(block.len() as u64);
        b.depth = b.depth.max(depth);
        let inner = depth + 1;
        for statement in block.iter() {
            match statement {
                Statement::Call { function, .. } => b.calls.push((*function, depth)),
                Statement::Block(block) => blocks.push((block, inner)),
                Statement::If { accept, reject, .. } => {
                    blocks.push((accept, inner));
                    blocks.push((reject, inner));
                }
                Statement::Switch { cases, .. } => {
                    blocks.extend(cases.iter().map(|c| (&c.body, inner)));
                }
                Statement::Loop {
                    body, continuing, ..
                } => {
                    blocks.push((body, inner));
                    blocks.push((continuing, inner));
                }
                _ => {}
            }
        }
    }
    b
}

/// Drivers inline every call (lavapipe does), so a function's blocks nest as
/// deep as the blocks around each of its call sites plus the callee's, and a
/// function is as large as all the copies of its callees together: without
/// this bound 1.4 KB of WGSL expands exponentially. The size limit applies
/// only to functions that call others: it bounds what calls multiply, and
/// the source size quota bounds the rest. Both are computed in one
/// pass over the functions, whose callees always come first (a call to a
/// later function is recursion, which validation refuses).
fn check_calls(module: &Module, limits: &ShaderLimits) -> Result<(), GpuError> {
    let (mut depth, mut size) = (Vec::new(), Vec::new());
    for f in functions(module) {
        let b = body(f);
        let (mut d, mut s) = (b.depth, b.size);
        let has_calls = !b.calls.is_empty();
        for (callee, site) in b.calls {
            let i = callee.index();
            let callee_depth = depth.get(i).copied().unwrap_or(0);
            d = d.max(site.saturating_add(1).saturating_add(callee_depth));
            s = s.saturating_add(size.get(i).copied().unwrap_or(0));
        }
        let name = f.name.as_deref().unwrap_or("?");
        if d > limits.max_nesting_depth {
            return Err(refuse(format!(
                "function `{name}` nests blocks {d} levels deep once the functions it calls are \
                 inlined (each call counts a level); the limit is {} (max_nesting_depth)",
                limits.max_nesting_depth
            )));
        }
        // A function without calls is only as large as its source allows.
        if has_calls && s > limits.max_inlined_size {
            return Err(refuse(format!(
                "function `{name}` grows to {s} expressions and statements once the functions \
                 it calls are inlined, as drivers do; the limit is {} (max_inlined_size)",
                limits.max_inlined_size
            )));
        }
        depth.push(d);
        size.push(s);
    }
    Ok(())
}

/// The deepest expression tree of any function, computed in one pass over
/// each expression arena (operands always precede their users), so this
/// check itself cannot overflow a stack.
fn check_depth(module: &Module, max: u32) -> Result<(), GpuError> {
    for f in functions(module) {
        let mut depth: Vec<u32> = Vec::with_capacity(f.expressions.len());
        for (_, e) in f.expressions.iter() {
            let mut deepest = 0;
            for_each_operand(e, |h| {
                deepest = deepest.max(depth.get(h.index()).copied().unwrap_or(0));
            });
            let d = deepest + 1;
            if d > max {
                return Err(refuse(format!(
                    "an expression nests {d} levels deep; the limit is {max} (max_expression_depth)"
                )));
            }
            depth.push(d);
        }
    }
    Ok(())
}

fn for_each_operand(e: &Expression, mut f: impl FnMut(Handle<Expression>)) {
    use Expression as E;
    let opt = |h: &Option<Handle<Expression>>, f: &mut dyn FnMut(Handle<Expression>)| {
        if let Some(h) = h {
            f(*h)
        }
    };
    match e {
        E::Compose { components, .. } => components.iter().for_each(|h| f(*h)),
        E::Access { base, index } => {
            f(*base);
            f(*index);
        }
        E::AccessIndex { base, .. } => f(*base),
        E::Splat { value, .. } => f(*value),
        E::Swizzle { vector, .. } => f(*vector),
        E::Load { pointer } => f(*pointer),
        E::ImageSample {
            image,
            sampler,
            coordinate,
            array_index,
            offset,
            depth_ref,
            ..
        } => {
            f(*image);
            f(*sampler);
            f(*coordinate);
            opt(array_index, &mut f);
            opt(offset, &mut f);
            opt(depth_ref, &mut f);
        }
        E::ImageLoad {
            image,
            coordinate,
            array_index,
            sample,
            level,
        } => {
            f(*image);
            f(*coordinate);
            opt(array_index, &mut f);
            opt(sample, &mut f);
            opt(level, &mut f);
        }
        E::ImageQuery { image, .. } => f(*image),
        E::Unary { expr, .. } | E::Derivative { expr, .. } | E::As { expr, .. } => f(*expr),
        E::Binary { left, right, .. } => {
            f(*left);
            f(*right);
        }
        E::Select {
            condition,
            accept,
            reject,
        } => {
            f(*condition);
            f(*accept);
            f(*reject);
        }
        E::Relational { argument, .. } => f(*argument),
        E::Math {
            arg,
            arg1,
            arg2,
            arg3,
            ..
        } => {
            f(*arg);
            opt(arg1, &mut f);
            opt(arg2, &mut f);
            opt(arg3, &mut f);
        }
        E::ArrayLength(h) => f(*h),
        E::RayQueryVertexPositions { query, .. } | E::RayQueryGetIntersection { query, .. } => {
            f(*query)
        }
        E::CooperativeMultiplyAdd { a, b, c } => {
            f(*a);
            f(*b);
            f(*c);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ShaderLimits = ShaderLimits {
        max_private_bytes: 64 << 10,
        max_workgroup_bytes: 16 << 10,
        max_expression_depth: 512,
        max_nesting_depth: 127,
        max_inlined_size: 1 << 19,
    };

    fn shader(body: &str, globals: &str) -> String {
        format!(
            "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n{globals}\n\
             @compute @workgroup_size(64)\nfn main(@builtin(local_invocation_index) i: u32) {{\n{body}\n}}\n"
        )
    }

    #[test]
    fn ordinary_shaders_pass() {
        let s = shader(
            "var acc: array<f32, 256>; acc[i % 256u] = 1.0; big[i] = i; data[i] = big[63u - i] + u32(acc[0]);",
            "var<workgroup> big: array<u32, 64>;",
        );
        check(&s, &LIMITS).unwrap();
        // A long but shallow body is fine.
        let many: String = (0..2000).map(|k| format!("data[{k}u] = {k}u;\n")).collect();
        check(&shader(&many, ""), &LIMITS).unwrap();
        // Not WGSL at all: left to wgpu's error.
        check("fn (", &LIMITS).unwrap();
    }

    #[test]
    fn memory_hogs_are_refused() {
        let private = shader(
            "data[i] = big[i];",
            "var<private> big: array<u32, 67108864>;",
        );
        let err = check(&private, &LIMITS).unwrap_err();
        assert!(
            err.to_string().contains("268435456 bytes of private"),
            "{err}"
        );
        let local = shader("var big: array<u32, 100000>; data[i] = big[i];", "");
        assert!(check(&local, &LIMITS).is_err());
        let shared = shader(
            "big[i] = i; data[i] = big[i];",
            "var<workgroup> big: array<u32, 1048576>;",
        );
        let err = check(&shared, &LIMITS).unwrap_err();
        assert!(err.to_string().contains("workgroup memory"), "{err}");
    }

    #[test]
    fn deep_expressions_are_refused_without_recursion() {
        let chain = format!("data[0] = 0u{};", " + 1u".repeat(100_000));
        let err = check(&shader(&chain, ""), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("operators"), "{err}");
        let calls = format!(
            "data[0] = {}0u{};",
            "min(1u, ".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(check(&shader(&calls, ""), &LIMITS).is_err());
        // Comments do not count; a statement at the limit parses on this
        // (2 MiB, debug) test thread.
        let ok = format!(
            "// {}\n/* {} */ data[0] = 0u{};",
            "+".repeat(5000),
            "(".repeat(5000),
            " + 1u".repeat(500)
        );
        check(&shader(&ok, ""), &LIMITS).unwrap();
    }

    #[test]
    fn nesting_is_refused_before_naga_parses_it() {
        let n = 100_000;
        let chain: String = (0..n).map(|k| format!("else if i == {k}u {{ }}")).collect();
        let err = check(&shader(&format!("if i == 0u {{ }} {chain}"), ""), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("nests 100002 levels"), "{err}");
        let blocks = format!("{}{}", "{".repeat(n), "}".repeat(n));
        let err = check(&shader(&blocks, ""), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("max_nesting_depth"), "{err}");
        // In comments, braces count for nothing.
        let commented = format!(
            "/* {} /* nested */ */ // {}\ndata[i] = 1u;",
            "{".repeat(n),
            "{".repeat(n)
        );
        check(&shader(&commented, ""), &LIMITS).unwrap();
    }

    #[test]
    fn deep_types_are_refused() {
        let structs: String = (1..200)
            .map(|k| format!("struct S{k} {{ v: S{} }}\n", k - 1))
            .collect();
        let globals = format!("struct S0 {{ v: u32 }}\n{structs}var<private> deep: S199;");
        let err = check(&shader("data[i] = 1u;", &globals), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("a type nests 128 levels"), "{err}");
    }

    /// `n` functions, each calling the previous one through `call`.
    fn chain(n: usize, call: &str) -> String {
        let mut g = String::from("fn f0(v: u32) -> u32 { return v; }\n");
        for k in 1..n {
            let call = call.replace("PREV", &format!("f{}", k - 1));
            g.push_str(&format!(
                "fn f{k}(v: u32) -> u32 {{ var r = v; {call} return r; }}\n"
            ));
        }
        shader(&format!("data[i] = f{}(i);", n - 1), &g)
    }

    #[test]
    fn calls_count_as_inlined() {
        check(&chain(100, "r = PREV(v);"), &LIMITS).unwrap();
        let err = check(&chain(200, "r = PREV(v);"), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("128 levels deep once"), "{err}");
        // Each call site inside 40 blocks: the fourth function nests 164 deep.
        let deep_call = format!(
            "{} r = PREV(v); {}",
            "if v > 1u { ".repeat(40),
            "} ".repeat(40)
        );
        let err = check(&chain(5, &deep_call), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("`f4` nests blocks 164"), "{err}");
        // Two calls to the previous function: 2^n copies once inlined.
        let err = check(&chain(30, "r = PREV(v) + PREV(v + 1u);"), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("max_inlined_size"), "{err}");
    }
}
