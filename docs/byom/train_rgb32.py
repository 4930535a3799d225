"""Trains the README's example of a model that is not MNIST-shaped and exports it to ONNX.

A 3×32×32 network with the layers real tutorials use (batch norm, leaky ReLU, dropout,
average pooling, global average pooling), trained for one epoch on MNIST digits resized to
32×32 and copied into R, G and B, then exported with `torch.onnx.export` exactly as the
README tells users to. cnnviz opens the result with `--model docs/byom/digits_rgb32.onnx`.

Run from the repository root (about two minutes on two CPU cores):

    python docs/byom/train_rgb32.py --mnist ../shared/data/mnist --out docs/byom/digits_rgb32.onnx
"""

import argparse
import gzip
import pathlib
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path: pathlib.Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder: pathlib.Path, stem: str) -> pathlib.Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise SystemExit(f"{stem} not found in {folder}")


def as_rgb32(images: np.ndarray) -> torch.Tensor:
    """0..255 grey 28×28 → 0..1 RGB 32×32 (bilinear, as cnnviz's plain resize of the canvas)."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    return x.repeat(1, 3, 1, 1)


# MNIST's statistics: what cnnviz assumes for an ONNX file unless told otherwise.
MEAN = [0.1307, 0.1307, 0.1307]
STD = [0.3081, 0.3081, 0.3081]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(12)
        self.act1 = nn.LeakyReLU(0.1)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(12, 24, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(24)
        self.act2 = nn.LeakyReLU(0.1)
        self.drop = nn.Dropout(0.2)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(24, 32, 3, padding=1)
        self.act3 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.bn1(self.conv1(x))))
        x = self.pool2(self.drop(self.act2(self.bn2(self.conv2(x)))))
        x = self.gap(self.act3(self.conv3(x)))
        return self.fc(torch.flatten(x, 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mnist", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    train_x = read_idx(find(args.mnist, "train-images-idx3-ubyte"))
    train_y = torch.from_numpy(read_idx(find(args.mnist, "train-labels-idx1-ubyte")).astype(np.int64))
    test_x = read_idx(find(args.mnist, "t10k-images-idx3-ubyte"))
    test_y = torch.from_numpy(read_idx(find(args.mnist, "t10k-labels-idx1-ubyte")).astype(np.int64))
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    prepare = lambda images: (as_rgb32(images) - mean) / std

    net = Net()
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(train_x))
        for start in range(0, len(order), 128):
            batch = order[start : start + 128].numpy()
            loss = F.cross_entropy(net(prepare(train_x[batch])), train_y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.eval()
    with torch.no_grad():
        correct = sum(
            (net(prepare(test_x[s : s + 1000])).argmax(1) == test_y[s : s + 1000]).sum().item()
            for s in range(0, len(test_x), 1000)
        )
    print(f"test accuracy {correct / len(test_x):.4f}")
    torch.onnx.export(
        net,
        torch.zeros(1, 3, 32, 32),
        str(args.out),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
        # Without this the exporter folds each batch norm into the conv before it, and
        # cnnviz (like the file) shows no batch-norm layer.
        do_constant_folding=False,
    )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); normalise with mean {MEAN} std {STD}")


if __name__ == "__main__":
    main()
