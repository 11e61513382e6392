"""One call per experiment: build, train, test, and cache the result as JSON (and the weights) under results/."""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from . import bonus, data, models, train as loop
from .cache import code_digest, config_digest, load_result, load_weights, results_dir, save_result, save_weights
from .data import DATASETS, load_splits, permutation
from .device import describe, pick_device
from .models import MODELS, count_parameters, prepare_model
from .train import ALL_OPTIMIZERS, OPTIMIZERS, make_optimizer


@dataclass(frozen=True)
class Implementation:
    """The code a run uses: the package's by default; the notebook passes the definitions of its own cells,
    so that what a grader reads is what trains, and an edited cell gives a new cache key (hw3.cache)."""

    MLP: type = models.MLP
    CNN: type = models.CNN
    train: Callable = loop.train
    evaluate: Callable = loop.evaluate
    make_loaders: Callable = data.make_loaders
    RandomPermutation: type = data.RandomPermutation

    def model_class(self, name: str) -> type:
        """The class of model 'mlp' or 'cnn'."""
        if name not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {name!r}")
        return self.MLP if name == "mlp" else self.CNN

    def digest(self, config: "Config") -> str:
        """code_digest of everything that determines a result of this configuration (see hw3.cache)."""
        return code_digest(self.model_class(config.model), self.train, self.evaluate, self.make_loaders,
                           self.RandomPermutation, ALL_OPTIMIZERS[config.optimizer], make_optimizer,
                           data.Preprocess, data.preprocess_for, data.split_indices, data.kmnist_splits,
                           data.load_splits, data.permutation, data.PERMUTATION_SEED, models.prepare_model,
                           _train_config, run_experiment)


PACKAGE_CODE = Implementation()


@dataclass(frozen=True)
class Config:
    """Everything that determines a run's result besides its code (the device does not: a CPU result is reused on a GPU)."""

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

    def key(self, code: Implementation = PACKAGE_CODE) -> str:
        """A file name for the result: readable, plus a hash of the config, the data files and the code."""
        digest = config_digest(self, code.digest(self))[:10]
        return f"{self.model}-{self.dataset}-{self.optimizer}-e{self.epochs}-b{self.batch_size}-s{self.seed}-{digest}"


def _train_config(config: Config, code: Implementation, data_dir, device, progress: bool) -> tuple[nn.Module, dict, dict, float]:
    """Build and train one configuration: returns the model, its loaders, the history and the training time."""
    perm = code.RandomPermutation(28 * 28, seed=data.PERMUTATION_SEED) if config.dataset == "permuted" else None
    splits = load_splits(config.dataset, data_dir, config.train_subset, perm)
    loaders = code.make_loaders(splits, config.batch_size, device, seed=config.seed)
    torch.manual_seed(config.seed)  # the initial weights
    model = prepare_model(code.model_class(config.model)(), device)
    optimizer = make_optimizer(config.optimizer, model.parameters())
    t0 = time.perf_counter()
    history = code.train(model, loaders, optimizer, config.epochs, progress=progress,
                         desc=f"{config.model} {config.dataset} {config.label}")
    return model, loaders, history, time.perf_counter() - t0


def run_experiment(config: Config, data_dir=None, force: bool = False, results: str | os.PathLike | None = None,
                   device: str | torch.device | None = None, progress: bool = True,
                   code: Implementation = PACKAGE_CODE) -> dict:
    """Train and test one configuration with `code`, or load its cached result; returns the result dict.

    The trained weights are kept beside the result (<key>.pt). After training, the training split is
    evaluated once in eval mode: its loss and accuracy are the model's fit, unlike the running mean of
    mini-batch losses in train mode that the history holds."""
    path = results_dir(results) / f"{config.key(code)}.json"
    if not force and (cached := load_result(path)) is not None:
        return cached
    device = pick_device(str(device) if device else None)
    model, loaders, history, train_time = _train_config(config, code, data_dir, device, progress)
    fit_loss, fit_acc = code.evaluate(model, loaders["train_eval"])
    test_loss, test_acc = code.evaluate(model, loaders["test"])
    result = {
        "config": dataclasses.asdict(config), "label": config.label, "history": history,
        "final": {"train_loss": _last(history["train_loss"]), "train_eval_loss": fit_loss, "train_acc": fit_acc,
                  "val_loss": history["val_loss"][-1], "val_acc": history["val_acc"][-1],
                  "test_loss": test_loss, "test_acc": test_acc, "diverged": history["diverged"]},
        "wall_time_s": train_time, "device": describe(device), "n_params": count_parameters(model),
        "torch": torch.__version__,
    }
    save_weights([model], path)
    save_result(result, path)
    return result


def trained_model(config: Config, data_dir=None, results=None, device=None, code: Implementation = PACKAGE_CODE,
                  progress: bool = False) -> tuple[nn.Module, dict]:
    """The trained model of a configuration, from its saved weights (trained first if they are missing), and its result."""
    device = pick_device(str(device) if device else None)
    path = results_dir(results) / f"{config.key(code)}.json"
    for force in (False, True):  # a result without weights (or with broken ones) is trained again
        result = run_experiment(config, data_dir, force=force, results=results, device=device, progress=progress, code=code)
        models_ = load_weights(path, lambda: code.model_class(config.model)(), device, count=1)
        if models_ is not None:
            return models_[0], result
    raise RuntimeError(f"the weights of {path.name} could not be saved and loaded back")


def collapse_report(config: Config, data_dir=None, results=None, device=None, code: Implementation = PACKAGE_CODE) -> dict:
    """What a collapsed network computes (questions 2.2 and 2.3, Adam lr=1), on the validation split.

    A hidden unit is a neuron of the MLP or a channel of the CNN: it is dead when its ReLU outputs 0 for
    every validation image (and, for a channel, at every position). The outputs are constant when they do
    not depend on the image."""
    device = pick_device(str(device) if device else None)
    model, result = trained_model(config, data_dir, results, device, code)
    perm = code.RandomPermutation(28 * 28, seed=data.PERMUTATION_SEED) if config.dataset == "permuted" else None
    loaders = code.make_loaders(load_splits(config.dataset, data_dir, config.train_subset, perm), config.batch_size, device)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    active = [None] * len(relus)  # per unit: was it ever > 0 on a validation image?

    def watch(i):
        def hook(_module, _inputs, out):
            seen = (out.flatten(2).amax(2) if out.ndim > 2 else out) > 0  # (batch, units)
            active[i] = seen.any(0) if active[i] is None else active[i] | seen.any(0)
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
    history = result["history"]
    return {"label": f"{config.model.upper()} {config.label}", "epochs": config.epochs,
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

GROUPS = ("mlp", "cnn", "permuted", "bonus")


def run_group(name: str, epochs: int = 20, batch_size: int = 64, seed: int = 0, train_subset: int | None = None,
              bonus_overrides: dict | None = None, code: Implementation = PACKAGE_CODE, **run_kwargs) -> list[dict]:
    """The runs behind one question: 'mlp' (2.2), 'cnn' (2.3), 'permuted' (2.5) or 'bonus' (2.6, the final model).

    The same seed, hence the same initial weights and batches, for each optimizer. For 'bonus',
    `bonus_overrides` changes fields of hw3.bonus.FINAL (quick mode only); the other groups use
    `epochs` and `batch_size`."""
    common = dict(epochs=epochs, batch_size=batch_size, seed=seed, train_subset=train_subset)
    if name in ("mlp", "cnn"):
        return [run_experiment(Config(model=name, optimizer=opt, **common), code=code, **run_kwargs) for opt in OPTIMIZERS]
    if name == "permuted":
        return [run_experiment(Config(model=m, optimizer="nesterov", dataset="permuted", **common), code=code, **run_kwargs)
                for m in ("mlp", "cnn")]
    if name == "bonus":
        overrides = dict(bonus_overrides or {}, train_subset=train_subset)
        return [bonus.run_bonus(bonus.FINAL, evaluate_test=True, **overrides, **run_kwargs)]
    raise ValueError(f"experiment group must be one of {GROUPS} or 'all', got {name!r}")


def permutation_equivalence(steps: int = 300, data_dir=None, seed: int = 0, batch_size: int = 64,
                            code: Implementation = PACKAGE_CODE) -> dict:
    """Question 2.5, numerically: an MLP on plain images and a copy whose first-layer columns are
    permuted, trained on permuted images with the same batches, give the same losses (up to rounding).
    Returns the two loss trajectories and their largest difference."""
    perm = permutation()
    torch.manual_seed(seed)
    mlp_a = code.MLP().double()
    mlp_b = code.MLP().double()
    with torch.no_grad():  # W_b x[perm] = W_a x  <=>  W_b = W_a[:, perm]
        mlp_b.net[1].weight.copy_(mlp_a.net[1].weight[:, perm.reindex])
        for a, b in zip(list(mlp_a.parameters())[1:], list(mlp_b.parameters())[1:]):
            b.copy_(a)
    losses = {}
    for name, model, p in (("plain", mlp_a, None), ("permuted", mlp_b, perm)):
        loader = code.make_loaders(data.kmnist_splits(data_dir, p), batch_size, seed=seed)["train"]
        opt = make_optimizer("nesterov", model.parameters())
        out = []
        for _, (x, y) in zip(range(steps), loader):
            loss = torch.nn.functional.cross_entropy(model(x.double()), y)
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
    bonus_overrides: dict | None = None
    code: Implementation = field(default=PACKAGE_CODE)

    @classmethod
    def quick_if_requested(cls, **kwargs) -> "RunSettings":
        """These settings, or tiny ones (1 epoch, 1,000 training images) when HW3_QUICK=1."""
        if os.environ.get("HW3_QUICK") == "1":
            kwargs.update(epochs=1, train_subset=1000, bonus_overrides=dict(epochs=1, width=4))
        return cls(**kwargs)

    def using(self, **definitions) -> "RunSettings":
        """These settings, training with the given definitions (e.g. MLP=MLP, train=train) instead of the package's."""
        return dataclasses.replace(self, code=dataclasses.replace(self.code, **definitions))

    def config(self, model: str, optimizer: str, dataset: str = "plain") -> Config:
        """The Config of one run of these settings."""
        return Config(model=model, optimizer=optimizer, dataset=dataset, epochs=self.epochs, batch_size=self.batch_size,
                      seed=self.seed, train_subset=self.train_subset)

    def run(self, group: str, **kwargs) -> list[dict]:
        """run_group with these settings and code (kwargs such as force=True pass through)."""
        return run_group(group, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                         train_subset=self.train_subset, bonus_overrides=self.bonus_overrides, data_dir=self.data_dir,
                         code=self.code, **kwargs)

    def collapse_report(self, model: str) -> dict:
        """collapse_report of this model's Adam lr=1 run, with these settings and code."""
        return collapse_report(self.config(model, "adam_lr1"), self.data_dir, code=self.code)
