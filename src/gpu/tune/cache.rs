//! The tuner's choices on disk: one JSON file per adapter and model in the platform cache
//! directory (`CNNVIZ_CACHE_DIR` overrides it, so tests use a temporary one). Every
//! candidate's timing is kept beside the choice for inspection. A file that cannot be read
//! or parsed, or that belongs to another candidate set, is ignored (the caller logs why)
//! and rewritten after the next tuning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::key::AdapterKey;
use crate::gpu::kernel_choice::LayerKernel;

/// Overrides the cache directory (tests, or a machine whose home is read-only).
pub const CACHE_DIR_ENV: &str = "CNNVIZ_CACHE_DIR";

const SCHEMA: &str = "cnnviz.tune-cache/1";

/// One layer shape's measured choice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedChoice {
    /// See `key::layer_key`.
    pub key: String,
    /// The layer it was measured on (informational: another layer of the same shape
    /// reuses the choice).
    pub layer: String,
    pub batch: u32,
    pub choice: LayerKernel,
    /// `timestamps` (GPU time per kernel) or `wall_clock` (whole forward pass).
    pub method: String,
    /// Median nanoseconds per candidate name.
    pub timings_ns: BTreeMap<String, f64>,
}

/// A cache file's contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheFile {
    pub schema: String,
    pub adapter: AdapterKey,
    pub model_hash: String,
    pub candidates_checksum: String,
    pub choices: Vec<CachedChoice>,
}

impl CacheFile {
    pub fn new(adapter: AdapterKey, model_hash: String, candidates_checksum: String) -> Self {
        CacheFile {
            schema: SCHEMA.to_string(),
            adapter,
            model_hash,
            candidates_checksum,
            choices: Vec::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&CachedChoice> {
        self.choices.iter().find(|c| c.key == key)
    }

    /// Adds or replaces the choice of `choice.key`.
    pub fn put(&mut self, choice: CachedChoice) {
        self.choices.retain(|c| c.key != choice.key);
        self.choices.push(choice);
    }
}

/// The cache directory: `CNNVIZ_CACHE_DIR`, else the platform's (`~/.cache/cnnviz` on
/// Linux); `None` when neither exists (no home directory).
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "cnnviz").map(|d| d.cache_dir().to_path_buf())
}

/// The file of one adapter and model inside `dir`.
pub fn cache_path(dir: &Path, adapter: &AdapterKey, model_hash: &str) -> PathBuf {
    dir.join("kernels")
        .join(format!("{}-{model_hash}.json", adapter.file_stem()))
}

/// The file's contents if it exists and belongs to `expected` (adapter, model, candidate
/// set); `Ok(None)` when there is no file; `Err(why)` when it is unreadable, corrupt or
/// stale, for the caller to log before tuning afresh.
pub fn load(path: &Path, expected: &CacheFile) -> Result<Option<CacheFile>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: CacheFile = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a kernel cache file: {e}", path.display()))?;
    if file.schema != SCHEMA {
        return Err(format!("{} has schema {:?}", path.display(), file.schema));
    }
    if file.candidates_checksum != expected.candidates_checksum {
        return Err(format!(
            "{} was tuned for another set of kernels (checksum {} against {})",
            path.display(),
            file.candidates_checksum,
            expected.candidates_checksum
        ));
    }
    if file.adapter != expected.adapter || file.model_hash != expected.model_hash {
        return Err(format!(
            "{} belongs to another adapter or model",
            path.display()
        ));
    }
    Ok(Some(file))
}

/// Writes `file` to `path` (through a temporary file and a rename, so a reader never sees
/// half a file).
pub fn save(path: &Path, file: &CacheFile) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let text = serde_json::to_string_pretty(file).map_err(|e| e.to_string())?;
    let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&temporary, text).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CacheFile {
        let adapter = AdapterKey {
            name: "test adapter".into(),
            driver: "test driver".into(),
            backend: "Vulkan".into(),
        };
        let mut file = CacheFile::new(adapter, "0123456789abcdef".into(), "checksum".into());
        file.put(CachedChoice {
            key: "conv @b1".into(),
            layer: "conv1".into(),
            batch: 1,
            choice: LayerKernel::Gemm,
            method: "timestamps".into(),
            timings_ns: [("direct".to_string(), 3.0), ("gemm".to_string(), 1.0)].into(),
        });
        file
    }

    #[test]
    fn a_saved_file_loads_back_and_a_stale_or_corrupt_one_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = sample();
        let path = cache_path(dir.path(), &file.adapter, &file.model_hash);
        assert_eq!(load(&path, &file), Ok(None));
        save(&path, &file).expect("save");
        assert_eq!(load(&path, &file), Ok(Some(file.clone())));

        let mut other_kernels = file.clone();
        other_kernels.candidates_checksum = "new kernels".into();
        let stale = load(&path, &other_kernels).expect_err("stale");
        assert!(stale.contains("another set of kernels"), "{stale}");

        std::fs::write(&path, "{ not json").expect("write");
        let corrupt = load(&path, &file).expect_err("corrupt");
        assert!(corrupt.contains("not a kernel cache file"), "{corrupt}");
    }

    #[test]
    fn put_replaces_the_choice_of_a_key() {
        let mut file = sample();
        let mut again = file.choices[0].clone();
        again.choice = LayerKernel::Tiled;
        file.put(again);
        assert_eq!(file.choices.len(), 1);
        assert_eq!(
            file.get("conv @b1").map(|c| c.choice),
            Some(LayerKernel::Tiled)
        );
    }
}
