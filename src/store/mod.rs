//! The store of saved predictions and misclassification reports: one redb file, by default
//! `cnnviz.redb` in the platform data directory.
//!
//! - [`PredictionStore`] opens the file (refusing, untouched, anything corrupt, foreign, in
//!   use or newer), saves with durable commits, and answers gallery pages from indexes.
//! - [`StoreWorker`] does the writing on a thread of its own, so a frame never waits on the
//!   disk: the window submits, gets a [`Ticket`], and polls for the acknowledgement (which
//!   means "committed to disk").
//! - [`exchange`] writes and merges folders of PNGs plus a JSON manifest, for sharing
//!   misclassified digits between installations; [`PredictionStore::check`] verifies
//!   every cross-reference.
//!
//! Layout: `record` (what is stored and its byte layout), `tables` (tables and index keys),
//! `open` / `probe` (getting a file open safely), `write` / `read` / `check`, `pixels`
//! (PNG and thumbnails), `codec` (the byte encoding).

mod check;
mod codec;
mod confusion;
mod error;
pub mod exchange;
mod open;
mod pixels;
mod probe;
mod query;
mod read;
mod record;
#[doc(hidden)]
pub mod sample;
mod tables;
mod time;
mod worker;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::Database;

pub use check::CheckReport;
pub use error::StoreError;
pub use open::{STORE_ENV, STORE_FILE_NAME, StoreOptions, move_aside, resolve_store_path};
pub use pixels::{THUMBNAIL_SIDE, Thumbnail, decode_png, encode_png, thumbnail};
pub use query::{DigitFilter, Filter, GalleryItem, Kind, Page, Sort};
pub use read::{RerunInput, StoreStats};
pub use record::{
    ContentId, Drawing, FORMAT_VERSION, GradCamRecord, MAX_REASON_CHARS, ModelIdentity, ModelInput,
    NewPrediction, NewReport, PredictionId, Report, ReportId, SavedPrediction, Summary,
    validate_reason,
};
pub use time::{now_ms, utc_text};
pub use worker::{
    PendingOpen, ReportTarget, StoreDone, StoreOutcome, StoreWorker, Ticket, open_in_background,
    open_in_background_then,
};

/// An open store. Cheap to clone (the clones share one database handle), and usable from
/// any thread: reads never block on writes.
#[derive(Clone)]
pub struct PredictionStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    /// Bumped after every commit, so views know when to re-read.
    generation: AtomicU64,
    /// Where a corrupt file was moved on request, to tell the person.
    moved_aside: Option<PathBuf>,
}

impl std::fmt::Debug for PredictionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Maps any redb error on an open store to [`StoreError::Database`], naming the file.
pub(crate) fn db_error<E: Into<redb::Error>>(path: &Path) -> impl Fn(E) -> StoreError + '_ {
    move |e| StoreError::Database {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

impl PredictionStore {
    /// Opens the store at `path`, creating it if there is no file.
    pub fn open(path: &Path) -> Result<PredictionStore, StoreError> {
        Self::open_with(path, &StoreOptions::default())
    }

    /// Opens the store at `--store`/`$CNNVIZ_STORE`/the data directory.
    pub fn open_default(
        explicit: Option<&Path>,
        options: &StoreOptions,
    ) -> Result<PredictionStore, StoreError> {
        Self::open_with(&resolve_store_path(explicit)?, options)
    }

    pub fn open_with(path: &Path, options: &StoreOptions) -> Result<PredictionStore, StoreError> {
        let (db, moved_aside) = open::open_database(path, options)?;
        // A redb file with no tables (its creation was interrupted) becomes a store here.
        write::initialise(&db, path)?;
        Ok(PredictionStore {
            inner: Arc::new(Inner {
                db,
                path: path.to_path_buf(),
                generation: AtomicU64::new(0),
                moved_aside,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Where a corrupt file was moved before this store was created, if it was.
    pub fn moved_aside(&self) -> Option<&Path> {
        self.inner.moved_aside.as_deref()
    }

    /// Changes every time this handle (or a clone) commits: compare to know when a cached
    /// view is stale.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    pub(crate) fn bump_generation(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }
}
