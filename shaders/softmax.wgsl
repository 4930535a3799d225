// Softmax + argmax + Grad-CAM target selection + gradient seed, one workgroup per image.
//
// Dispatch: (1, batch, 1) with 64 threads; image n = wg.y. The logits are image n of the
// last activation region: `logits_offset + n * classes` in the activation arena, and the
// gradient arena uses the same offsets. Per-image outputs: probabilities[n * classes + k],
// predicted[n], targets[n].
//
// The Grad-CAM target class comes from `request[0]`, which the encoder fills with
// copy_buffer_to_buffer from a constant table (so it is ordered with the dispatches, unlike
// queue.write_buffer): a class index, or PREDICTED to take this image's argmax.

// SoftmaxParams: shaders/params.wgsl (Rust twin: gpu::params::SoftmaxParams).

// Rust twin: gpu::params::PREDICTED_SENTINEL.
const PREDICTED: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: SoftmaxParams;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;
@group(0) @binding(5) var<storage, read_write> probabilities: array<f32>;
@group(0) @binding(6) var<storage, read_write> predicted: array<u32>;
@group(0) @binding(7) var<storage, read_write> targets: array<u32>;
@group(0) @binding(8) var<storage, read> request: array<u32>;

var<workgroup> best_value: array<f32, 64>;
var<workgroup> best_index: array<u32, 64>;
var<workgroup> exp_sum: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.y;
    let base = p.logits_offset + n * p.classes;

    // 1. Argmax with ties to the FIRST index. Each thread scans classes lid, lid + 64, …
    //    in ascending order and keeps the first of equal values; the reduction then
    //    prefers the lower index on equal values.
    var value = -3.4028235e38;
    var index = PREDICTED;
    for (var k = lid; k < p.classes; k += 64u) {
        let v = activations[base + k];
        if index == PREDICTED || v > value {
            value = v;
            index = k;
        }
    }
    best_value[lid] = value;
    best_index[lid] = index;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half >>= 1u) {
        if lid < half {
            let other_v = best_value[lid + half];
            let other_i = best_index[lid + half];
            let mine_i = best_index[lid];
            // An empty slot has index PREDICTED (larger than any class), so it never wins.
            if other_i != PREDICTED && (mine_i == PREDICTED || other_v > best_value[lid] ||
                (other_v == best_value[lid] && other_i < mine_i)) {
                best_value[lid] = other_v;
                best_index[lid] = other_i;
            }
        }
        workgroupBarrier();
    }
    let max_logit = best_value[0];
    let argmax = best_index[0];

    // 2. Σ exp(l - max), shifted for stability.
    var sum = 0.0;
    for (var k = lid; k < p.classes; k += 64u) {
        sum += exp(activations[base + k] - max_logit);
    }
    exp_sum[lid] = sum;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half >>= 1u) {
        if lid < half {
            exp_sum[lid] += exp_sum[lid + half];
        }
        workgroupBarrier();
    }
    let total = exp_sum[0];

    // 3. Target: the requested class, or this image's prediction.
    var chosen = request[0];
    if chosen == PREDICTED {
        chosen = argmax;
    }

    // 4. Probabilities and the one-hot seed d logit_target / d logits.
    for (var k = lid; k < p.classes; k += 64u) {
        probabilities[n * p.classes + k] = exp(activations[base + k] - max_logit) / total;
        gradients[base + k] = select(0.0, 1.0, k == chosen);
    }
    if lid == 0u {
        predicted[n] = argmax;
        targets[n] = chosen;
    }
}
