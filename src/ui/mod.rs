//! The egui overlay over the 3D scene: the drawing canvas, the prediction and its
//! probabilities, the Explain panel and its comparison grids, feature maps, timing and help, plus the store's dashboard.
//!
//! The window drives it once per frame: [`Overlay::show`] takes an [`OverlayView`] (what
//! the window knows) and returns [`OverlayEvents`] (what the person did). The GPU images
//! come from [`crate::scene::FeatureMapTextures`] (GPU code, beside the cube renderer), which
//! records its compute dispatches into the frame's encoder right after the network's; the
//! overlay only sees the egui textures it registered.

mod canvas;
pub mod dashboard;
mod explain_grid;
mod explain_panel;
mod feature_map_panel;
mod help_panel;
pub mod inspector_panel;
mod overlay;
pub mod pin_pad;
mod prediction_panel;
pub mod raster;
pub mod shortcuts;
mod status;
pub mod testset_panel;
pub mod theme;
mod timing_panel;
mod top_bar;
mod view;

/// The GPU images the panels show; kept here under their old names for callers of `ui`.
pub use crate::scene::feature_maps::{
    self, ChannelAtlas, FeatureMapError, FeatureMapImages, FeatureMapTextures, ImageTexture,
};
pub use canvas::{BRUSH_RANGE, Canvas, DEFAULT_BRUSH};
pub use overlay::Overlay;
pub use pin_pad::{PinPadAction, PinPadView};
pub use shortcuts::{Action, SHORTCUTS, Shortcut};
pub use view::{
    ExplainGrid, ExplainView, GpuTimes, GridTile, HoverInfo, MapView, OverlayEvent, OverlayEvents,
    OverlayFeatures, OverlayView, PredictionView, StatusLevel, StatusMessage,
};
