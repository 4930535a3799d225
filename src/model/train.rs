//! Training on the CPU with the project's own code: f32, im2col + `sgemm`, Adam.
//!
//! Each mini-batch is cut into fixed chunks of [`CHUNK`] images that rayon processes in
//! parallel; the chunk gradients are then summed in chunk order. Because the chunking
//! depends only on the batch, never on the thread count, a seed gives bit-identical
//! weights on one thread or sixteen.

mod adam;
mod conv;
mod kernels;
mod network;

use std::time::Instant;

use rayon::prelude::*;

use self::adam::{Adam, cosine_learning_rate};
use self::network::{Network, Workspace};
use super::rng::Rng;
use super::{Architecture, InputSpec, LayerParams, Model, ModelError, Normalization};
use crate::data::Dataset;

/// Images per unit of parallel work. Part of the arithmetic (it fixes the summation
/// order), so changing it changes the trained bits; it does not depend on the machine.
pub const CHUNK: usize = 16;
/// The learning rate ends at this fraction of its peak.
const FINAL_LEARNING_RATE_FRACTION: f32 = 0.01;

// The layer builders and the shipped architecture live in the model module; they are
// re-exported here for callers that still name them through `train`.
pub use super::builders::{conv, default_architecture, dense, maxpool, relu};

/// How to train. The defaults are the committed model's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate of the cosine schedule (Adam).
    pub learning_rate: f32,
    /// Seeds initialisation, shuffling and augmentation; same seed, same bits.
    pub seed: u64,
    /// Each training image is shifted by up to this many pixels in x and y (zero fill), a
    /// fresh draw every epoch. Drawings are centred by centre of mass, which wanders a
    /// pixel or two from MNIST's own centring, so this buys robustness as well as accuracy.
    pub max_shift: usize,
}

impl TrainConfig {
    /// Refuses settings that cannot train (zero epochs, an empty batch, a learning rate
    /// that is not a positive number), before any data is touched.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.epochs == 0 {
            return Err(TrainError::Config("epochs must be at least 1".into()));
        }
        if !(1..=1 << 16).contains(&self.batch_size) {
            return Err(TrainError::Config(format!(
                "batch size {} is outside 1..=65536",
                self.batch_size
            )));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(TrainError::Config(format!(
                "learning rate {} must be finite and positive",
                self.learning_rate
            )));
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 12,
            batch_size: 64,
            learning_rate: 2e-3,
            seed: 1,
            max_shift: 2,
        }
    }
}

/// Progress reports. Epochs and batches count from 1, as shown to people.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainEvent {
    /// After every optimiser step; `loss` is that batch's mean loss.
    Batch {
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f32,
    },
    /// After every epoch; `seconds` is the time spent training it (test evaluation not
    /// included).
    Epoch {
        epoch: usize,
        mean_loss: f32,
        test_accuracy: f32,
        seconds: f32,
    },
}

/// Why training could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("invalid training setting: {0}")]
    Config(String),
    #[error("the {which} set is empty")]
    EmptyDataset { which: &'static str },
    #[error(
        "the {which} set holds {rows}×{cols} images, the architecture expects {height}×{width}"
    )]
    ImageSize {
        which: &'static str,
        rows: usize,
        cols: usize,
        height: usize,
        width: usize,
    },
    #[error(
        "the {which} set has label {label} at item {index}, but the architecture has {classes} classes"
    )]
    LabelOutOfRange {
        which: &'static str,
        index: usize,
        label: u8,
        classes: usize,
    },
    #[error("{what} holds {found} values, expected {expected}")]
    Length {
        what: &'static str,
        found: usize,
        expected: usize,
    },
    #[error(
        "training diverged: the loss became non-finite in epoch {epoch}, batch {batch} (try a lower learning rate)"
    )]
    Diverged { epoch: usize, batch: usize },
}

/// Trains `architecture` from a seeded PyTorch-style initialisation and returns the model
/// of the last epoch. `on_event` hears about every batch and every epoch. Runs on the
/// current rayon pool (wrap the call in `ThreadPool::install` to choose the thread count).
pub fn train(
    architecture: &Architecture,
    config: &TrainConfig,
    train: &Dataset,
    test: &Dataset,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Model, TrainError> {
    config.validate()?;
    check_dataset(architecture, train, "training")?;
    check_dataset(architecture, test, "test")?;
    let mut trainer = Trainer::new(architecture, config, train)?;
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let mean_loss = trainer.epoch(epoch, on_event)?;
        let seconds = started.elapsed().as_secs_f32();
        on_event(&TrainEvent::Epoch {
            epoch,
            mean_loss,
            test_accuracy: evaluate_cpu(&trainer.model()?, test),
            seconds,
        });
    }
    trainer.model()
}

/// Everything that lives across the steps of one training run.
struct Trainer<'a> {
    architecture: &'a Architecture,
    config: &'a TrainConfig,
    net: Network,
    params: Vec<LayerParams>,
    adam: Adam,
    /// One per chunk of a batch, reused every step.
    workspaces: Vec<Workspace>,
    /// The summed batch gradient.
    totals: Vec<LayerParams>,
    inputs: InputMaker<'a>,
    /// Training-set indices in this epoch's order.
    order: Vec<u32>,
    shuffler: Rng,
}

impl<'a> Trainer<'a> {
    fn new(
        architecture: &'a Architecture,
        config: &'a TrainConfig,
        train: &'a Dataset,
    ) -> Result<Self, TrainError> {
        if config.max_shift >= train.rows.min(train.cols) {
            return Err(TrainError::Config(format!(
                "max_shift {} must be smaller than the {}×{} images",
                config.max_shift, train.rows, train.cols
            )));
        }
        let net = Network::new(&architecture.plan()?)?;
        let chunks = config.batch_size.div_ceil(CHUNK);
        Ok(Self {
            architecture,
            config,
            params: initial_params(&net, config.seed),
            adam: Adam::new(net.zero_params()),
            workspaces: (0..chunks).map(|_| Workspace::new(&net, CHUNK)).collect(),
            totals: net.zero_params(),
            inputs: InputMaker::new(
                &architecture.normalization,
                train,
                config.max_shift,
                config.seed,
            ),
            order: (0..train.len() as u32).collect(),
            shuffler: Rng::derive(config.seed, &[SHUFFLE_STREAM]),
            net,
        })
    }

    /// One pass over the shuffled training set; returns the mean loss per image.
    fn epoch(
        &mut self,
        epoch: usize,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<f32, TrainError> {
        let config = self.config;
        let batches = self.order.len().div_ceil(config.batch_size);
        self.shuffler.shuffle(&mut self.order);
        let mut loss_sum = 0.0f64;
        for (b, ids) in self.order.chunks(config.batch_size).enumerate() {
            let batch = Batch {
                ids,
                epoch,
                first_position: b * config.batch_size,
            };
            let loss = batch_gradients(
                &self.net,
                &self.params,
                &self.inputs,
                &batch,
                &mut self.workspaces,
                &mut self.totals,
            );
            if !loss.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    batch: b + 1,
                });
            }
            let lr = cosine_learning_rate(
                config.learning_rate,
                FINAL_LEARNING_RATE_FRACTION,
                (epoch - 1) * batches + b,
                config.epochs * batches,
            );
            self.adam.step(&mut self.params, &self.totals, lr);
            loss_sum += loss * ids.len() as f64;
            on_event(&TrainEvent::Batch {
                epoch,
                batch: b + 1,
                batches,
                loss: loss as f32,
            });
        }
        Ok((loss_sum / self.order.len() as f64) as f32)
    }

    /// The current weights as a validated model.
    fn model(&self) -> Result<Model, TrainError> {
        Ok(Model::from_parts(
            self.architecture.clone(),
            self.params.clone(),
        )?)
    }
}

/// Stream id of the epoch shuffles, apart from initialisation and augmentation streams.
const SHUFFLE_STREAM: u64 = 1;
const INIT_STREAM: u64 = 2;
const AUGMENT_STREAM: u64 = 3;

/// Checks that `data` fits the architecture: non-empty, the input's image size, and every
/// label a valid class. [`evaluate_cpu`] relies on the size check having passed.
pub fn check_dataset(
    architecture: &Architecture,
    data: &Dataset,
    which: &'static str,
) -> Result<(), TrainError> {
    let InputSpec { height, width, .. } = architecture.input;
    if data.is_empty() {
        return Err(TrainError::EmptyDataset { which });
    }
    if data.rows != height || data.cols != width || data.images.len() != data.len() * height * width
    {
        return Err(TrainError::ImageSize {
            which,
            rows: data.rows,
            cols: data.cols,
            height,
            width,
        });
    }
    let classes = architecture.classes.len();
    if let Some(index) = data.labels.iter().position(|&l| usize::from(l) >= classes) {
        return Err(TrainError::LabelOutOfRange {
            which,
            index,
            label: data.labels[index],
            classes,
        });
    }
    Ok(())
}

/// PyTorch's default for `Conv2d` and `Linear` (kaiming-uniform with a = √5): weights and
/// biases uniform in ±1/√fan_in, drawn layer by layer, weights before biases.
fn initial_params(net: &Network, seed: u64) -> Vec<LayerParams> {
    let mut rng = Rng::derive(seed, &[INIT_STREAM]);
    let mut params = net.zero_params();
    for (p, fan_in) in params.iter_mut().zip(net.fan_ins()) {
        let bound = 1.0 / (fan_in as f32).sqrt();
        for v in p.weight.iter_mut().chain(p.bias.iter_mut()) {
            *v = rng.uniform(-bound, bound);
        }
    }
    params
}

/// One mini-batch: which images, and where they sit in the epoch (for augmentation seeds).
struct Batch<'a> {
    ids: &'a [u32],
    epoch: usize,
    first_position: usize,
}

/// Turns dataset bytes into normalised network input, with optional random shifts.
struct InputMaker<'a> {
    data: &'a Dataset,
    /// `(byte / 255 − mean) / std` for every byte value: the same arithmetic as
    /// [`Model::normalize`], computed once.
    table: [f32; 256],
    max_shift: usize,
    seed: u64,
}

impl<'a> InputMaker<'a> {
    fn new(normalization: &Normalization, data: &'a Dataset, max_shift: usize, seed: u64) -> Self {
        // The trainer's data is grey: channel 0's normalisation.
        let (mean, std) = normalization.of_channel(0);
        let mut table = [0.0f32; 256];
        for (v, t) in table.iter_mut().enumerate() {
            *t = (v as f32 / 255.0 - mean) / std;
        }
        Self {
            data,
            table,
            max_shift,
            seed,
        }
    }

    /// Writes image `id` into `out`; `key` picks its shift (`None`: no shift).
    fn write(&self, id: usize, key: Option<[u64; 2]>, out: &mut [f32]) {
        let image = self.data.image(id);
        let (dx, dy) = match key {
            Some(key) if self.max_shift > 0 => {
                let mut rng = Rng::derive(self.seed, &[AUGMENT_STREAM, key[0], key[1]]);
                let span = 2 * self.max_shift as u64 + 1;
                let shift = self.max_shift as isize;
                (
                    rng.below(span) as isize - shift,
                    rng.below(span) as isize - shift,
                )
            }
            _ => (0, 0),
        };
        let (rows, cols) = (self.data.rows as isize, self.data.cols as isize);
        let background = self.table[0];
        for y in 0..rows {
            for x in 0..cols {
                let (sy, sx) = (y - dy, x - dx);
                let inside = (0..rows).contains(&sy) && (0..cols).contains(&sx);
                out[(y * cols + x) as usize] = if inside {
                    self.table[usize::from(image[(sy * cols + sx) as usize])]
                } else {
                    background
                };
            }
        }
    }
}

/// Computes the mean loss of a batch and leaves its mean gradient in `totals`. Chunks run
/// in parallel; their gradients are summed in chunk order, so the result is the same for
/// any thread count.
fn batch_gradients(
    net: &Network,
    params: &[LayerParams],
    inputs: &InputMaker<'_>,
    batch: &Batch<'_>,
    workspaces: &mut [Workspace],
    totals: &mut [LayerParams],
) -> f64 {
    let scale = 1.0 / batch.ids.len() as f32;
    let input_len = net.input_len();
    let losses: Vec<f64> = workspaces
        .par_iter_mut()
        .zip(batch.ids.par_chunks(CHUNK))
        .enumerate()
        .map(|(c, (ws, ids))| {
            let labels: Vec<u8> = ids
                .iter()
                .map(|&i| inputs.data.labels[i as usize])
                .collect();
            for (k, (&id, out)) in ids
                .iter()
                .zip(ws.input_mut().chunks_exact_mut(input_len))
                .enumerate()
            {
                let position = (batch.first_position + c * CHUNK + k) as u64;
                inputs.write(id as usize, Some([batch.epoch as u64, position]), out);
            }
            ws.zero_grads();
            net.forward_backward(params, ws, &labels, scale, false)
        })
        .collect();
    let used = batch.ids.len().div_ceil(CHUNK);
    for (t, g) in totals.iter_mut().zip(&workspaces[0].grads) {
        t.weight.copy_from_slice(&g.weight);
        t.bias.copy_from_slice(&g.bias);
    }
    for ws in &workspaces[1..used] {
        for (t, g) in totals.iter_mut().zip(&ws.grads) {
            add(&mut t.weight, &g.weight);
            add(&mut t.bias, &g.bias);
        }
    }
    losses.iter().sum::<f64>() * f64::from(scale)
}

fn add(into: &mut [f32], from: &[f32]) {
    for (a, &b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

/// Top-1 accuracy (0..1) of `model` on `data`, in f32 on the CPU, in parallel. The
/// independent check of the GPU path. Items whose label is not a class count as wrong.
///
/// # Panics
/// If the images are not the model's input size; [`check_dataset`] tells beforehand.
pub fn evaluate_cpu(model: &Model, data: &Dataset) -> f32 {
    let InputSpec { height, width, .. } = model.architecture.input;
    assert!(
        data.rows == height && data.cols == width,
        "evaluate_cpu: {}×{} images for a {height}×{width} model (call check_dataset first)",
        data.rows,
        data.cols
    );
    if data.is_empty() {
        return 0.0;
    }
    // Only the trainer calls this, with the architecture it trained.
    let net = Network::new(&plans_of(model)).expect("the trainer's own architecture");
    let params = params_of(model);
    let inputs = InputMaker::new(&model.architecture.normalization, data, 0, 0);
    let classes = net.classes();
    let ids: Vec<u32> = (0..data.len() as u32).collect();
    let correct: usize = ids
        .par_chunks(CHUNK)
        .map_init(
            || Workspace::new(&net, CHUNK),
            |ws, ids| {
                for (&id, out) in ids
                    .iter()
                    .zip(ws.input_mut().chunks_exact_mut(net.input_len()))
                {
                    inputs.write(id as usize, None, out);
                }
                net.forward(&params, ws, ids.len());
                ids.iter()
                    .zip(ws.logits().chunks_exact(classes))
                    .filter(|&(&id, row)| {
                        kernels::argmax(row) == usize::from(data.labels[id as usize])
                    })
                    .count()
            },
        )
        .sum();
    correct as f32 / data.len() as f32
}

fn plans_of(model: &Model) -> Vec<super::LayerPlan> {
    model.layers.iter().map(|l| l.plan.clone()).collect()
}

fn params_of(model: &Model) -> Vec<LayerParams> {
    model
        .layers
        .iter()
        .filter_map(|l| l.params.clone())
        .collect()
}

/// Loss and gradients of a batch, for checking the backward pass against finite
/// differences and for tools that need input gradients (saliency).
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    /// Mean softmax cross-entropy over the batch.
    pub loss: f64,
    /// d loss / d parameters, one entry per conv/dense layer, shaped like the parameters.
    pub params: Vec<LayerParams>,
    /// d loss / d input, shaped like `inputs`.
    pub input: Vec<f32>,
}

/// Forward and backward of `model` on already-normalised `inputs` (image after image)
/// against `labels`, in one sequential chunk.
pub fn gradients(model: &Model, inputs: &[f32], labels: &[u8]) -> Result<Gradients, TrainError> {
    let net = Network::new(&plans_of(model))?;
    let input_len = net.input_len();
    if inputs.len() != labels.len() * input_len {
        return Err(TrainError::Length {
            what: "inputs",
            found: inputs.len(),
            expected: labels.len() * input_len,
        });
    }
    if let Some(index) = labels.iter().position(|&l| usize::from(l) >= net.classes()) {
        return Err(TrainError::LabelOutOfRange {
            which: "gradient",
            index,
            label: labels[index],
            classes: net.classes(),
        });
    }
    let n = labels.len();
    let mut ws = Workspace::new(&net, n.max(1));
    ws.input_mut()[..inputs.len()].copy_from_slice(inputs);
    let scale = 1.0 / n.max(1) as f32;
    let loss = net.forward_backward(&params_of(model), &mut ws, labels, scale, true);
    Ok(Gradients {
        loss: loss * f64::from(scale),
        input: ws.input_grad(n, input_len).to_vec(),
        params: ws.grads,
    })
}
