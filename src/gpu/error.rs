/// Everything that can go wrong between a model and the GPU. Messages name the number or
/// the limit involved so a caller can react (smaller batch, other block) without reading code.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found ({0}); on a machine without a GPU install Mesa's software Vulkan driver: apt-get install mesa-vulkan-drivers"
    )]
    NoAdapter(String),
    #[error("the GPU adapter refused to create a device: {0}")]
    RequestDevice(#[from] wgpu::RequestDeviceError),
    #[error("max_batch must be at least 1")]
    ZeroBatch,
    #[error(
        "a batch of {requested} images does not fit this device: {reason}; the biggest batch that fits is {fits}"
    )]
    BatchTooLarge {
        requested: u32,
        fits: u32,
        reason: String,
    },
    #[error("the model does not fit this device: {0}")]
    ModelTooLarge(String),
    #[error("batch of {batch} images: between 1 and max_batch = {max_batch} are supported")]
    BadBatch { batch: u32, max_batch: u32 },
    #[error(
        "{len} input floats is not a whole number of images of {image_len} floats (or is empty)"
    )]
    InputLength { len: usize, image_len: usize },
    #[error("conv block {block} does not exist; the model has {blocks} conv blocks")]
    BadBlock { block: usize, blocks: usize },
    #[error("Grad-CAM needs a conv block, and this model has none")]
    NoConvBlock,
    #[error("class {class} does not exist; the model has {classes} classes")]
    BadClass { class: usize, classes: usize },
    #[error("the device lacks TIMESTAMP_QUERY, so kernels cannot be timed")]
    TimestampsUnsupported,
    #[error("the kernel timer holds {capacity} kernels but {needed} were recorded")]
    TimerTooSmall { capacity: u32, needed: usize },
    #[error("the kernel timer has nothing recorded to read")]
    TimerEmpty,
    #[error("the kernel timer's last readback is still in flight; take its result first")]
    TimerBusy,
    #[error("the probability readback is still in flight; take its result before reusing it")]
    ReadbackBusy,
    #[error("wgpu reported a validation error while {during}: {message}")]
    Validation { during: String, message: String },
    #[error("the GPU ran out of memory while {during}: {message}")]
    OutOfMemory { during: String, message: String },
    #[error("waiting for the GPU failed: {0}")]
    Poll(#[from] wgpu::PollError),
    #[error("mapping a readback buffer failed: {0}")]
    Map(#[from] wgpu::BufferAsyncError),
    #[error("reading a mapped buffer failed: {0}")]
    MapRange(#[from] wgpu::MapRangeError),
    #[error("a readback of {capacity} bytes cannot hold {needed} bytes")]
    ReadbackTooSmall { capacity: u64, needed: u64 },
    #[error("a blocking GPU wait was attempted inside a frame (a frame must never wait)")]
    BlockingWaitInFrame,
    #[error("the GPU dropped a readback before it completed")]
    MapCallbackLost,
    #[error("{0}")]
    FeatureVis(#[from] crate::feature_vis::FeatureVisError),
    #[error("bad explanation option: {0}")]
    BadExplainOption(String),
    #[error("unknown kernel variant {0:?}: expected direct, tiled, auto or fused (CNNVIZ_KERNELS)")]
    BadKernelVariant(String),
}
