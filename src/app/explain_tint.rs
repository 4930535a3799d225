//! The chosen explanation's map in the 3D scene. The cube shader tints the input layer with
//! the input-sized heatmap and the target block's output with the block-sized map, both
//! read from the network's CAM buffer (`CamLayout::heatmap` and `CamLayout::low_res`).
//! Grad-CAM writes them there itself on the GPU (the zero-copy path); for every other
//! method the window writes the method's maps into the same two regions once its answer
//! has come back, with an inference that runs no Grad-CAM, so nothing overwrites them.

use crate::explain::Explained;
use crate::gpu::GpuNetwork;
use crate::model::ConvBlock;

/// The two maps the scene reads: `(heatmap, low_res)`, input-sized and block-sized, both
/// 0..1. `input` is the model input's `(height, width)`, the map's size.
pub fn tint_maps(
    explained: &Explained,
    block: &ConvBlock,
    input: (usize, usize),
) -> (Vec<f32>, Vec<f32>) {
    let plane = block.height * block.width;
    let low = if explained.raw.len() == plane
        && explained.raw_height == block.height
        && explained.raw_width == block.width
    {
        explained.raw.clone()
    } else {
        let (height, width) = if input.0 * input.1 == explained.map.len() {
            input
        } else {
            let side = (explained.map.len() as f64).sqrt().round() as usize;
            (side, side)
        };
        area_resample(&explained.map, height, width, block.height, block.width)
    };
    (explained.map.clone(), min_max(&low))
}

/// Writes `explained`'s maps where the scene and the overlay's heatmap image read them.
/// The next submit carries the write, before any command recorded after it.
pub fn write_tint(
    queue: &wgpu::Queue,
    network: &GpuNetwork,
    explained: &Explained,
    block: &ConvBlock,
) {
    let (_, height, width) = network.layout().slots[0].shape.chw();
    let (heatmap, low_res) = tint_maps(explained, block, (height, width));
    let layout = network.cam_layout();
    let heat_len = layout.heatmap.stride as usize;
    if heatmap.len() != heat_len || low_res.len() > layout.low_res.stride as usize {
        log::warn!(
            "{}: a {}-pixel map does not fit the scene's tint",
            explained.method,
            heatmap.len()
        );
        return;
    }
    let buffer = network.cam_buffer();
    for (region, values) in [(&layout.heatmap, &heatmap), (&layout.low_res, &low_res)] {
        queue.write_buffer(
            buffer,
            region.image_offset(0) * 4,
            bytemuck::cast_slice(values),
        );
    }
}

/// pytorch-grad-cam's `scale_cam_image` normalisation: `(x − min) / (max − min + 1e-7)`.
fn min_max(values: &[f32]) -> Vec<f32> {
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !(lo.is_finite() && hi.is_finite()) {
        return vec![0.0; values.len()];
    }
    values.iter().map(|v| (v - lo) / (hi - lo + 1e-7)).collect()
}

/// The mean of the source pixels each target pixel covers (a box filter), for a map of
/// `h × w` shrunk to `th × tw`.
fn area_resample(map: &[f32], h: usize, w: usize, th: usize, tw: usize) -> Vec<f32> {
    if h == 0 || w == 0 || map.len() != h * w {
        return vec![0.0; th * tw];
    }
    let mut out = Vec::with_capacity(th * tw);
    for ty in 0..th {
        let (y0, y1) = (
            ty * h / th,
            ((ty + 1) * h).div_ceil(th).max(ty * h / th + 1),
        );
        for tx in 0..tw {
            let (x0, x1) = (
                tx * w / tw,
                ((tx + 1) * w).div_ceil(tw).max(tx * w / tw + 1),
            );
            let mut sum = 0.0;
            for y in y0..y1.min(h) {
                for x in x0..x1.min(w) {
                    sum += map[y * w + x];
                }
            }
            out.push(sum / ((y1.min(h) - y0) * (x1.min(w) - x0)) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_filter_averages_what_each_cell_covers() {
        // 4×4 → 2×2: each cell is the mean of a 2×2 block.
        let map: Vec<f32> = (0..16).map(|i| i as f32).collect();
        assert_eq!(area_resample(&map, 4, 4, 2, 2), vec![2.5, 4.5, 10.5, 12.5]);
        // 28 → 24 covers every source row at least once, and a constant stays constant.
        let ones = vec![1.0; 28 * 28];
        assert!(
            area_resample(&ones, 28, 28, 24, 24)
                .iter()
                .all(|v| (v - 1.0).abs() < 1e-6)
        );
    }

    #[test]
    fn the_block_map_is_the_raw_map_normalised_when_the_method_has_one() {
        let block = ConvBlock {
            conv_layer: 0,
            output_layer: 1,
            channels: 2,
            height: 2,
            width: 2,
            name: "conv1".into(),
        };
        let explained = Explained {
            method: crate::explain::Method::HiResCam,
            class: 0,
            counterfactual: false,
            block: Some(0),
            logits: vec![],
            attribution: vec![],
            raw: vec![0.0, 1.0, 2.0, 4.0],
            raw_height: 2,
            raw_width: 2,
            map: vec![0.5; 16],
            faithfulness: None,
        };
        let (heat, low) = tint_maps(&explained, &block, (4, 4));
        assert_eq!(heat, vec![0.5; 16]);
        assert!((low[3] - 1.0).abs() < 1e-6 && low[0] == 0.0 && (low[2] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn a_non_square_map_without_a_raw_map_is_averaged_by_its_own_rows_and_columns() {
        let block = ConvBlock {
            conv_layer: 0,
            output_layer: 1,
            channels: 1,
            height: 1,
            width: 2,
            name: "conv1".into(),
        };
        // 2 rows × 4 columns: the left half 0, the right half 1.
        let explained = Explained {
            method: crate::explain::Method::Saliency,
            class: 0,
            counterfactual: false,
            block: None,
            logits: vec![],
            attribution: vec![],
            raw: vec![],
            raw_height: 0,
            raw_width: 0,
            map: vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0],
            faithfulness: None,
        };
        let (_, low) = tint_maps(&explained, &block, (2, 4));
        // Read as a 2×4 map the halves stay apart (as a square 3×3 it would not fit).
        assert!(low[0] == 0.0 && (low[1] - 1.0).abs() < 1e-6, "{low:?}");
    }
}
