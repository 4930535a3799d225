//! `cnnviz store`: list, stats, check, export and import of the prediction store, and a
//! hidden `save-loop` that the crash test kills again and again.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cnnviz::store::exchange;
use cnnviz::store::{
    DigitFilter, Filter, Kind, PredictionStore, Sort, StoreDone, StoreOptions, StoreWorker,
};

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// Store file; default: $CNNVIZ_STORE, else cnnviz.redb in the platform data directory.
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// If the store file is corrupt or not a cnnviz store, move it aside (to
    /// NAME.corrupt-TIME) and start a fresh store. Without this, such a file is never touched.
    #[arg(long, global = true)]
    reset_corrupt_store: bool,
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum StoreCommand {
    /// List saved predictions, newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Sort order.
        #[arg(long, value_enum, default_value_t = SortArg::Newest)]
        sort: SortArg,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Skip this many first.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Counts: predictions, reports, wrong ones, per digit.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Verify the store: records decode, reports point at predictions, indexes and counts
    /// agree, drawings decode. Exit status 1 if anything is wrong.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Write the selected predictions to DIR as PNGs and a manifest.json.
    Export {
        dir: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many (oldest first).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Merge an export folder into the store; records already present are skipped.
    Import { dir: PathBuf },
    /// Save made-up predictions in a loop through the background writer, printing
    /// "ID CONTENT-ID" for each once it is durably committed (for the crash test).
    #[command(hide = true)]
    SaveLoop {
        /// Stop after this many (default: run until killed).
        #[arg(long)]
        count: Option<u64>,
        /// Seed for the made-up drawings.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct FilterArgs {
    /// all, saved (not reported), reported or wrong (reported as misclassified).
    #[arg(long, value_enum, default_value_t = KindArg::All)]
    kind: KindArg,
    /// Only predictions of this class.
    #[arg(long, conflicts_with = "true_digit")]
    predicted: Option<u16>,
    /// Only predictions reported as this digit.
    #[arg(long = "true", value_parser = clap::value_parser!(u8).range(0..=9))]
    true_digit: Option<u8>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KindArg {
    All,
    Saved,
    Reported,
    Wrong,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SortArg {
    Newest,
    Oldest,
    LeastConfident,
    MostConfident,
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            kind: match self.kind {
                KindArg::All => Kind::All,
                KindArg::Saved => Kind::Saved,
                KindArg::Reported => Kind::Reported,
                KindArg::Wrong => Kind::Wrong,
            },
            digit: match (self.predicted, self.true_digit) {
                (Some(p), _) => DigitFilter::Predicted(p),
                (None, Some(t)) => DigitFilter::True(t),
                (None, None) => DigitFilter::Any,
            },
        }
    }
}

impl SortArg {
    fn sort(self) -> Sort {
        match self {
            SortArg::Newest => Sort::Newest,
            SortArg::Oldest => Sort::Oldest,
            SortArg::LeastConfident => Sort::LeastConfident,
            SortArg::MostConfident => Sort::MostConfident,
        }
    }
}

pub fn run(args: &StoreArgs) -> anyhow::Result<ExitCode> {
    let options = StoreOptions {
        create: true,
        reset_corrupt: args.reset_corrupt_store,
    };
    let store = PredictionStore::open_default(args.store.as_deref(), &options)?;
    if let Some(aside) = store.moved_aside() {
        eprintln!(
            "cnnviz: the corrupt store was moved to {}; started a fresh one",
            aside.display()
        );
    }
    match &args.command {
        StoreCommand::List {
            filter,
            sort,
            limit,
            offset,
            json,
        } => list(
            &store,
            &filter.filter(),
            sort.sort(),
            *offset,
            *limit,
            *json,
        ),
        StoreCommand::Stats { json } => stats(&store, *json),
        StoreCommand::Check { json } => check(&store, *json),
        StoreCommand::Export { dir, filter, limit } => {
            let summary =
                exchange::export(&store, dir, &filter.filter(), limit.unwrap_or(usize::MAX))
                    .with_context(|| format!("exporting to {}", dir.display()))?;
            println!(
                "exported {} predictions ({} reported) to {}",
                summary.predictions,
                summary.reports,
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Import { dir } => {
            let summary = exchange::import(&store, dir)
                .with_context(|| format!("importing {}", dir.display()))?;
            for line in &summary.rejected {
                eprintln!("cnnviz: skipped {line}");
            }
            println!(
                "imported {} new predictions ({} already present), {} reports; {} records skipped",
                summary.added,
                summary.already_present,
                summary.reports_added,
                summary.rejected.len()
            );
            Ok(if summary.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        StoreCommand::SaveLoop { count, seed } => save_loop(store, *count, *seed),
    }
}

fn list(
    store: &PredictionStore,
    filter: &Filter,
    sort: Sort,
    offset: u64,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let page = store.page(filter, sort, offset, limit)?;
    let mut out = std::io::stdout().lock();
    if !json {
        writeln!(
            out,
            "{:>8}  {:<19}  {:>9}  {:>10}  {:>4}",
            "id", "time (UTC)", "predicted", "confidence", "true"
        )?;
    }
    for item in &page.items {
        let s = &item.summary;
        if json {
            let value = serde_json::json!({
                "id": s.id.0,
                "time_ms": s.time_ms,
                "predicted": s.predicted,
                "confidence": s.confidence,
                "true_digit": s.true_digit,
                "wrong": s.is_wrong(),
            });
            writeln!(out, "{value}")?;
        } else {
            writeln!(
                out,
                "{:>8}  {:<19}  {:>9}  {:>9.1}%  {:>4}",
                s.id.0,
                cnnviz::store::utc_text(s.time_ms),
                s.predicted,
                100.0 * s.confidence,
                s.true_digit.map(|t| t.to_string()).unwrap_or_default()
            )?;
        }
    }
    if !json {
        writeln!(
            out,
            "{} of {} shown (from position {})",
            page.items.len(),
            page.total,
            offset
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn stats(store: &PredictionStore, json: bool) -> anyhow::Result<ExitCode> {
    let s = store.stats()?;
    if json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "store: {} ({} bytes, format {})",
        s.path, s.file_bytes, s.format_version
    );
    println!(
        "predictions: {} ({} saved only, {} reported, {} of them wrong)",
        s.predictions, s.saved_only, s.reported, s.wrong
    );
    let row = |counts: &[u64; 10]| {
        counts
            .iter()
            .enumerate()
            .map(|(d, n)| format!("{d}:{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("by predicted digit: {}", row(&s.by_predicted));
    println!("by true digit:      {}", row(&s.by_true));
    Ok(ExitCode::SUCCESS)
}

fn check(store: &PredictionStore, json: bool) -> anyhow::Result<ExitCode> {
    let report = store.check()?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for problem in &report.problems {
            println!("problem: {problem}");
        }
        println!(
            "{}: {} predictions, {} reports, {} index entries checked",
            if report.is_ok() { "ok" } else { "PROBLEMS" },
            report.predictions,
            report.reports,
            report.index_entries
        );
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Saves through [`StoreWorker`] exactly as the window does, and prints each id only after
/// its outcome arrived — that is, after the durable commit. A test kills this process at
/// random moments and then checks every printed id survived.
fn save_loop(store: PredictionStore, count: Option<u64>, seed: u64) -> anyhow::Result<ExitCode> {
    let mut worker = StoreWorker::spawn(store);
    let mut out = std::io::stdout().lock();
    let base = cnnviz::store::now_ms();
    let mut i = 0u64;
    while count.is_none_or(|n| i < n) {
        let prediction =
            cnnviz::store::sample::sample_prediction(seed.wrapping_mul(1_000_003) + i, base + i);
        let ticket = worker.save(prediction);
        let outcome = worker
            .wait(Duration::from_secs(60))
            .context("the store did not answer within a minute")?;
        anyhow::ensure!(outcome.ticket == ticket, "outcome for another ticket");
        match outcome.result? {
            StoreDone::Saved(id) => {
                let content = worker
                    .store()
                    .get(id)?
                    .map(|p| p.content_id.to_string())
                    .unwrap_or_default();
                writeln!(out, "{} {content}", id.0)?;
                out.flush()?;
            }
            other => anyhow::bail!("unexpected outcome {other:?}"),
        }
        i += 1;
    }
    Ok(ExitCode::SUCCESS)
}
