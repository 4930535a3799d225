//! What a tuned choice is keyed by: the adapter (name, driver, backend), the model's layer
//! table, the layer's shape with the batch bucket, and the candidate set (a new or changed
//! kernel must invalidate every old choice).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::gpu::kernel_choice::LayerKernel;
use crate::model::{LayerOp, Model};

/// Bump when the way candidates are timed or keyed changes.
const TUNER_VERSION: &str = "cnnviz.tune/2";

/// The largest batch the tuner times: larger buckets share its choice (the kernels' shapes
/// per image do not change past it, and timing the direct kernels at batch 775 would take
/// seconds).
pub const MAX_BUCKET: u32 = 64;

/// The adapter a cache file belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterKey {
    pub name: String,
    pub driver: String,
    pub backend: String,
}

impl AdapterKey {
    pub fn of(info: &wgpu::AdapterInfo) -> AdapterKey {
        AdapterKey {
            name: info.name.clone(),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            backend: format!("{:?}", info.backend),
        }
    }

    /// A file-name-safe digest of the adapter (its name, driver and backend).
    pub fn file_stem(&self) -> String {
        let digest = hex(&Sha256::digest(
            format!("{}\n{}\n{}", self.name, self.driver, self.backend).as_bytes(),
        ));
        let readable: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(24)
            .collect();
        format!("{readable}-{}", &digest[..12])
    }
}

/// The batch bucket of a network of `max_batch` images: the largest power of two not
/// above it, at most [`MAX_BUCKET`]. The tuner times each candidate at this batch.
pub fn batch_bucket(max_batch: u32) -> u32 {
    let below = 1u32 << (31 - max_batch.max(1).leading_zeros());
    below.min(MAX_BUCKET)
}

/// The kernels a layer can run (empty for layers without a choice).
pub fn candidates(op: LayerOp) -> &'static [LayerKernel] {
    match op {
        LayerOp::Conv2d(_) => &LayerKernel::ALL,
        LayerOp::Dense { .. } => &[LayerKernel::Direct, LayerKernel::Tiled],
        _ => &[],
    }
}

/// The key of layer `index` of `model` in bucket `bucket`: its operation, input and
/// output shapes, whether a ReLU follows (the kernels that fuse it write it too), and the
/// bucket. Layers of the same shape share a key and so a choice.
pub fn layer_key(model: &Model, index: usize, bucket: u32) -> String {
    let layer = &model.layers[index];
    let relu = model
        .layers
        .get(index + 1)
        .is_some_and(|next| next.plan.op == LayerOp::Relu);
    format!(
        "{:?} {:?} -> {:?}{} @b{bucket}",
        layer.plan.op,
        layer.plan.input,
        layer.plan.output,
        if relu { " +relu" } else { "" }
    )
}

/// Digest of the model's layer table (operations and shapes, not weights: timings do not
/// depend on the weights' values, so a retrained model keeps its tuning).
pub fn model_hash(model: &Model) -> String {
    let mut hasher = Sha256::new();
    for layer in &model.layers {
        hasher.update(format!(
            "{:?}|{:?}|{:?}\n",
            layer.plan.op, layer.plan.input, layer.plan.output
        ));
    }
    hex(&hasher.finalize())[..16].to_string()
}

/// Digest of the candidate set: the tuner version, every candidate's name and the source
/// of every shader a candidate runs. A new kernel, or a changed one, gives a new checksum
/// and so invalidates every cached choice.
pub fn candidate_checksum() -> String {
    let mut hasher = Sha256::new();
    hasher.update(TUNER_VERSION);
    for kernel in LayerKernel::ALL {
        hasher.update(kernel.name());
    }
    for source in [
        include_str!("../../../shaders/conv2d.wgsl"),
        include_str!("../../../shaders/conv2d_tiled.wgsl"),
        include_str!("../../../shaders/conv2d_gemm.wgsl"),
        include_str!("../../../shaders/dense.wgsl"),
        include_str!("../../../shaders/dense_tiled.wgsl"),
        include_str!("../../../shaders/relu.wgsl"),
        include_str!("../../../shaders/fused.wgsl"),
    ] {
        hasher.update(source);
    }
    hex(&hasher.finalize())[..16].to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::train::default_architecture;

    #[test]
    fn buckets_are_powers_of_two_up_to_the_cap() {
        assert_eq!(batch_bucket(0), 1);
        assert_eq!(batch_bucket(1), 1);
        assert_eq!(batch_bucket(3), 2);
        assert_eq!(batch_bucket(16), 16);
        assert_eq!(batch_bucket(63), 32);
        assert_eq!(batch_bucket(775), MAX_BUCKET);
    }

    #[test]
    fn keys_tell_shapes_and_buckets_apart() {
        let model = Model::filled(default_architecture(), || 0.0).expect("model");
        let conv1 = layer_key(&model, 0, 1);
        assert!(conv1.contains("+relu") && conv1.ends_with("@b1"), "{conv1}");
        assert_ne!(conv1, layer_key(&model, 0, 64));
        assert_ne!(conv1, layer_key(&model, 3, 1));
        assert_eq!(model_hash(&model).len(), 16);
        assert_eq!(candidate_checksum(), candidate_checksum());
        let adapter = AdapterKey {
            name: "llvmpipe (LLVM 15, 256 bits)".into(),
            driver: "llvmpipe".into(),
            backend: "Vulkan".into(),
        };
        let stem = adapter.file_stem();
        assert!(
            stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{stem}"
        );
    }
}
