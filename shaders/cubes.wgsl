// The 3D layer scene: one cube per activation of every drawn layer, in one draw, reading
// the activation arena, the per-layer value ranges and the Grad-CAM buffer that the
// compute kernels wrote earlier in the same submission. Nothing goes through the CPU.
//
// Rust twins: `FrameUniform` and `LayerUniform` in src/scene/gpu_types.rs, field by field.
// Placement formulas: src/scene/layout.rs (`LayerPlacement::cell_centre`, `cube_height`).
//
// Why cubes are ray-cast impostors: the scene must hold 60 FPS on a CPU rasteriser
// (lavapipe), where every vertex and every triangle costs ~50-100 ns on one thread no
// matter how small, while fragments are shaded in parallel, 8 at a time. A real cube is
// at least 7 vertices and 6 triangles; 43 000 of them took ~200 ms. So each cube is ONE
// triangle that covers its box's projected bounding rectangle, and the fragment shader
// intersects the pixel's ray with the box exactly: the right face, its lighting and its
// depth (frag_depth), per pixel; with MSAA, per sample (sample_mask), so edges are smooth.
// The cube index comes from the instance index, or, on CPU adapters, from the vertex
// index of one big non-instanced draw (Mesa's draw module runs the whole vertex pipeline
// once per instance, ~1.4 µs each).

const NONE: u32 = 0xffffffffu;

struct Frame {
    view_proj: mat4x4<f32>,
    // xyz: the camera position.
    eye: vec4<f32>,
    // The (unnormalised) ray through NDC (x, y) is ray_centre + x * ray_dx + y * ray_dy.
    ray_centre: vec4<f32>,
    ray_dx: vec4<f32>,
    ray_dy: vec4<f32>,
    // xyz: unit vector towards the light; w: share of ambient light.
    light: vec4<f32>,
    // rgb: linear colour of the tile plates under the cubes; a: fog strength.
    plate: vec4<f32>,
    // rgb: linear background colour the fog fades to; a: unused.
    fog: vec4<f32>,
    viewport_width: f32,
    viewport_height: f32,
    time: f32,
    wave_start: f32,
    // <= 0: no wave, every layer fully shown.
    wave_duration: f32,
    // 0: viridis, 1: turbo.
    color_map: u32,
    // Activation tinted by the low-resolution CAM map (the target block's output), or NONE.
    cam_activation: u32,
    // Float offset of image 0's normalised low-resolution map in `cam`.
    cam_low_res: u32,
    // Float offset of image 0's input-sized heatmap in `cam`, or NONE: input not tinted.
    cam_heatmap: u32,
    // 1 while a highlight set is shown: set cubes brightened, the others dimmed.
    highlight: u32,
    // Cube index of the picked cube, or NONE.
    picked: u32,
    // 1 when the target format is not sRGB, so the shader encodes the colour itself.
    encode_srgb: u32,
    // Fog distances (world units from the eye): start and full.
    fog_near: f32,
    fog_far: f32,
    // MSAA sample count of the pass: 4 tests the standard sample positions, else 1.
    samples: u32,
    _pad: u32,
}

struct Layer {
    // xyz: minimum corner of tile 0 on the ground; w: cell edge.
    origin: vec4<f32>,
    // x, y: step between tiles along world x and z; z: footprint edge; w: max height.
    steps: vec4<f32>,
    // Float offset of image 0 of this activation in the arena.
    arena_offset: u32,
    // Float offset of image 0's (min, max) in `ranges`.
    range_offset: u32,
    // Index of the layer's first cube.
    instance_start: u32,
    activation: u32,
    channels: u32,
    rows: u32,
    cols: u32,
    tile_cols: u32,
    min_height: f32,
    // The wave reaches this layer between these fractions of its duration.
    reveal_start: f32,
    reveal_end: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> frame: Frame;
@group(0) @binding(1) var<storage, read> activations: array<f32>;
@group(0) @binding(2) var<storage, read> ranges: array<f32>;
@group(0) @binding(3) var<storage, read> cam: array<f32>;
// One bit per cube.
@group(0) @binding(4) var<storage, read> highlight: array<u32>;
// One rectangle per channel tile: (x0, z0, x1, z1) on the ground.
@group(0) @binding(5) var<storage, read> plates: array<vec4<f32>>;
// Drawn layers in cube order.
@group(0) @binding(6) var<storage, read> layers: array<Layer>;

// Port of src/colormap.rs: polynomial fits, sRGB-encoded output in 0..1.
fn viridis(t: f32) -> vec3<f32> {
    let c0 = vec3<f32>(0.27772733, 0.00540734, 0.3340998);
    let c1 = vec3<f32>(0.10509304, 1.4046135, 1.3845902);
    let c2 = vec3<f32>(-0.33086183, 0.21484756, 0.09509516);
    let c3 = vec3<f32>(-4.6342305, -5.799101, -19.332441);
    let c4 = vec3<f32>(6.2282699, 14.179933, 56.690553);
    let c5 = vec3<f32>(4.776385, -13.745145, -65.353033);
    let c6 = vec3<f32>(-5.4354559, 4.6458526, 26.312435);
    return clamp(c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6))))), vec3<f32>(0.0), vec3<f32>(1.0));
}

fn turbo(t: f32) -> vec3<f32> {
    let c0 = vec3<f32>(0.13572138, 0.09140261, 0.1066733);
    let c1 = vec3<f32>(4.6153926, 2.1941884, 12.641946);
    let c2 = vec3<f32>(-42.6603226, 4.8429666, -60.582048);
    let c3 = vec3<f32>(132.1310823, -14.1850333, 110.362768);
    let c4 = vec3<f32>(-152.942394, 4.2772986, -89.903109);
    let c5 = vec3<f32>(59.2863794, 2.829566, 27.34825);
    return clamp(c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * c5)))), vec3<f32>(0.0), vec3<f32>(1.0));
}

// Cubic fit of the sRGB curve (max error ~0.2 %): pow() is slow on CPU rasterisers.
fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    return c * (c * (c * 0.305306011 + 0.682171111) + 0.012522878);
}

fn linear_to_srgb(c: vec3<f32>) -> vec3<f32> {
    let k = max(c, vec3<f32>(0.0));
    return select(k * 12.92, 1.055 * pow(k, vec3<f32>(1.0 / 2.4)) - 0.055, k > vec3<f32>(0.0031308));
}

fn finish(color: vec3<f32>) -> vec3<f32> {
    if frame.encode_srgb != 0u {
        return linear_to_srgb(color);
    }
    return color;
}

// Fades towards the background with distance: depth reads at a glance, and the far end
// of the network recedes calmly instead of ending in a hard edge.
fn fogged(color: vec3<f32>, distance: f32) -> vec3<f32> {
    let f = smoothstep(frame.fog_near, frame.fog_far, distance) * frame.plate.a;
    return mix(color, frame.fog.rgb, f);
}

// The drawn layer holding cube `cube`: binary search on the layers' first cubes.
fn find_layer(cube: u32) -> u32 {
    var lo = 0u;
    var hi = arrayLength(&layers);
    loop {
        if hi - lo <= 1u {
            break;
        }
        let mid = (lo + hi) / 2u;
        if layers[mid].instance_start <= cube {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

struct CubeOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) centre: vec3<f32>,
    @location(1) @interpolate(flat) half_size: vec3<f32>,
    // Linear colour before lighting.
    @location(2) @interpolate(flat) color: vec3<f32>,
    // The box's screen rectangle in pixels (x0, y0, x1, y1): most of the covering
    // triangle lies outside it and is discarded before any ray is cast.
    @location(3) @interpolate(flat) rect: vec4<f32>,
}

@vertex
fn vs_cube(@builtin(vertex_index) vertex: u32, @builtin(instance_index) instance: u32) -> CubeOut {
    let cube = instance + vertex / 3u;
    let corner = vertex % 3u;
    let layer = layers[find_layer(cube)];
    let local = cube - layer.instance_start;
    let plane = layer.rows * layer.cols;
    let channel = local / plane;
    let rest = local - channel * plane;
    let y = rest / layer.cols;
    let x = rest - y * layer.cols;
    let tile_col = channel % layer.tile_cols;
    let tile_row = channel / layer.tile_cols;
    let cell = layer.origin.w;

    // Value normalised by the layer's range; a constant layer lies flat.
    let value = activations[layer.arena_offset + local];
    let lo = ranges[layer.range_offset];
    let hi = ranges[layer.range_offset + 1u];
    var t = 0.0;
    if hi > lo {
        t = clamp((value - lo) / (hi - lo), 0.0, 1.0);
    }

    // The wave: 0 before it reaches this layer, 1 after.
    var reveal = 1.0;
    if frame.wave_duration > 0.0 {
        let progress = (frame.time - frame.wave_start) / frame.wave_duration;
        reveal = smoothstep(layer.reveal_start, layer.reveal_end, progress);
    }

    // Same formula as LayerPlacement::cube_height, scaled by the wave.
    let height = layer.min_height + t * layer.steps.w * reveal;
    let base = vec3<f32>(
        layer.origin.x + f32(tile_col) * layer.steps.x + (f32(x) + 0.5) * cell,
        layer.origin.y,
        layer.origin.z + f32(tile_row) * layer.steps.y + (f32(y) + 0.5) * cell,
    );
    let half_size = vec3<f32>(layer.steps.z, height, layer.steps.z) * 0.5;
    let centre = base + vec3<f32>(0.0, half_size.y, 0.0);

    var color: vec3<f32>;
    if frame.color_map == 1u {
        color = turbo(t);
    } else {
        color = viridis(t);
    }
    color = srgb_to_linear(color);

    // Grad-CAM: the target block's output carries the low-resolution map in every channel
    // tile, the input carries the input-sized heatmap; strong regions glow warm.
    var heat = -1.0;
    if layer.activation == frame.cam_activation {
        heat = cam[frame.cam_low_res + y * layer.cols + x];
    } else if layer.activation == 0u && frame.cam_heatmap != NONE {
        heat = cam[frame.cam_heatmap + y * layer.cols + x];
    }
    if heat >= 0.0 {
        let k = smoothstep(0.1, 1.0, heat);
        color = mix(color * (1.0 - 0.35 * (1.0 - k)), vec3<f32>(1.0, 0.22, 0.05), 0.7 * k);
    }

    // Not yet reached by the wave: a dark tile; just reached: a brief glow.
    color = mix(frame.plate.rgb * 1.5, color, reveal) + vec3<f32>(0.12) * sin(3.14159265 * reveal);

    if frame.highlight != 0u {
        let on = (highlight[cube >> 5u] >> (cube & 31u)) & 1u;
        if on == 1u {
            color = color * 1.2 + vec3<f32>(0.05);
        } else {
            let grey = dot(color, vec3<f32>(0.2126, 0.7152, 0.0722));
            color = mix(vec3<f32>(grey), color, 0.4) * 0.22;
        }
    }
    if cube == frame.picked {
        color = mix(color, vec3<f32>(1.0), 0.6);
    }

    // The box's screen rectangle: project the 8 corners (centre ± the scaled columns of
    // the matrix), padded by a pixel so every sample the box touches is covered.
    let c = frame.view_proj * vec4<f32>(centre, 1.0);
    let ax = frame.view_proj[0] * half_size.x;
    let ay = frame.view_proj[1] * half_size.y;
    let az = frame.view_proj[2] * half_size.z;
    var rect_lo = vec2<f32>(1e9);
    var rect_hi = vec2<f32>(-1e9);
    var nearest_w = 1e9;
    for (var i = 0u; i < 8u; i++) {
        let s = vec3<f32>(
            select(-1.0, 1.0, (i & 1u) != 0u),
            select(-1.0, 1.0, (i & 2u) != 0u),
            select(-1.0, 1.0, (i & 4u) != 0u),
        );
        let p = c + ax * s.x + ay * s.y + az * s.z;
        nearest_w = min(nearest_w, p.w);
        let ndc = p.xy / p.w;
        rect_lo = min(rect_lo, ndc);
        rect_hi = max(rect_hi, ndc);
    }
    // With MSAA a pixel whose centre is outside the box may still have samples inside.
    let viewport = vec2<f32>(frame.viewport_width, frame.viewport_height);
    let pad = select(0.0, 1.0, frame.samples > 1u) / viewport;
    rect_lo -= pad;
    rect_hi += pad;

    var out: CubeOut;
    out.centre = centre;
    out.half_size = half_size;
    out.color = color;
    out.rect = vec4<f32>(
        (rect_lo.x + 1.0) * 0.5 * viewport.x,
        (1.0 - rect_hi.y) * 0.5 * viewport.y,
        (rect_hi.x + 1.0) * 0.5 * viewport.x,
        (1.0 - rect_lo.y) * 0.5 * viewport.y,
    );
    // A cube off screen, or reaching behind the eye (zoomed into the scene), is dropped:
    // all three corners outside the view, so the clipper rejects it outright.
    let on_screen = all(rect_hi > vec2<f32>(-1.0)) && all(rect_lo < vec2<f32>(1.0));
    if !on_screen || nearest_w < 1e-3 {
        out.clip = vec4<f32>(-2.0, -2.0, 0.5, 1.0);
        return out;
    }
    // One right triangle with its right angle at the rectangle's corner and legs twice the
    // rectangle's sides covers the rectangle. Its depth is irrelevant: frag_depth decides.
    var p = rect_lo;
    if corner == 1u {
        p.x = rect_lo.x + 2.0 * (rect_hi.x - rect_lo.x);
    } else if corner == 2u {
        p.y = rect_lo.y + 2.0 * (rect_hi.y - rect_lo.y);
    }
    out.clip = vec4<f32>(p, 0.5, 1.0);
    return out;
}

// Vulkan's / D3D's standard 4× sample positions within a pixel.
const SAMPLE_POSITIONS = array<vec2<f32>, 4>(
    vec2<f32>(0.375, 0.125),
    vec2<f32>(0.875, 0.375),
    vec2<f32>(0.125, 0.625),
    vec2<f32>(0.625, 0.875),
);

fn ray_through(pixel: vec2<f32>) -> vec3<f32> {
    let ndc = vec2<f32>(
        pixel.x / frame.viewport_width * 2.0 - 1.0,
        1.0 - pixel.y / frame.viewport_height * 2.0,
    );
    return frame.ray_centre.xyz + ndc.x * frame.ray_dx.xyz + ndc.y * frame.ray_dy.xyz;
}

// Where the ray eye + t · dir enters the box [lo, hi], or -1 if it misses (slab test).
fn enter_box(dir: vec3<f32>, lo: vec3<f32>, hi: vec3<f32>) -> f32 {
    let inv = 1.0 / dir;
    let t0 = (lo - frame.eye.xyz) * inv;
    let t1 = (hi - frame.eye.xyz) * inv;
    let near = min(t0, t1);
    let far = max(t0, t1);
    let enter = max(max(near.x, near.y), near.z);
    let leave = min(min(far.x, far.y), far.z);
    if enter <= leave && enter > 0.0 {
        return enter;
    }
    return -1.0;
}

struct CubeFragment {
    @location(0) color: vec4<f32>,
    @builtin(frag_depth) depth: f32,
    @builtin(sample_mask) mask: u32,
}

@fragment
fn fs_cube(in: CubeOut) -> CubeFragment {
    if any(in.clip.xy < in.rect.xy) || any(in.clip.xy > in.rect.zw) {
        discard;
    }
    let lo = in.centre - in.half_size;
    let hi = in.centre + in.half_size;
    // Shade with the pixel centre's ray when it hits, else with the first sample that does.
    var dir = ray_through(in.clip.xy);
    var t = enter_box(dir, lo, hi);
    var mask = select(0u, 1u, t > 0.0);
    if frame.samples == 4u {
        mask = 0u;
        let corner = floor(in.clip.xy);
        for (var i = 0u; i < 4u; i++) {
            let sample_dir = ray_through(corner + SAMPLE_POSITIONS[i]);
            let sample_t = enter_box(sample_dir, lo, hi);
            if sample_t > 0.0 {
                mask |= 1u << i;
                if t <= 0.0 {
                    t = sample_t;
                    dir = sample_dir;
                }
            }
        }
    }
    if mask == 0u {
        discard;
    }
    let hit = frame.eye.xyz + dir * t;
    // The face hit is the one whose axis the hit point is furthest out along.
    let q = (hit - in.centre) / max(in.half_size, vec3<f32>(1e-6));
    let a = abs(q);
    var normal = vec3<f32>(0.0, sign(q.y), 0.0);
    if a.x >= a.y && a.x >= a.z {
        normal = vec3<f32>(sign(q.x), 0.0, 0.0);
    } else if a.z >= a.y {
        normal = vec3<f32>(0.0, 0.0, sign(q.z));
    }
    // Directional light plus ambient, with a little sky light from above so faces turned
    // from the sun still show their colour.
    let ambient = frame.light.w * (0.75 + 0.25 * normal.y);
    let diffuse = (1.0 - frame.light.w) * max(dot(normal, frame.light.xyz), 0.0);
    let color = fogged(in.color * (ambient + diffuse), t * length(dir));

    let clip = frame.view_proj * vec4<f32>(hit, 1.0);
    var out: CubeFragment;
    out.color = vec4<f32>(finish(color), 1.0);
    out.depth = clamp(clip.z / clip.w, 0.0, 1.0);
    out.mask = mask;
    return out;
}

struct PlateOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) color: vec3<f32>,
}

// One quad per channel tile, a shade lighter than the background: the feature maps read
// as panels even where every cube is flat.
@vertex
fn vs_plate(@builtin(vertex_index) vertex: u32, @builtin(instance_index) instance: u32) -> PlateOut {
    let rect = plates[instance];
    let u = f32(vertex & 1u);
    let v = f32(vertex >> 1u);
    // Slightly below the cubes' bottoms so the two never fight over depth.
    let position = vec3<f32>(mix(rect.x, rect.z, u), -0.02, mix(rect.y, rect.w, v));
    let centre = vec3<f32>((rect.x + rect.z) * 0.5, 0.0, (rect.y + rect.w) * 0.5);
    var out: PlateOut;
    out.clip = frame.view_proj * vec4<f32>(position, 1.0);
    out.color = finish(fogged(frame.plate.rgb, distance(centre, frame.eye.xyz)));
    return out;
}

@fragment
fn fs_plate(in: PlateOut) -> @location(0) vec4<f32> {
    return vec4<f32>(in.color, 1.0);
}
