// expect: rejected
// Switches in switch cases, 1,000 deep.
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { switch x { default { 
    data[0] = 1u;
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
} } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } 
}
