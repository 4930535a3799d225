//! What can go wrong with the store, typed so the window can react (run without saving when
//! the store is in use, offer to move a corrupt file aside) and the CLI can say it in one line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another handle in this one) has the store open. redb allows one
    /// writer per file; the caller can carry on without saving.
    #[error("the store {path} is in use by another cnnviz; close it or run without saving")]
    InUse { path: PathBuf },

    /// The file at the store path is not a readable cnnviz store: empty, truncated, damaged,
    /// or some other program's file. It has not been modified.
    #[error(
        "{path} is not a usable cnnviz store ({reason}); the file was left untouched — move it \
         aside, or start a fresh store with --reset-corrupt-store (which moves it aside for you)"
    )]
    Corrupt { path: PathBuf, reason: String },

    /// Written by a newer cnnviz: this one will not guess at it, and never rewrites it.
    #[error(
        "the store {path} has format version {found}, but this cnnviz reads up to version \
         {supported}; use a newer cnnviz (the file was left untouched)"
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error("cannot access the store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A redb operation failed on an open store (disk full, I/O error, damage found late).
    #[error("store {path}: {source}")]
    Database { path: PathBuf, source: redb::Error },

    #[error("there is no data directory on this system; pass --store PATH or set CNNVIZ_STORE")]
    NoDataDir,

    /// A record that breaks a rule (reason too long, digit out of range, wrong sizes...).
    #[error("invalid record: {0}")]
    Invalid(String),

    /// A stored value that does not decode: the file is damaged or was edited outside cnnviz.
    #[error("store {path}: damaged record in `{table}`: {reason}")]
    BadRecord {
        path: PathBuf,
        table: &'static str,
        reason: String,
    },

    #[error("there is no prediction #{0} in the store")]
    NotFound(u64),

    /// A stored or imported image that does not decode within the limits.
    #[error("image: {0}")]
    Image(String),

    /// The background writer thread is gone (it panicked or the store was closed).
    #[error("the store's writer thread has stopped")]
    WorkerGone,
}

impl StoreError {
    /// Whether moving the file aside and starting afresh is the remedy (and allowed on an
    /// explicit request): never for a newer format, a store in use, or an I/O problem.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }
}
