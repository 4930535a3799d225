//! A redb storage backend that reads a file but never writes it.
//!
//! Opening a redb file for writing modifies it at once (redb marks it open, and repairs it
//! if it was not closed cleanly), and an integrity check that fails "repairs" too. So before
//! the store opens a file for real, it opens it through this backend: reads come from the
//! file, writes land in memory, locks are the file's real locks (so a store in use is
//! reported as such). If redb, with its full integrity check, accepts the file this way, the
//! real open will too; if not, the file is left exactly as it was.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::Mutex;

use redb::backends::FileBackend;
use redb::{BackendError, DatabaseError, StorageBackend};

const CHUNK: u64 = 4096;

#[derive(Debug)]
struct Overlay {
    /// The length redb believes the storage has.
    len: u64,
    /// Bytes of the real file that are still visible (a shrink hides the rest).
    base_len: u64,
    /// Chunks redb has written, by index, each `CHUNK` bytes.
    chunks: HashMap<u64, Vec<u8>>,
}

#[derive(Debug)]
pub(super) struct ProbeBackend {
    file: FileBackend,
    overlay: Mutex<Overlay>,
}

impl ProbeBackend {
    /// `file` must be opened for reading and writing (redb's write locks need that); this
    /// backend never writes through it.
    pub fn new(file: File) -> Result<ProbeBackend, DatabaseError> {
        let file = FileBackend::new(file)?;
        let len = file.len()?;
        Ok(ProbeBackend {
            file,
            overlay: Mutex::new(Overlay {
                len,
                base_len: len,
                chunks: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, Overlay>> {
        self.overlay
            .lock()
            .map_err(|_| io::Error::other("probe overlay lock poisoned"))
    }

    /// Reads from the real file what lies below `base_len`; zeros above.
    fn read_base(&self, base_len: u64, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let from_file = base_len.saturating_sub(offset).min(out.len() as u64) as usize;
        if from_file > 0 {
            self.file.read(offset, &mut out[..from_file])?;
        }
        out[from_file..].fill(0);
        Ok(())
    }
}

impl StorageBackend for ProbeBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.lock()?.len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let overlay = self.lock()?;
        let end = offset.checked_add(out.len() as u64);
        if end.is_none_or(|end| end > overlay.len) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            ));
        }
        let mut done = 0usize;
        while done < out.len() {
            let pos = offset + done as u64;
            let within = (pos % CHUNK) as usize;
            let n = (CHUNK as usize - within).min(out.len() - done);
            let dst = &mut out[done..done + n];
            match overlay.chunks.get(&(pos / CHUNK)) {
                Some(chunk) => dst.copy_from_slice(&chunk[within..within + n]),
                None => self.read_base(overlay.base_len, pos, dst)?,
            }
            done += n;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut overlay = self.lock()?;
        if len < overlay.len {
            overlay.base_len = overlay.base_len.min(len);
            overlay.chunks.retain(|&index, _| index * CHUNK < len);
            // What a later growth exposes again must read as zeros.
            if let Some(chunk) = overlay.chunks.get_mut(&(len / CHUNK)) {
                chunk[(len % CHUNK) as usize..].fill(0);
            }
        }
        overlay.len = len;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut overlay = self.lock()?;
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let index = pos / CHUNK;
            let within = (pos % CHUNK) as usize;
            let n = (CHUNK as usize - within).min(data.len() - done);
            if !overlay.chunks.contains_key(&index) {
                let mut chunk = vec![0u8; CHUNK as usize];
                self.read_base(overlay.base_len, index * CHUNK, &mut chunk)?;
                overlay.chunks.insert(index, chunk);
            }
            if let Some(chunk) = overlay.chunks.get_mut(&index) {
                chunk[within..within + n].copy_from_slice(&data[done..done + n]);
            }
            done += n;
        }
        let end = offset + data.len() as u64;
        overlay.len = overlay.len.max(end);
        Ok(())
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}
