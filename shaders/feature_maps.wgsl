// Images for the egui overlay, written straight from the network's buffers (no readback):
// every channel of a conv block's output into one atlas texture, the model input (grey, or
// in colour for a 3-channel model), and the Grad-CAM heatmap blended over the input. egui samples the textures as they are,
// so the colours written are gamma-encoded (sRGB) like every egui colour.
//
// One dispatch per texture; every entry point binds the same resources:
//   job          what to draw (Rust twin: ui::feature_maps::ImageJob)
//   activations  the activation arena, read-only
//   cam          the Grad-CAM buffer, read-only
//   choice       the colour map (0 = viridis, 1 = turbo), copied in the encoder
//   image        the texture

// Rust twin: ui::feature_maps::ImageJob. All fields are 4-byte scalars.
struct ImageJob {
    // First float of the source plane(s) for image 0.
    source: u32,
    width: u32,
    height: u32,
    channels: u32,
    // Atlas columns, and the texel step from one cell to the next (size + gutter).
    columns: u32,
    cell_x: u32,
    cell_y: u32,
    // First float of the heatmap (grad_cam only).
    heatmap: u32,
    // The input's normalisation per channel (R, G, B; unused w), undone for display:
    // pixel = value * deviation + mean.
    mean: vec4<f32>,
    deviation: vec4<f32>,
}

struct ColorChoice {
    map: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> job: ImageJob;
@group(0) @binding(1) var<storage, read> activations: array<f32>;
@group(0) @binding(2) var<storage, read> cam: array<f32>;
// Storage, not uniform: it is rewritten on every inference, and lavapipe (Mesa 22.3) leaks
// memory for each rewrite of a bound uniform buffer.
@group(0) @binding(3) var<storage, read> choice: ColorChoice;
@group(0) @binding(4) var image: texture_storage_2d<rgba8unorm, write>;

const THREADS: u32 = 64u;
// Weight of the input in the Grad-CAM blend (src/heatmap.rs IMAGE_WEIGHT).
const IMAGE_WEIGHT: f32 = 0.5;

// Horner's rule over 7 coefficients, lowest order first (twin: colormap.rs).
fn poly7(t: f32, c0: f32, c1: f32, c2: f32, c3: f32, c4: f32, c5: f32, c6: f32) -> f32 {
    return clamp(c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6))))), 0.0, 1.0);
}

fn viridis(t: f32) -> vec3<f32> {
    return vec3<f32>(
        poly7(t, 0.27772733, 0.10509304, -0.33086183, -4.6342305, 6.2282699, 4.776385, -5.4354559),
        poly7(t, 0.00540734, 1.4046135, 0.21484756, -5.799101, 14.179933, -13.745145, 4.6458526),
        poly7(t, 0.3340998, 1.3845902, 0.09509516, -19.332441, 56.690553, -65.353033, 26.312435),
    );
}

fn turbo(t: f32) -> vec3<f32> {
    return vec3<f32>(
        poly7(t, 0.13572138, 4.6153926, -42.6603226, 132.1310823, -152.942394, 59.2863794, 0.0),
        poly7(t, 0.09140261, 2.1941884, 4.8429666, -14.1850333, 4.2772986, 2.829566, 0.0),
        poly7(t, 0.1066733, 12.641946, -60.582048, 110.362768, -89.903109, 27.34825, 0.0),
    );
}

fn color_map(t: f32) -> vec3<f32> {
    let s = clamp(t, 0.0, 1.0);
    if choice.map == 1u {
        return turbo(s);
    }
    return viridis(s);
}

// The model input's colour (0..1), undoing the normalisation: grey for one channel, the
// three planes as R, G, B for three.
fn input_pixel(i: u32) -> vec3<f32> {
    if job.channels < 3u {
        return vec3<f32>(clamp(activations[job.source + i] * job.deviation.x + job.mean.x, 0.0, 1.0));
    }
    let plane = job.width * job.height;
    let raw = vec3<f32>(
        activations[job.source + i],
        activations[job.source + plane + i],
        activations[job.source + 2u * plane + i],
    );
    return clamp(raw * job.deviation.xyz + job.mean.xyz, vec3<f32>(0.0), vec3<f32>(1.0));
}

var<workgroup> red_min: array<f32, THREADS>;
var<workgroup> red_max: array<f32, THREADS>;

// Dispatch (channels, 1, 1): workgroup c min-max normalises channel c on its own and
// colour-maps it into its atlas cell. A constant channel (a dead ReLU) maps to 0.
@compute @workgroup_size(THREADS)
fn channels(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wg.x;
    let plane = job.width * job.height;
    let base = job.source + c * plane;
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    for (var i = lid; i < plane; i += THREADS) {
        let v = activations[base + i];
        lo = min(lo, v);
        hi = max(hi, v);
    }
    red_min[lid] = lo;
    red_max[lid] = hi;
    workgroupBarrier();
    for (var half = THREADS / 2u; half > 0u; half >>= 1u) {
        if lid < half {
            red_min[lid] = min(red_min[lid], red_min[lid + half]);
            red_max[lid] = max(red_max[lid], red_max[lid + half]);
        }
        workgroupBarrier();
    }
    let low = red_min[0];
    let span = red_max[0] - low;
    let corner = vec2<u32>((c % job.columns) * job.cell_x, (c / job.columns) * job.cell_y);
    for (var i = lid; i < plane; i += THREADS) {
        var t = 0.0;
        if span > 0.0 {
            t = (activations[base + i] - low) / span;
        }
        let texel = corner + vec2<u32>(i % job.width, i / job.width);
        textureStore(image, texel, vec4<f32>(color_map(t), 1.0));
    }
}

// Dispatch (1, 1, 1): the model input.
@compute @workgroup_size(THREADS)
fn model_input(@builtin(local_invocation_index) lid: u32) {
    let plane = job.width * job.height;
    for (var i = lid; i < plane; i += THREADS) {
        textureStore(image, vec2<u32>(i % job.width, i / job.width), vec4<f32>(input_pixel(i), 1.0));
    }
}

// Dispatch (1, 1, 1): half input, half colour-mapped heatmap, as
// pytorch_grad_cam.show_cam_on_image and src/heatmap.rs do.
@compute @workgroup_size(THREADS)
fn grad_cam(@builtin(local_invocation_index) lid: u32) {
    let plane = job.width * job.height;
    for (var i = lid; i < plane; i += THREADS) {
        let heat = color_map(cam[job.heatmap + i]);
        let rgb = IMAGE_WEIGHT * input_pixel(i) + (1.0 - IMAGE_WEIGHT) * heat;
        textureStore(image, vec2<u32>(i % job.width, i / job.width), vec4<f32>(rgb, 1.0));
    }
}
