// Per-channel statistics of one activation for every image of a batch, for the test-set
// survey (src/survey/): the maximum over the channel's plane, where it is (the first
// maximum in row-major order, as the CPU twin), and the mean.
//
// Image n of the activation starts at `source + n * image_len` (the arena layout of
// src/gpu/arena.rs). Output: 3 floats per (image, channel) at
// `destination + (n * channels + c) * 3`: max, argmax (as a float: planes are far below 2^24
// elements), mean.
//
// Dispatch (channels, batch, 1) with 64 threads: one workgroup per (channel, image); each
// thread strides over the plane (short loops), then a tree reduction that keeps the
// smaller index on ties.

struct StatsJob {
    source: u32,
    image_len: u32,
    channels: u32,
    plane: u32,
    destination: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> job: StatsJob;
@group(0) @binding(1) var<storage, read> activations: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;

const THREADS: u32 = 64u;

var<workgroup> best_value: array<f32, THREADS>;
var<workgroup> best_index: array<u32, THREADS>;
var<workgroup> sums: array<f32, THREADS>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let channel = wg.x;
    let image = wg.y;
    let base = job.source + image * job.image_len + channel * job.plane;
    var value = -3.4028235e38;
    var index = 0xffffffffu;
    var sum = 0.0;
    for (var i = lid; i < job.plane; i += THREADS) {
        let v = activations[base + i];
        // Strictly greater: within one thread indices ascend, so the first maximum stays.
        if (v > value || index == 0xffffffffu) {
            value = v;
            index = i;
        }
        sum += v;
    }
    best_value[lid] = value;
    best_index[lid] = index;
    sums[lid] = sum;
    workgroupBarrier();
    for (var half = THREADS / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            let other = lid + half;
            let v = best_value[other];
            let j = best_index[other];
            if (j != 0xffffffffu && (v > best_value[lid] || (v == best_value[lid] && j < best_index[lid]) || best_index[lid] == 0xffffffffu)) {
                best_value[lid] = v;
                best_index[lid] = j;
            }
            sums[lid] += sums[other];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let out = job.destination + (image * job.channels + channel) * 3u;
        stats[out] = best_value[0];
        stats[out + 1u] = f32(best_index[0]);
        stats[out + 2u] = sums[0] / f32(job.plane);
    }
}
