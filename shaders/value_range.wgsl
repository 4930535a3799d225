// Per image and per activation (min, max), for colouring feature maps and cubes later.
//
// Dispatch: (activations, batch, 1) with 256 threads: activation j = wg.x, image n = wg.y.
// The table holds, per activation index j, the arena offset of its region and its floats
// per image; image n of it starts at `offset + n * len`. Output pair for (n, j) is at
// ranges[2 * (n * activations + j)] (min) and the float after it (max).

// Rust twin: gpu::params::RangeEntry.
struct RangeEntry {
    offset: u32,
    len: u32,
}

@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(9) var<storage, read_write> ranges: array<f32>;
@group(0) @binding(10) var<storage, read> table: array<RangeEntry>;

var<workgroup> red_min: array<f32, 256>;
var<workgroup> red_max: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = wg.x;
    let n = wg.y;
    let count = arrayLength(&table);
    let entry = table[j];
    let base = entry.offset + n * entry.len;
    var lo = 3.4028235e38;
    var hi = -3.4028235e38;
    for (var i = lid; i < entry.len; i += 256u) {
        let v = activations[base + i];
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
    if lid == 0u {
        ranges[2u * (n * count + j)] = red_min[0];
        ranges[2u * (n * count + j) + 1u] = red_max[0];
    }
}
