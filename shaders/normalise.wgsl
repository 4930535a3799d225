// Min-max normalisation of one CAM region per image, Grad-CAM's step 4:
//   dst = (src − min) / (max − min + 1e-7)
// used twice: raw map → low-resolution map, and the upsampled heatmap in place.
//
// CAM regions (src/gpu/arena.rs, CamLayout): image n starts at `offset + n * stride`.
// Dispatch: (1, batch, 1) with 256 threads, one workgroup per image (n = wg.y): a strided
// min/max, a tree reduction, then each thread rewrites the elements it read. Maps are at
// most the input size (≤ 512 × 512), so a thread loops at most 1024 times.

// NormaliseParams: shaders/params.wgsl (Rust twin: gpu::params::NormaliseParams).

// Added to max − min, as pytorch_grad_cam does (model::reference::CAM_EPSILON).
const EPSILON: f32 = 1e-7;

@group(0) @binding(0) var<uniform> p: NormaliseParams;
@group(0) @binding(4) var<storage, read_write> cam: array<f32>;

var<workgroup> red_min: array<f32, 256>;
var<workgroup> red_max: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.y;
    let src = p.src_offset + n * p.src_stride;
    let dst = p.dst_offset + n * p.dst_stride;
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    for (var i = lid; i < p.len; i += 256u) {
        let v = cam[src + i];
        lo = min(lo, v);
        hi = max(hi, v);
    }
    red_min[lid] = lo;
    red_max[lid] = hi;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if lid < half {
            red_min[lid] = min(red_min[lid], red_min[lid + half]);
            red_max[lid] = max(red_max[lid], red_max[lid + half]);
        }
        workgroupBarrier();
    }
    let low = red_min[0];
    let range = red_max[0] - low + EPSILON;
    // Same elements as the first loop, so in-place (src == dst) needs no extra barrier.
    for (var i = lid; i < p.len; i += 256u) {
        cam[dst + i] = (cam[src + i] - low) / range;
    }
}
