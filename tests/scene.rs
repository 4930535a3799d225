//! The 3D scene, offscreen on whatever adapter exists (lavapipe without a GPU): frames of
//! the committed model on real digits are not blank, differ between digits, repeat bit for
//! bit, agree between the two draw modes; the instance count, picking, receptive fields,
//! strongest weights, the hovered-value readback, and the WGSL twins of the Rust structs.

mod common;

use std::path::{Path, PathBuf};

use cnnviz::data::preprocess::{ink_from_image, load_image, mnist_input};
use cnnviz::gpu::{ArenaLayout, GpuContext, GpuNetwork, InferenceRequest};
use cnnviz::model::{LayerOp, Model, Shape, load_model};
use cnnviz::scene::gpu_types::{FrameUniform, LayerUniform, TileUniform};
use cnnviz::scene::{
    CamTint, Camera, CellRegion, CubeRenderer, DEFAULT_BACKGROUND, DrawMode, HighlightSet,
    OffscreenTarget, Pick, RendererConfig, SceneError, SceneLayout, SceneSettings, ValueReadback,
    Wave, influence, receptive_field, render_offscreen, strongest_inputs,
};
use image::RgbaImage;

const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> Model {
    load_model(&root().join("weights/mnist-cnn.safetensors")).expect("the committed model loads")
}

/// A sample digit as the network's normalised input.
fn digit(model: &Model, name: &str) -> Vec<f32> {
    let image = load_image(&root().join("samples").join(name)).expect("sample image");
    let input = model.architecture.input;
    let pixels =
        mnist_input(&ink_from_image(&image), input.height, input.width).expect("sample has ink");
    model.normalize(&pixels)
}

struct Scene {
    model: Model,
    network: GpuNetwork,
    layout: SceneLayout,
}

impl Scene {
    fn new(ctx: &GpuContext) -> Scene {
        let model = model();
        let network = GpuNetwork::new(&ctx.device, &model, 1).expect("network");
        let layout = SceneLayout::new(&model, network.layout());
        Scene {
            model,
            network,
            layout,
        }
    }

    fn renderer(&self, ctx: &GpuContext, mode: DrawMode, sample_count: u32) -> CubeRenderer {
        let config = RendererConfig {
            color_format: FORMAT,
            sample_count,
            draw_mode: mode,
        };
        CubeRenderer::new(&ctx.device, &self.network, &self.layout, config).expect("renderer")
    }

    fn camera(&self) -> Camera {
        self.layout.home_camera(WIDTH as f32 / HEIGHT as f32)
    }

    /// Runs the network on `sample` and renders the scene in the same submission.
    fn frame(
        &self,
        ctx: &GpuContext,
        renderer: &CubeRenderer,
        sample: &str,
        settings: &SceneSettings,
    ) -> RgbaImage {
        let input = digit(&self.model, sample);
        self.network
            .write_inputs(&ctx.queue, &input)
            .expect("input");
        render_offscreen(
            &ctx.device,
            &ctx.queue,
            &self.network,
            renderer,
            &self.camera(),
            WIDTH,
            HEIGHT,
            settings,
            Some(&InferenceRequest::default()),
        )
        .expect("offscreen frame")
    }
}

fn background_rgba() -> [u8; 4] {
    let [r, g, b] = DEFAULT_BACKGROUND.map(|c| (c * 255.0).round() as u8);
    [r, g, b, 255]
}

fn distinct_colours(image: &RgbaImage) -> usize {
    let mut colours: Vec<[u8; 4]> = image.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    colours.len()
}

/// Pixels whose largest channel difference exceeds `tolerance`.
fn differing(a: &RgbaImage, b: &RgbaImage, tolerance: u8) -> usize {
    a.pixels()
        .zip(b.pixels())
        .filter(|(p, q)| p.0.iter().zip(q.0).any(|(x, y)| x.abs_diff(y) > tolerance))
        .count()
}

#[test]
fn a_frame_of_a_real_digit_is_not_blank() {
    let Some(ctx) = common::gpu() else { return };
    let scene = Scene::new(ctx);
    let renderer = scene.renderer(ctx, DrawMode::Tiles, 1);
    let image = scene.frame(
        ctx,
        &renderer,
        "7-mnist-test-0.png",
        &SceneSettings::default(),
    );
    save_for_eyes(&image, "scene.png");
    let background = background_rgba();
    let covered = image
        .pixels()
        .filter(|p| p.0.iter().zip(background).any(|(x, y)| x.abs_diff(y) > 3))
        .count();
    let total = (WIDTH * HEIGHT) as usize;
    assert!(
        covered > total / 5,
        "only {covered} of {total} pixels show the scene"
    );
    // The clear colour is where nothing is drawn: the corners.
    assert!(
        image
            .get_pixel(0, 0)
            .0
            .iter()
            .zip(background)
            .all(|(x, y)| x.abs_diff(y) <= 1),
        "corner {:?} is not the background {background:?}",
        image.get_pixel(0, 0)
    );
    let colours = distinct_colours(&image);
    assert!(colours > 500, "only {colours} distinct colours");
}

#[test]
fn two_digits_give_different_frames() {
    let Some(ctx) = common::gpu() else { return };
    let scene = Scene::new(ctx);
    let renderer = scene.renderer(ctx, DrawMode::Tiles, 1);
    let settings = SceneSettings::default();
    let seven = scene.frame(ctx, &renderer, "7-mnist-test-0.png", &settings);
    let zero = scene.frame(ctx, &renderer, "0-mnist-test-3.png", &settings);
    let changed = differing(&seven, &zero, 8);
    assert!(changed > 5_000, "only {changed} pixels differ");
}

#[test]
fn the_same_camera_and_input_give_the_same_image() {
    let Some(ctx) = common::gpu() else { return };
    let scene = Scene::new(ctx);
    for mode in [DrawMode::Tiles, DrawMode::Instanced] {
        let renderer = scene.renderer(ctx, mode, 1);
        let settings = SceneSettings::default();
        let a = scene.frame(ctx, &renderer, "3-mnist-test-18.png", &settings);
        let b = scene.frame(ctx, &renderer, "3-mnist-test-18.png", &settings);
        assert!(a.as_raw() == b.as_raw(), "{mode:?}: frames differ");
    }
}

#[test]
fn both_draw_modes_draw_the_same_cubes() {
    let Some(ctx) = common::gpu() else { return };
    let scene = Scene::new(ctx);
    let settings = SceneSettings::default();
    let tiles = scene.frame(
        ctx,
        &scene.renderer(ctx, DrawMode::Tiles, 1),
        "4-mnist-test-4.png",
        &settings,
    );
    let cubes = scene.frame(
        ctx,
        &scene.renderer(ctx, DrawMode::Instanced, 1),
        "4-mnist-test-4.png",
        &settings,
    );
    // Same formulas, different rasterisation: only box edges (a pixel's centre just
    // inside one box and just outside in the other) may differ.
    let changed = differing(&tiles, &cubes, 24);
    let total = (WIDTH * HEIGHT) as usize;
    eprintln!("{changed} of {total} pixels differ between the draw modes");
    assert!(
        changed < total / 50,
        "{changed} of {total} pixels differ between the draw modes"
    );
}

#[test]
fn msaa_frames_render_where_the_adapter_supports_them() {
    let Some(ctx) = common::gpu() else { return };
    let four = ctx
        .adapter
        .get_texture_format_features(FORMAT)
        .flags
        .sample_count_supported(4);
    if !four {
        eprintln!("note: the adapter has no 4× MSAA for {FORMAT:?}");
        return;
    }
    let scene = Scene::new(ctx);
    let renderer = scene.renderer(ctx, DrawMode::Instanced, 4);
    let image = scene.frame(
        ctx,
        &renderer,
        "7-mnist-test-0.png",
        &SceneSettings::default(),
    );
    // Resolved edges blend cube and background: more colours than without MSAA.
    assert!(distinct_colours(&image) > 1_000);
}

/// Sum of the sizes of every drawn activation: all of them except flatten outputs, which
/// alias the map before them and are not drawn (see `scene::layout`).
fn drawn_cubes(model: &Model) -> u32 {
    model
        .activation_shapes()
        .iter()
        .enumerate()
        .filter(|(j, _)| *j == 0 || model.layers[j - 1].plan.op != LayerOp::Flatten)
        .map(|(_, shape)| shape.len() as u32)
        .sum()
}

#[test]
fn the_instance_count_is_the_sum_of_all_drawn_layer_sizes() {
    let model = model();
    let layout = SceneLayout::new(&model, &ArenaLayout::new(&model, 1));
    // input 784 + conv1, relu1 2·12544 + pool1 3136 + conv2, relu2 2·6272 + pool2 1568
    // + fc1, relu3 2·64 + fc2 10; flatten (1568) not drawn.
    assert_eq!(drawn_cubes(&model), 43_258);
    assert_eq!(layout.instance_count(), drawn_cubes(&model));
    assert_eq!(layout.layers.len(), model.layers.len()); // + input − flatten
    let Some(ctx) = common::gpu() else { return };
    let scene = Scene::new(ctx);
    for mode in [DrawMode::Tiles, DrawMode::Instanced] {
        let renderer = scene.renderer(ctx, mode, 1);
        assert_eq!(renderer.instance_count(), drawn_cubes(&model));
    }
}

#[test]
fn a_layout_from_another_model_is_refused() {
    let Some(ctx) = common::gpu() else { return };
    let scene = Scene::new(ctx);
    let other = common::random_model(
        common::architecture(
            "other",
            12,
            12,
            3,
            vec![
                common::conv("c", 1, 2, 3, 1, 1),
                common::flatten("f"),
                common::dense("d", 288, 3),
            ],
        ),
        1,
    );
    let layout = SceneLayout::new(&other, &ArenaLayout::new(&other, 1));
    let config = RendererConfig::for_adapter(&ctx.adapter, FORMAT);
    let result = CubeRenderer::new(&ctx.device, &scene.network, &layout, config);
    assert!(matches!(result, Err(SceneError::LayoutMismatch)));
    let renderer = scene.renderer(ctx, DrawMode::Tiles, 1);
    for (w, h) in [(0, 10), (10, 0), (100_000, 10)] {
        let err = OffscreenTarget::new(&ctx.device, &renderer, w, h).err();
        assert!(matches!(err, Some(SceneError::BadSize { .. })), "{w}×{h}");
    }
}

#[test]
fn other_architectures_are_laid_out_and_drawn() {
    // Three conv blocks, a stride-2 conv, odd sizes, a long dense layer: nothing about the
    // MNIST model is assumed.
    let architecture = common::architecture(
        "odd",
        23,
        19,
        4,
        vec![
            common::conv("c1", 1, 5, 5, 2, 2),
            common::relu("r1"),
            common::conv("c2", 5, 7, 3, 1, 1),
            common::relu("r2"),
            common::pool("p", 2, 2),
            common::conv("c3", 7, 3, 1, 1, 0),
            common::flatten("f"),
            common::dense("d1", 3 * 6 * 5, 200),
            common::relu("r3"),
            common::dense("d2", 200, 4),
        ],
    );
    let model = common::random_model(architecture, 7);
    let layout = SceneLayout::new(&model, &ArenaLayout::new(&model, 1));
    assert_eq!(layout.instance_count(), drawn_cubes(&model));
    // Every element has a distinct cell inside its board.
    for l in &layout.layers {
        for e in [0, l.len / 2, l.len - 1] {
            let (c, y, x) = l.cell_of(e);
            assert_eq!(l.element_of(c, y, x), Some(e), "{}", l.name);
        }
    }
    let Some(ctx) = common::gpu() else { return };
    let network = GpuNetwork::new(&ctx.device, &model, 1).expect("network");
    let layout = SceneLayout::new(&model, network.layout());
    let config = RendererConfig {
        color_format: FORMAT,
        sample_count: 1,
        draw_mode: DrawMode::Tiles,
    };
    let renderer = CubeRenderer::new(&ctx.device, &network, &layout, config).expect("renderer");
    let input = vec![0.5f32; model.input_len()];
    network.write_inputs(&ctx.queue, &input).expect("input");
    let camera = layout.home_camera(4.0 / 3.0);
    let image = render_offscreen(
        &ctx.device,
        &ctx.queue,
        &network,
        &renderer,
        &camera,
        320,
        240,
        &SceneSettings::default(),
        Some(&InferenceRequest::default()),
    )
    .expect("frame");
    assert!(distinct_colours(&image) > 50);
}

/// Screen position of the middle of a cell's footprint on the ground.
fn screen_of(layout: &SceneLayout, camera: &Camera, activation: usize, element: usize) -> [f32; 2] {
    let placement = layout.placement(activation).expect("drawn");
    let p = placement.cell_centre(element);
    let ndc = camera
        .view_proj(WIDTH as f32 / HEIGHT as f32)
        .project_point3(p);
    [
        (ndc.x + 1.0) * 0.5 * WIDTH as f32,
        (1.0 - ndc.y) * 0.5 * HEIGHT as f32,
    ]
}

#[test]
fn picking_a_known_screen_position_returns_its_cell() {
    let model = model();
    let layout = SceneLayout::new(&model, &ArenaLayout::new(&model, 1));
    let camera = layout.home_camera(WIDTH as f32 / HEIGHT as f32);
    let viewport = [WIDTH as f32, HEIGHT as f32];
    // conv2 (activation 4), channel 5, row 3, column 7; the input's centre; output 3.
    let conv2 = layout.placement(4).expect("conv2 is drawn");
    let cases = [
        (4, conv2.element_of(5, 3, 7).expect("cell")),
        (0, 14 * 28 + 14),
        (10, 3),
    ];
    for (activation, element) in cases {
        let at = screen_of(&layout, &camera, activation, element);
        let pick = layout
            .pick(&camera, at, viewport)
            .unwrap_or_else(|| panic!("nothing picked at {at:?}"));
        let placement = layout.placement(activation).expect("drawn");
        let (channel, y, x) = placement.cell_of(element);
        assert_eq!(
            pick,
            Pick {
                activation,
                channel,
                y,
                x,
                element_index: element,
                instance: placement.instance_start + element as u32,
            }
        );
    }
    // The empty sky above the scene picks nothing.
    assert_eq!(layout.pick(&camera, [2.0, 2.0], viewport), None);
    // With known heights, a tall cube is hit by its side before the ground behind it.
    let output = layout.placement(10).expect("outputs");
    let base = output.cell_centre(3);
    let side = base + glam::Vec3::new(0.0, output.cube_height(1.0) * 0.5, 0.0);
    let ray = cnnviz::scene::Ray {
        origin: side + glam::Vec3::new(0.0, 0.0, 50.0),
        direction: glam::Vec3::new(0.0, 0.0, -1.0),
    };
    let tall =
        |p: &cnnviz::scene::LayerPlacement, e: usize| (p.activation == 10 && e == 3).then_some(1.0);
    let pick = layout.pick_ray_with(&ray, tall).expect("the tall cube");
    assert_eq!((pick.activation, pick.element_index), (10, 3));
}

#[test]
fn receptive_field_of_a_conv2_cell() {
    let model = model();
    // conv2 output is activation 4 (input, conv1, relu1, pool1, conv2). Going back: conv2
    // (3×3, pad 1) reads a 3×3 window of pool1 in all 16 channels; each pool1 cell is a
    // 2×2 window of relu1, so 6×6 of relu1 and conv1; conv1 (3×3, pad 1) widens that by
    // one on each side: 8×8 of the input. (1 + 2·1 + 1·1 + 2·2 = 8.)
    let regions = receptive_field(&model, 4, 5, 3, 7);
    let region = |activation, channels, rows, cols| CellRegion {
        activation,
        channels,
        rows,
        cols,
    };
    assert_eq!(
        regions,
        vec![
            region(3, 0..16, 2..5, 6..9),    // pool1: 3×3, all channels
            region(2, 0..16, 4..10, 12..18), // relu1: 6×6
            region(1, 0..16, 4..10, 12..18), // conv1: the same cells
            region(0, 0..1, 3..11, 11..19),  // input: 8×8
        ]
    );
    // At the corner the windows are clipped by the padding: 5×5 of the input.
    let corner = receptive_field(&model, 4, 0, 0, 0);
    let input = corner.last().expect("reaches the input");
    assert_eq!((input.rows.clone(), input.cols.clone()), (0..5, 0..5));
    // A pool1 cell: its 2×2 window in relu1 and conv1 (same channel), 4×4 of the input.
    let pool = receptive_field(&model, 3, 2, 1, 1);
    assert_eq!(pool[0].channels, 2..3);
    assert_eq!(pool[0].len(), 4);
    assert_eq!(pool.last().map(|r| r.len()), Some(16));
    // Vectors and the input have none.
    assert!(receptive_field(&model, 10, 0, 0, 0).is_empty());
    assert!(receptive_field(&model, 0, 0, 5, 5).is_empty());
}

#[test]
fn dense_picks_show_their_strongest_incoming_weights() {
    let model = model();
    let layout = SceneLayout::new(&model, &ArenaLayout::new(&model, 1));
    // Output 3 is fed by relu3 (activation 9) through fc2's row 3.
    let (from, top) = strongest_inputs(&model, 10, 3, 5).expect("a dense layer");
    assert_eq!(from, 9);
    let params = model.layers[9].params.as_ref().expect("fc2 weights");
    let row = &params.weight[3 * 64..4 * 64];
    let mut expected: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
    expected.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    expected.truncate(5);
    assert_eq!(top, expected);
    // relu3 (activation 9) is fc1's output through a ReLU: fc1's row, from the flatten
    // output (activation 7), whose cubes are pool2's.
    let (from, top) = strongest_inputs(&model, 9, 10, 16).expect("through the relu");
    assert_eq!((from, top.len()), (7, 16));
    let placement = layout.placement(10).expect("outputs");
    let pick = Pick {
        activation: 10,
        channel: 0,
        y: 3,
        x: 0,
        element_index: 3,
        instance: placement.instance_start + 3,
    };
    let set = influence(&model, &layout, &pick, 5);
    assert_eq!(set.picked, Some(pick.instance));
    let relu3 = layout.placement(9).expect("relu3");
    let wanted: Vec<u32> = expected
        .iter()
        .map(|&(e, _)| relu3.instance_start + e as u32)
        .collect();
    assert_eq!(set.instances, wanted);
    // A flatten index lands on the pool2 cube it aliases.
    let pool2 = layout.placement(6).expect("pool2");
    assert_eq!(layout.instance_of(7, 100), Some(pool2.instance_start + 100));
    assert!(matches!(pool2.shape, Shape::Map { .. }));
    // Conv picks highlight the receptive field: 9·16 + 36·16 + 36·16 + 64 cubes.
    let conv2 = layout.placement(4).expect("conv2");
    let element = conv2.element_of(5, 3, 7).expect("cell");
    let pick = Pick {
        activation: 4,
        channel: 5,
        y: 3,
        x: 7,
        element_index: element,
        instance: conv2.instance_start + element as u32,
    };
    assert_eq!(
        influence(&model, &layout, &pick, 5).instances.len(),
        144 + 576 + 576 + 64
    );
}

#[test]
fn highlight_grad_cam_and_the_wave_change_the_picture() {
    let Some(ctx) = common::gpu() else { return };
    let scene = Scene::new(ctx);
    let renderer = scene.renderer(ctx, DrawMode::Tiles, 1);
    let plain = SceneSettings::default();
    let base = scene.frame(ctx, &renderer, "9-mnist-test-7.png", &plain);

    let cam = SceneSettings {
        grad_cam: Some(CamTint {
            block: 1,
            layer: true,
            input: true,
        }),
        ..plain
    };
    let tinted = scene.frame(ctx, &renderer, "9-mnist-test-7.png", &cam);
    assert!(
        differing(&base, &tinted, 8) > 1_000,
        "Grad-CAM tint invisible"
    );

    // The wave: just started, every layer is still flat; once it has passed, the frame is
    // exactly the frame without a wave.
    let start = SceneSettings {
        time: 10.0,
        wave: Some(Wave::starting_at(10.0)),
        ..plain
    };
    let rising = scene.frame(ctx, &renderer, "9-mnist-test-7.png", &start);
    assert!(
        differing(&base, &rising, 8) > 1_000,
        "the wave shows nothing"
    );
    let done = SceneSettings {
        time: 11.0,
        ..start
    };
    let settled = scene.frame(ctx, &renderer, "9-mnist-test-7.png", &done);
    assert!(
        settled.as_raw() == base.as_raw(),
        "after the wave the frame should settle"
    );

    let conv2 = scene.layout.placement(4).expect("conv2");
    let element = conv2.element_of(0, 7, 7).expect("cell");
    let pick = Pick {
        activation: 4,
        channel: 0,
        y: 7,
        x: 7,
        element_index: element,
        instance: conv2.instance_start + element as u32,
    };
    let set: HighlightSet = influence(&scene.model, &scene.layout, &pick, 16);
    renderer.set_highlight(&ctx.queue, Some(&set));
    let lit = scene.frame(ctx, &renderer, "9-mnist-test-7.png", &plain);
    renderer.set_highlight(&ctx.queue, None);
    assert!(
        differing(&base, &lit, 8) > 10_000,
        "the highlight dims nothing"
    );
    let again = scene.frame(ctx, &renderer, "9-mnist-test-7.png", &plain);
    assert!(
        again.as_raw() == base.as_raw(),
        "clearing the highlight restores the frame"
    );
}

#[test]
fn the_hovered_value_comes_back_asynchronously() {
    let Some(ctx) = common::gpu() else { return };
    let scene = Scene::new(ctx);
    let input = digit(&scene.model, "2-mnist-test-1.png");
    scene
        .network
        .write_inputs(&ctx.queue, &input)
        .expect("input");
    let readback = ValueReadback::new(&ctx.device);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    scene
        .network
        .encode(&mut encoder, &InferenceRequest::default())
        .expect("inference");
    readback
        .encode(&mut encoder, &scene.network, 5, 1234)
        .expect("copy");
    // A second copy before the first is taken is refused, not queued.
    let mut other = ctx.device.create_command_encoder(&Default::default());
    assert!(readback.encode(&mut other, &scene.network, 5, 0).is_err());
    assert!(matches!(
        ValueReadback::new(&ctx.device).encode(&mut other, &scene.network, 5, 1 << 30),
        Err(SceneError::NoSuchCell { .. })
    ));
    ctx.queue.submit([encoder.finish()]);
    readback.start_map();
    let mut value = None;
    for _ in 0..1000 {
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("poll");
        if let Some(v) = readback.try_take().expect("map") {
            value = Some(v);
            break;
        }
    }
    let value = value.expect("the value arrives");
    let all = scene
        .network
        .read_activations(&ctx.device, &ctx.queue, 1)
        .expect("activations");
    assert_eq!((value.activation, value.element), (5, 1234));
    assert_eq!(value.value, all[0][5][1234]);
}

#[test]
fn labels_are_projected_for_every_layer_and_class() {
    let model = model();
    let layout = SceneLayout::new(&model, &ArenaLayout::new(&model, 1));
    let camera = layout.home_camera(16.0 / 9.0);
    let labels = layout.project_labels(&camera, [1280.0, 720.0]);
    assert_eq!(labels.len(), layout.layers.len() + 10);
    assert_eq!(labels[0].0, "input 1×28×28");
    assert!(labels.iter().any(|(text, _)| text == "conv1 16×28×28"));
    assert!(labels.iter().any(|(text, _)| text == "fc2 10"));
    // With the home view every label is on screen.
    for (text, [x, y]) in &labels {
        assert!(
            (0.0..=1280.0).contains(x) && (0.0..=720.0).contains(y),
            "{text} at {x}, {y}"
        );
    }
    let classes: Vec<&str> = labels[layout.layers.len()..]
        .iter()
        .map(|(t, _)| t.as_str())
        .collect();
    assert_eq!(classes, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
}

/// `(size in bytes, member count)` of struct `name` in `shaders/cubes.wgsl`.
fn wgsl_struct(name: &str) -> (u32, usize) {
    let path = root().join("shaders/cubes.wgsl");
    let source = std::fs::read_to_string(&path).expect("cubes.wgsl");
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&source)));
    for (_, ty) in module.types.iter() {
        if ty.name.as_deref() == Some(name)
            && let naga::TypeInner::Struct { members, span } = &ty.inner
        {
            return (*span, members.len());
        }
    }
    panic!("cubes.wgsl declares no struct {name}");
}

#[test]
fn rust_twins_match_the_scene_shader_structs() {
    // Same size and the same number of fields (matrices, vec4s and arrays count as one).
    assert_eq!(
        wgsl_struct("Frame"),
        (size_of::<FrameUniform>() as u32, 9 + 16)
    );
    assert_eq!(
        wgsl_struct("Layer"),
        (size_of::<LayerUniform>() as u32, 2 + 12)
    );
    assert_eq!(
        wgsl_struct("Tile"),
        (size_of::<TileUniform>() as u32, 1 + 4)
    );
}

#[test]
fn shader_pipelines_accept_both_target_kinds() {
    // sRGB targets get linear output, plain ones are encoded in the shader (a pipeline
    // constant); both must build and draw.
    let Some(ctx) = common::gpu() else { return };
    let scene = Scene::new(ctx);
    for format in [
        wgpu::TextureFormat::Rgba8Unorm,
        wgpu::TextureFormat::Bgra8UnormSrgb,
    ] {
        let config = RendererConfig {
            color_format: format,
            sample_count: 1,
            draw_mode: DrawMode::Tiles,
        };
        let renderer = CubeRenderer::new(&ctx.device, &scene.network, &scene.layout, config)
            .expect("renderer");
        let input = digit(&scene.model, "5-mnist-test-8.png");
        scene
            .network
            .write_inputs(&ctx.queue, &input)
            .expect("input");
        let image = render_offscreen(
            &ctx.device,
            &ctx.queue,
            &scene.network,
            &renderer,
            &scene.camera(),
            160,
            90,
            &SceneSettings::default(),
            Some(&InferenceRequest::default()),
        )
        .expect("frame");
        // The background comes out as the same sRGB colour either way.
        let corner = image.get_pixel(0, 0).0;
        let want = background_rgba();
        assert!(
            corner.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 2),
            "{format:?}: corner {corner:?}, want {want:?}"
        );
    }
}

fn save_for_eyes(image: &RgbaImage, name: &str) {
    // Debugging aid: CNNVIZ_SCENE_PNG=dir saves the frames a test renders.
    if let Some(dir) = std::env::var_os("CNNVIZ_SCENE_PNG") {
        let _ = image.save(Path::new(&dir).join(name));
    }
}

#[test]
fn the_home_view_fills_the_scene_area() {
    let model = model();
    let layout = SceneLayout::new(&model, &ArenaLayout::new(&model, 1));
    // The window's scene area at 1440×900 with both panels open, and a wide one.
    for aspect in [720.0 / 830.0, 16.0 / 9.0] {
        let home = layout.home_camera(aspect);
        let fill = layout.screen_fill(&home, aspect);
        // The view the window used to open with: a fixed direction.
        let fixed = layout.camera_from(aspect, -18.0, 46.0);
        let fixed_fill = layout.screen_fill(&fixed, aspect);
        eprintln!("aspect {aspect:.2}: home fills {fill:.2}, the fixed view {fixed_fill:.2}");
        assert!(
            fill >= fixed_fill,
            "the home view is the best of its candidates"
        );
        assert!(fill > 0.3, "the network covers {fill:.2} of the scene area");
    }
}
