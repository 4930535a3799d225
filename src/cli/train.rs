//! `cnnviz train`: trains the default architecture on MNIST on the CPU and writes the
//! model file the rest of the program loads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cnnviz::data::{Dataset, Split, default_data_dir, load_mnist};
use cnnviz::model::save_model;
use cnnviz::model::train::{TrainConfig, TrainEvent, default_architecture, train};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Folder with the four MNIST IDX files (gzipped or not).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data: PathBuf,
    /// Where to write the trained model (.safetensors).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "weights/mnist-cnn.safetensors"
    )]
    pub out: PathBuf,
    /// Passes over the 60 000 training images.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: usize,
    /// Images per optimiser step.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    pub batch_size: usize,
    /// Peak learning rate (Adam, cosine schedule down to 1 % of it).
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    pub lr: f32,
    /// Seeds initialisation, shuffling and augmentation: same seed, same weights.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// Random shift of training images, in pixels (0 turns augmentation off).
    #[arg(long, default_value_t = TrainConfig::default().max_shift)]
    pub max_shift: usize,
    /// Worker threads; default: all cores. The result does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = args.threads {
        anyhow::ensure!(threads > 0, "--threads must be at least 1");
        pool = pool.num_threads(threads);
    }
    let pool = pool.build().context("starting the worker threads")?;
    pool.install(|| train_and_save(args, pool.current_num_threads()))
}

fn train_and_save(args: &TrainArgs, threads: usize) -> anyhow::Result<()> {
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        seed: args.seed,
        max_shift: args.max_shift,
    };
    config.validate()?;
    let (train_set, test_set) = load_data(&args.data)?;
    let architecture = default_architecture();
    println!(
        "training {} on {} images ({} test), {} epochs, batch {}, lr {}, seed {}, {} threads",
        architecture.name,
        train_set.len(),
        test_set.len(),
        config.epochs,
        config.batch_size,
        config.learning_rate,
        config.seed,
        threads
    );
    let started = Instant::now();
    let mut progress = Progress::new(config.epochs);
    let model = train(
        &architecture,
        &config,
        &train_set,
        &test_set,
        &mut |event| progress.show(event),
    )
    .context("training")?;
    progress.bar.finish_and_clear();
    println!(
        "total training time {:.1} s",
        started.elapsed().as_secs_f32()
    );
    write_model(&model, &args.out)?;
    println!(
        "wrote {} ({} parameters)",
        args.out.display(),
        model.parameter_count()
    );
    Ok(())
}

fn load_data(dir: &Path) -> anyhow::Result<(Dataset, Dataset)> {
    let load = |split, name| {
        load_mnist(dir, split)
            .with_context(|| format!("loading the MNIST {name} set from {}", dir.display()))
    };
    Ok((load(Split::Train, "training")?, load(Split::Test, "test")?))
}

fn write_model(model: &cnnviz::model::Model, path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    save_model(model, path).with_context(|| format!("writing {}", path.display()))
}

/// One progress bar per epoch with the running mean loss; a summary line per epoch.
struct Progress {
    bar: ProgressBar,
    epochs: usize,
    loss_sum: f64,
}

impl Progress {
    fn new(epochs: usize) -> Self {
        Self {
            bar: ProgressBar::hidden(),
            epochs,
            loss_sum: 0.0,
        }
    }

    fn show(&mut self, event: &TrainEvent) {
        match *event {
            TrainEvent::Batch {
                epoch,
                batch,
                batches,
                loss,
            } => {
                if batch == 1 {
                    self.start_epoch(epoch, batches);
                }
                self.loss_sum += f64::from(loss);
                self.bar.set_position(batch as u64);
                self.bar
                    .set_message(format!("loss {:.4}", self.loss_sum / batch as f64));
            }
            TrainEvent::Epoch {
                epoch,
                mean_loss,
                test_accuracy,
                seconds,
            } => {
                self.bar.finish_and_clear();
                println!(
                    "epoch {epoch:>2}/{}: mean loss {mean_loss:.4}, test accuracy {:.2} %, {seconds:.1} s",
                    self.epochs,
                    100.0 * test_accuracy
                );
            }
        }
    }

    fn start_epoch(&mut self, epoch: usize, batches: usize) {
        self.loss_sum = 0.0;
        self.bar = ProgressBar::new(batches as u64);
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} batches, {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar
            .set_prefix(format!("epoch {epoch}/{}", self.epochs));
    }
}
