#!/usr/bin/env python3
"""cnnviz's explanation methods against pytorch-grad-cam and Captum, on the same machine.

For the committed model and every image in samples/, ``cnnviz predict --method all --json``
gives the preprocessed input, the explained class and, per method, the attribution (the
reference library's output), the raw CAM map and the display map with its deletion and
insertion curves. The same model rebuilt in PyTorch (compare.py's loader) then runs:

- pytorch-grad-cam 1.5.x: GradCAM, GradCAMPlusPlus, HiResCAM, XGradCAM, LayerCAM,
  GradCAMElementWise, EigenCAM, ScoreCAM (target layer: the ReLU output of the last conv
  block; target: ClassifierOutputTarget(class), the logit). The raw map (after BaseCAM's
  ReLU, before any normalisation) is captured by wrapping ``get_cam_image``; the heatmap is
  what the CAM object returns. EigenCAM's sign is arbitrary in the reference, so it is
  compared up to sign (cnnviz fixes it; docs/explain.md).
- Captum: Saliency (abs), InputXGradient, GuidedBackprop, GuidedGradCam (same layer),
  IntegratedGradients (zero baseline, gausslegendre, the same steps), Occlusion (window ×
  window patch, stride, baseline 0) and NoiseTunnel(Saliency) smoothgrad with cnnviz's own
  noise (``torch.normal`` is patched, for that one call, to return the noise cnnviz reports).
- the deletion/insertion curves, recomputed in PyTorch from cnnviz's display map by the
  definition in docs/explain.md.

Prints the largest absolute and relative difference per method, and the time per method
of the reference library next to cnnviz's (the ``seconds`` of each method in the JSON, and
``cnnviz bench --only explain --json`` where that exists).

Usage (repository root, after ``cargo build --release``):

    python benches/compare/explain_compare.py [--reference] [--cnnviz target/release/cnnviz]

``--reference`` asks cnnviz for its CPU twin instead of the GPU explainer.
Exit status: 0 when every method agrees, 1 when one does not, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import REPO, find_cnnviz, grad_cam_layer, load_model, normalise, run_cnnviz  # noqa: E402

# Maps and attributions: the largest absolute difference divided by the reference's largest
# magnitude. CAM heatmaps (0..1): absolute, as compare.py's Grad-CAM check. Curves:
# probabilities, absolute.
RELATIVE_TOLERANCE = 1e-4
HEATMAP_TOLERANCE = 2e-3
CURVE_TOLERANCE = 1e-4

CAM_CLASSES = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "gradcam-elementwise": "GradCAMElementWise",
    "eigencam": "EigenCAM",
    "scorecam": "ScoreCAM",
}


def relative(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """(largest absolute difference, that divided by the reference's largest |value|)."""
    diff = float(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)).max())
    scale = float(np.abs(theirs).max())
    return diff, diff / scale if scale > 0 else diff


class CamRunner:
    """One pytorch-grad-cam object per method; ``__call__`` gives (raw, heatmap)."""

    def __init__(self, model, layer, name: str):
        import pytorch_grad_cam

        self.cam = getattr(pytorch_grad_cam, CAM_CLASSES[name])(model=model, target_layers=[layer])
        self.cam.batch_size = 64
        inner = self.cam.get_cam_image
        self.captured = None

        def capture(*args, **kwargs):
            self.captured = np.asarray(inner(*args, **kwargs))
            return self.captured

        self.cam.get_cam_image = capture

    def __call__(self, x, c):
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        heat = self.cam(input_tensor=x, targets=[ClassifierOutputTarget(c)])[0]
        return self.captured[0], heat


def eigen_cam_flipped_heatmap(projection: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """BaseCAM's scaling of the negated projection (the other SVD sign)."""
    from pytorch_grad_cam.utils.image import scale_cam_image

    scaled = scale_cam_image(np.maximum(-projection, 0)[None], size)
    return scale_cam_image(np.maximum(scaled, 0))[0]


def captum_attribution(name: str, model, layer, x, c, options, noise):
    from captum.attr import (GuidedBackprop, GuidedGradCam, InputXGradient, IntegratedGradients,
                             NoiseTunnel, Occlusion, Saliency)

    if name == "saliency":
        return Saliency(model).attribute(x, target=c, abs=True)
    if name == "input-x-gradient":
        return InputXGradient(model).attribute(x, target=c)
    if name == "guided-backprop":
        return GuidedBackprop(model).attribute(x, target=c)
    if name == "guided-gradcam":
        return GuidedGradCam(model, layer).attribute(x, target=c)
    if name == "integrated-gradients":
        return IntegratedGradients(model).attribute(
            x, baselines=0.0, target=c, n_steps=options["ig_steps"], method="gausslegendre")
    if name == "occlusion":
        w, s = options["occlusion_window"], options["occlusion_stride"]
        channels = x.shape[1]
        return Occlusion(model).attribute(
            x, sliding_window_shapes=(channels, w, w), strides=(channels, s, s), baselines=0.0, target=c)
    if name == "smoothgrad":
        samples = options["smoothgrad_samples"]
        ours = torch.tensor(np.asarray(noise, dtype=np.float32)).reshape((samples,) + tuple(x.shape[1:]))
        real_normal = torch.normal
        torch.normal = lambda mean, std, *a, **k: ours.reshape(std.shape).to(std.dtype)
        try:
            return NoiseTunnel(Saliency(model)).attribute(
                x, nt_type="smoothgrad", nt_samples=samples, stdevs=options["smoothgrad_stdev"], target=c)
        finally:
            torch.normal = real_normal
    raise KeyError(name)


def faithfulness_curves(model, x: torch.Tensor, display_map: np.ndarray, c: int, blank: np.ndarray, steps: int):
    """docs/explain.md, "Faithfulness", independently of cnnviz's code."""
    flat = display_map.reshape(-1)
    order = np.argsort(-flat, kind="stable")
    pixels = flat.size
    deleted, inserted = [], []
    for s in range(steps + 1):
        touched = order[: s * pixels // steps]
        d = x.clone().reshape(x.shape[1], -1)
        per_channel = torch.from_numpy(blank).to(d.dtype).reshape(-1, 1)
        i = per_channel.expand_as(d).clone()
        d[:, touched] = per_channel
        i[:, touched] = x.reshape(x.shape[1], -1)[:, touched]
        deleted.append(d.reshape(x.shape))
        inserted.append(i.reshape(x.shape))
    with torch.no_grad():
        batch = torch.cat(deleted + inserted).double()
        p = torch.softmax(model.double()(batch), dim=1)[:, c].numpy()
    model.float()
    return p[: steps + 1], p[steps + 1:]


def time_ms(fn, runs: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - started) / runs * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cnnviz", help="path of the cnnviz binary (default target/release/cnnviz)")
    parser.add_argument("--model", default=str(REPO / "weights/mnist-cnn.safetensors"))
    parser.add_argument("--samples", default=str(REPO / "samples"))
    parser.add_argument("--reference", action="store_true", help="ask cnnviz for its CPU twin")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per reference method")
    args = parser.parse_args()

    binary = find_cnnviz(args.cnnviz)
    model, arch = load_model(Path(args.model))
    layer = grad_cam_layer(model, arch)
    images = sorted(glob.glob(str(Path(args.samples) / "*.png")) + glob.glob(str(Path(args.samples) / "*.jpg")))
    if not images:
        print(f"no images in {args.samples}", file=sys.stderr)
        return 2
    inp = arch["input"]
    size = (inp["width"], inp["height"])
    # The blank canvas per channel: ink 0 normalised with each channel's mean and std.
    blank = normalise(arch, np.zeros((1, inp["channels"], 1, 1), dtype=np.float32)).reshape(-1)
    # cnnviz's defaults (ExplainOptions::default), passed explicitly so both sides agree.
    options = {"ig_steps": 32, "smoothgrad_samples": 16, "smoothgrad_stdev": 0.5, "occlusion_window": 4,
               "occlusion_stride": 2, "faithfulness_steps": 28}
    cli = ["predict", "--json", "--method", "all", "--model", args.model]
    cli += [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    if args.reference:
        cli.append("--reference")

    # ScoreCAM wraps its batches in a tqdm progress bar; keep the report readable.
    import types

    import pytorch_grad_cam.score_cam as score_cam

    score_cam.tqdm = types.SimpleNamespace(tqdm=lambda iterable, **_: iterable)
    cams = {name: CamRunner(model, layer, name) for name in CAM_CLASSES}
    worst: dict[str, dict] = {}
    theirs_ms: dict[str, list[float]] = {}
    ours_ms: dict[str, list[float]] = {}
    engine = None
    ok = True
    notes: list[str] = []

    def record(method: str, what: str, diff: float, rel: float, limit: float, measure: float):
        nonlocal ok
        row = worst.setdefault(method, {})
        prev = row.get(what)
        if prev is None or measure > prev[2]:
            row[what] = (diff, rel, measure, limit)
        if not measure <= limit:
            ok = False

    for image in images:
        line = json.loads(run_cnnviz(binary, [*cli, image]))
        engine = line["engine"]
        pixels = np.asarray(line["input"], dtype=np.float32).reshape(1, inp["channels"], inp["height"], inp["width"])
        x = torch.from_numpy(normalise(arch, pixels))
        for e in line["explanations"]:
            name, c = e["method"], int(e["class"])
            ours_ms.setdefault(name, []).append(e["seconds"] * 1e3)
            if name in CAM_CLASSES:
                runner = cams[name]
                raw, heat = runner(x, c)
                theirs_ms.setdefault(name, []).append(time_ms(lambda: runner(x, c), args.runs))
                ours_raw = np.asarray(e["raw"], dtype=np.float64)
                ours_heat = np.asarray(e["attribution"], dtype=np.float64)
                if name == "eigencam":
                    # Either sign of the reference's projection.
                    candidates = [(np.maximum(raw, 0), heat),
                                  (np.maximum(-raw, 0), eigen_cam_flipped_heatmap(raw, size))]
                    raw, heat = min(candidates, key=lambda rh: relative(ours_raw, rh[0])[1])
                else:
                    raw = np.maximum(raw, 0)
                d, r = relative(ours_raw, raw)
                record(name, "raw", d, r, RELATIVE_TOLERANCE, r)
                d, r = relative(ours_heat, heat)
                record(name, "heatmap", d, r, HEATMAP_TOLERANCE, d)
            else:
                theirs = captum_attribution(name, model, layer, x, c, options, e.get("noise")).detach().numpy()[0]
                theirs_ms.setdefault(name, []).append(time_ms(
                    lambda: captum_attribution(name, model, layer, x, c, options, e.get("noise")), args.runs))
                ours_attr = np.asarray(e["attribution"], dtype=np.float64)
                d, r = relative(ours_attr, theirs)
                limit, measure = RELATIVE_TOLERANCE, r
                if r > limit:
                    # Near ties (a max-pool window or a ReLU kink decided by rounding, as on
                    # IG's nearly blank first steps) make the reference disagree with itself:
                    # the same Captum call in float64 is the judge of how far f32 may move.
                    x64 = x.double()
                    theirs64 = captum_attribution(name, model.double(), layer, x64, c, options,
                                                  e.get("noise")).detach().numpy()[0]
                    model.float()
                    spread = relative(theirs, theirs64)[1]
                    r64 = relative(ours_attr, theirs64)[1]
                    if spread > limit and min(r, r64) <= spread:
                        notes.append(f"{name} on {Path(image).name}: {r:.1e} from Captum in float32 and "
                                     f"{r64:.1e} from the same call in float64, which are {spread:.1e} "
                                     "apart (near ties): the limit is that spread")
                        limit, measure = spread, min(r, r64)
                    else:
                        notes.append(f"{name} on {Path(image).name}: {r:.1e} from Captum in float32, "
                                     f"{r64:.1e} from it in float64 ({spread:.1e} apart)")
                record(name, "attribution", d, r, limit, measure)
            deletion, insertion = faithfulness_curves(
                model, x, np.asarray(e["map"], dtype=np.float32), c, blank, options["faithfulness_steps"])
            d = max(float(np.abs(np.asarray(e["deletion"]) - deletion).max()),
                    float(np.abs(np.asarray(e["insertion"]) - insertion).max()))
            record(name, "curves", d, d, CURVE_TOLERANCE, d)

    bench = None
    try:
        done = subprocess.run([str(binary), "bench", "--only", "explain", "--json"], cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        if done.returncode == 0:
            bench = json.loads(done.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        bench = None

    print(f"{len(images)} images, cnnviz engine: {engine}; torch {torch.__version__}, "
          f"largest difference over the images (absolute / relative to the reference's largest value)")
    print(f"{'method':22}{'compared':13}{'abs':>11}{'rel':>11}{'limit':>9}  {'ref ms':>9}{'cnnviz ms':>11}")
    for name, rows in worst.items():
        for what, (d, r, measure, limit) in rows.items():
            flag = "" if measure <= limit else "  FAIL"
            t_ref = np.median(theirs_ms[name]) if what != "curves" else float("nan")
            t_ours = np.median(ours_ms[name]) if what != "curves" else float("nan")
            times = f"{t_ref:>9.2f}{t_ours:>11.2f}" if what != "curves" else ""
            print(f"{name:22}{what:13}{d:>11.2e}{r:>11.2e}{limit:>9.0e}  {times}{flag}")
    print("limits: raw maps and attributions relative, heatmaps and curves absolute. cnnviz ms: the "
          f"{engine} engine's time per method in `predict` (with its deletion/insertion curves).")
    for note in notes:
        print(f"note: {note}")
    if bench is not None:
        print("cnnviz bench --only explain:")
        print(json.dumps(bench, indent=1))
    else:
        print("(`cnnviz bench --only explain --json` is not available in this build)")
    if not ok:
        print("\nFAIL: cnnviz disagrees with the reference libraries (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
