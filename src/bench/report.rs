//! The result of `cnnviz bench` as data ([`BenchReport`], serialised as the `--json`
//! output) and as the text table.
//!
//! The JSON field names are stable (`schema` names the version: `cnnviz.bench/1`); a
//! section that was not run is `null`. Units are in the names: `_ns`, `_us`, `_ms`,
//! `gflops` (10⁹ FLOP/s), `gbps` (10⁹ bytes/s), `fps`; `flops` and `bytes` are counts.

use std::fmt::Write;

use serde::Serialize;

use super::clock::TimingMethod;
use super::frame::RenderReport;
use super::kernels::KernelBatch;
use super::latency::{EvalReport, LatencyReport};
use super::peak::PeakReport;
use super::window::WindowReport;
use super::{BenchOptions, Section};
use crate::model::Model;

pub const SCHEMA: &str = "cnnviz.bench/1";

/// The adapter the figures belong to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    /// One line: name (backend, driver, type).
    pub description: String,
    pub timestamp_query: bool,
    pub timestamp_query_inside_passes: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelReport {
    pub name: String,
    pub parameters: usize,
    pub input: Vec<usize>,
    pub classes: usize,
}

/// How the run was configured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SettingsReport {
    pub sections: Vec<Section>,
    pub runs: usize,
    pub warmup: usize,
    pub budget_seconds: f64,
    pub kernel_batches: Vec<u32>,
    pub eval_batches: Vec<u32>,
    /// `CNNVIZ_KERNELS` as set for this run (kernel variant choice), if at all.
    pub kernels_env: Option<String>,
}

/// The per-kernel section: one entry per batch size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelsReport {
    /// The method of the first batch (all batches share it).
    pub method: TimingMethod,
    pub batches: Vec<KernelBatch>,
}

impl KernelsReport {
    pub fn new(batches: Vec<KernelBatch>) -> Self {
        KernelsReport {
            method: batches
                .first()
                .map(|b| b.method)
                .unwrap_or(TimingMethod::WallClock),
            batches,
        }
    }
}

/// Everything one `cnnviz bench` measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    pub schema: &'static str,
    /// When the run started: seconds since 1970-01-01 UTC, and the date (UTC).
    pub unix_time: u64,
    pub date: String,
    pub cnnviz_version: &'static str,
    pub adapter: AdapterReport,
    pub model: ModelReport,
    pub settings: SettingsReport,
    pub peak: Option<PeakReport>,
    pub kernels: Option<KernelsReport>,
    pub latency: Option<LatencyReport>,
    pub eval: Option<EvalReport>,
    pub render: Option<RenderReport>,
    /// Which kernel each conv and dense layer runs in each network measured, and why.
    pub kernel_choices: Vec<KernelChoiceReport>,
    /// The whole viewer while drawing (added after `cnnviz.bench/1` first shipped; older
    /// reports lack the field).
    pub window: Option<WindowReport>,
    /// Each explanation method's time at batch 1 (added with the explanation methods;
    /// older reports lack the field).
    pub explain: Option<super::explain::ExplainReport>,
    /// Anything measured other than asked (e.g. a batch too big for the device).
    pub notes: Vec<String>,
}

impl BenchReport {
    pub fn new(
        adapter: &wgpu::Adapter,
        device: &wgpu::Device,
        model: &Model,
        options: &BenchOptions,
    ) -> Self {
        let info = adapter.get_info();
        let features = device.features();
        let unix_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        BenchReport {
            schema: SCHEMA,
            unix_time,
            date: utc_date(unix_time),
            cnnviz_version: env!("CARGO_PKG_VERSION"),
            adapter: AdapterReport {
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: info.driver.clone(),
                driver_info: info.driver_info.clone(),
                description: crate::gpu::describe_adapter(&info),
                timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
                timestamp_query_inside_passes: features
                    .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
            },
            model: ModelReport {
                name: model.architecture.name.clone(),
                parameters: model.parameter_count(),
                input: model.input_shape().dims(),
                classes: model.num_classes(),
            },
            settings: SettingsReport {
                sections: options.sections.clone(),
                runs: options.runs,
                warmup: options.warmup,
                budget_seconds: options.budget.as_secs_f64(),
                kernel_batches: options.kernel_batches.clone(),
                eval_batches: options.eval_batches.clone(),
                kernels_env: std::env::var("CNNVIZ_KERNELS").ok(),
            },
            peak: None,
            kernels: None,
            latency: None,
            eval: None,
            render: None,
            kernel_choices: Vec::new(),
            window: None,
            explain: None,
            notes: Vec::new(),
        }
    }

    /// The human-readable table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out)
            .expect("writing to a String cannot fail");
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        let a = &self.adapter;
        writeln!(out, "cnnviz bench, {} (UTC)", self.date)?;
        writeln!(out, "adapter: {}", a.description)?;
        writeln!(
            out,
            "timestamp queries: {}; inside passes: {}",
            yes_no(a.timestamp_query),
            yes_no(a.timestamp_query_inside_passes)
        )?;
        writeln!(
            out,
            "model: {} ({} parameters, input {:?})",
            self.model.name, self.model.parameters, self.model.input
        )?;
        if let Some(env) = &self.settings.kernels_env {
            writeln!(out, "CNNVIZ_KERNELS={env}")?;
        }
        for note in &self.notes {
            writeln!(out, "note: {note}")?;
        }
        for choice in &self.kernel_choices {
            writeln!(
                out,
                "kernels of the {}-image network (tuning bucket {}):",
                choice.network_batch, choice.bucket
            )?;
            for layer in &choice.layers {
                writeln!(out, "  {}", layer.describe)?;
            }
        }
        if let Some(p) = &self.peak {
            writeln!(out)?;
            writeln!(out, "peak ({}):", p.method.describe())?;
            writeln!(
                out,
                "  FMA  {:>9.1} GFLOP/s  ({:.0} MFLOP in {:.2} ms, median of {})",
                p.fma_gflops,
                p.fma_flops_per_run as f64 / 1e6,
                p.fma_median_ns / 1e6,
                p.fma_runs
            )?;
            writeln!(
                out,
                "  copy {:>9.1} GB/s     ({:.0} MB in {:.2} ms, median of {})",
                p.copy_gbps,
                p.copy_bytes_per_run as f64 / 1e6,
                p.copy_median_ns / 1e6,
                p.copy_runs
            )?;
        }
        if let Some(k) = &self.kernels {
            for b in &k.batches {
                write_kernels(out, b)?;
            }
        }
        if let Some(l) = &self.latency {
            writeln!(out)?;
            writeln!(
                out,
                "interactive latency (write input, forward, Grad-CAM, value ranges, probabilities on the CPU; wall time):"
            )?;
            writeln!(
                out,
                "  median {:.1} µs   p99 {:.1} µs   mean {:.1} µs   min {:.1} µs   max {:.1} µs   ({} runs after {} warm-up)",
                l.median_us, l.p99_us, l.mean_us, l.min_us, l.max_us, l.runs, l.warmup
            )?;
        }
        if let Some(e) = &self.eval {
            writeln!(out)?;
            writeln!(
                out,
                "eval throughput (write, forward, softmax, read every result back; wall time):"
            )?;
            for b in &e.batches {
                writeln!(
                    out,
                    "  batch {:>5}: {:>9.0} images/s  ({:.2} ms per batch, median of {})",
                    b.batch, b.images_per_second, b.median_ms, b.runs
                )?;
            }
            writeln!(
                out,
                "  best: {:.0} images/s at batch {}",
                e.images_per_second, e.best_batch
            )?;
        }
        if let Some(r) = &self.render {
            writeln!(out)?;
            writeln!(
                out,
                "render {}×{} offscreen ({}, {}× MSAA; wall time, submit + wait):",
                r.width, r.height, r.draw_mode, r.sample_count
            )?;
            writeln!(
                out,
                "  scene only       {:>7.1} fps  ({:.2} ms per frame, median of {})",
                r.scene_fps, r.scene_median_ms, r.runs
            )?;
            writeln!(
                out,
                "  with inference   {:>7.1} fps  ({:.2} ms per frame)",
                r.with_inference_fps, r.with_inference_median_ms
            )?;
        }
        if let Some(w) = &self.window {
            write_window(out, w)?;
        }
        if let Some(e) = &self.explain {
            writeln!(out)?;
            e.write_text(out)?;
        }
        Ok(())
    }
}

fn write_kernels(out: &mut String, b: &KernelBatch) -> std::fmt::Result {
    writeln!(out)?;
    writeln!(
        out,
        "kernels at batch {} ({}; medians of {} runs):",
        b.batch,
        b.method.describe(),
        b.runs
    )?;
    writeln!(
        out,
        "  {:<36} {:>10} {:>10} {:>9} {:>9} {:>8} {:>6} {:>6}",
        "launch", "time µs", "MFLOP", "MB", "GFLOP/s", "GB/s", "%FMA", "%copy"
    )?;
    let opt = |v: Option<f64>, scale: f64, digits: usize| {
        v.map(|v| format!("{:.*}", digits, v * scale))
            .unwrap_or_else(|| "-".to_string())
    };
    for k in &b.kernels {
        writeln!(
            out,
            "  {:<36} {:>10.1} {:>10} {:>9} {:>9} {:>8} {:>6} {:>6}",
            k.label,
            k.median_ns / 1e3,
            opt(k.flops.map(|f| f as f64), 1e-6, 3),
            opt(k.bytes.map(|b| b as f64), 1e-6, 3),
            opt(k.gflops, 1.0, 2),
            opt(k.gbps, 1.0, 2),
            opt(k.fraction_of_fma_peak, 100.0, 1),
            opt(k.fraction_of_copy_peak, 100.0, 1),
        )?;
    }
    writeln!(
        out,
        "  {:<36} {:>10.1}   (wall time of a timed inference: {:.1} µs)",
        "sum of launches",
        b.kernels_total_ns / 1e3,
        b.wall_median_ns / 1e3
    )
}

fn write_window(out: &mut String, w: &WindowReport) -> std::fmt::Result {
    writeln!(out)?;
    writeln!(
        out,
        "window {}×{} while drawing (headless viewer, whole overlay, {:.0} % of frames with an inference):",
        w.width,
        w.height,
        w.inference_fraction * 100.0
    )?;
    writeln!(
        out,
        "  free-running   {:>7.1} fps  ({:.2} ms per frame over {} frames, GPU waited for once at the end)",
        w.free_running_fps, w.free_running_frame_ms, w.free_running_frames
    )?;
    writeln!(
        out,
        "  paced          {:>7.1} fps  ({:.2} ms: CPU {:.2} ms + GPU wait {:.2} ms, medians of {})",
        w.paced_fps, w.paced_frame_ms, w.paced_cpu_ms, w.paced_gpu_wait_ms, w.paced_frames
    )?;
    match w.inference_gpu_ms {
        Some(ms) => writeln!(
            out,
            "  inference on the GPU (kernel timestamps): {ms:.2} ms of each frame's GPU work"
        )?,
        None => writeln!(out, "  inference on the GPU: no timestamps on this adapter")?,
    }
    writeln!(
        out,
        "  scene drawn at {:.0} % of its area's width and height (dynamic resolution, median)",
        w.cpu_split.scene_scale * 100.0
    )?;
    writeln!(out, "  CPU per frame (medians):")?;
    for (part, ms) in w.cpu_split.parts() {
        writeln!(out, "    {part:<22} {ms:>7.2} ms")?;
    }
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `YYYY-MM-DD` of a Unix time (UTC), by the days-to-civil algorithm (no calendar crate
/// needed for one date).
fn utc_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_795_305_600), "2026-11-22");
    }
}

/// The tuner's decisions for one network (see `gpu::tune`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelChoiceReport {
    pub network_batch: u32,
    pub bucket: u32,
    /// The cache file read or written, if any.
    pub cache: Option<String>,
    pub layers: Vec<LayerChoiceReport>,
}

/// One layer's kernel, why (`tuned`, `cached`, `forced`), how it was timed and every
/// candidate's median time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerChoiceReport {
    pub layer: String,
    pub kernel: Option<&'static str>,
    pub reason: &'static str,
    pub method: String,
    pub timings_ns: std::collections::BTreeMap<String, f64>,
    /// One line, as the table prints it.
    pub describe: String,
}

impl KernelChoiceReport {
    pub fn new(network_batch: u32, choice: &crate::gpu::tune::KernelChoice) -> Self {
        KernelChoiceReport {
            network_batch,
            bucket: choice.bucket,
            cache: choice.cache_path.as_ref().map(|p| p.display().to_string()),
            layers: choice
                .decisions
                .iter()
                .map(|d| LayerChoiceReport {
                    layer: d.layer.clone(),
                    kernel: d.kernel_name(),
                    reason: d.reason.name(),
                    method: d.method.clone(),
                    timings_ns: d.timings_ns.clone(),
                    describe: d.describe(),
                })
                .collect(),
        }
    }
}
