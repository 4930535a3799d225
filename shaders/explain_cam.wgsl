// The CAM family's weights and maps beyond Grad-CAM (pytorch-grad-cam 1.5.7), from the
// explained block's activations A [K, h, w] and gradients G (the same region of both arenas,
// image 0). Each writes image 0 of the CAM buffer's channel weights or raw map; the
// Grad-CAM kernels (grad_cam.wgsl: weighted map, upsample) and normalise.wgsl finish.
//   plus_plus_weights: α = G² / (2G² + (Σ A_k) G³ + 1e-6) (0 where G = 0),
//                      w_k = Σ max(G, 0) α                                 (Grad-CAM++)
//   xgrad_weights:     w_k = Σ G A / (Σ A_k + 1e-7)                        (XGrad-CAM)
//   hires_map / layer_map / elementwise_map: relu(Σ_k f(G, A)) with f = G·A, max(G, 0)·A,
//                      max(G·A, 0)                          (HiResCAM, LayerCAM, element-wise)
//   eigen_*:           EigenCAM: centre A's channels, the K×K matrix XᵀX, its top
//                      eigenvector by repeated squaring then power steps, the projection,
//                      its sign fixed so that |max| ≥ |min|, relu
//   score_weights:     Score-CAM: softmax over k of the scores of the masked inputs

// ExplainParams: shaders/params.wgsl (Rust twin: gpu::params::ExplainParams).

@group(0) @binding(0) var<uniform> p: ExplainParams;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;
@group(0) @binding(4) var<storage, read_write> cam: array<f32>;
@group(0) @binding(11) var<storage, read_write> explain: array<f32>;

// Squarings of XᵀX before the power steps: the second eigenvalue's share shrinks as
// (λ2/λ1)^(2^SQUARINGS), then again per power step.
const SQUARINGS: u32 = 16u;
const POWER_STEPS: u32 = 8u;

var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

fn sum_a_and_b(lid: u32, a: f32, b: f32) -> vec2<f32> {
    red_a[lid] = a;
    red_b[lid] = b;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if lid < half {
            red_a[lid] += red_a[lid + half];
            red_b[lid] += red_b[lid + half];
        }
        workgroupBarrier();
    }
    let result = vec2<f32>(red_a[0], red_b[0]);
    workgroupBarrier();
    return result;
}

fn block_plane() -> u32 {
    return p.height * p.width;
}

// Dispatch (K, 1, z) with 256 threads: one workgroup per channel.
@compute @workgroup_size(256)
fn plus_plus_weights(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = wg.x + wg.z * nwg.x;
    if k >= p.channels {
        return; // uniform per workgroup
    }
    let plane = block_plane();
    let base = p.act_offset + k * plane;
    var a_sum = 0.0;
    for (var i = lid; i < plane; i += 256u) {
        a_sum += activations[base + i];
    }
    let sum_a = sum_a_and_b(lid, a_sum, 0.0).x;
    var w = 0.0;
    for (var i = lid; i < plane; i += 256u) {
        let g = gradients[base + i];
        let g2 = g * g;
        let g3 = g2 * g;
        var alpha = 0.0;
        if g != 0.0 {
            alpha = g2 / (2.0 * g2 + sum_a * g3 + 1e-6);
        }
        w += max(g, 0.0) * alpha;
    }
    let total = sum_a_and_b(lid, w, 0.0).x;
    if lid == 0u {
        cam[p.cam_weights + k] = total;
    }
}

// Dispatch (K, 1, z) with 256 threads: one workgroup per channel.
@compute @workgroup_size(256)
fn xgrad_weights(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = wg.x + wg.z * nwg.x;
    if k >= p.channels {
        return; // uniform per workgroup
    }
    let plane = block_plane();
    let base = p.act_offset + k * plane;
    var a_sum = 0.0;
    var ga_sum = 0.0;
    for (var i = lid; i < plane; i += 256u) {
        let a = activations[base + i];
        a_sum += a;
        ga_sum += gradients[base + i] * a;
    }
    let sums = sum_a_and_b(lid, a_sum, ga_sum);
    if lid == 0u {
        cam[p.cam_weights + k] = sums.y / (sums.x + 1e-7);
    }
}

fn pixel(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.z * nwg.x) * 64u + lid;
}

// relu(Σ_k f(G_k, A_k)) at pixel i, summed in ascending k like the CPU twin.
fn element_wise(i: u32, mode: u32) -> f32 {
    let plane = block_plane();
    var s = 0.0;
    for (var k = 0u; k < p.channels; k++) {
        let g = gradients[p.act_offset + k * plane + i];
        let a = activations[p.act_offset + k * plane + i];
        switch mode {
            case 0u: { s += g * a; }
            case 1u: { s += max(g, 0.0) * a; }
            default: { s += max(g * a, 0.0); }
        }
    }
    return max(s, 0.0);
}

// Dispatch (ceil(h·w / 64), 1, z) with 64 threads, one per pixel of the block's map.
@compute @workgroup_size(64)
fn hires_map(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = pixel(wg, nwg, lid);
    if i < block_plane() {
        cam[p.cam_raw + i] = element_wise(i, 0u);
    }
}

@compute @workgroup_size(64)
fn layer_map(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = pixel(wg, nwg, lid);
    if i < block_plane() {
        cam[p.cam_raw + i] = element_wise(i, 1u);
    }
}

@compute @workgroup_size(64)
fn elementwise_map(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = pixel(wg, nwg, lid);
    if i < block_plane() {
        cam[p.cam_raw + i] = element_wise(i, 2u);
    }
}

// EigenCAM regions in the explanation buffer.
fn eig_means() -> u32 {
    return p.eig_off;
}
fn eig_matrix() -> u32 {
    return p.eig_off + p.channels;
}
fn eig_scratch() -> u32 {
    return p.eig_off + p.channels + p.channels * p.channels;
}
fn eig_vector() -> u32 {
    return p.eig_off + p.channels + 2u * p.channels * p.channels;
}

// Dispatch (ceil(K / 64), 1, 1): thread k writes channel k's mean.
@compute @workgroup_size(64)
fn eigen_means(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = pixel(wg, nwg, lid);
    if k >= p.channels {
        return;
    }
    let plane = block_plane();
    var s = 0.0;
    for (var i = 0u; i < plane; i++) {
        s += activations[p.act_offset + k * plane + i];
    }
    explain[eig_means() + k] = s / f32(plane);
}

// Dispatch (ceil(K² / 64), 1, z): thread (r, c) writes (XᵀX)[r, c] of the centred X.
@compute @workgroup_size(64)
fn eigen_matrix(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = pixel(wg, nwg, lid);
    let k = p.channels;
    if t >= k * k {
        return;
    }
    let r = t / k;
    let c = t % k;
    let plane = block_plane();
    let mr = explain[eig_means() + r];
    let mc = explain[eig_means() + c];
    var s = 0.0;
    for (var i = 0u; i < plane; i++) {
        s += (activations[p.act_offset + r * plane + i] - mr) *
            (activations[p.act_offset + c * plane + i] - mc);
    }
    explain[eig_matrix() + t] = s;
}

fn max_over_workgroup(lid: u32, v: f32) -> f32 {
    red_a[lid] = v;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if lid < half {
            red_a[lid] = max(red_a[lid], red_a[lid + half]);
        }
        workgroupBarrier();
    }
    let result = red_a[0];
    workgroupBarrier();
    return result;
}

// Dispatch (1, 1, 1) with 256 threads: the unit top eigenvector of the symmetric PSD
// matrix M = XᵀX. M is squared SQUARINGS times (rescaled by its largest entry each time,
// so nothing overflows), leaving ≈ λ1^(2^S) v vᵀ; POWER_STEPS power steps from the
// all-ones vector then read v off it.
@compute @workgroup_size(256)
fn eigen_vector(@builtin(local_invocation_index) lid: u32) {
    let k = p.channels;
    let m = eig_matrix();
    let b = eig_scratch();
    for (var s = 0u; s < SQUARINGS; s++) {
        var biggest = 0.0;
        for (var t = lid; t < k * k; t += 256u) {
            let r = t / k;
            let c = t % k;
            var v = 0.0;
            for (var j = 0u; j < k; j++) {
                v += explain[m + r * k + j] * explain[m + j * k + c];
            }
            explain[b + t] = v;
            biggest = max(biggest, abs(v));
        }
        storageBarrier();
        var scale = max_over_workgroup(lid, biggest);
        if scale == 0.0 {
            scale = 1.0;
        }
        for (var t = lid; t < k * k; t += 256u) {
            explain[m + t] = explain[b + t] / scale;
        }
        storageBarrier();
        workgroupBarrier();
    }
    let v = eig_vector();
    for (var r = lid; r < k; r += 256u) {
        explain[v + r] = 1.0;
    }
    storageBarrier();
    workgroupBarrier();
    for (var step = 0u; step < POWER_STEPS; step++) {
        // w = M v into the scratch, then v = w / |w|.
        var sq = 0.0;
        for (var r = lid; r < k; r += 256u) {
            var w = 0.0;
            for (var j = 0u; j < k; j++) {
                w += explain[m + r * k + j] * explain[v + j];
            }
            explain[b + r] = w;
            sq += w * w;
        }
        storageBarrier();
        let norm = sqrt(sum_a_and_b(lid, sq, 0.0).x);
        for (var r = lid; r < k; r += 256u) {
            explain[v + r] = select(0.0, explain[b + r] / norm, norm > 0.0);
        }
        storageBarrier();
        workgroupBarrier();
    }
}

// Dispatch (1, 1, 1) with 256 threads: the projection X v of every pixel, negated when
// |min| > |max| (cnnviz's sign convention, as the CPU twin's), then relu, into the raw map.
@compute @workgroup_size(256)
fn eigen_project(@builtin(local_invocation_index) lid: u32) {
    let plane = block_plane();
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    for (var i = lid; i < plane; i += 256u) {
        var s = 0.0;
        for (var k = 0u; k < p.channels; k++) {
            let a = activations[p.act_offset + k * plane + i] - explain[eig_means() + k];
            s += a * explain[eig_vector() + k];
        }
        cam[p.cam_raw + i] = s;
        lo = min(lo, s);
        hi = max(hi, s);
    }
    red_a[lid] = lo;
    red_b[lid] = hi;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if lid < half {
            red_a[lid] = min(red_a[lid], red_a[lid + half]);
            red_b[lid] = max(red_b[lid], red_b[lid + half]);
        }
        workgroupBarrier();
    }
    let sign = select(1.0, -1.0, abs(red_a[0]) > abs(red_b[0]));
    for (var i = lid; i < plane; i += 256u) {
        cam[p.cam_raw + i] = max(sign * cam[p.cam_raw + i], 0.0);
    }
}

// Dispatch (1, 1, 1) with 256 threads: Score-CAM's weights, the softmax over channels of
// score_k = sign · logit[explained] of masked input k (image k of the batch).
@compute @workgroup_size(256)
fn score_weights(@builtin(local_invocation_index) lid: u32) {
    let explained = bitcast<u32>(explain[p.class_off]);
    let sign = explain[p.sign_off];
    var best = -3.4028235e38;
    for (var k = lid; k < p.channels; k += 256u) {
        best = max(best, sign * activations[p.logits_offset + k * p.classes + explained]);
    }
    let top = max_over_workgroup(lid, best);
    var sum = 0.0;
    for (var k = lid; k < p.channels; k += 256u) {
        sum += exp(sign * activations[p.logits_offset + k * p.classes + explained] - top);
    }
    let total = sum_a_and_b(lid, sum, 0.0).x;
    for (var k = lid; k < p.channels; k += 256u) {
        let e = exp(sign * activations[p.logits_offset + k * p.classes + explained] - top);
        cam[p.cam_weights + k] = e / total;
    }
}
