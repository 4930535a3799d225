// MaxPool2d forward and its input gradient (gather form), no padding, PyTorch's floor rule
// for the output size (trailing rows/columns no window reaches are ignored).
//
// Arena indexing as in conv2d.wgsl. Dispatch: (groups_x, batch, groups_z), 64 threads;
// element = (wg.x + wg.z * nwg.x) * 64 + local index, image = wg.y.

// PoolParams: shaders/params.wgsl (Rust twin: gpu::params::PoolParams).

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(2) var<storage, read_write> activations: array<f32>;
@group(0) @binding(3) var<storage, read_write> gradients: array<f32>;

fn element_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.z * nwg.x) * 64u + lid;
}

// Index (within the channel plane starting at `plane_base`) of the maximum of window
// (oy, ox). Scans row-major and replaces only on a strictly greater value, so ties go to
// the first element, as in PyTorch and the CPU twin.
fn window_argmax(plane_base: u32, oy: u32, ox: u32) -> u32 {
    var best = (oy * p.stride) * p.in_width + ox * p.stride;
    var best_value = activations[plane_base + best];
    for (var ky = 0u; ky < p.kernel; ky++) {
        for (var kx = 0u; kx < p.kernel; kx++) {
            let j = (oy * p.stride + ky) * p.in_width + ox * p.stride + kx;
            let v = activations[plane_base + j];
            if v > best_value {
                best = j;
                best_value = v;
            }
        }
    }
    return best;
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
    let oy = (i % out_plane) / p.out_width;
    let ox = i % p.out_width;
    let plane_base = p.in_offset + n * p.in_len + c * p.in_height * p.in_width;
    activations[p.out_offset + n * p.out_len + i] =
        activations[plane_base + window_argmax(plane_base, oy, ox)];
}

// One thread per INPUT element (c, iy, ix): sums dy over the windows that contain it and
// whose first maximum it is. Windows containing row iy are oy with
// oy * stride <= iy <= oy * stride + kernel - 1, i.e. ceil((iy + 1 - kernel) / stride) <=
// oy <= iy / stride, clipped to the output. Overlapping windows (kernel > stride) add up,
// in ascending window order like the CPU twin. No atomics.
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
    let within = i % in_plane;
    let iy = within / p.in_width;
    let ix = within % p.in_width;
    let plane_base = p.in_offset + n * p.in_len + c * in_plane;
    let dy_base = p.out_offset + n * p.out_len + c * p.out_height * p.out_width;

    var oy_lo = 0u;
    if iy + 1u > p.kernel {
        oy_lo = (iy + 1u - p.kernel + p.stride - 1u) / p.stride;
    }
    let oy_hi = min(iy / p.stride, p.out_height - 1u);
    var ox_lo = 0u;
    if ix + 1u > p.kernel {
        ox_lo = (ix + 1u - p.kernel + p.stride - 1u) / p.stride;
    }
    let ox_hi = min(ix / p.stride, p.out_width - 1u);

    var sum = 0.0;
    for (var oy = oy_lo; oy <= oy_hi; oy++) {
        for (var ox = ox_lo; ox <= ox_hi; ox++) {
            if window_argmax(plane_base, oy, ox) == within {
                sum += gradients[dy_base + oy * p.out_width + ox];
            }
        }
    }
    gradients[p.in_offset + n * p.in_len + i] = sum;
}
