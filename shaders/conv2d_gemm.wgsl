// Conv2d forward as an implicit GEMM, for batches: M = output pixels of a block of
// `images` images (flattened, so a 14 × 14 plane does not leave lanes idle at the edge
// of a tile), N = output channels, K = in_channels · k². Each workgroup computes an
// M_TILE × OC_BLOCK tile of C; each of its 64 invocations owns PIX pixels (64 apart, so
// neighbouring lanes read neighbouring inputs) and all OC_BLOCK channels of those pixels
// (PIX · OC_BLOCK / 4 vec4 accumulators). Weights are staged in workgroup memory a chunk
// of input channels at a time, four output channels per vec4 at an index that is the
// same for the whole workgroup; inputs are read straight from the arena (each is used by
// OC_BLOCK multiply-adds), im2col-style, with padding as a select on a clamped index so
// the tap loops have the same bounds in every invocation.
//
// `forward_relu` also writes the ReLU of each output (the scene draws both activations).
//
// Arena indexing as in conv2d.wgsl (image n of a region starts at `offset + n * len`,
// C, H, W inside an image). Dispatch: (groups_x, ceil(batch / images), groups_z), 64
// threads; g = wg.x + wg.z * num_workgroups.x enumerates (pixel tile, output-channel
// block) pairs, channel block fastest; wg.y is the block of images.
//
// Rust twins of the constants and the struct: gpu::conv_gemm.

struct GemmParams {
    in_offset: u32,
    out_offset: u32,
    in_len: u32,
    out_len: u32,
    in_channels: u32,
    in_height: u32,
    in_width: u32,
    out_channels: u32,
    out_height: u32,
    out_width: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    weight_offset: u32,
    bias_offset: u32,
    relu_offset: u32,  // first float of the fused ReLU's output region (forward_relu only)
    max_batch: u32,    // images the arena holds: blocks past it are not written
    images: u32,       // images per workgroup row (wg.y)
    oc_blocks: u32,    // ceil(out_channels / OC_BLOCK)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;

const PIX: u32 = 2u;              // output pixels per invocation
const M_TILE: u32 = 128u;         // output pixels per workgroup: 64 · PIX
const OC_BLOCK: u32 = 16u;        // output channels per workgroup: four vec4s per pixel
const WEIGHT_CAP: u32 = 1024u;    // vec4s of staged weights: chunk · k² taps · OC_BLOCK / 4

// Weights of the chunk: entry (c · k² + tap) · 4 + q holds output channels
// oc0 + 4q … oc0 + 4q + 3 of tap (c, tap); zeros past the last output channel.
var<workgroup> weight_tile: array<vec4<f32>, WEIGHT_CAP>;

fn weight_or_zero(oc: u32, ic: u32, tap: u32) -> f32 {
    if oc >= p.out_channels {
        return 0.0;
    }
    return weights[p.weight_offset + (oc * p.in_channels + ic) * p.kernel * p.kernel + tap];
}

// Where one output pixel of the tile reads and writes.
struct Pixel {
    valid: bool,
    image: u32,
    pixel: u32,        // oy · out_width + ox
    y0: i32,           // top row of its window (may be negative: padding)
    x0: i32,
    in_base: u32,      // first float of its image's input
}

fn locate(m: u32, m_end: u32, first_image: u32) -> Pixel {
    let plane = p.out_height * p.out_width;
    var px: Pixel;
    px.valid = m < m_end;
    let mm = select(0u, m, px.valid);
    px.image = first_image + mm / plane;
    px.pixel = mm % plane;
    let oy = px.pixel / p.out_width;
    let ox = px.pixel % p.out_width;
    px.y0 = i32(oy * p.stride) - i32(p.padding);
    px.x0 = i32(ox * p.stride) - i32(p.padding);
    px.in_base = p.in_offset + px.image * p.in_len;
    return px;
}

// The input under tap (y, x) of a plane starting at `plane`, zero in the padding.
fn input_at(plane: u32, y: i32, x: i32) -> f32 {
    let inside = y >= 0 && y < i32(p.in_height) && x >= 0 && x < i32(p.in_width);
    let cy = u32(clamp(y, 0, i32(p.in_height) - 1));
    let cx = u32(clamp(x, 0, i32(p.in_width) - 1));
    return select(0.0, activations[plane + cy * p.in_width + cx], inside);
}

fn store(px: Pixel, acc: vec4<f32>, oc: u32, relu: bool) {
    let plane = p.out_height * p.out_width;
    for (var q = 0u; q < 4u; q += 1u) {
        let channel = oc + q;
        if px.valid && channel < p.out_channels {
            let value = acc[q] + weights[p.bias_offset + channel];
            let at = px.image * p.out_len + channel * plane + px.pixel;
            activations[p.out_offset + at] = value;
            if relu {
                activations[p.relu_offset + at] = max(value, 0.0);
            }
        }
    }
}

fn conv(lid: u32, wg: vec3<u32>, groups: vec3<u32>, relu: bool) {
    let g = wg.x + wg.z * groups.x;
    let oc0 = (g % p.oc_blocks) * OC_BLOCK;
    let tile = g / p.oc_blocks;
    let first_image = wg.y * p.images;
    // Uniform across the workgroup: every invocation reaches the barriers below.
    let last_image = min(first_image + p.images, p.max_batch);
    let m_end = select(0u, (last_image - first_image) * p.out_height * p.out_width, last_image > first_image);
    let a = locate(tile * M_TILE + lid, m_end, first_image);
    let b = locate(tile * M_TILE + 64u + lid, m_end, first_image);

    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);

    let k = p.kernel;
    let taps = k * k;
    let in_plane = p.in_height * p.in_width;
    let chunk = max(1u, min(p.in_channels, WEIGHT_CAP / (taps * 4u)));
    for (var c0 = 0u; c0 < p.in_channels; c0 += chunk) {
        let count = min(chunk, p.in_channels - c0);
        workgroupBarrier();
        let entries = count * taps * 4u;
        for (var e = lid; e < entries; e += 64u) {
            let q = e % 4u;
            let t = e / 4u;
            let ic = c0 + t / taps;
            let tap = t % taps;
            let oc = oc0 + 4u * q;
            weight_tile[e] = vec4<f32>(
                weight_or_zero(oc, ic, tap),
                weight_or_zero(oc + 1u, ic, tap),
                weight_or_zero(oc + 2u, ic, tap),
                weight_or_zero(oc + 3u, ic, tap),
            );
        }
        workgroupBarrier();
        for (var c = 0u; c < count; c += 1u) {
            let channel = (c0 + c) * in_plane;
            let plane_a = a.in_base + channel;
            let plane_b = b.in_base + channel;
            for (var ky = 0u; ky < k; ky += 1u) {
                for (var kx = 0u; kx < k; kx += 1u) {
                    let xa = input_at(plane_a, a.y0 + i32(ky), a.x0 + i32(kx));
                    let xb = input_at(plane_b, b.y0 + i32(ky), b.x0 + i32(kx));
                    let e = (c * taps + ky * k + kx) * 4u;
                    let w0 = weight_tile[e];
                    let w1 = weight_tile[e + 1u];
                    let w2 = weight_tile[e + 2u];
                    let w3 = weight_tile[e + 3u];
                    a0 = fma(vec4<f32>(xa), w0, a0);
                    a1 = fma(vec4<f32>(xa), w1, a1);
                    a2 = fma(vec4<f32>(xa), w2, a2);
                    a3 = fma(vec4<f32>(xa), w3, a3);
                    b0 = fma(vec4<f32>(xb), w0, b0);
                    b1 = fma(vec4<f32>(xb), w1, b1);
                    b2 = fma(vec4<f32>(xb), w2, b2);
                    b3 = fma(vec4<f32>(xb), w3, b3);
                }
            }
        }
    }

    store(a, a0, oc0, relu);
    store(a, a1, oc0 + 4u, relu);
    store(a, a2, oc0 + 8u, relu);
    store(a, a3, oc0 + 12u, relu);
    store(b, b0, oc0, relu);
    store(b, b1, oc0 + 4u, relu);
    store(b, b2, oc0 + 8u, relu);
    store(b, b3, oc0 + 12u, relu);
}

@compute @workgroup_size(64)
fn forward(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    conv(lid, wg, groups, false);
}

@compute @workgroup_size(64)
fn forward_relu(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    conv(lid, wg, groups, true);
}
