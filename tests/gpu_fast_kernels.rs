//! The tiled conv and dense kernels (`shaders/conv2d_tiled.wgsl`, `shaders/dense_tiled.wgsl`)
//! and their fused ReLUs against the CPU twin (`model::reference`, f64), through every
//! kernel variant (`direct`, `tiled`, `auto`, `fused`): odd and non-square sizes, padding 0/1/2,
//! stride 2, kernel 5, channel counts that are not multiples of the tiles (partial
//! output-channel blocks, several rounds of staged input channels), dense layers wider than
//! one staging round and than one workgroup of outputs, batches of 1, 3 and 70 (a partial
//! last image tile), the shipped architecture with Grad-CAM at every block, and a window
//! too large for the tiled kernel (it must fall back to the direct one). The bound is
//! `common::TOLERANCE` = 1e-4 relative to each tensor's largest |value|.

mod common;

use std::path::Path;

use cnnviz::gpu::{CamTarget, GpuError, GpuNetwork, KernelVariant, NetworkOptions};
use cnnviz::model::default_architecture;
use cnnviz::model::{Model, load_model};
use common::parity::{check_parity, recorded_kernels};
use common::*;

/// Conv blocks on a 13×11 input: k3 s1 p0 + ReLU (fused), k5 s2 p2 without ReLU (19 output
/// channels: a full block of 16 and a partial one; five input channels staged two at a
/// time), k3 s1 p1 from 19 channels (two rounds of staged channels) to 17 + ReLU; then a
/// 510-input dense layer (four staging rounds, the last partial) to 70 outputs (two
/// workgroups of outputs) + ReLU, and a dense layer whose input gradient carries that
/// ReLU's backward.
fn awkward_convs() -> Model {
    random_model(
        architecture(
            "awkward",
            13,
            11,
            9,
            vec![
                conv("conv1", 1, 5, 3, 1, 0),
                relu("relu1"),
                conv("conv2", 5, 19, 5, 2, 2),
                conv("conv3", 19, 17, 3, 1, 1),
                relu("relu3"),
                flatten("flatten"),
                dense("fc1", 17 * 6 * 5, 70),
                relu("relu4"),
                dense("fc2", 70, 9),
            ],
        ),
        11,
    )
}

/// A 7×7 stride-4 window reads a 35×35 input patch per 8×8 output tile, more than the
/// tiled kernel stages: that layer must run the direct kernel under every variant, while
/// the k1 conv after it is tiled. A pool sits between a conv and a dense ReLU.
fn window_too_big_for_tiles() -> Model {
    random_model(
        architecture(
            "big-window",
            41,
            37,
            4,
            vec![
                conv("conv1", 1, 6, 7, 4, 1),
                relu("relu1"),
                conv("conv2", 6, 3, 1, 1, 0),
                relu("relu2"),
                pool("pool", 2, 2),
                flatten("flatten"),
                dense("fc1", 3 * 5 * 4, 20),
                relu("relu3"),
                dense("fc2", 20, 4),
            ],
        ),
        12,
    )
}

/// The shipped model when it exists, else random weights of its architecture.
fn shipped_model() -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors");
    match load_model(&path) {
        Ok(model) => model,
        Err(e) => {
            eprintln!(
                "note: {} does not load ({e}); random weights",
                path.display()
            );
            random_model(default_architecture(), 42)
        }
    }
}

fn network(model: &Model, max_batch: u32, variant: KernelVariant) -> GpuNetwork {
    let gpu = gpu().expect("callers check for a GPU first");
    let network = GpuNetwork::with_options(
        &gpu.device,
        model,
        max_batch,
        &NetworkOptions::with_kernels(variant),
    )
    .unwrap_or_else(|e| panic!("{variant} network: {e}"));
    assert_eq!(network.kernel_variant(), variant);
    network
}

/// Every variant, every block: batches 70, 3 and 1 on one network per variant (the batch
/// changes without touching any uniform, and the last image tile of 70 is partial), and
/// batch 1 on a one-image network (whose dense layers use the one-image kernels).
fn check_every_variant(model: &Model, seed: u64) {
    let Some(_) = gpu() else { return };
    for variant in KernelVariant::ALL {
        let single = network(model, 1, variant);
        for block in 0..model.conv_blocks().len() {
            check_parity(
                &single,
                model,
                &random_inputs(model, 1, seed + 50 + block as u64),
                CamTarget::Predicted,
                block,
                &format!("{variant} kernels, one-image network"),
            );
        }
        let network = network(model, 70, variant);
        for block in 0..model.conv_blocks().len() {
            for (images, target) in [
                (70, CamTarget::Predicted),
                (3, CamTarget::Class(model.num_classes() - 1)),
                (1, CamTarget::Class(0)),
            ] {
                let seed = seed + 100 * block as u64 + images as u64;
                check_parity(
                    &network,
                    model,
                    &random_inputs(model, images, seed),
                    target,
                    block,
                    &format!("{variant} kernels, batch {images}"),
                );
            }
        }
    }
}

#[test]
fn awkward_convs_and_dense_layers_match_the_cpu_in_every_variant() {
    check_every_variant(&awkward_convs(), 1000);
}

#[test]
fn a_window_too_big_for_the_tiles_matches_the_cpu_in_every_variant() {
    check_every_variant(&window_too_big_for_tiles(), 2000);
}

#[test]
fn the_shipped_model_and_grad_cam_match_the_cpu_in_every_variant() {
    let Some(_) = gpu() else { return };
    let model = shipped_model();
    for variant in KernelVariant::ALL {
        let single = network(&model, 1, variant);
        for block in 0..model.conv_blocks().len() {
            check_parity(
                &single,
                &model,
                &random_inputs(&model, 1, 2999),
                CamTarget::Predicted,
                block,
                &format!("shipped model, {variant} kernels, one-image network"),
            );
        }
        let network = network(&model, 70, variant);
        for block in 0..model.conv_blocks().len() {
            for images in [70, 3, 1] {
                check_parity(
                    &network,
                    &model,
                    &random_inputs(&model, images, 3000 + images as u64),
                    CamTarget::Predicted,
                    block,
                    &format!("shipped model, {variant} kernels, batch {images}"),
                );
            }
        }
    }
}

#[test]
fn each_variant_records_its_own_kernels() {
    let Some(_) = gpu() else { return };
    let model = shipped_model();
    let direct = recorded_kernels(&network(&model, 1, KernelVariant::Direct), &model, 0);
    assert_eq!(
        direct,
        [
            "conv2d.forward",
            "relu.forward",
            "maxpool2d.forward",
            "conv2d.forward",
            "relu.forward",
            "maxpool2d.forward",
            "dense.forward",
            "relu.forward",
            "dense.forward",
            "softmax.main",
            "dense.backward_input",
            "relu.backward",
            "dense.backward_input",
            "maxpool2d.backward",
            "relu.backward",
            "conv2d.backward_input",
            "maxpool2d.backward",
            "grad_cam.channel_weights",
            "grad_cam.weighted_map",
            "normalise.main",
            "grad_cam.upsample",
            "normalise.main",
            "value_range.main",
        ]
    );
    let tiled = [
        "conv2d.forward_relu_tiled",
        "maxpool2d.forward",
        "conv2d.forward_relu_tiled",
        "maxpool2d.forward",
        "dense.forward_relu_single_tiled",
        "dense.forward_single_tiled",
        "softmax.main",
        "dense.backward_input_relu",
        "dense.backward_input",
        "maxpool2d.backward",
        "relu.backward",
        "conv2d.backward_input",
        "maxpool2d.backward",
        "grad_cam.channel_weights",
        "grad_cam.weighted_map",
        "normalise.main",
        "grad_cam.upsample",
        "normalise.main",
        "value_range.main",
    ];
    let kernels = recorded_kernels(&network(&model, 1, KernelVariant::Tiled), &model, 0);
    assert_eq!(kernels, tiled, "tiled");
    // Auto on a one-image network (the window's): a conv block kernel per block (conv,
    // ReLU, pool, range partials), then walks of everything else (tests/gpu_fused.rs
    // checks those against the CPU).
    let kernels = recorded_kernels(&network(&model, 1, KernelVariant::Auto), &model, 0);
    assert_eq!(
        kernels,
        [
            "conv2d.forward_block_tiled",
            "conv2d.forward_block_tiled",
            "fused.forward",
            "fused.backward",
        ],
        "auto"
    );
    let kernels = recorded_kernels(&network(&model, 1, KernelVariant::Fused), &model, 0);
    assert_eq!(kernels, ["fused.forward", "fused.backward"], "fused");
    // From batch 8 up Auto takes the tiled dense kernels.
    let kernels = recorded_kernels(&network(&model, 8, KernelVariant::Auto), &model, 0);
    assert!(
        kernels.contains(&"dense.forward_relu_tiled"),
        "auto at batch 8: {kernels:?}"
    );

    // The 35×35-patch window stays direct even when tiles are forced; the rest is tiled.
    let model = window_too_big_for_tiles();
    let kernels = recorded_kernels(&network(&model, 1, KernelVariant::Tiled), &model, 0);
    assert_eq!(
        kernels[..3],
        [
            "conv2d.forward",
            "relu.forward",
            "conv2d.forward_relu_tiled"
        ]
    );
}

/// The default network is the fast one unless `CNNVIZ_KERNELS` says otherwise.
#[test]
fn the_default_network_uses_the_environment_or_auto() {
    let Some(gpu) = gpu() else { return };
    let model = window_too_big_for_tiles();
    let network = GpuNetwork::new(&gpu.device, &model, 1).expect("network builds");
    let expected = match std::env::var("CNNVIZ_KERNELS") {
        Ok(value) => value.parse().expect("CNNVIZ_KERNELS names a variant"),
        Err(_) => KernelVariant::Auto,
    };
    assert_eq!(network.kernel_variant(), expected);
    assert!(matches!(
        "fastest".parse::<KernelVariant>(),
        Err(GpuError::BadKernelVariant(name)) if name == "fastest"
    ));
}

/// The shaders' tile constants and uniform structs agree with their Rust twins, which
/// size the dispatches and bound the loops for llvmpipe.
#[test]
fn tile_constants_and_uniforms_match_the_rust_twins() {
    use cnnviz::gpu::kernel_choice::*;
    // As the device compiles them: the shared prelude of uniform structs in front.
    let sources = cnnviz::gpu::compute_shader_sources();
    let source = |file: &str| {
        sources
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, source)| source.clone())
            .unwrap_or_else(|| panic!("{file} is not a compute shader"))
    };
    let conv = source("conv2d_tiled.wgsl");
    for (name, value) in [
        ("TILE", CONV_TILE),
        ("OC_BLOCK", CONV_OC_BLOCK),
        ("INPUT_CAP", CONV_INPUT_CAP),
        ("WEIGHT_CAP", CONV_WEIGHT_CAP),
    ] {
        let line = format!("const {name}: u32 = {value}u;");
        assert!(conv.contains(&line), "conv2d_tiled.wgsl lacks `{line}`");
    }
    let dense = source("dense_tiled.wgsl");
    for (name, value) in [
        ("IMAGES", DENSE_IMAGES),
        ("K_CHUNK", DENSE_K_CHUNK),
        ("OUTPUTS", DENSE_OUTPUTS),
    ] {
        let line = format!("const {name}: u32 = {value}u;");
        assert!(dense.contains(&line), "dense_tiled.wgsl lacks `{line}`");
    }
    assert!(dense.contains(&format!(
        "var<workgroup> x_tile: array<f32, {}>;",
        DENSE_K_CHUNK * DENSE_IMAGES
    )));
    assert_eq!(DENSE_OUTPUTS, 64 * 4, "64 invocations of 4 outputs");
    // Workgroup memory within WebGPU's default 16 KiB, as the shaders declare it.
    for file in ["conv2d_tiled.wgsl", "dense_tiled.wgsl", "fused.wgsl"] {
        let module = naga::front::wgsl::parse_str(&source(file))
            .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(file)));
        let bytes: u32 = module
            .global_variables
            .iter()
            .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
            .map(|(_, g)| module.types[g.ty].inner.size(module.to_ctx()))
            .sum();
        assert!(bytes > 0 && bytes <= 16_384, "{file}: {bytes} bytes");
    }

    for (file, name, size) in [
        (
            "conv2d_tiled.wgsl",
            "ConvParams",
            size_of::<cnnviz::gpu::params::ConvParams>(),
        ),
        (
            "dense_tiled.wgsl",
            "DenseParams",
            size_of::<cnnviz::gpu::params::DenseParams>(),
        ),
    ] {
        let module = naga::front::wgsl::parse_str(&source(file))
            .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(file)));
        let span = module
            .types
            .iter()
            .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
                (Some(n), naga::TypeInner::Struct { members, span }) if n == name => {
                    assert_eq!(members.len() * 4, size, "{file}: fields of {name}");
                    Some(*span as usize)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{file} declares no {name}"));
        assert_eq!(span, size, "{file}: size of {name}");
    }
}
