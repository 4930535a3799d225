//! `cnnviz bench --only explain`: the time of each explanation method at batch 1 on the GPU
//! explainer, as the window and `cnnviz predict --method` meet it: the input written, the
//! whole method (and its deletion/insertion curves) in one submission, the result mapped
//! on the CPU. Wall time, median and p99 of the runs.

use std::time::Instant;

use serde::Serialize;

use super::stats::{Schedule, median, quantile};
use super::{BenchError, Gpu, Progress};
use crate::explain::{ExplainError, ExplainOptions, ExplainRequest, Explainer, Method};
use crate::gpu::explain::GpuExplainer;
use crate::model::Model;

/// One method's time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MethodTiming {
    /// The CLI name (`gradcam++`).
    pub method: &'static str,
    /// Whether the time includes the deletion/insertion curves.
    pub faithfulness: bool,
    pub runs: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
}

/// Every method's time at batch 1.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExplainReport {
    /// The adapter's name (also in the report's header), so a table copied alone says
    /// where it was measured.
    pub adapter: String,
    /// Images the explainer's network runs at once (the largest batched method).
    pub network_batch: u32,
    pub ig_steps: usize,
    pub smoothgrad_samples: usize,
    pub faithfulness_steps: usize,
    pub methods: Vec<MethodTiming>,
}

/// Times every method on `input` (a normalised image), without and with the curves.
pub fn measure_explain(
    gpu: &Gpu<'_>,
    model: &Model,
    input: &[f32],
    schedule: &Schedule,
    progress: Progress<'_>,
) -> Result<ExplainReport, BenchError> {
    let options = ExplainOptions::default();
    // The engine the window and the CLI build.
    let mut explainer = GpuExplainer::new(gpu.device, gpu.queue, model, options.clone())?;
    let has_blocks = !model.conv_blocks().is_empty();
    let mut methods = Vec::new();
    for method in Method::ALL {
        if method.uses_block() && !has_blocks {
            continue;
        }
        for faithfulness in [false, true] {
            progress(&format!(
                "timing {}{}",
                method.name(),
                if faithfulness { " with its curves" } else { "" }
            ));
            let request = ExplainRequest {
                faithfulness,
                ..ExplainRequest::new(method)
            };
            let samples = schedule.sample(|| {
                let started = Instant::now();
                let explained = explainer.explain(input, &request).map_err(|e| match e {
                    ExplainError::Gpu(e) => BenchError::Gpu(e),
                    other => BenchError::BadOption(other.to_string()),
                })?;
                let elapsed = started.elapsed().as_secs_f64() * 1e3;
                std::hint::black_box(explained);
                Ok(elapsed)
            })?;
            methods.push(MethodTiming {
                method: method.name(),
                faithfulness,
                runs: samples.len(),
                median_ms: median(&samples),
                p99_ms: quantile(&samples, 0.99),
            });
        }
    }
    Ok(ExplainReport {
        adapter: gpu.adapter.get_info().name,
        network_batch: explainer.max_batch(),
        ig_steps: options.ig_steps,
        smoothgrad_samples: options.smoothgrad_samples,
        faithfulness_steps: options.faithfulness_steps,
        methods,
    })
}

impl ExplainReport {
    /// The human-readable table.
    pub fn write_text(&self, out: &mut String) -> std::fmt::Result {
        use std::fmt::Write;
        writeln!(
            out,
            "explanation methods at batch 1 on {} (write input, method, read back; wall time; \
             IG {} steps, SmoothGrad {} samples, curves of {} steps; network batch {}):",
            self.adapter,
            self.ig_steps,
            self.smoothgrad_samples,
            self.faithfulness_steps,
            self.network_batch
        )?;
        writeln!(
            out,
            "  {:<22} {:>10} {:>10}   {:>12} {:>12}",
            "method", "median ms", "p99 ms", "+curves med", "+curves p99"
        )?;
        for pair in self.methods.chunks(2) {
            let (alone, curves) = (&pair[0], pair.get(1));
            writeln!(
                out,
                "  {:<22} {:>10.2} {:>10.2}   {:>12.2} {:>12.2}   ({} / {} runs)",
                alone.method,
                alone.median_ms,
                alone.p99_ms,
                curves.map_or(f64::NAN, |c| c.median_ms),
                curves.map_or(f64::NAN, |c| c.p99_ms),
                alone.runs,
                curves.map_or(0, |c| c.runs)
            )?;
        }
        Ok(())
    }
}
