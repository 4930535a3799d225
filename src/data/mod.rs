//! Datasets and drawing preprocessing.

mod error;
pub mod idx;
pub mod mnist;
pub mod model_input;
pub mod preprocess;

pub use error::DataError;
pub use mnist::{Dataset, Split, default_data_dir, load_mnist};
