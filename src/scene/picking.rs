//! Which cube is under the cursor, and what feeds it.
//!
//! - [`SceneLayout::pick`]: a CPU ray cast against the boards. They are axis-aligned slabs
//!   on the ground plane, so the hit is analytic: the ray meets `y = 0`, and the cell under
//!   that point is the pick (the whole cell, gaps included, so hovering never flickers
//!   between cubes). Cube heights live on the GPU; a caller that knows them (normalised
//!   values) can pass them to [`SceneLayout::pick_ray_with`] to hit tall cubes by their
//!   sides and tops instead of their footprint.
//! - [`receptive_field`]: for a conv/relu/pool cell, the cells of every earlier activation
//!   that influence it, from kernel, stride and padding back through the chain.
//! - [`strongest_inputs`]: for a dense (or dense + relu) cell, the top-k incoming weights
//!   by magnitude, from the model's CPU copy of the weights.
//! - [`influence`] turns either into a [`HighlightSet`] for the renderer.
//! - [`ValueReadback`]: the hovered value, four bytes copied out of the arena and mapped
//!   asynchronously, so hovering never stalls a frame.

use std::ops::Range;

use glam::Vec3;

use super::SceneError;
use super::camera::{Camera, Ray};
use super::cube_renderer::HighlightSet;
use super::layout::{CUBE_FOOTPRINT, LayerPlacement, SceneLayout};
use crate::gpu::{AsyncReadback, GpuNetwork};
use crate::model::{LayerOp, Model, Shape};

/// Strongest incoming weights shown for a dense pick, unless the caller asks otherwise.
pub const DEFAULT_TOP_K: usize = 16;

/// One cube under the cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// Activation index (0 = input), as in the arena.
    pub activation: usize,
    /// Channel, row and column (a vector is channel 0, laid out as its column(s)).
    pub channel: usize,
    pub y: usize,
    pub x: usize,
    /// Index of the value in the activation (C, H, W order).
    pub element_index: usize,
    /// Global cube index, as the renderer numbers them.
    pub instance: u32,
}

/// A box of cells of one activation: channels × rows × columns (of a map; a vector is
/// one channel of one row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellRegion {
    pub activation: usize,
    pub channels: Range<usize>,
    pub rows: Range<usize>,
    pub cols: Range<usize>,
}

impl CellRegion {
    pub fn len(&self) -> usize {
        self.channels.len() * self.rows.len() * self.cols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SceneLayout {
    /// The cube under `cursor` (pixels from the top-left of a `viewport`-sized view), by
    /// its footprint on the ground; see the module docs.
    pub fn pick(&self, camera: &Camera, cursor: [f32; 2], viewport: [f32; 2]) -> Option<Pick> {
        let ray = camera.ray(cursor, viewport)?;
        self.pick_ray_with(&ray, |_, _| None)
    }

    /// Ray cast with known cube heights: `value(placement, element)` returns the value
    /// normalised by the layer's range (0..1), or `None` when unknown (a flat cube). The
    /// first cube box the ray enters wins; if it enters none, the cell under the ray's
    /// ground point is the pick.
    pub fn pick_ray_with(
        &self,
        ray: &Ray,
        value: impl Fn(&LayerPlacement, usize) -> Option<f32>,
    ) -> Option<Pick> {
        let d = ray.direction;
        if !d.is_finite() || d == Vec3::ZERO {
            return None;
        }
        let mut best: Option<(f32, Pick)> = None;
        for layer in &self.layers {
            let top = layer.cube_height(1.0);
            // The part of the ray inside the board's slab 0 ≤ y ≤ top.
            let Some((t0, t1)) = slab_interval(ray, layer, top) else {
                continue;
            };
            if best.is_some_and(|(t, _)| t <= t0) {
                continue;
            }
            // March in quarter cells through the slab, testing the cube under each
            // sample against its height. Boards are a few hundred cells across at most.
            let step = layer.cell * 0.25;
            let steps = (((t1 - t0) / step).ceil() as usize).min(100_000);
            let mut hit = None;
            for i in 0..=steps {
                let t = (t0 + i as f32 * step).min(t1);
                let p = ray.origin + d * t;
                if let Some(pick) = self.cell_at(layer, p, true)
                    && let Some(v) = value(layer, pick.element_index)
                    && p.y <= layer.cube_height(v)
                {
                    hit = Some((t, pick));
                    break;
                }
            }
            if hit.is_none() && d.y < 0.0 {
                // The ground point: whatever cell it falls in, gaps included.
                let t = -ray.origin.y / d.y;
                if t >= 0.0
                    && let Some(pick) = self.cell_at(layer, ray.origin + d * t, false)
                {
                    hit = Some((t, pick));
                }
            }
            if let Some((t, pick)) = hit
                && best.is_none_or(|(bt, _)| t < bt)
            {
                best = Some((t, pick));
            }
        }
        best.map(|(_, pick)| pick)
    }

    /// The cell whose column holds `p` (its x, z); with `footprint`, only inside the cube's
    /// footprint, else anywhere in the cell.
    fn cell_at(&self, layer: &LayerPlacement, p: Vec3, footprint: bool) -> Option<Pick> {
        let local = p - layer.origin;
        if local.x < 0.0 || local.z < 0.0 {
            return None;
        }
        let tile_col = (local.x / layer.tile_step.x) as usize;
        let tile_row = (local.z / layer.tile_step.y) as usize;
        if tile_col >= layer.tile_cols || tile_row >= layer.tile_rows {
            return None;
        }
        let channel = tile_row * layer.tile_cols + tile_col;
        let in_tile = local - layer.tile_origin(channel) + layer.origin;
        let (fx, fz) = (in_tile.x / layer.cell, in_tile.z / layer.cell);
        if fx < 0.0 || fz < 0.0 {
            return None;
        }
        let (x, y) = (fx as usize, fz as usize);
        if footprint {
            let margin = (1.0 - CUBE_FOOTPRINT) / 2.0;
            let inside = |f: f32| (margin..=1.0 - margin).contains(&f.fract());
            if !inside(fx) || !inside(fz) {
                return None;
            }
        }
        let element_index = layer.element_of(channel, y, x)?;
        Some(Pick {
            activation: layer.activation,
            channel,
            y,
            x,
            element_index,
            instance: layer.instance_start + element_index as u32,
        })
    }
}

/// Ray parameters where the ray is inside the board's box (x, z over the board, y from 0
/// to `top`).
fn slab_interval(ray: &Ray, layer: &LayerPlacement, top: f32) -> Option<(f32, f32)> {
    let lo = layer.origin;
    let hi = layer.origin + Vec3::new(layer.size.x, top, layer.size.y);
    let mut t0 = 0.0f32;
    let mut t1 = f32::INFINITY;
    for axis in 0..3 {
        let (o, d) = (ray.origin[axis], ray.direction[axis]);
        if d.abs() < 1e-12 {
            if o < lo[axis] || o > hi[axis] {
                return None;
            }
            continue;
        }
        let (a, b) = ((lo[axis] - o) / d, (hi[axis] - o) / d);
        t0 = t0.max(a.min(b));
        t1 = t1.min(a.max(b));
    }
    (t0 <= t1).then_some((t0, t1))
}

/// The cells of every earlier activation that influence cell `(channel, y, x)` of map
/// activation `activation`, nearest first (activation − 1, …, 0). Each step back applies
/// the layer's window: a conv's `[y·s − p, y·s − p + k)` over all input channels, a pool's
/// `[y·s, y·s + k)` in the same channel, a ReLU's identity; clipped to the map (padding
/// reads zeros, which influence nothing). Empty for a vector activation or the input.
pub fn receptive_field(
    model: &Model,
    activation: usize,
    channel: usize,
    y: usize,
    x: usize,
) -> Vec<CellRegion> {
    let shapes = model.activation_shapes();
    let mut regions = Vec::new();
    if !matches!(shapes.get(activation), Some(Shape::Map { .. })) {
        return regions;
    }
    let (mut channels, mut rows, mut cols) = (channel..channel + 1, y..y + 1, x..x + 1);
    for j in (1..=activation).rev() {
        let Shape::Map {
            channels: in_c,
            height,
            width,
        } = shapes[j - 1]
        else {
            break;
        };
        let window = |r: &Range<usize>, k: usize, s: usize, p: usize, side: usize| {
            let start = (r.start * s).saturating_sub(p);
            let end = ((r.end - 1) * s + k).saturating_sub(p).min(side);
            start.min(end)..end
        };
        match model.layers[j - 1].plan.op {
            LayerOp::Conv2d(g) => {
                channels = 0..in_c;
                rows = window(&rows, g.kernel, g.stride, g.padding, height);
                cols = window(&cols, g.kernel, g.stride, g.padding, width);
            }
            LayerOp::MaxPool2d { kernel, stride } => {
                rows = window(&rows, kernel, stride, 0, height);
                cols = window(&cols, kernel, stride, 0, width);
            }
            LayerOp::AvgPool2d(g) => {
                rows = window(&rows, g.kernel, g.stride, g.padding, height);
                cols = window(&cols, g.kernel, g.stride, g.padding, width);
            }
            LayerOp::GlobalAvgPool => {
                rows = 0..height;
                cols = 0..width;
            }
            op if op.is_pointwise() => {}
            _ => break,
        }
        regions.push(CellRegion {
            activation: j - 1,
            channels: channels.clone(),
            rows: rows.clone(),
            cols: cols.clone(),
        });
    }
    regions
}

/// The strongest incoming connections of element `element` of a vector activation made by
/// a dense layer (possibly through ReLUs after it): `(activation of the dense layer's
/// input, [(input element, weight)])`, the `k` largest |weight| first. `None` when the
/// activation is not fed by a dense layer.
pub fn strongest_inputs(
    model: &Model,
    activation: usize,
    element: usize,
    k: usize,
) -> Option<(usize, Vec<(usize, f32)>)> {
    let mut j = activation;
    // Walk back through element-wise layers to the dense layer that computed the value.
    while j > 0 && model.layers[j - 1].plan.op.is_pointwise() {
        j -= 1;
    }
    let layer = model.layers.get(j.checked_sub(1)?)?;
    let LayerOp::Dense {
        in_features,
        out_features,
    } = layer.plan.op
    else {
        return None;
    };
    if element >= out_features {
        return None;
    }
    let weights = &layer.params.as_ref()?.weight;
    let row = weights.get(element * in_features..(element + 1) * in_features)?;
    let mut ranked: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    Some((j - 1, ranked))
}

/// What to highlight for `pick`: its receptive field (conv/relu/pool cells), or its `top_k`
/// strongest incoming weights (dense cells; element-wise layers between the dense layer and the pick
/// are shown as the same element), as cubes. A flatten input maps onto the cubes of the
/// map it aliases.
pub fn influence(model: &Model, layout: &SceneLayout, pick: &Pick, top_k: usize) -> HighlightSet {
    let mut instances = Vec::new();
    let regions = receptive_field(model, pick.activation, pick.channel, pick.y, pick.x);
    for region in &regions {
        let Some(placement) = layout.placement(region.activation) else {
            continue;
        };
        for c in region.channels.clone() {
            for y in region.rows.clone() {
                for x in region.cols.clone() {
                    if let Some(e) = placement.element_of(c, y, x) {
                        instances.push(placement.instance_start + e as u32);
                    }
                }
            }
        }
    }
    if regions.is_empty() {
        let mut j = pick.activation;
        while j > 0 && model.layers[j - 1].plan.op.is_pointwise() {
            j -= 1;
            instances.extend(layout.instance_of(j, pick.element_index));
        }
        if let Some((from, inputs)) =
            strongest_inputs(model, pick.activation, pick.element_index, top_k)
        {
            instances.extend(
                inputs
                    .iter()
                    .filter_map(|&(e, _)| layout.instance_of(from, e)),
            );
        }
    }
    HighlightSet {
        picked: Some(pick.instance),
        instances,
    }
}

/// A hovered cube's value, as the overlay shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HoveredValue {
    pub activation: usize,
    pub element: usize,
    pub value: f32,
}

/// One float out of the activation arena without stalling the frame: [`ValueReadback::encode`]
/// copies it into a 4-byte [`AsyncReadback`] after the frame's work, [`ValueReadback::start_map`]
/// after the submit, and [`ValueReadback::try_take`] picks it up a frame or two later (once
/// anyone has polled the device). The copy is tagged with the cell it was read from.
pub struct ValueReadback {
    readback: AsyncReadback<(usize, usize)>,
}

impl ValueReadback {
    pub fn new(device: &wgpu::Device) -> ValueReadback {
        ValueReadback {
            readback: AsyncReadback::new(device, "hovered value", 4),
        }
    }

    /// Records the copy of element `element` of activation `activation` (image 0) into the
    /// readback, after the inference in the same encoder. [`GpuError::ReadbackBusy`] while
    /// the previous value has not been taken: try again next frame.
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        network: &GpuNetwork,
        activation: usize,
        element: usize,
    ) -> Result<(), SceneError> {
        let layout = network.layout();
        let slot = layout.slots.get(activation).ok_or(SceneError::NoSuchCell {
            activation,
            element,
        })?;
        if element >= slot.len {
            return Err(SceneError::NoSuchCell {
                activation,
                element,
            });
        }
        let offset = (layout.image_offset(activation, 0) + element as u64) * 4;
        let buffer = self.readback.begin((activation, element), 4)?;
        encoder.copy_buffer_to_buffer(network.activation_buffer(), offset, buffer, 0, 4);
        Ok(())
    }

    /// Starts mapping after the submission that holds the copy; returns at once.
    pub fn start_map(&self) {
        self.readback.start_map();
    }

    /// The value once the map has finished, else `None`; frees the readback for the next.
    pub fn try_take(&self) -> Result<Option<HoveredValue>, SceneError> {
        Ok(self
            .readback
            .try_take()?
            .map(|((activation, element), bytes)| HoveredValue {
                activation,
                element,
                value: f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            }))
    }
}
