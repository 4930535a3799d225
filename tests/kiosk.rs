//! Kiosk mode's pieces from the outside: the committed example config and docs against the
//! code's defaults, the one-kiosk-per-store lock across processes, the PIN pad as people
//! use it (through egui, headless), attract mode's digits through the canvas and the CPU
//! twin, and screenshots of the kiosk overlay for people to look at
//! (`target/kiosk-screenshots/`).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cnnviz::data::preprocess::mnist_input;
use cnnviz::kiosk::{
    AdminGate, AdminOutcome, AttractDigits, AttractPlayer, IdleEvent, IdleTimer, InstanceError,
    InstanceLock, KioskConfig, person_in,
};
use cnnviz::model::{Model, load_model, reference};
use cnnviz::ui::pin_pad::{self, KEY_SIZE};
use cnnviz::ui::{Overlay, OverlayFeatures, OverlayView, PinPadAction, PinPadView};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

// ---------------------------------------------------------------------------------------
// Config and docs.

#[test]
fn the_example_config_is_the_default() {
    let config = KioskConfig::load(&repo("kiosk.example.toml")).expect("the example parses");
    assert_eq!(config, KioskConfig::default());
}

/// Dotted paths of every leaf key of a TOML table.
fn keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        match value {
            toml::Value::Table(inner) => keys(inner, &format!("{path}."), out),
            _ => {
                out.insert(path);
            }
        }
    }
}

fn default_keys() -> BTreeSet<String> {
    let text = toml::to_string(&KioskConfig::default()).expect("the default serialises");
    let table: toml::Table = text.parse().expect("and parses back");
    let mut out = BTreeSet::new();
    keys(&table, "", &mut out);
    out
}

#[test]
fn the_example_lists_every_key() {
    let text = std::fs::read_to_string(repo("kiosk.example.toml")).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let mut listed = BTreeSet::new();
    keys(&table, "", &mut listed);
    let all = default_keys();
    assert!(all.len() >= 20, "{all:?}");
    assert_eq!(listed, all, "kiosk.example.toml must list every key");
}

#[test]
fn the_docs_name_every_key() {
    let docs = std::fs::read_to_string(repo("docs/kiosk.md")).expect("docs/kiosk.md");
    for key in default_keys() {
        assert!(
            docs.contains(&format!("`{key}`")),
            "docs/kiosk.md lacks `{key}`"
        );
    }
}

// ---------------------------------------------------------------------------------------
// One kiosk per store, across processes.

const CHILD_ENV: &str = "CNNVIZ_TEST_LOCK_STORE";

/// Run by `a_second_kiosk_process_gets_a_clear_error` in a child process; does nothing
/// in a normal test run. Exits 3 when the lock is held by another process.
#[test]
fn child_tries_the_lock() {
    let Some(store) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    match InstanceLock::acquire(Path::new(&store)) {
        Ok(_) => println!("LOCKED"),
        Err(e @ InstanceError::Held { .. }) => {
            println!("REFUSED: {e}");
            std::process::exit(3);
        }
        Err(e) => {
            println!("ERROR: {e}");
            std::process::exit(4);
        }
    }
}

fn run_child(store: &Path) -> (Option<i32>, String) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_tries_the_lock",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, store)
        .output()
        .expect("the test binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn a_second_kiosk_process_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cnnviz.redb");
    let lock = InstanceLock::acquire(&store).expect("this process is the first kiosk");
    let (code, stdout) = run_child(&store);
    assert_eq!(code, Some(3), "{stdout}");
    // libtest may print its "test … " prefix on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("REFUSED: ").map(|(_, message)| message))
        .unwrap_or_else(|| panic!("no refusal in {stdout}"));
    assert!(line.contains("another cnnviz kiosk"), "{line}");
    assert!(line.contains(&store.display().to_string()), "{line}");
    if cfg!(unix) {
        assert!(
            line.contains(&format!("(PID {})", std::process::id())),
            "{line}"
        );
    }
    drop(lock);
    let (code, stdout) = run_child(&store);
    assert_eq!(
        code,
        Some(0),
        "the lock is free once its holder is gone: {stdout}"
    );
    assert!(stdout.contains("LOCKED"), "{stdout}");
}

// ---------------------------------------------------------------------------------------
// The PIN pad.

struct Pad {
    view: PinPadView,
    actions: Vec<PinPadAction>,
}

fn pad_harness(view: PinPadView) -> Harness<'static, Pad> {
    let mut harness = Harness::builder()
        .with_size([1920.0, 1080.0])
        .build_ui_state(
            |ui, pad: &mut Pad| {
                let actions = pin_pad::show(ui.ctx(), &pad.view);
                pad.actions.extend(actions);
            },
            Pad {
                view,
                actions: Vec::new(),
            },
        );
    harness.run();
    harness
}

#[test]
fn the_pin_pad_has_large_keys_and_shows_only_dots() {
    let mut harness = pad_harness(PinPadView {
        digits_entered: 3,
        max_digits: 4,
        message: Some("Wrong PIN. 2 tries left.".into()),
    });
    for label in ["0", "1", "5", "9", "Delete", "OK", "Cancel"] {
        let rect = harness.get_by_label(label).rect();
        assert!(
            rect.width() >= KEY_SIZE.x - 0.5 && rect.height() >= 60.0,
            "{label}: {rect:?}"
        );
    }
    assert!(harness.query_by_label("3 digits entered").is_some());
    assert!(harness.query_by_label("Wrong PIN. 2 tries left.").is_some());
    for label in ["1", "2", "3", "Delete", "0", "OK", "Cancel"] {
        harness.get_by_label(label).click();
        harness.run();
    }
    assert_eq!(
        harness.state().actions,
        [
            PinPadAction::Digit(1),
            PinPadAction::Digit(2),
            PinPadAction::Digit(3),
            PinPadAction::Backspace,
            PinPadAction::Digit(0),
            PinPadAction::Submit,
            PinPadAction::Cancel,
        ]
    );
    // A service keyboard works too.
    harness.state_mut().actions.clear();
    harness.key_press(egui::Key::Num7);
    harness.key_press(egui::Key::Backspace);
    harness.key_press(egui::Key::Enter);
    harness.run();
    assert_eq!(
        harness.state().actions,
        [
            PinPadAction::Digit(7),
            PinPadAction::Backspace,
            PinPadAction::Submit
        ]
    );
}

/// The window's loop, reduced to the admin exit: the gate fed with the pointer and keys,
/// the pad shown while the gate says so.
struct AdminApp {
    gate: AdminGate,
    start: Instant,
    /// Made-up time: frames are 0.1 s apart.
    frame: u32,
    exit: bool,
}

impl AdminApp {
    fn ui(&mut self, ui: &mut egui::Ui) {
        self.frame += 1;
        let now = self.start + Duration::from_millis(100) * self.frame;
        let ctx = ui.ctx().clone();
        let screen = ctx.content_rect();
        let (pressed, chord) = ctx.input(|i| {
            let pressed = i
                .pointer
                .primary_down()
                .then(|| i.pointer.interact_pos())
                .flatten();
            let chord = self.gate.key_chord().is_some_and(|c| c.pressed(i));
            (pressed, chord)
        });
        self.gate.pointer(now, pressed, screen);
        if chord {
            self.gate.chord(now);
        }
        if let Some(view) = self.gate.pin_pad() {
            for action in pin_pad::show(&ctx, &view) {
                if self.gate.apply(action, now) == AdminOutcome::Exit {
                    self.exit = true;
                }
            }
        }
        if let Some((corner, progress)) = self.gate.hold_progress(now) {
            pin_pad::show_hold_progress(&ctx, corner.rect(screen), progress);
        }
        self.exit |= self.gate.update(now) == AdminOutcome::Exit;
    }
}

#[test]
fn a_long_press_then_the_pin_exits_and_a_wrong_pin_does_not() {
    let config = KioskConfig::from_toml(
        "[admin]\npin = \"2468\"\nlong_press_seconds = 2\ncorner = \"top-right\"\n",
        "test",
    )
    .unwrap();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(
            |ui, app: &mut AdminApp| app.ui(ui),
            AdminApp {
                gate: AdminGate::new(&config.admin),
                start: Instant::now(),
                frame: 0,
                exit: false,
            },
        );
    harness.run();
    let corner = egui::pos2(1270.0, 10.0);
    harness.input_mut().events.extend([
        egui::Event::PointerMoved(corner),
        egui::Event::PointerButton {
            pos: corner,
            button: egui::PointerButton::Primary,
            pressed: true,
            modifiers: egui::Modifiers::NONE,
        },
    ]);
    // 2 s of 0.1 s frames with the finger held.
    for _ in 0..25 {
        harness.step();
    }
    harness.input_mut().events.push(egui::Event::PointerButton {
        pos: corner,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    harness.run();
    assert!(
        harness.state().gate.is_pin_entry(),
        "{:?}",
        harness.state().gate.state()
    );

    for digit in ["1", "3", "5", "7", "OK"] {
        harness.get_by_label(digit).click();
        harness.run();
    }
    assert!(!harness.state().exit);
    assert!(harness.query_by_label("Wrong PIN. 2 tries left.").is_some());
    for digit in ["2", "4", "6", "8", "OK"] {
        harness.get_by_label(digit).click();
        harness.run();
    }
    assert!(harness.state().exit);
}

#[test]
fn the_key_chord_opens_the_pad() {
    let config = KioskConfig::default();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(
            |ui, app: &mut AdminApp| app.ui(ui),
            AdminApp {
                gate: AdminGate::new(&config.admin),
                start: Instant::now(),
                frame: 0,
                exit: false,
            },
        );
    harness.run();
    harness.key_press_modifiers(egui::Modifiers::CTRL, egui::Key::Q);
    harness.run();
    assert!(
        !harness.state().gate.is_pin_entry(),
        "Ctrl+Q is not Ctrl+Shift+Q"
    );
    harness.key_press_modifiers(egui::Modifiers::CTRL | egui::Modifiers::SHIFT, egui::Key::Q);
    harness.run();
    assert!(harness.state().gate.is_pin_entry());
    harness.get_by_label("Cancel").click();
    harness.run();
    assert!(!harness.state().gate.is_pin_entry());
}

// ---------------------------------------------------------------------------------------
// Attract mode through the canvas.

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| load_model(&repo("weights/mnist-cnn.safetensors")).expect("model"))
}

fn predict(pixels: &[f32]) -> usize {
    let model = model();
    let activations = reference::forward(model, &model.normalize(pixels));
    reference::argmax(&reference::softmax(activations.last().unwrap()))
}

#[test]
fn attract_digits_drawn_on_the_canvas_are_read_right() {
    let config = KioskConfig::default();
    let mut player = AttractPlayer::new(AttractDigits::builtin(), &config.attract);
    let per = config.attract.seconds_per_digit;
    let mut overlay = Overlay::new();
    let mut right = 0;
    for k in 0..10u32 {
        // The end of each digit's drawing time: the whole digit.
        let t = Duration::from_secs_f64(per * (f64::from(k) + 0.9));
        let frame = player.update(t).expect("a new digit");
        assert_eq!(frame.progress, 1.0);
        overlay.canvas_mut().load_image(&frame.ink);
        assert!(overlay.canvas_mut().take_changed());
        let pixels = mnist_input(&overlay.canvas().ink(), 28, 28).expect("ink on the canvas");
        // The canvas path and the frame's own model input agree on the answer.
        let direct = frame.model_input().unwrap();
        assert_eq!(predict(&pixels), predict(&direct));
        right += usize::from(predict(&pixels) == usize::from(frame.label));
    }
    assert!(right >= 9, "{right} of 10 built-in digits read right");
}

#[test]
fn attract_mode_plays_the_mnist_test_set_when_it_is_there() {
    let dir = cnnviz::data::default_data_dir();
    if !dir.join("t10k-images-idx3-ubyte.gz").exists() {
        eprintln!("note: no MNIST in {}", dir.display());
        return;
    }
    let (digits, error) = AttractDigits::load(&dir);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(digits.len(), 10_000);
    let config = KioskConfig::default().attract;
    let mut player = AttractPlayer::new(digits, &config);
    let mut right = 0;
    let mut previous = None;
    for k in 0..20u32 {
        let frame = player
            .update(Duration::from_secs_f64(6.0 * f64::from(k) + 5.0))
            .unwrap();
        assert_ne!(Some(frame.index), previous);
        previous = Some(frame.index);
        right += usize::from(predict(&frame.model_input().unwrap()) == usize::from(frame.label));
    }
    assert!(right >= 18, "{right} of 20");
}

/// The window's loop reduced to the visitor cycle, wired as the app should wire it: the
/// idle timer first (with this frame's input), then attract mode, then the overlay.
struct Cycle {
    overlay: Overlay,
    idle: IdleTimer,
    player: AttractPlayer,
    start: Instant,
    frame: u32,
    labels: Vec<String>,
    idle_events: Vec<IdleEvent>,
    last_ink: Option<cnnviz::data::preprocess::InkImage>,
}

impl Cycle {
    fn ui(&mut self, ui: &mut egui::Ui) {
        // Made-up time: frames are half a second apart.
        self.frame += 1;
        let now = self.start + Duration::from_millis(500) * self.frame;
        let person = ui.ctx().input(person_in);
        for event in self.idle.update(now, person) {
            match event {
                IdleEvent::Reset => {
                    self.overlay.canvas_mut().clear();
                    self.overlay.close_help();
                }
                IdleEvent::AttractStarted => self.player.restart(),
                IdleEvent::AttractEnded => self.overlay.canvas_mut().clear(),
            }
            self.idle_events.push(event);
        }
        if let Some(elapsed) = self.idle.attract_elapsed(now)
            && let Some(frame) = self.player.update(elapsed)
        {
            self.overlay.canvas_mut().load_image(&frame.ink);
        }
        let view = OverlayView {
            class_labels: &self.labels,
            features: KioskConfig::default().overlay_features(),
            ..Default::default()
        };
        let events = self.overlay.show(ui, &view);
        if let Some(ink) = events.canvas() {
            self.last_ink = Some(ink.clone());
        }
    }
}

fn touch(id: u64, phase: egui::TouchPhase, pos: egui::Pos2) -> egui::Event {
    egui::Event::Touch {
        device_id: egui::TouchDeviceId(1),
        id: egui::TouchId(id),
        phase,
        pos,
        force: None,
    }
}

#[test]
fn idle_attract_and_the_first_touch_give_a_clean_canvas() {
    let config = KioskConfig::from_toml("idle_seconds = 10", "test").unwrap();
    let start = Instant::now();
    let mut harness = Harness::builder()
        .with_size([1920.0, 1080.0])
        .build_ui_state(
            |ui, app: &mut Cycle| app.ui(ui),
            Cycle {
                overlay: Overlay::new(),
                idle: IdleTimer::new(
                    Duration::from_secs_f64(config.idle_seconds),
                    config.attract.enabled,
                    start,
                ),
                player: AttractPlayer::new(AttractDigits::builtin(), &config.attract),
                start,
                frame: 0,
                labels: (0..10).map(|d| d.to_string()).collect(),
                idle_events: Vec::new(),
                last_ink: None,
            },
        );
    // A visitor's unfinished drawing, then 10 s of nobody.
    let canvas = harness.get_by_label("Drawing canvas").rect();
    let at = |x: f32, y: f32| canvas.min + egui::vec2(x, y) * canvas.size();
    for (phase, pos) in [
        (egui::TouchPhase::Start, at(0.2, 0.2)),
        (egui::TouchPhase::End, at(0.8, 0.8)),
    ] {
        harness.input_mut().events.push(touch(1, phase, pos));
        harness.step();
    }
    assert_eq!(harness.state().overlay.canvas().strokes().len(), 1);
    for _ in 0..21 {
        harness.step();
    }
    assert_eq!(
        harness.state().idle_events,
        [IdleEvent::Reset, IdleEvent::AttractStarted]
    );
    assert!(
        harness.state().overlay.canvas().strokes().is_empty(),
        "reset"
    );
    // Attract mode draws digits onto the canvas, and the drawing reaches the window.
    for _ in 0..8 {
        harness.step();
    }
    let app = harness.state();
    assert!(app.idle.in_attract());
    assert!(!app.overlay.canvas().is_empty());
    let attract_ink = app.last_ink.clone().expect("attract drew");
    assert!(attract_ink.pixels.iter().any(|&v| v > 0.5));

    // The first touch ends attract mode and draws on a clean canvas.
    for (phase, pos) in [
        (egui::TouchPhase::Start, at(0.5, 0.2)),
        (egui::TouchPhase::Move, at(0.5, 0.5)),
        (egui::TouchPhase::End, at(0.5, 0.8)),
    ] {
        harness.input_mut().events.push(touch(2, phase, pos));
        harness.step();
    }
    let app = harness.state();
    assert_eq!(app.idle_events.last(), Some(&IdleEvent::AttractEnded));
    assert!(!app.idle.in_attract());
    assert_eq!(app.overlay.canvas().strokes().len(), 1);
    // Only the visitor's vertical bar: nothing of the attract digit is left.
    let mut fresh = cnnviz::ui::Canvas::new();
    fresh.add_stroke(app.overlay.canvas().strokes()[0].clone());
    assert_eq!(app.overlay.canvas().ink(), fresh.ink());
    assert_eq!(app.last_ink.as_ref(), Some(&fresh.ink()));
}

// ---------------------------------------------------------------------------------------
// Screenshots of the kiosk overlay (on whatever GPU adapter exists).

struct KioskView {
    overlay: Overlay,
    labels: Vec<String>,
    features: OverlayFeatures,
    pad: Option<PinPadView>,
}

fn kiosk_harness(size: [f32; 2], features: OverlayFeatures) -> Option<Harness<'static, KioskView>> {
    let gpu = common::gpu()?;
    let format = wgpu::TextureFormat::Rgba8Unorm;
    let renderer = egui_wgpu::Renderer::new(&gpu.device, format, Default::default());
    let render_state = egui_wgpu::RenderState {
        adapter: gpu.adapter.clone(),
        available_adapters: vec![gpu.adapter.clone()],
        instance: gpu.instance.clone(),
        device: gpu.device.clone(),
        queue: gpu.queue.clone(),
        target_format: format,
        renderer: std::sync::Arc::new(egui::mutex::RwLock::new(renderer)),
    };
    let mut harness = Harness::builder()
        .with_size(size)
        .renderer(egui_kittest::wgpu::WgpuTestRenderer::from_render_state(
            render_state,
        ))
        .build_ui_state(
            |ui, app: &mut KioskView| {
                ui.painter()
                    .rect_filled(ui.max_rect(), 0.0, egui::Color32::from_rgb(12, 14, 19));
                let view = OverlayView {
                    model_name: "mnist-cnn",
                    class_labels: &app.labels,
                    features: app.features,
                    ..Default::default()
                };
                app.overlay.show(ui, &view);
                if let Some(pad) = &app.pad {
                    pin_pad::show(ui.ctx(), pad);
                }
            },
            KioskView {
                overlay: Overlay::new(),
                labels: (0..10).map(|d| d.to_string()).collect(),
                features,
                pad: None,
            },
        );
    harness.run();
    Some(harness)
}

fn save(image: &image::RgbaImage, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../kiosk-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    image.save(&path).unwrap();
    eprintln!("screenshot: {}", path.display());
}

#[test]
fn screenshots_of_the_kiosk_overlay() {
    let kiosk = KioskConfig::default().overlay_features();
    let Some(mut harness) = kiosk_harness([1920.0, 1080.0], kiosk) else {
        return;
    };
    let invited = harness.render().expect("render");
    save(&invited, "kiosk-1920x1080-invitation");
    let canvas = harness.get_by_label("Drawing canvas").rect();
    // Every touch control is at least 44 points tall at 1080p.
    for label in ["Predict", "Undo", "Clear", "Save", "Report", "Dashboard"] {
        let rect = harness.get_by_label(label).rect();
        assert!(rect.height() >= 44.0, "{label}: {rect:?}");
    }

    // The invitation is what makes the empty kiosk canvas differ from the plain one.
    let plain = OverlayFeatures {
        invitation: false,
        ..kiosk
    };
    let mut plain_harness = kiosk_harness([1920.0, 1080.0], plain).unwrap();
    let without = plain_harness.render().expect("render");
    let differing = (canvas.min.y as u32..canvas.max.y as u32)
        .flat_map(|y| (canvas.min.x as u32..canvas.max.x as u32).map(move |x| (x, y)))
        .filter(|&(x, y)| invited.get_pixel(x, y) != without.get_pixel(x, y))
        .count();
    let area = (canvas.width() * canvas.height()) as usize;
    assert!(
        differing > area / 50,
        "{differing} of {area} canvas pixels differ"
    );

    // A digit from attract mode on the canvas, then the PIN pad over everything.
    let mut player = AttractPlayer::new(AttractDigits::builtin(), &KioskConfig::default().attract);
    let frame = player.update(Duration::from_secs_f64(2.5)).unwrap();
    harness
        .state_mut()
        .overlay
        .canvas_mut()
        .load_image(&frame.ink);
    harness.run();
    save(&harness.render().unwrap(), "kiosk-1920x1080-attract");
    harness.state_mut().pad = Some(PinPadView {
        digits_entered: 2,
        max_digits: 4,
        message: Some("Wrong PIN. 2 tries left.".into()),
    });
    harness.run();
    save(&harness.render().unwrap(), "kiosk-1920x1080-pin-pad");
}
