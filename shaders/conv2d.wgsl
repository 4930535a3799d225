// Conv2d forward (direct) and its input gradient (gather form of the transposed conv).
//
// Tensors are flat f32 arrays in the activation / gradient arenas, one region per activation
// (see src/gpu/arena.rs). Image n of a region starts at `offset + n * len`; inside an image
// the order is PyTorch's C, H, W. Weights are `[out, in, k, k]`, biases `[out]`, both in the
// packed weight buffer.
//
// Dispatch: (groups_x, batch, groups_z) with 64 threads per workgroup. The image is
// workgroup_id.y; the element inside the image is (wg.x + wg.z * num_workgroups.x) * 64 +
// local index, so a layer with more than 65535 workgroups per image folds into z. The
// uniforms hold only static shapes and offsets: the batch size is the dispatch's y.

// ConvParams: shaders/params.wgsl (Rust twin: gpu::params::ConvParams).

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;

fn element_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.z * nwg.x) * 64u + lid;
}

fn weight_index(oc: u32, ic: u32, ky: u32, kx: u32) -> u32 {
    return p.weight_offset + ((oc * p.in_channels + ic) * p.kernel + ky) * p.kernel + kx;
}

// Taps [lo, hi) of a window whose first tap sits at input coordinate `first` (negative
// inside the padding) that land inside an input of `size`: the rest read zero padding.
fn tap_range(first: i32, size: u32) -> vec2<u32> {
    let lo = u32(max(0, -first));
    let hi = u32(clamp(i32(size) - first, 0, i32(p.kernel)));
    return vec2<u32>(lo, max(lo, hi));
}

// One thread per output element (oc, oy, ox): bias + Σ_ic Σ_ky Σ_kx w · x over the taps
// inside the input (zero padding contributes nothing, so those taps are skipped by the
// loop bounds). Same summation order as the CPU twin.
@compute @workgroup_size(64)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wg, nwg, lid);
    if i >= p.out_len {
        return;
    }
    let n = wg.y;
    let plane = p.out_height * p.out_width;
    let oc = i / plane;
    let oy = (i % plane) / p.out_width;
    let ox = i % p.out_width;
    // Input coordinates of the window's top-left tap (negative: inside the padding).
    let iy0 = i32(oy * p.stride) - i32(p.padding);
    let ix0 = i32(ox * p.stride) - i32(p.padding);
    let ky_range = tap_range(iy0, p.in_height);
    let kx_range = tap_range(ix0, p.in_width);
    let x_base = p.in_offset + n * p.in_len;
    var sum = weights[p.bias_offset + oc];
    for (var ic = 0u; ic < p.in_channels; ic++) {
        let channel_base = x_base + ic * p.in_height * p.in_width;
        for (var ky = ky_range.x; ky < ky_range.y; ky++) {
            let x_row = channel_base + u32(iy0 + i32(ky)) * p.in_width;
            let w_row = weight_index(oc, ic, ky, 0u);
            for (var kx = kx_range.x; kx < kx_range.y; kx++) {
                sum += weights[w_row + kx] * activations[x_row + u32(ix0 + i32(kx))];
            }
        }
    }
    activations[p.out_offset + n * p.out_len + i] = sum;
}

// Taps of one axis that reach input coordinate `padded` (= input index + padding) from a
// real output position: ky ≡ padded (mod stride), ky <= padded, ky < kernel, and output
// index (padded − ky) / stride < out_size. Returns (first tap, one past the last tap);
// step by `stride` between them.
fn reaching_taps(padded: u32, out_size: u32) -> vec2<u32> {
    var lo = padded % p.stride;
    let reach = p.stride * (out_size - 1u); // farthest output start from coordinate 0
    if padded > reach {
        lo = padded - reach; // ≡ padded (mod stride) as well
    }
    let hi = min(p.kernel, padded + 1u);
    return vec2<u32>(lo, max(lo, hi));
}

// One thread per INPUT element (ic, iy, ix): gathers every output position whose window
// covers it. Output (oy, ox) reads input iy = oy * stride + ky - padding, so for tap ky the
// output row is oy = (iy + padding - ky) / stride, valid only when that division is exact
// and the row exists — `reaching_taps` enumerates exactly those taps. No atomics: each
// input gradient is written by exactly one thread.
@compute @workgroup_size(64)
fn backward_input(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    let n = wg.y;
    let plane = p.in_height * p.in_width;
    let ic = i / plane;
    let py = (i % plane) / p.in_width + p.padding;
    let px = i % p.in_width + p.padding;
    let ky_range = reaching_taps(py, p.out_height);
    let kx_range = reaching_taps(px, p.out_width);
    let dy_base = p.out_offset + n * p.out_len;
    var sum = 0.0;
    for (var oc = 0u; oc < p.out_channels; oc++) {
        let channel_base = dy_base + oc * p.out_height * p.out_width;
        for (var ky = ky_range.x; ky < ky_range.y; ky += p.stride) {
            let dy_row = channel_base + ((py - ky) / p.stride) * p.out_width;
            let w_row = weight_index(oc, ic, ky, 0u);
            for (var kx = kx_range.x; kx < kx_range.y; kx += p.stride) {
                sum += weights[w_row + kx] * gradients[dy_row + (px - kx) / p.stride];
            }
        }
    }
    gradients[p.in_offset + n * p.in_len + i] = sum;
}
