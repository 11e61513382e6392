"""One call per experiment: build, train, test, and cache the result as JSON under results/."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import data
from .device import describe, pick_device
from .models import build_model, count_parameters
from .train import OPTIMIZERS, evaluate, make_optimizer, train

RESULTS_DIR = data.PROJECT_ROOT / "results"
PERMUTATION_SEED = 2024  # the one pixel permutation of PermutedKMNIST (question 2.5)
DATASETS = ("plain", "permuted")


@dataclass(frozen=True)
class Config:
    """Everything that determines a run's result (the device does not: a CPU result is reused on a GPU)."""

    model: str = "mlp"
    optimizer: str = "nesterov"
    dataset: str = "plain"
    epochs: int = 20
    batch_size: int = 64
    seed: int = 0
    train_subset: int | None = None  # first N training images only (quick mode)

    def __post_init__(self):
        from .models import MODELS
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")

    @property
    def label(self) -> str:
        return OPTIMIZERS[self.optimizer][0]

    def key(self) -> str:
        """A file name for the result: readable, plus a hash of the config and of the data files."""
        digest = config_digest(self)[:10]
        return f"{self.model}-{self.dataset}-{self.optimizer}-e{self.epochs}-b{self.batch_size}-s{self.seed}-{digest}"


def config_digest(config) -> str:
    """sha1 of a config (a dataclass or its dict of fields) together with the md5s of the data files it was trained on."""
    fields = config if isinstance(config, dict) else dataclasses.asdict(config)
    payload = json.dumps([fields, data.RAW_MD5], sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """Where results go: the argument, else $HW3_RESULTS_DIR, else the project's results/."""
    return Path(path or os.environ.get("HW3_RESULTS_DIR") or RESULTS_DIR)


def write_json_atomic(obj: dict, path: Path) -> None:
    """Write JSON to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_result(path: Path) -> dict | None:
    """A cached result, or None when absent or unreadable (then the run is simply redone)."""
    try:
        with open(path) as f:
            result = json.load(f)
        return result if isinstance(result, dict) and "history" in result and "final" in result else None
    except (OSError, ValueError):
        return None


def permutation() -> data.RandomPermutation:
    """The fixed permutation of PermutedKMNIST, shared by its train, validation and test splits."""
    return data.RandomPermutation(28 * 28, seed=PERMUTATION_SEED)


def load_splits(dataset: str, data_dir=None, train_subset: int | None = None) -> data.KMNISTSplits:
    """The KMNIST splits for 'plain' or 'permuted', optionally with only the first N training images."""
    splits = data.kmnist_splits(data_dir, permutation() if dataset == "permuted" else None)
    if train_subset:
        splits.images["train"] = splits.images["train"][:train_subset]
        splits.labels["train"] = splits.labels["train"][:train_subset]
    return splits


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move a model to the device; channels_last on the CPU, where it makes oneDNN's convolutions faster."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cpu" else model


def run_experiment(config: Config, data_dir=None, force: bool = False, results: str | os.PathLike | None = None,
                   device: str | torch.device | None = None, progress: bool = True) -> dict:
    """Train and test one configuration, or load its cached result; returns the result dict."""
    path = results_dir(results) / f"{config.key()}.json"
    if not force and (cached := load_result(path)) is not None:
        return cached
    device = pick_device(str(device) if device else None)
    splits = load_splits(config.dataset, data_dir, config.train_subset)
    loaders = data.device_loaders(splits, config.batch_size, device, seed=config.seed)
    model = prepare_model(build_model(config.model, seed=config.seed), device)
    optimizer = make_optimizer(config.optimizer, model.parameters())
    t0 = time.perf_counter()
    history = train(model, loaders, optimizer, config.epochs, progress=progress,
                    desc=f"{config.model} {config.dataset} {config.label}")
    train_time = time.perf_counter() - t0
    test_loss, test_acc = evaluate(model, loaders["test"])
    result = {
        "config": dataclasses.asdict(config), "label": config.label, "history": history,
        "final": {"train_loss": _last(history["train_loss"]), "val_loss": history["val_loss"][-1],
                  "val_acc": history["val_acc"][-1], "test_loss": test_loss, "test_acc": test_acc,
                  "diverged": history["diverged"]},
        "wall_time_s": train_time, "device": describe(device), "n_params": count_parameters(model),
        "torch": torch.__version__,
    }
    write_json_atomic(_finite_or_none(result), path)
    return result


def _last(values: list):
    return values[-1] if values else None


def _finite_or_none(obj):
    """JSON has no NaN/inf: store them as null."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------
# the experiment groups of the notebook and the command line

GROUPS = ("mlp", "cnn", "permuted", "bonus")


def run_group(name: str, epochs: int = 20, batch_size: int = 64, seed: int = 0, train_subset: int | None = None,
              bonus_epochs: tuple[int, int] | None = None, **run_kwargs) -> list[dict]:
    """The runs behind one question: 'mlp' (2.2), 'cnn' (2.3), 'permuted' (2.5) or 'bonus' (2.6).

    For 'bonus', `bonus_epochs` = (epochs per ablation row, epochs of the final model) overrides the
    defaults of hw3.bonus; the other groups use `epochs` and `batch_size`."""
    common = dict(epochs=epochs, batch_size=batch_size, seed=seed, train_subset=train_subset)
    if name in ("mlp", "cnn"):  # the same seed, hence the same initialisation and batches, for each optimizer
        return [run_experiment(Config(model=name, optimizer=opt, **common), **run_kwargs) for opt in OPTIMIZERS]
    if name == "permuted":
        return [run_experiment(Config(model=m, optimizer="nesterov", dataset="permuted", **common), **run_kwargs)
                for m in ("mlp", "cnn")]
    if name == "bonus":
        from .bonus import ABLATION_EPOCHS, FINAL_EPOCHS, bonus_ablation
        ablation_epochs, final_epochs = bonus_epochs or (ABLATION_EPOCHS, FINAL_EPOCHS)
        rows, final = bonus_ablation(ablation_epochs, final_epochs, seed=seed, train_subset=train_subset, **run_kwargs)
        return rows + [final]
    raise ValueError(f"experiment group must be one of {GROUPS} or 'all', got {name!r}")


def permutation_equivalence(steps: int = 300, data_dir=None, seed: int = 0, batch_size: int = 64) -> dict:
    """Question 2.5, numerically: an MLP on plain images and a copy whose first-layer columns are
    permuted, trained on permuted images with the same batches, give the same losses (up to rounding).
    The same construction is impossible for the CNN: its 3x3 filters see pixel neighbourhoods that the
    permutation has scattered. Returns the two loss trajectories and their largest difference."""
    perm = permutation()
    plain = data.kmnist_splits(data_dir)
    permuted = data.kmnist_splits(data_dir, perm)
    mlp_a = build_model("mlp", seed=seed).double()
    mlp_b = build_model("mlp", seed=seed).double()
    with torch.no_grad():  # W_b x[perm] = W_a x  <=>  W_b = W_a[:, perm]
        mlp_b.net[1].weight.copy_(mlp_a.net[1].weight[:, perm.reindex])
    losses = {}
    for name, model, splits in (("plain", mlp_a, plain), ("permuted", mlp_b, permuted)):
        loader = data.DeviceLoader(splits.preprocess.batch(splits.images["train"]).double(),
                                   splits.labels["train"], batch_size, shuffle=True, seed=seed)
        opt = make_optimizer("nesterov", model.parameters())
        out = []
        for _, (x, y) in zip(range(steps), loader):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        losses[name] = out
    diff = max(abs(a - b) for a, b in zip(losses["plain"], losses["permuted"]))
    return {"steps": steps, "loss_plain": losses["plain"], "loss_permuted": losses["permuted"], "max_abs_diff": diff}


@dataclass(frozen=True)
class RunSettings:
    """The notebook's settings. `quick_if_requested` shrinks them when HW3_QUICK=1 (the test suite only)."""

    epochs: int = 20
    batch_size: int = 64
    seed: int = 0
    data_dir: str | None = None
    train_subset: int | None = None
    bonus_epochs: tuple[int, int] | None = None
    bonus_width: int | None = None

    @classmethod
    def quick_if_requested(cls, **kwargs) -> "RunSettings":
        if os.environ.get("HW3_QUICK") == "1":
            kwargs.update(epochs=1, train_subset=1000, bonus_epochs=(1, 1), bonus_width=4)
        return cls(**kwargs)

    def run(self, group: str, **kwargs) -> list[dict]:
        """run_group with these settings (kwargs such as force=True pass through)."""
        if group == "bonus" and self.bonus_width:
            kwargs["width"] = self.bonus_width
        return run_group(group, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                         train_subset=self.train_subset, bonus_epochs=self.bonus_epochs, data_dir=self.data_dir, **kwargs)
