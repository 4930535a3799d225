// The uniform structs of the compute shaders, declared once. The pipeline loader
// (src/gpu/pipelines.rs) puts this file in front of every compute shader of the network
// before naga parses it, so a kernel file uses these structs without declaring them.
// Rust twins: src/gpu/params.rs, checked field by field (name and offset) by
// tests/shader_validation.rs. All fields are u32 (no hidden padding); every struct is a
// multiple of 16 bytes, as uniform layout rounds it. Offsets and lengths count f32s.
// The end of the file holds the few pure functions that an unfused kernel and the fused
// walk both need (the arithmetic of the pointwise layers and of average pooling).

struct ConvParams {
    in_offset: u32,     // first float of the input activation's region
    out_offset: u32,    // first float of the output activation's region
    in_len: u32,        // floats per image of the input (in_channels * in_height * in_width)
    out_len: u32,       // floats per image of the output
    in_channels: u32,
    in_height: u32,
    in_width: u32,
    out_channels: u32,
    out_height: u32,
    out_width: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    weight_offset: u32, // first float of this layer's weights in the weight buffer
    bias_offset: u32,   // first float of its biases
    relu_offset: u32,   // the fused ReLU's output region (conv2d_tiled.wgsl's forward_relu only)
}

// conv2d_tiled.wgsl's uniform: a conv and what its `forward_block` entry writes after it.
struct ConvBlockParams {
    conv: ConvParams,
    relu: u32,            // 1: the ReLU after the conv (or its batch norm) is written too
                          // (at conv.relu_offset)
    pool_offset: u32,     // the fused 2×2 stride-2 max-pool's output region
    pool_len: u32,        // its floats per image; 0: no pool fused
    pool_height: u32,
    pool_width: u32,
    partials_offset: u32, // per image and workgroup, (min, max) of the conv, batch-norm,
                          // ReLU and pool outputs it wrote (8 floats), in the value-range
                          // buffer
    groups: u32,          // workgroups per image (partials per image)
    affine: u32,          // 1: the batch norm after the conv is written (at affine_offset)
                          // and the ReLU and pool read it
    affine_offset: u32,
    scale_offset: u32,    // the batch norm's folded per-channel scale and shift (weights)
    shift_offset: u32,
    _pad: u32,
}

struct DenseParams {
    in_offset: u32,     // first float of the input activation's region
    out_offset: u32,    // first float of the output activation's region
    in_features: u32,
    out_features: u32,
    weight_offset: u32, // first float of the [out, in] weight matrix in the weight buffer
    bias_offset: u32,
    max_batch: u32,     // images each arena region holds (dense_tiled.wgsl only)
    relu_offset: u32,   // dense_tiled.wgsl: forward_relu's output, backward_input_relu's input
}

struct EltwiseParams {
    in_offset: u32,  // first float of the layer input's region
    out_offset: u32, // first float of the layer output's region
    len: u32,        // floats per image (input and output have the same shape)
    _pad: u32,
}

// The elementwise layers other than ReLU (pointwise.wgsl and the fused walk's OP_POINTWISE).
struct PointwiseParams {
    in_offset: u32,    // first float of the layer input's region
    out_offset: u32,   // first float of the layer output's region
    len: u32,          // floats per image (input and output have the same shape)
    op: u32,           // POINTWISE_* below
    plane: u32,        // floats per channel (height * width; 1 after a dense layer)
    scale_offset: u32, // POINTWISE_AFFINE: first per-channel scale in the weight buffer
    shift_offset: u32, // and first per-channel shift
    slope: u32,        // POINTWISE_LEAKY_RELU: the negative slope's f32 bits
}

struct PoolParams {
    in_offset: u32,
    out_offset: u32,
    in_len: u32,   // floats per image of the input
    out_len: u32,  // floats per image of the output
    channels: u32,
    in_height: u32,
    in_width: u32,
    out_height: u32,
    out_width: u32,
    kernel: u32,   // the square window's side (POOL_GLOBAL_AVG: unused, the whole plane)
    stride: u32,
    padding: u32,  // zero padding on every side (average pools only)
    mode: u32,     // POOL_* below
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct SoftmaxParams {
    logits_offset: u32, // first float of the logits region (the last activation)
    classes: u32,
    _pad0: u32,
    _pad1: u32,
}

struct CamParams {
    act_offset: u32,     // first float of the target activation's region (both arenas)
    act_len: u32,        // floats per image of it: channels * height * width
    channels: u32,
    height: u32,
    width: u32,
    out_height: u32,     // the input image's size, which the heatmap matches
    out_width: u32,
    weights_offset: u32, // CAM region of α
    weights_stride: u32,
    raw_offset: u32,     // CAM region of the raw map
    raw_stride: u32,
    low_offset: u32,     // CAM region of the normalised low-resolution map
    low_stride: u32,
    heat_offset: u32,    // CAM region of the input-resolution heatmap
    heat_stride: u32,
    _pad: u32,
}

struct NormaliseParams {
    src_offset: u32,
    src_stride: u32,
    dst_offset: u32,
    dst_stride: u32,
    len: u32,        // floats per image to normalise
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// The explanation kernels' uniform (shaders/explain_*.wgsl), one per conv block (the block
// fields are zero for a model without one). `*_off` fields count floats in the explanation
// buffer (binding 11; src/gpu/explain/layout.rs); `cam_*` fields are image 0 of the CAM
// buffer's regions; the rest are arena offsets and shapes.
struct ExplainParams {
    input_offset: u32, // activation 0 (the model's input) in the arena
    in_len: u32,       // floats per input image: in_channels * in_height * in_width
    in_channels: u32,
    in_height: u32,
    in_width: u32,
    act_offset: u32,   // the target block's output (its ReLU's) in both arenas
    act_len: u32,      // channels * height * width
    channels: u32,
    height: u32,
    width: u32,
    logits_offset: u32, // the last activation in the arena
    classes: u32,
    ig_steps: u32,
    samples: u32,      // SmoothGrad's noisy copies
    occ_window: u32,
    occ_stride: u32,
    occ_rows: u32,     // occlusion patch positions down and across
    occ_cols: u32,
    faith_steps: u32,  // deletion/insertion curves have faith_steps + 1 points each
    rank_chunks: u32,  // pixels ranked per invocation in chunks of RANK_CHUNK
    logits_off: u32,   // the input's logits (classes floats), then its class (u32 bits)
    class_off: u32,
    attr_off: u32,     // attribution (in_len), display map (in_height * in_width), curves
    map_off: u32,
    curve_off: u32,
    x_off: u32,        // the input itself
    sign_off: u32,     // +1, or -1 for the counterfactual
    blank_off: u32,    // the blank canvas value, (0 - mean) / std
    ig_off: u32,       // IG's alphas (ig_steps), then its weights (ig_steps)
    noise_off: u32,    // SmoothGrad's noise, samples * in_len
    saved_off: u32,    // the block's activations of the input (Score-CAM)
    eig_off: u32,      // EigenCAM: means (K), matrix (K²), scratch (K²), vector (K)
    mask_off: u32,     // Score-CAM: (min, max) of each upsampled channel
    rank_off: u32,     // faithfulness: rank partials, rank_chunks * in_height * in_width
    cam_weights: u32,
    cam_raw: u32,
    cam_heat: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Feature visualisation (shaders/feature_vis.wgsl, Rust: gpu::feature_vis). Image n of the
// batch excites objective n: the mean over `plane` floats starting at n * plane inside one
// image's objective activation (a channel of a conv block's output, or, with plane 1, a
// logit). Regions of the feature-visualisation buffer are float offsets.
struct FeatureVisParams {
    input_offset: u32, // activation 0 (the model's input) in the arena
    in_len: u32,       // floats per input image: in_channels * in_height * in_width
    in_channels: u32,
    in_height: u32,
    in_width: u32,
    act_offset: u32,   // the objective's activation in both arenas
    act_len: u32,      // floats per image of that activation
    plane: u32,        // floats one objective averages (height * width, or 1 for a logit)
    images: u32,       // objectives run at once (the batch)
    steps: u32,        // steps the history and jitter regions hold
    blur_every: u32,   // blur after every blur_every-th step; 0: never
    counter_off: u32,  // the step counter (a float)
    consts_off: u32,   // learning rate, lowest and highest input value, decay
    image_off: u32,    // the images being optimised, images * in_len
    jitter_off: u32,   // (dy, dx) per step, steps * 2
    history_off: u32,  // the objective before each step, steps * images
}

// ---------------------------------------------------------------------------------------
// Arithmetic of the newer layer types shared by their unfused kernels (pointwise.wgsl,
// avgpool2d.wgsl) and the fused walk (fused.wgsl), so each formula exists once. Pure
// functions of values and uniforms: no bindings.

// PointwiseParams.op. Rust twin: gpu::params::PointwiseOp.
const POINTWISE_LEAKY_RELU: u32 = 0u;
const POINTWISE_SIGMOID: u32 = 1u;
const POINTWISE_TANH: u32 = 2u;
const POINTWISE_AFFINE: u32 = 3u; // x * scale + shift per channel: batch norm, folded

// PoolParams.mode. Rust twin: gpu::params::PoolMode.
const POOL_MAX: u32 = 0u;
const POOL_AVG: u32 = 1u;          // average, padded zeros not counted in the divisor
const POOL_AVG_WITH_PAD: u32 = 2u; // average, PyTorch's count_include_pad
const POOL_GLOBAL_AVG: u32 = 3u;   // the mean of the whole plane

// y = f(x) of a pointwise op; `scale` and `shift` are the element's channel's (affine only).
fn pointwise_value(e: PointwiseParams, x: f32, scale: f32, shift: f32) -> f32 {
    switch e.op {
        case POINTWISE_LEAKY_RELU: { return select(x * bitcast<f32>(e.slope), x, x > 0.0); }
        // exp(-x) overflows to inf for very negative x, giving exactly 0.
        case POINTWISE_SIGMOID: { return 1.0 / (1.0 + exp(-x)); }
        // tanh is ±1 in f32 well before 15; the clamp keeps exp-based tanh off inf / inf.
        case POINTWISE_TANH: { return tanh(clamp(x, -15.0, 15.0)); }
        default: { return fma(x, scale, shift); }
    }
}

// dL/dx from dL/dy, the input x and the output y (PyTorch's rules, as model::reference:
// leaky ReLU takes the slope where x is not positive; sigmoid y(1 - y); tanh 1 - y²).
fn pointwise_gradient(e: PointwiseParams, x: f32, y: f32, dy: f32, scale: f32) -> f32 {
    switch e.op {
        case POINTWISE_LEAKY_RELU: { return select(dy * bitcast<f32>(e.slope), dy, x > 0.0); }
        case POINTWISE_SIGMOID: { return dy * y * (1.0 - y); }
        case POINTWISE_TANH: { return dy * (1.0 - y * y); }
        default: { return dy * scale; }
    }
}

// The input rows [rows.x, rows.y) and columns [cols.x, cols.y) of average window (oy, ox)
// and its divisor, as PyTorch's avg_pool2d (floor mode): the window clipped to the input,
// divided by its size clipped to input + padding (count_include_pad) or by the real pixels.
struct AvgWindow {
    rows: vec2<u32>,
    cols: vec2<u32>,
    divisor: f32,
}

// (first, end) inside the input and the padded extent of window o along an axis of `size`.
fn avg_axis(q: PoolParams, o: u32, size: u32) -> vec3<i32> {
    let start = i32(o * q.stride) - i32(q.padding);
    let end = start + i32(q.kernel);
    let padded = min(end, i32(size + q.padding)) - start;
    return vec3<i32>(max(start, 0), min(end, i32(size)), padded);
}

fn avg_window(q: PoolParams, oy: u32, ox: u32) -> AvgWindow {
    if q.mode == POOL_GLOBAL_AVG {
        return AvgWindow(vec2<u32>(0u, q.in_height), vec2<u32>(0u, q.in_width),
            f32(q.in_height * q.in_width));
    }
    let y = avg_axis(q, oy, q.in_height);
    let x = avg_axis(q, ox, q.in_width);
    var divisor = f32((y.y - y.x) * (x.y - x.x));
    if q.mode == POOL_AVG_WITH_PAD {
        divisor = f32(y.z * x.z);
    }
    return AvgWindow(vec2<u32>(u32(y.x), u32(y.y)), vec2<u32>(u32(x.x), u32(x.y)), divisor);
}

// Output positions [x, y) along one axis whose windows cover input coordinate i (a global
// pool's single window covers everything).
fn avg_reaching(q: PoolParams, i: u32, out_size: u32) -> vec2<u32> {
    if q.mode == POOL_GLOBAL_AVG {
        return vec2<u32>(0u, 1u);
    }
    let padded = i + q.padding;
    var lo = 0u;
    if padded + 1u > q.kernel {
        lo = (padded + 1u - q.kernel + q.stride - 1u) / q.stride;
    }
    let hi = min(padded / q.stride + 1u, out_size);
    return vec2<u32>(lo, max(lo, hi));
}
