// ReLU forward and backward, elementwise over one image per workgroup row.
//
// Arena indexing as in conv2d.wgsl: image n of a region starts at `offset + n * len`.
// Dispatch: (groups_x, batch, groups_z), 64 threads; element = (wg.x + wg.z * nwg.x) * 64 +
// local index, image = wg.y.

// EltwiseParams: shaders/params.wgsl (Rust twin: gpu::params::EltwiseParams).

@group(0) @binding(0) var<uniform> p: EltwiseParams;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;

fn element_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.z * nwg.x) * 64u + lid;
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
    let image = wg.y * p.len + i;
    activations[p.out_offset + image] = max(activations[p.in_offset + image], 0.0);
}

// PyTorch's rule: the gradient passes where the layer INPUT is strictly positive. With
// `guided`, guided backpropagation's (Captum's ModifiedReluGradientAttribution): that
// gradient, then clamped at 0.
fn backward_element(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, guided: bool) {
    let i = element_index(wg, nwg, lid);
    if i >= p.len {
        return;
    }
    let image = wg.y * p.len + i;
    let passes = activations[p.in_offset + image] > 0.0;
    var g = gradients[p.out_offset + image];
    if guided {
        g = max(g, 0.0);
    }
    gradients[p.in_offset + image] = select(0.0, g, passes);
}

@compute @workgroup_size(64)
fn backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    backward_element(wg, nwg, lid, false);
}

@compute @workgroup_size(64)
fn backward_guided(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    backward_element(wg, nwg, lid, true);
}
