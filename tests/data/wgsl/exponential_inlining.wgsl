// expect: rejected
// 22 functions, each calling the previous one twice: 1.4 KB that drivers inline
// into 2^21 copies. lavapipe's compiler got the process killed for memory.
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
fn f0(v: u32) -> u32 { return v + 1u; }
fn f1(v: u32) -> u32 { return f0(v) + f0(v + 1u); }
fn f2(v: u32) -> u32 { return f1(v) + f1(v + 1u); }
fn f3(v: u32) -> u32 { return f2(v) + f2(v + 1u); }
fn f4(v: u32) -> u32 { return f3(v) + f3(v + 1u); }
fn f5(v: u32) -> u32 { return f4(v) + f4(v + 1u); }
fn f6(v: u32) -> u32 { return f5(v) + f5(v + 1u); }
fn f7(v: u32) -> u32 { return f6(v) + f6(v + 1u); }
fn f8(v: u32) -> u32 { return f7(v) + f7(v + 1u); }
fn f9(v: u32) -> u32 { return f8(v) + f8(v + 1u); }
fn f10(v: u32) -> u32 { return f9(v) + f9(v + 1u); }
fn f11(v: u32) -> u32 { return f10(v) + f10(v + 1u); }
fn f12(v: u32) -> u32 { return f11(v) + f11(v + 1u); }
fn f13(v: u32) -> u32 { return f12(v) + f12(v + 1u); }
fn f14(v: u32) -> u32 { return f13(v) + f13(v + 1u); }
fn f15(v: u32) -> u32 { return f14(v) + f14(v + 1u); }
fn f16(v: u32) -> u32 { return f15(v) + f15(v + 1u); }
fn f17(v: u32) -> u32 { return f16(v) + f16(v + 1u); }
fn f18(v: u32) -> u32 { return f17(v) + f17(v + 1u); }
fn f19(v: u32) -> u32 { return f18(v) + f18(v + 1u); }
fn f20(v: u32) -> u32 { return f19(v) + f19(v + 1u); }
fn f21(v: u32) -> u32 { return f20(v) + f20(v + 1u); }
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
    data[0] = f21(x);
}
