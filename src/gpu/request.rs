//! What one inference should compute, and its check against the model before anything is
//! recorded: a bad block, class or batch is an error, never a panic or a bad dispatch.

use super::GpuError;
use super::network::GpuNetwork;

/// Which class's logit Grad-CAM explains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CamTarget {
    /// Each image's own predicted class, found on the GPU (no readback in between).
    #[default]
    Predicted,
    /// The same class for every image of the batch.
    Class(usize),
}

/// What one [`GpuNetwork::encode`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InferenceRequest {
    /// Images already written with [`GpuNetwork::write_inputs`] (1..=max_batch).
    pub batch: u32,
    pub target: CamTarget,
    /// Index into `Model::conv_blocks`; `None` means the last block, Grad-CAM's default.
    /// (An `Option` because a default request cannot know how many blocks a model has.)
    /// An index out of range is an error even when `grad_cam` is off.
    pub block: Option<usize>,
    /// Record the backward pass and the CAM kernels.
    pub grad_cam: bool,
    /// Record the per-activation (min, max) kernel.
    pub value_ranges: bool,
}

impl Default for InferenceRequest {
    fn default() -> Self {
        InferenceRequest {
            batch: 1,
            target: CamTarget::Predicted,
            block: None,
            grad_cam: true,
            value_ranges: true,
        }
    }
}

/// A request checked against the model.
#[derive(Clone, Copy, Debug)]
pub(super) struct Resolved {
    pub batch: u32,
    /// Index into the class table: a class, or `classes` for "predicted".
    pub class_slot: usize,
    /// The target block when Grad-CAM runs.
    pub block: Option<usize>,
    pub value_ranges: bool,
}

impl GpuNetwork {
    pub(super) fn resolve(&self, request: &InferenceRequest) -> Result<Resolved, GpuError> {
        let max_batch = self.max_batch();
        if request.batch == 0 || request.batch > max_batch {
            return Err(GpuError::BadBatch {
                batch: request.batch,
                max_batch,
            });
        }
        let classes = self.num_classes();
        let class_slot = match request.target {
            CamTarget::Predicted => classes,
            CamTarget::Class(c) if c < classes => c,
            CamTarget::Class(class) => return Err(GpuError::BadClass { class, classes }),
        };
        let blocks = self.conv_blocks().len();
        let block = match request.block {
            Some(block) if block >= blocks => return Err(GpuError::BadBlock { block, blocks }),
            Some(block) => Some(block),
            None => blocks.checked_sub(1),
        };
        let block = match (request.grad_cam, block) {
            (false, _) => None,
            (true, None) => return Err(GpuError::NoConvBlock),
            (true, Some(b)) => Some(b),
        };
        Ok(Resolved {
            batch: request.batch,
            class_slot,
            block,
            value_ranges: request.value_ranges,
        })
    }
}
