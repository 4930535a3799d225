// The fused interactive path: one persistent workgroup per image walks a list of layer
// operations with a barrier between them, so a whole stage of the network is one dispatch.
//   forward:  layer forward ops (conv, ReLU, the other pointwise layers, max and average
//             pools, dense), each output's (min, max)
//             reduced right after it is written, and softmax + argmax + Grad-CAM target +
//             one-hot gradient seed.
//   backward: layer input gradients from the logits down to a conv block's output (dense,
//             ReLU and the other pointwise layers, flatten and dropout aliasing, max-pool
//             routing, average-pool sharing, conv), then the whole Grad-CAM map
//             (channel weights, weighted map, ReLU, min-max normalise, bilinear upsample,
//             normalise again), exactly as DESIGN.md "Grad-CAM, exactly".
//
// Why one workgroup: on a software driver (llvmpipe) every dispatch costs ~80 µs before it
// does anything while a workgroupBarrier costs ~0.25 µs, so walking the network with
// barriers beats a dispatch per layer at batch 1. The list is data (the uniform below, built
// by src/gpu/plan.rs from the model's layer table), so any sequential model gets a walk; an
// op too long for one invocation (llvmpipe ends loops after 65 535 iterations) runs as its
// own unfused kernel between two walks instead.
//
// Arena indexing as in conv2d.wgsl: image n of a region starts at `offset + n * len`, C, H,
// W inside an image; the image is wg.y (dispatch (1, batch, 1)), so a batch runs one
// workgroup per image. Every op's body is the uniform struct of the unfused kernel it
// replaces (shaders/params.wgsl), so both read the same numbers.

const WG: u32 = 64u;           // invocations per workgroup (Rust twin: params::FUSED_WORKGROUP)
const MAX_OPS: u32 = 48u;      // ops per walk (Rust twin: params::FUSED_MAX_OPS)
const NO_RANGE: u32 = 0xffffffffu;
const OC_BLOCK: u32 = 8u;      // output channels per pass of the conv op (two vec4s)
// Added to max − min, as pytorch_grad_cam does (model::reference::CAM_EPSILON).
const EPSILON: f32 = 1e-7;
// Rust twin: gpu::params::PREDICTED_SENTINEL.
const PREDICTED: u32 = 0xffffffffu;
// Floats of range partials per image and workgroup of a conv block kernel, as
// conv2d_tiled.wgsl. Rust twin: gpu::params::BLOCK_PARTIAL_FLOATS.
const PARTIAL_FLOATS: u32 = 8u;

// Op kinds. Rust twin: gpu::params::FusedOpKind.
const OP_RANGE: u32 = 0u;      // only the (min, max) of head.z .. + head.w
const OP_CONV: u32 = 1u;       // body: ConvParams
const OP_RELU: u32 = 2u;       // body: EltwiseParams
const OP_POOL: u32 = 3u;       // body: PoolParams
const OP_DENSE: u32 = 4u;      // body: DenseParams
const OP_SOFTMAX: u32 = 5u;    // body: SoftmaxParams
const OP_CAM: u32 = 6u;        // body: CamParams
const OP_PARTIALS: u32 = 7u;   // body: (slot, offset, workgroups, pair): a range from the
                               // partials of conv2d_tiled.wgsl's forward_block
const OP_POINTWISE: u32 = 8u;  // body: PointwiseParams

// One operation: head = (kind, range slot or NO_RANGE, range region offset, floats per
// image); body = the op's params struct, zero-padded to 16 words.
// Rust twin: gpu::params::FusedOp.
struct Op {
    head: vec4<u32>,
    body: array<vec4<u32>, 4>,
}

// Rust twin: gpu::params::FusedParams.
struct FusedParams {
    count: u32,       // ops in this walk
    activations: u32, // range slots per image (the value-range buffer's stride)
    _pad0: u32,
    _pad1: u32,
    ops: array<Op, MAX_OPS>,
}

@group(0) @binding(0) var<uniform> p: FusedParams;
// The packed weights as vec4s: every layer's weights and biases start on a multiple of 4
// floats (src/gpu/plan.rs pads them), so a row of a dense layer whose width is a multiple
// of 4 is whole vec4s: one 16-byte load instead of four scalar ones (each lane's load is a
// separate load on a CPU driver).
@group(0) @binding(1) var<storage, read> weights: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;
@group(0) @binding(4) var<storage, read_write> cam: array<f32>;
@group(0) @binding(5) var<storage, read_write> probabilities: array<f32>;
@group(0) @binding(6) var<storage, read_write> predicted: array<u32>;
@group(0) @binding(7) var<storage, read_write> targets: array<u32>;
@group(0) @binding(8) var<storage, read> request: array<u32>;
@group(0) @binding(9) var<storage, read_write> ranges: array<f32>;

var<workgroup> red_min: array<f32, WG>;
var<workgroup> red_max: array<f32, WG>;
var<workgroup> softmax_max: f32;
var<workgroup> softmax_sum: f32;
var<workgroup> softmax_class: u32;

fn weight(i: u32) -> f32 {
    return weights[i >> 2u][i & 3u];
}

fn word(op: u32, i: u32) -> u32 {
    return p.ops[op].body[i / 4u][i % 4u];
}

fn conv_params(op: u32) -> ConvParams {
    return ConvParams(word(op, 0u), word(op, 1u), word(op, 2u), word(op, 3u), word(op, 4u),
        word(op, 5u), word(op, 6u), word(op, 7u), word(op, 8u), word(op, 9u), word(op, 10u),
        word(op, 11u), word(op, 12u), word(op, 13u), word(op, 14u), word(op, 15u));
}

fn eltwise_params(op: u32) -> EltwiseParams {
    return EltwiseParams(word(op, 0u), word(op, 1u), word(op, 2u), word(op, 3u));
}

fn pointwise_params(op: u32) -> PointwiseParams {
    return PointwiseParams(word(op, 0u), word(op, 1u), word(op, 2u), word(op, 3u), word(op, 4u),
        word(op, 5u), word(op, 6u), word(op, 7u));
}

fn pool_params(op: u32) -> PoolParams {
    return PoolParams(word(op, 0u), word(op, 1u), word(op, 2u), word(op, 3u), word(op, 4u),
        word(op, 5u), word(op, 6u), word(op, 7u), word(op, 8u), word(op, 9u), word(op, 10u),
        word(op, 11u), word(op, 12u), word(op, 13u), word(op, 14u), word(op, 15u));
}

fn dense_params(op: u32) -> DenseParams {
    return DenseParams(word(op, 0u), word(op, 1u), word(op, 2u), word(op, 3u), word(op, 4u),
        word(op, 5u), word(op, 6u), word(op, 7u));
}

fn softmax_params(op: u32) -> SoftmaxParams {
    return SoftmaxParams(word(op, 0u), word(op, 1u), word(op, 2u), word(op, 3u));
}

fn cam_params(op: u32) -> CamParams {
    return CamParams(word(op, 0u), word(op, 1u), word(op, 2u), word(op, 3u), word(op, 4u),
        word(op, 5u), word(op, 6u), word(op, 7u), word(op, 8u), word(op, 9u), word(op, 10u),
        word(op, 11u), word(op, 12u), word(op, 13u), word(op, 14u), word(op, 15u));
}

// (min, max) over the workgroup of every invocation's (lo, hi). Call in uniform control
// flow; the result is the same in every invocation.
fn reduce_min_max(lid: u32, lo: f32, hi: f32) -> vec2<f32> {
    red_min[lid] = lo;
    red_max[lid] = hi;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if lid < half {
            red_min[lid] = min(red_min[lid], red_min[lid + half]);
            red_max[lid] = max(red_max[lid], red_max[lid + half]);
        }
        workgroupBarrier();
    }
    let result = vec2<f32>(red_min[0], red_max[0]);
    // Everyone has read slot 0 before the next reduction overwrites it.
    workgroupBarrier();
    return result;
}

// ---------------------------------------------------------------------------------------
// Forward ops (the same arithmetic as conv2d.wgsl, relu.wgsl, pointwise.wgsl,
// maxpool2d.wgsl, avgpool2d.wgsl, dense.wgsl).

fn conv_weight(c: ConvParams, oc: u32, ic: u32, tap: u32) -> f32 {
    // Past the last output channel the lanes read the last one's weights and store nothing.
    let o = min(oc, c.out_channels - 1u);
    return weight(c.weight_offset + (o * c.in_channels + ic) * c.kernel * c.kernel + tap);
}

fn conv_weight4(c: ConvParams, oc: u32, ic: u32, tap: u32) -> vec4<f32> {
    return vec4<f32>(conv_weight(c, oc, ic, tap), conv_weight(c, oc + 1u, ic, tap),
        conv_weight(c, oc + 2u, ic, tap), conv_weight(c, oc + 3u, ic, tap));
}

fn conv_bias4(c: ConvParams, oc: u32) -> vec4<f32> {
    let last = c.out_channels - 1u;
    return vec4<f32>(weight(c.bias_offset + min(oc, last)), weight(c.bias_offset + min(oc + 1u, last)),
        weight(c.bias_offset + min(oc + 2u, last)), weight(c.bias_offset + min(oc + 3u, last)));
}

fn conv_store(c: ConvParams, base: u32, oc: u32, pixel: u32, value: vec4<f32>) {
    let plane = c.out_height * c.out_width;
    for (var q = 0u; q < 4u; q++) {
        if oc + q < c.out_channels {
            activations[base + (oc + q) * plane + pixel] = value[q];
        }
    }
}

// Invocations own pixels; each walks OC_BLOCK output channels at a time. The channel block
// and the taps are the same in every invocation, so the weights are one scalar load each
// for the whole workgroup; only the input is a per-lane load, reused for eight channels.
// Taps in the padding read zero (adding 0 · w changes no sum), keeping the tap loops uniform.
fn conv_forward(c: ConvParams, n: u32, lid: u32) {
    let plane = c.out_height * c.out_width;
    let x_base = c.in_offset + n * c.in_len;
    let y_base = c.out_offset + n * c.out_len;
    let in_plane = c.in_height * c.in_width;
    for (var oc = 0u; oc < c.out_channels; oc += OC_BLOCK) {
        for (var pixel = lid; pixel < plane; pixel += WG) {
            let iy0 = i32((pixel / c.out_width) * c.stride) - i32(c.padding);
            let ix0 = i32((pixel % c.out_width) * c.stride) - i32(c.padding);
            var a0 = conv_bias4(c, oc);
            var a1 = conv_bias4(c, oc + 4u);
            for (var ic = 0u; ic < c.in_channels; ic++) {
                let channel = x_base + ic * in_plane;
                for (var ky = 0u; ky < c.kernel; ky++) {
                    let y = iy0 + i32(ky);
                    let row_inside = y >= 0 && y < i32(c.in_height);
                    let row = channel + u32(clamp(y, 0, i32(c.in_height) - 1)) * c.in_width;
                    for (var kx = 0u; kx < c.kernel; kx++) {
                        let x = ix0 + i32(kx);
                        let inside = row_inside && x >= 0 && x < i32(c.in_width);
                        let v = select(0.0, activations[row + u32(clamp(x, 0, i32(c.in_width) - 1))], inside);
                        let tap = ky * c.kernel + kx;
                        a0 = fma(vec4<f32>(v), conv_weight4(c, oc, ic, tap), a0);
                        a1 = fma(vec4<f32>(v), conv_weight4(c, oc + 4u, ic, tap), a1);
                    }
                }
            }
            conv_store(c, y_base, oc, pixel, a0);
            conv_store(c, y_base, oc + 4u, pixel, a1);
        }
    }
}

fn relu_forward(e: EltwiseParams, n: u32, lid: u32) {
    for (var i = lid; i < e.len; i += WG) {
        let at = n * e.len + i;
        activations[e.out_offset + at] = max(activations[e.in_offset + at], 0.0);
    }
}

// The scale and shift of element i's channel (affine only: the others have no weights).
fn channel_affine(e: PointwiseParams, i: u32) -> vec2<f32> {
    if e.op != POINTWISE_AFFINE {
        return vec2<f32>(1.0, 0.0);
    }
    let c = i / e.plane;
    return vec2<f32>(weight(e.scale_offset + c), weight(e.shift_offset + c));
}

fn pointwise_forward(e: PointwiseParams, n: u32, lid: u32) {
    for (var i = lid; i < e.len; i += WG) {
        let at = n * e.len + i;
        let affine = channel_affine(e, i);
        activations[e.out_offset + at] =
            pointwise_value(e, activations[e.in_offset + at], affine.x, affine.y);
    }
}

fn avg_pool_forward(q: PoolParams, n: u32, lid: u32) {
    let out_plane = q.out_height * q.out_width;
    for (var i = lid; i < q.out_len; i += WG) {
        let c = i / out_plane;
        let w = avg_window(q, (i % out_plane) / q.out_width, i % q.out_width);
        let plane_base = q.in_offset + n * q.in_len + c * q.in_height * q.in_width;
        var sum = 0.0;
        for (var y = w.rows.x; y < w.rows.y; y++) {
            for (var x = w.cols.x; x < w.cols.y; x++) {
                sum += activations[plane_base + y * q.in_width + x];
            }
        }
        activations[q.out_offset + n * q.out_len + i] = sum / w.divisor;
    }
}

// Index (within the plane at `plane_base` of `data`) of the first maximum of window
// (oy, ox), as maxpool2d.wgsl's window_argmax.
fn window_argmax(q: PoolParams, plane_base: u32, oy: u32, ox: u32) -> u32 {
    var best = (oy * q.stride) * q.in_width + ox * q.stride;
    var best_value = activations[plane_base + best];
    for (var ky = 0u; ky < q.kernel; ky++) {
        for (var kx = 0u; kx < q.kernel; kx++) {
            let j = (oy * q.stride + ky) * q.in_width + ox * q.stride + kx;
            let v = activations[plane_base + j];
            if v > best_value {
                best = j;
                best_value = v;
            }
        }
    }
    return best;
}

fn pool_forward(q: PoolParams, n: u32, lid: u32) {
    if q.mode != POOL_MAX {
        avg_pool_forward(q, n, lid);
        return;
    }
    let out_plane = q.out_height * q.out_width;
    for (var i = lid; i < q.out_len; i += WG) {
        let c = i / out_plane;
        let oy = (i % out_plane) / q.out_width;
        let ox = i % q.out_width;
        let plane_base = q.in_offset + n * q.in_len + c * q.in_height * q.in_width;
        activations[q.out_offset + n * q.out_len + i] =
            activations[plane_base + window_argmax(q, plane_base, oy, ox)];
    }
}

// Blocks of OC_BLOCK output features; inside a block the invocations split the inputs, so
// neighbouring lanes read neighbouring weights of each row (contiguous loads; lanes owning
// whole rows would read eight rows at once, the slowest pattern of a CPU driver), keep eight
// partial sums, and eight invocations then add the WG partials of one output each.
var<workgroup> dense_partial: array<f32, OC_BLOCK * WG>;

fn dense_forward(d: DenseParams, n: u32, lid: u32) {
    let x_base = d.in_offset + n * d.in_features;
    let last = d.out_features - 1u;
    // Rows that are whole vec4s: four inputs per lane and step.
    let vec4_rows = d.in_features % 4u == 0u && d.weight_offset % 4u == 0u;
    for (var o = 0u; o < d.out_features; o += OC_BLOCK) {
        // Rows past the last output repeat it; their sums are never stored.
        var rows: array<u32, 8>;
        for (var q = 0u; q < OC_BLOCK; q++) {
            rows[q] = d.weight_offset + min(o + q, last) * d.in_features;
        }
        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        if vec4_rows {
            // acc0[q] and acc1[q] collect row q's and row q + 4's dot product in four lanes
            // of a vec4 each, added up after the loop.
            var part: array<vec4<f32>, 8>;
            for (var i = 4u * lid; i < d.in_features; i += 4u * WG) {
                let x = vec4<f32>(activations[x_base + i], activations[x_base + i + 1u],
                    activations[x_base + i + 2u], activations[x_base + i + 3u]);
                for (var q = 0u; q < OC_BLOCK; q++) {
                    part[q] = fma(x, weights[(rows[q] + i) >> 2u], part[q]);
                }
            }
            for (var q = 0u; q < 4u; q++) {
                acc0[q] = dot(part[q], vec4<f32>(1.0));
                acc1[q] = dot(part[q + 4u], vec4<f32>(1.0));
            }
        } else {
            for (var i = lid; i < d.in_features; i += WG) {
                let x = vec4<f32>(activations[x_base + i]);
                acc0 = fma(x, vec4<f32>(weight(rows[0] + i), weight(rows[1] + i), weight(rows[2] + i), weight(rows[3] + i)), acc0);
                acc1 = fma(x, vec4<f32>(weight(rows[4] + i), weight(rows[5] + i), weight(rows[6] + i), weight(rows[7] + i)), acc1);
            }
        }
        for (var q = 0u; q < 4u; q++) {
            dense_partial[q * WG + lid] = acc0[q];
            dense_partial[(q + 4u) * WG + lid] = acc1[q];
        }
        workgroupBarrier();
        if lid < OC_BLOCK && o + lid < d.out_features {
            var sum = 0.0;
            for (var t = 0u; t < WG; t++) {
                sum += dense_partial[lid * WG + t];
            }
            activations[d.out_offset + n * d.out_features + o + lid] = weight(d.bias_offset + o + lid) + sum;
        }
        // The next block overwrites the partials.
        workgroupBarrier();
    }
}

// Softmax, argmax (ties to the first index), the Grad-CAM target and the one-hot seed
// d logit_target / d logits, as softmax.wgsl. One invocation scans the classes (there are
// few); all of them write.
fn softmax(s: SoftmaxParams, n: u32, lid: u32) {
    let base = s.logits_offset + n * s.classes;
    if lid == 0u {
        var best = activations[base];
        var index = 0u;
        for (var k = 1u; k < s.classes; k++) {
            let v = activations[base + k];
            if v > best {
                best = v;
                index = k;
            }
        }
        var sum = 0.0;
        for (var k = 0u; k < s.classes; k++) {
            sum += exp(activations[base + k] - best);
        }
        var chosen = request[0];
        if chosen == PREDICTED {
            chosen = index;
        }
        softmax_max = best;
        softmax_sum = sum;
        softmax_class = chosen;
        predicted[n] = index;
        targets[n] = chosen;
    }
    workgroupBarrier();
    let best = softmax_max;
    let total = softmax_sum;
    let chosen = softmax_class;
    for (var k = lid; k < s.classes; k += WG) {
        probabilities[n * s.classes + k] = exp(activations[base + k] - best) / total;
        gradients[base + k] = select(0.0, 1.0, k == chosen);
    }
}

// (min, max) of image n of the region at `offset` (`len` floats per image) into slot `slot`.
fn value_range(slot: u32, offset: u32, len: u32, n: u32, lid: u32) {
    let base = offset + n * len;
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    for (var i = lid; i < len; i += WG) {
        let v = activations[base + i];
        lo = min(lo, v);
        hi = max(hi, v);
    }
    let r = reduce_min_max(lid, lo, hi);
    if lid == 0u {
        ranges[2u * (n * p.activations + slot)] = r.x;
        ranges[2u * (n * p.activations + slot) + 1u] = r.y;
    }
}

// The range of slot `word 0` from the (min, max) partials the workgroups of a conv block
// kernel left in the value-range buffer: pair `word 3` of 4 per workgroup, `word 2`
// workgroups per image from `word 1`.
fn range_from_partials(op: u32, n: u32, lid: u32) {
    let slot = word(op, 0u);
    let groups = word(op, 2u);
    let base = word(op, 1u) + n * groups * PARTIAL_FLOATS + 2u * word(op, 3u);
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    for (var g = lid; g < groups; g += WG) {
        lo = min(lo, ranges[base + g * PARTIAL_FLOATS]);
        hi = max(hi, ranges[base + g * PARTIAL_FLOATS + 1u]);
    }
    let r = reduce_min_max(lid, lo, hi);
    if lid == 0u {
        ranges[2u * (n * p.activations + slot)] = r.x;
        ranges[2u * (n * p.activations + slot) + 1u] = r.y;
    }
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.y;
    for (var op = 0u; op < p.count; op++) {
        let head = p.ops[op].head;
        switch head.x {
            case OP_CONV: { conv_forward(conv_params(op), n, lid); }
            case OP_RELU: { relu_forward(eltwise_params(op), n, lid); }
            case OP_POINTWISE: { pointwise_forward(pointwise_params(op), n, lid); }
            case OP_POOL: { pool_forward(pool_params(op), n, lid); }
            case OP_DENSE: { dense_forward(dense_params(op), n, lid); }
            case OP_SOFTMAX: { softmax(softmax_params(op), n, lid); }
            case OP_PARTIALS: { range_from_partials(op, n, lid); }
            default: {}
        }
        // The next op (or the range below) reads what this one wrote.
        workgroupBarrier();
        if head.y != NO_RANGE {
            value_range(head.y, head.z, head.w, n, lid);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Backward ops: the input gradient of a layer from its output gradient (gather forms, as
// conv2d.wgsl's backward_input, relu.wgsl, pointwise.wgsl, maxpool2d.wgsl's and
// avgpool2d.wgsl's backward, dense.wgsl).

fn relu_backward(e: EltwiseParams, n: u32, lid: u32) {
    for (var i = lid; i < e.len; i += WG) {
        let at = n * e.len + i;
        let passes = activations[e.in_offset + at] > 0.0;
        gradients[e.in_offset + at] = select(0.0, gradients[e.out_offset + at], passes);
    }
}

fn pointwise_backward(e: PointwiseParams, n: u32, lid: u32) {
    for (var i = lid; i < e.len; i += WG) {
        let at = n * e.len + i;
        gradients[e.in_offset + at] = pointwise_gradient(e, activations[e.in_offset + at],
            activations[e.out_offset + at], gradients[e.out_offset + at], channel_affine(e, i).x);
    }
}

fn avg_pool_backward(q: PoolParams, n: u32, lid: u32) {
    let in_plane = q.in_height * q.in_width;
    for (var i = lid; i < q.in_len; i += WG) {
        let c = i / in_plane;
        let oy_range = avg_reaching(q, (i % in_plane) / q.in_width, q.out_height);
        let ox_range = avg_reaching(q, i % q.in_width, q.out_width);
        let dy_base = q.out_offset + n * q.out_len + c * q.out_height * q.out_width;
        var sum = 0.0;
        for (var oy = oy_range.x; oy < oy_range.y; oy++) {
            for (var ox = ox_range.x; ox < ox_range.y; ox++) {
                sum += gradients[dy_base + oy * q.out_width + ox] / avg_window(q, oy, ox).divisor;
            }
        }
        gradients[q.in_offset + n * q.in_len + i] = sum;
    }
}

fn pool_backward(q: PoolParams, n: u32, lid: u32) {
    if q.mode != POOL_MAX {
        avg_pool_backward(q, n, lid);
        return;
    }
    let in_plane = q.in_height * q.in_width;
    if q.kernel == q.stride {
        // Windows that do not overlap: each routes its gradient to its first maximum, one
        // argmax per window instead of one per input element; the rest (including rows and
        // columns no window reads) is zero. The same values as the gather form below.
        let dx_base = q.in_offset + n * q.in_len;
        for (var i = lid; i < q.in_len; i += WG) {
            gradients[dx_base + i] = 0.0;
        }
        workgroupBarrier();
        let out_plane = q.out_height * q.out_width;
        for (var i = lid; i < q.out_len; i += WG) {
            let c = i / out_plane;
            let oy = (i % out_plane) / q.out_width;
            let ox = i % q.out_width;
            let plane_base = dx_base + c * in_plane;
            let first_max = window_argmax(q, plane_base, oy, ox);
            gradients[plane_base + first_max] = gradients[q.out_offset + n * q.out_len + i];
        }
        return;
    }
    for (var i = lid; i < q.in_len; i += WG) {
        let c = i / in_plane;
        let within = i % in_plane;
        let iy = within / q.in_width;
        let ix = within % q.in_width;
        let plane_base = q.in_offset + n * q.in_len + c * in_plane;
        let dy_base = q.out_offset + n * q.out_len + c * q.out_height * q.out_width;
        var oy_lo = 0u;
        if iy + 1u > q.kernel {
            oy_lo = (iy + 1u - q.kernel + q.stride - 1u) / q.stride;
        }
        let oy_hi = min(iy / q.stride, q.out_height - 1u);
        var ox_lo = 0u;
        if ix + 1u > q.kernel {
            ox_lo = (ix + 1u - q.kernel + q.stride - 1u) / q.stride;
        }
        let ox_hi = min(ix / q.stride, q.out_width - 1u);
        var sum = 0.0;
        for (var oy = oy_lo; oy <= oy_hi; oy++) {
            for (var ox = ox_lo; ox <= ox_hi; ox++) {
                if window_argmax(q, plane_base, oy, ox) == within {
                    sum += gradients[dy_base + oy * q.out_width + ox];
                }
            }
        }
        gradients[q.in_offset + n * q.in_len + i] = sum;
    }
}

// Invocations own input features: neighbouring lanes read neighbouring weights of a row,
// and the output gradient is one scalar load for the workgroup.
fn dense_backward(d: DenseParams, n: u32, lid: u32) {
    let dy_base = d.out_offset + n * d.out_features;
    let dx_base = d.in_offset + n * d.in_features;
    if d.in_features % 4u == 0u && d.weight_offset % 4u == 0u {
        // Four neighbouring inputs per lane: one vec4 of each weight row.
        for (var i = 4u * lid; i < d.in_features; i += 4u * WG) {
            var sum = vec4<f32>(0.0);
            for (var o = 0u; o < d.out_features; o++) {
                sum = fma(weights[(d.weight_offset + o * d.in_features + i) >> 2u], vec4<f32>(gradients[dy_base + o]), sum);
            }
            gradients[dx_base + i] = sum.x;
            gradients[dx_base + i + 1u] = sum.y;
            gradients[dx_base + i + 2u] = sum.z;
            gradients[dx_base + i + 3u] = sum.w;
        }
    } else {
        for (var i = lid; i < d.in_features; i += WG) {
            var sum = 0.0;
            for (var o = 0u; o < d.out_features; o++) {
                sum = fma(weight(d.weight_offset + o * d.in_features + i), gradients[dy_base + o], sum);
            }
            gradients[dx_base + i] = sum;
        }
    }
}

// Taps of one axis that reach padded input coordinate `padded` from a real output
// position, as conv2d.wgsl's reaching_taps.
fn reaching_taps(c: ConvParams, padded: u32, out_size: u32) -> vec2<u32> {
    var lo = padded % c.stride;
    let reach = c.stride * (out_size - 1u);
    if padded > reach {
        lo = padded - reach;
    }
    let hi = min(c.kernel, padded + 1u);
    return vec2<u32>(lo, max(lo, hi));
}

fn conv_backward(c: ConvParams, n: u32, lid: u32) {
    let plane = c.in_height * c.in_width;
    let dy_base = c.out_offset + n * c.out_len;
    for (var i = lid; i < c.in_len; i += WG) {
        let ic = i / plane;
        let py = (i % plane) / c.in_width + c.padding;
        let px = i % c.in_width + c.padding;
        let ky_range = reaching_taps(c, py, c.out_height);
        let kx_range = reaching_taps(c, px, c.out_width);
        var sum = 0.0;
        for (var oc = 0u; oc < c.out_channels; oc++) {
            let channel_base = dy_base + oc * c.out_height * c.out_width;
            for (var ky = ky_range.x; ky < ky_range.y; ky += c.stride) {
                let dy_row = channel_base + ((py - ky) / c.stride) * c.out_width;
                let w_row = c.weight_offset + ((oc * c.in_channels + ic) * c.kernel + ky) * c.kernel;
                for (var kx = kx_range.x; kx < kx_range.y; kx += c.stride) {
                    sum += weight(w_row + kx) * gradients[dy_row + (px - kx) / c.stride];
                }
            }
        }
        gradients[c.in_offset + n * c.in_len + i] = sum;
    }
}

// Source coordinate along one axis for output index o (half-pixel centres, clamped), as
// grad_cam.wgsl's axis.
fn axis(o: u32, out_size: u32, in_size: u32) -> vec3<f32> {
    let s = max(f32((2u * o + 1u) * in_size) / f32(2u * out_size) - 0.5, 0.0);
    let i0 = min(u32(floor(s)), in_size - 1u);
    let i1 = min(i0 + 1u, in_size - 1u);
    return vec3<f32>(f32(i0), f32(i1), s - f32(i0));
}

// The whole Grad-CAM map of image n: the steps of grad_cam.wgsl and normalise.wgsl with a
// barrier between them instead of a dispatch.
fn grad_cam(g: CamParams, n: u32, lid: u32) {
    let plane = g.height * g.width;
    let act = g.act_offset + n * g.act_len;
    let alpha = g.weights_offset + n * g.weights_stride;
    // α_k = mean over the plane of G_k.
    for (var k = lid; k < g.channels; k += WG) {
        var sum = 0.0;
        for (var i = 0u; i < plane; i++) {
            sum += gradients[act + k * plane + i];
        }
        cam[alpha + k] = sum / f32(plane);
    }
    workgroupBarrier();
    // raw = max(0, Σ_k α_k A_k), ascending k like the CPU twin.
    let raw = g.raw_offset + n * g.raw_stride;
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    for (var i = lid; i < plane; i += WG) {
        var s = 0.0;
        for (var k = 0u; k < g.channels; k++) {
            s += cam[alpha + k] * activations[act + k * plane + i];
        }
        let v = max(s, 0.0);
        cam[raw + i] = v;
        lo = min(lo, v);
        hi = max(hi, v);
    }
    let raw_range = reduce_min_max(lid, lo, hi);
    let low = g.low_offset + n * g.low_stride;
    for (var i = lid; i < plane; i += WG) {
        cam[low + i] = (cam[raw + i] - raw_range.x) / (raw_range.y - raw_range.x + EPSILON);
    }
    workgroupBarrier();
    // Bilinear upsample of the normalised map to the input size, then normalise in place.
    let heat = g.heat_offset + n * g.heat_stride;
    let pixels = g.out_height * g.out_width;
    lo = 3.4028235e38;
    hi = -3.4028235e38;
    for (var i = lid; i < pixels; i += WG) {
        let ay = axis(i / g.out_width, g.out_height, g.height);
        let ax = axis(i % g.out_width, g.out_width, g.width);
        let y0 = u32(ay.x) * g.width;
        let y1 = u32(ay.y) * g.width;
        let x0 = u32(ax.x);
        let x1 = u32(ax.y);
        let top = cam[low + y0 + x0] * (1.0 - ax.z) + cam[low + y0 + x1] * ax.z;
        let bottom = cam[low + y1 + x0] * (1.0 - ax.z) + cam[low + y1 + x1] * ax.z;
        let v = top * (1.0 - ay.z) + bottom * ay.z;
        cam[heat + i] = v;
        lo = min(lo, v);
        hi = max(hi, v);
    }
    let heat_range = reduce_min_max(lid, lo, hi);
    // Each invocation rewrites the pixels it wrote: no barrier needed in between.
    for (var i = lid; i < pixels; i += WG) {
        cam[heat + i] = (cam[heat + i] - heat_range.x) / (heat_range.y - heat_range.x + EPSILON);
    }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.y;
    for (var op = 0u; op < p.count; op++) {
        switch p.ops[op].head.x {
            case OP_CONV: { conv_backward(conv_params(op), n, lid); }
            case OP_RELU: { relu_backward(eltwise_params(op), n, lid); }
            case OP_POINTWISE: { pointwise_backward(pointwise_params(op), n, lid); }
            case OP_POOL: { pool_backward(pool_params(op), n, lid); }
            case OP_DENSE: { dense_backward(dense_params(op), n, lid); }
            case OP_CAM: { grad_cam(cam_params(op), n, lid); }
            default: {}
        }
        // The next op reads the gradient this one wrote.
        workgroupBarrier();
    }
}
