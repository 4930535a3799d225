//! `cnnviz bench`: per-kernel GPU timings against the adapter's measured peak, interactive
//! latency, eval throughput and render frame rate, as a table or JSON
//! (see `cnnviz::bench::report` for the fields).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use cnnviz::bench::{self, BenchOptions, Gpu, Section};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Model file (.safetensors, or .onnx imported); default: weights/mnist-cnn.safetensors.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Sections to run, comma-separated: peak, kernels, latency, eval, render, window,
    /// explain;
    /// default: all. The kernels' fractions of peak need `peak` too.
    #[arg(long, value_delimiter = ',', value_parser = parse_section)]
    only: Vec<Section>,
    /// Measured runs per figure: latency runs exactly this many; the other figures stop
    /// earlier once --seconds have passed (after a few runs).
    #[arg(long, default_value_t = 500)]
    runs: usize,
    /// Warm-up runs before each figure (cut short after a quarter of --seconds).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Time budget per figure, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Batch sizes of the per-kernel timings, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 64, 1024])]
    batches: Vec<u32>,
    /// Batch sizes tried for eval throughput, comma-separated; the best is reported.
    #[arg(long, value_delimiter = ',', default_values_t = [16u32, 64, 256, 512, 1024])]
    eval_batches: Vec<u32>,
    /// Offscreen frame size of the render and window sections, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720", value_parser = parse_size)]
    render_size: (u32, u32),
    /// Print one JSON object (stable field names, `schema` = "cnnviz.bench/1") instead of
    /// the table.
    #[arg(long)]
    json: bool,
    /// Also write what is printed (table, or JSON with --json) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_section(name: &str) -> Result<Section, String> {
    Section::parse(name).map_err(|e| e.to_string())
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{text}` is not WIDTHxHEIGHT (e.g. 1280x720)");
    let (w, h) = text.split_once(['x', '×']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    Ok((w, h))
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--seconds {} must be a positive number", args.seconds);
    }
    let mut sections = if args.only.is_empty() {
        Section::ALL.to_vec()
    } else {
        args.only.clone()
    };
    sections.sort();
    sections.dedup();
    let options = BenchOptions {
        sections,
        runs: args.runs,
        warmup: args.warmup,
        budget: Duration::from_secs_f64(args.seconds),
        kernel_batches: args.batches.clone(),
        eval_batches: args.eval_batches.clone(),
        render_size: args.render_size,
    };
    options.check()?;
    let (_, model) = super::load(&args.model)?;
    let gpu = super::gpu()?;
    // Progress only for a person watching; scripts get stdout alone, and errors one line.
    let watched = std::io::stderr().is_terminal();
    if watched {
        eprintln!("cnnviz bench on {}", gpu.describe());
    }
    let lent = Gpu {
        adapter: &gpu.adapter,
        device: &gpu.device,
        queue: &gpu.queue,
    };
    let mut progress = |line: &str| {
        if watched {
            eprintln!("  {line}…");
        }
    };
    let report = bench::run(&lent, &model, &options, &mut progress)?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).context("serialising the report")? + "\n"
    } else {
        report.to_text()
    };
    print!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
