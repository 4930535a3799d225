//! `cnnviz bench`: how fast each kernel runs on the current adapter, how close it comes to
//! what the adapter can do, and what a user meets end to end.
//!
//! Sections, each optional ([`Section`]):
//!
//! - `peak`: the adapter's FMA throughput and copy bandwidth by two microkernels
//!   ([`peak`]), the yardstick for the kernels' GFLOP/s and GB/s;
//! - `kernels`: every launch of one inference (forward, softmax, Grad-CAM, value ranges) at
//!   several batch sizes, timed by timestamp queries where the device has them, with its
//!   FLOP and byte counts from the layer shapes ([`cost`]);
//! - `latency`: one interactive inference, input write to probabilities on the CPU;
//! - `eval`: images/s of batched forward passes at several batch sizes;
//! - `render`: frames/s of the 3D scene offscreen;
//! - `window`: frames/s of the whole viewer (overlay included) while a stroke is drawn,
//!   and where each frame's CPU and GPU time goes ([`window`]);
//! - `explain`: each explanation method's time at batch 1 on the GPU explainer
//!   ([`explain`]).
//!
//! Everything takes the caller's device (nothing here creates one), every figure is a median
//! over repeated runs after warm-up ([`stats::Schedule`]), and the result is one
//! [`BenchReport`] that prints as a table or serialises to JSON with stable field names.

pub mod clock;
pub mod cost;
pub mod explain;
pub mod frame;
pub mod kernels;
pub mod latency;
pub mod peak;
pub mod report;
pub mod stats;
pub mod window;

use std::time::Duration;

pub use clock::TimingMethod;
pub use report::BenchReport;
pub use stats::Schedule;

use crate::gpu::tune::tuned_network;
use crate::gpu::{GpuError, GpuNetwork, KernelTimer, NetworkOptions};
use crate::model::Model;
use crate::scene::SceneError;

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error("rendering the scene: {0}")]
    Scene(#[from] SceneError),
    #[error("{0}")]
    BadOption(String),
    #[error("this device cannot run the benchmark: {0}")]
    Unsupported(String),
}

/// One part of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Peak,
    Kernels,
    Latency,
    Eval,
    Render,
    Window,
    Explain,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::Peak,
        Section::Kernels,
        Section::Latency,
        Section::Eval,
        Section::Render,
        Section::Window,
        Section::Explain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Peak => "peak",
            Section::Kernels => "kernels",
            Section::Latency => "latency",
            Section::Eval => "eval",
            Section::Render => "render",
            Section::Window => "window",
            Section::Explain => "explain",
        }
    }

    /// Parses `peak`, `kernels`, `latency`, `eval`, `render`, `window` or `explain`.
    pub fn parse(name: &str) -> Result<Section, BenchError> {
        Section::ALL
            .into_iter()
            .find(|s| s.name() == name.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Section::ALL.iter().map(|s| s.name()).collect();
                BenchError::BadOption(format!(
                    "unknown bench section `{name}` (choose from {})",
                    names.join(", ")
                ))
            })
    }
}

/// What to measure and how often.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchOptions {
    pub sections: Vec<Section>,
    /// Measured runs per figure (latency runs exactly this many; the others stop earlier
    /// once `budget` has passed).
    pub runs: usize,
    pub warmup: usize,
    /// Time per figure after which the runs stop early (after a few minimum runs).
    pub budget: Duration,
    /// Batch sizes of the per-kernel timings.
    pub kernel_batches: Vec<u32>,
    /// Batch sizes tried for eval throughput.
    pub eval_batches: Vec<u32>,
    /// Offscreen frame size of the render and window sections.
    pub render_size: (u32, u32),
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            sections: Section::ALL.to_vec(),
            runs: 500,
            warmup: 20,
            budget: Duration::from_secs(5),
            kernel_batches: vec![1, 64, 1024],
            eval_batches: vec![16, 64, 256, 512, 1024],
            render_size: (1280, 720),
        }
    }
}

impl BenchOptions {
    pub fn wants(&self, section: Section) -> bool {
        self.sections.contains(&section)
    }

    /// Refuses options that cannot run (no section, no runs, a zero batch or size).
    pub fn check(&self) -> Result<(), BenchError> {
        if self.sections.is_empty() {
            return Err(BenchError::BadOption("no bench section chosen".to_string()));
        }
        if self.runs == 0 {
            return Err(BenchError::BadOption(
                "--runs must be at least 1".to_string(),
            ));
        }
        for (what, batches) in [
            ("kernel", &self.kernel_batches),
            ("eval", &self.eval_batches),
        ] {
            if batches.is_empty() || batches.contains(&0) {
                return Err(BenchError::BadOption(format!(
                    "{what} batch sizes must be at least 1 (got {batches:?})"
                )));
            }
        }
        let (w, h) = self.render_size;
        if w == 0 || h == 0 {
            return Err(BenchError::BadOption(format!(
                "render size {w}×{h} must be at least 1×1"
            )));
        }
        Ok(())
    }

    /// The schedule of a figure whose runs are cheap (latency: exactly `runs`).
    fn exact(&self) -> Schedule {
        Schedule {
            warmup: self.warmup,
            runs: self.runs,
            min_runs: self.runs,
            budget: self.budget,
        }
    }

    /// The schedule of a figure whose runs may be slow: at least `min_runs`, then until the
    /// budget is spent or `runs` are in.
    fn budgeted(&self, min_runs: usize) -> Schedule {
        Schedule {
            warmup: self.warmup,
            runs: self.runs,
            min_runs,
            budget: self.budget,
        }
    }
}

/// The device a benchmark runs on, lent by the caller.
#[derive(Clone, Copy)]
pub struct Gpu<'a> {
    pub adapter: &'a wgpu::Adapter,
    pub device: &'a wgpu::Device,
    pub queue: &'a wgpu::Queue,
}

/// Progress lines (`measuring kernels at batch 64…`) for a caller that wants them.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// Runs the chosen sections on `gpu` with `model` and returns the report.
pub fn run(
    gpu: &Gpu<'_>,
    model: &Model,
    options: &BenchOptions,
    progress: Progress<'_>,
) -> Result<BenchReport, BenchError> {
    options.check()?;
    // The kernels the window and `eval` get: `CNNVIZ_KERNELS`, else the tuner's choice.
    let tuning = NetworkOptions::default();
    let mut report = BenchReport::new(gpu.adapter, gpu.device, model, options);
    let image = synthetic_digit(model);
    // Batches the device cannot hold (lavapipe binds at most 128 MiB, 775 images of the
    // MNIST model) run at the largest batch that fits instead, with a note.
    let (fits, stopper) = GpuNetwork::max_batch_for(model, &gpu.device.limits());
    let mut fit = |batches: &[u32], what: &str| -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for &batch in batches {
            let run = batch.min(fits);
            if run < batch {
                report.notes.push(format!(
                    "{what} batch {batch} does not fit this device ({stopper}); measured at {run}, the largest that fits"
                ));
            }
            if !out.contains(&run) {
                out.push(run);
            }
        }
        out
    };
    let mut fit_if = |section, batches: &[u32], what: &str| {
        if options.wants(section) {
            fit(batches, what)
        } else {
            Vec::new()
        }
    };
    let kernel_batches = fit_if(Section::Kernels, &options.kernel_batches, "kernel");
    let eval_batches = fit_if(Section::Eval, &options.eval_batches, "eval");

    if options.wants(Section::Peak) {
        progress("measuring the adapter's peak (FMA and copy microkernels)");
        report.peak = Some(peak::measure_peak(
            gpu.device,
            gpu.queue,
            &options.budgeted(5),
        )?);
    }

    let biggest = kernel_batches.iter().chain(&eval_batches).copied().max();
    if let Some(max_batch) = biggest {
        let (network, choice) = tuned_network(gpu.device, gpu.queue, model, max_batch, &tuning)?;
        report
            .kernel_choices
            .push(report::KernelChoiceReport::new(max_batch, &choice));
        if options.wants(Section::Kernels) {
            let costs = cost::CostModel::new(model);
            // Batch 1 is timed on a one-image network: exactly the plan the window runs
            // (a network built for batches chooses other kernels).
            let single = if kernel_batches.contains(&1) && max_batch > 1 {
                Some(tuned_network(gpu.device, gpu.queue, model, 1, &tuning)?.0)
            } else {
                None
            };
            let capacity = single.as_ref().map_or(0, |s| s.max_kernels_per_inference());
            let mut timer = match KernelTimer::new(
                gpu.device,
                gpu.queue,
                network.max_kernels_per_inference().max(capacity),
            ) {
                Ok(timer) => Some(timer),
                Err(GpuError::TimestampsUnsupported) => None,
                Err(e) => return Err(e.into()),
            };
            let mut batches = Vec::new();
            for &batch in &kernel_batches {
                progress(&format!("timing every kernel at batch {batch}"));
                let inputs = latency::repeat(&image, batch);
                let timed = match (&single, batch) {
                    (Some(single), 1) => single,
                    _ => &network,
                };
                batches.push(kernels::measure_kernels(
                    gpu,
                    timed,
                    timer.as_mut(),
                    &costs,
                    &inputs,
                    &options.budgeted(5),
                    report.peak.as_ref(),
                )?);
            }
            report.kernels = Some(report::KernelsReport::new(batches));
        }
        if options.wants(Section::Eval) {
            progress("measuring eval throughput");
            report.eval = Some(latency::measure_eval(
                gpu,
                &network,
                &image,
                &eval_batches,
                &options.budgeted(3),
            )?);
        }
    }

    if options.wants(Section::Latency) || options.wants(Section::Render) {
        let (network, choice) = tuned_network(gpu.device, gpu.queue, model, 1, &tuning)?;
        report
            .kernel_choices
            .push(report::KernelChoiceReport::new(1, &choice));
        if options.wants(Section::Latency) {
            progress("measuring interactive latency");
            report.latency = Some(latency::measure_latency(
                gpu,
                &network,
                &image,
                &options.exact(),
            )?);
        }
        if options.wants(Section::Render) {
            progress("measuring the render frame rate");
            network.write_inputs(gpu.queue, &image)?;
            report.render = Some(frame::measure_render(
                gpu,
                model,
                &network,
                options.render_size,
                &options.budgeted(10),
            )?);
        }
    }
    if options.wants(Section::Window) {
        progress("measuring the whole window while a stroke is drawn");
        report.window = Some(window::measure_window(
            gpu,
            model,
            options.render_size,
            &options.budgeted(10),
        )?);
    }
    if options.wants(Section::Explain) {
        progress("timing every explanation method at batch 1");
        report.explain = Some(explain::measure_explain(
            gpu,
            model,
            &image,
            &options.budgeted(5),
            progress,
        )?);
    }
    Ok(report)
}

/// An MNIST-like input without reading any data set: a bright ring on black (a zero),
/// normalised. Timings do not depend on the values, but every kernel sees a real-looking
/// image (no all-zero shortcuts).
pub fn synthetic_digit(model: &Model) -> Vec<f32> {
    let input = model.architecture.input;
    let (h, w) = (input.height, input.width);
    let radius = h.min(w) as f32;
    let one: Vec<f32> = (0..input.channels * h * w)
        .map(|i| {
            let i = i % (h * w);
            let y = (i / w) as f32 + 0.5 - h as f32 / 2.0;
            let x = (i % w) as f32 + 0.5 - w as f32 / 2.0;
            let r = (x * x + y * y).sqrt() / radius;
            if (0.2..0.32).contains(&r) { 1.0 } else { 0.0 }
        })
        .collect();
    model.normalize(&one)
}
