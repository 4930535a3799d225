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
    /// Model file for the window (.safetensors); default: weights/mnist-cnn.safetensors.
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Store of saved digits for the window; default: $CNNVIZ_STORE, else the platform's
    /// data directory (e.g. ~/.local/share/cnnviz/cnnviz.redb).
    #[arg(long)]
    store: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Predict the digit in one or more images, with Grad-CAM.
    Predict(cli::predict::PredictArgs),
    /// Accuracy on the MNIST test set through the WGSL path.
    Eval(cli::eval::EvalArgs),
    /// The GPU adapter and a summary of the model.
    Info(cli::info::InfoArgs),
    /// Train a model on MNIST with cnnviz's own CPU code.
    Train(cli::train::TrainArgs),
    /// Saved predictions and misclassification reports: export, import, list, stats, check.
    Store(cli::store::StoreArgs),
    /// Render the 3D scene of one digit offscreen to a PNG.
    Render(cli::render::RenderArgs),
}

fn main() -> std::process::ExitCode {
    quiet_device_select_layer();
    let cli = Cli::parse();
    let result = match &cli.command {
        None => cli::window::run(&cli.model, &cli.store),
        Some(command) => run_command(command),
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

fn run_command(command: &Command) -> anyhow::Result<std::process::ExitCode> {
    match command {
        Command::Predict(args) => cli::predict::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Info(args) => cli::info::run(args),
        Command::Train(args) => cli::train::run(args).map(|()| std::process::ExitCode::SUCCESS),
        Command::Store(args) => cli::store::run(args),
        Command::Render(args) => cli::render::run(args),
    }
}

/// Mesa's Vulkan device-select layer asks the Wayland compositor which GPU drives the
/// display, and without `XDG_RUNTIME_DIR` (headless machines, CI, ssh) it prints two
/// "XDG_RUNTIME_DIR is invalid" lines into every command's stderr. There is no display to
/// match then, so the layer has nothing to decide: switch it off.
fn quiet_device_select_layer() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        // SAFETY: the first thing `main` does, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}
