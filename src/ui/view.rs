//! What the window tells the overlay each frame ([`OverlayView`]) and what the overlay
//! tells the window back ([`OverlayEvent`]). The overlay owns only the drawing and its own
//! panel state; everything about the network comes in through the view, so the same
//! overlay runs in the window, in kiosk mode and under a headless test harness.

use crate::colormap::ColorMap;
use crate::data::preprocess::InkImage;
use crate::explain::{ExplainRequest, Explained, Method};
use crate::gpu::{CamTarget, KernelTiming};
use crate::model::ConvBlock;
use crate::ui::channel_panel::{ChannelEvent, ChannelView};
use crate::ui::inspector_panel::InspectorView;
use crate::ui::testset_panel::{TestSetEvent, TestSetView};

use crate::scene::feature_maps::FeatureMapImages;

/// The latest prediction the window has for the canvas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PredictionView<'a> {
    /// Softmax output, one per class.
    pub probabilities: &'a [f32],
    pub predicted: usize,
}

/// Per-kernel GPU times, when the adapter has timestamp queries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GpuTimes<'a> {
    /// The last timed inference, kernel by kernel (`KernelTimer::read_blocking` or its
    /// asynchronous equivalent).
    Kernels(&'a [KernelTiming]),
    /// Why there are none, e.g. "timestamps unavailable on this adapter".
    Unavailable(&'a str),
}

impl Default for GpuTimes<'_> {
    fn default() -> Self {
        GpuTimes::Unavailable("timestamps unavailable")
    }
}

/// What the scene's picking found under the pointer.
#[derive(Clone, Debug, PartialEq)]
pub struct HoverInfo {
    /// Layer name, e.g. `conv2` (or `input`).
    pub layer: String,
    /// Channel of a map; `None` for dense units.
    pub channel: Option<usize>,
    /// `[row, column]` inside the channel, or `[0, unit]` for a dense unit.
    pub position: [usize; 2],
    pub value: f32,
}

impl HoverInfo {
    /// One line, e.g. `conv2 · channel 5 · row 3, col 4 · 0.812`.
    pub fn describe(&self) -> String {
        let [row, col] = self.position;
        match self.channel {
            Some(channel) => format!(
                "{} · channel {channel} · row {row}, col {col} · {:.3}",
                self.layer, self.value
            ),
            None => format!("{} · unit {col} · {:.3}", self.layer, self.value),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLevel {
    Info,
    Warning,
    Error,
}

/// A line for the status bar ("Saved.", "GPU device lost; rebuilding…").
#[derive(Clone, Debug, PartialEq)]
pub struct StatusMessage {
    pub level: StatusLevel,
    pub text: String,
}

/// Which controls are offered; the kiosk config turns some off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlayFeatures {
    pub save: bool,
    pub report: bool,
    pub dashboard: bool,
    pub timings: bool,
    /// Touch-first sizes (kiosk).
    pub large_controls: bool,
    /// A large "Draw a digit" invitation over the empty canvas (kiosk).
    pub invitation: bool,
    /// The failure view (test-set and reports confusion matrices).
    pub failures: bool,
    /// The channel explorer (a click on a feature map).
    pub channels: bool,
}

impl Default for OverlayFeatures {
    fn default() -> Self {
        OverlayFeatures {
            save: true,
            report: true,
            dashboard: true,
            timings: true,
            large_controls: false,
            invitation: false,
            failures: true,
            channels: true,
        }
    }
}

/// Everything the window knows this frame that the overlay shows.
#[derive(Clone, Debug, Default)]
pub struct OverlayView<'a> {
    /// Shown in the title bar.
    pub model_name: &'a str,
    /// How a drawing becomes the model's input (`data::model_input::describe`), shown
    /// under the canvas.
    pub input_note: &'a str,
    /// Adapter name, for the timing panel.
    pub adapter: &'a str,
    /// One label per class (`Architecture::classes`).
    pub class_labels: &'a [String],
    /// `None` until a prediction for the current drawing exists.
    pub prediction: Option<PredictionView<'a>>,
    /// The class Grad-CAM explains.
    pub cam_target: CamTarget,
    /// `Model::conv_blocks`.
    pub conv_blocks: &'a [ConvBlock],
    /// Index into `conv_blocks` of Grad-CAM's target block.
    pub cam_block: usize,
    /// Grad-CAM is computed and shown.
    pub grad_cam: bool,
    pub color_map: ColorMap,
    /// The layer-by-layer wave animation is on.
    pub animation: bool,
    /// The GPU images ([`crate::scene::FeatureMapTextures::images`]); `None` without them.
    pub images: Option<&'a FeatureMapImages>,
    pub gpu_times: GpuTimes<'a>,
    /// The CPU time the last frame's work took (input to submit); `None` before the first.
    pub frame_seconds: Option<f32>,
    pub hover: Option<&'a HoverInfo>,
    pub status: &'a [StatusMessage],
    pub features: OverlayFeatures,
    /// The Explain panel's method, its answer and the grids.
    pub explain: ExplainView<'a>,
    /// The unit inspector, while a cube is clicked.
    pub inspector: Option<InspectorView<'a>>,
    /// The failure view (confusion matrices), while it is open.
    pub failures: Option<TestSetView<'a>>,
    /// The channel explorer, while a channel is open.
    pub channel: Option<ChannelView<'a>>,
}

/// Which comparison grid is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExplainGrid {
    /// Every method's map for the drawing, each with its deletion/insertion areas.
    Methods,
    /// The chosen method's map for every class, and the counterfactual of the chosen class.
    Classes,
}

/// One explanation as the overlay shows it: the last answer for its request, which may
/// belong to an earlier drawing (`current` false: shown marked "Computing…").
#[derive(Clone, Copy, Debug)]
pub struct MapView<'a> {
    pub result: Result<&'a Explained, &'a str>,
    /// The input generation it was computed for.
    pub generation: u64,
    /// It belongs to the drawing on the canvas.
    pub current: bool,
}

/// One tile of a grid: what it explains and its last answer, if any.
#[derive(Clone, Debug)]
pub struct GridTile<'a> {
    pub request: ExplainRequest,
    pub map: Option<MapView<'a>>,
}

/// Everything the Explain panel and the grids show.
#[derive(Clone, Debug)]
pub struct ExplainView<'a> {
    pub method: Method,
    /// The chosen method's last answer for the chosen class.
    pub chosen: Option<MapView<'a>>,
    /// The heatmap texture (`FeatureMapImages::grad_cam`) holds the chosen method's map,
    /// maybe of an earlier drawing: Grad-CAM's from the network, another's once written.
    pub in_texture: bool,
    /// Why the engine is missing, when it is.
    pub unavailable: Option<&'a str>,
    pub grid: Option<ExplainGrid>,
    /// The open grid's tiles in order (empty when none is open).
    pub tiles: Vec<GridTile<'a>>,
    /// The canvas's model input (0..1, C×H×W), drawn faintly under the grids' maps.
    pub input: Option<&'a [f32]>,
    /// The model input's `[width, height]`: the maps' size (`[0, 0]`: square maps).
    pub input_size: [usize; 2],
}

impl Default for ExplainView<'_> {
    fn default() -> Self {
        ExplainView {
            method: Method::GradCam,
            chosen: None,
            in_texture: true,
            unavailable: None,
            grid: None,
            tiles: Vec::new(),
            input: None,
            input_size: [0, 0],
        }
    }
}

/// Something the person did that the window acts on.
#[derive(Clone, Debug, PartialEq)]
pub enum OverlayEvent {
    /// The drawing changed (a stroke grew, ended, was undone, or the canvas was cleared):
    /// at most once per frame, with the whole drawing. An empty image means "cleared":
    /// `mnist_input` answers `Empty` and the prediction should go.
    CanvasChanged(InkImage),
    /// Run the network on the current drawing now.
    Predict,
    SetCamTarget(CamTarget),
    SetCamBlock(usize),
    SetColorMap(ColorMap),
    SetGradCam(bool),
    /// The Explain panel's method.
    SetMethod(Method),
    /// Open a comparison grid, or close it (`None`).
    SetExplainGrid(Option<ExplainGrid>),
    SetAnimation(bool),
    /// Open the store's dialogs (implemented beside the overlay, in the store UI).
    Save,
    Report,
    Dashboard,
    ResetCamera,
    /// Camera keys held this frame, as directions in −1..1 (multiply by a speed and the
    /// frame time): `yaw` right, `pitch` up, `zoom` in.
    CameraKeys {
        yaw: f32,
        pitch: f32,
        zoom: f32,
    },
    ToggleFullscreen,
    /// Close the unit inspector.
    CloseInspector,
    /// Open or close the failure view.
    SetFailureView(bool),
    /// Something done in the failure view.
    Failures(TestSetEvent),
    /// Open the channel explorer on channel `channel` of conv block `block`.
    OpenChannel {
        block: usize,
        channel: usize,
    },
    CloseChannel,
    /// Something done in the channel explorer.
    Channel(ChannelEvent),
}

/// What one [`super::Overlay::show`] produced.
#[derive(Clone, Debug)]
pub struct OverlayEvents {
    /// In the order they happened.
    pub events: Vec<OverlayEvent>,
    /// The part of the window the panels leave free, in points: where the 3D scene shows
    /// through, and where its camera and picking take the pointer.
    pub scene_rect: egui::Rect,
}

impl Default for OverlayEvents {
    fn default() -> Self {
        OverlayEvents {
            events: Vec::new(),
            scene_rect: egui::Rect::NOTHING,
        }
    }
}

impl OverlayEvents {
    /// The drawing, if it changed this frame.
    pub fn canvas(&self) -> Option<&InkImage> {
        self.events.iter().find_map(|e| match e {
            OverlayEvent::CanvasChanged(ink) => Some(ink),
            _ => None,
        })
    }

    pub fn contains(&self, event: &OverlayEvent) -> bool {
        self.events.contains(event)
    }

    pub fn iter(&self) -> impl Iterator<Item = &OverlayEvent> {
        self.events.iter()
    }
}
