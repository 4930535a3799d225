//! `cnnviz render`: the 3D scene of one digit, offscreen and headless, as a PNG — for tests,
//! the README's pictures, and people who want pictures of their network.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cnnviz::app::{HeadlessViewer, StoreChoice, ViewerOptions};
use cnnviz::colormap::ColorMap;
use cnnviz::data::model_input::input_from_image;
use cnnviz::data::preprocess::{InkImage, ink_from_image, load_image};
use cnnviz::explain::{ExplainRequest, Method};
use cnnviz::gpu::{GpuNetwork, InferenceRequest};
use cnnviz::model::Model;
use cnnviz::scene::{
    CamTint, CubeRenderer, RendererConfig, SceneLayout, SceneSettings, render_offscreen,
};
use cnnviz::ui::{ExplainGrid, OverlayEvent};

/// `--explain-grid`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GridArg {
    Methods,
    Classes,
}

impl From<GridArg> for ExplainGrid {
    fn from(grid: GridArg) -> ExplainGrid {
        match grid {
            GridArg::Methods => ExplainGrid::Methods,
            GridArg::Classes => ExplainGrid::Classes,
        }
    }
}

fn parse_method(name: &str) -> Result<Method, String> {
    Method::parse(name).map_err(|e| e.to_string())
}

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
    /// The explanation method whose map tints the scene (and the Explain panel shows with
    /// --overlay): one of gradcam, gradcam++, hirescam, xgradcam, layercam,
    /// gradcam-elementwise, eigencam, scorecam, saliency, input-x-gradient, guided-backprop,
    /// guided-gradcam, integrated-gradients, smoothgrad, occlusion. Default: gradcam (off
    /// for a model without conv blocks).
    #[arg(long, value_parser = parse_method)]
    method: Option<Method>,
    /// With --overlay: open a comparison grid, every method's map (`methods`) or the
    /// method's map for every class and the counterfactual (`classes`).
    #[arg(long, value_enum)]
    explain_grid: Option<GridArg>,
    /// With --overlay: open the unit inspector on a cube, as a click would: `LAYER:INDEX`,
    /// the layer's name (or `input`) and the unit's index in channel, row, column order,
    /// e.g. `fc2:3` or `conv2:1029`.
    #[arg(long)]
    inspect: Option<String>,
    /// With --overlay: open the failure view (waits for the test-set survey).
    #[arg(long)]
    failures: bool,
    /// With --overlay: open the channel explorer on `LAYER:CHANNEL` of a conv block, e.g.
    /// `conv1:5` (waits for the survey and the channel's feature visualisation).
    #[arg(long)]
    channel: Option<String>,
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
    // The scene alone shows the picture as `predict` prepares it (in colour for a colour
    // model); the window puts its ink on the canvas, as if drawn.
    let pixels = input_from_image(&image, input, model.architecture.preprocessing())
        .with_context(|| args.input.display().to_string())?;
    if let Some(method) = args.method
        && method.uses_block()
        && block.is_none()
    {
        bail!("--method {}: this model has no conv block", method.name());
    }
    let method = args.method.unwrap_or(Method::GradCam);
    if args.overlay {
        return render_window(args, model, block, method, &ink);
    }
    if args.explain_grid.is_some() {
        bail!("--explain-grid needs --overlay (the grids are part of the window)");
    }
    if args.inspect.is_some() || args.failures || args.channel.is_some() {
        bail!("--inspect, --failures and --channel need --overlay (they are parts of the window)");
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
    // The tint's block: the map is drawn on the block's output (the last for methods that
    // use none).
    let tint_block = block.or(model.conv_blocks().len().checked_sub(1));
    let settings = SceneSettings {
        color_map: args.colormap,
        grad_cam: tint_block
            .filter(|_| !args.no_grad_cam)
            .map(|block| CamTint {
                block,
                layer: true,
                input: true,
            }),
        ..SceneSettings::default()
    };
    // Grad-CAM is computed by the network itself; any other method's map is written where
    // the scene reads it, and the network then runs without Grad-CAM so it stays there.
    let network_cam = method == Method::GradCam && !args.no_grad_cam;
    if !network_cam && !args.no_grad_cam {
        write_method_tint(&gpu, &network, &model, &pixels, method, block, tint_block)?;
    }
    let request = InferenceRequest {
        block,
        grad_cam: block.is_some() && network_cam,
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

/// Computes `method`'s map of `pixels` (waiting for it: a picture is not a frame) and
/// writes it where the scene's tint reads it.
fn write_method_tint(
    gpu: &cnnviz::gpu::GpuContext,
    network: &GpuNetwork,
    model: &Model,
    pixels: &[f32],
    method: Method,
    block: Option<usize>,
    tint_block: Option<usize>,
) -> anyhow::Result<()> {
    let blocks = model.conv_blocks();
    let Some(target) = tint_block.and_then(|b| blocks.get(b)) else {
        // No conv block: the input could still be tinted, but the scene's tint needs a
        // block; say so rather than draw nothing silently.
        eprintln!("note: this model has no conv block to tint; the scene is drawn untinted");
        return Ok(());
    };
    let mut engine = cnnviz::app::explain_engine(&gpu.device, &gpu.queue, model)?;
    let request = ExplainRequest {
        block,
        faithfulness: false,
        ..ExplainRequest::new(method)
    };
    let explained = engine
        .explain(&model.normalize(pixels), &request)
        .with_context(|| format!("computing {method}"))?;
    cnnviz::app::write_tint(&gpu.queue, network, &explained, target);
    Ok(())
}

/// `--overlay`: the viewer the window runs, headless, with the digit on its canvas.
fn render_window(
    args: &RenderArgs,
    model: Model,
    block: Option<usize>,
    method: Method,
    ink: &InkImage,
) -> anyhow::Result<ExitCode> {
    let options = ViewerOptions {
        // Pictures never touch the person's saved digits.
        store: StoreChoice::None,
        ..ViewerOptions::default()
    };
    // Checked before the viewer starts, so a mistake is one line and nothing else.
    let inspect = args
        .inspect
        .as_deref()
        .map(|text| parse_unit(&model, text))
        .transpose()?;
    let channel = args
        .channel
        .as_deref()
        .map(|text| parse_channel(&model, text))
        .transpose()?;
    let mut headless = HeadlessViewer::new(model, options, [args.width, args.height], args.scale)?;
    let viewer = headless.viewer_mut();
    viewer.set_animation(false);
    viewer.send(&[
        OverlayEvent::SetColorMap(args.colormap),
        OverlayEvent::SetGradCam(!args.no_grad_cam && block.is_some()),
        OverlayEvent::SetMethod(method),
        OverlayEvent::SetExplainGrid(args.explain_grid.map(ExplainGrid::from)),
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
    if let Some((activation, element)) = inspect
        && !headless.viewer_mut().inspect_unit(activation, element)
    {
        bail!("--inspect: that unit is not drawn in the scene");
    }
    if args.failures {
        headless
            .viewer_mut()
            .send(&[OverlayEvent::SetFailureView(true)]);
    }
    if let Some((block, channel)) = channel {
        headless
            .viewer_mut()
            .send(&[OverlayEvent::OpenChannel { block, channel }]);
    }
    // Settling waits for the explanations too (outside any frame) and draws them.
    headless.settle()?;
    wait_for_views(
        &mut headless,
        inspect.is_some(),
        args.failures,
        channel.is_some(),
    )?;
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

/// `LAYER:INDEX` of `--inspect` as (activation, element).
fn parse_unit(model: &Model, text: &str) -> anyhow::Result<(usize, usize)> {
    let (layer, index) = text
        .rsplit_once(':')
        .with_context(|| format!("--inspect {text}: write LAYER:INDEX, e.g. fc2:3"))?;
    let activation = if layer == "input" {
        Some(0)
    } else {
        model
            .layers
            .iter()
            .position(|l| l.plan.name == layer)
            .map(|i| i + 1)
    }
    .with_context(|| format!("--inspect {text}: the model has no layer {layer:?}"))?;
    let len = model.activation_shapes()[activation].len();
    let element: usize = index
        .parse()
        .ok()
        .filter(|&e| e < len)
        .with_context(|| format!("--inspect {text}: {layer} has units 0..{}", len - 1))?;
    Ok((activation, element))
}

/// `LAYER:CHANNEL` of `--channel` as (conv block, channel).
fn parse_channel(model: &Model, text: &str) -> anyhow::Result<(usize, usize)> {
    let (layer, channel) = text
        .rsplit_once(':')
        .with_context(|| format!("--channel {text}: write LAYER:CHANNEL, e.g. conv1:5"))?;
    let block = super::predict::resolve_block(model, Some(layer))?
        .with_context(|| format!("--channel {text}: the model has no conv block"))?;
    let channels = model.conv_blocks()[block].channels;
    let channel: usize = channel
        .parse()
        .ok()
        .filter(|&c| c < channels)
        .with_context(|| format!("--channel {text}: {layer} has channels 0..{}", channels - 1))?;
    Ok((block, channel))
}

/// Frames (waiting between them, never inside one) until the opened views have what their
/// picture should show: the survey, the feature visualisation, the inspected unit and a
/// logit's class picture.
fn wait_for_views(
    headless: &mut HeadlessViewer,
    inspect: bool,
    failures: bool,
    channel: bool,
) -> anyhow::Result<()> {
    let done = |p: Option<cnnviz::app::feature_vis_worker::FeatureVisProgress>| {
        p.is_none_or(|p| p.error.is_some() || (p.steps >= p.total && !p.images.is_empty()))
    };
    let started = std::time::Instant::now();
    loop {
        let viewer = headless.viewer();
        if let Some(why) = viewer.survey_error() {
            bail!("the test-set survey failed: {why}");
        }
        let inspected = viewer.inspected().is_some() && done(viewer.class_feature_vis());
        let ready = (!inspect || inspected)
            && (!failures || viewer.failure_survey().is_some())
            && (!channel
                || (viewer.channel_examples().is_some() && done(viewer.channel_feature_vis())));
        if ready {
            headless.settle()?;
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(900) {
            bail!("the opened views did not finish within 15 minutes");
        }
        headless.frame()?;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
