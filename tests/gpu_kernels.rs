//! Every WGSL kernel against its CPU twin (`model::reference`, f64) on random models with
//! awkward shapes: odd and non-square inputs, padding 0/1/2, stride 1/2, kernels 1/3/5,
//! overlapping pools, a conv block without ReLU, more classes than a workgroup has
//! threads, batches of 1 and 7, every conv block as Grad-CAM target and several classes.
//! Errors are measured relative to each tensor's largest |value| (see
//! `common::relative_error`); the bound is `common::TOLERANCE` = 1e-4.

mod common;

use cnnviz::gpu::{
    CamTarget, GpuError, GpuNetwork, InferenceRequest, KernelTimer, KernelVariant, NetworkOptions,
};
use cnnviz::model::{Model, reference};
use common::parity::check_parity;
use common::*;

/// Three conv blocks on a 13×11 input: k3 s1 p1, k5 s2 p2, an overlapping k3 s2 pool, k1.
fn three_blocks_odd_sizes() -> Model {
    random_model(
        architecture(
            "odd",
            13,
            11,
            5,
            vec![
                conv("conv1", 1, 4, 3, 1, 1),
                relu("relu1"),
                conv("conv2", 4, 6, 5, 2, 2),
                relu("relu2"),
                pool("pool", 3, 2),
                conv("conv3", 6, 5, 1, 1, 0),
                relu("relu3"),
                flatten("flatten"),
                dense("fc1", 5 * 3 * 2, 7),
                relu("relu4"),
                dense("fc2", 7, 5),
            ],
        ),
        1,
    )
}

/// Padding 2 with a k5 conv, a k2 s2 pool that drops a trailing row and column (17×15 →
/// 8×7), a k3 s2 p0 conv, and 70 classes (more than the 64 threads of the softmax).
fn pool_remainder_many_classes() -> Model {
    random_model(
        architecture(
            "remainder",
            17,
            15,
            70,
            vec![
                conv("conv1", 1, 3, 5, 1, 2),
                relu("relu1"),
                pool("pool1", 2, 2),
                conv("conv2", 3, 8, 3, 2, 0),
                relu("relu2"),
                flatten("flatten"),
                dense("fc", 8 * 3 * 3, 70),
            ],
        ),
        2,
    )
}

/// A conv block with no ReLU after it (Grad-CAM reads the conv output, and the pool's
/// backward meets negative values), a square input and a wide dense layer (> 64 inputs
/// per reduction thread group).
fn block_without_relu() -> Model {
    random_model(
        architecture(
            "no-relu",
            12,
            12,
            4,
            vec![
                conv("conv1", 1, 2, 3, 1, 1),
                pool("pool1", 2, 2),
                relu("relu1"),
                conv("conv2", 2, 9, 3, 1, 0),
                relu("relu2"),
                flatten("flatten"),
                dense("fc1", 9 * 4 * 4, 100),
                relu("relu3"),
                dense("fc2", 100, 4),
            ],
        ),
        3,
    )
}

/// Every block × several targets × batch 7 then batch 1 on the same network (the batch
/// changes without touching any uniform).
fn check_model(model: &Model, seed: u64) {
    let Some(gpu) = gpu() else { return };
    let network = GpuNetwork::new(&gpu.device, model, 7).expect("network builds");
    let classes = model.num_classes();
    let targets = [
        CamTarget::Predicted,
        CamTarget::Class(0),
        CamTarget::Class(classes / 2),
        CamTarget::Class(classes - 1),
    ];
    for block in 0..model.conv_blocks().len() {
        for (t, &target) in targets.iter().enumerate() {
            let seed = seed + 10 * block as u64 + t as u64;
            check_parity(
                &network,
                model,
                &random_inputs(model, 7, seed),
                target,
                block,
                "batch 7",
            );
            check_parity(
                &network,
                model,
                &random_inputs(model, 1, seed + 1000),
                target,
                block,
                "batch 1",
            );
        }
    }
}

#[test]
fn three_conv_blocks_on_an_odd_input_match_the_cpu() {
    check_model(&three_blocks_odd_sizes(), 100);
}

#[test]
fn padding_two_pool_remainder_and_seventy_classes_match_the_cpu() {
    check_model(&pool_remainder_many_classes(), 200);
}

#[test]
fn a_block_without_relu_and_a_wide_dense_layer_match_the_cpu() {
    check_model(&block_without_relu(), 300);
}

#[test]
fn forward_only_requests_skip_grad_cam_and_ranges() {
    let Some(gpu) = gpu() else { return };
    let model = three_blocks_odd_sizes();
    let network = GpuNetwork::new(&gpu.device, &model, 3).expect("network builds");
    let inputs = random_inputs(&model, 3, 7);
    let request = InferenceRequest {
        grad_cam: false,
        value_ranges: false,
        ..Default::default()
    };
    let output = network
        .run_blocking(&gpu.device, &gpu.queue, &inputs, &request)
        .expect("inference runs");
    for (n, image) in output.images.iter().enumerate() {
        assert!(image.grad_cam.is_none() && image.value_ranges.is_none());
        let cpu = reference::forward(
            &model,
            &inputs[n * model.input_len()..][..model.input_len()],
        );
        assert_close("logits", &image.logits, cpu.last().expect("logits"));
    }
}

#[test]
fn the_default_request_explains_the_prediction_at_the_last_block() {
    let Some(gpu) = gpu() else { return };
    let model = three_blocks_odd_sizes();
    let network = GpuNetwork::new(&gpu.device, &model, 1).expect("network builds");
    let inputs = random_inputs(&model, 1, 11);
    let output = network
        .run_blocking(
            &gpu.device,
            &gpu.queue,
            &inputs,
            &InferenceRequest::default(),
        )
        .expect("inference runs");
    let image = &output.images[0];
    let cam = image.grad_cam.as_ref().expect("Grad-CAM by default");
    assert_eq!(cam.block, model.conv_blocks().len() - 1);
    assert_eq!(image.target, image.predicted);
    let cpu = reference::forward(&model, &inputs);
    let expected = reference::grad_cam(&model, &cpu, image.predicted, cam.block);
    assert_close("heatmap", &cam.heatmap, &expected.cam);
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let Some(gpu) = gpu() else { return };
    let (device, queue) = (&gpu.device, &gpu.queue);
    let model = three_blocks_odd_sizes();
    let network = GpuNetwork::new(device, &model, 2).expect("network builds");
    let len = model.input_len();
    let one = random_inputs(&model, 1, 5);
    let mut encoder = device.create_command_encoder(&Default::default());

    let bad_block = InferenceRequest {
        block: Some(3),
        ..Default::default()
    };
    assert!(matches!(
        network.encode(&mut encoder, &bad_block),
        Err(GpuError::BadBlock {
            block: 3,
            blocks: 3
        })
    ));
    assert!(matches!(
        network.run_blocking(device, queue, &one, &bad_block),
        Err(GpuError::BadBlock { .. })
    ));
    let bad_class = InferenceRequest {
        target: CamTarget::Class(5),
        ..Default::default()
    };
    assert!(matches!(
        network.encode(&mut encoder, &bad_class),
        Err(GpuError::BadClass {
            class: 5,
            classes: 5
        })
    ));
    for batch in [0, 3] {
        let request = InferenceRequest {
            batch,
            ..Default::default()
        };
        assert!(matches!(
            network.encode(&mut encoder, &request),
            Err(GpuError::BadBatch { max_batch: 2, .. })
        ));
    }
    assert!(matches!(
        network.write_inputs(queue, &random_inputs(&model, 3, 6)),
        Err(GpuError::BadBatch {
            batch: 3,
            max_batch: 2
        })
    ));
    for wrong in [0, len - 1, len + 1] {
        let inputs = vec![0.0; wrong];
        assert!(matches!(
            network.write_inputs(queue, &inputs),
            Err(GpuError::InputLength { .. })
        ));
        assert!(matches!(
            network.run_blocking(device, queue, &inputs, &InferenceRequest::default()),
            Err(GpuError::InputLength { .. })
        ));
    }
    assert!(matches!(
        network.read_gradients(device, queue, 1, Some(9)),
        Err(GpuError::BadBlock { .. })
    ));
    assert!(matches!(
        network.read_activations(device, queue, 3),
        Err(GpuError::BadBatch { .. })
    ));
    // The encoder saw only rejected requests, so it is still valid and empty.
    queue.submit([encoder.finish()]);

    assert!(matches!(
        GpuNetwork::new(device, &model, 0),
        Err(GpuError::ZeroBatch)
    ));
    match GpuNetwork::new(device, &model, u32::MAX) {
        Err(GpuError::BatchTooLarge { fits, .. }) => {
            let (expected, _) = GpuNetwork::max_batch_for(&model, &device.limits());
            assert_eq!(fits, expected);
            assert!(fits > 1, "a tiny model fits more than one image");
            let message = GpuNetwork::new(device, &model, u32::MAX)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                message.contains(&format!("the biggest batch that fits is {fits}")),
                "{message}"
            );
        }
        other => panic!("expected BatchTooLarge, got {:?}", other.err()),
    }
}

#[test]
fn the_timer_names_and_times_every_kernel() {
    let Some(gpu) = gpu() else { return };
    let (device, queue) = (&gpu.device, &gpu.queue);
    let model = pool_remainder_many_classes();
    // The direct kernels, whose names this test lists; the tiled ones (the default) are
    // listed in tests/gpu_fast_kernels.rs.
    let options = NetworkOptions::with_kernels(KernelVariant::Direct);
    let network = GpuNetwork::with_options(device, &model, 4, &options).expect("network builds");
    let mut timer = match KernelTimer::new(device, queue, network.max_kernels_per_inference()) {
        Ok(timer) => timer,
        Err(GpuError::TimestampsUnsupported) => {
            assert!(!device.features().contains(wgpu::Features::TIMESTAMP_QUERY));
            eprintln!("note: {} has no timestamp queries", gpu.describe());
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let inputs = random_inputs(&model, 4, 9);
    let batch = network.write_inputs(queue, &inputs).expect("inputs fit");
    let request = InferenceRequest {
        batch,
        block: Some(0),
        ..Default::default()
    };
    let mut encoder = device.create_command_encoder(&Default::default());
    network
        .encode_timed(&mut encoder, &request, &mut timer)
        .expect("timed encode");
    queue.submit([encoder.finish()]);
    let timings = timer.read_blocking(device).expect("timestamps read back");

    // conv1 relu1 pool1 conv2 relu2 fc | softmax | fc relu2 conv2 pool1 relu1 (down to the
    // output of block 0, relu1) | five CAM kernels | value ranges.
    let kernels: Vec<&str> = timings.iter().map(|t| t.kernel).collect();
    assert_eq!(
        kernels,
        [
            "conv2d.forward",
            "relu.forward",
            "maxpool2d.forward",
            "conv2d.forward",
            "relu.forward",
            "dense.forward",
            "softmax.main",
            "dense.backward_input",
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
    assert_eq!(timings[0].label, "conv1 conv2d.forward");
    assert!(
        timings
            .iter()
            .all(|t| t.nanoseconds.is_finite() && t.nanoseconds >= 0.0)
    );
    assert!(timings.iter().map(|t| t.nanoseconds).sum::<f64>() > 0.0);

    // Timed and untimed encodes compute the same thing.
    let output = network
        .run_blocking(device, queue, &inputs, &request)
        .expect("inference runs");
    let cpu = reference::forward(&model, &inputs[..model.input_len()]);
    assert_close(
        "logits",
        &output.images[0].logits,
        cpu.last().expect("logits"),
    );

    let mut small = KernelTimer::new(device, queue, 3).expect("timestamps supported");
    let mut encoder = device.create_command_encoder(&Default::default());
    assert!(matches!(
        network.encode_timed(&mut encoder, &request, &mut small),
        Err(GpuError::TimerTooSmall { capacity: 3, .. })
    ));
}

#[test]
fn probabilities_come_back_through_the_non_blocking_readback() {
    let Some(gpu) = gpu() else { return };
    let (device, queue) = (&gpu.device, &gpu.queue);
    let model = block_without_relu();
    let network = GpuNetwork::new(device, &model, 2).expect("network builds");
    let readback = network.probability_readback(device);
    let inputs = random_inputs(&model, 2, 21);
    let batch = network.write_inputs(queue, &inputs).expect("inputs fit");
    let request = InferenceRequest {
        batch,
        ..Default::default()
    };
    let mut encoder = device.create_command_encoder(&Default::default());
    network.encode(&mut encoder, &request).expect("encode");
    network
        .encode_probability_readback(&mut encoder, &readback)
        .expect("readback is idle");
    assert!(readback.in_flight());
    assert!(matches!(
        network.encode_probability_readback(&mut encoder, &readback),
        Err(GpuError::ReadbackBusy)
    ));
    queue.submit([encoder.finish()]);
    readback.start_map();
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("device polls");
    let result = readback
        .try_take()
        .expect("map succeeded")
        .expect("the map completed during the poll");
    assert!(!readback.in_flight());
    assert!(readback.try_take().expect("idle").is_none());

    let cpu = reference::forward(&model, &inputs[..model.input_len()]);
    let logits = cpu.last().expect("logits");
    assert_close(
        "probabilities",
        &result.probabilities,
        &reference::softmax(logits),
    );
    assert_eq!(result.predicted, reference::argmax(logits));
}

#[test]
fn the_arena_layout_is_layer_major_and_flatten_aliases_its_input() {
    let model = three_blocks_odd_sizes();
    let network_free_layout = cnnviz::gpu::ArenaLayout::new(&model, 5);
    let slots = &network_free_layout.slots;
    assert_eq!(slots.len(), model.layers.len() + 1);
    assert_eq!(slots[0].offset, 0);
    assert_eq!(slots[0].name, "input");
    let mut expected = 0;
    for (j, slot) in slots.iter().enumerate() {
        assert_eq!(slot.len, slot.shape.len());
        match slot.alias_of {
            Some(source) => {
                assert_eq!(model.layers[j - 1].plan.name, "flatten");
                assert_eq!(slot.offset, slots[source].offset);
            }
            None => {
                assert_eq!(
                    slot.offset,
                    5 * expected,
                    "activation {j} starts after the ones before"
                );
                expected += slot.len as u64;
            }
        }
    }
    assert_eq!(network_free_layout.floats_per_image, expected);
    assert_eq!(
        network_free_layout.image_offset(2, 3),
        slots[2].offset + 3 * slots[2].len as u64
    );
}

/// A 512×512 input through a 1×1 conv to 17 channels: 4 456 448 floats per image, 69 632
/// workgroups, more than one dispatch dimension holds (65 535), so the dispatch folds into
/// z. Forward, backward, Grad-CAM and value ranges must all still cover every element.
#[test]
fn a_layer_wider_than_one_dispatch_dimension_folds_into_z() {
    let Some(gpu) = gpu() else { return };
    let model = random_model(
        architecture(
            "wide",
            512,
            512,
            3,
            vec![
                conv("conv1", 1, 17, 1, 1, 0),
                pool("pool1", 4, 4),
                relu("relu1"),
                flatten("flatten"),
                dense("fc", 17 * 128 * 128, 3),
            ],
        ),
        4,
    );
    let groups = (17 * 512 * 512usize).div_ceil(64);
    let limit = gpu.device.limits().max_compute_workgroups_per_dimension as usize;
    if groups <= limit {
        eprintln!("note: {limit} workgroups per dimension; this layer does not fold here");
    }
    let network = GpuNetwork::new(&gpu.device, &model, 1).expect("network builds");
    check_parity(
        &network,
        &model,
        &random_inputs(&model, 1, 77),
        CamTarget::Predicted,
        0,
        "wide",
    );
}

/// A 2048-channel 7×7 conv loops about 116 000 times per invocation. llvmpipe silently cuts
/// loops off after 65 535 iterations, so there the network must refuse to build; anywhere
/// else it must build and match the CPU.
#[test]
fn kernels_too_long_for_llvmpipe_are_refused_there_and_correct_elsewhere() {
    let Some(gpu) = gpu() else { return };
    let model = random_model(
        architecture(
            "deep-channels",
            8,
            8,
            2,
            vec![
                conv("conv1", 1, 2048, 1, 1, 0),
                relu("relu1"),
                conv("conv2", 2048, 2, 7, 1, 0),
                relu("relu2"),
                flatten("flatten"),
                dense("fc", 2 * 2 * 2, 2),
            ],
        ),
        5,
    );
    let llvmpipe = gpu.info.name.contains("llvmpipe") || gpu.info.driver.contains("llvmpipe");
    match GpuNetwork::new(&gpu.device, &model, 1) {
        Err(GpuError::ModelTooLarge(message)) if llvmpipe => {
            assert!(message.contains("conv2 conv2d.forward"), "{message}");
            assert!(message.contains("llvmpipe"), "{message}");
        }
        Ok(network) if !llvmpipe => {
            check_parity(
                &network,
                &model,
                &random_inputs(&model, 1, 8),
                CamTarget::Predicted,
                0,
                "deep channels",
            );
        }
        Err(e) => panic!("{}: {e}", gpu.describe()),
        Ok(_) => panic!("llvmpipe accepted a kernel it would cut short"),
    }
}
