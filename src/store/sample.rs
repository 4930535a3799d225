//! Made-up but realistic predictions (a stroked digit-like shape at canvas resolution, its
//! real MNIST-style input, plausible probabilities and heatmap) for the crash-test helper,
//! the tests and the benchmarks. Deterministic in `seed`.

use crate::data::preprocess::{InkImage, mnist_input};

use super::record::{Drawing, GradCamRecord, ModelIdentity, ModelInput, NewPrediction};

/// The canvas side the samples are drawn at.
pub const SAMPLE_CANVAS: u32 = 280;

/// A small deterministic generator (SplitMix64): samples need variety, not quality.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A prediction made up from `seed`, saved at `time_ms`.
pub fn sample_prediction(seed: u64, time_ms: u64) -> NewPrediction {
    let mut rng = Mix(seed);
    let side = SAMPLE_CANVAS as usize;
    let mut ink = vec![0.0f32; side * side];
    // An ellipse-ish loop and a stroke: like a 0, 6 or 9 drawn with a round brush.
    let (cx, cy) = (100.0 + 80.0 * rng.unit(), 100.0 + 80.0 * rng.unit());
    let (rx, ry) = (30.0 + 40.0 * rng.unit(), 40.0 + 50.0 * rng.unit());
    let tail = rng.unit() * std::f32::consts::TAU;
    let brush = 7.0 + 5.0 * rng.unit();
    let mut dab = |x: f32, y: f32| {
        let (x0, x1) = (
            (x - brush).max(0.0) as usize,
            ((x + brush) as usize).min(side - 1),
        );
        let (y0, y1) = (
            (y - brush).max(0.0) as usize,
            ((y + brush) as usize).min(side - 1),
        );
        for py in y0..=y1 {
            for px in x0..=x1 {
                let d = ((px as f32 - x).powi(2) + (py as f32 - y).powi(2)).sqrt();
                let v = (brush - d).clamp(0.0, 1.0);
                let cell = &mut ink[py * side + px];
                *cell = cell.max(v);
            }
        }
    };
    for step in 0..200 {
        let a = step as f32 / 200.0 * std::f32::consts::TAU;
        dab(cx + rx * a.cos(), cy + ry * a.sin());
    }
    for step in 0..60 {
        let t = step as f32 / 60.0;
        dab(
            cx + (rx + 60.0 * t) * tail.cos(),
            cy + (ry + 60.0 * t) * tail.sin(),
        );
    }
    let drawing = Drawing::from_ink(SAMPLE_CANVAS, SAMPLE_CANVAS, &ink);
    let image = InkImage::new(side, side, drawing.to_ink());
    let values = mnist_input(&image, 28, 28).unwrap_or_else(|_| vec![0.0; 28 * 28]);

    let logits: Vec<f32> = (0..10).map(|_| 6.0 * rng.unit()).collect();
    let max = logits.iter().cloned().fold(f32::MIN, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let probabilities: Vec<f32> = exps.iter().map(|e| e / sum).collect();
    let predicted = probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as u16)
        .unwrap_or(0);
    let heatmap = values
        .iter()
        .map(|v| ((v * 0.7 + 0.3 * rng.unit()) * 255.0) as u8)
        .collect();
    NewPrediction {
        time_ms,
        drawing,
        input: ModelInput {
            channels: 1,
            height: 28,
            width: 28,
            values,
        },
        predicted,
        probabilities,
        grad_cam: GradCamRecord {
            target: predicted,
            block: 1,
            layer: "conv2".into(),
            heatmap,
        },
        model: ModelIdentity::from_file_bytes("mnist-cnn", b"sample model"),
    }
}
