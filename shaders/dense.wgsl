// Dense (PyTorch Linear, weight [out, in]) forward and its input gradient.
//
// Arena indexing as in conv2d.wgsl: image n of a region starts at `offset + n * len`.
// Dispatch for both: (groups_x, batch, groups_z) with 64 threads, image = wg.y; the group
// index g = wg.x + wg.z * num_workgroups.x folds more than 65535 groups into z.

// DenseParams: shaders/params.wgsl (Rust twin: gpu::params::DenseParams).

@group(0) @binding(0) var<uniform> p: DenseParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;

var<workgroup> partial: array<f32, 64>;

// One WORKGROUP per (output feature g, image): the 64 threads stride over the input
// features (coalesced reads of one weight row), then a tree reduction in workgroup memory.
// Long rows (e.g. 9216 inputs) stay accurate because partial sums stay short.
@compute @workgroup_size(64)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let o = wg.x + wg.z * nwg.x;
    // Uniform across the workgroup, so returning here keeps the barriers below legal.
    if o >= p.out_features {
        return;
    }
    let n = wg.y;
    let x_base = p.in_offset + n * p.in_features;
    let row = p.weight_offset + o * p.in_features;
    var sum = 0.0;
    for (var i = lid; i < p.in_features; i += 64u) {
        sum += weights[row + i] * activations[x_base + i];
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half >>= 1u) {
        if lid < half {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        activations[p.out_offset + n * p.out_features + o] = weights[p.bias_offset + o] + partial[0];
    }
}

// One THREAD per input feature i: dx_i = Σ_o W[o, i] · dy_o. Neighbouring threads read
// neighbouring columns of a row, so the weight reads are coalesced.
@compute @workgroup_size(64)
fn backward_input(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wg.x + wg.z * nwg.x) * 64u + lid;
    if i >= p.in_features {
        return;
    }
    let n = wg.y;
    let dy_base = p.out_offset + n * p.out_features;
    var sum = 0.0;
    for (var o = 0u; o < p.out_features; o++) {
        sum += weights[p.weight_offset + o * p.in_features + i] * gradients[dy_base + o];
    }
    gradients[p.in_offset + n * p.in_features + i] = sum;
}
