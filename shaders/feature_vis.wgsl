// Feature visualisation: gradient ascent on the input, image n exciting objective n (see
// FeatureVisParams in shaders/params.wgsl and gpu::feature_vis). One step is
//   jitter_in → the network's forward launches → seed → its backward launches down to the
//   input → ascend → advance,
// recorded the same way every step: the step index lives in the buffer (`counter_off`), so
// the same bind groups serve every step and a whole run needs no readback.
// The CPU twin is explain::reference::feature_vis; keep the two in step.

// FeatureVisParams: shaders/params.wgsl (Rust twin: gpu::params::FeatureVisParams).

@group(0) @binding(0) var<uniform> p: FeatureVisParams;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;
@group(0) @binding(11) var<storage, read_write> fv: array<f32>;

// Floats of one input image `ascend` keeps in workgroup memory (Rust twin:
// gpu::feature_vis::MAX_INPUT_FLOATS); 12 KiB of the 16 KiB every device offers.
const MAX_INPUT: u32 = 3072u;
const THREADS: u32 = 256u;

var<workgroup> image_tile: array<f32, MAX_INPUT>;
var<workgroup> partial: array<f32, THREADS>;

// The counter is a float (exact below 2^24): a u32's bits would be a denormal that a
// driver may flush to zero.
fn step_index() -> u32 {
    return u32(fv[p.counter_off]);
}

// This step's jitter (dy, dx), uploaded from the CPU's seeded generator.
fn jitter() -> vec2<i32> {
    let at = p.jitter_off + 2u * (step_index() % max(p.steps, 1u));
    return vec2<i32>(i32(fv[at]), i32(fv[at + 1u]));
}

fn wrap(v: i32, size: u32) -> u32 {
    let s = i32(size);
    return u32(((v % s) + s) % s);
}

// Element i of a C·H·W image moved by (dy, dx), wrapping around the borders (torch.roll).
fn rolled(i: u32, shift: vec2<i32>) -> u32 {
    let plane = p.in_height * p.in_width;
    let c = i / plane;
    let y = (i % plane) / p.in_width;
    let x = i % p.in_width;
    return c * plane + wrap(i32(y) + shift.x, p.in_height) * p.in_width
        + wrap(i32(x) + shift.y, p.in_width);
}

// Sum of `partial` over the workgroup, left in partial[0]; every thread must call it.
fn reduce_partial(lid: u32) {
    for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
        workgroupBarrier();
        if lid < stride {
            partial[lid] += partial[lid + stride];
        }
    }
    workgroupBarrier();
}

// Activation 0 of image n = image n rolled by this step's jitter:
// input[c][y][x] = image[c][y - dy][x - dx]. Dispatch (ceil(in_len / 64), images, z).
@compute @workgroup_size(64)
fn jitter_in(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wg.x + wg.z * nwg.x) * 64u + lid;
    if i >= p.in_len {
        return;
    }
    let n = wg.y;
    let source = rolled(i, -jitter());
    activations[p.input_offset + n * p.in_len + i] = fv[p.image_off + n * p.in_len + source];
}

// d objective_n / d activation for image n: 1/plane on its own objective's floats, 0 on
// the rest; records objective n's value (before this step's update) in the history.
// Dispatch (1, images, 1), one workgroup of 256 threads per image.
@compute @workgroup_size(256)
fn seed(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.y;
    let base = p.act_offset + n * p.act_len;
    let weight = 1.0 / f32(p.plane);
    for (var i = lid; i < p.act_len; i += THREADS) {
        gradients[base + i] = select(0.0, weight, i / p.plane == n);
    }
    var sum = 0.0;
    for (var j = lid; j < p.plane; j += THREADS) {
        sum += activations[base + n * p.plane + j];
    }
    partial[lid] = sum;
    reduce_partial(lid);
    let step = step_index();
    if lid == 0u && step < p.steps {
        fv[p.history_off + step * p.images + n] = partial[0] * weight;
    }
}

// One gradient-ascent step of image n: un-jitter the input gradient g,
// x += lr · g / (mean |g| + 1e-8), then x = low + (1 − decay)(x − low) (a pull back to the
// blank canvas), every blur_every-th step a 3×3 Gaussian blur
// (weights 1-2-1 ⊗ 1-2-1, renormalised over the taps inside the image), then clip to the
// input range. Dispatch (1, images, 1), one workgroup of 256 threads per image; the image
// is held in workgroup memory, so in_len ≤ MAX_INPUT (checked on the CPU).
@compute @workgroup_size(256)
fn ascend(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.y;
    let shift = jitter();
    let grad_base = p.input_offset + n * p.in_len;
    let image_base = p.image_off + n * p.in_len;
    var sum = 0.0;
    for (var i = lid; i < p.in_len; i += THREADS) {
        let g = gradients[grad_base + rolled(i, shift)];
        image_tile[i] = g;
        sum += abs(g);
    }
    partial[lid] = sum;
    reduce_partial(lid);
    let lr = fv[p.consts_off];
    let low = fv[p.consts_off + 1u];
    let high = fv[p.consts_off + 2u];
    let keep = 1.0 - fv[p.consts_off + 3u];
    let scale = lr / (partial[0] / f32(p.in_len) + 1e-8);
    for (var i = lid; i < p.in_len; i += THREADS) {
        image_tile[i] = low + keep * (fv[image_base + i] + scale * image_tile[i] - low);
    }
    workgroupBarrier();
    let step = step_index();
    let blur = p.blur_every > 0u && (step + 1u) % p.blur_every == 0u;
    let plane = p.in_height * p.in_width;
    for (var i = lid; i < p.in_len; i += THREADS) {
        var value = image_tile[i];
        if blur {
            let c = i / plane;
            let y = i32((i % plane) / p.in_width);
            let x = i32(i % p.in_width);
            var total = 0.0;
            var weights = 0.0;
            for (var dy = -1; dy <= 1; dy++) {
                for (var dx = -1; dx <= 1; dx++) {
                    let yy = y + dy;
                    let xx = x + dx;
                    if yy >= 0 && yy < i32(p.in_height) && xx >= 0 && xx < i32(p.in_width) {
                        let w = f32((2 - abs(dy)) * (2 - abs(dx)));
                        total += w * image_tile[c * plane + u32(yy) * p.in_width + u32(xx)];
                        weights += w;
                    }
                }
            }
            value = total / weights;
        }
        fv[image_base + i] = clamp(value, low, high);
    }
}

// The step counter moves on. Dispatch (1, 1, 1).
@compute @workgroup_size(1)
fn advance() {
    fv[p.counter_off] = fv[p.counter_off] + 1.0;
}
