// expect: rejected
// 25 functions, each calling the previous one from 40 blocks deep: once the
// driver inlines the calls, 1,000 levels deep (50 at 100 deep overflowed the stack).
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
fn f0(v: u32) -> u32 { return v + 1u; }
fn f1(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f0(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f2(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f1(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f3(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f2(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f4(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f3(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f5(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f4(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f6(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f5(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f7(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f6(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f8(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f7(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f9(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f8(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f10(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f9(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f11(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f10(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f12(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f11(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f13(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f12(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f14(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f13(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f15(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f14(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f16(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f15(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f17(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f16(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f18(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f17(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f19(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f18(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f20(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f19(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f21(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f20(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f22(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f21(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f23(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f22(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
fn f24(v: u32) -> u32 {
    var r = v;
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { if v > 1u { 
    r = f23(v);
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
    return r;
}
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
    data[0] = f24(x);
}
