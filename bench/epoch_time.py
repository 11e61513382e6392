"""Time one training epoch (50,000 images, batch 64) plus validation (10,000 images), two ways, in one run.

  hw3 route:      what the notebook runs: hw3.make_loaders (splits preprocessed once into tensors on the
                  device; DataLoader + BatchSampler, one indexing per batch) + hw3.train (which also
                  validates once before training).
  standard route: torchvision dataset, ToTensor + Normalize per sample, DataLoader(batch 64, shuffle),
                  the same model and optimizer in a plain loop (pytorch/examples style).

Usage: python bench/epoch_time.py --model mlp|cnn [--data DIR] [--device cpu|cuda|mps]
It also times the hw3 route with the training batches sliced from a permuted copy (the route before the
DataLoaders), so that the cost of the DataLoaders is measured side by side. The last line is
`hw3 <model> epoch: <seconds> s`.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing hw3
import torch.nn.functional as F

import hw3  # noqa: E402
from hw3.device import describe, pick_device
from hw3.models import prepare_model
from hw3.models import build_model
from hw3.train import evaluate, make_optimizer, train


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class _Slices:
    """The training batches as they were made before the DataLoaders: one randperm per epoch, then slices."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self):
        perm = torch.randperm(len(self.x), generator=self.generator).to(self.x.device)
        x, y = self.x[perm], self.y[perm]
        for i in range(0, len(x), self.batch_size):
            yield x[i:i + self.batch_size], y[i:i + self.batch_size]


def hw3_route(model_name: str, data_dir, device: torch.device, slices: bool = False) -> float:
    """Seconds for one epoch + validation through the notebook's code path (or, with `slices`, the same
    path with the training batches sliced from a permuted copy, as before the DataLoaders)."""
    splits = hw3.kmnist_splits(data_dir)
    t0 = time.perf_counter()
    loaders = hw3.make_loaders(splits, batch_size=64, device=device)
    if slices:
        loaders["train"] = _Slices(*loaders["train"].dataset.tensors, batch_size=64)
    model = prepare_model(build_model(model_name, seed=0), device)
    train(model, loaders, make_optimizer("nesterov", model.parameters()), epochs=1, progress=False)
    _sync(device)
    return time.perf_counter() - t0


def standard_route(model_name: str, data_dir, device: torch.device) -> float:
    """Seconds for one epoch + validation through torchvision's DataLoader route."""
    loaders = hw3.standard_loaders(data_dir, batch_size=64)
    t0 = time.perf_counter()
    model = build_model(model_name, seed=0).to(device)
    opt = make_optimizer("nesterov", model.parameters())
    model.train()
    for x, y in loaders["train"]:
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    evaluate(model, ((x.to(device), y.to(device)) for x, y in loaders["val"]))
    _sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["mlp", "cnn"], required=True)
    p.add_argument("--data", default=None, help="KMNIST folder (default: $HW3_DATA_DIR, else data/)")
    p.add_argument("--device", default=None)
    args = p.parse_args()
    device = pick_device(args.device)
    hw3.load_kmnist(args.data)  # read and verify the files before timing anything
    print(f"device: {describe(device)}, torch {torch.__version__}")
    std = standard_route(args.model, args.data, device)
    print(f"standard DataLoader route: {std:.2f} s")
    sliced = hw3_route(args.model, args.data, device, slices=True)
    fast = hw3_route(args.model, args.data, device)
    print(f"hw3 route with sliced training batches (before the DataLoaders): {sliced:.2f} s, "
          f"ratio standard / sliced: {std / sliced:.1f}x")
    print(f"ratio standard / hw3: {std / fast:.1f}x")
    print(f"hw3 {args.model} epoch: {fast:.2f} s")


if __name__ == "__main__":
    main()
