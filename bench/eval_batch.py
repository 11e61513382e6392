"""Time one evaluation of the validation split (10,000 images) at several evaluation batch sizes, side by side.

On a CPU with glibc, activations above the allocator's mapping threshold (at most 32 MB by default) are
mapped afresh for every batch, and touching new pages costs more than the CNN's arithmetic: the CNN's first
layer holds batch x 16 x 28 x 28 floats, 25 MB at 500 images, 50 MB at 1000. This is why make_loaders
evaluates in batches of 500.

Usage: python bench/eval_batch.py [--model cnn|mlp] [--data DIR] [--device D] [--repeat N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing hw3
from hw3.data import kmnist_splits, make_loaders  # noqa: E402
from hw3.device import describe, pick_device, prepare_model  # noqa: E402
from hw3.models import CNN, MLP  # noqa: E402
from hw3.train import evaluate  # noqa: E402

SIZES = (125, 250, 500, 1000)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    p.add_argument("--data", default=None, help="KMNIST folder (default: $HW3_DATA_DIR, else data/)")
    p.add_argument("--device", default=None)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    device = pick_device(args.device)
    splits = kmnist_splits(data_dir=args.data)
    loaders = {n: make_loaders(splits, 64, device, eval_batch_size=n)["val"] for n in SIZES}
    torch.manual_seed(0)
    model = prepare_model((CNN if args.model == "cnn" else MLP)(), device)
    print(f"device: {describe(device)}, torch {torch.__version__}, model {args.model}")
    times = {n: [] for n in SIZES}
    for _ in range(args.repeat):
        for n, loader in loaders.items():
            t0 = time.perf_counter()
            evaluate(model, loader)  # ends with a host sync (float(...)), so the time is complete on a GPU too
            times[n].append(time.perf_counter() - t0)
    med = {n: statistics.median(t) for n, t in times.items()}
    for n in SIZES:
        print(f"eval batch {n:5}: median {med[n]:.3f} s per validation pass ({med[n] / med[500]:.2f}x batch 500)")


if __name__ == "__main__":
    main()
