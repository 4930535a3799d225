//! The `cnnviz` command: a thin layer over the library. Every subcommand reports failures as
//! one line on stderr and a non-zero exit status.

mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cnnviz",
    version,
    about = "Shows how a convolutional network reads a handwritten digit",
    long_about = "Shows how a convolutional network reads a handwritten digit.\n\nWithout a \
                  command, opens the window: draw a digit and watch every layer and Grad-CAM \
                  respond.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Model file for the window (.safetensors or .onnx); default: weights/mnist-cnn.safetensors.
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Store of saved digits for the window; default: $CNNVIZ_STORE, else the platform's
    /// data directory (e.g. ~/.local/share/cnnviz/cnnviz.redb).
    #[arg(long)]
    store: Option<std::path::PathBuf>,
    /// Kiosk mode for unattended touch screens: fullscreen, idle reset, attract mode; exit
    /// only through the admin gesture and PIN (see docs/kiosk.md).
    #[arg(long)]
    kiosk: bool,
    /// The kiosk's settings (TOML; every key is documented in kiosk.example.toml).
    #[arg(long, requires = "kiosk")]
    config: Option<std::path::PathBuf>,
    /// The architecture of a safetensors file that holds only a PyTorch state_dict, for
    /// every command that loads a model: short text such as
    /// "input(1,28,28) conv(1,16,3,p1) bn relu maxpool(2) flatten dense(3136,10)" (see the
    /// README, "Bring your own model") or a JSON architecture file.
    #[arg(long, global = true, value_name = "TEXT|FILE")]
    arch: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Predict the digit in one or more images, with Grad-CAM.
    Predict(cli::predict::PredictArgs),
    /// Accuracy on the MNIST test set through the WGSL path.
    Eval(cli::eval::EvalArgs),
    /// What each conv channel looks for: top test-set examples and weights, as sheets.
    Channels(cli::channels::ChannelsArgs),
    /// The GPU adapter and a summary of the model.
    Info(cli::info::InfoArgs),
    /// Train a model on MNIST with cnnviz's own CPU code.
    Train(cli::train::TrainArgs),
    /// Saved predictions and misclassification reports: export, import, list, stats, check.
    Store(cli::store::StoreArgs),
    /// Render the 3D scene of one digit offscreen to a PNG.
    Render(cli::render::RenderArgs),
    /// Per-kernel GPU timings against the adapter's peak, latency, throughput, frame rate.
    Bench(cli::bench::BenchArgs),
    /// Convert an ONNX file to a cnnviz model file (.safetensors with its architecture).
    Convert(cli::convert::ConvertArgs),
    /// Scripted kiosk visitors for a long time, headless: do memory and GPU objects level off?
    Soak(cli::soak::SoakArgs),
}

fn main() -> std::process::ExitCode {
    quiet_device_select_layer();
    exit_quietly_on_closed_pipe();
    let cli = Cli::parse();
    cli::set_arch(cli.arch.clone());
    let result = if cli.kiosk {
        run_kiosk(&cli)
    } else {
        if let Err(e) = cnnviz::logging::init(None) {
            eprintln!("cnnviz: logging: {e}");
        }
        cnnviz::logging::log_panics();
        match &cli.command {
            None => cli::window::run(&cli.model, &cli.store),
            Some(command) => run_command(command),
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // One line: the error and its causes, outermost first.
            let chain: Vec<String> = error.chain().map(|e| e.to_string()).collect();
            eprintln!("cnnviz: error: {}", chain.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Kiosk mode logs to a size-capped file as well, so the config comes first.
fn run_kiosk(cli: &Cli) -> anyhow::Result<std::process::ExitCode> {
    let config = cli::kiosk::load_config(cli.config.as_deref())?;
    let store = cli::kiosk::store_path(&config, &cli.store)?;
    let log_file = config.log_path(&store);
    cnnviz::logging::init(Some((&log_file, config.log.max_bytes)))
        .map_err(|e| anyhow::anyhow!("kiosk log {}: {e}", log_file.display()))?;
    cnnviz::logging::log_panics();
    cli::kiosk::run(&cli.model, config, store)
}

fn run_command(command: &Command) -> anyhow::Result<std::process::ExitCode> {
    match command {
        Command::Predict(args) => cli::predict::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Channels(args) => cli::channels::run(args),
        Command::Info(args) => cli::info::run(args),
        Command::Train(args) => cli::train::run(args).map(|()| std::process::ExitCode::SUCCESS),
        Command::Store(args) => cli::store::run(args),
        Command::Render(args) => cli::render::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Soak(args) => cli::soak::run(args),
        Command::Convert(args) => cli::convert::run(args),
    }
}

/// Mesa's Vulkan device-select layer asks the Wayland compositor which GPU drives the
/// display, and without `XDG_RUNTIME_DIR` (headless machines, CI, ssh) it prints two
/// "XDG_RUNTIME_DIR is invalid" lines into every command's stderr. There is no display to
/// match then, so the layer has nothing to decide: switch it off.
/// Rust ignores SIGPIPE, so `cnnviz predict --json | head` made `println!` panic on the
/// closed pipe. A command-line tool whose reader went away should stop quietly, as `cat`
/// does: restore the default action.
fn exit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: the first thing `main` does, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn quiet_device_select_layer() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        // SAFETY: the first thing `main` does, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}
