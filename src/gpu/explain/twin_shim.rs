//! TEMPORARY: the CPU twin's helpers until branch explain-cpu is merged (then deleted).
#![allow(dead_code)]

/// The `n`-point Gauss–Legendre rule on `[−1, 1]`, nodes ascending, as numpy's
/// `np.polynomial.legendre.leggauss(n)` returns it (to ~1e-15): each node is the root of
/// `P_n` found by Newton's method from the Tricomi estimate `cos(π (i + 3/4) / (n + 1/2))`,
/// `P_n` and `P_n'` by the three-term recurrence; weight `2 / ((1 − x²) P_n'(x)²)`.
/// `n = 0` gives no nodes.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 0.0;
        for _ in 0..100 {
            let (p, dp) = legendre(n, x);
            derivative = dp;
            let step = p / dp;
            x -= step;
            if step.abs() <= 1e-16 {
                break;
            }
        }
        let (_, dp) = legendre(n, x);
        if dp != 0.0 {
            derivative = dp;
        }
        let w = 2.0 / ((1.0 - x * x) * derivative * derivative);
        // Root i counts down from 1; mirror it so nodes ascend.
        nodes[n - 1 - i] = x;
        nodes[i] = -x;
        weights[n - 1 - i] = w;
        weights[i] = w;
    }
    if n % 2 == 1 {
        nodes[n / 2] = 0.0;
    }
    (nodes, weights)
}

/// `(P_n(x), P_n'(x))` by Bonnet's recurrence.
fn legendre(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
        p0 = p1;
        p1 = p2;
    }
    (p1, n as f64 * (x * p1 - p0) / (x * x - 1.0))
}

/// Captum's Integrated Gradients path for `method = "gausslegendre"`
/// (`captum/attr/_utils/approximation_methods.py`, `gauss_legendre_builders`): the points
/// `α_i = (1 + x_i) / 2` in `(0, 1)` and the step sizes `w_i / 2`.
pub fn integrated_gradients_path(steps: usize) -> (Vec<f64>, Vec<f64>) {
    let (x, w) = gauss_legendre(steps);
    (
        x.iter().map(|x| 0.5 * (1.0 + x)).collect(),
        w.iter().map(|w| 0.5 * w).collect(),
    )
}

use crate::model::rng::Rng;
pub fn smoothgrad_noise(seed: u64, samples: usize, len: usize, stdev: f64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let mut uniform = || (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let count = samples * len;
    let mut noise = Vec::with_capacity(count + 1);
    while noise.len() < count {
        let (u, v) = (uniform(), uniform());
        let r = (-2.0 * (1.0 - u).ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * v;
        noise.push(stdev * r * angle.cos());
        noise.push(stdev * r * angle.sin());
    }
    noise.truncate(count);
    noise
}
pub fn blank_value(model: &crate::model::Model) -> f64 {
    let n = model.architecture.normalization;
    (0.0 - n.mean as f64) / n.std as f64
}
