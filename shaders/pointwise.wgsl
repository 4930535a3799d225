// The elementwise layers other than ReLU, forward and input gradient: leaky ReLU, sigmoid,
// tanh and batch norm as a per-channel scale and shift (folded from its running statistics
// when the plan packs the weights). Dropout needs no kernel: its output aliases its input.
// The arithmetic is params.wgsl's pointwise_value / pointwise_gradient, shared with the
// fused walk.
//
// Arena indexing as in conv2d.wgsl. Dispatch: (groups_x, batch, groups_z), 64 threads;
// element = (wg.x + wg.z * nwg.x) * 64 + local index, image = wg.y.

@group(0) @binding(0) var<uniform> p: PointwiseParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;

fn element_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.z * nwg.x) * 64u + lid;
}

// The scale and shift of element i's channel (affine only: the others have no weights).
fn channel_affine(i: u32) -> vec2<f32> {
    if p.op != POINTWISE_AFFINE {
        return vec2<f32>(1.0, 0.0);
    }
    let c = i / p.plane;
    return vec2<f32>(weights[p.scale_offset + c], weights[p.shift_offset + c]);
}

@compute @workgroup_size(64)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wg, nwg, lid);
    if i >= p.len {
        return;
    }
    let at = wg.y * p.len + i;
    let affine = channel_affine(i);
    activations[p.out_offset + at] =
        pointwise_value(p, activations[p.in_offset + at], affine.x, affine.y);
}

@compute @workgroup_size(64)
fn backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wg, nwg, lid);
    if i >= p.len {
        return;
    }
    let at = wg.y * p.len + i;
    gradients[p.in_offset + at] = pointwise_gradient(p, activations[p.in_offset + at],
        activations[p.out_offset + at], gradients[p.out_offset + at], channel_affine(i).x);
}
