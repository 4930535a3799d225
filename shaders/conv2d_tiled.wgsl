// Conv2d forward, tiled: each workgroup computes a TILE × TILE patch of output pixels for
// OC_BLOCK output channels; each of its 64 invocations owns a 2 × 2 block of those pixels
// and all OC_BLOCK channels (eight vec4 accumulators: few enough to stay in registers on a
// CPU driver, and a workgroup count that keeps its threads busy at batch 1). The input patch the outputs read
// (with its halo, zero where the window hangs into the padding) and the block's weights
// are staged in workgroup memory, a chunk of input channels at a time, so:
//   - every input value is fetched from the arena once per workgroup instead of once per
//     tap and output channel (the direct kernel reads it k² · out_channels times);
//   - per tap, an invocation loads 4 inputs and 8 weights (as two vec4s, at an index
//     that is the same for the whole workgroup) and does 32 multiply-adds: loads, not
//     arithmetic, bound this on every device, and most of all on llvmpipe, where each
//     lane's load is a separate scalar load;
//   - the tap loops have the same bounds in every invocation (padding is zeros in the
//     patch), so no invocation diverges and nothing is bounds-checked per tap.
// `forward_relu` also writes the ReLU of each output, saving the separate ReLU dispatch;
// both activations are written because the scene draws both.
//
// Arena indexing as in conv2d.wgsl (image n of a region starts at `offset + n * len`,
// C, H, W inside an image). Dispatch: (groups_x, batch, groups_z) with 64 threads; the
// group g = wg.x + wg.z * num_workgroups.x enumerates (tile, output-channel block) pairs,
// output-channel block fastest; the image is wg.y.
//
// Rust twins of the constants: gpu::kernel_choice::{CONV_TILE, CONV_OC_BLOCK,
// CONV_INPUT_CAP, CONV_WEIGHT_CAP}, which decide whether a layer fits this kernel (a
// chunk must hold at least one input channel) and bound its loops for llvmpipe.

// ConvParams: shaders/params.wgsl (Rust twin: gpu::params::ConvParams).

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;

const TILE: u32 = 16u;            // output pixels per tile side: 8 × 8 invocations of 2 × 2
const OC_BLOCK: u32 = 8u;         // output channels per workgroup (two vec4s per pixel)
const INPUT_CAP: u32 = 2048u;     // floats of staged input: a chunk of channels' patches
const WEIGHT_CAP: u32 = 512u;     // vec4s of staged weights: chunk · k² taps · OC_BLOCK / 4

// Input patches of the current channel chunk, channel-major, each side × side floats.
var<workgroup> input_tile: array<f32, INPUT_CAP>;
// Weights of the chunk: entry (c · k² + ky · k + kx) · 2 + q holds output channels
// oc0 + 4q … oc0 + 4q + 3 of tap (c, ky, kx); zeros past the last output channel.
var<workgroup> weight_tile: array<vec4<f32>, WEIGHT_CAP>;

// Side of the input patch a TILE × TILE output tile reads.
fn patch_side() -> u32 {
    return (TILE - 1u) * p.stride + p.kernel;
}

// Input channels staged at once: as many as both workgroup arrays hold (at least one; the
// host only picks this kernel for layers where that is true).
fn chunk_channels() -> u32 {
    let side = patch_side();
    let taps = p.kernel * p.kernel;
    return max(1u, min(p.in_channels, min(INPUT_CAP / (side * side), WEIGHT_CAP / (taps * (OC_BLOCK / 4u)))));
}

fn weight_or_zero(oc: u32, ic: u32, tap: u32) -> f32 {
    if oc >= p.out_channels {
        return 0.0;
    }
    return weights[p.weight_offset + (oc * p.in_channels + ic) * p.kernel * p.kernel + tap];
}

fn bias_or_zero(oc: u32) -> f32 {
    if oc >= p.out_channels {
        return 0.0;
    }
    return weights[p.bias_offset + oc];
}

fn bias4(oc: u32) -> vec4<f32> {
    return vec4<f32>(bias_or_zero(oc), bias_or_zero(oc + 1u), bias_or_zero(oc + 2u), bias_or_zero(oc + 3u));
}

fn store(base: u32, relu_base: u32, oc: u32, pixel: u32, value: f32, relu: bool) {
    if oc < p.out_channels {
        let at = oc * p.out_height * p.out_width + pixel;
        activations[base + at] = value;
        if relu {
            activations[relu_base + at] = max(value, 0.0);
        }
    }
}

// Output channels oc0 + 4q … + 3 of pixel (oy, ox), if the pixel exists.
fn store4(n: u32, oy: u32, ox: u32, oc: u32, value: vec4<f32>, relu: bool) {
    if oy < p.out_height && ox < p.out_width {
        let pixel = oy * p.out_width + ox;
        let base = p.out_offset + n * p.out_len;
        let relu_base = p.relu_offset + n * p.out_len;
        store(base, relu_base, oc, pixel, value.x, relu);
        store(base, relu_base, oc + 1u, pixel, value.y, relu);
        store(base, relu_base, oc + 2u, pixel, value.z, relu);
        store(base, relu_base, oc + 3u, pixel, value.w, relu);
    }
}

fn conv_tile(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, relu: bool) {
    let oc_blocks = (p.out_channels + OC_BLOCK - 1u) / OC_BLOCK;
    let tiles_x = (p.out_width + TILE - 1u) / TILE;
    let tiles_y = (p.out_height + TILE - 1u) / TILE;
    let g = wg.x + wg.z * nwg.x;
    // Uniform across the workgroup (z folding may add spare groups), so the barriers
    // below stay in uniform control flow.
    if g >= oc_blocks * tiles_x * tiles_y {
        return;
    }
    let n = wg.y;
    let oc0 = (g % oc_blocks) * OC_BLOCK;
    let tile = g / oc_blocks;
    let oy0 = (tile / tiles_x) * TILE;
    let ox0 = (tile % tiles_x) * TILE;
    // This invocation's 2 × 2 pixels start at (py, px) inside the tile.
    let py = (lid / 8u) * 2u;
    let px = (lid % 8u) * 2u;

    let side = patch_side();
    let patch_len = side * side;
    let taps = p.kernel * p.kernel;
    let chunk = chunk_channels();
    // Input coordinates of the patch's top-left corner (negative: inside the padding).
    let iy0 = i32(oy0 * p.stride) - i32(p.padding);
    let ix0 = i32(ox0 * p.stride) - i32(p.padding);
    let in_plane = p.in_height * p.in_width;
    let x_base = p.in_offset + n * p.in_len;
    // Where the taps of the 2 × 2 pixels start inside a staged patch.
    let own00 = py * p.stride * side + px * p.stride;
    let own01 = own00 + p.stride;
    let own10 = own00 + p.stride * side;
    let own11 = own10 + p.stride;

    // a<pixel><q>: output channels oc0 + 4q … + 3 of pixel 00, 01, 10 or 11.
    let b0 = bias4(oc0);
    let b1 = bias4(oc0 + 4u);
    var a000 = b0;
    var a001 = b1;
    var a010 = b0;
    var a011 = b1;
    var a100 = b0;
    var a101 = b1;
    var a110 = b0;
    var a111 = b1;
    for (var c0 = 0u; c0 < p.in_channels; c0 += chunk) {
        let count = min(chunk, p.in_channels - c0);
        for (var e = lid; e < count * patch_len; e += 64u) {
            let c = e / patch_len;
            let r = e % patch_len;
            let y = iy0 + i32(r / side);
            let x = ix0 + i32(r % side);
            var v = 0.0;
            if y >= 0 && y < i32(p.in_height) && x >= 0 && x < i32(p.in_width) {
                v = activations[x_base + (c0 + c) * in_plane + u32(y) * p.in_width + u32(x)];
            }
            input_tile[e] = v;
        }
        for (var e = lid; e < count * taps * 2u; e += 64u) {
            let q = e % 2u;
            let tap = e / 2u;
            let ic = c0 + tap / taps;
            let kk = tap % taps;
            let oc = oc0 + 4u * q;
            weight_tile[e] = vec4<f32>(
                weight_or_zero(oc, ic, kk),
                weight_or_zero(oc + 1u, ic, kk),
                weight_or_zero(oc + 2u, ic, kk),
                weight_or_zero(oc + 3u, ic, kk),
            );
        }
        workgroupBarrier();
        for (var c = 0u; c < count; c++) {
            for (var ky = 0u; ky < p.kernel; ky++) {
                let row = c * patch_len + ky * side;
                let w_row = (c * taps + ky * p.kernel) * 2u;
                for (var kx = 0u; kx < p.kernel; kx++) {
                    let at = row + kx;
                    let v00 = vec4<f32>(input_tile[at + own00]);
                    let v01 = vec4<f32>(input_tile[at + own01]);
                    let v10 = vec4<f32>(input_tile[at + own10]);
                    let v11 = vec4<f32>(input_tile[at + own11]);
                    let w = w_row + kx * 2u;
                    let w0 = weight_tile[w];
                    let w1 = weight_tile[w + 1u];
                    a000 = fma(v00, w0, a000);
                    a001 = fma(v00, w1, a001);
                    a010 = fma(v01, w0, a010);
                    a011 = fma(v01, w1, a011);
                    a100 = fma(v10, w0, a100);
                    a101 = fma(v10, w1, a101);
                    a110 = fma(v11, w0, a110);
                    a111 = fma(v11, w1, a111);
                }
            }
        }
        // The next chunk overwrites the tiles: everyone must be done reading them.
        workgroupBarrier();
    }

    let oy = oy0 + py;
    let ox = ox0 + px;
    store4(n, oy, ox, oc0, a000, relu);
    store4(n, oy, ox, oc0 + 4u, a001, relu);
    store4(n, oy, ox + 1u, oc0, a010, relu);
    store4(n, oy, ox + 1u, oc0 + 4u, a011, relu);
    store4(n, oy + 1u, ox, oc0, a100, relu);
    store4(n, oy + 1u, ox, oc0 + 4u, a101, relu);
    store4(n, oy + 1u, ox + 1u, oc0, a110, relu);
    store4(n, oy + 1u, ox + 1u, oc0 + 4u, a111, relu);
}

@compute @workgroup_size(64)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    conv_tile(wg, nwg, lid, false);
}

@compute @workgroup_size(64)
fn forward_relu(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    conv_tile(wg, nwg, lid, true);
}
