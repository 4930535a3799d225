// The attribution family's reductions (Captum 0.9), the display map and the faithfulness
// curves. Gradients are of sign · logit[explained]; image n of the input gradient starts at
// `input_offset + n * in_len` in the gradient arena. Element kernels: dispatch
// (ceil(in_len / 64), 1, z) with 64 threads, one thread per input element.
//   saliency:          |g|                           (Saliency, abs = True)
//   input_x_gradient:  x · g                         (InputXGradient)
//   guided_backprop:   g of the guided backward pass (GuidedBackprop)
//   guided_grad_cam:   g_guided · raw[nearest]       (GuidedGradCam: LayerGradCam with
//                      relu_attributions, interpolated 'nearest' to the input)
//   ig_reduce:         x · Σ_n w_n g_n               (IntegratedGradients, Gauss–Legendre)
//   smooth_reduce:     (1 / N) Σ_n |g_n|             (NoiseTunnel(Saliency), smoothgrad)
//   occlusion_reduce:  mean over the patches covering the element of
//                      sign · (logit − logit_n)[explained]           (Occlusion, baseline 0)
//   display_map:       max over channels of |attribution|, over its image maximum
//   faithfulness_curves: the explained's probability per deletion/insertion image, and the
//                      trapezoid areas

// ExplainParams: shaders/params.wgsl (Rust twin: gpu::params::ExplainParams).

@group(0) @binding(0) var<uniform> p: ExplainParams;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;
@group(0) @binding(4) var<storage, read_write> cam: array<f32>;
@group(0) @binding(5) var<storage, read_write> probabilities: array<f32>;
@group(0) @binding(11) var<storage, read_write> explain: array<f32>;

fn element(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.z * nwg.x) * 64u + lid;
}

fn input_gradient(n: u32, i: u32) -> f32 {
    return gradients[p.input_offset + n * p.in_len + i];
}

// The counterfactual's seed: dispatch (1, batch, 1) negates each image's one-hot seed.
@compute @workgroup_size(64)
fn negate_seed(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    for (var k = lid; k < p.classes; k += 64u) {
        let at = p.logits_offset + wg.y * p.classes + k;
        gradients[at] = -gradients[at];
    }
}

@compute @workgroup_size(64)
fn saliency(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i < p.in_len {
        explain[p.attr_off + i] = abs(input_gradient(0u, i));
    }
}

@compute @workgroup_size(64)
fn input_x_gradient(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i < p.in_len {
        explain[p.attr_off + i] = explain[p.x_off + i] * input_gradient(0u, i);
    }
}

@compute @workgroup_size(64)
fn guided_backprop(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i < p.in_len {
        explain[p.attr_off + i] = input_gradient(0u, i);
    }
}

// The raw Grad-CAM map (image 0 of the CAM buffer, after its relu) at input pixel q,
// nearest-neighbour as F.interpolate(mode = 'nearest'): source floor(o · in / out).
@compute @workgroup_size(64)
fn guided_grad_cam(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    let q = i % (p.in_height * p.in_width);
    let sy = min((q / p.in_width) * p.height / p.in_height, p.height - 1u);
    let sx = min((q % p.in_width) * p.width / p.in_width, p.width - 1u);
    explain[p.attr_off + i] = input_gradient(0u, i) * cam[p.cam_raw + sy * p.width + sx];
}

@compute @workgroup_size(64)
fn ig_reduce(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    var total = 0.0;
    for (var n = 0u; n < p.ig_steps; n++) {
        total += explain[p.ig_off + p.ig_steps + n] * input_gradient(n, i);
    }
    explain[p.attr_off + i] = total * explain[p.x_off + i];
}

@compute @workgroup_size(64)
fn smooth_reduce(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    var total = 0.0;
    for (var n = 0u; n < p.samples; n++) {
        total += abs(input_gradient(n, i));
    }
    explain[p.attr_off + i] = total / f32(p.samples);
}

// Patch positions (row or column) whose window covers coordinate y.
fn covering(y: u32, count: u32) -> vec2<u32> {
    var first = 0u;
    if y + 1u > p.occ_window {
        first = (y + 1u - p.occ_window + p.occ_stride - 1u) / p.occ_stride;
    }
    let last = min(y / p.occ_stride, count - 1u);
    return vec2<u32>(first, last);
}

// Mean over the patches covering element i (0 when none does) of the score's drop.
@compute @workgroup_size(64)
fn occlusion_reduce(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    let explained = bitcast<u32>(explain[p.class_off]);
    let sign = explain[p.sign_off];
    let q = i % (p.in_height * p.in_width);
    let rows = covering(q / p.in_width, p.occ_rows);
    let cols = covering(q % p.in_width, p.occ_cols);
    let initial = sign * explain[p.logits_off + explained];
    var total = 0.0;
    var count = 0u;
    for (var r = rows.x; r <= rows.y; r++) {
        for (var c = cols.x; c <= cols.y; c++) {
            let n = r * p.occ_cols + c;
            total += initial - sign * activations[p.logits_offset + n * p.classes + explained];
            count += 1u;
        }
    }
    explain[p.attr_off + i] = select(0.0, total / f32(count), count > 0u);
}

var<workgroup> red: array<f32, 256>;

// Dispatch (1, 1, 1) with 256 threads: the display map of the attribution.
@compute @workgroup_size(256)
fn display_map(@builtin(local_invocation_index) lid: u32) {
    let plane = p.in_height * p.in_width;
    var biggest = 0.0;
    for (var q = lid; q < plane; q += 256u) {
        var m = 0.0;
        for (var c = 0u; c < p.in_channels; c++) {
            m = max(m, abs(explain[p.attr_off + c * plane + q]));
        }
        explain[p.map_off + q] = m;
        biggest = max(biggest, m);
    }
    red[lid] = biggest;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if lid < half {
            red[lid] = max(red[lid], red[lid + half]);
        }
        workgroupBarrier();
    }
    let top = red[0];
    // Zero everywhere when the maximum is 0, infinite or NaN (NaN fails every comparison).
    let usable = top > 0.0 && top <= 3.4028235e38;
    for (var q = lid; q < plane; q += 256u) {
        explain[p.map_off + q] = select(0.0, explain[p.map_off + q] / top, usable);
    }
}

// Dispatch (1, 1, 1) with 64 threads: curve points (deletion 0..=S, then insertion), then
// the areas (trapezoid rule over s / S) after them.
@compute @workgroup_size(64)
fn faithfulness_curves(@builtin(local_invocation_index) lid: u32) {
    let explained = bitcast<u32>(explain[p.class_off]);
    let points = p.faith_steps + 1u;
    for (var n = lid; n < 2u * points; n += 64u) {
        explain[p.curve_off + n] = probabilities[n * p.classes + explained];
    }
    if lid < 2u {
        let first = lid * points;
        var area = 0.0;
        for (var s = 0u; s < p.faith_steps; s++) {
            area += 0.5 * (probabilities[(first + s) * p.classes + explained] +
                probabilities[(first + s + 1u) * p.classes + explained]);
        }
        explain[p.curve_off + 2u * points + lid] = area / f32(p.faith_steps);
    }
}
