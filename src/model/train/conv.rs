//! Convolution forward and backward through im2col and `sgemm`.
//!
//! The im2col columns of a whole chunk sit side by side (`[C·k·k][n·Q]`, `Q` columns per
//! image), so each pass is one long `sgemm` that the packed SIMD kernels run near peak.
//!
//! Output pixel `(oy, ox)` of an image is column `oy·pitch + ox`. Stride-1 convolutions
//! use *wide rows*: the pitch is the padded input width, so every im2col row is a single
//! contiguous slice of the zero-padded image (one `memcpy` instead of a short copy per
//! output row, and no edge cases). The `pitch − out_width` extra columns per row are
//! computed and dropped in the forward pass and held at zero in the backward pass, so they
//! add nothing to any gradient. Other strides use the plain layout (pitch = out_width).

use super::kernels::{gemm, lane_sum};
use crate::model::ConvGeometry;

/// Every size a convolution needs, resolved once from the plan.
#[derive(Clone, Copy, Debug)]
pub struct ConvDims {
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub out_height: usize,
    pub out_width: usize,
}

impl ConvDims {
    pub fn new(
        g: ConvGeometry,
        height: usize,
        width: usize,
        out_height: usize,
        out_width: usize,
    ) -> Self {
        Self {
            in_channels: g.in_channels,
            height,
            width,
            out_channels: g.out_channels,
            kernel: g.kernel,
            stride: g.stride,
            padding: g.padding,
            out_height,
            out_width,
        }
    }

    /// Rows of the column matrix: one per (input channel, kernel row, kernel column).
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    pub fn in_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    pub fn out_len(&self) -> usize {
        self.out_channels * self.out_height * self.out_width
    }

    fn wide_rows(&self) -> bool {
        self.stride == 1
    }

    fn padded_height(&self) -> usize {
        self.height + 2 * self.padding
    }

    fn padded_width(&self) -> usize {
        self.width + 2 * self.padding
    }

    /// Distance between consecutive output rows in the column matrix.
    fn pitch(&self) -> usize {
        if self.wide_rows() {
            self.padded_width()
        } else {
            self.out_width
        }
    }

    /// Columns of one image in the im2col matrix.
    pub fn cols_per_image(&self) -> usize {
        self.out_height * self.pitch()
    }

    /// Floats of the zero-padded copy of one input image (wide rows only). The `kernel`
    /// floats of slack let the last row's slice run past the final padded row.
    pub fn padded_len(&self) -> usize {
        if self.wide_rows() {
            self.in_channels * self.padded_height() * self.padded_width() + self.kernel
        } else {
            0
        }
    }

    /// Output columns `lo..hi` whose input column `ox·s + kx − p` lies inside the image.
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let (s, p, w) = (self.stride, self.padding, self.width);
        let lo = if p > kx { (p - kx).div_ceil(s) } else { 0 };
        let hi = if w + p > kx {
            (w + p - kx).div_ceil(s)
        } else {
            0
        };
        let lo = lo.min(self.out_width);
        (lo, hi.clamp(lo, self.out_width))
    }

    /// Input row of output row `oy` at kernel row `ky`, if inside the image.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.padding)
            .filter(|&iy| iy < self.height)
    }
}

/// Caller-owned buffers of the forward pass.
pub struct ConvForwardBuffers<'a> {
    /// Receives the im2col matrix, `patch_len × n·cols_per_image`; kept for backward.
    pub cols: &'a mut [f32],
    /// `out_channels × n·cols_per_image`.
    pub scratch: &'a mut [f32],
    /// `padded_len`, this layer's own: its zero border is written once and never touched.
    pub pad: &'a mut [f32],
}

/// Convolution of `n` images: `output = W · cols + b`.
pub fn conv_forward(
    d: &ConvDims,
    n: usize,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    buffers: ConvForwardBuffers<'_>,
    output: &mut [f32],
) {
    let row_stride = n * d.cols_per_image();
    for (image, x) in input.chunks_exact(d.in_len()).take(n).enumerate() {
        if d.wide_rows() {
            im2col_wide(x, d, buffers.pad, buffers.cols, row_stride, image);
        } else {
            im2col_strided(x, d, buffers.cols, row_stride, image);
        }
    }
    let scratch = &mut buffers.scratch[..d.out_channels * row_stride];
    gemm(
        d.out_channels,
        d.patch_len(),
        row_stride,
        weight,
        false,
        buffers.cols,
        false,
        scratch,
        false,
    );
    let (q, pitch, ow) = (d.cols_per_image(), d.pitch(), d.out_width);
    for (image, out) in output.chunks_exact_mut(d.out_len()).take(n).enumerate() {
        let planes = out.chunks_exact_mut(d.out_height * ow);
        for ((plane, row), &b) in planes.zip(scratch.chunks_exact(row_stride)).zip(bias) {
            let from = &row[image * q..(image + 1) * q];
            for (dst, src) in plane.chunks_exact_mut(ow).zip(from.chunks_exact(pitch)) {
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = v + b;
                }
            }
        }
    }
}

/// Caller-owned buffers of the backward pass.
pub struct ConvBackwardBuffers<'a> {
    /// The im2col matrix the forward pass left.
    pub cols: &'a [f32],
    /// `out_channels × n·cols_per_image`.
    pub scratch: &'a mut [f32],
    /// `patch_len × n·cols_per_image`.
    pub grad_cols: &'a mut [f32],
    /// At least `padded_len`.
    pub grad_pad: &'a mut [f32],
}

/// Where [`conv_backward`] writes: parameter gradients are accumulated into, the input
/// gradient (when wanted) is overwritten.
pub struct ConvGrads<'a> {
    pub weight: &'a mut [f32],
    pub bias: &'a mut [f32],
    pub input: Option<&'a mut [f32]>,
}

/// Backward of [`conv_forward`] for `n` images: `dW += dY·colsᵀ`, `db += Σ dY`, and
/// `dX = col2im(Wᵀ·dY)`.
pub fn conv_backward(
    d: &ConvDims,
    n: usize,
    grad_output: &[f32],
    weight: &[f32],
    buffers: ConvBackwardBuffers<'_>,
    grads: ConvGrads<'_>,
) {
    let row_stride = n * d.cols_per_image();
    let scratch = &mut buffers.scratch[..d.out_channels * row_stride];
    gather_grad_output(d, n, grad_output, scratch, row_stride);
    let (oc, patch) = (d.out_channels, d.patch_len());
    gemm(
        oc,
        row_stride,
        patch,
        scratch,
        false,
        buffers.cols,
        true,
        grads.weight,
        true,
    );
    for (b, row) in grads.bias.iter_mut().zip(scratch.chunks_exact(row_stride)) {
        *b += lane_sum(row);
    }
    let Some(grad_input) = grads.input else {
        return;
    };
    gemm(
        patch,
        oc,
        row_stride,
        weight,
        true,
        scratch,
        false,
        buffers.grad_cols,
        false,
    );
    for (image, gi) in grad_input.chunks_exact_mut(d.in_len()).take(n).enumerate() {
        if d.wide_rows() {
            col2im_wide(
                buffers.grad_cols,
                d,
                row_stride,
                image,
                buffers.grad_pad,
                gi,
            );
        } else {
            gi.fill(0.0);
            col2im_strided(buffers.grad_cols, d, row_stride, image, gi);
        }
    }
}

/// Lays the output gradient out like the forward product, zero in the dropped columns.
fn gather_grad_output(
    d: &ConvDims,
    n: usize,
    grad_output: &[f32],
    scratch: &mut [f32],
    row_stride: usize,
) {
    let (q, pitch, ow) = (d.cols_per_image(), d.pitch(), d.out_width);
    for (image, g) in grad_output.chunks_exact(d.out_len()).take(n).enumerate() {
        let planes = g.chunks_exact(d.out_height * ow);
        for (plane, row) in planes.zip(scratch.chunks_exact_mut(row_stride)) {
            let to = &mut row[image * q..(image + 1) * q];
            for (dst, src) in to.chunks_exact_mut(pitch).zip(plane.chunks_exact(ow)) {
                let (valid, dropped) = dst.split_at_mut(ow);
                valid.copy_from_slice(src);
                dropped.fill(0.0);
            }
        }
    }
}

/// Stride-1 im2col: pad the image, then each column row is one slice of the padded image.
fn im2col_wide(
    input: &[f32],
    d: &ConvDims,
    pad: &mut [f32],
    cols: &mut [f32],
    row_stride: usize,
    image: usize,
) {
    let (ph, pw, p) = (d.padded_height(), d.padded_width(), d.padding);
    for (c, plane) in input.chunks_exact(d.height * d.width).enumerate() {
        for (y, src) in plane.chunks_exact(d.width).enumerate() {
            let at = (c * ph + y + p) * pw + p;
            pad[at..at + d.width].copy_from_slice(src);
        }
    }
    let (k, q) = (d.kernel, d.cols_per_image());
    for (row, dst) in cols
        .chunks_exact_mut(row_stride)
        .take(d.patch_len())
        .enumerate()
    {
        let (c, ky, kx) = (row / (k * k), row / k % k, row % k);
        let start = c * ph * pw + ky * pw + kx;
        dst[image * q..(image + 1) * q].copy_from_slice(&pad[start..start + q]);
    }
}

/// The adjoint of [`im2col_wide`]: add every column row onto its slice of a padded
/// gradient image, then crop the border off into `grad_input`.
fn col2im_wide(
    grad_cols: &[f32],
    d: &ConvDims,
    row_stride: usize,
    image: usize,
    grad_pad: &mut [f32],
    grad_input: &mut [f32],
) {
    let (ph, pw, p) = (d.padded_height(), d.padded_width(), d.padding);
    let (k, q) = (d.kernel, d.cols_per_image());
    let grad_pad = &mut grad_pad[..d.padded_len()];
    grad_pad.fill(0.0);
    for (row, src) in grad_cols
        .chunks_exact(row_stride)
        .take(d.patch_len())
        .enumerate()
    {
        let (c, ky, kx) = (row / (k * k), row / k % k, row % k);
        let start = c * ph * pw + ky * pw + kx;
        for (g, &v) in grad_pad[start..start + q].iter_mut().zip(&src[image * q..]) {
            *g += v;
        }
    }
    for (c, plane) in grad_input.chunks_exact_mut(d.height * d.width).enumerate() {
        for (y, dst) in plane.chunks_exact_mut(d.width).enumerate() {
            let at = (c * ph + y + p) * pw + p;
            dst.copy_from_slice(&grad_pad[at..at + d.width]);
        }
    }
}

/// General im2col for strides above 1, with explicit zero padding.
fn im2col_strided(input: &[f32], d: &ConvDims, cols: &mut [f32], row_stride: usize, image: usize) {
    let (k, s, p, q) = (d.kernel, d.stride, d.padding, d.cols_per_image());
    for (row, dst_row) in cols
        .chunks_exact_mut(row_stride)
        .take(d.patch_len())
        .enumerate()
    {
        let (c, ky, kx) = (row / (k * k), row / k % k, row % k);
        let plane = &input[c * d.height * d.width..(c + 1) * d.height * d.width];
        let (lo, hi) = d.valid_columns(kx);
        let out = &mut dst_row[image * q..(image + 1) * q];
        for (oy, dst) in out.chunks_exact_mut(d.out_width).enumerate() {
            dst.fill(0.0);
            if let (Some(iy), true) = (d.input_row(oy, ky), lo < hi) {
                let src = plane[iy * d.width + lo * s + kx - p..].iter().step_by(s);
                for (v, &x) in dst[lo..hi].iter_mut().zip(src) {
                    *v = x;
                }
            }
        }
    }
}

/// The adjoint of [`im2col_strided`]; adds onto `grad_input`.
fn col2im_strided(
    grad_cols: &[f32],
    d: &ConvDims,
    row_stride: usize,
    image: usize,
    grad_input: &mut [f32],
) {
    let (k, s, p, q) = (d.kernel, d.stride, d.padding, d.cols_per_image());
    for (row, src_row) in grad_cols
        .chunks_exact(row_stride)
        .take(d.patch_len())
        .enumerate()
    {
        let (c, ky, kx) = (row / (k * k), row / k % k, row % k);
        let plane = &mut grad_input[c * d.height * d.width..(c + 1) * d.height * d.width];
        let (lo, hi) = d.valid_columns(kx);
        let from = &src_row[image * q..(image + 1) * q];
        for (oy, src) in from.chunks_exact(d.out_width).enumerate() {
            if let (Some(iy), true) = (d.input_row(oy, ky), lo < hi) {
                let dst = plane[iy * d.width + lo * s + kx - p..]
                    .iter_mut()
                    .step_by(s);
                for (g, &v) in dst.zip(&src[lo..hi]) {
                    *g += v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::Rng;

    fn dims(h: usize, w: usize, k: usize, s: usize, p: usize) -> ConvDims {
        let g = ConvGeometry {
            in_channels: 2,
            out_channels: 3,
            kernel: k,
            stride: s,
            padding: p,
            padding_end: p,
        };
        ConvDims::new(g, h, w, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
    }

    /// Direct convolution, the obvious way, to check im2col + gemm against.
    fn conv_direct(d: &ConvDims, input: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; d.out_len()];
        for oc in 0..d.out_channels {
            for oy in 0..d.out_height {
                for ox in 0..d.out_width {
                    let mut acc = bias[oc];
                    for c in 0..d.in_channels {
                        for ky in 0..d.kernel {
                            for kx in 0..d.kernel {
                                let iy = (oy * d.stride + ky) as isize - d.padding as isize;
                                let ix = (ox * d.stride + kx) as isize - d.padding as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= d.height as isize
                                    || ix >= d.width as isize
                                {
                                    continue;
                                }
                                let x = input[(c * d.height + iy as usize) * d.width + ix as usize];
                                let w = weight
                                    [((oc * d.in_channels + c) * d.kernel + ky) * d.kernel + kx];
                                acc += x * w;
                            }
                        }
                    }
                    out[(oc * d.out_height + oy) * d.out_width + ox] = acc;
                }
            }
        }
        out
    }

    const SHAPES: [(usize, usize, usize, usize, usize); 6] = [
        (7, 5, 3, 1, 1),
        (9, 8, 5, 2, 2),
        (6, 6, 2, 3, 1),
        (5, 7, 1, 1, 0),
        (8, 6, 5, 1, 2),
        (6, 9, 4, 1, 0),
    ];

    #[test]
    fn im2col_conv_matches_direct_convolution() {
        let mut rng = Rng::new(3);
        for (h, w, k, s, p) in SHAPES {
            let d = dims(h, w, k, s, p);
            let n = 2;
            let input: Vec<f32> = (0..n * d.in_len())
                .map(|_| rng.uniform(-1.0, 1.0))
                .collect();
            let weight: Vec<f32> = (0..3 * d.patch_len())
                .map(|_| rng.uniform(-1.0, 1.0))
                .collect();
            let bias = [0.5, -0.25, 0.125];
            let mut cols = vec![0.0; d.patch_len() * n * d.cols_per_image()];
            let mut scratch = vec![0.0; 3 * n * d.cols_per_image()];
            let mut pad = vec![0.0; d.padded_len()];
            let mut out = vec![0.0; n * d.out_len()];
            let buffers = ConvForwardBuffers {
                cols: &mut cols,
                scratch: &mut scratch,
                pad: &mut pad,
            };
            conv_forward(&d, n, &input, &weight, &bias, buffers, &mut out);
            for image in 0..n {
                let want = conv_direct(&d, &input[image * d.in_len()..], &weight, &bias);
                for (a, b) in out[image * d.out_len()..].iter().zip(&want) {
                    assert!((a - b).abs() < 1e-5, "{h}×{w} k{k} s{s} p{p}: {a} vs {b}");
                }
            }
        }
    }

    /// `⟨conv(x), g⟩ = ⟨x, convᵀ(g)⟩`: the backward pass is the exact adjoint.
    #[test]
    fn input_gradient_is_the_adjoint() {
        let mut rng = Rng::new(5);
        for (h, w, k, s, p) in SHAPES {
            let d = dims(h, w, k, s, p);
            let n = 2;
            let x: Vec<f32> = (0..n * d.in_len())
                .map(|_| rng.uniform(-1.0, 1.0))
                .collect();
            let g: Vec<f32> = (0..n * d.out_len())
                .map(|_| rng.uniform(-1.0, 1.0))
                .collect();
            let weight: Vec<f32> = (0..3 * d.patch_len())
                .map(|_| rng.uniform(-1.0, 1.0))
                .collect();
            let q = n * d.cols_per_image();
            let (mut cols, mut scratch) = (vec![0.0; d.patch_len() * q], vec![0.0; 3 * q]);
            let mut pad = vec![0.0; d.padded_len()];
            let mut y = vec![0.0; n * d.out_len()];
            let buffers = ConvForwardBuffers {
                cols: &mut cols,
                scratch: &mut scratch,
                pad: &mut pad,
            };
            conv_forward(&d, n, &x, &weight, &[0.0; 3], buffers, &mut y);
            let (mut gw, mut gb, mut gx) = (vec![0.0; weight.len()], [0.0; 3], vec![0.0; x.len()]);
            let mut grad_cols = vec![0.0; d.patch_len() * q];
            let mut grad_pad = vec![1.0; d.padded_len()];
            let buffers = ConvBackwardBuffers {
                cols: &cols,
                scratch: &mut scratch,
                grad_cols: &mut grad_cols,
                grad_pad: &mut grad_pad,
            };
            let grads = ConvGrads {
                weight: &mut gw,
                bias: &mut gb,
                input: Some(&mut gx),
            };
            conv_backward(&d, n, &g, &weight, buffers, grads);
            let lhs: f64 = y.iter().zip(&g).map(|(a, b)| f64::from(a * b)).sum();
            let rhs: f64 = x.iter().zip(&gx).map(|(a, b)| f64::from(a * b)).sum();
            assert!(
                (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                "{h}×{w} k{k} s{s} p{p}: {lhs} vs {rhs}"
            );
            // ⟨conv_W(x), g⟩ is linear in W too: ⟨W, dW⟩ must give the same number.
            let rhs_w: f64 = weight.iter().zip(&gw).map(|(a, b)| f64::from(a * b)).sum();
            assert!(
                (lhs - rhs_w).abs() < 1e-3 * lhs.abs().max(1.0),
                "weights: {lhs} vs {rhs_w}"
            );
        }
    }
}
