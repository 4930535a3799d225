//! The GPU half of the survey: after a batched forward pass of the network, one dispatch
//! per conv block reduces every channel of the block's output (its ReLU output, the
//! Grad-CAM target) to max, argmax and mean (`shaders/channel_stats.wgsl`), so a batch
//! reads back 3 floats per channel instead of the whole arena.

use wgpu::util::DeviceExt;

use crate::gpu::GpuNetwork;
use crate::model::ConvBlock;

/// Rust twin of `StatsJob` in `shaders/channel_stats.wgsl`, field by field.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct StatsJob {
    source: u32,
    image_len: u32,
    channels: u32,
    plane: u32,
    destination: u32,
    pad: [u32; 3],
}

/// Floats the pass writes per (image, channel).
pub const STATS_PER_CHANNEL: usize = 3;

/// One dispatch per block over a network's activation arena, writing one stats buffer.
pub struct ChannelStatsPass {
    pipeline: wgpu::ComputePipeline,
    jobs: Vec<(wgpu::BindGroup, u32)>,
    /// `[block][image][channel][3]`, block-major; block `b` starts at `block_offsets[b]`.
    pub stats: wgpu::Buffer,
    pub block_offsets: Vec<usize>,
    pub floats: usize,
}

impl ChannelStatsPass {
    /// A pass over `blocks` of `network` for up to its `max_batch` images.
    pub fn new(device: &wgpu::Device, network: &GpuNetwork, blocks: &[ConvBlock]) -> Self {
        let module =
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/channel_stats.wgsl"));
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("channel_stats"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let max_batch = network.max_batch() as usize;
        let mut block_offsets = Vec::with_capacity(blocks.len());
        let mut floats = 0usize;
        for block in blocks {
            block_offsets.push(floats);
            floats += max_batch * block.channels * STATS_PER_CHANNEL;
        }
        let stats = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("channel stats"),
            size: (floats.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let layout = pipeline.get_bind_group_layout(0);
        let jobs = blocks
            .iter()
            .zip(&block_offsets)
            .map(|(block, &target)| {
                let slot = &network.layout().slots[block.output_layer + 1];
                let job = StatsJob {
                    source: slot.offset as u32,
                    image_len: slot.len as u32,
                    channels: block.channels as u32,
                    plane: (block.height * block.width) as u32,
                    destination: target as u32,
                    pad: [0; 3],
                };
                let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("channel stats job"),
                    contents: bytemuck::bytes_of(&job),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("channel stats"),
                    layout: &layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: uniform.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: network.activation_buffer().as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: stats.as_entire_binding(),
                        },
                    ],
                });
                (bind_group, block.channels as u32)
            })
            .collect();
        ChannelStatsPass {
            pipeline,
            jobs,
            stats,
            block_offsets,
            floats,
        }
    }

    /// Records the reduction of `batch` images (after the network's forward pass in the
    /// same encoder).
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder, batch: u32) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("channel stats"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        for (bind_group, channels) in &self.jobs {
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(*channels, batch, 1);
        }
    }
}
