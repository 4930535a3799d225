// Peak copy bandwidth of the adapter, for `cnnviz bench`: vec4 reads and writes over
// buffers far larger than any cache. Each invocation copies every (invocations)-th vec4
// (a grid-stride loop), so a few thousand workgroups cover the buffer: per-workgroup
// overhead (large on llvmpipe) stays out of the figure. Bytes moved: 2 · arrayLength · 16.

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(
    @builtin(global_invocation_id) id: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let stride = groups.x * 64u;
    let len = arrayLength(&dst);
    for (var index = id.x; index < len; index = index + stride) {
        dst[index] = src[index];
    }
}
