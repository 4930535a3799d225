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
// both activations are written because the scene draws both. `forward_block` adds a batch
// norm between them (folded scale and shift; an imported conv → bn → relu block), the
// 2 × 2 max-pool after them and the value-range partials (see block_epilogue).
//
// Arena indexing as in conv2d.wgsl (image n of a region starts at `offset + n * len`,
// C, H, W inside an image). Dispatch: (groups_x, batch, groups_z) with 64 threads; the
// group g = wg.x + wg.z * num_workgroups.x enumerates (tile, output-channel block) pairs,
// output-channel block fastest; the image is wg.y.
//
// Rust twins of the constants: gpu::kernel_choice::{CONV_TILE, CONV_OC_BLOCK,
// CONV_INPUT_CAP, CONV_WEIGHT_CAP}, which decide whether a layer fits this kernel (a
// chunk must hold at least one input channel) and bound its loops for llvmpipe.

// ConvBlockParams: shaders/params.wgsl (Rust twin: gpu::params::ConvBlockParams).

@group(0) @binding(0) var<uniform> p: ConvBlockParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(9) var<storage, read_write> ranges: array<f32>;

const TILE: u32 = 16u;            // output pixels per tile side: 8 × 8 invocations of 2 × 2
const OC_BLOCK: u32 = 8u;         // output channels per workgroup (two vec4s per pixel)
const INPUT_CAP: u32 = 2048u;     // floats of staged input: a chunk of channels' patches
const WEIGHT_CAP: u32 = 512u;     // vec4s of staged weights: chunk · k² taps · OC_BLOCK / 4
// Floats of range partials per image and workgroup: (min, max) of the conv, batch-norm,
// ReLU and pool outputs. Rust twin: gpu::params::BLOCK_PARTIAL_FLOATS.
const PARTIAL_FLOATS: u32 = 8u;

// Input patches of the current channel chunk, channel-major, each side × side floats.
var<workgroup> input_tile: array<f32, INPUT_CAP>;
// Weights of the chunk: entry (c · k² + ky · k + kx) · 2 + q holds output channels
// oc0 + 4q … oc0 + 4q + 3 of tap (c, ky, kx); zeros past the last output channel.
var<workgroup> weight_tile: array<vec4<f32>, WEIGHT_CAP>;

// Side of the input patch a TILE × TILE output tile reads.
fn patch_side() -> u32 {
    return (TILE - 1u) * p.conv.stride + p.conv.kernel;
}

// Input channels staged at once: as many as both workgroup arrays hold (at least one; the
// host only picks this kernel for layers where that is true).
fn chunk_channels() -> u32 {
    let side = patch_side();
    let taps = p.conv.kernel * p.conv.kernel;
    return max(1u, min(p.conv.in_channels, min(INPUT_CAP / (side * side), WEIGHT_CAP / (taps * (OC_BLOCK / 4u)))));
}

fn weight_or_zero(oc: u32, ic: u32, tap: u32) -> f32 {
    if oc >= p.conv.out_channels {
        return 0.0;
    }
    return weights[p.conv.weight_offset + (oc * p.conv.in_channels + ic) * p.conv.kernel * p.conv.kernel + tap];
}

fn bias_or_zero(oc: u32) -> f32 {
    if oc >= p.conv.out_channels {
        return 0.0;
    }
    return weights[p.conv.bias_offset + oc];
}

fn bias4(oc: u32) -> vec4<f32> {
    return vec4<f32>(bias_or_zero(oc), bias_or_zero(oc + 1u), bias_or_zero(oc + 2u), bias_or_zero(oc + 3u));
}

// The batch norm after the conv (forward_block with `affine`): channel oc's folded scale
// and shift; otherwise the identity.
fn affine(oc: u32, value: f32) -> f32 {
    if p.affine == 0u || oc >= p.conv.out_channels {
        return value;
    }
    return fma(value, weights[p.scale_offset + oc], weights[p.shift_offset + oc]);
}

fn store(n: u32, oc: u32, pixel: u32, value: f32, relu: bool) {
    if oc < p.conv.out_channels {
        let at = n * p.conv.out_len + oc * p.conv.out_height * p.conv.out_width + pixel;
        activations[p.conv.out_offset + at] = value;
        let normed = affine(oc, value);
        if p.affine != 0u {
            activations[p.affine_offset + at] = normed;
        }
        if relu {
            activations[p.conv.relu_offset + at] = max(normed, 0.0);
        }
    }
}

// Output channels oc0 + 4q … + 3 of pixel (oy, ox), if the pixel exists.
fn store4(n: u32, oy: u32, ox: u32, oc: u32, value: vec4<f32>, relu: bool) {
    if oy < p.conv.out_height && ox < p.conv.out_width {
        let pixel = oy * p.conv.out_width + ox;
        store(n, oc, pixel, value.x, relu);
        store(n, oc + 1u, pixel, value.y, relu);
        store(n, oc + 2u, pixel, value.z, relu);
        store(n, oc + 3u, pixel, value.w, relu);
    }
}

fn conv_tile(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, relu: bool, block: bool) {
    let oc_blocks = (p.conv.out_channels + OC_BLOCK - 1u) / OC_BLOCK;
    let tiles_x = (p.conv.out_width + TILE - 1u) / TILE;
    let tiles_y = (p.conv.out_height + TILE - 1u) / TILE;
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
    let taps = p.conv.kernel * p.conv.kernel;
    let chunk = chunk_channels();
    // Input coordinates of the patch's top-left corner (negative: inside the padding).
    let iy0 = i32(oy0 * p.conv.stride) - i32(p.conv.padding);
    let ix0 = i32(ox0 * p.conv.stride) - i32(p.conv.padding);
    let in_plane = p.conv.in_height * p.conv.in_width;
    let x_base = p.conv.in_offset + n * p.conv.in_len;
    // Where the taps of the 2 × 2 pixels start inside a staged patch.
    let own00 = py * p.conv.stride * side + px * p.conv.stride;
    let own01 = own00 + p.conv.stride;
    let own10 = own00 + p.conv.stride * side;
    let own11 = own10 + p.conv.stride;

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
    for (var c0 = 0u; c0 < p.conv.in_channels; c0 += chunk) {
        let count = min(chunk, p.conv.in_channels - c0);
        for (var e = lid; e < count * patch_len; e += 64u) {
            let c = e / patch_len;
            let r = e % patch_len;
            let y = iy0 + i32(r / side);
            let x = ix0 + i32(r % side);
            var v = 0.0;
            if y >= 0 && y < i32(p.conv.in_height) && x >= 0 && x < i32(p.conv.in_width) {
                v = activations[x_base + (c0 + c) * in_plane + u32(y) * p.conv.in_width + u32(x)];
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
            for (var ky = 0u; ky < p.conv.kernel; ky++) {
                let row = c * patch_len + ky * side;
                let w_row = (c * taps + ky * p.conv.kernel) * 2u;
                for (var kx = 0u; kx < p.conv.kernel; kx++) {
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
    if block {
        let acc = array<vec4<f32>, 8>(a000, a001, a010, a011, a100, a101, a110, a111);
        block_epilogue(n, g, oy, ox, oc0, acc, lid);
    }
}


// Half `h` (0 or 1) of invocation lid's eight partials.
fn set_partial(lid: u32, h: u32, v: vec4<f32>) {
    let at = 8u * lid + 4u * h;
    input_tile[at] = v.x;
    input_tile[at + 1u] = v.y;
    input_tile[at + 2u] = v.z;
    input_tile[at + 3u] = v.w;
}

fn get_partial(lid: u32, h: u32) -> vec4<f32> {
    let at = 8u * lid + 4u * h;
    return vec4<f32>(input_tile[at], input_tile[at + 1u], input_tile[at + 2u], input_tile[at + 3u]);
}

// (min, max) of a (min, max, min, max) pair of pairs.
fn merge(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(min(a.x, b.x), max(a.y, b.y), min(a.z, b.z), max(a.w, b.w));
}

// `forward_block`'s tail: the 2 × 2 stride-2 max-pool of this invocation's 2 × 2 pixels
// (exactly one pool window: TILE is even, so pixel blocks start on even rows and columns),
// and the workgroup's (min, max) of every conv, batch-norm, ReLU and pool output it
// wrote, for the value ranges (the forward walk reduces the workgroups' partials). `acc[pixel * 2 + q / 4]`
// holds channel oc0 + q of pixel (dy, dx) = (pixel / 2, pixel % 2).
fn block_epilogue(n: u32, g: u32, oy: u32, ox: u32, oc0: u32, acc: array<vec4<f32>, 8>, lid: u32) {
    var values = acc;
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    var affine_lo = 3.4028235e38;
    var affine_hi = -3.4028235e38;
    var pool_lo = 3.4028235e38;
    var pool_hi = -3.4028235e38;
    let pool_y = oy / 2u;
    let pool_x = ox / 2u;
    let pooled = p.pool_len > 0u && pool_y < p.pool_height && pool_x < p.pool_width;
    for (var q = 0u; q < OC_BLOCK; q++) {
        let oc = oc0 + q;
        if oc < p.conv.out_channels {
            var window_max = -3.4028235e38;
            for (var pixel = 0u; pixel < 4u; pixel++) {
                let v = values[pixel * 2u + q / 4u][q % 4u];
                // What the ReLU and the pool read: the batch norm's output, if any.
                let normed = affine(oc, v);
                if oy + pixel / 2u < p.conv.out_height && ox + pixel % 2u < p.conv.out_width {
                    lo = min(lo, v);
                    hi = max(hi, v);
                    affine_lo = min(affine_lo, normed);
                    affine_hi = max(affine_hi, normed);
                }
                window_max = max(window_max, normed);
            }
            if pooled {
                // max(relu(·)) = relu(max(·)): the pool of the ReLU's output.
                let v = select(window_max, max(window_max, 0.0), p.relu != 0u);
                let at = (oc * p.pool_height + pool_y) * p.pool_width + pool_x;
                activations[p.pool_offset + n * p.pool_len + at] = v;
                pool_lo = min(pool_lo, v);
                pool_hi = max(pool_hi, v);
            }
        }
    }
    // The reduction reuses the input tile (every invocation is past the conv loop's last
    // barrier, so nobody reads it any more): four floats per invocation.
    set_partial(lid, 0u, vec4<f32>(lo, hi, pool_lo, pool_hi));
    set_partial(lid, 1u, vec4<f32>(affine_lo, affine_hi, 0.0, 0.0));
    workgroupBarrier();
    for (var half = 32u; half > 0u; half >>= 1u) {
        if lid < half {
            set_partial(lid, 0u, merge(get_partial(lid, 0u), get_partial(lid + half, 0u)));
            set_partial(lid, 1u, merge(get_partial(lid, 1u), get_partial(lid + half, 1u)));
        }
        workgroupBarrier();
    }
    if lid == 0u {
        let r = get_partial(0u, 0u);
        let a = get_partial(0u, 1u);
        let at = p.partials_offset + (n * p.groups + g) * PARTIAL_FLOATS;
        ranges[at] = r.x;
        ranges[at + 1u] = r.y;
        // Without a batch norm its pair is the conv's (and unused).
        ranges[at + 2u] = a.x;
        ranges[at + 3u] = a.y;
        // The ReLU is monotonic: its range is its input's, clamped at zero.
        ranges[at + 4u] = max(a.x, 0.0);
        ranges[at + 5u] = max(a.y, 0.0);
        ranges[at + 6u] = r.z;
        ranges[at + 7u] = r.w;
    }
}

@compute @workgroup_size(64)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    conv_tile(wg, nwg, lid, false, false);
}

@compute @workgroup_size(64)
fn forward_relu(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    conv_tile(wg, nwg, lid, true, false);
}

// The conv, the batch norm after it (when `affine` is 1), the ReLU (when `relu` is 1), the
// 2 × 2 stride-2 max-pool after that
// (when `pool_len` > 0) and every output's value-range partials: a whole conv block in
// one dispatch, on as many workgroups as the tiled conv.
@compute @workgroup_size(64)
fn forward_block(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    conv_tile(wg, nwg, lid, p.relu != 0u, true);
}
