// Grad-CAM from the target conv block's activations A [K, h, w] and gradients G (same
// region in the gradient arena), exactly as DESIGN.md "Grad-CAM, exactly":
//   channel_weights: α_k = mean over h·w of G_k
//   weighted_map:    raw = max(0, Σ_k α_k A_k)
//   (normalise.wgsl: low = (raw − min) / (max − min + 1e-7))
//   upsample:        bilinear from `low` to the input size (half-pixel centres, clamped
//                    edges); normalise.wgsl then normalises it in place the same way.
//
// Image n of the block's activation starts at `act_offset + n * act_len`. CAM regions
// (src/gpu/arena.rs, CamLayout): image n of a region starts at `offset + n * stride`.
// The image is always wg.y. The map kernels are one thread per pixel rather than one
// workgroup per image: every thread's loops stay short (K taps), which keeps large maps
// fast on real GPUs and within llvmpipe's limit of 65 535 loop iterations per invocation
// (it silently stops longer loops).

// CamParams: shaders/params.wgsl (Rust twin: gpu::params::CamParams).

@group(0) @binding(0) var<uniform> p: CamParams;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;
@group(0) @binding(4) var<storage, read_write> cam: array<f32>;

var<workgroup> partial: array<f32, 256>;

// Dispatch (K, batch, 1) (folded into z past 65535) with 256 threads: one workgroup per
// (channel k, image) sums the channel's gradient plane, then a tree reduction.
@compute @workgroup_size(256)
fn channel_weights(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = wg.x + wg.z * nwg.x;
    if k >= p.channels {
        return; // uniform per workgroup, so the barriers below stay legal
    }
    let n = wg.y;
    let plane = p.height * p.width;
    let base = p.act_offset + n * p.act_len + k * plane;
    var sum = 0.0;
    for (var i = lid; i < plane; i += 256u) {
        sum += gradients[base + i];
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if lid < half {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        cam[p.weights_offset + n * p.weights_stride + k] = partial[0] / f32(plane);
    }
}

// Dispatch (ceil(h·w / 64), batch, z) with 64 threads: one thread per pixel i of the
// block's map, summing over channels in ascending k like the CPU twin.
@compute @workgroup_size(64)
fn weighted_map(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wg.x + wg.z * nwg.x) * 64u + lid;
    let plane = p.height * p.width;
    if i >= plane {
        return;
    }
    let n = wg.y;
    let a_base = p.act_offset + n * p.act_len + i;
    let alpha_base = p.weights_offset + n * p.weights_stride;
    var s = 0.0;
    for (var k = 0u; k < p.channels; k++) {
        s += cam[alpha_base + k] * activations[a_base + k * plane];
    }
    cam[p.raw_offset + n * p.raw_stride + i] = max(s, 0.0);
}

// Source coordinate along one axis for output index o: s = (o + 0.5) · in / out − 0.5,
// clamped at 0; i0 = min(floor(s), in − 1), i1 = min(i0 + 1, in − 1), weight s − i0.
// Computed as ((2o + 1) · in) / (2 · out) − 0.5 so the only rounding is one division.
fn axis(o: u32, out_size: u32, in_size: u32) -> vec3<f32> {
    let s = max(f32((2u * o + 1u) * in_size) / f32(2u * out_size) - 0.5, 0.0);
    let i0 = min(u32(floor(s)), in_size - 1u);
    let i1 = min(i0 + 1u, in_size - 1u);
    return vec3<f32>(f32(i0), f32(i1), s - f32(i0));
}

// Dispatch (ceil(H·W / 64), batch, z) with 64 threads: one thread per pixel of the
// input-resolution heatmap, interpolating the normalised low-resolution map. The result
// is normalised afterwards by normalise.wgsl.
@compute @workgroup_size(64)
fn upsample(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wg.x + wg.z * nwg.x) * 64u + lid;
    if i >= p.out_height * p.out_width {
        return;
    }
    let n = wg.y;
    let low_base = p.low_offset + n * p.low_stride;
    let ay = axis(i / p.out_width, p.out_height, p.height);
    let ax = axis(i % p.out_width, p.out_width, p.width);
    let y0 = u32(ay.x) * p.width;
    let y1 = u32(ay.y) * p.width;
    let x0 = u32(ax.x);
    let x1 = u32(ax.y);
    let top = cam[low_base + y0 + x0] * (1.0 - ax.z) + cam[low_base + y0 + x1] * ax.z;
    let bottom = cam[low_base + y1 + x0] * (1.0 - ax.z) + cam[low_base + y1 + x1] * ax.z;
    cam[p.heat_offset + n * p.heat_stride + i] = top * (1.0 - ay.z) + bottom * ay.z;
}
