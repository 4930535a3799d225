// Conv2d forward as an implicit GEMM, for batches: M = output pixels (rows of PIX pixels
// of one image), N = output channels, K = in_channels · k². Each workgroup of 8
// invocations computes PIX pixels of one output row for 16 output channels: invocation i
// owns output channels 16 · block + i and 16 · block + 8 + i and 2 · PIX accumulators
// (in registers), so every weight it loads feeds PIX multiply-adds and every input 16.
//
// Shaped for CPU drivers (llvmpipe runs 8 invocations as one SIMD vector of 256 bits):
//   - a load at an address that is the same in every invocation of the workgroup is one
//     scalar load and a broadcast, so the inputs (which all 8 output channels share) are
//     read at uniform addresses: the pixels and taps depend only on the workgroup;
//   - a load whose address differs per invocation is a loop over the lanes, except from a
//     uniform buffer, where it is a branch-free gather; so the weights travel in the
//     uniform itself (`w`, repacked on the host as [output channel][tap], padded to
//     whole vec4s) and each invocation gathers two per tap;
//   - 3 × 3 stride-1 layers (the common case) load each input row once per tap row into
//     registers and reuse it for the three horizontal taps.
// No workgroup memory, no barriers; padding is a select on a clamped (uniform) index.
//
// `forward_relu` also writes the ReLU of each output (the scene draws both activations).
//
// Arena indexing as in conv2d.wgsl (image n of a region starts at `offset + n * len`,
// C, H, W inside an image). Dispatch: (groups_x, batch, groups_z), 8 threads;
// g = wg.x + wg.z * num_workgroups.x enumerates (row segment, output-channel block)
// pairs, channel block fastest; wg.y is the image.
//
// Rust twins of the constants and the struct: gpu::conv_gemm.

// The conv's own uniform (`ConvParams`, declared once in params.wgsl), then what the
// gemm kernel adds: its launch shape and the layer's repacked weights.
struct GemmParams {
    conv: ConvParams,    // weight_offset unused (the weights are in `w`); relu_offset:
                         // first float of the fused ReLU's output region (forward_relu only)
    segments: u32,       // row segments per output row: ceil(out_width / PIX)
    oc_blocks: u32,      // ceil(out_channels / OC_BLOCK)
    k_vec4s: u32,        // vec4s per output channel in `w`: ceil(in_channels · k² / 4)
    _pad: u32,
    // Weights: float t of output channel oc is w[oc · k_vec4s + t / 4][t mod 4], t in
    // PyTorch order (input channel, ky, kx); zeros past the last tap.
    w: array<vec4<f32>, WEIGHT_VEC4S>,
}

const PIX: u32 = 14u;           // output pixels per invocation (one row segment)
const LANES: u32 = 8u;            // invocations per workgroup (one SIMD vector)
const OC_BLOCK: u32 = 16u;        // output channels per workgroup: two per invocation
const WEIGHT_VEC4S: u32 = 4091u;  // the uniform is at most 64 KiB: 80 + 16 · 4091 bytes

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;

// Weight t of the output channel whose weights start at vec4 `base` (a gather from the
// uniform: `base` differs per invocation).
fn weight(base: u32, t: u32) -> f32 {
    return p.w[base + t / 4u][t % 4u];
}

// The input at column x of the row starting at `row`, zero in the padding. Uniform.
fn input_at(row: u32, x: i32) -> f32 {
    let inside = x >= 0 && x < i32(p.conv.in_width);
    return select(0.0, activations[row + u32(clamp(x, 0, i32(p.conv.in_width) - 1))], inside);
}

fn store(at: u32, oc: u32, x: u32, value: f32, relu: bool) {
    if oc < p.conv.out_channels && x < p.conv.out_width {
        let v = value + weights[p.conv.bias_offset + oc];
        activations[p.conv.out_offset + at + x] = v;
        if relu {
            activations[p.conv.relu_offset + at + x] = max(v, 0.0);
        }
    }
}

fn conv(lid: u32, wg: vec3<u32>, groups: vec3<u32>, relu: bool) {
    let g = wg.x + wg.z * groups.x;
    let oc = (g % p.oc_blocks) * OC_BLOCK + lid;
    let oc_b = oc + LANES;
    let rest = g / p.oc_blocks;
    let oy = rest / p.segments;
    let ox0 = (rest % p.segments) * PIX;
    let image = wg.y;
    let base = min(oc, p.conv.out_channels - 1u) * p.k_vec4s;
    let base_b = min(oc_b, p.conv.out_channels - 1u) * p.k_vec4s;
    let k = p.conv.kernel;
    let s = i32(p.conv.stride);
    let in_plane = p.conv.in_height * p.conv.in_width;
    let in_base = p.conv.in_offset + image * p.conv.in_len;
    let y0 = i32(oy * p.conv.stride) - i32(p.conv.padding);
    let xs = i32(ox0 * p.conv.stride) - i32(p.conv.padding);
    var a0 = 0.0;
    var b0 = 0.0;
    var a1 = 0.0;
    var b1 = 0.0;
    var a2 = 0.0;
    var b2 = 0.0;
    var a3 = 0.0;
    var b3 = 0.0;
    var a4 = 0.0;
    var b4 = 0.0;
    var a5 = 0.0;
    var b5 = 0.0;
    var a6 = 0.0;
    var b6 = 0.0;
    var a7 = 0.0;
    var b7 = 0.0;
    var a8 = 0.0;
    var b8 = 0.0;
    var a9 = 0.0;
    var b9 = 0.0;
    var a10 = 0.0;
    var b10 = 0.0;
    var a11 = 0.0;
    var b11 = 0.0;
    var a12 = 0.0;
    var b12 = 0.0;
    var a13 = 0.0;
    var b13 = 0.0;

    var t = 0u;
    if k == 3u && s == 1 {
        for (var c = 0u; c < p.conv.in_channels; c += 1u) {
            let channel = in_base + c * in_plane;
            for (var ky = 0; ky < 3; ky += 1) {
                let y = y0 + ky;
                let w0 = weight(base, t);
                let w1 = weight(base, t + 1u);
                let w2 = weight(base, t + 2u);
                let v0 = weight(base_b, t);
                let v1 = weight(base_b, t + 1u);
                let v2 = weight(base_b, t + 2u);
                t += 3u;
                if y < 0 || y >= i32(p.conv.in_height) {
                    continue;
                }
                let row = channel + u32(y) * p.conv.in_width;
                let i0 = input_at(row, xs + 0);
                let i1 = input_at(row, xs + 1);
                let i2 = input_at(row, xs + 2);
                let i3 = input_at(row, xs + 3);
                let i4 = input_at(row, xs + 4);
                let i5 = input_at(row, xs + 5);
                let i6 = input_at(row, xs + 6);
                let i7 = input_at(row, xs + 7);
                let i8 = input_at(row, xs + 8);
                let i9 = input_at(row, xs + 9);
                let i10 = input_at(row, xs + 10);
                let i11 = input_at(row, xs + 11);
                let i12 = input_at(row, xs + 12);
                let i13 = input_at(row, xs + 13);
                let i14 = input_at(row, xs + 14);
                let i15 = input_at(row, xs + 15);
                a0 = fma(w0, i0, fma(w1, i1, fma(w2, i2, a0)));
                b0 = fma(v0, i0, fma(v1, i1, fma(v2, i2, b0)));
                a1 = fma(w0, i1, fma(w1, i2, fma(w2, i3, a1)));
                b1 = fma(v0, i1, fma(v1, i2, fma(v2, i3, b1)));
                a2 = fma(w0, i2, fma(w1, i3, fma(w2, i4, a2)));
                b2 = fma(v0, i2, fma(v1, i3, fma(v2, i4, b2)));
                a3 = fma(w0, i3, fma(w1, i4, fma(w2, i5, a3)));
                b3 = fma(v0, i3, fma(v1, i4, fma(v2, i5, b3)));
                a4 = fma(w0, i4, fma(w1, i5, fma(w2, i6, a4)));
                b4 = fma(v0, i4, fma(v1, i5, fma(v2, i6, b4)));
                a5 = fma(w0, i5, fma(w1, i6, fma(w2, i7, a5)));
                b5 = fma(v0, i5, fma(v1, i6, fma(v2, i7, b5)));
                a6 = fma(w0, i6, fma(w1, i7, fma(w2, i8, a6)));
                b6 = fma(v0, i6, fma(v1, i7, fma(v2, i8, b6)));
                a7 = fma(w0, i7, fma(w1, i8, fma(w2, i9, a7)));
                b7 = fma(v0, i7, fma(v1, i8, fma(v2, i9, b7)));
                a8 = fma(w0, i8, fma(w1, i9, fma(w2, i10, a8)));
                b8 = fma(v0, i8, fma(v1, i9, fma(v2, i10, b8)));
                a9 = fma(w0, i9, fma(w1, i10, fma(w2, i11, a9)));
                b9 = fma(v0, i9, fma(v1, i10, fma(v2, i11, b9)));
                a10 = fma(w0, i10, fma(w1, i11, fma(w2, i12, a10)));
                b10 = fma(v0, i10, fma(v1, i11, fma(v2, i12, b10)));
                a11 = fma(w0, i11, fma(w1, i12, fma(w2, i13, a11)));
                b11 = fma(v0, i11, fma(v1, i12, fma(v2, i13, b11)));
                a12 = fma(w0, i12, fma(w1, i13, fma(w2, i14, a12)));
                b12 = fma(v0, i12, fma(v1, i13, fma(v2, i14, b12)));
                a13 = fma(w0, i13, fma(w1, i14, fma(w2, i15, a13)));
                b13 = fma(v0, i13, fma(v1, i14, fma(v2, i15, b13)));
            }
        }
    } else {
        for (var c = 0u; c < p.conv.in_channels; c += 1u) {
            let channel = in_base + c * in_plane;
            for (var ky = 0u; ky < k; ky += 1u) {
                let y = y0 + i32(ky);
                let inside = y >= 0 && y < i32(p.conv.in_height);
                let row = channel + u32(clamp(y, 0, i32(p.conv.in_height) - 1)) * p.conv.in_width;
                for (var kx = 0u; kx < k; kx += 1u) {
                    let wt = weight(base, t);
                    let vt = weight(base_b, t);
                    t += 1u;
                    if inside {
                        let x = xs + i32(kx);
                        let x0 = input_at(row, x + 0 * s);
                        a0 = fma(wt, x0, a0);
                        b0 = fma(vt, x0, b0);
                        let x1 = input_at(row, x + 1 * s);
                        a1 = fma(wt, x1, a1);
                        b1 = fma(vt, x1, b1);
                        let x2 = input_at(row, x + 2 * s);
                        a2 = fma(wt, x2, a2);
                        b2 = fma(vt, x2, b2);
                        let x3 = input_at(row, x + 3 * s);
                        a3 = fma(wt, x3, a3);
                        b3 = fma(vt, x3, b3);
                        let x4 = input_at(row, x + 4 * s);
                        a4 = fma(wt, x4, a4);
                        b4 = fma(vt, x4, b4);
                        let x5 = input_at(row, x + 5 * s);
                        a5 = fma(wt, x5, a5);
                        b5 = fma(vt, x5, b5);
                        let x6 = input_at(row, x + 6 * s);
                        a6 = fma(wt, x6, a6);
                        b6 = fma(vt, x6, b6);
                        let x7 = input_at(row, x + 7 * s);
                        a7 = fma(wt, x7, a7);
                        b7 = fma(vt, x7, b7);
                        let x8 = input_at(row, x + 8 * s);
                        a8 = fma(wt, x8, a8);
                        b8 = fma(vt, x8, b8);
                        let x9 = input_at(row, x + 9 * s);
                        a9 = fma(wt, x9, a9);
                        b9 = fma(vt, x9, b9);
                        let x10 = input_at(row, x + 10 * s);
                        a10 = fma(wt, x10, a10);
                        b10 = fma(vt, x10, b10);
                        let x11 = input_at(row, x + 11 * s);
                        a11 = fma(wt, x11, a11);
                        b11 = fma(vt, x11, b11);
                        let x12 = input_at(row, x + 12 * s);
                        a12 = fma(wt, x12, a12);
                        b12 = fma(vt, x12, b12);
                        let x13 = input_at(row, x + 13 * s);
                        a13 = fma(wt, x13, a13);
                        b13 = fma(vt, x13, b13);
                    }
                }
            }
        }
    }

    let out_plane = p.conv.out_height * p.conv.out_width;
    let at = image * p.conv.out_len + min(oc, p.conv.out_channels - 1u) * out_plane + oy * p.conv.out_width;
    let at_b = image * p.conv.out_len + min(oc_b, p.conv.out_channels - 1u) * out_plane + oy * p.conv.out_width;
    store(at, oc, ox0 + 0u, a0, relu);
    store(at, oc, ox0 + 1u, a1, relu);
    store(at, oc, ox0 + 2u, a2, relu);
    store(at, oc, ox0 + 3u, a3, relu);
    store(at, oc, ox0 + 4u, a4, relu);
    store(at, oc, ox0 + 5u, a5, relu);
    store(at, oc, ox0 + 6u, a6, relu);
    store(at, oc, ox0 + 7u, a7, relu);
    store(at, oc, ox0 + 8u, a8, relu);
    store(at, oc, ox0 + 9u, a9, relu);
    store(at, oc, ox0 + 10u, a10, relu);
    store(at, oc, ox0 + 11u, a11, relu);
    store(at, oc, ox0 + 12u, a12, relu);
    store(at, oc, ox0 + 13u, a13, relu);
    store(at_b, oc_b, ox0 + 0u, b0, relu);
    store(at_b, oc_b, ox0 + 1u, b1, relu);
    store(at_b, oc_b, ox0 + 2u, b2, relu);
    store(at_b, oc_b, ox0 + 3u, b3, relu);
    store(at_b, oc_b, ox0 + 4u, b4, relu);
    store(at_b, oc_b, ox0 + 5u, b5, relu);
    store(at_b, oc_b, ox0 + 6u, b6, relu);
    store(at_b, oc_b, ox0 + 7u, b7, relu);
    store(at_b, oc_b, ox0 + 8u, b8, relu);
    store(at_b, oc_b, ox0 + 9u, b9, relu);
    store(at_b, oc_b, ox0 + 10u, b10, relu);
    store(at_b, oc_b, ox0 + 11u, b11, relu);
    store(at_b, oc_b, ox0 + 12u, b12, relu);
    store(at_b, oc_b, ox0 + 13u, b13, relu);
}

@compute @workgroup_size(8)
fn forward(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    conv(lid, wg, groups, false);
}

@compute @workgroup_size(8)
fn forward_relu(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    conv(lid, wg, groups, true);
}
