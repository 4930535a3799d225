// The uniform structs of the compute shaders, declared once. The pipeline loader
// (src/gpu/pipelines.rs) puts this file in front of every compute shader of the network
// before naga parses it, so a kernel file uses these structs without declaring them.
// Rust twins: src/gpu/params.rs, checked field by field (name and offset) by
// tests/shader_validation.rs. All fields are u32 (no hidden padding); every struct is a
// multiple of 16 bytes, as uniform layout rounds it. Offsets and lengths count f32s.

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
    relu: u32,            // 1: the ReLU after the conv is written too (at conv.relu_offset)
    pool_offset: u32,     // the fused 2×2 stride-2 max-pool's output region
    pool_len: u32,        // its floats per image; 0: no pool fused
    pool_height: u32,
    pool_width: u32,
    partials_offset: u32, // per image and workgroup, (min, max) of the conv, ReLU and pool
                          // outputs it wrote (6 floats), in the value-range buffer
    groups: u32,          // workgroups per image (partials per image)
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
    kernel: u32,
    stride: u32,
    _pad: u32,
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
