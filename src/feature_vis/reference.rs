//! The CPU twin of the feature visualisation: one image, f64 inside, exactly the steps of
//! `shaders/feature_vis.wgsl` (see the parent module), with the backward pass of the
//! explanation twin ([`gradients_from`]).

use super::{
    FeatureVisError, FeatureVisOptions, Objective, blurs_after, check_options, input_range,
    jitter_offsets, start_image,
};
use crate::explain::reference::backward::{ReluRule, gradients_from};
use crate::model::Model;
use crate::model::reference::forward_f64;

/// One image's run: the image after the steps, and the objective before each step.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimised {
    pub image: Vec<f64>,
    pub history: Vec<f64>,
}

/// Image `n` of `objective` optimised for `steps` steps (at most `options.steps`).
pub fn optimise(
    model: &Model,
    objective: Objective,
    options: &FeatureVisOptions,
    n: usize,
    steps: usize,
) -> Result<Optimised, FeatureVisError> {
    check_options(options)?;
    let shape = objective.shape(model)?;
    if n >= shape.count || steps > options.steps {
        return Err(FeatureVisError::BadOption(format!(
            "image {n} of {} for {steps} of {} steps",
            shape.count, options.steps
        )));
    }
    let input = model.architecture.input;
    let (h, w) = (input.height, input.width);
    let (low, high) = input_range(model);
    let lr = f64::from(options.learning_rate);
    let keep = 1.0 - f64::from(options.decay);
    let low64 = f64::from(low);
    let jitter = jitter_offsets(options);
    let mut image: Vec<f64> = start_image(model, options.seed, n)
        .into_iter()
        .map(f64::from)
        .collect();
    let mut history = Vec::with_capacity(steps);
    for (step, &(dy, dx)) in jitter.iter().enumerate().take(steps) {
        // input[c][y][x] = image[c][y − dy][x − dx]
        let jittered: Vec<f64> = (0..image.len())
            .map(|i| image[rolled(i, h, w, -dy, -dx)])
            .collect();
        let activations = forward_f64(model, jittered);
        let objective = &activations[shape.activation][n * shape.plane..(n + 1) * shape.plane];
        history.push(objective.iter().sum::<f64>() / shape.plane as f64);
        let mut seed = vec![0.0; shape.len];
        seed[n * shape.plane..(n + 1) * shape.plane].fill(1.0 / shape.plane as f64);
        let grads = gradients_from(
            model,
            &activations,
            shape.activation,
            seed,
            ReluRule::Plain,
            0,
        );
        let g = grads[0].as_ref().expect("computed down to the input");
        let unrolled: Vec<f64> = (0..image.len())
            .map(|i| g[rolled(i, h, w, dy, dx)])
            .collect();
        let mean = unrolled.iter().map(|v| v.abs()).sum::<f64>() / image.len() as f64;
        let scale = lr / (mean + 1e-8);
        let stepped: Vec<f64> = image
            .iter()
            .zip(&unrolled)
            .map(|(x, g)| low64 + keep * (x + scale * g - low64))
            .collect();
        let smoothed = if blurs_after(options, step) {
            blur(&stepped, h, w)
        } else {
            stepped
        };
        image = smoothed
            .into_iter()
            .map(|v| v.clamp(low64, f64::from(high)))
            .collect();
    }
    Ok(Optimised { image, history })
}

/// Index of element `i` of a C·H·W image moved by `(dy, dx)`, wrapping around.
fn rolled(i: usize, h: usize, w: usize, dy: i32, dx: i32) -> usize {
    let plane = h * w;
    let (c, y, x) = (i / plane, (i % plane) / w, i % w);
    let wrap = |v: usize, d: i32, size: usize| (v as i64 + i64::from(d)).rem_euclid(size as i64);
    c * plane + wrap(y, dy, h) as usize * w + wrap(x, dx, w) as usize
}

/// 3×3 Gaussian (1-2-1 ⊗ 1-2-1) per channel, renormalised over the taps inside the image.
pub fn blur(image: &[f64], h: usize, w: usize) -> Vec<f64> {
    let plane = h * w;
    (0..image.len())
        .map(|i| {
            let (c, y, x) = (i / plane, (i % plane) / w, i % w);
            let (mut total, mut weights) = (0.0, 0.0);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (yy, xx) = (y as i64 + dy, x as i64 + dx);
                    if (0..h as i64).contains(&yy) && (0..w as i64).contains(&xx) {
                        let weight = ((2 - dy.abs()) * (2 - dx.abs())) as f64;
                        total += weight * image[c * plane + yy as usize * w + xx as usize];
                        weights += weight;
                    }
                }
            }
            total / weights
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_by_an_offset_and_back_is_the_identity() {
        let (h, w) = (5, 7);
        for i in 0..2 * h * w {
            let there = rolled(i, h, w, -2, 3);
            assert_eq!(rolled(there, h, w, 2, -3), i);
        }
        // input[y][x] = image[y − dy][x − dx]: a shift of +1 in x moves pixel 0 to 1.
        assert_eq!(rolled(1, h, w, 0, -1), 0);
    }

    #[test]
    fn blur_keeps_a_constant_image_and_spreads_a_dot() {
        assert!(
            blur(&[3.0; 12], 3, 4)
                .iter()
                .all(|&v| (v - 3.0).abs() < 1e-12)
        );
        let mut dot = vec![0.0; 9];
        dot[4] = 16.0;
        let blurred = blur(&dot, 3, 3);
        assert_eq!(blurred[4], 4.0 * 16.0 / 16.0);
        assert!(blurred.iter().all(|&v| v > 0.0));
    }
}
