"""Question 2.6: a stronger KMNIST classifier, built up one idea at a time (the ablation) and cached.

Every idea is a switch of `BonusConfig`, so each row of the ablation is the previous row plus one
change, trained with the same budget and evaluated on the validation split only. The test split is
evaluated for the final configuration and reported once.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from . import data
from .device import describe, pick_device
from .experiments import (_finite_or_none, config_digest, load_result, load_splits, prepare_model, results_dir,
                          write_json_atomic)
from .models import count_parameters
from .train import evaluate, train


ABLATION_EPOCHS = 4   # each ablation row: a short, equal budget
FINAL_EPOCHS = 20     # the final model (about 13 minutes on a 2-core CPU, a minute on a GPU)


@dataclass(frozen=True)
class BonusConfig:
    """All the hyperparameters of the bonus model, in one visible place."""

    width: int = 24               # channels of the three stages: width, 2 width, 4 width
    batchnorm: bool = True
    augment: bool = True          # random affine (shift, rotation, scale) per sample, on the device
    label_smoothing: float = 0.1
    ema: bool = True              # validate and test an exponential moving average of the weights
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.2               # peak of the OneCycle schedule, SGD with Nesterov momentum
    weight_decay: float = 5e-4
    seed: int = 0
    train_subset: int | None = None

    def key(self) -> str:
        """The result's file name: a hash of the config and of the data files."""
        return "bonus-" + config_digest(self)[:12]


# The ablation: each row adds one idea to the previous one (the homework CNN of 2.3 is the baseline).
# Test-time augmentation needs no training: every row is validated with and without it.
ABLATION: list[tuple[str, dict]] = [
    ("BN-CNN, OneCycle SGD", dict(augment=False, label_smoothing=0.0, ema=False)),
    ("+ augmentation", dict(label_smoothing=0.0, ema=False)),
    ("+ label smoothing", dict(ema=False)),
    ("+ EMA of weights", dict()),
]


class BonusNet(nn.Module):
    """Three stages of (conv3x3 -> maxpool -> BN -> ReLU -> conv3x3 -> BN -> ReLU), global max-pool, linear."""

    def __init__(self, width: int = 32, batchnorm: bool = True, n_classes: int = 10):
        super().__init__()
        norm = nn.BatchNorm2d if batchnorm else (lambda c: nn.Identity())
        layers, c_in = [], 1
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batchnorm), nn.MaxPool2d(2), norm(c_out), nn.ReLU(),
                       nn.Conv2d(c_out, c_out, 3, padding=1, bias=not batchnorm), norm(c_out), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).amax(dim=(2, 3)))


class RandomAffine:
    """Batched random affine warps on the device: shift up to 2 px, rotation up to 10 deg, scale 0.9-1.1."""

    def __init__(self, background: float, seed: int, max_shift: float = 2.0, max_deg: float = 10.0, max_scale: float = 0.1):
        self.background, self.max_shift, self.max_deg, self.max_scale = background, max_shift, max_deg, max_scale
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        u = torch.rand(n, 4, generator=self.generator).mul_(2).sub_(1).to(x.device)  # uniform in [-1, 1]
        angle = u[:, 0] * math.radians(self.max_deg)
        scale = 1 + u[:, 1] * self.max_scale
        shift = u[:, 2:] * (2 * self.max_shift / x.shape[-1])  # pixels -> grid units ([-1, 1] spans the image)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # warp the offset from the background so that pixels coming from outside are background
        return F.grid_sample(x - self.background, grid, align_corners=False) + self.background


class ShiftTTA(nn.Module):
    """Average a model's logits over the image and its four one-pixel shifts (background filled in)."""

    def __init__(self, model: nn.Module, background: float):
        super().__init__()
        self.model, self.background = model, background

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x - self.background, (1, 1, 1, 1)) + self.background
        h, w = x.shape[-2:]
        views = [x] + [padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]
        return torch.stack([self.model(v) for v in views]).mean(0)


EMA_DECAY = 0.999


def ema_update(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
    """EMA with a warm-up: decay (1 + n) / (10 + n), capped at EMA_DECAY, so that the average does
    not stay anchored to the random initialisation when a run is short."""
    decay = torch.clamp((1 + num_averaged) / (10 + num_averaged), max=EMA_DECAY).to(averaged.dtype)
    return averaged + (current - averaged) * (1 - decay)


def _train_one(cfg: BonusConfig, loaders: dict, background: float, device: torch.device,
               progress: bool, desc: str) -> tuple[nn.Module, dict]:
    torch.manual_seed(cfg.seed)
    model = prepare_model(BonusNet(cfg.width, cfg.batchnorm), device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, epochs=cfg.epochs,
                                                steps_per_epoch=len(loaders["train"]), pct_start=0.25)
    ema = AveragedModel(model, avg_fn=ema_update, use_buffers=True) if cfg.ema else None
    augment = RandomAffine(background, cfg.seed) if cfg.augment else None
    hist = train(model, loaders, opt, cfg.epochs, progress=progress, desc=desc, augment=augment,
                 scheduler=sched, label_smoothing=cfg.label_smoothing, ema=ema)
    return (ema.module if ema is not None else model), hist


def run_bonus(cfg: BonusConfig | None = None, data_dir=None, force: bool = False, results=None, device=None,
              progress: bool = True, evaluate_test: bool = False, **overrides) -> dict:
    """Train (or load) one bonus configuration. Validation accuracy is measured with and without
    test-time augmentation; the test split is evaluated only when `evaluate_test` (the final model),
    with TTA only if it helped on validation."""
    cfg = dataclasses.replace(cfg or BonusConfig(), **overrides)
    path = results_dir(results) / f"{cfg.key()}.json"
    cached = None if force else load_result(path)
    if cached is not None and (not evaluate_test or cached["final"]["test_acc"] is not None):
        return cached
    device = pick_device(str(device) if device else None)
    splits = load_splits("plain", data_dir, cfg.train_subset)
    loaders = data.device_loaders(splits, cfg.batch_size, device, seed=cfg.seed)
    background = (0.0 - splits.preprocess.mean) / splits.preprocess.std  # a blank pixel after normalisation
    t0 = time.perf_counter()
    model, hist = _train_one(cfg, loaders, background, device, progress, f"bonus ({cfg.epochs} epochs)")
    train_time = time.perf_counter() - t0
    val_loss, val_acc = evaluate(model, loaders["val"])
    tta_model = ShiftTTA(model, background)
    tta_val_loss, tta_val_acc = evaluate(tta_model, loaders["val"])
    use_tta = tta_val_acc > val_acc  # decided on validation, never on test
    test_loss = test_acc = test_pred = None
    if evaluate_test:
        chosen = tta_model if use_tta else model
        test_loss, test_acc = evaluate(chosen, loaders["test"])
        test_pred = predict_labels(chosen, loaders["test"]).tolist()
    result = {"config": {"model": "bonus", "dataset": "plain", **dataclasses.asdict(cfg)},
              "label": f"bonus width {cfg.width}, {cfg.epochs} epochs", "history": hist,
              "final": {"train_loss": hist["train_loss"][-1], "val_loss": val_loss, "val_acc": val_acc,
                        "val_acc_tta": tta_val_acc, "use_tta": use_tta,
                        "test_loss": test_loss, "test_acc": test_acc, "diverged": hist["diverged"]},
              "test_pred": test_pred,
              "wall_time_s": train_time, "device": describe(device),
              "n_params": count_parameters(BonusNet(cfg.width, cfg.batchnorm)), "torch": torch.__version__}
    write_json_atomic(_finite_or_none(result), path)
    return result


def predict_labels(model: nn.Module, loader) -> torch.Tensor:
    """The predicted class of every sample of a loader, on the CPU."""
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(x).argmax(1).cpu() for x, _ in loader])


def bonus_ablation(epochs: int = ABLATION_EPOCHS, final_epochs: int = FINAL_EPOCHS, **kwargs) -> tuple[list[dict], dict]:
    """The ablation rows (short budget, validation only), then the final model (full budget, tested once)."""
    rows = [run_bonus(epochs=epochs, **overrides, **kwargs) for _, overrides in ABLATION]
    for (name, _), r in zip(ABLATION, rows):
        r["label"] = name
    final = run_bonus(epochs=final_epochs, evaluate_test=True, **kwargs)
    return rows, final
