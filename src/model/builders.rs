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
        normalization: Normalization::uniform(0.1307, 0.3081),
        preprocessing: None,
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
        padding_end: None,
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

/// Inference-mode batch norm over `features` channels with PyTorch-style tensor names.
pub fn batch_norm(name: &str, features: usize) -> LayerSpec {
    LayerSpec::BatchNorm {
        name: name.to_string(),
        num_features: features,
        eps: 1e-5,
        weight: format!("{name}.weight"),
        bias: format!("{name}.bias"),
        running_mean: format!("{name}.running_mean"),
        running_var: format!("{name}.running_var"),
    }
}

/// An average pool of `kernel` × `kernel` windows every `stride` pixels, PyTorch's defaults.
pub fn avgpool(name: &str, kernel: usize, stride: usize, padding: usize) -> LayerSpec {
    LayerSpec::AvgPool2d {
        name: name.to_string(),
        kernel_size: kernel,
        stride,
        padding,
        count_include_pad: true,
    }
}

/// The mean over each channel's plane.
pub fn global_avg_pool(name: &str) -> LayerSpec {
    LayerSpec::GlobalAvgPool {
        name: name.to_string(),
    }
}

/// A leaky ReLU with PyTorch's default slope unless given.
pub fn leaky_relu(name: &str, negative_slope: f32) -> LayerSpec {
    LayerSpec::LeakyRelu {
        name: name.to_string(),
        negative_slope,
    }
}

/// A sigmoid.
pub fn sigmoid(name: &str) -> LayerSpec {
    LayerSpec::Sigmoid {
        name: name.to_string(),
    }
}

/// A tanh.
pub fn tanh(name: &str) -> LayerSpec {
    LayerSpec::Tanh {
        name: name.to_string(),
    }
}

/// A dropout (identity at inference).
pub fn dropout(name: &str, p: f32) -> LayerSpec {
    LayerSpec::Dropout {
        name: name.to_string(),
        p,
    }
}
