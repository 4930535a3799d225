//! Deletion and insertion curves, exactly as [`crate::explain::Faithfulness`] defines them.

use crate::model::Model;
use crate::model::reference::{forward_f64, softmax};

/// The pixel order: indices of `map` by value, largest first, ties by index (stable sort).
pub fn faithfulness_order(map: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..map.len()).collect();
    order.sort_by(|&a, &b| map[b].total_cmp(&map[a]));
    order
}

/// How many pixels step `s` of `steps` touches: `floor(s · pixels / steps)`.
pub fn pixels_at_step(step: usize, steps: usize, pixels: usize) -> usize {
    step * pixels / steps
}

/// The deletion and insertion curves (`steps + 1` points each) of the probability of
/// `class` for the normalised input `x`, removing or revealing pixels in `map`'s order.
/// `blank` is the normalised value of an empty canvas per channel, `(0 − mean_c) / std_c`.
pub fn faithfulness_curves(
    model: &Model,
    x: &[f64],
    map: &[f32],
    class: usize,
    blank: &[f64],
    steps: usize,
) -> (Vec<f64>, Vec<f64>) {
    let plane = map.len();
    let channels = x.len() / plane;
    let order = faithfulness_order(map);
    let probability =
        |input: Vec<f64>| softmax(forward_f64(model, input).last().expect("logits"))[class];
    let mut deletion = Vec::with_capacity(steps + 1);
    let mut insertion = Vec::with_capacity(steps + 1);
    for s in 0..=steps {
        let touched = &order[..pixels_at_step(s, steps, plane)];
        let mut deleted = x.to_vec();
        let mut inserted: Vec<f64> = (0..x.len()).map(|i| blank[i / plane]).collect();
        for c in 0..channels {
            for &p in touched {
                deleted[c * plane + p] = blank[c];
                inserted[c * plane + p] = x[c * plane + p];
            }
        }
        deletion.push(probability(deleted));
        insertion.push(probability(inserted));
    }
    (deletion, insertion)
}

/// The area under a curve sampled at `s / steps`, `s = 0..=steps`, by the trapezoid rule.
pub fn area_under_curve(curve: &[f64]) -> f64 {
    let steps = curve.len().saturating_sub(1);
    if steps == 0 {
        return 0.0;
    }
    curve.windows(2).map(|w| 0.5 * (w[0] + w[1])).sum::<f64>() / steps as f64
}
