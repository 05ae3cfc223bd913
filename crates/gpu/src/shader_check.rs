//! Static checks on a job's WGSL that wgpu leaves to the driver, run before
//! wgpu sees the shader. Found by the hostile-shader corpus: a 256 MiB private
//! array made lavapipe's compiler hang inside pipeline creation (a host call
//! the job's deadline cannot interrupt), and a 100,000-term `a + 1u + 1u …`
//! overflowed the thread's stack in shader compilation and aborted the node.

use naga::{Expression, Handle, Module};

use crate::{ErrorKind, GpuError};

/// What one shader may ask for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShaderLimits {
    /// Private + function-local memory per invocation.
    pub(crate) max_private_bytes: u64,
    /// Workgroup memory (the device's `max_compute_workgroup_storage_size`).
    pub(crate) max_workgroup_bytes: u64,
    /// Nesting depth of one expression, and operators in one statement.
    pub(crate) max_expression_depth: u32,
}

/// The most operators (and brackets, calls, member accesses) in one
/// statement, counted on the text before any parser runs: naga's parser
/// itself recursed past a 2 MiB stack on a 100,000-term sum. An expression
/// cannot nest deeper than its statement has operators.
fn check_statements(wgsl: &str, max: u32) -> Result<(), GpuError> {
    let bytes = wgsl.as_bytes();
    let (mut i, mut ops, mut comment_depth) = (0usize, 0u32, 0u32);
    while i < bytes.len() {
        let (c, next) = (bytes[i], bytes.get(i + 1).copied());
        if comment_depth > 0 {
            match (c, next) {
                (b'*', Some(b'/')) => {
                    comment_depth -= 1;
                    i += 1;
                }
                (b'/', Some(b'*')) => {
                    comment_depth += 1;
                    i += 1;
                }
                _ => {}
            }
        } else {
            match (c, next) {
                (b'/', Some(b'/')) => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                (b'/', Some(b'*')) => {
                    comment_depth = 1;
                    i += 1;
                }
                (b';' | b'{' | b'}', _) => ops = 0,
                (
                    b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^' | b'<' | b'>' | b'!'
                    | b'~' | b'(' | b'[' | b'.' | b',' | b'=',
                    _,
                ) => {
                    ops += 1;
                    if ops > max {
                        return Err(refuse(format!(
                            "a statement has more than {max} operators; split it up"
                        )));
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    Ok(())
}

fn refuse(message: String) -> GpuError {
    GpuError::new(ErrorKind::InvalidShader, message)
}

/// `Ok` if the shader is within `limits`, or if it does not parse (wgpu
/// reports parse errors with better messages).
pub(crate) fn check(wgsl: &str, limits: &ShaderLimits) -> Result<(), GpuError> {
    check_statements(wgsl, limits.max_expression_depth)?;
    let Ok(module) = naga::front::wgsl::parse_str(wgsl) else {
        return Ok(());
    };
    check_depth(&module, limits.max_expression_depth)?;
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
    for f in functions(&module) {
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
fn functions(module: &Module) -> impl Iterator<Item = &naga::Function> {
    module
        .functions
        .iter()
        .map(|(_, f)| f)
        .chain(module.entry_points.iter().map(|e| &e.function))
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
                    "an expression nests {d} levels deep; the limit is {max}"
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
}
