#!/usr/bin/env python3
"""cnnviz against PyTorch eager (+ pytorch-grad-cam), ONNX Runtime and burn (wgpu backend), on
the same machine, in the same run.

1. Loads the committed safetensors model into PyTorch, rebuilding the architecture from the
   JSON in the file's ``__metadata__["architecture"]`` (see src/model/spec.rs).
2. Checks that cnnviz agrees with PyTorch: for every sample image, ``cnnviz predict --json``
   gives the preprocessed 28x28 input, the logits, the raw Grad-CAM map and the upsampled,
   normalised heatmap; PyTorch recomputes the logits and the raw map (autograd), and
   pytorch-grad-cam's ``GradCAM`` (ReLU output of the last conv block, target = the logit
   of the predicted class) the heatmap.
3. Times batch-1 forward, batch-1 forward + Grad-CAM and batch throughput in PyTorch eager,
   and batch-1 forward and throughput in ONNX Runtime (exported with torch.onnx).
4. When the burn binary exists (``benches/compare/burn``, built by hand: it is outside the
   workspace and CI never builds it) or ``--burn PATH`` names one: runs it on the same
   adapter as cnnviz. It checks burn's logits, raw Grad-CAM map and heatmap against cnnviz's
   for every sample image and times batch-1 forward, batch-1 forward + Grad-CAM and eval
   throughput over the MNIST test set.
5. Runs ``cnnviz bench --json --only latency,eval`` and prints the figures side by side
   with ratios (> 1 means cnnviz is faster).

Usage (from the repository root, after ``cargo build --release``):

    python benches/compare/compare.py [--cnnviz target/release/cnnviz] [--runs 500] [--burn PATH | --no-burn]

Exit status: 0 when every check agrees, 1 when one does not, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from torch import nn

REPO = Path(__file__).resolve().parents[2]

# Agreement tolerances: logits relative to their largest magnitude, maps absolute (both
# maps are normalised to 0..1, so absolute is relative).
LOGIT_TOLERANCE = 1e-4
RAW_CAM_TOLERANCE = 1e-4
HEATMAP_TOLERANCE = 2e-3


# ---------------------------------------------------------------- model


def load_model(path: Path) -> tuple[nn.Sequential, dict]:
    """The network of a cnnviz safetensors file as an ``nn.Sequential`` whose module names
    are the layer names, so ``state_dict`` keys are the file's tensor names."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if "architecture" not in metadata:
            raise SystemExit(f"{path}: no __metadata__['architecture'] in the file")
        arch = json.loads(metadata["architecture"])
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    if arch.get("format") != "cnnviz.sequential":
        raise SystemExit(f"{path}: architecture format {arch.get('format')!r} is not cnnviz.sequential")
    modules = OrderedDict()
    is_map = True  # whether the current activation is C×H×W (batch norm's 2d or 1d form)
    for layer in arch["layers"]:
        kind, name = layer["type"], layer["name"]
        if kind == "conv2d":
            pad, pad_end = layer["padding"], layer.get("padding_end", layer["padding"])
            conv = nn.Conv2d(
                layer["in_channels"],
                layer["out_channels"],
                layer["kernel_size"],
                stride=layer["stride"],
                padding=pad if pad == pad_end else 0,
                bias=True,
            )
            conv.weight.data.copy_(tensors[layer["weight"]])
            bias = layer.get("bias")
            conv.bias.data.copy_(tensors[bias] if bias else torch.zeros(layer["out_channels"]))
            # Asymmetric padding (Keras' `same`): pad explicitly, then convolve unpadded.
            m = conv if pad == pad_end else nn.Sequential(nn.ZeroPad2d((pad, pad_end, pad, pad_end)), conv)
        elif kind == "batchnorm":
            m = (nn.BatchNorm2d if is_map else nn.BatchNorm1d)(layer["num_features"], eps=layer["eps"])
            for attr, key in [("weight", "weight"), ("bias", "bias"), ("running_mean", "running_mean"),
                              ("running_var", "running_var")]:
                getattr(m, attr).data.copy_(tensors[layer[key]])
        elif kind == "leaky_relu":
            m = nn.LeakyReLU(layer["negative_slope"])
        elif kind == "sigmoid":
            m = nn.Sigmoid()
        elif kind == "tanh":
            m = nn.Tanh()
        elif kind == "dropout":
            m = nn.Dropout(layer.get("p", 0.0))
        elif kind == "avgpool2d":
            m = nn.AvgPool2d(layer["kernel_size"], stride=layer["stride"], padding=layer.get("padding", 0),
                             count_include_pad=layer.get("count_include_pad", True))
        elif kind == "global_avg_pool":
            m = nn.AdaptiveAvgPool2d(1)
        elif kind == "dense":
            m = nn.Linear(layer["in_features"], layer["out_features"], bias=True)
            m.weight.data.copy_(tensors[layer["weight"]])
            bias = layer.get("bias")
            m.bias.data.copy_(tensors[bias] if bias else torch.zeros(layer["out_features"]))
        elif kind == "relu":
            m = nn.ReLU(inplace=False)  # hooks need the output kept
        elif kind == "maxpool2d":
            m = nn.MaxPool2d(layer["kernel_size"], stride=layer["stride"])
        elif kind == "flatten":
            m = nn.Flatten()
            is_map = False
        else:
            raise SystemExit(f"{path}: layer type {kind!r} is not supported here")
        modules[name] = m
    model = nn.Sequential(modules).eval()
    return model, arch


POINTWISE = {"relu", "leaky_relu", "sigmoid", "tanh", "dropout", "batchnorm"}


def grad_cam_layer(model: nn.Sequential, arch: dict) -> nn.Module:
    """The last conv block's output: the last of the element-wise layers (batch norm,
    activations, dropout) right after the last conv, or the conv itself."""
    layers = arch["layers"]
    target = max(i for i, l in enumerate(layers) if l["type"] == "conv2d")
    while target + 1 < len(layers) and layers[target + 1]["type"] in POINTWISE:
        target += 1
    return getattr(model, layers[target]["name"])


def normalise(arch: dict, pixels: np.ndarray) -> np.ndarray:
    """(pixels - mean) / std over (N, C, H, W) pixels, one value or one per channel."""
    n = arch["normalization"]
    shape = (1, -1, 1, 1) if pixels.ndim == 4 else (-1,)
    mean = np.asarray(n["mean"], dtype=np.float32).reshape(shape)
    std = np.asarray(n["std"], dtype=np.float32).reshape(shape)
    return ((pixels - mean) / std).astype(np.float32)


# ---------------------------------------------------------------- timing


def time_us(fn, runs: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    p99 = samples[min(len(samples) - 1, max(0, int(np.ceil(0.99 * len(samples))) - 1))]
    return {"median_us": statistics.median(samples), "p99_us": p99, "runs": runs}


def best_throughput(fn_for_batch, batches, runs: int, budget_s: float = 3.0) -> dict:
    rows = []
    for batch in batches:
        fn = fn_for_batch(batch)
        fn()  # warm-up
        samples = []
        started = time.perf_counter()
        while len(samples) < runs and (len(samples) < 3 or time.perf_counter() - started < budget_s):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        seconds = statistics.median(samples)
        rows.append({"batch": batch, "images_per_second": batch / seconds, "runs": len(samples)})
    best = max(rows, key=lambda r: r["images_per_second"])
    return {"best_batch": best["batch"], "images_per_second": best["images_per_second"], "batches": rows}


# ---------------------------------------------------------------- cnnviz


def find_cnnviz(given: str | None) -> Path:
    candidates = [Path(given)] if given else [REPO / "target/release/cnnviz", REPO / "target/release/cnnviz.exe"]
    for c in candidates:
        if c.is_file():
            return c
    raise SystemExit(
        f"no cnnviz binary at {', '.join(map(str, candidates))}: run `cargo build --release` or pass --cnnviz"
    )


def run_cnnviz(binary: Path, args: list[str]) -> str:
    done = subprocess.run([str(binary), *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"cnnviz {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


# ---------------------------------------------------------------- checks


def check_agreement(lines: list[str], model, arch) -> tuple[bool, list[dict]]:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    target_layer = grad_cam_layer(model, arch)
    cam = GradCAM(model=model, target_layers=[target_layer])
    inp = arch["input"]
    rows, ok = [], True
    for line in lines:
        ours = json.loads(line)
        pixels = np.asarray(ours["input"], dtype=np.float32).reshape(1, inp["channels"], inp["height"], inp["width"])
        x = torch.from_numpy(normalise(arch, pixels))

        # Logits and the raw map by autograd: A = target activations, G = d logit_c / d A.
        captured = {}
        handle = target_layer.register_forward_hook(lambda m, i, o: captured.__setitem__("a", o))
        logits = model(x)
        handle.remove()
        c = int(ours["target"])
        a = captured["a"]
        (g,) = torch.autograd.grad(logits[0, c], a)
        alpha = g[0].mean(dim=(1, 2))
        raw = torch.clamp((alpha[:, None, None] * a[0]).sum(0), min=0).detach().numpy()
        logits = logits.detach().numpy()[0]

        heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(c)])[0]
        row = agreement_row(ours, "torch", int(np.argmax(logits)), logits, raw, heat)
        ok &= row["agrees"]
        rows.append(row)
    return ok, rows


def agreement_row(ours: dict, peer: str, predicted: int, logits, raw, heat) -> dict:
    """One image's differences between cnnviz (a ``predict --json`` record) and a peer's
    logits, raw map and heatmap: logits and the raw map relative to the peer's largest
    magnitude, the heatmap absolute. Agreement also needs the same class, and the class
    cnnviz explained (its default target, the prediction) to be it."""
    logits, raw, heat = (np.asarray(a, dtype=np.float64).ravel() for a in (logits, raw, heat))
    ours_logits, ours_raw, ours_heat = (np.asarray(ours[k], dtype=np.float64).ravel() for k in ("logits", "cam_raw", "cam"))
    if ours_raw.shape != raw.shape or ours_heat.shape != heat.shape:
        raise SystemExit(f"{peer}'s maps for {ours['file']} have other shapes than cnnviz's")
    row = {
        "file": os.path.relpath(ours["file"], REPO) if os.path.isabs(ours["file"]) else ours["file"],
        "predicted_cnnviz": int(ours["predicted"]),
        f"predicted_{peer}": predicted,
        "logits_max_rel_diff": float(np.abs(ours_logits - logits).max() / max(1e-6, float(np.abs(logits).max()))),
        "raw_cam_max_rel_diff": float(np.abs(ours_raw - raw).max() / max(1e-6, float(np.abs(raw).max()))),
        "heatmap_max_abs_diff": float(np.abs(ours_heat - heat).max()),
    }
    row["agrees"] = (
        row["predicted_cnnviz"] == predicted == int(ours["target"])
        and row["logits_max_rel_diff"] <= LOGIT_TOLERANCE
        and row["raw_cam_max_rel_diff"] <= RAW_CAM_TOLERANCE
        and row["heatmap_max_abs_diff"] <= HEATMAP_TOLERANCE
    )
    return row


# ---------------------------------------------------------------- burn


BURN_CRATE = REPO / "benches/compare/burn"


def find_burn(given: str | None, disabled: bool) -> Path | None:
    """The burn comparison binary: ``--burn PATH`` (must exist), else the crate's own build
    when it has been built, else None (the burn columns are left out)."""
    if disabled:
        return None
    if given:
        if not Path(given).is_file():
            raise SystemExit(f"--burn {given}: no such file (build it: see benches/compare/README.md)")
        return Path(given)
    built = BURN_CRATE / "target/release/cnnviz-burn-compare"
    return built if built.is_file() else None


def burn_version() -> str:
    """The burn version the comparison crate's lock file pins."""
    try:
        lock = (BURN_CRATE / "Cargo.lock").read_text()
    except OSError:
        return "?"
    marker = 'name = "burn"\nversion = "'
    at = lock.find(marker)
    return lock[at + len(marker):].split('"', 1)[0] if at >= 0 else "?"


def run_burn(binary: Path, predictions: list[str], args, batches: list[int]) -> dict:
    """Runs the burn binary on cnnviz's preprocessed sample inputs and returns its report."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write("\n".join(predictions) + "\n")
        check_path = f.name
    try:
        done = subprocess.run(
            [str(binary), "--model", str(Path(args.model).resolve()), "--mnist", str(Path(args.mnist).resolve()),
             "--check", check_path, "--runs", str(args.runs), "--warmup", str(args.warmup),
             "--batches", ",".join(str(b) for b in batches)],
            cwd=REPO, capture_output=True, text=True)
    finally:
        os.unlink(check_path)
    if done.returncode != 0:
        raise SystemExit(f"{binary} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def check_burn(predictions: list[str], burn: dict) -> tuple[bool, list[dict]]:
    """burn against cnnviz on the same preprocessed inputs (see ``agreement_row``)."""
    rows = [
        agreement_row(json.loads(line), "burn", int(theirs["predicted"]), theirs["logits"], theirs["cam_raw"], theirs["cam"])
        for line, theirs in zip(predictions, burn["check"], strict=True)
    ]
    return all(r["agrees"] for r in rows), rows


def print_agreement(title: str, rows: list[dict], predicted_key: str) -> None:
    print(f"\nagreement with {title} on {len(rows)} images "
          f"(tolerances: logits {LOGIT_TOLERANCE:g} rel, raw CAM {RAW_CAM_TOLERANCE:g} rel, heatmap {HEATMAP_TOLERANCE:g} abs):")
    for r in rows:
        print(f"  {'ok  ' if r['agrees'] else 'FAIL'} {r['file']:<32} class {r['predicted_cnnviz']}/{r[predicted_key]}  "
              f"logits {r['logits_max_rel_diff']:.1e}  raw CAM {r['raw_cam_max_rel_diff']:.1e}  heatmap {r['heatmap_max_abs_diff']:.1e}")


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cnnviz", help="the cnnviz binary (default: target/release/cnnviz)")
    parser.add_argument("--model", default=str(REPO / "weights/mnist-cnn.safetensors"))
    parser.add_argument("--samples", default=str(REPO / "samples"), help="folder of digit images for the agreement check")
    parser.add_argument("--runs", type=int, default=500, help="timed runs per latency figure (after warm-up)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batches", default="64,256,1024", help="batch sizes tried for throughput")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch / ONNX Runtime threads (default: try 1 and all cores, keep the faster)")
    parser.add_argument("--json-out", help="also write every figure to this JSON file")
    parser.add_argument("--burn", help="the burn comparison binary (default: benches/compare/burn/target/release/"
                                       "cnnviz-burn-compare when it has been built)")
    parser.add_argument("--no-burn", action="store_true", help="leave burn out even when its binary exists")
    parser.add_argument("--mnist", default=str(REPO / "data/mnist"), help="MNIST IDX folder (burn's eval throughput)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    cores = os.cpu_count() or 1
    thread_counts = [args.threads] if args.threads > 0 else sorted({1, cores})

    binary = find_cnnviz(args.cnnviz)
    burn_binary = find_burn(args.burn, args.no_burn)
    model, arch = load_model(Path(args.model))
    inp = arch["input"]
    shape = (inp["channels"], inp["height"], inp["width"])
    images = sorted(
        p for ext in ("png", "jpg", "jpeg") for p in glob.glob(os.path.join(args.samples, f"*.{ext}"))
    )
    if not images:
        raise SystemExit(f"no images in {args.samples}")

    import onnxruntime as ort
    from pytorch_grad_cam import GradCAM

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}; threads tried: {thread_counts}; "
          f"burn: {f'{burn_version()} ({burn_binary})' if burn_binary else 'not built (see benches/compare/README.md)'}",
          flush=True)

    # 1. Agreement.
    predictions = run_cnnviz(binary, ["predict", "--json", *images]).splitlines()
    ok, agreement = check_agreement(predictions, model, arch)
    print_agreement("PyTorch / pytorch-grad-cam", agreement, "predicted_torch")

    # 2. PyTorch eager.
    digit = torch.from_numpy(normalise(arch, np.asarray(json.loads(predictions[0])["input"],
                                                        dtype=np.float32).reshape(1, *shape)))
    target_layer = grad_cam_layer(model, arch)
    cam = GradCAM(model=model, target_layers=[target_layer])

    def forward_only():
        with torch.no_grad():
            model(digit)

    def forward_and_cam():
        # targets=None: pytorch-grad-cam explains the predicted class (the logit argmax of
        # its own forward pass), as cnnviz's default does.
        cam(input_tensor=digit, targets=None)

    def fastest(measure, key, better):
        """Runs ``measure(threads)`` for each thread count and keeps the best result, so the
        baselines are at their best (on a busy 2-core machine one thread often wins)."""
        results = [dict(measure(t), threads=t) for t in thread_counts]
        return better(results, key=lambda r: r[key])

    def torch_latency(fn):
        def measure(t):
            torch.set_num_threads(t)
            return time_us(fn, args.runs, args.warmup)
        return fastest(measure, "median_us", min)

    torch_fwd = torch_latency(forward_only)
    torch_cam = torch_latency(forward_and_cam)

    def torch_batch(batch):
        x = digit.repeat(batch, 1, 1, 1)

        def go():
            with torch.no_grad():
                model(x).argmax(1)

        return go

    def torch_throughput(t):
        torch.set_num_threads(t)
        return best_throughput(torch_batch, batches, args.runs)

    torch_tput = fastest(torch_throughput, "images_per_second", max)

    # 3. ONNX Runtime (CPU), exported from the same module.
    x1 = digit.numpy()
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "mnist-cnn.onnx")
        with warnings.catch_warnings():
            # The TorchScript exporter is enough for a plain Sequential, and needs nothing more.
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (digit,), onnx_path, input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
        for t in thread_counts:
            options = ort.SessionOptions()
            options.intra_op_num_threads = t
            sessions[t] = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    ort_logits = sessions[thread_counts[0]].run(None, {"x": x1})[0][0]
    ort_ok = float(np.abs(ort_logits - model(digit).detach().numpy()[0]).max())
    ort_fwd = fastest(lambda t: time_us(lambda: sessions[t].run(None, {"x": x1}), args.runs, args.warmup),
                      "median_us", min)

    def ort_batch_for(t):
        def ort_batch(batch):
            xb = np.repeat(x1, batch, axis=0)
            return lambda: sessions[t].run(None, {"x": xb})[0].argmax(1)
        return ort_batch

    ort_tput = fastest(lambda t: best_throughput(ort_batch_for(t), batches, args.runs),
                       "images_per_second", max)

    # 4. burn (wgpu) on the same adapter, checked against cnnviz on the same inputs.
    burn = None
    if burn_binary:
        print("\nrunning burn (wgpu) ...", flush=True)
        burn = run_burn(burn_binary, predictions, args, batches)
        burn_ok, burn["agreement"] = check_burn(predictions, burn)
        ok &= burn_ok
        print(f"burn {burn_version()} on {burn['adapter']['name']} ({burn['adapter']['backend']})")
        print_agreement("burn (wgpu)", burn["agreement"], "predicted_burn")

    # 5. cnnviz, same machine, same run.
    bench = json.loads(run_cnnviz(binary, [
        "bench", "--json", "--only", "latency,eval", "--runs", str(args.runs),
        "--eval-batches", ",".join(str(b) for b in sorted({1, *batches})),
    ]))
    ours_latency = bench["latency"]
    ours_eval = bench["eval"]
    ours_batch1 = next(b for b in ours_eval["batches"] if b["batch"] == 1)
    ours_fwd1_us = ours_batch1["median_ms"] * 1e3

    def ratio(theirs, ours):
        return theirs / ours if ours > 0 else float("nan")

    print(f"\ncnnviz on {bench['adapter']['description']}")
    peers = [("PyTorch", torch_cam, torch_fwd, torch_tput), ("ONNX RT", None, ort_fwd, ort_tput)]
    if burn:
        peers.append(("burn-wgpu", burn["forward_grad_cam"], burn["forward"], burn["throughput"]))

    def cell(value, fmt):
        return f"{'-':>12}" if value is None or value != value else f"{value:>12{fmt}}"

    def row(label, ours, theirs, fmt, faster_when_smaller=True):
        line = f"{label:44}{ours:>12{fmt}}"
        for value in theirs:
            r = None if value is None else (ratio(value, ours) if faster_when_smaller else ratio(ours, value))
            line += cell(value, fmt) + (f"{'-':>8}" if r is None or r != r else f"{r:>8.2f}")
        print(line)

    print(f"{'':44}{'cnnviz':>12}" + "".join(f"{name:>12}{'ratio':>8}" for name, *_ in peers))
    row("batch 1, forward + Grad-CAM, median µs", ours_latency["median_us"],
        [cam["median_us"] if cam else None for _, cam, _, _ in peers], ".1f")
    row("batch 1, forward + Grad-CAM, p99 µs", ours_latency["p99_us"],
        [cam["p99_us"] if cam else None for _, cam, _, _ in peers], ".1f")
    row("batch 1, forward only, median µs", ours_fwd1_us, [fwd["median_us"] for _, _, fwd, _ in peers], ".1f")
    row("throughput, images/s (best batch)", ours_eval["images_per_second"],
        [tput["images_per_second"] for _, _, _, tput in peers], ".0f", faster_when_smaller=False)
    print(f"{'  best batch':44}{ours_eval['best_batch']:>12}" + "".join(f"{tput['best_batch']:>12}{'':>8}" for *_, tput in peers))
    print(f"  threads: PyTorch fwd {torch_fwd['threads']}, fwd + Grad-CAM {torch_cam['threads']}, "
          f"throughput {torch_tput['threads']}; ONNX RT fwd {ort_fwd['threads']}, throughput {ort_tput['threads']}")
    print("ratio > 1: cnnviz is faster. cnnviz's latency also computes the value ranges and maps the "
          "probabilities on the CPU;\nits forward-only and throughput figures include writing the inputs "
          "and reading every result back.")
    print(f"ONNX Runtime logits vs PyTorch: max abs diff {ort_ok:.1e}")
    if burn:
        print(f"burn-wgpu ({burn['adapter']['name']}, {burn['adapter']['backend']}): latency and forward-only figures "
              "include uploading the input and reading the probabilities (and the heatmap) back; its throughput "
              "is over consecutive MNIST test images\n(accuracy "
              + ", ".join(f"{b['accuracy'] * 100:.2f} % at batch {b['batch']}" for b in burn["throughput"]["batches"])
              + ").")

    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({
                "agreement": agreement, "torch": {"forward": torch_fwd, "forward_grad_cam": torch_cam,
                                                  "throughput": torch_tput, "version": torch.__version__},
                "onnxruntime": {"forward": ort_fwd, "throughput": ort_tput, "version": ort.__version__},
                "cnnviz": bench,
                "burn": burn,
            }, f, indent=1)
    if not ok:
        print("\nFAIL: cnnviz disagrees with PyTorch or burn on some image (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
