//! A layer's contact sheet as one PNG: a row per channel, in channel order. Each row holds
//! the channel's weights (one k×k tile per input channel; orange positive, blue negative,
//! scaled by the row's largest |weight|) and then its top examples (the test images that
//! excite it most, strongest first) with the input region that feeds the channel's
//! strongest response outlined in yellow.

use image::{Rgb, RgbImage};

use super::TopExample;
use crate::data::Dataset;
use crate::model::{LayerOp, Model};
use crate::scene::receptive_field;

/// Screen pixels per weight: at least this many, more when few input channels leave room.
const MIN_WEIGHT_SCALE: u32 = 6;
/// Screen pixels per input pixel of an example.
const EXAMPLE_SCALE: u32 = 3;
const GAP: u32 = 4;
const BACKGROUND: Rgb<u8> = Rgb([24, 24, 28]);
const OUTLINE: Rgb<u8> = Rgb([255, 214, 10]);

/// The input-pixel box (rows, cols, half-open) that feeds unit `(channel, y, x)` of
/// activation `activation`.
pub fn input_region(
    model: &Model,
    activation: usize,
    channel: usize,
    (y, x): (usize, usize),
) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    receptive_field(model, activation, channel, y, x)
        .into_iter()
        .find(|r| r.activation == 0)
        .map(|r| (r.rows, r.cols))
}

fn weight_colour(w: f32, scale: f32) -> Rgb<u8> {
    let t = if scale > 0.0 {
        (w / scale).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (hot, cold) = ([255.0, 140.0, 20.0], [40.0, 120.0, 255.0]);
    let c = if t >= 0.0 { hot } else { cold };
    let a = t.abs();
    Rgb([0, 1, 2].map(|i| (BACKGROUND.0[i] as f32 * (1.0 - a) + c[i] * a).round() as u8))
}

fn fill(sheet: &mut RgbImage, x0: u32, y0: u32, w: u32, h: u32, colour: Rgb<u8>) {
    for y in y0..(y0 + h).min(sheet.height()) {
        for x in x0..(x0 + w).min(sheet.width()) {
            sheet.put_pixel(x, y, colour);
        }
    }
}

fn outline(sheet: &mut RgbImage, x0: u32, y0: u32, w: u32, h: u32, colour: Rgb<u8>) {
    fill(sheet, x0, y0, w, 1, colour);
    fill(sheet, x0, y0 + h.saturating_sub(1), w, 1, colour);
    fill(sheet, x0, y0, 1, h, colour);
    fill(sheet, x0 + w.saturating_sub(1), y0, 1, h, colour);
}

/// The sheet of conv layer `conv_layer` whose block output is activation `activation`;
/// `examples[c]` are channel `c`'s top examples in `data`.
pub fn contact_sheet(
    model: &Model,
    conv_layer: usize,
    activation: usize,
    examples: &[Vec<TopExample>],
    data: &Dataset,
) -> Option<RgbImage> {
    let layer = model.layers.get(conv_layer)?;
    let LayerOp::Conv2d(g) = layer.plan.op else {
        return None;
    };
    let weights = &layer.params.as_ref()?.weight;
    let k = g.kernel as u32;
    let thumb = (data.rows.max(data.cols) as u32) * EXAMPLE_SCALE;
    // Fill about a thumbnail's width with the kernels of all input channels.
    let weight_scale = (thumb / (g.in_channels as u32 * (k + 1))).clamp(MIN_WEIGHT_SCALE, 28);
    let tile = k * weight_scale;
    let weights_width = g.in_channels as u32 * (tile + 1);
    let per_row = examples.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let row_height = tile.max(thumb) + GAP;
    let width = GAP + weights_width + 2 * GAP + per_row * (thumb + GAP);
    let height = GAP + g.out_channels as u32 * row_height;
    let mut sheet = RgbImage::from_pixel(width, height, BACKGROUND);
    let per_kernel = g.in_channels * g.kernel * g.kernel;
    for oc in 0..g.out_channels {
        let y0 = GAP + oc as u32 * row_height;
        let kernel = &weights[oc * per_kernel..(oc + 1) * per_kernel];
        let scale = kernel.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        for ic in 0..g.in_channels {
            let x0 = GAP + ic as u32 * (tile + 1);
            for ky in 0..g.kernel {
                for kx in 0..g.kernel {
                    let w = kernel[(ic * g.kernel + ky) * g.kernel + kx];
                    fill(
                        &mut sheet,
                        x0 + kx as u32 * weight_scale,
                        y0 + ky as u32 * weight_scale,
                        weight_scale,
                        weight_scale,
                        weight_colour(w, scale),
                    );
                }
            }
        }
        let Some(row) = examples.get(oc) else {
            continue;
        };
        for (i, example) in row.iter().enumerate() {
            let x0 = GAP + weights_width + 2 * GAP + i as u32 * (thumb + GAP);
            let pixels = data.image(example.image);
            for py in 0..data.rows {
                for px in 0..data.cols {
                    let v = pixels[py * data.cols + px];
                    fill(
                        &mut sheet,
                        x0 + px as u32 * EXAMPLE_SCALE,
                        y0 + py as u32 * EXAMPLE_SCALE,
                        EXAMPLE_SCALE,
                        EXAMPLE_SCALE,
                        Rgb([v, v, v]),
                    );
                }
            }
            if let Some((rows, cols)) = input_region(model, activation, oc, example.at) {
                outline(
                    &mut sheet,
                    x0 + cols.start as u32 * EXAMPLE_SCALE,
                    y0 + rows.start as u32 * EXAMPLE_SCALE,
                    cols.len() as u32 * EXAMPLE_SCALE,
                    rows.len() as u32 * EXAMPLE_SCALE,
                    OUTLINE,
                );
            }
        }
    }
    Some(sheet)
}
