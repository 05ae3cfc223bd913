// expect: rejected
// Calls 1,000 deep in one expression.
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
    data[0] =
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, max(1u, 
x))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
))))))))))))))))))))))))))))))))))))))))))))))))))
;
}
