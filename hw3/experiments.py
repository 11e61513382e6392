"""One call per experiment: build, train, test, and cache the result as JSON under results/."""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

import torch

from . import bonus, data
from .cache import config_digest, load_result, results_dir, save_result
from .data import DATASETS, load_splits, permutation
from .device import describe, pick_device
from .models import MODELS, build_model, count_parameters, prepare_model
from .train import ALL_OPTIMIZERS, CONTROLS, OPTIMIZERS, evaluate, make_optimizer, train


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
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        if self.optimizer not in ALL_OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(ALL_OPTIMIZERS)}, got {self.optimizer!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")

    @property
    def label(self) -> str:
        return ALL_OPTIMIZERS[self.optimizer][0]

    def key(self) -> str:
        """A file name for the result: readable, plus a hash of the config and of the data files."""
        digest = config_digest(self)[:10]
        return f"{self.model}-{self.dataset}-{self.optimizer}-e{self.epochs}-b{self.batch_size}-s{self.seed}-{digest}"


def _train_config(config: Config, data_dir, device, progress: bool) -> tuple[torch.nn.Module, dict, dict, float]:
    """Build and train one configuration: returns the model, its loaders, the history and the training time."""
    splits = load_splits(config.dataset, data_dir, config.train_subset)
    loaders = data.device_loaders(splits, config.batch_size, device, seed=config.seed)
    model = prepare_model(build_model(config.model, seed=config.seed), device)
    optimizer = make_optimizer(config.optimizer, model.parameters())
    t0 = time.perf_counter()
    history = train(model, loaders, optimizer, config.epochs, progress=progress,
                    desc=f"{config.model} {config.dataset} {config.label}")
    return model, loaders, history, time.perf_counter() - t0


def run_experiment(config: Config, data_dir=None, force: bool = False, results: str | os.PathLike | None = None,
                   device: str | torch.device | None = None, progress: bool = True) -> dict:
    """Train and test one configuration, or load its cached result; returns the result dict."""
    path = results_dir(results) / f"{config.key()}.json"
    if not force and (cached := load_result(path)) is not None:
        return cached
    device = pick_device(str(device) if device else None)
    model, loaders, history, train_time = _train_config(config, data_dir, device, progress)
    test_loss, test_acc = evaluate(model, loaders["test"])
    result = {
        "config": dataclasses.asdict(config), "label": config.label, "history": history,
        "final": {"train_loss": _last(history["train_loss"]), "val_loss": history["val_loss"][-1],
                  "val_acc": history["val_acc"][-1], "test_loss": test_loss, "test_acc": test_acc,
                  "diverged": history["diverged"]},
        "wall_time_s": train_time, "device": describe(device), "n_params": count_parameters(model),
        "torch": torch.__version__,
    }
    save_result(result, path)
    return result


def collapse_report(config: Config | None = None, data_dir=None, device=None, progress: bool = False) -> dict:
    """What a collapsed MLP computes (question 2.2, Adam lr=1): the run is trained again exactly as in
    run_experiment, then looked at on the validation split. A hidden unit is dead when its ReLU outputs
    0 for every validation image; the outputs are constant when they do not depend on the image."""
    config = config or Config(model="mlp", optimizer="adam_lr1")
    if config.model != "mlp":
        raise ValueError(f"collapse_report looks inside the MLP's hidden layers, got model {config.model!r}")
    device = pick_device(str(device) if device else None)
    model, loaders, history, _ = _train_config(config, data_dir, device, progress)
    relus = [m for m in model.net if isinstance(m, torch.nn.ReLU)]
    active = [None] * len(relus)  # per unit: was it ever > 0 on a validation image?

    def watch(i):
        def hook(_module, _inputs, out):
            seen = (out > 0).any(0)
            active[i] = seen if active[i] is None else active[i] | seen
        return hook

    handles = [r.register_forward_hook(watch(i)) for i, r in enumerate(relus)]
    model.eval()
    logits, labels = [], []
    try:
        with torch.inference_mode():
            for x, y in loaders["val"]:
                logits.append(model(x).float().cpu())
                labels.append(y.cpu())
    finally:
        for h in handles:
            h.remove()
    logits, labels = torch.cat(logits), torch.cat(labels)
    probs = logits.softmax(1)
    mean_p = probs.mean(0)
    return {"label": config.label, "epochs": config.epochs,
            "dead_fraction": [float(1 - a.float().mean()) for a in active],
            "hidden_units": [int(a.numel()) for a in active],
            "predicted_classes": torch.bincount(probs.argmax(1), minlength=probs.shape[1]).tolist(),
            "mean_probs": mean_p.tolist(),
            "max_deviation_from_mean_probs": float((probs - mean_p).abs().max()),
            "identical_output_share": float(torch.unique(probs, dim=0, return_counts=True)[1].max() / len(probs)),
            "val_loss": float(torch.nn.functional.cross_entropy(logits, labels)),
            "val_acc": float((probs.argmax(1) == labels).float().mean()),
            "max_step_loss": max(history["step_loss"]) if history["step_loss"] else None}


def _last(values: list):
    return values[-1] if values else None


# ---------------------------------------------------------------------------------------------
# the experiment groups of the notebook and the command line

GROUPS = ("mlp", "cnn", "permuted", "controls", "bonus")


def run_group(name: str, epochs: int = 20, batch_size: int = 64, seed: int = 0, train_subset: int | None = None,
              bonus_epochs: tuple[int, int] | None = None, **run_kwargs) -> list[dict]:
    """The runs behind one question: 'mlp' (2.2), 'cnn' (2.3), 'permuted' (2.5), 'controls' or 'bonus' (2.6).

    'controls' checks two claims of 2.2: the four MLP runs again with the next seed (their spread is
    the run-to-run variation), and Adam with lr=0.001 (is lr=0.01 too large?).
    For 'bonus', `bonus_epochs` = (epochs per ablation row, epochs of the final model) overrides the
    defaults of hw3.bonus; the other groups use `epochs` and `batch_size`."""
    common = dict(epochs=epochs, batch_size=batch_size, seed=seed, train_subset=train_subset)
    if name in ("mlp", "cnn"):  # the same seed, hence the same initialisation and batches, for each optimizer
        return [run_experiment(Config(model=name, optimizer=opt, **common), **run_kwargs) for opt in OPTIMIZERS]
    if name == "permuted":
        return [run_experiment(Config(model=m, optimizer="nesterov", dataset="permuted", **common), **run_kwargs)
                for m in ("mlp", "cnn")]
    if name == "controls":
        reseeded = dict(common, seed=seed + 1)
        return ([run_experiment(Config(model="mlp", optimizer=opt, **reseeded), **run_kwargs) for opt in OPTIMIZERS]
                + [run_experiment(Config(model="mlp", optimizer=opt, **common), **run_kwargs) for opt in CONTROLS])
    if name == "bonus":
        ablation_epochs, final_epochs = bonus_epochs or (bonus.ABLATION_EPOCHS, bonus.FINAL_EPOCHS)
        rows, final = bonus.bonus_ablation(ablation_epochs, final_epochs, seed=seed, train_subset=train_subset, **run_kwargs)
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

    def config(self, model: str, optimizer: str, dataset: str = "plain") -> Config:
        """The Config of one run of these settings."""
        return Config(model=model, optimizer=optimizer, dataset=dataset, epochs=self.epochs, batch_size=self.batch_size,
                      seed=self.seed, train_subset=self.train_subset)

    def run(self, group: str, **kwargs) -> list[dict]:
        """run_group with these settings (kwargs such as force=True pass through)."""
        if group == "bonus" and self.bonus_width:
            kwargs["width"] = self.bonus_width
        return run_group(group, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                         train_subset=self.train_subset, bonus_epochs=self.bonus_epochs, data_dir=self.data_dir, **kwargs)
