//! CPU layer kernels for training (all but convolution, which has its own module),
//! forward and backward, on a chunk of `n` images stored NCHW, image after image.
//!
//! Every function here is sequential and its summation order depends only on the shapes,
//! never on threads: that is what makes training bit-reproducible.

/// `C = A·B` (or `C += A·B` when `accumulate`), `A` m×k, `B` k×n, `C` m×n row-major.
/// `a_transposed` means `a` holds `Aᵀ` row-major (k×m); likewise `b_transposed`.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_transposed: bool,
    b: &[f32],
    b_transposed: bool,
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "gemm operand too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    let (rsa, csa) = if a_transposed { (1, m) } else { (k, 1) };
    let (rsb, csb) = if b_transposed { (1, k) } else { (n, 1) };
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: the assert above keeps every index the strides reach inside the slices, and
    // `c` is a unique borrow, so it cannot alias `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Sums in eight interleaved lanes, then the lanes: a fixed order (so reproducible) that
/// the compiler can vectorise, unlike a strictly left-to-right sum.
pub fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Sizes of a max-pooling layer (no padding, PyTorch's floor rule already applied).
#[derive(Clone, Copy, Debug)]
pub struct PoolDims {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
    pub out_height: usize,
    pub out_width: usize,
}

impl PoolDims {
    pub fn in_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn out_len(&self) -> usize {
        self.channels * self.out_height * self.out_width
    }
}

/// Max pooling of one image; remembers, per output, the input index of the first maximum
/// in row-major window order (PyTorch's tie rule), for routing the gradient.
pub fn maxpool_forward(d: &PoolDims, input: &[f32], output: &mut [f32], argmax: &mut [u32]) {
    if d.kernel == 2 && d.stride == 2 {
        maxpool_2x2(d, input, output, argmax);
        return;
    }
    let in_plane = d.height * d.width;
    let mut outputs = output.iter_mut().zip(argmax.iter_mut());
    for c in 0..d.channels {
        for oy in 0..d.out_height {
            for ox in 0..d.out_width {
                let top = c * in_plane + oy * d.stride * d.width + ox * d.stride;
                let (best, at) = window_max(input, top, d.width, d.kernel);
                if let Some((out, arg)) = outputs.next() {
                    *out = best;
                    *arg = at as u32;
                }
            }
        }
    }
}

/// First maximum of the `kernel`×`kernel` window whose top-left is `input[top]`, scanned
/// in row-major order keeping only strictly larger values.
fn window_max(input: &[f32], top: usize, width: usize, kernel: usize) -> (f32, usize) {
    let (mut best, mut at) = (input[top], top);
    for ky in 0..kernel {
        let row = top + ky * width;
        for (kx, &v) in input[row..row + kernel].iter().enumerate() {
            // Branch-free selects: which element wins is data, and unpredictable.
            let larger = v > best;
            at = if larger { row + kx } else { at };
            best = if larger { v } else { best };
        }
    }
    (best, at)
}

/// The common 2×2, stride-2 case, written so the compiler vectorises across a row.
fn maxpool_2x2(d: &PoolDims, input: &[f32], output: &mut [f32], argmax: &mut [u32]) {
    let (w, ow) = (d.width, d.out_width);
    let rows = output.chunks_exact_mut(ow).zip(argmax.chunks_exact_mut(ow));
    for (r, (out, arg)) in rows.enumerate().take(d.channels * d.out_height) {
        let (c, oy) = (r / d.out_height, r % d.out_height);
        let top = c * d.height * w + 2 * oy * w;
        let (upper, _) = input[top..top + 2 * ow].as_chunks::<2>();
        let (lower, _) = input[top + w..top + w + 2 * ow].as_chunks::<2>();
        let windows = out
            .iter_mut()
            .zip(arg.iter_mut())
            .zip(upper.iter().zip(lower));
        for (ox, ((out, arg), (a, b))) in windows.enumerate() {
            let (mut best, mut offset) = (a[0], 0);
            if a[1] > best {
                best = a[1];
                offset = 1;
            }
            if b[0] > best {
                best = b[0];
                offset = w;
            }
            if b[1] > best {
                best = b[1];
                offset = w + 1;
            }
            *out = best;
            *arg = (top + 2 * ox + offset) as u32;
        }
    }
}

/// Routes each output gradient of one image to its recorded maximum; overlapping windows
/// add up.
pub fn maxpool_backward(grad_output: &[f32], argmax: &[u32], grad_input: &mut [f32]) {
    grad_input.fill(0.0);
    for (&g, &i) in grad_output.iter().zip(argmax) {
        grad_input[i as usize] += g;
    }
}

pub fn relu_forward(input: &[f32], output: &mut [f32]) {
    for (o, &v) in output.iter_mut().zip(input) {
        *o = v.max(0.0);
    }
}

/// In place: the gradient survives where the ReLU's output was positive.
pub fn relu_backward(output: &[f32], grad: &mut [f32]) {
    for (g, &y) in grad.iter_mut().zip(output) {
        // An unconditional store, so the loop vectorises.
        *g = if y > 0.0 { *g } else { 0.0 };
    }
}

/// `Y = X·Wᵀ + b` for `n` rows of `in_features`.
pub fn dense_forward(
    n: usize,
    in_features: usize,
    out_features: usize,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) {
    gemm(
        n,
        in_features,
        out_features,
        input,
        false,
        weight,
        true,
        output,
        false,
    );
    for row in output[..n * out_features].chunks_exact_mut(out_features) {
        for (o, &b) in row.iter_mut().zip(bias) {
            *o += b;
        }
    }
}

/// Where [`dense_backward`] writes, like [`ConvGrads`].
pub struct DenseGrads<'a> {
    pub weight: &'a mut [f32],
    pub bias: &'a mut [f32],
    pub input: Option<&'a mut [f32]>,
}

/// `dW += dYᵀ·X`, `db += Σ dY`, `dX = dY·W`.
pub fn dense_backward(
    n: usize,
    in_features: usize,
    out_features: usize,
    grad_output: &[f32],
    input: &[f32],
    weight: &[f32],
    grads: DenseGrads<'_>,
) {
    gemm(
        out_features,
        n,
        in_features,
        grad_output,
        true,
        input,
        false,
        grads.weight,
        true,
    );
    for row in grad_output[..n * out_features].chunks_exact(out_features) {
        for (b, &g) in grads.bias.iter_mut().zip(row) {
            *b += g;
        }
    }
    if let Some(grad_input) = grads.input {
        gemm(
            n,
            out_features,
            in_features,
            grad_output,
            false,
            weight,
            false,
            grad_input,
            false,
        );
    }
}

/// Softmax cross-entropy of each row of `logits` against its label. Writes
/// `scale · (softmax − one_hot)` into `grad` and returns the summed loss (in f64, so the
/// sum over a chunk does not lose the small differences finite-difference tests look at).
pub fn softmax_cross_entropy(logits: &[f32], labels: &[u8], scale: f32, grad: &mut [f32]) -> f64 {
    let classes = logits.len() / labels.len().max(1);
    let mut total = 0.0f64;
    for ((row, g), &label) in logits
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes))
        .zip(labels)
    {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f64;
        for (gi, &z) in g.iter_mut().zip(row) {
            let e = f64::from(z - max).exp();
            *gi = e as f32;
            sum += e;
        }
        let label = usize::from(label);
        total += sum.ln() - f64::from(row[label] - max);
        for (i, gi) in g.iter_mut().enumerate() {
            let p = f64::from(*gi) / sum;
            let target = if i == label { 1.0 } else { 0.0 };
            *gi = ((p - target) * f64::from(scale)) as f32;
        }
    }
    total
}

/// Index of the largest logit, the lowest on ties.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxpool_takes_first_of_equal_maxima() {
        let input = [1.0, 3.0, 3.0, 0.0, 2.0, 3.0, 1.0, 1.0, 0.0];
        let (mut out, mut arg) = ([0.0; 4], [0u32; 4]);
        let d = PoolDims {
            channels: 1,
            height: 3,
            width: 3,
            kernel: 2,
            stride: 1,
            out_height: 2,
            out_width: 2,
        };
        maxpool_forward(&d, &input, &mut out, &mut arg);
        // Window (0, 1) holds 3, 3, 2, 3: the first of the three 3s wins.
        assert_eq!(out, [3.0, 3.0, 2.0, 3.0]);
        assert_eq!(arg, [1, 1, 4, 5]);
    }

    /// The 2×2 fast path agrees with the general scan, ties included.
    #[test]
    fn maxpool_2x2_matches_general_path() {
        let mut rng = crate::model::rng::Rng::new(9);
        let d = PoolDims {
            channels: 3,
            height: 7,
            width: 9,
            kernel: 2,
            stride: 2,
            out_height: 3,
            out_width: 4,
        };
        // Few distinct values, so ties are everywhere.
        let input: Vec<f32> = (0..d.in_len()).map(|_| rng.below(3) as f32).collect();
        let (mut fast, mut fast_arg) = (vec![0.0; d.out_len()], vec![0; d.out_len()]);
        maxpool_forward(&d, &input, &mut fast, &mut fast_arg);
        let mut slow_arg = Vec::new();
        for c in 0..3 {
            for oy in 0..3 {
                for ox in 0..4 {
                    slow_arg.push(window_max(&input, c * 63 + oy * 18 + ox * 2, 9, 2).1 as u32);
                }
            }
        }
        assert_eq!(fast_arg, slow_arg);
        assert!(
            fast.iter()
                .zip(&fast_arg)
                .all(|(&v, &i)| v == input[i as usize])
        );
    }
}
