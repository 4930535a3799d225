//! Finding, creating, validating and opening the store file.
//!
//! The rules: a missing file is created (parents too) as a complete, initialised store that
//! appears under its name in one step; an existing file is first opened through
//! [`ProbeBackend`], which cannot write, with redb's full integrity check, and only a file
//! that passes — a redb database holding a cnnviz store of a format this cnnviz reads — is
//! then opened for real. Anything else is an error naming the file, and the file stays as it
//! was, unless the caller explicitly asked to move a corrupt file aside.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{Builder, Database, DatabaseError, ReadableDatabase, StorageError, TableHandle};

use super::StoreError;
use super::probe::ProbeBackend;
use super::record::FORMAT_VERSION;
use super::tables::{META, META_FORMAT_VERSION};
use super::time::now_ms;

/// The environment variable that overrides the default store location.
pub const STORE_ENV: &str = "CNNVIZ_STORE";
/// The store's file name in the platform data directory.
pub const STORE_FILE_NAME: &str = "cnnviz.redb";

/// redb's file signature: the first bytes of every redb database.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Page cache for the store. Gallery pages touch a few hundred kilobytes; this keeps the hot
/// part of a large store in memory without taking redb's 1 GiB default.
const CACHE_BYTES: usize = 64 << 20;
/// The probe reads the whole file once; it needs no cache to speak of.
const PROBE_CACHE_BYTES: usize = 4 << 20;

/// Where the store lives: `explicit` (`--store`), else `$CNNVIZ_STORE`, else
/// `cnnviz.redb` in the platform data directory (`~/.local/share/cnnviz/` on Linux).
pub fn resolve_store_path(explicit: Option<&Path>) -> Result<PathBuf, StoreError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(STORE_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let dirs = directories::ProjectDirs::from("", "", "cnnviz").ok_or(StoreError::NoDataDir)?;
    Ok(dirs.data_dir().join(STORE_FILE_NAME))
}

/// Options for [`super::PredictionStore::open_with`].
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// Create the store (and its parent directories) when the file does not exist.
    pub create: bool,
    /// When the file is corrupt or foreign, rename it aside (to `NAME.corrupt-TIME`) and
    /// start a fresh store. Only ever on an explicit request from the person.
    pub reset_corrupt: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            create: true,
            reset_corrupt: false,
        }
    }
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Opens (or creates) the database at `path` following the rules in the module comment.
/// Returns the database and, when a corrupt file was moved aside on request, where to.
pub(super) fn open_database(
    path: &Path,
    options: &StoreOptions,
) -> Result<(Database, Option<PathBuf>), StoreError> {
    let mut moved_aside = None;
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && options.create => {
            create_fresh(path)?;
        }
        Err(e) => return Err(io_error(path)(e)),
        Ok(meta) if !meta.is_file() => {
            // A directory or device is never moved, whatever the flag says.
            return Err(corrupt(path, "it is not a regular file"));
        }
        Ok(_) => match probe(path) {
            Ok(()) => {}
            Err(error) if error.is_corrupt() && options.reset_corrupt => {
                moved_aside = Some(move_aside(path)?);
                create_fresh(path)?;
            }
            Err(error) => return Err(error),
        },
    }
    let db = open_validated(path)?;
    Ok((db, moved_aside))
}

/// The real open, of a file the probe accepted (or that this process just created).
fn open_validated(path: &Path) -> Result<Database, StoreError> {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        // No second full check: the probe verified every page moments ago (it is the
        // expensive part of opening a large store). A file that was not closed cleanly is
        // repaired here exactly as the probe repaired it in memory.
        Builder::new().set_cache_size(CACHE_BYTES).open(path)
    }));
    match opened {
        Ok(Ok(db)) => {
            check_contents(path, &db)?;
            Ok(db)
        }
        Ok(Err(e)) => Err(database_error(path, e)),
        Err(_) => Err(corrupt(path, "redb failed while reading it")),
    }
}

/// Opens `path` through the write-nothing backend with a full integrity check, and looks at
/// its tables. Never modifies the file.
fn probe(path: &Path) -> Result<(), StoreError> {
    check_magic(path)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_error(path))?;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let backend = ProbeBackend::new(file)?;
        let db = Builder::new()
            .set_cache_size(PROBE_CACHE_BYTES)
            .set_check_integrity_on_open(true)
            // The backend refuses nothing, so this "create" only ever opens: the magic was
            // checked above, and redb initialises only empty files.
            .create_with_backend(backend)?;
        Ok::<_, DatabaseError>(db)
    }));
    let db = match result {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(database_error(path, e)),
        Err(_) => return Err(corrupt(path, "redb failed while reading it")),
    };
    let checked = catch_unwind(AssertUnwindSafe(|| check_contents(path, &db)));
    checked.unwrap_or_else(|_| Err(corrupt(path, "redb failed while reading it")))
}

fn check_magic(path: &Path) -> Result<(), StoreError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let mut head = [0u8; REDB_MAGIC.len()];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path)(e)),
        }
    }
    if got == 0 {
        return Err(corrupt(path, "the file is empty"));
    }
    if got < head.len() || head != REDB_MAGIC {
        return Err(corrupt(path, "it is not a redb database"));
    }
    Ok(())
}

/// A redb database is a cnnviz store if it has our `meta` table with a format version we
/// read, or no tables at all (created, then interrupted before its first commit).
fn check_contents(path: &Path, db: &impl ReadableDatabase) -> Result<(), StoreError> {
    let fail = |e: redb::Error| database_error_from(path, e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let names: Vec<String> = txn
        .list_tables()
        .map_err(|e| fail(e.into()))?
        .map(|t| t.name().to_string())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    if !names.iter().any(|n| n == META.name()) {
        return Err(corrupt(
            path,
            format!(
                "a redb database of some other program (tables: {})",
                names.join(", ")
            ),
        ));
    }
    let meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
    let version = meta
        .get(META_FORMAT_VERSION)
        .map_err(|e| fail(e.into()))?
        .map(|v| v.value());
    match version {
        None => Err(corrupt(path, "its format version is missing")),
        Some(v) if v > u64::from(FORMAT_VERSION) => Err(StoreError::NewerFormat {
            path: path.to_path_buf(),
            found: u32::try_from(v).unwrap_or(u32::MAX),
            supported: FORMAT_VERSION,
        }),
        Some(0) => Err(corrupt(path, "format version 0")),
        Some(_) => Ok(()),
    }
}

pub(super) fn database_error(path: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::InUse {
                path: path.to_path_buf(),
            }
        }
        DatabaseError::UpgradeRequired(v) => corrupt(
            path,
            format!("a redb database in the old file format {v}, which this redb does not read"),
        ),
        DatabaseError::RepairAborted => corrupt(path, "it needs a repair that did not complete"),
        DatabaseError::Storage(s) => storage_error(path, s),
        other => corrupt(path, other.to_string()),
    }
}

fn storage_error(path: &Path, e: StorageError) -> StoreError {
    match e {
        StorageError::Io(io)
            if !matches!(
                io.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
            ) =>
        {
            io_error(path)(io)
        }
        StorageError::Io(io) => corrupt(path, io.to_string()),
        other => corrupt(path, other.to_string()),
    }
}

/// Errors while validating: a file redb cannot read is corrupt; a lock is "in use".
fn database_error_from(path: &Path, e: redb::Error) -> StoreError {
    match e {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => StoreError::InUse {
            path: path.to_path_buf(),
        },
        redb::Error::Io(io) => io_error(path)(io),
        other => corrupt(path, other.to_string()),
    }
}

/// Builds a complete, initialised store beside `path` and links it into place, so a store
/// that exists under its name always has its tables — a crash during creation leaves only a
/// stray temporary file, never a half-made store that the next start would call corrupt.
fn create_fresh(path: &Path) -> Result<(), StoreError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_error(&parent))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| STORE_FILE_NAME.to_string());
    let temp = parent.join(format!(".{name}.new-{}-{}", std::process::id(), now_ms()));
    let built = (|| {
        let db = Database::create(&temp).map_err(|e| database_error(&temp, e))?;
        super::write::initialise(&db, &temp)?;
        db.close().map_err(|e| database_error(&temp, e))
    })();
    if let Err(e) = built {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // `hard_link` refuses to replace an existing file, so a store another process created a
    // moment ago is never clobbered; ours is then simply discarded.
    let linked = match fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        // Filesystems without hard links: rename, after checking nothing is there.
        Err(_) if !path.exists() => fs::rename(&temp, path),
        Err(e) => Err(e),
    };
    let _ = fs::remove_file(&temp);
    linked.map_err(io_error(path))?;
    sync_dir(&parent);
    Ok(())
}

/// Makes a new directory entry durable. Best effort: not every platform can open a directory.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Renames a corrupt store to `NAME.corrupt-SECONDS[-N]`, never replacing an existing file,
/// and returns the new path.
pub fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let secs = now_ms() / 1000;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| STORE_FILE_NAME.to_string());
    for n in 0..1000 {
        let suffix = if n == 0 {
            format!("corrupt-{secs}")
        } else {
            format!("corrupt-{secs}-{n}")
        };
        let target = path.with_file_name(format!("{name}.{suffix}"));
        match fs::hard_link(path, &target) {
            Ok(()) => {
                fs::remove_file(path).map_err(io_error(path))?;
                if let Some(parent) = path.parent() {
                    sync_dir(parent);
                }
                return Ok(target);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) if !target.exists() => {
                fs::rename(path, &target).map_err(io_error(path))?;
                return Ok(target);
            }
            Err(e) => return Err(io_error(path)(e)),
        }
    }
    Err(io_error(path)(io::Error::other(
        "no free name to move the corrupt store aside to",
    )))
}
