//! Building architectures in code: the network shipped in `weights/` and one builder per
//! layer type, with PyTorch-module-style tensor names. Training, the tests and the
//! benchmarks build their models from these.

use super::spec::{ARCHITECTURE_FORMAT, ARCHITECTURE_VERSION};
use super::{Architecture, InputSpec, LayerSpec, Normalization};

/// The network shipped in `weights/`: two conv blocks and two dense layers, small enough
/// to train in about two minutes on two CPU cores and to draw as cubes, and still about
/// 99.4 % accurate on the MNIST test set with [`super::train::TrainConfig::default`].
pub fn default_architecture() -> Architecture {
    Architecture {
        format: ARCHITECTURE_FORMAT.to_string(),
        version: ARCHITECTURE_VERSION,
        name: "mnist-cnn".to_string(),
        input: InputSpec {
            channels: 1,
            height: 28,
            width: 28,
        },
        classes: (0..10).map(|d| d.to_string()).collect(),
        normalization: Normalization {
            mean: 0.1307,
            std: 0.3081,
        },
        layers: vec![
            conv("conv1", 1, 16, 3, 1, 1),
            relu("relu1"),
            maxpool("pool1", 2, 2),
            conv("conv2", 16, 32, 3, 1, 1),
            relu("relu2"),
            maxpool("pool2", 2, 2),
            LayerSpec::Flatten {
                name: "flatten".to_string(),
            },
            dense("fc1", 32 * 7 * 7, 64),
            relu("relu3"),
            dense("fc2", 64, 10),
        ],
    }
}

/// A conv layer with PyTorch-module-style tensor names (`{name}.weight`, `{name}.bias`).
pub fn conv(
    name: &str,
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> LayerSpec {
    LayerSpec::Conv2d {
        name: name.to_string(),
        in_channels: input,
        out_channels: output,
        kernel_size: kernel,
        stride,
        padding,
        weight: format!("{name}.weight"),
        bias: Some(format!("{name}.bias")),
    }
}

/// A dense layer with PyTorch-module-style tensor names.
pub fn dense(name: &str, input: usize, output: usize) -> LayerSpec {
    LayerSpec::Dense {
        name: name.to_string(),
        in_features: input,
        out_features: output,
        weight: format!("{name}.weight"),
        bias: Some(format!("{name}.bias")),
    }
}

/// A ReLU.
pub fn relu(name: &str) -> LayerSpec {
    LayerSpec::Relu {
        name: name.to_string(),
    }
}

/// A max pool of `kernel` × `kernel` windows every `stride` pixels.
pub fn maxpool(name: &str, kernel: usize, stride: usize) -> LayerSpec {
    LayerSpec::MaxPool2d {
        name: name.to_string(),
        kernel_size: kernel,
        stride,
    }
}
