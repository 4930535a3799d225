// Batched input builders of the explanation methods: each writes image n (= wg.y) of
// activation 0 from the input kept in the explanation buffer (`x_off`), so a whole batch
// of perturbed inputs is made on the GPU and runs through one batched forward pass.
// Dispatch (ceil(in_len / 64), images, z) with 64 threads, one thread per input element
// (element index = (wg.x + wg.z * nwg.x) * 64 + local index), unless said otherwise.
// No loop runs longer than a few iterations per thread (llvmpipe cuts loops past 65 535).

// ExplainParams: shaders/params.wgsl (Rust twin: gpu::params::ExplainParams).

@group(0) @binding(0) var<uniform> p: ExplainParams;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(11) var<storage, read_write> explain: array<f32>;

// Pixels ranked per invocation of `rank_partials` (Rust twin: explain::layout::RANK_CHUNK).
const RANK_CHUNK: u32 = 4096u;

fn element(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.z * nwg.x) * 64u + lid;
}

fn store_input(n: u32, i: u32, value: f32) {
    activations[p.input_offset + n * p.in_len + i] = value;
}

// Integrated Gradients (zero baseline): image n = alpha_n · x.
@compute @workgroup_size(64)
fn ig_inputs(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    store_input(wg.y, i, explain[p.ig_off + wg.y] * explain[p.x_off + i]);
}

// SmoothGrad: image n = x + noise_n (the noise is uploaded, generated on the CPU).
@compute @workgroup_size(64)
fn noise_inputs(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    let noise = explain[p.noise_off + wg.y * p.in_len + i];
    store_input(wg.y, i, explain[p.x_off + i] + noise);
}

// Whether pixel q lies in occlusion patch n (row-major positions, every channel; patches
// that pass the border are cut there, as Captum's).
fn in_patch(n: u32, q: u32) -> bool {
    let top = (n / p.occ_cols) * p.occ_stride;
    let left = (n % p.occ_cols) * p.occ_stride;
    let y = q / p.in_width;
    let x = q % p.in_width;
    return y >= top && y < top + p.occ_window && x >= left && x < left + p.occ_window;
}

// Occlusion: image n = x with patch n set to the baseline 0.
@compute @workgroup_size(64)
fn occlusion_inputs(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    let q = i % (p.in_height * p.in_width);
    store_input(wg.y, i, select(explain[p.x_off + i], 0.0, in_patch(wg.y, q)));
}

// Source position along one axis for `UpsamplingBilinear2d` (align_corners = True):
// s = o · (in − 1) / (out − 1) (0 when out = 1); returns (i0, i1, weight of i1).
fn corner_axis(o: u32, out_size: u32, in_size: u32) -> vec3<f32> {
    var s = 0.0;
    if out_size > 1u {
        s = f32(o * (in_size - 1u)) / f32(out_size - 1u);
    }
    let i0 = min(u32(floor(s)), in_size - 1u);
    let i1 = min(i0 + 1u, in_size - 1u);
    return vec3<f32>(f32(i0), f32(i1), s - f32(i0));
}

// Channel k of the saved block activations, upsampled to input pixel q.
fn upsampled(k: u32, q: u32) -> f32 {
    let base = p.saved_off + k * p.height * p.width;
    let ay = corner_axis(q / p.in_width, p.in_height, p.height);
    let ax = corner_axis(q % p.in_width, p.in_width, p.width);
    let y0 = u32(ay.x) * p.width;
    let y1 = u32(ay.y) * p.width;
    let top = explain[base + y0 + u32(ax.x)] * (1.0 - ax.z) + explain[base + y0 + u32(ax.y)] * ax.z;
    let bottom = explain[base + y1 + u32(ax.x)] * (1.0 - ax.z) + explain[base + y1 + u32(ax.y)] * ax.z;
    return top * (1.0 - ay.z) + bottom * ay.z;
}

var<workgroup> red_min: array<f32, 256>;
var<workgroup> red_max: array<f32, 256>;

// Score-CAM, step 1. Dispatch (K, 1, z) with 256 threads: one workgroup per channel k
// finds the (min, max) of its upsampled map.
@compute @workgroup_size(256)
fn score_mask_range(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = wg.x + wg.z * nwg.x;
    if k >= p.channels {
        return; // uniform per workgroup
    }
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    for (var q = lid; q < p.in_height * p.in_width; q += 256u) {
        let v = upsampled(k, q);
        lo = min(lo, v);
        hi = max(hi, v);
    }
    red_min[lid] = lo;
    red_max[lid] = hi;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if lid < half {
            red_min[lid] = min(red_min[lid], red_min[lid + half]);
            red_max[lid] = max(red_max[lid], red_max[lid + half]);
        }
        workgroupBarrier();
    }
    if lid == 0u {
        explain[p.mask_off + 2u * k] = red_min[0];
        explain[p.mask_off + 2u * k + 1u] = red_max[0];
    }
}

// Score-CAM, step 2: image k = x · mask_k, mask_k = (up_k − min) / (max − min + 1e-8),
// the same mask on every input channel.
@compute @workgroup_size(64)
fn score_inputs(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    let k = wg.y;
    let lo = explain[p.mask_off + 2u * k];
    let hi = explain[p.mask_off + 2u * k + 1u];
    let q = i % (p.in_height * p.in_width);
    let mask = (upsampled(k, q) - lo) / (hi - lo + 1e-8);
    store_input(k, i, explain[p.x_off + i] * mask);
}

// Faithfulness, step 1. Dispatch (ceil(P / 64), rank_chunks, z), P = in_height · in_width:
// how many pixels of chunk wg.y come before pixel q in the order of the display map
// (larger first, ties by index). Chunks keep each thread's loop at RANK_CHUNK.
@compute @workgroup_size(64)
fn rank_partials(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let plane = p.in_height * p.in_width;
    let q = element(wg, nwg, lid);
    if q >= plane {
        return;
    }
    let mine = explain[p.map_off + q];
    let start = wg.y * RANK_CHUNK;
    let end = min(start + RANK_CHUNK, plane);
    var before = 0u;
    for (var j = start; j < end; j++) {
        let other = explain[p.map_off + j];
        if other > mine || (other == mine && j < q) {
            before += 1u;
        }
    }
    explain[p.rank_off + wg.y * plane + q] = f32(before);
}

// Faithfulness, step 2: images 0..=S delete, images S+1..=2S+1 insert; step s touches
// the floor(s · P / S) first pixels of the order (every channel).
@compute @workgroup_size(64)
fn faithfulness_inputs(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    let plane = p.in_height * p.in_width;
    let q = i % plane;
    var rank = 0u;
    for (var c = 0u; c < p.rank_chunks; c++) {
        rank += u32(explain[p.rank_off + c * plane + q]);
    }
    let n = wg.y;
    let points = p.faith_steps + 1u;
    let deletion = n < points;
    let s = select(n - points, n, deletion);
    let touched = rank < (s * plane) / p.faith_steps;
    let x = explain[p.x_off + i];
    let blank = explain[p.blank_off + i / plane];
    var value = select(x, blank, touched);
    if !deletion {
        value = select(blank, x, touched);
    }
    store_input(n, i, value);
}
