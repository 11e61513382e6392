"""KMNIST for Part 2: loading, a seeded train/validation split, the transform and the DataLoaders.

Two ways to batch the same samples:
- `make_loaders` (what every model trains on): each split transformed once into a `TensorDataset` on
  the training device, and a DataLoader whose `BatchSampler` hands over one list of indices per batch:
  one indexing per batch, no per-sample Python.
- `standard_loaders`: torchvision dataset + per-sample PIL transforms + DataLoader, the textbook route;
  the benchmark and the tests compare the two.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch.utils.data import (BatchSampler, DataLoader, RandomSampler, SequentialSampler, Subset, TensorDataset,
                              random_split)
from torchvision import datasets, transforms

from .kmnist import ensure_kmnist, resolve_data_dir


def load_kmnist(data_dir: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """KMNIST's train and test images (N, 28, 28) uint8 and labels (N,), read by torchvision."""
    root = str(ensure_kmnist(data_dir))  # md5-checked files; downloaded by torchvision when missing
    train, test = datasets.KMNIST(root, train=True), datasets.KMNIST(root, train=False)
    return {"train_images": train.data, "train_labels": train.targets,
            "test_images": test.data, "test_labels": test.targets}


def split_indices(n: int, n_val: int = 10_000, seed: int = 411) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random train/validation split of range(n) by torch's `random_split`: the same on every machine."""
    if not 0 < n_val < n:
        raise ValueError(f"n_val must be between 1 and {n - 1} for {n} samples, got {n_val}")
    train, val = random_split(range(n), [n - n_val, n_val], generator=torch.Generator().manual_seed(seed))
    return torch.tensor(train.indices), torch.tensor(val.indices)


class RandomPermutation:
    """A fixed random permutation of an image's pixels, drawn once at construction (seedable)."""

    def __init__(self, num_features: int, seed: int | None = None):
        self.num_features = num_features
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        self.reindex = torch.randperm(num_features, generator=g)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """Permute one image (any shape with num_features elements); the shape is kept."""
        assert self.num_features == img.numel(), f"expected {self.num_features} pixels, got {img.numel()} in shape {tuple(img.shape)}"
        return img.reshape(-1)[self.reindex.to(img.device)].view(img.shape)


@dataclass
class KMNISTSplits:
    """Raw uint8 images and labels of the train / val / test splits, and the transform: ToTensor + Normalize(mean, std)
    with the training split's statistics [+ RandomPermutation, last]."""

    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    mean: float
    std: float
    permutation: RandomPermutation | None = None

    def transform(self) -> transforms.Compose:
        """The torchvision transform of one PIL image, as a per-sample DataLoader applies it."""
        steps = [transforms.ToTensor(), transforms.Normalize((self.mean,), (self.std,))]
        return transforms.Compose(steps + ([self.permutation] if self.permutation else []))

    def tensors(self, split: str, device: torch.device | str = "cpu") -> torch.Tensor:
        """The same transform on a whole split at once: float32 (N, 1, 28, 28) on the device, the same values."""
        # the operations of ToTensor + Normalize in their order, so the same float32 values (checked in appendix A2)
        x = self.images[split].to(device).unsqueeze(1).to(torch.float32).div_(255.0).sub_(self.mean).div_(self.std)
        return x.flatten(1)[:, self.permutation.reindex.to(device)].view(x.shape) if self.permutation else x


def kmnist_splits(permutation: RandomPermutation | None = None, train_subset: int | None = None,
                  data_dir: str | os.PathLike | None = None) -> KMNISTSplits:
    """50,000 train / 10,000 validation (a seeded split of the training file) / 10,000 test images, and their transform."""
    raw = load_kmnist(data_dir)
    train_idx, val_idx = split_indices(len(raw["train_labels"]))
    if train_subset is not None and not 1 <= train_subset <= len(train_idx):
        raise ValueError(f"train_subset must be None (all) or between 1 and {len(train_idx)}, got {train_subset!r}")
    train_idx = train_idx[:train_subset]  # every training image, unless a quick preview asks for fewer
    images = {"train": raw["train_images"][train_idx], "val": raw["train_images"][val_idx], "test": raw["test_images"]}
    labels = {"train": raw["train_labels"][train_idx], "val": raw["train_labels"][val_idx], "test": raw["test_labels"]}
    pixels = images["train"].double() / 255.0  # normalisation statistics of the training split only
    return KMNISTSplits(images, labels, float(pixels.mean()), float(pixels.std()), permutation)


def make_loaders(splits: KMNISTSplits, batch_size: int = 64, device: torch.device | str = "cpu", seed: int = 0,
                 eval_batch_size: int = 500) -> dict[str, DataLoader]:
    """DataLoaders over each split transformed once into a TensorDataset on the device: train (reshuffled every
    epoch, seeded), val, test, and train_eval (the training split in order, to evaluate the fit)."""
    sets = {name: TensorDataset(splits.tensors(name, device), splits.labels[name].to(device))
            for name in ("train", "val", "test")}
    shuffle = torch.Generator().manual_seed(seed)  # on the CPU: the same batches on every device
    samplers = {"train": BatchSampler(RandomSampler(sets["train"], generator=shuffle), batch_size, drop_last=False)}
    for name in ("val", "test", "train_eval"):
        samplers[name] = BatchSampler(SequentialSampler(sets[name.removesuffix("_eval")]), eval_batch_size, False)
    # batch_size=None: each list of indices is one batch, gathered by one indexing (no per-sample collation)
    return {name: DataLoader(sets[name.removesuffix("_eval")], sampler=s, batch_size=None) for name, s in samplers.items()}


PERMUTATION_SEED = 2024  # the one pixel permutation of PermutedKMNIST (question 2.5)


def standard_loaders(data_dir: str | os.PathLike | None = None, batch_size: int = 64,
                     permutation: RandomPermutation | None = None, num_workers: int = 0) -> dict[str, DataLoader]:
    """The textbook route: torchvision datasets, per-sample transforms, DataLoader (train shuffled)."""
    tf = kmnist_splits(permutation, data_dir=data_dir).transform()
    root = str(resolve_data_dir(data_dir))
    train_full = datasets.KMNIST(root, train=True, transform=tf)
    tr, va = split_indices(len(train_full))
    test = datasets.KMNIST(root, train=False, transform=tf)
    sets = {"train": Subset(train_full, tr.tolist()), "val": Subset(train_full, va.tolist()), "test": test}
    return {k: DataLoader(v, batch_size=batch_size, shuffle=(k == "train"), num_workers=num_workers)
            for k, v in sets.items()}
