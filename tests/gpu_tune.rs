//! The kernel autotuner (`gpu::tune`) on the real adapter: the first use times every
//! candidate and writes the cache, the next reads it; a cache of another candidate set
//! or a corrupt file is ignored and rewritten; a forced variant skips tuning; a one-image
//! network tunes each conv of the fused path as block kernel or gemm; and the
//! tuned network, whichever kernels won, matches the CPU twin within 1e-4. Each test
//! uses its own temporary cache directory (`choose_with_cache`; the CLI test sets
//! `CNNVIZ_CACHE_DIR` on the child process only).

mod common;

use std::path::Path;

use cnnviz::gpu::tune::{self, KernelChoice, Reason, cache};
use cnnviz::gpu::{CamTarget, GpuNetwork, KernelVariant, LayerKernel, NetworkOptions};
use cnnviz::model::Model;
use cnnviz::model::train::default_architecture;
use common::parity::check_parity;
use common::*;

fn model() -> Model {
    random_model(default_architecture(), 91)
}

fn choose(model: &Model, batch: u32, dir: &Path, options: &NetworkOptions) -> KernelChoice {
    let gpu = gpu().expect("callers check for a GPU first");
    tune::choose_with_cache(&gpu.device, &gpu.queue, model, batch, options, Some(dir))
        .unwrap_or_else(|e| panic!("tuning: {e}"))
}

/// Auto, whatever `CNNVIZ_KERNELS` says in the test's environment.
fn auto() -> NetworkOptions {
    NetworkOptions::with_kernels(KernelVariant::Auto)
}

fn reasons(choice: &KernelChoice) -> Vec<Reason> {
    choice.decisions.iter().map(|d| d.reason).collect()
}

fn the_cache_file(dir: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir.join("kernels"))
        .expect("the cache directory exists")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn the_first_use_tunes_and_caches_and_the_next_reads_the_cache() {
    let Some(_) = gpu() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let model = model();
    let first = choose(&model, 2, dir.path(), &auto());
    // conv1, conv2, fc1, fc2, each timed with every candidate it can run.
    assert_eq!(first.decisions.len(), 4);
    assert!(reasons(&first).iter().all(|&r| r == Reason::Tuned));
    for d in &first.decisions {
        let fastest = d
            .timings_ns
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(name, _)| name.clone());
        assert_eq!(d.choice.map(|c| c.name().to_string()), fastest, "{d:?}");
        let expected = if d.layer.starts_with("conv") { 3 } else { 2 };
        assert_eq!(d.timings_ns.len(), expected, "{d:?}");
        assert!(d.timings_ns.values().all(|&ns| ns > 0.0), "{d:?}");
    }
    let path = the_cache_file(dir.path());
    assert_eq!(first.cache_path.as_ref(), Some(&path));
    let text = std::fs::read_to_string(&path).expect("cache file");
    assert!(
        text.contains("\"timings_ns\"") && text.contains("\"gemm\""),
        "{text}"
    );

    let second = choose(&model, 2, dir.path(), &auto());
    assert!(reasons(&second).iter().all(|&r| r == Reason::Cached));
    assert_eq!(second.choices, first.choices);
    // Another batch bucket is tuned on its own and kept beside the first.
    let batched = choose(&model, 8, dir.path(), &auto());
    assert!(reasons(&batched).iter().all(|&r| r == Reason::Tuned));
    assert!(batched.decisions.iter().all(|d| d.key.ends_with("@b8")));
    let again = choose(&model, 2, dir.path(), &auto());
    assert!(reasons(&again).iter().all(|&r| r == Reason::Cached));
}

#[test]
fn a_cache_of_another_candidate_set_is_ignored_and_rewritten() {
    let Some(_) = gpu() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let model = model();
    choose(&model, 2, dir.path(), &auto());
    let path = the_cache_file(dir.path());
    let text = std::fs::read_to_string(&path).expect("cache file");
    let checksum = tune::key::candidate_checksum();
    assert!(text.contains(&checksum));
    std::fs::write(&path, text.replace(&checksum, "0000000000000000")).expect("write");

    let retuned = choose(&model, 2, dir.path(), &auto());
    assert!(reasons(&retuned).iter().all(|&r| r == Reason::Tuned));
    let rewritten = std::fs::read_to_string(&path).expect("cache file");
    assert!(rewritten.contains(&checksum) && !rewritten.contains("0000000000000000"));
}

#[test]
fn a_corrupt_cache_file_is_ignored_and_rewritten() {
    let Some(_) = gpu() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let model = model();
    choose(&model, 2, dir.path(), &auto());
    let path = the_cache_file(dir.path());
    for garbage in ["", "{ \"schema\": ", "\u{0}\u{1}not json at all"] {
        std::fs::write(&path, garbage).expect("write");
        let choice = choose(&model, 2, dir.path(), &auto());
        assert!(
            reasons(&choice).iter().all(|&r| r == Reason::Tuned),
            "{garbage:?}"
        );
        let text = std::fs::read_to_string(&path).expect("cache file");
        let parsed: Result<cache::CacheFile, _> = serde_json::from_str(&text);
        assert!(parsed.is_ok(), "not rewritten after {garbage:?}: {text}");
    }
}

#[test]
fn a_forced_variant_skips_tuning_and_runs_its_kernels() {
    let Some(gpu) = gpu() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let model = model();
    for (variant, kernel) in [
        (KernelVariant::Direct, LayerKernel::Direct),
        (KernelVariant::Gemm, LayerKernel::Gemm),
    ] {
        let options = NetworkOptions::with_kernels(variant);
        let choice = choose(&model, 4, dir.path(), &options);
        assert!(reasons(&choice).iter().all(|&r| r == Reason::Forced));
        assert!(choice.decisions.iter().all(|d| d.timings_ns.is_empty()));
        assert_eq!(choice.cache_path, None);
        let convs: Vec<_> = choice
            .decisions
            .iter()
            .filter(|d| d.layer.starts_with("conv"))
            .collect();
        assert!(convs.iter().all(|d| d.choice == Some(kernel)), "{convs:?}");
        let network =
            GpuNetwork::with_choices(&gpu.device, &model, 4, choice.variant, &choice.choices)
                .expect("network");
        let labels = network.forward_kernels();
        let conv1 = labels.first().expect("conv1 launch");
        match kernel {
            LayerKernel::Gemm => assert!(conv1.ends_with("_gemm"), "{labels:?}"),
            _ => assert_eq!(*conv1, "conv1 conv2d.forward", "{labels:?}"),
        }
    }
    assert!(
        !dir.path().join("kernels").exists(),
        "forcing wrote a cache"
    );
}

/// At batch 1 `auto` runs the fused path; the tuner times whole interactive inferences
/// with each conv as its conv block kernel and as gemm, keeps the faster per conv, and
/// caches that; the dense layers are walked (nothing to time). `fused` times nothing.
#[test]
fn a_one_image_network_tunes_block_or_gemm_per_conv_and_caches_it() {
    let Some(_) = gpu() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let model = model();
    let first = choose(&model, 1, dir.path(), &auto());
    assert_eq!(first.decisions.len(), 4);
    for d in &first.decisions {
        if !d.layer.starts_with("conv") {
            assert_eq!(d.reason, Reason::Fused, "{d:?}");
            assert!(d.timings_ns.is_empty(), "{d:?}");
            continue;
        }
        assert_eq!(d.reason, Reason::Tuned, "{d:?}");
        assert!(tune::fused::is_fused_key(&d.key), "{d:?}");
        let names: Vec<&str> = d.timings_ns.keys().map(String::as_str).collect();
        assert_eq!(names, [tune::fused::BLOCK, tune::fused::GEMM], "{d:?}");
        assert!(d.timings_ns.values().all(|&ns| ns > 0.0), "{d:?}");
        let fastest = d
            .timings_ns
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(name, _)| name.as_str());
        assert_eq!(d.kernel_name(), fastest, "{d:?}");
        let described = d.describe();
        assert!(
            described.contains("(tuned, ") && described.contains(" µs, gemm "),
            "{described}"
        );
    }
    let path = the_cache_file(dir.path());
    assert_eq!(first.cache_path.as_ref(), Some(&path));

    let second = choose(&model, 1, dir.path(), &auto());
    let convs = |c: &KernelChoice| -> Vec<Reason> {
        c.decisions
            .iter()
            .filter(|d| d.layer.starts_with("conv"))
            .map(|d| d.reason)
            .collect()
    };
    assert_eq!(convs(&second), [Reason::Cached, Reason::Cached]);
    assert_eq!(second.choices, first.choices);
    assert_eq!(
        second.decisions[0].timings_ns,
        first.decisions[0].timings_ns
    );
    // The batched choices live beside the batch-1 ones in the same file.
    let batched = choose(&model, 2, dir.path(), &auto());
    assert!(reasons(&batched).iter().all(|&r| r == Reason::Tuned));
    assert_eq!(
        convs(&choose(&model, 1, dir.path(), &auto())),
        [Reason::Cached; 2]
    );

    let other = tempfile::tempdir().expect("temp dir");
    let fused = NetworkOptions::with_kernels(KernelVariant::Fused);
    let walked = choose(&model, 1, other.path(), &fused);
    assert!(reasons(&walked).iter().all(|&r| r == Reason::Fused));
    assert!(
        !other.path().join("kernels").exists(),
        "the fused variant wrote a tuning cache"
    );
}

#[test]
fn the_tuned_network_matches_the_cpu_whichever_kernels_won() {
    let Some(gpu) = gpu() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let model = model();
    for (max_batch, images) in [(1u32, 1usize), (70, 70), (70, 5)] {
        let choice = choose(&model, max_batch, dir.path(), &auto());
        let network = GpuNetwork::with_choices(
            &gpu.device,
            &model,
            max_batch,
            choice.variant,
            &choice.choices,
        )
        .expect("tuned network");
        for block in 0..model.conv_blocks().len() {
            let inputs = Rng::new(500 + images as u64).vec(images * model.input_len(), 2.0);
            check_parity(
                &network,
                &model,
                &inputs,
                CamTarget::Predicted,
                block,
                &format!(
                    "tuned network of {max_batch} ({:?}), batch {images}",
                    network.forward_kernels()
                ),
            );
        }
    }
}

#[test]
fn cnnviz_info_says_which_kernel_each_layer_runs_and_why() {
    if !gpu_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cnnviz"))
            .args(["info", "--batches", "2"])
            .env("CNNVIZ_CACHE_DIR", dir.path())
            .env_remove("CNNVIZ_KERNELS")
            .output()
            .expect("cnnviz runs")
    };
    let first = run();
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{text}");
    assert!(
        text.contains("conv2: ") && text.contains("(tuned, timestamps: "),
        "{text}"
    );
    assert!(text.contains("launches: conv1 conv2d."), "{text}");
    let second = run();
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("(cached, timestamps: "), "{text}");

    let forced = std::process::Command::new(env!("CARGO_BIN_EXE_cnnviz"))
        .args(["info", "--batches", "2"])
        .env("CNNVIZ_CACHE_DIR", dir.path())
        .env("CNNVIZ_KERNELS", "direct")
        .output()
        .expect("cnnviz runs");
    let text = String::from_utf8_lossy(&forced.stdout);
    assert!(text.contains("conv2: direct (forced)"), "{text}");
}
