//! `cnnviz render`: the 3D scene of one digit, offscreen and headless, as a PNG — for tests,
//! the README's pictures, and people who want pictures of their network.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cnnviz::app::{HeadlessViewer, StoreChoice, ViewerOptions};
use cnnviz::colormap::ColorMap;
use cnnviz::data::preprocess::{InkImage, ink_from_image, load_image, mnist_input};
use cnnviz::gpu::{GpuNetwork, InferenceRequest};
use cnnviz::model::Model;
use cnnviz::scene::{
    CamTint, CubeRenderer, RendererConfig, SceneLayout, SceneSettings, render_offscreen,
};
use cnnviz::ui::OverlayEvent;

/// Pictures larger than this on a side are refused (a 16k² RGBA image is 1 GiB).
const MAX_SIDE: u32 = 8192;

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The digit: a PNG or JPEG, prepared as `predict` does.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the PNG.
    #[arg(long)]
    out: PathBuf,
    /// Model file (.safetensors, or .onnx imported); default: weights/mnist-cnn.safetensors.
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 720)]
    height: u32,
    /// Camera turn about the vertical axis, degrees; default: the home view.
    #[arg(long, allow_hyphen_values = true)]
    yaw: Option<f32>,
    /// Camera height above the ground plane, degrees; default: the home view.
    #[arg(long, allow_hyphen_values = true)]
    pitch: Option<f32>,
    /// Camera distance from the scene's centre; default: whatever frames every layer.
    #[arg(long)]
    distance: Option<f32>,
    /// Colour map of the cubes.
    #[arg(long, value_enum, default_value_t)]
    colormap: ColorMap,
    /// Grad-CAM conv block (index or name) whose map tints the scene; default: the last.
    #[arg(long)]
    layer: Option<String>,
    /// No Grad-CAM tint.
    #[arg(long)]
    no_grad_cam: bool,
    /// The whole window as a person sees it: the egui overlay (canvas with the digit,
    /// prediction, probabilities, Grad-CAM, feature maps) around the scene.
    #[arg(long)]
    overlay: bool,
    /// With --overlay: pixels per point of the overlay (the display's scale factor).
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
}

pub fn run(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    for (what, side) in [("--width", args.width), ("--height", args.height)] {
        if side == 0 || side > MAX_SIDE {
            bail!("{what} {side} is outside 1..={MAX_SIDE}");
        }
    }
    let (_, model) = super::load(&args.model)?;
    let block = super::predict::resolve_block(&model, args.layer.as_deref())?;
    if block.is_none() {
        eprintln!("{}", super::predict::NO_GRAD_CAM);
    }
    let input = model.architecture.input;
    let image = load_image(&args.input)?;
    let ink = ink_from_image(&image);
    let pixels = mnist_input(&ink, input.height, input.width)
        .with_context(|| args.input.display().to_string())?;
    if args.overlay {
        return render_window(args, model, block, &ink);
    }

    let gpu = super::gpu()?;
    let network = GpuNetwork::new(&gpu.device, &model, 1)?;
    network.write_inputs(&gpu.queue, &model.normalize(&pixels))?;
    let layout = SceneLayout::new(&model, network.layout());
    // sRGB-free RGBA, as the window's surface and egui use.
    let config = RendererConfig::for_adapter(&gpu.adapter, wgpu::TextureFormat::Rgba8Unorm);
    let renderer = CubeRenderer::new(&gpu.device, &network, &layout, config)?;

    let aspect = args.width as f32 / args.height as f32;
    let home = layout.home_camera(aspect).pose();
    let mut camera = layout.camera_from(
        aspect,
        args.yaw.unwrap_or(home.yaw),
        args.pitch.unwrap_or(home.pitch),
    );
    if let Some(distance) = args.distance {
        if !(distance.is_finite() && distance > 0.0) {
            bail!("--distance {distance} must be a positive number");
        }
        // Through the goal, so the camera's own limits and clip planes still apply.
        let mut goal = camera.goal();
        goal.distance = distance;
        camera.set_goal(goal);
        camera.snap();
    }
    let settings = SceneSettings {
        color_map: args.colormap,
        grad_cam: block.filter(|_| !args.no_grad_cam).map(|block| CamTint {
            block,
            layer: true,
            input: true,
        }),
        ..SceneSettings::default()
    };
    let request = InferenceRequest {
        block,
        grad_cam: block.is_some(),
        ..InferenceRequest::default()
    };
    let picture = render_offscreen(
        &gpu.device,
        &gpu.queue,
        &network,
        &renderer,
        &camera,
        args.width,
        args.height,
        &settings,
        Some(&request),
    )?;
    picture
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {}×{} on {}",
        args.out.display(),
        args.width,
        args.height,
        gpu.describe()
    );
    Ok(ExitCode::SUCCESS)
}

/// `--overlay`: the viewer the window runs, headless, with the digit on its canvas.
fn render_window(
    args: &RenderArgs,
    model: Model,
    block: Option<usize>,
    ink: &InkImage,
) -> anyhow::Result<ExitCode> {
    let options = ViewerOptions {
        // Pictures never touch the person's saved digits.
        store: StoreChoice::None,
        ..ViewerOptions::default()
    };
    let mut headless = HeadlessViewer::new(model, options, [args.width, args.height], args.scale)?;
    let viewer = headless.viewer_mut();
    viewer.set_animation(false);
    viewer.send(&[
        OverlayEvent::SetColorMap(args.colormap),
        OverlayEvent::SetGradCam(!args.no_grad_cam && block.is_some()),
    ]);
    if let Some(block) = block {
        viewer.send(&[OverlayEvent::SetCamBlock(block)]);
    }
    viewer.overlay_mut().canvas_mut().load_image(ink);
    // The first frame lays out the panels, so the scene's area (and its home view) is known.
    headless.frame()?;
    if let Some(distance) = args.distance
        && !(distance.is_finite() && distance > 0.0)
    {
        bail!("--distance {distance} must be a positive number");
    }
    let camera = headless.viewer_mut().camera_mut();
    let mut goal = camera.goal();
    goal.yaw = args.yaw.unwrap_or(goal.yaw);
    goal.pitch = args.pitch.unwrap_or(goal.pitch);
    goal.distance = args.distance.unwrap_or(goal.distance);
    camera.set_goal(goal);
    camera.snap();
    headless.settle()?;
    let picture = headless.screenshot()?;
    picture
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {}×{} with the overlay on {}",
        args.out.display(),
        args.width,
        args.height,
        headless.viewer().adapter()
    );
    Ok(ExitCode::SUCCESS)
}
