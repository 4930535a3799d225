//! The test-set survey: one batched GPU pass of a model over a labelled data set (the
//! 10k MNIST test images) that keeps, per image, the prediction and, per conv channel, the
//! maximum (and where it is) and the mean of the channel's output. From it come the
//! confusion matrix of the "where the model fails" view and each channel's top examples;
//! it is cached per model and data set (`cache`), so the window and `cnnviz channels`
//! compute it once.

pub mod cache;
mod gpu;
pub mod sheet;

use sha2::{Digest, Sha256};

use crate::data::Dataset;
use crate::gpu::tune::tuned_network;
use crate::gpu::{GpuError, InferenceRequest, NetworkOptions, wait};
use crate::model::{ConvBlock, Model};
use gpu::{ChannelStatsPass, STATS_PER_CHANNEL};

/// Images per GPU submission (what `cnnviz eval` uses, so the kernels match its choice).
pub const SURVEY_BATCH: u32 = 500;

/// Per (image, channel) of one conv block's output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelStat {
    pub max: f32,
    /// Index of the (first) maximum in the channel's plane, row-major.
    pub argmax: u32,
    pub mean: f32,
}

/// One conv block's statistics over every image.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSurvey {
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `[image][channel]`, image-major.
    pub stats: Vec<ChannelStat>,
}

/// Which statistic ranks a channel's examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Statistic {
    /// The strongest single response anywhere in the image.
    #[default]
    Max,
    /// The mean response over the whole map.
    Mean,
}

/// One of a channel's top examples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TopExample {
    /// Index into the data set.
    pub image: usize,
    pub value: f32,
    /// Row and column of the channel's maximum in this image (block resolution).
    pub at: (usize, usize),
}

/// The survey of one model over one data set.
#[derive(Clone, Debug, PartialEq)]
pub struct Survey {
    pub model_hash: String,
    pub data_hash: String,
    pub classes: usize,
    pub labels: Vec<u8>,
    pub predicted: Vec<u8>,
    pub blocks: Vec<BlockSurvey>,
}

#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(
        "the test-set views run the data set's {data_h}×{data_w} grey digits, and this model \
         takes {model_c}×{model_h}×{model_w} inputs: they are only available for {data_h}×{data_w} models"
    )]
    Size {
        model_c: usize,
        model_h: usize,
        model_w: usize,
        data_h: usize,
        data_w: usize,
    },
    #[error("label {label} of image {image} is not a class of the model ({classes} classes)")]
    Label {
        image: usize,
        label: u8,
        classes: usize,
    },
    #[error("the data set is empty")]
    Empty,
    #[error("the survey was cancelled")]
    Cancelled,
    #[error("the model has more than 256 classes; the survey stores classes as bytes")]
    TooManyClasses,
}

/// A short hash of a data set's labels and pixels: the survey cache's key.
pub fn data_hash(data: &Dataset) -> String {
    let mut hasher = Sha256::new();
    hasher.update((data.rows as u64).to_le_bytes());
    hasher.update((data.cols as u64).to_le_bytes());
    hasher.update(&data.labels);
    hasher.update(&data.images);
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Survey {
    /// Runs `model` over every image of `data` on the GPU: predictions and channel
    /// statistics, `SURVEY_BATCH` images per submission. `progress` gets the number of
    /// images done after each batch and answers whether to go on ([`SurveyError::Cancelled`]
    /// when it says no: a window closing stops the survey between batches).
    pub fn compute(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        model: &Model,
        data: &Dataset,
        mut progress: impl FnMut(usize) -> bool,
    ) -> Result<Survey, SurveyError> {
        let input = model.architecture.input;
        // A 3-channel model of the digits' size sees each grey digit in R, G and B, as
        // the window feeds it drawings.
        if (data.rows, data.cols) != (input.height, input.width) {
            return Err(SurveyError::Size {
                model_c: input.channels,
                model_h: input.height,
                model_w: input.width,
                data_h: data.rows,
                data_w: data.cols,
            });
        }
        if data.is_empty() {
            return Err(SurveyError::Empty);
        }
        let classes = model.num_classes();
        if classes > 256 {
            return Err(SurveyError::TooManyClasses);
        }
        if let Some((image, &label)) = data
            .labels
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= classes)
        {
            return Err(SurveyError::Label {
                image,
                label,
                classes,
            });
        }
        let batch = SURVEY_BATCH.min(data.len() as u32);
        let (network, _) = tuned_network(device, queue, model, batch, &NetworkOptions::default())?;
        let blocks = model.conv_blocks();
        let pass = ChannelStatsPass::new(device, &network, &blocks);
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("channel stats readback"),
            size: (pass.floats.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let request = InferenceRequest {
            grad_cam: false,
            value_ranges: false,
            ..InferenceRequest::default()
        };
        let mut predicted = Vec::with_capacity(data.len());
        let mut surveys: Vec<BlockSurvey> = blocks.iter().map(empty_block).collect();
        let indices: Vec<usize> = (0..data.len()).collect();
        for chunk in indices.chunks(batch as usize) {
            let pixels: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| {
                    let grey: Vec<f32> = data
                        .image(i)
                        .iter()
                        .map(|&p| f32::from(p) / 255.0)
                        .collect();
                    crate::data::model_input::replicate(&grey, input.channels)
                })
                .collect();
            let images = chunk.len() as u32;
            let output = network.run_blocking(
                device,
                queue,
                &model.normalize(&pixels),
                &InferenceRequest {
                    batch: images,
                    ..request
                },
            )?;
            predicted.extend(output.images.iter().map(|o| o.predicted as u8));
            // The arena still holds this batch: reduce its channels and read them back.
            let mut encoder = device.create_command_encoder(&Default::default());
            pass.encode(&mut encoder, images);
            encoder.copy_buffer_to_buffer(&pass.stats, 0, &staging, 0, (pass.floats * 4) as u64);
            queue.submit([encoder.finish()]);
            let bytes = wait::map_read(device, &staging, 0..(pass.floats * 4) as u64)?;
            let floats: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
            for (survey, &offset) in surveys.iter_mut().zip(&pass.block_offsets) {
                let len = images as usize * survey.channels * STATS_PER_CHANNEL;
                survey.stats.extend(
                    floats[offset..offset + len]
                        .chunks_exact(STATS_PER_CHANNEL)
                        .map(|s| ChannelStat {
                            max: s[0],
                            argmax: s[1] as u32,
                            mean: s[2],
                        }),
                );
            }
            if !progress(predicted.len()) {
                return Err(SurveyError::Cancelled);
            }
        }
        Ok(Survey {
            model_hash: crate::gpu::tune::key::model_hash(model),
            data_hash: data_hash(data),
            classes,
            labels: data.labels.clone(),
            predicted,
            blocks: surveys,
        })
    }

    pub fn images(&self) -> usize {
        self.labels.len()
    }

    /// `confusion[truth][predicted]`, as `cnnviz eval` prints it.
    pub fn confusion(&self) -> Vec<Vec<usize>> {
        confusion_matrix(
            self.classes,
            self.labels
                .iter()
                .zip(&self.predicted)
                .map(|(&t, &p)| (usize::from(t), usize::from(p))),
        )
    }

    /// Images whose label is `truth` and prediction `predicted`, in data-set order.
    pub fn cell(&self, truth: usize, predicted: usize) -> Vec<usize> {
        (0..self.images())
            .filter(|&i| {
                usize::from(self.labels[i]) == truth && usize::from(self.predicted[i]) == predicted
            })
            .collect()
    }

    /// The `k` images that excite `channel` of conv block `block` most by `statistic`,
    /// strongest first (ties: lower image index). Empty for a block or channel that does
    /// not exist.
    pub fn top_examples(
        &self,
        block: usize,
        channel: usize,
        statistic: Statistic,
        k: usize,
    ) -> Vec<TopExample> {
        let Some(b) = self.blocks.get(block) else {
            return Vec::new();
        };
        if channel >= b.channels {
            return Vec::new();
        }
        let mut ranked: Vec<TopExample> = (0..self.images())
            .map(|image| {
                let s = b.stats[image * b.channels + channel];
                let argmax = s.argmax as usize;
                TopExample {
                    image,
                    value: match statistic {
                        Statistic::Max => s.max,
                        Statistic::Mean => s.mean,
                    },
                    at: (argmax / b.width.max(1), argmax % b.width.max(1)),
                }
            })
            .collect();
        ranked.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.image.cmp(&b.image)));
        ranked.truncate(k);
        ranked
    }
}

/// `confusion[truth][predicted]` counts of `(truth, predicted)` pairs; pairs outside the
/// classes are skipped (a store record of another model, say).
pub fn confusion_matrix(
    classes: usize,
    pairs: impl IntoIterator<Item = (usize, usize)>,
) -> Vec<Vec<usize>> {
    let mut matrix = vec![vec![0usize; classes]; classes];
    for (truth, predicted) in pairs {
        if truth < classes && predicted < classes {
            matrix[truth][predicted] += 1;
        }
    }
    matrix
}

fn empty_block(block: &ConvBlock) -> BlockSurvey {
    BlockSurvey {
        name: block.name.clone(),
        channels: block.channels,
        height: block.height,
        width: block.width,
        stats: Vec::new(),
    }
}

/// Where a survey came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Read from this cache file.
    Cached(std::path::PathBuf),
    /// Computed now (and saved where the path says, when saving worked).
    Computed(Option<std::path::PathBuf>),
}

impl Survey {
    /// The cached survey of `model` over `data` when `cache_dir` has it, else
    /// [`Survey::compute`] and save it there (`None`: no cache). Callers pass
    /// `gpu::tune::cache::cache_dir()`. A cache that cannot be read or written is logged
    /// and skipped: the survey is still right, only slower next time.
    pub fn load_or_compute(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        model: &Model,
        data: &Dataset,
        cache_dir: Option<&std::path::Path>,
        progress: impl FnMut(usize) -> bool,
    ) -> Result<(Survey, Origin), SurveyError> {
        let model_hash = crate::gpu::tune::key::model_hash(model);
        let data_hash = data_hash(data);
        let path = cache_dir.map(|dir| cache::survey_path(dir, &model_hash, &data_hash));
        if let Some(path) = &path {
            let shapes: Vec<_> = model
                .conv_blocks()
                .iter()
                .map(|b| (b.name.clone(), b.channels, b.height, b.width))
                .collect();
            match cache::load(path, &model_hash, &data_hash, data.len(), &shapes) {
                Ok(Some(survey)) => return Ok((survey, Origin::Cached(path.clone()))),
                Ok(None) => {}
                Err(why) => log::warn!("survey cache ignored: {why}"),
            }
        }
        let survey = Survey::compute(device, queue, model, data, progress)?;
        let saved = path.filter(|path| match cache::save(path, &survey) {
            Ok(()) => true,
            Err(why) => {
                log::warn!("survey cache not written: {why}");
                false
            }
        });
        Ok((survey, Origin::Computed(saved)))
    }
}
