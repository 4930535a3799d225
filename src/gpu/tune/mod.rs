//! The kernel autotuner: which implementation each conv and dense layer runs on this
//! adapter, measured rather than ruled. At the first use of a model on an adapter, for
//! each layer shape and batch bucket ([`key`]), every candidate kernel is timed for a
//! bounded total ([`TUNE_BUDGET`]: GPU timestamps per kernel where the device has them,
//! else the wall time of the whole forward pass), the fastest is kept, and the choice is
//! cached on disk per adapter and model ([`cache`]) with every candidate's timing, so the
//! next start only reads a file. `CNNVIZ_KERNELS` (or [`NetworkOptions::kernels`]) still
//! forces one variant everywhere.
//!
//! A one-image `auto` network (the window's) runs the fused path; there the tuner decides,
//! per conv, between its conv block kernel and the gemm conv by timing whole interactive
//! inferences ([`fused`]), cached the same way.
//!
//! The running code only asks [`tuned_network`] (or [`choose`]), which tunes when nothing
//! is cached; [`GpuNetwork::new`] never times anything and keeps the rule of
//! `kernel_choice`.

pub mod cache;
pub mod fused;
pub mod key;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::kernel_choice::{KernelVariant, LayerChoices, LayerKernel, NetworkOptions};
use super::{GpuError, GpuNetwork, InferenceRequest, KernelTimer, KernelTiming};
use crate::model::{LayerOp, Model};
use cache::{CacheFile, CachedChoice};
use key::AdapterKey;

/// Total time spent timing candidates (not counting building their pipelines): at least
/// one timed run of each candidate is always made, however long it takes.
pub const TUNE_BUDGET: Duration = Duration::from_millis(300);
/// Most timed runs per candidate.
const MAX_RUNS: usize = 15;

/// Why a layer runs the kernel it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Timed just now (the timings are in the decision).
    Tuned,
    /// Read from the cache file (timings from when it was tuned).
    Cached,
    /// `CNNVIZ_KERNELS` or the options forced a variant.
    Forced,
    /// A layer the fused interactive path walks (a dense layer of a one-image `auto`
    /// network, or any layer under `fused`), so there is nothing to time for it.
    Fused,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Tuned => "tuned",
            Reason::Cached => "cached",
            Reason::Forced => "forced",
            Reason::Fused => "fused interactive path",
        }
    }
}

/// The decision for one layer that has a choice of kernels.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerDecision {
    pub layer: String,
    pub key: String,
    pub choice: Option<LayerKernel>,
    pub reason: Reason,
    /// `timestamps` or `wall_clock`; empty when forced.
    pub method: String,
    /// Median nanoseconds per candidate (empty when forced).
    pub timings_ns: BTreeMap<String, f64>,
}

impl LayerDecision {
    /// The chosen kernel's name: a conv of the fused path reads `block` (its conv block
    /// kernel) or `gemm`; `None` where nothing was chosen.
    pub fn kernel_name(&self) -> Option<&'static str> {
        match self.choice? {
            LayerKernel::Tiled if fused::is_fused_key(&self.key) => Some(fused::BLOCK),
            kernel => Some(kernel.name()),
        }
    }

    /// `conv2: gemm (tuned, timestamps: direct 1482 µs, gemm 80 µs, tiled 300 µs)`; in the
    /// fused path the timings are whole interactive inferences.
    pub fn describe(&self) -> String {
        let choice = self.kernel_name().unwrap_or(match self.reason {
            Reason::Fused => "fused",
            _ => "by rule",
        });
        if self.timings_ns.is_empty() {
            return format!("{}: {choice} ({})", self.layer, self.reason.name());
        }
        let timings: Vec<String> = self
            .timings_ns
            .iter()
            .map(|(name, ns)| format!("{name} {:.0} µs", ns / 1e3))
            .collect();
        format!(
            "{}: {choice} ({}, {}: {})",
            self.layer,
            self.reason.name(),
            self.method,
            timings.join(", ")
        )
    }
}

/// What the tuner decided for a network: the variant, the per-layer choices the plan
/// takes, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelChoice {
    pub variant: KernelVariant,
    pub choices: LayerChoices,
    pub decisions: Vec<LayerDecision>,
    /// The cache file read or written (`None` when forced or no cache directory exists).
    pub cache_path: Option<PathBuf>,
    pub bucket: u32,
}

/// The network of `max_batch` images with the kernels the tuner picks (tuning now when
/// the cache holds no choice for this adapter, model and batch bucket), and the reasons.
pub fn tuned_network(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    model: &Model,
    max_batch: u32,
    options: &NetworkOptions,
) -> Result<(GpuNetwork, KernelChoice), GpuError> {
    let choice = choose(device, queue, model, max_batch, options)?;
    let network =
        GpuNetwork::with_choices(device, model, max_batch, choice.variant, &choice.choices)?;
    Ok((network, choice))
}

/// The layers that have a choice: (index, key).
fn choosable(model: &Model, bucket: u32) -> Vec<(usize, String)> {
    model
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| !key::candidates(l.plan.op).is_empty())
        .map(|(i, _)| (i, key::layer_key(model, i, bucket)))
        .collect()
}

/// The expected cache contents' identity and the file in `dir`, for this adapter and
/// model.
fn cache_identity(
    info: &wgpu::AdapterInfo,
    model: &Model,
    dir: Option<&Path>,
) -> (CacheFile, Option<PathBuf>) {
    let identity = CacheFile::new(
        AdapterKey::of(info),
        key::model_hash(model),
        key::candidate_checksum(),
    );
    let path = dir.map(|dir| cache::cache_path(dir, &identity.adapter, &identity.model_hash));
    (identity, path)
}

/// The cached file, or `None` (logged when a file exists but is unusable).
fn read_cache(identity: &CacheFile, path: Option<&PathBuf>) -> Option<CacheFile> {
    match cache::load(path?, identity) {
        Ok(file) => file,
        Err(why) => {
            log::warn!("ignoring the kernel tuning cache: {why}");
            None
        }
    }
}

/// Decides every layer's kernel: forced by the options or `CNNVIZ_KERNELS`, else from the
/// cache (in [`cache::cache_dir`]), else by timing the candidates now (and caching the
/// result).
pub fn choose(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    model: &Model,
    max_batch: u32,
    options: &NetworkOptions,
) -> Result<KernelChoice, GpuError> {
    let dir = cache::cache_dir();
    choose_with_cache(device, queue, model, max_batch, options, dir.as_deref())
}

/// [`choose`] with the cache in `cache_dir` (`None`: no cache, tune every time).
pub fn choose_with_cache(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    model: &Model,
    max_batch: u32,
    options: &NetworkOptions,
    cache_dir: Option<&Path>,
) -> Result<KernelChoice, GpuError> {
    let variant = options.resolve()?;
    let bucket = key::batch_bucket(max_batch);
    let layers = choosable(model, bucket);
    let mut choices: LayerChoices = vec![None; model.layers.len()];
    // A one-image `auto` network runs the fused path: only its convs have a choice there
    // (block kernel or gemm, see `fused`); its dense layers are walked.
    let fused_tuning = variant == KernelVariant::Auto && variant.fuses(max_batch);
    let untimed = match variant.layer_kernel() {
        Some(forced) => Some((Some(forced), Reason::Forced)),
        None if variant.fuses(max_batch) && !fused_tuning => Some((None, Reason::Fused)),
        None => None,
    };
    let untimed_decision = |i: usize, key: String, choice, reason| LayerDecision {
        layer: model.layers[i].plan.name.clone(),
        key,
        choice,
        reason,
        method: String::new(),
        timings_ns: BTreeMap::new(),
    };
    if let Some((choice, reason)) = untimed {
        let decisions = layers
            .into_iter()
            .map(|(i, key)| untimed_decision(i, key, choice, reason))
            .collect();
        return Ok(KernelChoice {
            variant,
            choices,
            decisions,
            cache_path: None,
            bucket,
        });
    }
    let timed = if fused_tuning {
        fused::fused_convs(model)
    } else {
        layers.clone()
    };

    let (identity, path) = cache_identity(&device.adapter_info(), model, cache_dir);
    let cached = read_cache(&identity, path.as_ref());
    let complete = |file: &Option<CacheFile>| {
        file.as_ref()
            .is_some_and(|file| timed.iter().all(|(_, key)| file.get(key).is_some()))
    };
    let (mut file, reason) = match cached {
        Some(file) if complete(&cached) => (file, Reason::Cached),
        kept => {
            let mut file = kept.unwrap_or_else(|| identity.clone());
            let measured = if fused_tuning {
                fused::measure_fused(device, queue, model, &timed)?
            } else {
                measure(device, queue, model, bucket, &timed)?
            };
            for choice in measured {
                file.put(choice);
            }
            // Another process (a second window, a parallel test) may have tuned the same
            // adapter and model meanwhile: the first choice saved stays the one every
            // process runs, rather than each running its own noisy measurement.
            let saved_meanwhile = read_cache(&identity, path.as_ref());
            if complete(&saved_meanwhile)
                && let Some(saved) = saved_meanwhile
            {
                (saved, Reason::Cached)
            } else {
                if let Some(path) = &path {
                    match cache::save(path, &file) {
                        Ok(()) => log::info!("kernel choices cached in {}", path.display()),
                        Err(why) => log::warn!("could not cache the kernel choices: {why}"),
                    }
                }
                (file, Reason::Tuned)
            }
        }
    };
    file.choices.sort_by(|a, b| a.key.cmp(&b.key));
    let decisions = layers
        .into_iter()
        .map(|(i, key)| {
            let Some((_, key)) = timed.iter().find(|(t, _)| *t == i) else {
                // A dense layer of the fused path: walked, nothing to choose.
                return untimed_decision(i, key, None, Reason::Fused);
            };
            let cached = file.get(key);
            choices[i] = cached.map(|c| c.choice);
            LayerDecision {
                layer: model.layers[i].plan.name.clone(),
                choice: choices[i],
                reason,
                method: cached.map(|c| c.method.clone()).unwrap_or_default(),
                timings_ns: cached.map(|c| c.timings_ns.clone()).unwrap_or_default(),
                key: key.clone(),
            }
        })
        .collect();
    Ok(KernelChoice {
        variant,
        choices,
        decisions,
        cache_path: path,
        bucket,
    })
}

/// The implementation a kernel name belongs to (`conv2d.forward_relu_gemm` → gemm).
fn kernel_of(name: &str) -> LayerKernel {
    if name.ends_with("_gemm") {
        LayerKernel::Gemm
    } else if name.contains("tiled") {
        LayerKernel::Tiled
    } else {
        LayerKernel::Direct
    }
}

/// Times every candidate at `bucket` images and returns one choice per layer key.
fn measure(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    model: &Model,
    bucket: u32,
    layers: &[(usize, String)],
) -> Result<Vec<CachedChoice>, GpuError> {
    let method = timing_method(device);
    let share = TUNE_BUDGET / LayerKernel::ALL.len() as u32;
    // Per candidate: per layer index, the nanoseconds of each timed run.
    let mut samples: Vec<(LayerKernel, BTreeMap<usize, Vec<f64>>)> = Vec::new();
    for candidate in LayerKernel::ALL {
        let options = NetworkOptions::with_kernels(candidate.variant());
        let network = match GpuNetwork::with_options(device, model, bucket, &options) {
            Ok(network) => network,
            Err(e) => {
                log::info!("tuning: {} cannot run this model: {e}", candidate.name());
                continue;
            }
        };
        let request = InferenceRequest {
            batch: bucket,
            grad_cam: false,
            value_ranges: false,
            ..Default::default()
        };
        let mut per_layer: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for run in time_runs(device, queue, model, &network, &request, share)? {
            for &(i, _) in layers {
                let ns = match &run.timings {
                    Some(timings) => match layer_time(model, i, candidate, timings) {
                        Some(ns) => ns,
                        None => continue, // the layer ran another kernel: not a candidate
                    },
                    None => run.wall_ns,
                };
                per_layer.entry(i).or_default().push(ns);
            }
        }
        samples.push((candidate, per_layer));
    }

    let mut chosen = Vec::new();
    for (i, key) in layers {
        let allowed = key::candidates(model.layers[*i].plan.op);
        let timings_ns: BTreeMap<String, f64> = samples
            .iter()
            .filter(|(c, _)| allowed.contains(c))
            .filter_map(|(c, per_layer)| {
                Some((c.name().to_string(), median(per_layer.get(i)?.clone())?))
            })
            .collect();
        let best = timings_ns
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .and_then(|(name, _)| LayerKernel::ALL.into_iter().find(|k| k.name() == name));
        let Some(choice) = best else {
            continue; // no candidate ran: the plan's rule decides
        };
        chosen.push(CachedChoice {
            key: key.clone(),
            layer: model.layers[*i].plan.name.clone(),
            batch: bucket,
            choice,
            method: method.to_string(),
            timings_ns,
        });
    }
    Ok(chosen)
}

/// `timestamps` where the device can time kernels, else `wall_clock`.
fn timing_method(device: &wgpu::Device) -> &'static str {
    if device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        "timestamps"
    } else {
        "wall_clock"
    }
}

/// One timed run of a network: every kernel's GPU time where the device has timestamps,
/// and the wall time of its submit + wait.
struct TimedRun {
    timings: Option<Vec<KernelTiming>>,
    wall_ns: f64,
}

/// Runs `request` on `network` (zero images) for about `share` and returns the timed runs:
/// a first warm-up run (pipelines, caches) is dropped, at least one run is kept and at
/// most [`MAX_RUNS`].
fn time_runs(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    model: &Model,
    network: &GpuNetwork,
    request: &InferenceRequest,
    share: Duration,
) -> Result<Vec<TimedRun>, GpuError> {
    let inputs = vec![0.0f32; request.batch as usize * model.input_len()];
    network.write_inputs(queue, &inputs)?;
    let mut timer = if device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        Some(KernelTimer::new(
            device,
            queue,
            network.max_kernels_per_inference(),
        )?)
    } else {
        None
    };
    let mut runs = Vec::new();
    let started = Instant::now();
    for run in 0..=MAX_RUNS {
        if run > 1 && started.elapsed() >= share {
            break;
        }
        let mut encoder = device.create_command_encoder(&Default::default());
        let wall = Instant::now();
        match timer.as_mut() {
            Some(timer) => network.encode_timed(&mut encoder, request, timer)?,
            None => network.encode(&mut encoder, request)?,
        }
        queue.submit([encoder.finish()]);
        let timings = match &timer {
            Some(timer) => Some(timer.read_blocking(device)?),
            None => {
                device.poll(wgpu::PollType::wait_indefinitely())?;
                None
            }
        };
        let wall_ns = wall.elapsed().as_secs_f64() * 1e9;
        if run > 0 {
            runs.push(TimedRun { timings, wall_ns });
        }
    }
    Ok(runs)
}

/// GPU time of layer `index` in one timed forward pass under `candidate`: its own launch
/// plus the separate ReLU after it (the fused kernels have none), or `None` when the
/// layer did not run `candidate`'s kernel (it does not fit it).
fn layer_time(
    model: &Model,
    index: usize,
    candidate: LayerKernel,
    timings: &[KernelTiming],
) -> Option<f64> {
    let owner = |t: &KernelTiming| t.label.split_once(' ').map(|(o, _)| o.to_string());
    let name = &model.layers[index].plan.name;
    let own = timings.iter().find(|t| owner(t).as_ref() == Some(name))?;
    if kernel_of(own.kernel) != candidate {
        return None;
    }
    let relu = model
        .layers
        .get(index + 1)
        .filter(|l| l.plan.op == LayerOp::Relu)
        .and_then(|l| {
            timings
                .iter()
                .find(|t| owner(t).as_deref() == Some(&l.plan.name))
        })
        .map_or(0.0, |t| t.nanoseconds);
    Some(own.nanoseconds + relu)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}
