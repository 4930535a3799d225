//! The full GPU-vs-CPU comparison of one inference, shared by the kernel and model tests.

use cnnviz::gpu::{BatchOutput, CamTarget, GpuError, GpuNetwork, InferenceRequest, KernelTimer};
use cnnviz::model::{Model, reference};

use super::{TOLERANCE, assert_close, gpu, random_inputs};

/// Runs one inference on the GPU and compares everything it produced with the CPU twin:
/// every activation, every gradient down to the block, logits, probabilities, prediction,
/// target, channel weights, raw and normalised maps, heatmap and value ranges. Returns the
/// GPU output (`None` when there is no GPU outside CI).
pub fn check_parity(
    network: &GpuNetwork,
    model: &Model,
    inputs: &[f32],
    target: CamTarget,
    block: usize,
    what: &str,
) -> Option<BatchOutput> {
    let gpu = gpu()?;
    let (device, queue) = (&gpu.device, &gpu.queue);
    let request = InferenceRequest {
        target,
        block: Some(block),
        ..Default::default()
    };
    let output = network
        .run_blocking(device, queue, inputs, &request)
        .expect("inference runs");
    let batch = output.images.len() as u32;
    assert_eq!(batch as usize, inputs.len() / model.input_len());
    let activations = network
        .read_activations(device, queue, batch)
        .expect("activations read back");
    let gradients = network
        .read_gradients(device, queue, batch, Some(block))
        .expect("gradients read back");
    let conv_block = &model.conv_blocks()[block];
    let target_activation = conv_block.output_layer + 1;
    let shapes = model.activation_shapes();

    for (n, image) in output.images.iter().enumerate() {
        let at = format!("{what}, block {block}, {target:?}, image {n}/{batch}");
        let input = &inputs[n * model.input_len()..(n + 1) * model.input_len()];
        let cpu = reference::forward(model, input);
        for (j, cpu_activation) in cpu.iter().enumerate() {
            let name = &network.layout().slots[j].name;
            assert_close(
                &format!("{at}: activation {j} ({name}, {})", shapes[j]),
                &activations[n][j],
                cpu_activation,
            );
        }
        let logits = cpu.last().expect("logits");
        assert_close(&format!("{at}: logits"), &image.logits, logits);
        assert_close(
            &format!("{at}: probabilities"),
            &image.probabilities,
            &reference::softmax(logits),
        );
        let cpu_predicted = reference::argmax(logits);
        if image.predicted != cpu_predicted {
            // Only a near tie may flip the argmax between f32 and f64.
            let gap = (logits[image.predicted] - logits[cpu_predicted]).abs();
            let scale = logits.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                gap <= TOLERANCE * scale,
                "{at}: GPU predicts {} but the CPU {cpu_predicted} (logit gap {gap})",
                image.predicted
            );
        }
        let class = match target {
            CamTarget::Predicted => image.predicted,
            CamTarget::Class(c) => c,
        };
        assert_eq!(image.target, class, "{at}: target class");

        let cpu_gradients = reference::activation_gradients(model, &cpu, class, target_activation);
        for (j, (g, c)) in gradients[n].iter().zip(&cpu_gradients).enumerate() {
            match (g, c) {
                (Some(g), Some(c)) => assert_close(&format!("{at}: gradient {j}"), g, c),
                (None, None) => {}
                _ => panic!("{at}: gradient {j} present on one side only"),
            }
        }

        let cam = reference::grad_cam(model, &cpu, class, block);
        let gpu_cam = image.grad_cam.as_ref().expect("Grad-CAM was requested");
        assert_eq!(gpu_cam.block, block);
        assert_eq!((gpu_cam.height, gpu_cam.width), (cam.height, cam.width));
        assert_close(
            &format!("{at}: channel weights"),
            &gpu_cam.channel_weights,
            &cam.channel_weights,
        );
        assert_close(&format!("{at}: raw map"), &gpu_cam.raw, &cam.raw);
        assert_close(
            &format!("{at}: normalised map"),
            &gpu_cam.low_res,
            &cam.low_res,
        );
        assert_close(&format!("{at}: heatmap"), &gpu_cam.heatmap, &cam.cam);

        let ranges = image
            .value_ranges
            .as_ref()
            .expect("value ranges were requested");
        assert_eq!(ranges.len(), cpu.len());
        for (j, (&(lo, hi), activation)) in ranges.iter().zip(&cpu).enumerate() {
            let (cpu_lo, cpu_hi) = reference::value_range(activation);
            assert_close(
                &format!("{at}: value range {j}"),
                &[lo, hi],
                &[cpu_lo, cpu_hi],
            );
        }
    }
    Some(output)
}

/// The kernel names one Grad-CAM inference at `block` records, in order.
pub fn recorded_kernels(network: &GpuNetwork, model: &Model, block: usize) -> Vec<&'static str> {
    let gpu = gpu().expect("callers check for a GPU first");
    let (device, queue) = (&gpu.device, &gpu.queue);
    let mut timer = match KernelTimer::new(device, queue, network.max_kernels_per_inference()) {
        Ok(timer) => timer,
        Err(GpuError::TimestampsUnsupported) => {
            panic!("{} has no timestamp queries", gpu.describe())
        }
        Err(e) => panic!("{e}"),
    };
    let batch = network
        .write_inputs(queue, &random_inputs(model, 1, 1))
        .expect("one image fits");
    let request = InferenceRequest {
        batch,
        block: Some(block),
        ..Default::default()
    };
    let mut encoder = device.create_command_encoder(&Default::default());
    network
        .encode_timed(&mut encoder, &request, &mut timer)
        .expect("timed encode");
    queue.submit([encoder.finish()]);
    let timings = timer.read_blocking(device).expect("timestamps read back");
    timings.iter().map(|t| t.kernel).collect()
}
