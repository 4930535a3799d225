//! cnnviz: shows how a convolutional network reads a handwritten digit.
//!
//! The library holds everything that computes (model, data, GPU network); the binary and
//! the tests are thin consumers of it.

pub mod app;
pub mod bench;
pub mod colormap;
pub mod data;
pub mod explain;
pub mod gpu;
pub mod heatmap;
pub mod inspect;
pub mod kiosk;
pub mod logging;
pub mod model;
pub mod scene;
pub mod store;
pub mod survey;
pub mod ui;
