//! The batched implicit-GEMM convolution (`shaders/conv2d_gemm.wgsl`) against the CPU twin
//! (`model::reference`, f64; `common::TOLERANCE` = 1e-4 relative): odd and non-square
//! sizes, padding 0/1/2, stride 2, kernels 1/3/5, input channels that are not a multiple
//! of anything (several staging rounds of weights: 70 channels of 5×5 do not fit one),
//! output channels in partial blocks of 16, batches 1, 3, 9 and 70 on networks of 1, 9 and
//! 70 images (partial blocks of images, partial pixel tiles), with and without a fused
//! ReLU, and the shipped architecture. Also that the plan really records the gemm kernel.

mod common;

use cnnviz::gpu::{CamTarget, GpuNetwork, KernelVariant, NetworkOptions};
use std::path::Path;

use cnnviz::model::train::default_architecture;
use cnnviz::model::{Model, load_model};
use common::parity::check_parity;
use common::*;

/// Conv layers of every awkward kind on a 15×13 input.
fn awkward() -> Model {
    random_model(
        architecture(
            "gemm-awkward",
            15,
            13,
            7,
            vec![
                conv("conv1", 1, 20, 3, 1, 1),
                relu("relu1"),
                conv("conv2", 20, 19, 5, 2, 2),
                conv("conv3", 19, 33, 1, 1, 0),
                relu("relu3"),
                conv("conv4", 33, 5, 3, 2, 0),
                flatten("flatten"),
                dense("fc1", 5 * 3 * 3, 7),
            ],
        ),
        77,
    )
}

fn gemm_network(model: &Model, max_batch: u32) -> GpuNetwork {
    let gpu = gpu().expect("callers check for a GPU first");
    GpuNetwork::with_options(
        &gpu.device,
        model,
        max_batch,
        &NetworkOptions::with_kernels(KernelVariant::Gemm),
    )
    .unwrap_or_else(|e| panic!("gemm network: {e}"))
}

fn check(model: &Model, max_batch: u32, batches: &[usize], seed: u64) {
    let network = gemm_network(model, max_batch);
    let kernels = network.forward_kernels();
    let gemm = kernels.iter().filter(|k| k.ends_with("_gemm")).count();
    let convs = model.conv_blocks().len();
    assert!(
        gemm >= convs,
        "every conv should run the gemm kernel: {kernels:?}"
    );
    for &images in batches {
        for block in 0..convs {
            let inputs = Rng::new(seed + images as u64 + 7 * block as u64)
                .vec(images * model.input_len(), 2.0);
            check_parity(
                &network,
                model,
                &inputs,
                CamTarget::Predicted,
                block,
                &format!("gemm, network of {max_batch}, batch {images}"),
            );
        }
    }
}

#[test]
fn awkward_convs_match_the_cpu_at_every_batch() {
    let Some(_) = gpu() else { return };
    let model = awkward();
    check(&model, 1, &[1], 10);
    check(&model, 9, &[9, 3, 1], 20);
    check(&model, 70, &[70, 9], 30);
}

/// The shipped model (trained weights: random ones put near-ties into the max pools,
/// whose gradient routing then legitimately follows the last bit of the conv's rounding).
#[test]
fn the_shipped_model_matches_the_cpu_at_every_batch() {
    let Some(_) = gpu() else { return };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors");
    let model = load_model(&path).unwrap_or_else(|e| {
        eprintln!(
            "note: {} does not load ({e}); random weights",
            path.display()
        );
        random_model(default_architecture(), 5)
    });
    check(&model, 70, &[70, 17, 1], 40);
}

#[test]
fn gemm_constants_match_the_rust_twins() {
    let source = include_str!("../shaders/conv2d_gemm.wgsl");
    for line in [
        "const PIX: u32 = 14u;",
        "const LANES: u32 = 8u;",
        "const OC_BLOCK: u32 = 16u;",
        "const WEIGHT_VEC4S: u32 = 4091u;",
    ] {
        assert!(source.contains(line), "conv2d_gemm.wgsl lacks `{line}`");
    }
}
