//! The kiosk's TOML configuration: every key optional with a default, unknown keys refused
//! (a typo must not silently leave a museum kiosk on a default), and every value checked
//! after parsing so that a bad one is a one-line error naming its key.
//!
//! `kiosk.example.toml` at the repository root lists every key at its default; a test
//! checks that it parses to [`KioskConfig::default`], so the documentation cannot drift.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::admin::{Corner, KeyChord};
use crate::colormap::ColorMap;
use crate::ui::OverlayFeatures;

/// The name of the log file when `log.file` is empty: beside the store.
pub const DEFAULT_LOG_FILE_NAME: &str = "cnnviz-kiosk.log";
/// The PIN of a config that sets none; [`KioskConfig::warnings`] says so.
pub const DEFAULT_PIN: &str = "0000";

/// Everything a kiosk deployment can set. Field docs are the documentation of the keys.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KioskConfig {
    /// Seconds without a touch, click or key before the kiosk resets for the next visitor
    /// (clears an unsaved drawing, closes dialogs) and starts attract mode. 10–86400.
    pub idle_seconds: f64,
    /// The prediction store. Empty: the same default as the window (`$CNNVIZ_STORE`, else
    /// the platform data directory). A relative path is relative to the config file.
    pub store: PathBuf,
    /// Which monitor to fill: `"primary"`, an index (`0` is the first monitor winit lists)
    /// or a monitor name as the system reports it (e.g. `"DP-1"`).
    pub monitor: MonitorChoice,
    /// Multiplies the size of every control and text on top of the display's own scale.
    /// 0.5–3.
    pub ui_scale: f32,
    /// Colour map of Grad-CAM and the activations: `"viridis"` or `"turbo"`.
    #[serde(deserialize_with = "color_map", serialize_with = "color_map_name")]
    pub color_map: ColorMap,
    pub attract: AttractConfig,
    pub features: FeatureConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
}

/// Attract mode: what the kiosk does while nobody uses it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttractConfig {
    /// Play MNIST digits and orbit the camera while idle; off leaves a clean, still canvas.
    pub enabled: bool,
    /// Seconds each digit takes: drawn stroke by stroke over the first two thirds, then
    /// held with its prediction. 2–600.
    pub seconds_per_digit: f64,
    /// Camera orbit speed in degrees per second; 0 keeps the camera still. 0–90.
    pub orbit_degrees_per_second: f32,
    /// Seed of the digit order: the same seed plays the same digits in the same order.
    pub seed: u64,
}

/// Which controls visitors get (the drawing canvas, prediction and Grad-CAM always show).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// The Save button: store the drawing with its prediction.
    pub save: bool,
    /// The Report button: report a misclassification; reported digits fill the gallery.
    pub report: bool,
    /// The Dashboard button: saved predictions and the gallery of reports.
    pub dashboard: bool,
    /// The kernel timing panel (interesting to engineers, noise to most visitors).
    pub timings: bool,
    /// The failure view: the test set's and the visitors' reports' confusion matrices.
    pub failures: bool,
    /// The channel explorer: a touch on a feature map shows what that channel looks for.
    pub channels: bool,
}

/// Leaving the kiosk: a gesture (long press and/or key chord), then the PIN.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Hold a finger (or the mouse button) this many seconds in `corner` to open the PIN
    /// pad; 0 turns the long press off. 0, or 1–60.
    pub long_press_seconds: f64,
    /// Where the long press counts: `"top-left"`, `"top-right"`, `"bottom-left"` or
    /// `"bottom-right"` (a square of 80 points in that corner of the window).
    pub corner: Corner,
    /// A key chord that opens the PIN pad, e.g. `"Ctrl+Shift+Q"`; it needs Ctrl or Alt.
    /// Empty turns it off. At least one of the long press and the chord must be on.
    pub key_chord: String,
    /// The PIN that ends the kiosk: 4 to 12 digits. Quote it (`"0042"`) to keep zeros.
    pub pin: String,
    /// Wrong PINs in a row before the PIN pad locks. 1–20.
    pub max_attempts: u32,
    /// How long the lock lasts, in seconds. 0–86400.
    pub lockout_seconds: f64,
    /// The PIN pad closes by itself after this many seconds without a key. 5–600.
    pub pin_timeout_seconds: f64,
}

/// The kiosk's log file (stderr gets the same lines).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The log file. Empty: `cnnviz-kiosk.log` beside the store. A relative path is
    /// relative to the config file.
    pub file: PathBuf,
    /// When the file would grow past this many bytes it is renamed to `<file>.1` (replacing
    /// the previous one) and a new file starts: at most twice this on disk. At least 4096.
    pub max_bytes: u64,
}

/// The monitor the kiosk fills.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MonitorChoice {
    /// The system's primary monitor (the first one when the system names none).
    #[default]
    Primary,
    /// A position in winit's list of monitors.
    Index(usize),
    /// A monitor name (`MonitorHandle::name`), compared exactly, then ignoring case.
    Name(String),
}

impl Default for KioskConfig {
    fn default() -> Self {
        KioskConfig {
            idle_seconds: 60.0,
            store: PathBuf::new(),
            monitor: MonitorChoice::Primary,
            ui_scale: 1.0,
            color_map: ColorMap::Viridis,
            attract: AttractConfig::default(),
            features: FeatureConfig::default(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for AttractConfig {
    fn default() -> Self {
        AttractConfig {
            enabled: true,
            seconds_per_digit: 6.0,
            orbit_degrees_per_second: 6.0,
            seed: 0,
        }
    }
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            save: true,
            report: true,
            dashboard: true,
            timings: false,
            failures: true,
            channels: true,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            long_press_seconds: 5.0,
            corner: Corner::TopLeft,
            key_chord: "Ctrl+Shift+Q".into(),
            pin: DEFAULT_PIN.into(),
            max_attempts: 3,
            lockout_seconds: 60.0,
            pin_timeout_seconds: 30.0,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            file: PathBuf::new(),
            max_bytes: 10 << 20,
        }
    }
}

/// A config that cannot be used, in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the kiosk config {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a value of the wrong type.
    #[error("{name}:{line}:{column}: {message}")]
    Parse {
        name: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value of the right type outside what the key accepts.
    #[error("{name}: {key}: {reason}")]
    Invalid {
        name: String,
        key: &'static str,
        reason: String,
    },
}

/// Which monitor a [`MonitorChoice`] names, given the connected ones.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MonitorError {
    #[error("no monitor is connected")]
    NoMonitor,
    #[error("monitor {index} does not exist; {count} connected (0 to {last})", last = count - 1)]
    NoSuchIndex { index: usize, count: usize },
    #[error("no monitor is named {name:?}; connected: {connected}")]
    NoSuchName { name: String, connected: String },
}

impl KioskConfig {
    /// Reads, parses and checks the file; relative `store` and `log.file` paths are made
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<KioskConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = KioskConfig::from_toml(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new(""));
        for file in [&mut config.store, &mut config.log.file] {
            if !file.as_os_str().is_empty() && file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(config)
    }

    /// Parses and checks TOML text; `name` (a file name) prefixes the errors.
    pub fn from_toml(text: &str, name: &str) -> Result<KioskConfig, ConfigError> {
        let config: KioskConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Parse {
                name: name.to_string(),
                line,
                column,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        config
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid {
                name: name.to_string(),
                key,
                reason,
            })?;
        Ok(config)
    }

    /// The first value outside its range, as (key, reason).
    fn validate(&self) -> Result<(), (&'static str, String)> {
        fn range(
            key: &'static str,
            value: f64,
            lo: f64,
            hi: f64,
        ) -> Result<(), (&'static str, String)> {
            if value.is_finite() && (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err((key, format!("{value} is outside {lo}–{hi}")))
            }
        }
        range("idle_seconds", self.idle_seconds, 10.0, 86_400.0)?;
        range("ui_scale", f64::from(self.ui_scale), 0.5, 3.0)?;
        let attract = &self.attract;
        range(
            "attract.seconds_per_digit",
            attract.seconds_per_digit,
            2.0,
            600.0,
        )?;
        range(
            "attract.orbit_degrees_per_second",
            f64::from(attract.orbit_degrees_per_second),
            0.0,
            90.0,
        )?;
        let admin = &self.admin;
        if admin.long_press_seconds != 0.0 {
            range(
                "admin.long_press_seconds",
                admin.long_press_seconds,
                1.0,
                60.0,
            )
            .map_err(|(key, reason)| (key, format!("{reason} (or 0 for off)")))?;
        }
        if !admin.key_chord.trim().is_empty() {
            let chord: KeyChord = admin
                .key_chord
                .parse()
                .map_err(|reason| ("admin.key_chord", reason))?;
            if !(chord.modifiers.ctrl || chord.modifiers.command || chord.modifiers.alt) {
                return Err((
                    "admin.key_chord",
                    format!(
                        "{:?} needs Ctrl or Alt, so a visitor cannot type it",
                        admin.key_chord
                    ),
                ));
            }
        }
        if admin.long_press_seconds == 0.0 && admin.key_chord.trim().is_empty() {
            return Err((
                "admin",
                "both long_press_seconds and key_chord are off: the kiosk could never be left"
                    .into(),
            ));
        }
        check_pin(&admin.pin).map_err(|reason| ("admin.pin", reason))?;
        if !(1..=20).contains(&admin.max_attempts) {
            return Err((
                "admin.max_attempts",
                format!("{} is outside 1–20", admin.max_attempts),
            ));
        }
        range(
            "admin.lockout_seconds",
            admin.lockout_seconds,
            0.0,
            86_400.0,
        )?;
        range(
            "admin.pin_timeout_seconds",
            admin.pin_timeout_seconds,
            5.0,
            600.0,
        )?;
        if self.log.max_bytes < 4096 {
            return Err((
                "log.max_bytes",
                format!("{} is below the minimum of 4096", self.log.max_bytes),
            ));
        }
        Ok(())
    }

    /// Things that work but should not stay so in a deployment, one line each, for the log.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.admin.pin == DEFAULT_PIN {
            warnings.push(format!(
                "admin.pin is the default {DEFAULT_PIN}; set your own in the kiosk config"
            ));
        }
        warnings
    }

    /// The parsed key chord; `None` when off.
    pub fn key_chord(&self) -> Option<KeyChord> {
        self.admin.key_chord.parse().ok()
    }

    /// The store path to hand to `store::resolve_store_path`: `None` means its default.
    pub fn store_path(&self) -> Option<&Path> {
        Some(self.store.as_path()).filter(|p| !p.as_os_str().is_empty())
    }

    /// The log file, given where the store ended up.
    pub fn log_path(&self, store: &Path) -> PathBuf {
        if self.log.file.as_os_str().is_empty() {
            store
                .parent()
                .unwrap_or(Path::new(""))
                .join(DEFAULT_LOG_FILE_NAME)
        } else {
            self.log.file.clone()
        }
    }

    /// The overlay's controls for this config: touch-first, with the invitation.
    pub fn overlay_features(&self) -> OverlayFeatures {
        OverlayFeatures {
            save: self.features.save,
            report: self.features.report,
            dashboard: self.features.dashboard,
            timings: self.features.timings,
            failures: self.features.failures,
            channels: self.features.channels,
            large_controls: true,
            invitation: true,
        }
    }
}

/// 4 to 12 ASCII digits.
pub fn check_pin(pin: &str) -> Result<(), String> {
    if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be 4 to 12 digits (0–9), quoted, e.g. \"2468\"".into());
    }
    Ok(())
}

impl MonitorChoice {
    /// The index into `names` (winit's monitors, in its order) this choice picks;
    /// `primary` is the index of the primary monitor when the system reports one.
    pub fn choose(&self, names: &[String], primary: Option<usize>) -> Result<usize, MonitorError> {
        if names.is_empty() {
            return Err(MonitorError::NoMonitor);
        }
        match self {
            MonitorChoice::Primary => Ok(primary.filter(|&p| p < names.len()).unwrap_or(0)),
            MonitorChoice::Index(index) if *index < names.len() => Ok(*index),
            MonitorChoice::Index(index) => Err(MonitorError::NoSuchIndex {
                index: *index,
                count: names.len(),
            }),
            MonitorChoice::Name(name) => names
                .iter()
                .position(|n| n == name)
                .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(name)))
                .ok_or_else(|| MonitorError::NoSuchName {
                    name: name.clone(),
                    connected: names.join(", "),
                }),
        }
    }
}

impl fmt::Display for MonitorChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorChoice::Primary => f.write_str("primary"),
            MonitorChoice::Index(i) => write!(f, "monitor {i}"),
            MonitorChoice::Name(name) => write!(f, "{name:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for MonitorChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MonitorVisitor;
        impl Visitor<'_> for MonitorVisitor {
            type Value = MonitorChoice;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"primary\", a monitor index (0, 1, …) or a monitor name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MonitorChoice, E> {
                usize::try_from(v)
                    .map(MonitorChoice::Index)
                    .map_err(|_| E::custom(format!("monitor index {v} is negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MonitorChoice, E> {
                usize::try_from(v)
                    .map(MonitorChoice::Index)
                    .map_err(|_| E::custom(format!("monitor index {v} is too large")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MonitorChoice, E> {
                match v.trim() {
                    "" => Err(E::custom("the monitor name is empty; use \"primary\"")),
                    p if p.eq_ignore_ascii_case("primary") => Ok(MonitorChoice::Primary),
                    name => Ok(MonitorChoice::Name(name.to_string())),
                }
            }
        }
        deserializer.deserialize_any(MonitorVisitor)
    }
}

fn color_map_name<S: Serializer>(map: &ColorMap, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match map {
        ColorMap::Viridis => "viridis",
        ColorMap::Turbo => "turbo",
    })
}

impl Serialize for MonitorChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MonitorChoice::Primary => serializer.serialize_str("primary"),
            MonitorChoice::Index(i) => serializer.serialize_u64(*i as u64),
            MonitorChoice::Name(name) => serializer.serialize_str(name),
        }
    }
}

fn color_map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ColorMap, D::Error> {
    let name = String::deserialize(deserializer)?;
    match name.to_ascii_lowercase().as_str() {
        "viridis" => Ok(ColorMap::Viridis),
        "turbo" => Ok(ColorMap::Turbo),
        _ => Err(de::Error::custom(format!(
            "unknown colour map {name:?}, expected \"viridis\" or \"turbo\""
        ))),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        KioskConfig::from_toml(text, "kiosk.toml")
            .expect_err(text)
            .to_string()
    }

    #[test]
    fn an_empty_file_is_the_default() {
        assert_eq!(
            KioskConfig::from_toml("", "kiosk.toml").unwrap(),
            KioskConfig::default()
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let e = error("idle_seconds = 30\nidle_secs = 5\n");
        assert!(e.starts_with("kiosk.toml:2:"), "{e}");
        assert!(e.contains("idle_secs"), "{e}");
        let e = error("[admin]\npin = \"1234\"\npn = 3\n");
        assert!(e.contains("`pn`") && e.contains("kiosk.toml:3:"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("idle_seconds = 0", "idle_seconds"),
            ("idle_seconds = nan", "idle_seconds"),
            ("ui_scale = 9", "ui_scale"),
            ("[admin]\npin = \"12a4\"", "admin.pin"),
            ("[admin]\npin = \"123\"", "admin.pin"),
            ("[admin]\nkey_chord = \"Q\"", "admin.key_chord"),
            ("[admin]\nkey_chord = \"Ctrl+Banana\"", "admin.key_chord"),
            (
                "[admin]\nlong_press_seconds = 0.5",
                "admin.long_press_seconds",
            ),
            (
                "[admin]\nlong_press_seconds = 0\nkey_chord = \"\"",
                "admin:",
            ),
            ("[admin]\nmax_attempts = 0", "admin.max_attempts"),
            ("[log]\nmax_bytes = 10", "log.max_bytes"),
            (
                "[attract]\nseconds_per_digit = 1",
                "attract.seconds_per_digit",
            ),
        ] {
            let e = error(text);
            assert!(e.contains(key), "{text:?} → {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        for text in [
            "color_map = \"jet\"",
            "monitor = -1",
            "monitor = true",
            "[admin]\npin = 1234",
            "[admin]\ncorner = \"middle\"",
            "idle_seconds = \"soon\"",
            "[[admin]]",
            "idle_seconds = ",
        ] {
            let e = error(text);
            assert!(
                e.starts_with("kiosk.toml:1:") || e.starts_with("kiosk.toml:2:"),
                "{e}"
            );
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn values_parse() {
        let config = KioskConfig::from_toml(
            "monitor = 1\ncolor_map = \"Turbo\"\n[admin]\ncorner = \"bottom-right\"\npin = \"0042\"\nkey_chord = \"\"\n",
            "k",
        )
        .unwrap();
        assert_eq!(config.monitor, MonitorChoice::Index(1));
        assert_eq!(config.color_map, ColorMap::Turbo);
        assert_eq!(config.admin.corner, Corner::BottomRight);
        assert_eq!(config.admin.pin, "0042");
        assert!(config.key_chord().is_none());
        assert!(config.warnings().is_empty());
        assert_eq!(KioskConfig::default().warnings().len(), 1);
        let named = KioskConfig::from_toml("monitor = \"HDMI-1\"", "k").unwrap();
        assert_eq!(named.monitor, MonitorChoice::Name("HDMI-1".into()));
    }

    #[test]
    fn monitors_are_chosen_by_index_name_or_primary() {
        let names = ["DP-1".to_string(), "HDMI-1".to_string()];
        assert_eq!(MonitorChoice::Primary.choose(&names, Some(1)), Ok(1));
        assert_eq!(MonitorChoice::Primary.choose(&names, None), Ok(0));
        assert_eq!(MonitorChoice::Index(1).choose(&names, None), Ok(1));
        assert_eq!(
            MonitorChoice::Name("hdmi-1".into()).choose(&names, None),
            Ok(1)
        );
        let e = MonitorChoice::Name("DP-3".into())
            .choose(&names, None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no monitor is named \"DP-3\"; connected: DP-1, HDMI-1"
        );
        assert!(MonitorChoice::Index(2).choose(&names, None).is_err());
        assert_eq!(
            MonitorChoice::Primary.choose(&[], None),
            Err(MonitorError::NoMonitor)
        );
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiosk.toml");
        std::fs::write(&path, "store = \"data/k.redb\"\n[log]\nfile = \"k.log\"\n").unwrap();
        let config = KioskConfig::load(&path).unwrap();
        assert_eq!(config.store, dir.path().join("data/k.redb"));
        assert_eq!(config.log.file, dir.path().join("k.log"));
        let default = KioskConfig::default();
        assert_eq!(default.store_path(), None);
        assert_eq!(
            default.log_path(Path::new("/var/lib/cnnviz/cnnviz.redb")),
            Path::new("/var/lib/cnnviz").join(DEFAULT_LOG_FILE_NAME)
        );
        let missing = KioskConfig::load(&dir.path().join("nope.toml")).unwrap_err();
        assert!(missing.to_string().contains("nope.toml"));
    }
}
