//! One kiosk per store: an exclusive lock on `<store>.lock`, held for the life of the
//! process. The operating system drops the lock when the process ends, however it ends,
//! so a crash never leaves a stale lock; the file only carries the holder's PID for the
//! message the second kiosk prints.
//!
//! Take the lock before opening the store: redb would refuse the second opener too, but
//! without saying who holds the file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the lock was not taken, in one line.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "another cnnviz kiosk{} is running on the store {store} (lock {lock})",
        holder.map(|pid| format!(" (PID {pid})")).unwrap_or_default()
    )]
    Held {
        store: PathBuf,
        lock: PathBuf,
        /// The holder's PID, when its lock file could be read.
        holder: Option<u32>,
    },
    #[error("cannot create the kiosk lock file {lock}")]
    Io {
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file of a store: `<store>.lock` beside it.
    pub fn path_for(store: &Path) -> PathBuf {
        let mut name = store.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of `store` without waiting; creates the lock file (and its
    /// directory) when missing.
    pub fn acquire(store: &Path) -> Result<InstanceLock, InstanceError> {
        let path = InstanceLock::path_for(store);
        let io = |source| InstanceError::Io {
            lock: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(InstanceError::Held {
                    store: store.to_path_buf(),
                    holder: read_pid(&path),
                    lock: path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Ours now: say who holds it.
        let pid = std::process::id();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(format!("{pid}\n").as_bytes()))
            .and_then(|()| file.flush())
            .map_err(io)?;
        Ok(InstanceLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open lock file (kept open: closing it would release the lock).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// The PID in a lock file, if it can be read (on Windows a locked file cannot).
fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_store_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("sub/cnnviz.redb");
        let first = InstanceLock::acquire(&store).expect("the first kiosk");
        assert_eq!(first.path(), dir.path().join("sub/cnnviz.redb.lock"));
        let second = InstanceLock::acquire(&store).expect_err("the second kiosk");
        let message = second.to_string();
        if cfg!(unix) {
            assert!(
                message.contains(&format!("PID {}", std::process::id())),
                "{message}"
            );
        }
        assert!(message.contains("cnnviz.redb"), "{message}");
        assert!(!message.contains('\n'));
        // Another store is another kiosk.
        let other = InstanceLock::acquire(&dir.path().join("other.redb"));
        assert!(other.is_ok());
        // Released on drop: the next kiosk gets it.
        drop(first);
        InstanceLock::acquire(&store).expect("free again");
    }

    #[test]
    fn an_unusable_lock_path_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        // The lock's directory is a file.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let e = InstanceLock::acquire(&blocker.join("cnnviz.redb")).unwrap_err();
        assert!(matches!(e, InstanceError::Io { .. }), "{e}");
    }
}
