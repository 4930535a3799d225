//! The one place that waits for the GPU. Everything that blocks (the CLI's readbacks, the
//! benchmarks' clock, offscreen screenshots, the timer's blocking read) goes through
//! [`wait_for_gpu`] or [`map_read`], and both refuse inside a frame: a frame must never
//! stall on the GPU (and a browser build cannot), so the viewer marks its frame with a
//! [`FrameScope`] and a blocking call made under it fails with
//! [`GpuError::BlockingWaitInFrame`] instead of waiting. Tests read
//! [`blocking_waits_refused`] to prove that no frame path tries.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::GpuError;

thread_local! {
    /// How many frame scopes are open on this thread (frames do not nest, but a count is
    /// as cheap as a flag and stays right if they ever do).
    static FRAMES_OPEN: Cell<u32> = const { Cell::new(0) };
}

/// How many blocking waits were refused because they came from inside a frame, over the
/// whole process.
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// Marks the current thread as drawing a frame until dropped.
#[must_use = "the frame lasts as long as the scope is held"]
pub struct FrameScope(());

impl FrameScope {
    pub fn enter() -> FrameScope {
        FRAMES_OPEN.with(|open| open.set(open.get() + 1));
        FrameScope(())
    }
}

impl Drop for FrameScope {
    fn drop(&mut self) {
        FRAMES_OPEN.with(|open| open.set(open.get().saturating_sub(1)));
    }
}

/// Whether the current thread is inside a [`FrameScope`].
pub fn in_frame() -> bool {
    FRAMES_OPEN.with(|open| open.get() > 0)
}

/// How many blocking waits a frame path attempted (and was refused) so far in this
/// process. Zero is the only right answer.
pub fn blocking_waits_refused() -> usize {
    REFUSED.load(Ordering::Relaxed)
}

/// [`GpuError::BlockingWaitInFrame`] (counted and logged) inside a frame, else `Ok`:
/// the first line of everything that blocks on the GPU.
pub fn refuse_in_frame(what: &str) -> Result<(), GpuError> {
    if in_frame() {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        log::error!("{what} was attempted inside a frame; refused (a frame never waits)");
        return Err(GpuError::BlockingWaitInFrame);
    }
    Ok(())
}

/// Waits until the device has finished all submitted work. Refused inside a frame.
pub fn wait_for_gpu(device: &wgpu::Device) -> Result<(), GpuError> {
    refuse_in_frame("a blocking GPU wait")?;
    device.poll(wgpu::PollType::wait_indefinitely())?;
    Ok(())
}

/// Maps `range` of a MAP_READ buffer, waits, copies it out and unmaps. Refused inside a
/// frame (use [`super::AsyncReadback`] there).
pub fn map_read(
    device: &wgpu::Device,
    buffer: &wgpu::Buffer,
    range: std::ops::Range<u64>,
) -> Result<Vec<u8>, GpuError> {
    refuse_in_frame("a blocking readback")?;
    let slice = buffer.slice(range);
    let (sender, receiver) = mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |result| {
        // The receiver outlives the wait below; a failed send only means it gave up.
        let _ = sender.send(result);
    });
    wait_for_gpu(device)?;
    receiver.recv().map_err(|_| GpuError::MapCallbackLost)??;
    let data = slice.get_mapped_range()?.to_vec();
    buffer.unmap();
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_scope_is_seen_only_while_held() {
        assert!(!in_frame());
        {
            let _frame = FrameScope::enter();
            assert!(in_frame());
        }
        assert!(!in_frame());
    }
}
