//! Gauss–Legendre nodes and weights, for Integrated Gradients.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_gauss_legendre_rules() {
        let (x, w) = gauss_legendre(3);
        let r = (0.6f64).sqrt();
        for (a, b) in x.iter().zip([-r, 0.0, r]) {
            assert!((a - b).abs() < 1e-14, "{x:?}");
        }
        for (a, b) in w.iter().zip([5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0]) {
            assert!((a - b).abs() < 1e-14, "{w:?}");
        }
        let (x, w) = gauss_legendre(5);
        let want_x = [-0.906_179_845_938_664, -0.538_469_310_105_683_1, 0.0];
        let want_w = [
            0.236_926_885_056_189_1,
            0.478_628_670_499_366_5,
            0.568_888_888_888_888_9,
        ];
        for i in 0..3 {
            assert!((x[i] - want_x[i]).abs() < 1e-12, "{x:?}");
            assert!((w[i] - want_w[i]).abs() < 1e-12, "{w:?}");
        }
    }

    #[test]
    fn matches_numpy_leggauss_32_and_integrates_polynomials_exactly() {
        // np.polynomial.legendre.leggauss(32): first and middle nodes and weights.
        let (x, w) = gauss_legendre(32);
        assert!((x[0] - -0.997_263_861_849_481_6).abs() < 1e-12, "{}", x[0]);
        assert!((w[0] - 0.007_018_610_009_470_506).abs() < 1e-12, "{}", w[0]);
        assert!(
            (x[16] - 0.048_307_665_687_738_324).abs() < 1e-12,
            "{}",
            x[16]
        );
        assert!(
            (w[16] - 0.096_540_088_514_727_66).abs() < 1e-12,
            "{}",
            w[16]
        );
        assert!(x.windows(2).all(|p| p[0] < p[1]));
        // Exact for degree ≤ 63: ∫ x^62 over [−1, 1] = 2/63.
        let integral: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(62)).sum();
        assert!((integral - 2.0 / 63.0).abs() < 1e-13, "{integral}");
        assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-13);
    }
}
