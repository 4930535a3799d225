//! The inspector's one readback: on a click (and after each new inference while the
//! inspector is open) the window copies the clicked unit's source activation for image 0
//! out of the arena into an [`AsyncReadback`], tagged with the input generation and the
//! unit, and turns it into [`super::UnitArithmetic`] when it arrives — never per frame,
//! never waiting.

use super::{InspectError, UnitArithmetic, source_activation, unit_arithmetic};
use crate::gpu::{AsyncReadback, GpuError, GpuNetwork};
use crate::model::Model;

/// What a copy was recorded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitTag {
    /// The input generation whose inference the copy follows.
    pub generation: u64,
    pub activation: usize,
    pub element: usize,
    /// Also copy the unit's Grad-CAM gradient (the network ran Grad-CAM with a target at
    /// or below this activation, so the gradient arena holds it).
    pub gradient: bool,
}

/// An inspected unit's arithmetic, for the input generation it was read for.
#[derive(Clone, Debug, PartialEq)]
pub struct InspectedUnit {
    pub tag: UnitTag,
    pub arithmetic: UnitArithmetic,
    /// d logit / d unit for the explained class, when the tag asked for it.
    pub gradient: Option<f32>,
}

pub struct UnitReadback {
    readback: AsyncReadback<UnitTag>,
}

impl UnitReadback {
    /// A readback big enough for any activation of `network`'s image 0.
    pub fn new(device: &wgpu::Device, network: &GpuNetwork) -> UnitReadback {
        let largest = network
            .layout()
            .slots
            .iter()
            .map(|s| s.len)
            .max()
            .unwrap_or(1);
        // The source activation, then one float of gradient.
        UnitReadback {
            readback: AsyncReadback::new(device, "inspected unit", ((largest + 1) * 4) as u64),
        }
    }

    /// Records the copy of the source activation of `tag`'s unit after the inference in
    /// the same encoder. `Ok(false)` when the unit needs no source (the input image) or the
    /// previous copy is still out (try again next frame).
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        network: &GpuNetwork,
        model: &Model,
        tag: UnitTag,
    ) -> Result<bool, GpuError> {
        let Some(source) = source_activation(model, tag.activation) else {
            return Ok(false);
        };
        let layout = network.layout();
        let Some(slot) = layout.slots.get(source) else {
            return Ok(false);
        };
        let bytes = (slot.len * 4) as u64;
        let gradient = tag.gradient && tag.activation < layout.slots.len();
        let total = bytes + if gradient { 4 } else { 0 };
        let Ok(buffer) = self.readback.begin(tag, total) else {
            return Ok(false);
        };
        let offset = layout.image_offset(source, 0) * 4;
        encoder.copy_buffer_to_buffer(network.activation_buffer(), offset, buffer, 0, bytes);
        if gradient {
            let at = (layout.image_offset(tag.activation, 0) + tag.element as u64) * 4;
            encoder.copy_buffer_to_buffer(network.gradient_buffer(), at, buffer, bytes, 4);
        }
        Ok(true)
    }

    /// A copy is recorded and not yet taken.
    pub fn in_flight(&self) -> bool {
        self.readback.in_flight()
    }

    /// Starts mapping after the submission that holds the copy.
    pub fn start_map(&self) {
        self.readback.start_map();
    }

    /// The unit's arithmetic once its copy is back, else `None`.
    pub fn try_take(
        &self,
        model: &Model,
    ) -> Result<Option<Result<InspectedUnit, InspectError>>, GpuError> {
        Ok(self.readback.try_take()?.map(|(tag, bytes)| {
            let mut source: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
            let gradient = if tag.gradient { source.pop() } else { None };
            unit_arithmetic(model, tag.activation, tag.element, &source).map(|arithmetic| {
                InspectedUnit {
                    tag,
                    arithmetic,
                    gradient,
                }
            })
        }))
    }
}
