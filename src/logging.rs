//! Logging through the `log` facade (wgpu and naga log through it too), with a small
//! logger of our own: one `key=value` line per record (logfmt), to stderr always and, in
//! kiosk mode, appended to a size-capped file as well.
//!
//! ```text
//! ts=2026-05-01T09:30:12.345Z level=warn target=cnnviz::app msg="surface lost; recreating"
//! ```
//!
//! Which records pass is decided by a filter in `RUST_LOG` style, read from `CNNVIZ_LOG`
//! (else `RUST_LOG`): comma-separated `level` or `target=level` directives, e.g.
//! `debug,cnnviz::store=trace`. The default is `info` with the wgpu crates at `warn`; a
//! bare level replaces `info` but leaves the wgpu crates at `warn` unless they are named.
//!
//! The file never grows past its cap: a line that would take it past `max_bytes` first
//! renames it to `<file>.1` (replacing the previous one) and starts a new file, so the
//! logs take at most twice the cap on disk.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The environment variable with the filter; `RUST_LOG` is read when it is unset.
pub const LOG_ENV: &str = "CNNVIZ_LOG";
/// What passes when nothing is set.
pub const DEFAULT_FILTER: &str = "info,wgpu=warn,wgpu_core=warn,wgpu_hal=warn,naga=warn";

/// A logging setup that cannot be used, in one line.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("bad log filter {spec:?}: {reason}")]
    Filter { spec: String, reason: String },
    #[error("cannot open the log file {path}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a logger is already installed")]
    AlreadyInstalled,
}

/// Levels per target: the longest matching target prefix wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    /// `(target, level)`, at most one per target.
    targets: Vec<(String, LevelFilter)>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            default: LevelFilter::Info,
            targets: Vec::new(),
        }
        .with(DEFAULT_FILTER)
        .unwrap_or(Filter {
            default: LevelFilter::Info,
            targets: Vec::new(),
        })
    }
}

impl Filter {
    /// The default filter with `spec`'s directives applied on top.
    pub fn parse(spec: &str) -> Result<Filter, LogError> {
        Filter::default().with(spec)
    }

    /// Applies `spec`'s directives on top of this filter.
    pub fn with(mut self, spec: &str) -> Result<Filter, LogError> {
        let bad = |reason: String| LogError::Filter {
            spec: spec.to_string(),
            reason,
        };
        for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match directive.split_once('=') {
                None => match parse_level(directive) {
                    Some(level) => self.default = level,
                    // A bare name means "everything from this target" (as env_logger).
                    None if is_target(directive) => self.set(directive, LevelFilter::Trace),
                    None => {
                        return Err(bad(format!(
                            "{directive:?} is neither a level nor a target"
                        )));
                    }
                },
                Some((target, level)) => {
                    let (target, level) = (target.trim(), level.trim());
                    if !is_target(target) {
                        return Err(bad(format!("{target:?} is not a target name")));
                    }
                    let level = parse_level(level).ok_or_else(|| {
                        bad(format!(
                            "{level:?} is not a level (off, error, warn, info, debug, trace)"
                        ))
                    })?;
                    self.set(target, level);
                }
            }
        }
        Ok(self)
    }

    /// From `CNNVIZ_LOG`, else `RUST_LOG`, else the default. A bad variable gives the
    /// default and a warning to log once the logger runs (never a refusal to start).
    pub fn from_env() -> (Filter, Option<String>) {
        let spec = [LOG_ENV, "RUST_LOG"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().map(|v| (name, v)));
        match spec {
            None => (Filter::default(), None),
            Some((name, spec)) => match Filter::parse(&spec) {
                Ok(filter) => (filter, None),
                Err(e) => (
                    Filter::default(),
                    Some(format!("{name}: {e}; using the default")),
                ),
            },
        }
    }

    fn set(&mut self, target: &str, level: LevelFilter) {
        match self.targets.iter_mut().find(|(t, _)| t == target) {
            Some(entry) => entry.1 = level,
            None => self.targets.push((target.to_string(), level)),
        }
    }

    /// The level that passes for `target`.
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .filter(|(t, _)| {
                target == t
                    || target
                        .strip_prefix(t.as_str())
                        .is_some_and(|r| r.starts_with("::"))
            })
            .max_by_key(|(t, _)| t.len())
            .map_or(self.default, |(_, level)| *level)
    }

    pub fn enabled(&self, target: &str, level: Level) -> bool {
        level <= self.level_for(target)
    }

    /// The most verbose level any target passes (for `log::set_max_level`).
    pub fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, Ord::max)
    }
}

fn parse_level(text: &str) -> Option<LevelFilter> {
    text.parse().ok()
}

fn is_target(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-')
}

/// A log file that is renamed to `<file>.1` before it would pass `max_bytes`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    file: File,
    size: u64,
}

impl RotatingFile {
    /// Opens `path` for appending (creating it and its directory); `max_bytes` is raised
    /// to at least 1024.
    pub fn open(path: &Path, max_bytes: u64) -> Result<RotatingFile, LogError> {
        let fail = |source| LogError::File {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let file = append(path).map_err(fail)?;
        let size = file.metadata().map_err(fail)?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1024),
            file,
            size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the previous file goes: `<file>.1`.
    pub fn rotated_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    /// Appends `line` (which should end in a newline), rotating first when it would not
    /// fit. A line longer than the cap is cut to it.
    pub fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let cap = usize::try_from(self.max_bytes).unwrap_or(usize::MAX);
        let mut line = std::borrow::Cow::Borrowed(line);
        if line.len() > cap {
            let mut end = cap - 1;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line = format!("{}\n", &line[..end]).into();
        }
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let old = self.rotated_path();
        // Windows does not rename over an existing file.
        let _ = std::fs::remove_file(&old);
        let renamed = std::fs::rename(&self.path, &old);
        self.file = if renamed.is_ok() {
            append(&self.path)?
        } else {
            // Could not move it aside (gone, or a read-only directory entry): start over
            // in place rather than grow.
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&self.path)?
        };
        self.size = 0;
        Ok(())
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The logger: filter, stderr, and optionally the file.
#[derive(Debug)]
pub struct Logger {
    filter: Filter,
    stderr: bool,
    file: Option<Mutex<RotatingFile>>,
    /// The file failed once (full disk…): said once on stderr, then retried quietly.
    file_failed: AtomicBool,
}

impl Logger {
    pub fn new(filter: Filter, stderr: bool, file: Option<RotatingFile>) -> Logger {
        Logger {
            filter,
            stderr,
            file: file.map(Mutex::new),
            file_failed: AtomicBool::new(false),
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.filter.enabled(metadata.target(), metadata.level())
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(SystemTime::now(), record);
        if self.stderr {
            // One write per line, so lines from threads do not interleave.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        if let Some(file) = &self.file {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match file.write_line(&line) {
                Ok(()) => self.file_failed.store(false, Ordering::Relaxed),
                Err(e) => {
                    if !self.file_failed.swap(true, Ordering::Relaxed) {
                        let _ = writeln!(
                            std::io::stderr(),
                            "level=error target=cnnviz::logging msg=\"cannot write the log file {}: {e}\"",
                            file.path().display()
                        );
                    }
                }
            }
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
        if let Some(file) = &self.file
            && let Ok(mut file) = file.lock()
        {
            let _ = file.file.flush();
        }
    }
}

/// Installs the logger for the process: stderr, plus `file` (path, max bytes) in kiosk
/// mode. The filter comes from the environment ([`Filter::from_env`]); a bad filter is
/// logged as a warning once the logger runs. Call once, first thing in `main`.
pub fn init(file: Option<(&Path, u64)>) -> Result<(), LogError> {
    let (filter, warning) = Filter::from_env();
    let file = file
        .map(|(path, max_bytes)| RotatingFile::open(path, max_bytes))
        .transpose()?;
    let max = filter.max_level();
    log::set_boxed_logger(Box::new(Logger::new(filter, true, file)))
        .map_err(|_| LogError::AlreadyInstalled)?;
    log::set_max_level(max);
    if let Some(warning) = warning {
        log::warn!("{warning}");
    }
    Ok(())
}

/// Sends panics to the log (so they reach the kiosk's file) before the default report.
pub fn log_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        log::error!(target: "panic", "{payload}{location}");
        previous(info);
    }));
}

/// One record as a logfmt line, newline included.
pub fn format_line(now: SystemTime, record: &Record) -> String {
    let mut line = String::with_capacity(128);
    line.push_str("ts=");
    line.push_str(&utc_timestamp(now));
    let _ = write!(
        line,
        " level={} target=",
        record.level().as_str().to_ascii_lowercase()
    );
    push_value(&mut line, record.target());
    line.push_str(" msg=");
    push_value(&mut line, &record.args().to_string());
    line.push('\n');
    line
}

/// Appends `value`, quoted and escaped when it is empty or holds spaces, quotes, `=` or
/// control characters, so every line splits back into its keys.
fn push_value(line: &mut String, value: &str) {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=' || c == '\\' || c.is_control());
    if plain {
        line.push_str(value);
        return;
    }
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(line, "\\u{{{:x}}}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-05-01T09:30:12.345Z`.
pub fn utc_timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_default_keeps_wgpu_quiet() {
        let filter = Filter::default();
        assert!(filter.enabled("cnnviz::app", Level::Info));
        assert!(!filter.enabled("cnnviz::app", Level::Debug));
        assert!(!filter.enabled("wgpu_core::device", Level::Info));
        assert!(filter.enabled("wgpu_hal::vulkan", Level::Warn));
        assert!(!filter.enabled("wgpu", Level::Info));
        assert!(!filter.enabled("naga::front", Level::Info));
        // A prefix is a whole path segment: `wgpu` does not cover `wgpu_foo`.
        assert!(filter.enabled("wgpu_foo", Level::Info));
    }

    #[test]
    fn directives_override_by_longest_target() {
        let filter = Filter::parse("debug, cnnviz::store=trace, wgpu_core=error").unwrap();
        assert!(filter.enabled("cnnviz::app", Level::Debug));
        assert!(filter.enabled("cnnviz::store::write", Level::Trace));
        assert!(!filter.enabled("cnnviz::storex", Level::Trace));
        assert!(!filter.enabled("wgpu_core", Level::Warn));
        // A bare level leaves the wgpu crates at warn.
        assert!(!filter.enabled("wgpu_hal", Level::Info));
        assert_eq!(filter.max_level(), LevelFilter::Trace);
        let off = Filter::parse("off").unwrap();
        assert!(!off.enabled("cnnviz", Level::Error));
        assert!(Filter::parse("").unwrap() == Filter::default());
        assert!(
            Filter::parse("cnnviz")
                .unwrap()
                .enabled("cnnviz::x", Level::Trace)
        );
    }

    #[test]
    fn bad_filters_are_one_line_errors() {
        for bad in ["cnnviz=loud", "=info", "a b=info", "wgpu=", "info,!"] {
            let e = Filter::parse(bad).expect_err(bad).to_string();
            assert!(
                e.contains(bad.trim()) || e.contains("bad log filter"),
                "{e}"
            );
            assert!(!e.contains('\n'));
        }
    }

    fn record_line(target: &str, level: Level, msg: &str) -> String {
        format_line(
            UNIX_EPOCH + Duration::from_millis(1_777_627_812_345),
            &Record::builder()
                .target(target)
                .level(level)
                .args(format_args!("{msg}"))
                .build(),
        )
    }

    #[test]
    fn lines_are_logfmt() {
        assert_eq!(
            record_line(
                "cnnviz::app",
                Level::Warn,
                "surface lost; \"recreating\"\nnow"
            ),
            "ts=2026-05-01T09:30:12.345Z level=warn target=cnnviz::app \
             msg=\"surface lost; \\\"recreating\\\"\\nnow\"\n"
        );
        assert_eq!(
            record_line("x", Level::Info, "ok"),
            "ts=2026-05-01T09:30:12.345Z level=info target=x msg=ok\n"
        );
        assert_eq!(
            record_line("x", Level::Info, "")
                .trim_end()
                .rsplit(' ')
                .next(),
            Some("msg=\"\"")
        );
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day) 23:59:59.
        let leap = UNIX_EPOCH + Duration::from_secs(951_868_799);
        assert_eq!(utc_timestamp(leap), "2000-02-29T23:59:59.000Z");
    }

    #[test]
    fn the_file_rotates_and_never_passes_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/kiosk.log");
        let mut file = RotatingFile::open(&path, 1024).unwrap();
        for i in 0..200 {
            file.write_line(&format!("line {i:04} {}\n", "x".repeat(40)))
                .unwrap();
            let size = std::fs::metadata(&path).unwrap().len();
            assert!(size <= 1024, "{size} bytes after line {i}");
        }
        let rotated = std::fs::read_to_string(file.rotated_path()).unwrap();
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.ends_with(&format!("line 0199 {}\n", "x".repeat(40))));
        // The rotated file holds the lines just before the current ones.
        let first_current: usize = current[5..9].parse().unwrap();
        let last_rotated = rotated.lines().last().unwrap();
        assert_eq!(
            last_rotated[5..9].parse::<usize>().unwrap() + 1,
            first_current
        );
        assert!(std::fs::metadata(file.rotated_path()).unwrap().len() <= 1024);
        // Only the two files exist.
        assert_eq!(
            std::fs::read_dir(dir.path().join("logs")).unwrap().count(),
            2
        );

        // A line longer than the cap is cut, and reopening appends to what is there.
        let mut file = RotatingFile::open(&path, 1024).unwrap();
        file.write_line(&format!("{}\n", "é".repeat(2000))).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= 1024, "{size}");
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("é\n"));
    }

    #[test]
    fn the_logger_filters_and_writes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.log");
        let logger = Logger::new(
            Filter::default(),
            false,
            Some(RotatingFile::open(&path, 4096).unwrap()),
        );
        let log = |target: &str, level: Level, msg: &str| {
            logger.log(
                &Record::builder()
                    .target(target)
                    .level(level)
                    .args(format_args!("{msg}"))
                    .build(),
            )
        };
        log("cnnviz::app", Level::Info, "started");
        log("cnnviz::app", Level::Debug, "hidden");
        log("wgpu_core::device", Level::Info, "hidden too");
        log("wgpu_core::device", Level::Error, "device lost");
        logger.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("level=info target=cnnviz::app msg=started"));
        assert!(lines[1].contains("level=error target=wgpu_core::device msg=\"device lost\""));
    }

    #[test]
    fn an_unusable_log_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = RotatingFile::open(dir.path(), 4096).unwrap_err();
        assert!(e.to_string().contains("cannot open the log file"), "{e}");
    }
}
