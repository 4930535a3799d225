// Dense forward as a tiled GEMM over [images × outputs], and a dense input gradient fused
// with the ReLU before the layer.
//
// Forward: each invocation owns 4 consecutive output features for a block of `images`
// images (one vec4 accumulator per image), a workgroup 64 such quads (256 outputs). Per
// input feature an invocation loads 4 weights (one from each of its rows) and `images`
// inputs and does 4 · images multiply-adds; the direct kernel loads two values per
// multiply-add and pays a workgroup reduction per output. Loads bound this kernel on every
// device, and most of all on llvmpipe, where each lane's load is a separate scalar load.
// The images' inputs are staged in workgroup memory K_CHUNK features at a time, so each
// is read from the arena once per workgroup. Two image blocks: 8 (`forward`,
// `forward_relu`) for batches, 1 (`forward_single`, `forward_relu_single`) for networks
// that only ever run one image, where a block of 8 would load 8 inputs to use one.
//
// Dispatch: (groups_x, ceil(batch / images), groups_z) with 64 threads: the output block is
// g = wg.x + wg.z * num_workgroups.x and the image block is wg.y. The batch is not a
// uniform (it changes without touching any), so the last image block may reach past it:
// those images are computed from whatever their inputs hold and written to their own
// slots, which no caller reads; `max_batch` keeps every access inside the arena regions.
//
// Rust twins of the constants: gpu::kernel_choice::{DENSE_IMAGES, DENSE_K_CHUNK,
// DENSE_OUTPUTS}.

// DenseParams: shaders/params.wgsl (Rust twin: gpu::params::DenseParams).

@group(0) @binding(0) var<uniform> p: DenseParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;

const IMAGES: u32 = 8u;       // images per workgroup of the batched entry points
const K_CHUNK: u32 = 128u;    // input features staged per round
const OUTPUTS: u32 = 256u;    // output features per workgroup: 64 invocations × 4

// x_tile[k * IMAGES + j] = input k0 + k of image n0 + j.
var<workgroup> x_tile: array<f32, 1024>; // K_CHUNK * IMAGES

fn input_or_zero(n: u32, k: u32) -> f32 {
    if n >= p.max_batch || k >= p.in_features {
        return 0.0;
    }
    return activations[p.in_offset + n * p.in_features + k];
}

fn store(n: u32, o: u32, value: f32, relu: bool) {
    if n < p.max_batch && o < p.out_features {
        let at = n * p.out_features + o;
        activations[p.out_offset + at] = value;
        if relu {
            activations[p.relu_offset + at] = max(value, 0.0);
        }
    }
}

// Weight row `o`, or the last row past the end (those lanes store nothing), so every load
// stays inside the layer's weights.
fn row(o: u32) -> u32 {
    return p.weight_offset + min(o, p.out_features - 1u) * p.in_features;
}

fn bias_or_zero(o: u32) -> f32 {
    if o >= p.out_features {
        return 0.0;
    }
    return weights[p.bias_offset + o];
}

// `images` is a literal at every call, so the image loops have constant trip counts.
fn dense_tile(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, images: u32, relu: bool) {
    let g = wg.x + wg.z * nwg.x;
    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    if g * OUTPUTS >= p.out_features {
        return;
    }
    let o = g * OUTPUTS + 4u * lid;
    let rows = vec4<u32>(row(o), row(o + 1u), row(o + 2u), row(o + 3u));
    let n0 = wg.y * images;
    // acc[j]: outputs o … o + 3 of image n0 + j.
    var acc: array<vec4<f32>, 8>;
    for (var k0 = 0u; k0 < p.in_features; k0 += K_CHUNK) {
        for (var e = lid; e < K_CHUNK * images; e += 64u) {
            let k = e / images;
            let j = e % images;
            x_tile[k * IMAGES + j] = input_or_zero(n0 + j, k0 + k);
        }
        workgroupBarrier();
        // Lanes past the last output skip the arithmetic but not the barriers.
        if o < p.out_features {
            let count = min(K_CHUNK, p.in_features - k0);
            for (var k = 0u; k < count; k++) {
                let i = k0 + k;
                let w = vec4<f32>(weights[rows.x + i], weights[rows.y + i], weights[rows.z + i], weights[rows.w + i]);
                for (var j = 0u; j < images; j++) {
                    acc[j] = fma(vec4<f32>(x_tile[k * IMAGES + j]), w, acc[j]);
                }
            }
        }
        // The next round overwrites the tile: everyone must be done reading it.
        workgroupBarrier();
    }
    let bias = vec4<f32>(bias_or_zero(o), bias_or_zero(o + 1u), bias_or_zero(o + 2u), bias_or_zero(o + 3u));
    for (var j = 0u; j < images; j++) {
        let value = acc[j] + bias;
        store(n0 + j, o, value.x, relu);
        store(n0 + j, o + 1u, value.y, relu);
        store(n0 + j, o + 2u, value.z, relu);
        store(n0 + j, o + 3u, value.w, relu);
    }
}

@compute @workgroup_size(64)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    dense_tile(wg, nwg, lid, IMAGES, false);
}

@compute @workgroup_size(64)
fn forward_relu(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    dense_tile(wg, nwg, lid, IMAGES, true);
}

@compute @workgroup_size(64)
fn forward_single(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    dense_tile(wg, nwg, lid, 1u, false);
}

@compute @workgroup_size(64)
fn forward_relu_single(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    dense_tile(wg, nwg, lid, 1u, true);
}

// One thread per input feature i of one image (as dense.wgsl's backward_input):
// dx_i = Σ_o W[o, i] · dy_o, written as the gradient of this layer's input, which is the
// output of the ReLU before it; then the ReLU's own backward (PyTorch's rule: pass where
// the ReLU's input is strictly positive) into the gradient of the ReLU's input. One
// dispatch instead of two, both gradients written (the scene and the tests read both).
@compute @workgroup_size(64)
fn backward_input_relu(
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
    let at = n * p.in_features + i;
    gradients[p.in_offset + at] = sum;
    let passes = activations[p.relu_offset + at] > 0.0;
    gradients[p.relu_offset + at] = select(0.0, sum, passes);
}
