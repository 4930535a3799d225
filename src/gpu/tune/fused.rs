//! The batch-1 choice: in the fused interactive path (`auto`, one image) each conv runs as
//! its conv block kernel (conv, ReLU, 2×2 pool and range partials in one launch) or as the
//! gemm conv with the fused ReLU, its pool and ranges then walked by the next forward walk
//! (one dispatch more, a faster conv). Which pays depends on the adapter, so each conv is
//! decided by timing whole interactive inferences (forward, softmax, Grad-CAM of the last
//! block where there is one, value ranges): starting from every conv as a block, each conv in turn is tried as
//! gemm and kept so where the whole inference got faster (one plan per conv plus one, not
//! every combination, so deep models stay cheap to tune).

use std::collections::BTreeMap;

use super::cache::CachedChoice;
use super::{TUNE_BUDGET, TimedRun, median, time_runs, timing_method};
use crate::gpu::kernel_choice::{KernelVariant, LayerChoices, LayerKernel};
use crate::gpu::{GpuError, GpuNetwork, InferenceRequest};
use crate::model::{LayerOp, Model};

/// What a conv is timed as in the fused path: its block kernel (recorded as
/// [`LayerKernel::Tiled`]: the block kernel is `conv2d_tiled.wgsl`'s) or the gemm conv.
pub const BLOCK: &str = "block";
pub const GEMM: &str = "gemm";

/// The cache key of conv `index` in the fused path: its layer key with a prefix, so a
/// batch-1 fused choice never answers for a per-layer plan.
pub fn fused_key(model: &Model, index: usize) -> String {
    format!("fused {}", super::key::layer_key(model, index, 1))
}

/// Whether a decision key is a fused-path one (its `Tiled` choice reads as [`BLOCK`]).
pub fn is_fused_key(key: &str) -> bool {
    key.starts_with("fused ")
}

/// The convs the fused path can run either way: (index, key).
pub(super) fn fused_convs(model: &Model) -> Vec<(usize, String)> {
    model
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l.plan.op, LayerOp::Conv2d(_)))
        .map(|(i, _)| (i, fused_key(model, i)))
        .collect()
}

/// Median time of one interactive inference of the one-image `auto` network with
/// `choices`, and its forward launches (to see whether a choice changed the plan); `None`
/// when that plan cannot be built.
fn time_plan(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    model: &Model,
    choices: &LayerChoices,
    share: std::time::Duration,
) -> Result<Option<(f64, Vec<String>)>, GpuError> {
    let network = match GpuNetwork::with_choices(device, model, 1, KernelVariant::Auto, choices) {
        Ok(network) => network,
        Err(e) => {
            log::info!("tuning: a fused plan cannot run this model: {e}");
            return Ok(None);
        }
    };
    let launches = network
        .forward_kernels()
        .into_iter()
        .map(str::to_string)
        .collect();
    let request = InferenceRequest {
        grad_cam: !model.conv_blocks().is_empty(),
        ..Default::default()
    };
    let runs = time_runs(device, queue, model, &network, &request, share)?;
    let totals = runs.iter().map(|run: &TimedRun| match &run.timings {
        Some(timings) => timings.iter().map(|t| t.nanoseconds).sum(),
        None => run.wall_ns,
    });
    Ok(median(totals.collect()).map(|ns| (ns, launches)))
}

/// Times the fused plans (see the module docs) and returns one choice per conv key.
pub(super) fn measure_fused(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    model: &Model,
    convs: &[(usize, String)],
) -> Result<Vec<CachedChoice>, GpuError> {
    if convs.is_empty() {
        return Ok(Vec::new()); // nothing to choose: no plan worth timing
    }
    let method = timing_method(device);
    let share = TUNE_BUDGET / (convs.len() as u32 + 1);
    let mut current: LayerChoices = vec![None; model.layers.len()];
    for &(i, _) in convs {
        current[i] = Some(LayerKernel::Tiled);
    }
    let Some((mut best, mut launches)) = time_plan(device, queue, model, &current, share)? else {
        return Ok(Vec::new());
    };
    let mut chosen = Vec::new();
    for (i, key) in convs {
        let mut flipped = current.clone();
        flipped[*i] = Some(LayerKernel::Gemm);
        let mut timings_ns = BTreeMap::from([(BLOCK.to_string(), best)]);
        match time_plan(device, queue, model, &flipped, share)? {
            // The same launches: the conv does not fit the gemm kernel, nothing to choose.
            Some((_, same)) if same == launches => {}
            Some((ns, flipped_launches)) => {
                timings_ns.insert(GEMM.to_string(), ns);
                if ns < best {
                    (best, launches, current) = (ns, flipped_launches, flipped);
                }
            }
            None => {}
        }
        chosen.push(CachedChoice {
            key: key.clone(),
            layer: model.layers[*i].plan.name.clone(),
            batch: 1,
            choice: current[*i].unwrap_or(LayerKernel::Tiled),
            method: method.to_string(),
            timings_ns,
        });
    }
    Ok(chosen)
}
