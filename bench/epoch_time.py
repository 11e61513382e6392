"""Time one training epoch (50,000 images, batch 64, SGD-Nesterov) several ways, side by side in one run.

  hw3 loaders:      what the notebook runs: hw3.make_loaders (splits as tensors on the device, a DataLoader
                    whose sampler yields one index tensor per batch) and the model as the notebook prepares it.
  premade batches:  the same model and steps over a list of batches made before the clock starts: the floor
                    that any loader can only approach (the issue's target: hw3 loaders within 1.10x of it).
  contiguous (cnn): the hw3 loaders with the model left in the default memory format instead of channels_last
                    (what prepare_model chooses on the CPU).
  standard route:   torchvision dataset, ToTensor + Normalize per sample, DataLoader(batch 64, shuffle).

Usage: python bench/epoch_time.py --model mlp|cnn [--data DIR] [--device cpu|cuda|mps] [--repeat N]
Each route is timed --repeat times, interleaved, and the median is reported with the ratios.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing hw3
import hw3  # noqa: E402
from hw3.data import kmnist_splits, make_loaders, standard_loaders  # noqa: E402
from hw3.device import describe, pick_device, prepare_model  # noqa: E402
from hw3.models import CNN, MLP  # noqa: E402
from hw3.train import OPTIMIZERS  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def epoch(model: torch.nn.Module, batches, device: torch.device) -> float:
    """Seconds for one pass of SGD-Nesterov steps over `batches`."""
    opt = torch.optim.SGD(model.parameters(), **OPTIMIZERS["nesterov"][2])
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["mlp", "cnn"], required=True)
    p.add_argument("--data", default=None, help="KMNIST folder (default: $HW3_DATA_DIR, else data/)")
    p.add_argument("--device", default=None)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    device = pick_device(args.device)
    model_class = MLP if args.model == "mlp" else CNN
    loaders = make_loaders(kmnist_splits(data_dir=args.data), 64, device)
    x, y = loaders["train"].dataset.tensors
    print(f"device: {describe(device)}, torch {torch.__version__}, model {args.model}")

    def fresh(channels_last: bool = True) -> torch.nn.Module:
        torch.manual_seed(0)
        return prepare_model(model_class(), device) if channels_last else model_class().to(device)

    routes = {"hw3 loaders": lambda: epoch(fresh(), loaders["train"], device),
              "premade batches": lambda: epoch(fresh(), [(x[i], y[i]) for i in torch.randperm(len(x)).split(64)], device)}
    if args.model == "cnn" and device.type == "cpu":
        routes["contiguous model"] = lambda: epoch(fresh(channels_last=False), loaders["train"], device)
    std = standard_loaders(args.data, batch_size=64)["train"]
    routes["standard route"] = lambda: epoch(fresh(), std, device)
    times = {name: [] for name in routes}
    for _ in range(args.repeat):
        for name, run in routes.items():
            times[name].append(run())
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name:17} median {med[name]:.3f} s  ({', '.join(f'{v:.3f}' for v in t)})")
    print(f"hw3 loaders / premade batches: {med['hw3 loaders'] / med['premade batches']:.3f}x")
    if "contiguous model" in med:
        print(f"contiguous / channels_last: {med['contiguous model'] / med['hw3 loaders']:.2f}x")
    print(f"standard route / hw3 loaders: {med['standard route'] / med['hw3 loaders']:.1f}x")


if __name__ == "__main__":
    main()
