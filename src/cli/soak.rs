//! `cnnviz soak`: scripted kiosk visitors for a long time, headless, checking that memory
//! and GPU objects level off (see `cnnviz::app::soak`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cnnviz::app::soak::{SoakOptions, SoakSample, run_soak};
use cnnviz::kiosk::AttractDigits;

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Frames to draw in all (at about 10–20 frames a second on a software adapter).
    #[arg(long, default_value_t = 2000)]
    frames: u64,
    /// Stop after this many seconds even if frames remain (an hour: 3600).
    #[arg(long)]
    seconds: Option<f64>,
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 720)]
    height: u32,
    /// The store visitors fill; default: a new file in the temporary directory, removed
    /// afterwards.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Sample memory and GPU objects every this many frames.
    #[arg(long, default_value_t = 100)]
    sample_every: u64,
    /// Seconds without input before the kiosk resets and starts attract mode.
    #[arg(long, default_value_t = 3.0)]
    idle_seconds: f64,
    /// Seconds of attract mode before the next visitor arrives.
    #[arg(long, default_value_t = 6.0)]
    attract_seconds: f64,
    /// Gallery tiles per dashboard page (each a texture: GPU objects grow with the store
    /// until a page is full).
    #[arg(long, default_value_t = 40)]
    gallery_page_size: usize,
    /// Model file (.safetensors, or .onnx imported); default: weights/mnist-cnn.safetensors.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Print the whole report as JSON at the end.
    #[arg(long)]
    json: bool,
    /// Also write the samples as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
}

pub fn run(args: &SoakArgs) -> anyhow::Result<ExitCode> {
    if args.frames == 0 {
        bail!("--frames must be at least 1");
    }
    for (what, seconds) in [
        ("--idle-seconds", args.idle_seconds),
        ("--attract-seconds", args.attract_seconds),
    ] {
        if !(seconds.is_finite() && (0.1..=3600.0).contains(&seconds)) {
            bail!("{what} {seconds} is outside 0.1..=3600");
        }
    }
    let (_, model) = super::load(&args.model)?;
    let scratch = args.store.is_none();
    let store = args.store.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("cnnviz-soak-{}.redb", std::process::id()))
    });
    let (digits, problem) = AttractDigits::load(&cnnviz::data::default_data_dir());
    if let Some(problem) = problem {
        log::warn!("{problem}");
    }
    let options = SoakOptions {
        frames: args.frames,
        duration: match args.seconds {
            Some(s) if s.is_finite() && s > 0.0 => Some(std::time::Duration::from_secs_f64(s)),
            Some(s) => bail!("--seconds {s} must be a positive number"),
            None => None,
        },
        size: [args.width, args.height],
        store: store.clone(),
        sample_every: args.sample_every,
        idle_seconds: args.idle_seconds,
        attract_seconds: args.attract_seconds,
        digits,
        gallery_page_size: args.gallery_page_size,
    };
    if !args.json {
        println!(
            "{:>8} {:>9} {:>9} {:>11} {:>7} {:>8}  phase",
            "frame", "seconds", "rss MiB", "gpu objects", "stored", "visitors"
        );
    }
    let quiet = args.json;
    let result = run_soak(model, &options, |s: &SoakSample| {
        if !quiet {
            println!(
                "{:>8} {:>9.1} {:>9.1} {:>11} {:>7} {:>8}  {}",
                s.frame,
                s.seconds,
                s.rss_kib as f64 / 1024.0,
                s.gpu_objects,
                s.stored,
                s.visitors,
                s.phase
            );
        }
    });
    if scratch {
        for path in [store.clone(), cnnviz::kiosk::InstanceLock::path_for(&store)] {
            let _ = std::fs::remove_file(path);
        }
    }
    let report = result?;
    if let Some(path) = &args.csv {
        let mut file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        writeln!(
            file,
            "frame,seconds,rss_kib,gpu_objects,stored,visitors,phase"
        )?;
        for s in &report.samples {
            writeln!(
                file,
                "{},{:.2},{},{},{},{},{}",
                s.frame, s.seconds, s.rss_kib, s.gpu_objects, s.stored, s.visitors, s.phase
            )?;
        }
    }
    let v = &report.verdict;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} frames in {:.0} s on {}: {} visitors, {} saved, {} reported, {} re-runs, {} \
             attract cycles",
            report.frames,
            report.seconds,
            report.adapter,
            report.visitors,
            report.saved,
            report.reported,
            report.reruns,
            report.attract_cycles
        );
        let gpu = if v.gpu_judged {
            format!("GPU objects {:+} with the caches full", v.gpu_object_growth)
        } else {
            "GPU objects not judged (the gallery cache was still filling towards its bound; \
             run longer or with a smaller --gallery-page-size)"
                .to_string()
        };
        println!(
            "memory {:+.1} MiB (last quarter vs second), {gpu}: {}",
            v.rss_growth_kib as f64 / 1024.0,
            if v.level { "level" } else { "STILL GROWING" }
        );
    }
    Ok(if v.level {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
