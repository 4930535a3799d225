//! The channel explorer's state in the viewer: which conv channel is open, which statistic
//! ranks its examples, and those examples built once from the survey (per statistic).

use crate::app::survey_worker::{SurveyData, SurveyStatus};
use crate::model::{ConvBlock, LayerOp, Model};
use crate::survey::{Statistic, sheet};
use crate::ui::channel_panel::ChannelExample;

/// Top examples shown per channel.
const TOP: usize = 9;

pub(super) struct ChannelState {
    pub block: usize,
    pub channel: usize,
    pub statistic: Statistic,
    pub title: String,
    /// The channel's kernel, `in_channels × k × k`.
    pub weights: Vec<f32>,
    pub kernel: usize,
    /// Built from the survey for `statistic`, once it is ready.
    examples: Option<(Statistic, Vec<ChannelExample>)>,
}

impl ChannelState {
    /// `None` for a block or channel the model does not have.
    pub fn open(
        model: &Model,
        blocks: &[ConvBlock],
        block: usize,
        channel: usize,
    ) -> Option<ChannelState> {
        let b = blocks.get(block)?;
        if channel >= b.channels {
            return None;
        }
        let layer = model.layers.get(b.conv_layer)?;
        let LayerOp::Conv2d(g) = layer.plan.op else {
            return None;
        };
        let per = g.in_channels * g.kernel * g.kernel;
        let weights = layer
            .params
            .as_ref()?
            .weight
            .get(channel * per..(channel + 1) * per)?
            .to_vec();
        Some(ChannelState {
            block,
            channel,
            statistic: Statistic::Max,
            title: format!("{} · channel {channel}", b.name),
            weights,
            kernel: g.kernel,
            examples: None,
        })
    }

    /// Builds the examples for the current statistic once the survey is ready.
    pub fn refresh(&mut self, model: &Model, blocks: &[ConvBlock], survey: &SurveyStatus) {
        if self
            .examples
            .as_ref()
            .is_some_and(|(s, _)| *s == self.statistic)
        {
            return;
        }
        if let SurveyStatus::Ready(data) = survey {
            self.examples = Some((self.statistic, self.build(model, blocks, data)));
        }
    }

    fn build(&self, model: &Model, blocks: &[ConvBlock], data: &SurveyData) -> Vec<ChannelExample> {
        let activation = blocks[self.block].output_layer + 1;
        data.survey
            .top_examples(self.block, self.channel, self.statistic, TOP)
            .into_iter()
            .map(|e| ChannelExample {
                image: e.image,
                pixels: data.data.image(e.image).to_vec(),
                side: data.data.cols,
                label: model
                    .architecture
                    .classes
                    .get(usize::from(data.data.labels[e.image]))
                    .cloned()
                    .unwrap_or_default(),
                value: e.value,
                region: sheet::input_region(model, activation, self.channel, e.at)
                    .map(|(rows, cols)| ([rows.start, rows.end], [cols.start, cols.end])),
            })
            .collect()
    }

    /// The test images shown as examples (for scripted checks), once built.
    pub fn shown_images(&self) -> Option<Vec<usize>> {
        self.examples
            .as_ref()
            .filter(|(s, _)| *s == self.statistic)
            .map(|(_, e)| e.iter().map(|e| e.image).collect())
    }

    /// The examples to show, or what to say instead.
    pub fn examples<'a>(
        &'a self,
        survey: Option<&SurveyStatus>,
        note: &'a mut String,
    ) -> Result<&'a [ChannelExample], &'a str> {
        if let Some((_, examples)) = self.examples.as_ref().filter(|(s, _)| *s == self.statistic) {
            return Ok(examples);
        }
        *note = match survey {
            Some(SurveyStatus::Running { done, total }) => {
                format!("Computing… {done}/{total} test digits")
            }
            Some(SurveyStatus::Failed(why)) => why.clone(),
            _ => "Computing…".to_string(),
        };
        Err(note.as_str())
    }
}
