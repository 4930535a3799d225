// The 3D layer scene: one cube per activation of every drawn layer, reading the
// activation arena, the per-layer value ranges and the Grad-CAM buffer that the compute
// kernels wrote earlier in the same submission. Nothing goes through the CPU.
//
// Rust twins: `FrameUniform`, `LayerUniform` and `TileUniform` in src/scene/gpu_types.rs,
// field by field. Placement formulas: src/scene/layout.rs (`LayerPlacement::cell_centre`,
// `cube_height`).
//
// Two ways to draw the same cubes, chosen by `CubeRenderer`'s `DrawMode`; they share every
// colour, height and lighting formula below, so they give the same picture:
//
// - `vs_cube`/`fs_cube` (GPUs): one instance per cube, all cubes in one instanced draw.
//   The vertex shader reads the cube's value from the arena, builds its box and covers the
//   box's screen rectangle with ONE triangle; the fragment shader intersects each pixel's
//   ray with the box (the face, its light and its depth exactly; with MSAA per sample via
//   sample_mask, so edges are smooth). One triangle instead of a 12-triangle mesh.
// - `vs_tile`/`fs_tile` (CPU rasterisers): one instance per channel tile, drawn as its
//   bounding box's three camera-facing faces; the fragment shader walks the pixel's ray
//   through the tile's cells (a 2D DDA) and hits the first cube box. On lavapipe every
//   vertex and triangle costs ~0.3-0.5 µs on one thread and every 4×4 pixel block a full
//   shader call, so 43 000 per-cube triangles cannot reach 60 FPS on two cores; 148 tile
//   boxes can. Same cubes, same data, same pixels.

// A note for whoever optimises this file: lavapipe runs both sides of every `if` with
// lane masks (an early `return` or `discard` saves nothing; only loops end early when all
// lanes are done), so the fragment shaders below keep their straight-line code minimal
// and choose with `select`; the target-dependent choices are pipeline constants.

const NONE: u32 = 0xffffffffu;

// 1 when the target format is not sRGB, so the shader encodes the colour itself.
override ENCODE_SRGB: bool = false;
// MSAA sample count of the pass: 4 tests the standard sample positions, else 1.
override SAMPLES: u32 = 1u;

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
    // The chosen colour map's polynomial, constant term first (rgb of each; a unused).
    color_map: array<vec4<f32>, 7>,
    viewport_width: f32,
    viewport_height: f32,
    time: f32,
    wave_start: f32,
    // <= 0: no wave, every layer fully shown.
    wave_duration: f32,
    _pad3: u32,
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
    _pad0: u32,
    // Fog distances (world units from the eye): start and full.
    fog_near: f32,
    fog_far: f32,
    // Top-left corner of the viewport in the target, in pixels: fragment positions are
    // target pixels, the rays are built in viewport pixels.
    viewport_x: f32,
    viewport_y: f32,
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
    // Cubes in the layer (the last row of a vector may be short).
    len: u32,
    min_height: f32,
    // The wave reaches this layer between these fractions of its duration.
    reveal_start: f32,
    reveal_end: f32,
    tile_cols: u32,
}

// One channel tile: its cells' rectangle on the ground and what it shows.
struct Tile {
    // x0, z0, x1, z1 of the cells (the plate reaches `margin` further).
    rect: vec4<f32>,
    layer: u32,
    channel: u32,
    margin: f32,
    _pad: u32,
}

// A read-only storage buffer, not a uniform: lavapipe (Mesa 22.3) leaked memory on every
// frame whose uniform buffer had been rewritten (see CubeRenderer::prepare).
@group(0) @binding(0) var<storage, read> frame: Frame;
@group(0) @binding(1) var<storage, read> activations: array<f32>;
@group(0) @binding(2) var<storage, read> ranges: array<f32>;
@group(0) @binding(3) var<storage, read> cam: array<f32>;
// One bit per cube.
@group(0) @binding(4) var<storage, read> highlight: array<u32>;
@group(0) @binding(5) var<storage, read> tiles: array<Tile>;
// Drawn layers in cube order.
@group(0) @binding(6) var<storage, read> layers: array<Layer>;

// Port of src/colormap.rs: its polynomial fits (sRGB-encoded output in 0..1). The CPU
// puts the chosen map's coefficients in the frame uniform, so no per-pixel choice is made.
fn color_map(t: f32) -> vec3<f32> {
    let c = frame.color_map;
    let rgb = c[0].rgb + t * (c[1].rgb + t * (c[2].rgb + t * (c[3].rgb + t * (c[4].rgb + t * (c[5].rgb + t * c[6].rgb)))));
    return clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0));
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
    if ENCODE_SRGB {
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

// How far the wave has raised this layer: 0 before it arrives, 1 after.
fn reveal_of(layer: Layer) -> f32 {
    if frame.wave_duration <= 0.0 {
        return 1.0;
    }
    let progress = (frame.time - frame.wave_start) / frame.wave_duration;
    return smoothstep(layer.reveal_start, layer.reveal_end, progress);
}

// The value of element `local` normalised by the layer's range; a constant layer lies flat.
fn normalised(layer: Layer, local: u32) -> f32 {
    let value = activations[layer.arena_offset + local];
    let lo = ranges[layer.range_offset];
    let hi = ranges[layer.range_offset + 1u];
    if hi > lo {
        return clamp((value - lo) / (hi - lo), 0.0, 1.0);
    }
    return 0.0;
}

// Same formula as LayerPlacement::cube_height, scaled by the wave.
fn cube_height(layer: Layer, t: f32, reveal: f32) -> f32 {
    return layer.min_height + t * layer.steps.w * reveal;
}

// A cube's linear colour before lighting: colour map, Grad-CAM tint, wave, highlight.
// `activation` and `cols` say which layer and where the CAM map's (y, x) is.
fn cube_color(activation: u32, cols: u32, cube: u32, y: u32, x: u32, t: f32, reveal: f32) -> vec3<f32> {
    var color = srgb_to_linear(color_map(t));

    // Grad-CAM: the target block's output carries the low-resolution map in every channel
    // tile, the input carries the input-sized heatmap; strong regions glow warm.
    let tint_layer = activation == frame.cam_activation;
    let tint_input = activation == 0u && frame.cam_heatmap != NONE;
    let cam_base = select(select(0u, frame.cam_heatmap, tint_input), frame.cam_low_res, tint_layer);
    let heat = cam[cam_base + y * cols + x];
    let k = select(0.0, smoothstep(0.1, 1.0, heat), tint_layer || tint_input);
    let dim = select(1.0, 1.0 - 0.35 * (1.0 - k), tint_layer || tint_input);
    color = mix(color * dim, vec3<f32>(1.0, 0.22, 0.05), 0.7 * k);

    // Not yet reached by the wave: a dark tile; just reached: a brief glow (4r(1 − r)).
    color = mix(frame.plate.rgb * 1.5, color, reveal) + vec3<f32>(0.12 * 4.0 * reveal * (1.0 - reveal));

    // Highlight: the set brightened, the rest dimmed to grey; the picked cube whitish.
    let on = ((highlight[cube >> 5u] >> (cube & 31u)) & 1u) == 1u;
    let grey = dot(color, vec3<f32>(0.2126, 0.7152, 0.0722));
    let highlighted = select(mix(vec3<f32>(grey), color, 0.4) * 0.22, color * 1.2 + vec3<f32>(0.05), on);
    color = select(color, highlighted, frame.highlight != 0u);
    return select(color, mix(color, vec3<f32>(1.0), 0.6), cube == frame.picked);
}

// Directional light plus ambient, with a little sky light from above so faces turned from
// the sun still show their colour.
fn lit_only(color: vec3<f32>, normal: vec3<f32>) -> vec3<f32> {
    let ambient = frame.light.w * (0.75 + 0.25 * normal.y);
    let diffuse = (1.0 - frame.light.w) * max(dot(normal, frame.light.xyz), 0.0);
    return color * (ambient + diffuse);
}

// Lit, then faded with distance.
fn lit(color: vec3<f32>, normal: vec3<f32>, distance: f32) -> vec3<f32> {
    return fogged(lit_only(color, normal), distance);
}

// The face of a box a point on its surface lies on: the axis it is furthest out along.
fn box_normal(hit: vec3<f32>, centre: vec3<f32>, half_size: vec3<f32>) -> vec3<f32> {
    let q = (hit - centre) / max(half_size, vec3<f32>(1e-6));
    let a = abs(q);
    if a.x >= a.y && a.x >= a.z {
        return vec3<f32>(sign(q.x), 0.0, 0.0);
    }
    if a.z >= a.y {
        return vec3<f32>(0.0, 0.0, sign(q.z));
    }
    return vec3<f32>(0.0, sign(q.y), 0.0);
}

// Where the ray eye + t · dir (inv = 1 / dir) enters the box [lo, hi], or -1 if it
// misses or starts inside (slab test).
fn enter_box(inv: vec3<f32>, lo: vec3<f32>, hi: vec3<f32>) -> f32 {
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

// Half the edge of a cube's footprint in a layer of cell edge `cell`, seen near `point`.
// The gaps between cubes make single cubes readable up close, but once a cell is only a
// few pixels wide they are thinner than a pixel and shimmer (no MSAA on CPU rasterisers);
// so they close smoothly as the cells shrink on screen.
fn half_footprint(point: vec3<f32>, cell: f32, footprint: f32) -> f32 {
    let a = frame.view_proj * vec4<f32>(point, 1.0);
    let b = frame.view_proj * vec4<f32>(point + vec3<f32>(cell, 0.0, 0.0), 1.0);
    let c = frame.view_proj * vec4<f32>(point + vec3<f32>(0.0, 0.0, cell), 1.0);
    let scale = 0.5 * vec2<f32>(frame.viewport_width, frame.viewport_height);
    let pixels = max(length((b.xy / b.w - a.xy / a.w) * scale), length((c.xy / c.w - a.xy / a.w) * scale));
    return 0.5 * mix(cell, footprint, smoothstep(2.0, 5.0, pixels));
}

fn depth_of(point: vec3<f32>) -> f32 {
    let clip = frame.view_proj * vec4<f32>(point, 1.0);
    return clamp(clip.z / clip.w, 0.0, 1.0);
}

// ---- Per-cube instances (GPUs) ----

struct CubeOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) centre: vec3<f32>,
    @location(1) @interpolate(flat) half_size: vec3<f32>,
    // Linear colour before lighting.
    @location(2) @interpolate(flat) color: vec3<f32>,
    // The box's screen rectangle in pixels (x0, y0, x1, y1): the part of the covering
    // triangle outside it is discarded before any ray is cast.
    @location(3) @interpolate(flat) rect: vec4<f32>,
}

@vertex
fn vs_cube(@builtin(vertex_index) corner: u32, @builtin(instance_index) cube: u32) -> CubeOut {
    let layer = layers[find_layer(cube)];
    let local = cube - layer.instance_start;
    let plane = layer.rows * layer.cols;
    let channel = local / plane;
    let rest = local - channel * plane;
    let y = rest / layer.cols;
    let x = rest - y * layer.cols;
    let cell = layer.origin.w;
    let reveal = reveal_of(layer);
    let t = normalised(layer, local);
    let height = cube_height(layer, t, reveal);
    let base = vec3<f32>(
        layer.origin.x + f32(channel % layer.tile_cols) * layer.steps.x + (f32(x) + 0.5) * cell,
        layer.origin.y,
        layer.origin.z + f32(channel / layer.tile_cols) * layer.steps.y + (f32(y) + 0.5) * cell,
    );
    let foot = half_footprint(base, cell, layer.steps.z);
    let half_size = vec3<f32>(foot, height * 0.5, foot);
    let centre = base + vec3<f32>(0.0, half_size.y, 0.0);

    // The box's screen rectangle: project the 8 corners (centre ± the scaled columns of
    // the matrix).
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
    let pad = select(0.0, 1.0, SAMPLES > 1u) / viewport;
    rect_lo -= pad;
    rect_hi += pad;

    var out: CubeOut;
    out.centre = centre;
    out.half_size = half_size;
    out.color = cube_color(layer.activation, layer.cols, cube, y, x, t, reveal);
    let origin = vec2<f32>(frame.viewport_x, frame.viewport_y);
    out.rect = vec4<f32>(
        (rect_lo.x + 1.0) * 0.5 * viewport.x,
        (1.0 - rect_hi.y) * 0.5 * viewport.y,
        (rect_hi.x + 1.0) * 0.5 * viewport.x,
        (1.0 - rect_lo.y) * 0.5 * viewport.y,
    ) + vec4<f32>(origin, origin);
    // A cube off screen, or reaching behind the eye (zoomed into the scene), is dropped:
    // all three corners outside the view, so the clipper rejects it outright.
    let on_screen = all(rect_hi > vec2<f32>(-1.0)) && all(rect_lo < vec2<f32>(1.0));
    if !on_screen || nearest_w < 1e-3 {
        out.clip = vec4<f32>(-2.0, -2.0, 0.5, 1.0);
        return out;
    }
    // A right triangle with its right angle at the rectangle's corner and legs twice the
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

fn ray_through(target_pixel: vec2<f32>) -> vec3<f32> {
    let pixel = target_pixel - vec2<f32>(frame.viewport_x, frame.viewport_y);
    let ndc = vec2<f32>(
        pixel.x / frame.viewport_width * 2.0 - 1.0,
        1.0 - pixel.y / frame.viewport_height * 2.0,
    );
    return frame.ray_centre.xyz + ndc.x * frame.ray_dx.xyz + ndc.y * frame.ray_dy.xyz;
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
    var t = enter_box(1.0 / dir, lo, hi);
    var mask = select(0u, 1u, t > 0.0);
    if SAMPLES == 4u {
        mask = 0u;
        let corner = floor(in.clip.xy);
        for (var i = 0u; i < 4u; i++) {
            let sample_dir = ray_through(corner + SAMPLE_POSITIONS[i]);
            let sample_t = enter_box(1.0 / sample_dir, lo, hi);
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
    let normal = box_normal(hit, in.centre, in.half_size);
    var out: CubeFragment;
    out.color = vec4<f32>(finish(lit(in.color, normal, t * length(dir))), 1.0);
    out.depth = depth_of(hit);
    out.mask = mask;
    return out;
}

// ---- Per-tile instances (CPU rasterisers) ----

// The three faces of a box around the corner (+1, +1, +1), as one 9-vertex strip; the
// vertex shader mirrors them towards the eye so they are the visible ones.
const BOX_STRIP = array<vec3<f32>, 9>(
    vec3<f32>(1.0, -1.0, -1.0),
    vec3<f32>(1.0, -1.0, 1.0),
    vec3<f32>(1.0, 1.0, -1.0),
    vec3<f32>(1.0, 1.0, 1.0),
    vec3<f32>(-1.0, 1.0, -1.0),
    vec3<f32>(-1.0, 1.0, 1.0),
    vec3<f32>(1.0, 1.0, 1.0),
    vec3<f32>(-1.0, -1.0, 1.0),
    vec3<f32>(1.0, -1.0, 1.0),
);

// Everything the fragment shader needs about its tile, computed once per vertex instead
// of loaded per pixel: the CPU rasteriser gathers storage loads lane by lane, and the
// per-pixel march must do nothing but walk.
struct TileOut {
    @builtin(position) clip: vec4<f32>,
    // Where the pixel's ray enters the tile's box.
    @location(0) world: vec3<f32>,
    // x0, z0, x1, z1 of the tile's cells.
    @location(1) @interpolate(flat) rect: vec4<f32>,
    // Cell edge, half the cube footprint, smallest height, height per unit of value.
    @location(2) @interpolate(flat) shape: vec4<f32>,
    // Range minimum, 1 / (max − min) (0 for a constant layer), plate margin, wave reveal.
    @location(3) @interpolate(flat) range: vec4<f32>,
    // Arena offset and cube index of the tile's first cell, columns, rows.
    @location(4) @interpolate(flat) cells: vec4<u32>,
    // Cells that hold a value (a vector's last row may be short), activation index.
    @location(5) @interpolate(flat) ids: vec2<u32>,
}

@vertex
fn vs_tile(@builtin(vertex_index) vertex: u32, @builtin(instance_index) tile_index: u32) -> TileOut {
    let tile = tiles[tile_index];
    let layer = layers[tile.layer];
    let reveal = reveal_of(layer);
    // Tall enough for the layer's largest cube; the plate margin included.
    let lo = vec3<f32>(tile.rect.x - tile.margin, 0.0, tile.rect.y - tile.margin);
    let hi = vec3<f32>(
        tile.rect.z + tile.margin,
        cube_height(layer, 1.0, reveal) + 1e-3,
        tile.rect.w + tile.margin,
    );
    let centre = (lo + hi) * 0.5;
    let half_size = (hi - lo) * 0.5;
    let facing = select(vec3<f32>(-1.0), vec3<f32>(1.0), frame.eye.xyz >= centre);
    let world = centre + BOX_STRIP[vertex] * facing * half_size;

    let range_lo = ranges[layer.range_offset];
    let range_hi = ranges[layer.range_offset + 1u];
    let plane = layer.rows * layer.cols;
    let first = tile.channel * plane;
    var out: TileOut;
    out.clip = frame.view_proj * vec4<f32>(world, 1.0);
    out.world = world;
    out.rect = tile.rect;
    let middle = vec3<f32>((tile.rect.x + tile.rect.z) * 0.5, 0.0, (tile.rect.y + tile.rect.w) * 0.5);
    let foot = half_footprint(middle, layer.origin.w, layer.steps.z);
    out.shape = vec4<f32>(layer.origin.w, foot, layer.min_height, layer.steps.w * reveal);
    out.range = vec4<f32>(
        range_lo,
        select(0.0, 1.0 / (range_hi - range_lo), range_hi > range_lo),
        tile.margin,
        reveal,
    );
    out.cells = vec4<u32>(layer.arena_offset + first, layer.instance_start + first, layer.cols, layer.rows);
    out.ids = vec2<u32>(min(plane, layer.len - min(first, layer.len)), layer.activation);
    return out;
}

// No frag_depth here: tile boxes never overlap, so along any ray the box entered first
// holds the first hit, and the rasterised depth of the box's face orders tiles correctly.
// Without frag_depth the rasteriser may test depth before shading.
@fragment
fn fs_tile(in: TileOut) -> @location(0) vec4<f32> {
    let eye = frame.eye.xyz;
    // The ray eye + t · dir enters the tile's box at t = 1. A component of exactly zero
    // would make the DDA divide 0 by 0; nudging it changes nothing visible.
    let raw = in.world - eye;
    let dir = select(raw, vec3<f32>(1e-7), abs(raw) < vec3<f32>(1e-7));
    let inv = 1.0 / dir;
    let rect = in.rect;
    let cell = in.shape.x;
    let foot = in.shape.y;
    let cols = i32(in.cells.z);
    let rows = i32(in.cells.w);

    // Clip the ray to the cells' rectangle in the ground plane (a 2D slab test).
    let tx0 = (rect.x - eye.x) * inv.x;
    let tx1 = (rect.z - eye.x) * inv.x;
    let tz0 = (rect.y - eye.z) * inv.z;
    let tz1 = (rect.w - eye.z) * inv.z;
    let enter = max(max(min(tx0, tx1), min(tz0, tz1)), 1.0);
    let leave = min(max(tx0, tx1), max(tz0, tz1));

    var hit_t = -1.0;
    var hit_local = 0u;
    var hit_value = 0.0;
    var hit_cell = vec2<f32>(0.0);
    if enter < leave {
        // 2D DDA over the cells the ray crosses, nearest first (Amanatides & Woo).
        let start = eye + dir * (enter + 1e-4 * (leave - enter));
        var cx = clamp(i32(floor((start.x - rect.x) / cell)), 0, cols - 1);
        var cy = clamp(i32(floor((start.z - rect.y) / cell)), 0, rows - 1);
        let step_x = select(-1, 1, dir.x > 0.0);
        let step_z = select(-1, 1, dir.z > 0.0);
        let delta_x = abs(cell * inv.x);
        let delta_z = abs(cell * inv.z);
        var next_x = (rect.x + f32(cx + select(0, 1, dir.x > 0.0)) * cell - eye.x) * inv.x;
        var next_z = (rect.y + f32(cy + select(0, 1, dir.z > 0.0)) * cell - eye.z) * inv.z;
        for (var i = 0; i < rows + cols; i++) {
            let local = u32(cy * cols + cx);
            let value = activations[in.cells.x + min(local, in.ids.x - 1u)];
            let t = clamp((value - in.range.x) * in.range.y, 0.0, 1.0);
            // A cell past a vector's last value has no cube: its box lies under the ground.
            let height = select(-1.0, in.shape.z + t * in.shape.w, local < in.ids.x);
            let middle = vec2<f32>(rect.x + (f32(cx) + 0.5) * cell, rect.y + (f32(cy) + 0.5) * cell);
            let lo = vec3<f32>(middle.x - foot, 0.0, middle.y - foot);
            let hi = vec3<f32>(middle.x + foot, height, middle.y + foot);
            let entry = enter_box(inv, lo, hi);
            if entry > 0.0 {
                hit_t = entry;
                hit_local = local;
                hit_value = t;
                hit_cell = middle;
                break;
            }
            // Past the ground: nothing further along can be hit.
            if eye.y + dir.y * min(next_x, next_z) < 0.0 {
                break;
            }
            if next_x < next_z {
                cx += step_x;
                next_x += delta_x;
            } else {
                cy += step_z;
                next_z += delta_z;
            }
            if cx < 0 || cx >= cols || cy < 0 || cy >= rows {
                break;
            }
        }
    }

    // One shading path for both outcomes (see the note at the top): a cube, or else the
    // plate where the ray meets the ground inside the tile's margin.
    let is_cube = hit_t > 0.0;
    let ground = -eye.y * inv.y;
    let t_hit = select(ground, hit_t, is_cube);
    let point = eye + dir * t_hit;
    let margin = in.range.z;
    let on_plate = dir.y < 0.0
        && point.x >= rect.x - margin && point.x <= rect.z + margin
        && point.z >= rect.y - margin && point.z <= rect.w + margin;
    if !is_cube && !on_plate {
        discard;
    }
    let y = hit_local / in.cells.z;
    let x = hit_local - y * in.cells.z;
    let height = in.shape.z + hit_value * in.shape.w;
    let centre = vec3<f32>(hit_cell.x, height * 0.5, hit_cell.y);
    let normal = box_normal(point, centre, vec3<f32>(foot, height * 0.5, foot));
    let color = cube_color(in.ids.y, in.cells.z, in.cells.y + hit_local, y, x, hit_value, in.range.w);
    let shaded = select(frame.plate.rgb, lit_only(color, normal), is_cube);
    return vec4<f32>(finish(fogged(shaded, t_hit * length(dir))), 1.0);
}

// ---- Tile plates (under the per-cube instances) ----

struct PlateOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) color: vec3<f32>,
}

// One quad per channel tile, a shade lighter than the background: the feature maps read
// as panels even where every cube is flat.
@vertex
fn vs_plate(@builtin(vertex_index) vertex: u32, @builtin(instance_index) instance: u32) -> PlateOut {
    let tile = tiles[instance];
    let rect = tile.rect + vec4<f32>(-tile.margin, -tile.margin, tile.margin, tile.margin);
    let u = f32(vertex & 1u);
    let v = f32(vertex >> 1u);
    // At the cubes' bottoms: the cubes' own depth (frag_depth) wins where they stand.
    let position = vec3<f32>(mix(rect.x, rect.z, u), 0.0, mix(rect.y, rect.w, v));
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
