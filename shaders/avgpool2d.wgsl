// Average pooling (PyTorch's AvgPool2d, floor mode, with padding and count_include_pad
// both ways) and global average pooling (the window is the whole plane), forward and input
// gradient (gather form: each input sums the shares of the windows covering it; no
// atomics). Windows and divisors: params.wgsl's avg_window, shared with the fused walk.
//
// Arena indexing as in conv2d.wgsl. Dispatch: (groups_x, batch, groups_z), 64 threads;
// element = (wg.x + wg.z * nwg.x) * 64 + local index, image = wg.y.

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;

fn element_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.z * nwg.x) * 64u + lid;
}

// One thread per output element (c, oy, ox).
@compute @workgroup_size(64)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wg, nwg, lid);
    if i >= p.out_len {
        return;
    }
    let n = wg.y;
    let out_plane = p.out_height * p.out_width;
    let c = i / out_plane;
    let w = avg_window(p, (i % out_plane) / p.out_width, i % p.out_width);
    let plane_base = p.in_offset + n * p.in_len + c * p.in_height * p.in_width;
    var sum = 0.0;
    for (var y = w.rows.x; y < w.rows.y; y++) {
        for (var x = w.cols.x; x < w.cols.y; x++) {
            sum += activations[plane_base + y * p.in_width + x];
        }
    }
    activations[p.out_offset + n * p.out_len + i] = sum / w.divisor;
}

// One thread per INPUT element (c, iy, ix), in ascending window order like the CPU twin.
@compute @workgroup_size(64)
fn backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wg, nwg, lid);
    if i >= p.in_len {
        return;
    }
    let n = wg.y;
    let in_plane = p.in_height * p.in_width;
    let c = i / in_plane;
    let oy_range = avg_reaching(p, (i % in_plane) / p.in_width, p.out_height);
    let ox_range = avg_reaching(p, i % p.in_width, p.out_width);
    let dy_base = p.out_offset + n * p.out_len + c * p.out_height * p.out_width;
    var sum = 0.0;
    for (var oy = oy_range.x; oy < oy_range.y; oy++) {
        for (var ox = ox_range.x; ox < ox_range.y; ox++) {
            sum += gradients[dy_base + oy * p.out_width + ox] / avg_window(p, oy, ox).divisor;
        }
    }
    gradients[p.in_offset + n * p.in_len + i] = sum;
}
