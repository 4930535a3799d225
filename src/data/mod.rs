//! Datasets and drawing preprocessing.
