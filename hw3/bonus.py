"""Question 2.6: a stronger KMNIST classifier, its whole recipe in one place, and its ablation.

`FINAL` is the design chosen on validation only: the notebook trains it and evaluates the test split
for it once. `ablation_configs()` starts from the homework CNN of 2.3 and adds one change per row, each row
judged on validation only.
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

from .data import kmnist_splits, make_loaders
from .device import describe, prepare_model
from .models import count_parameters
from .progress import progress_bar
from .train import evaluate


@dataclass(frozen=True)
class BonusConfig:
    """Every hyperparameter of the bonus model, in one visible place (defaults: the final design)."""

    width: int = 16               # channels of the three stages: width, 2 width, 4 width (16: the homework CNN's)
    convs_per_stage: int = 2      # 1: the homework CNN's stages; 2: a second 3x3 convolution after the pooling
    head: str = "maxpool"         # 'flatten' (the homework CNN's) or 'maxpool' (global max-pool, then Linear)
    batchnorm: bool = True
    augment: bool = True          # random affine warp (shift, rotation, scale) of every training image
    label_smoothing: float = 0.1
    ema: bool = True              # validate and test an exponential moving average of the weights
    epochs: int = 20
    batch_size: int = 128
    schedule: str = "onecycle"    # 'onecycle' (warm-up to lr, then annealing to ~0) or 'constant'
    lr: float = 0.2               # SGD with Nesterov momentum 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    train_subset: int | None = None

    def __post_init__(self):
        for name in ("width", "convs_per_stage", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BonusConfig.{name} must be a positive integer, got {value!r}")
        if self.head not in ("flatten", "maxpool") or self.schedule not in ("onecycle", "constant"):
            raise ValueError(f"BonusConfig needs head 'flatten' or 'maxpool' and schedule 'onecycle' or 'constant', "
                             f"got head={self.head!r}, schedule={self.schedule!r}")
        if not (0.0 <= self.label_smoothing < 1.0 and self.lr > 0 and self.weight_decay >= 0):
            raise ValueError(f"BonusConfig needs 0 <= label_smoothing < 1, lr > 0, weight_decay >= 0, got "
                             f"{self.label_smoothing!r}, {self.lr!r}, {self.weight_decay!r}")


class BonusNet(nn.Module):
    """Three stages [conv3x3 (-> BN) -> ReLU -> max-pool 2x2, then (convs_per_stage - 1) x (conv3x3 (-> BN) -> ReLU)],
    then a flatten or global max-pool head and one Linear. Width 16, one conv per stage, no BN and the flatten
    head: the CNN of question 2.3, layer for layer."""

    def __init__(self, width: int = 16, convs_per_stage: int = 2, head: str = "maxpool", batchnorm: bool = True):
        super().__init__()
        def block(c_in, c_out):
            conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batchnorm)  # BN has its own shift
            return [conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)] if batchnorm else [conv, nn.ReLU(inplace=True)]
        layers, c_in = [], 1
        for c_out in (width, 2 * width, 4 * width):
            layers += block(c_in, c_out) + [nn.MaxPool2d(2)]
            for _ in range(convs_per_stage - 1):
                layers += block(c_out, c_out)
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool_head = head == "maxpool"
        self.classifier = nn.Linear(c_in if self.pool_head else c_in * 3 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.classifier(h.amax(dim=(2, 3)) if self.pool_head else h.flatten(1))


class RandomAffine:
    """Random affine warps of a batch on its device: shift up to 2 px, rotation up to 10 degrees, scale 0.9 to 1.1."""

    def __init__(self, background: float, seed: int, max_shift: float = 2.0, max_deg: float = 10.0, max_scale: float = 0.1):
        self.background, self.max_shift, self.max_deg, self.max_scale = background, max_shift, max_deg, max_scale
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.rand(len(x), 4, generator=self.generator).mul_(2).sub_(1).to(x.device)  # uniform in [-1, 1]
        angle = u[:, 0] * math.radians(self.max_deg)
        scale = 1 + u[:, 1] * self.max_scale
        shift = u[:, 2:] * (2 * self.max_shift / x.shape[-1])  # pixels -> grid units ([-1, 1] spans the image)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # warp the offset from the background, so that pixels coming from outside the image are background
        return F.grid_sample(x - self.background, grid, align_corners=False) + self.background


def ema_update(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
    """EMA step with decay (1 + n) / (10 + n) capped at 0.999: early on the average forgets the random start fast."""
    decay = torch.clamp((1 + num_averaged) / (10 + num_averaged), max=0.999).to(averaged.dtype)
    return averaged + (current - averaged) * (1 - decay)


class ShiftTTA(nn.Module):
    """Test-time augmentation: the mean of a model's logits over the image and its four one-pixel shifts."""

    def __init__(self, model: nn.Module, background: float):
        super().__init__()
        self.model, self.background = model, background

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x - self.background, (1, 1, 1, 1)) + self.background
        h, w = x.shape[-2:]
        views = [x] + [padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]
        return torch.stack([self.model(v) for v in views]).mean(0)


def train_bonus(cfg: BonusConfig, loaders: dict, background: float, device: torch.device | str,
                progress: bool = True) -> tuple[nn.Module, dict]:
    """The homework loop plus augmentation, a learning-rate schedule, label smoothing and an EMA of the weights;
    validates after every epoch and returns the model to evaluate (the EMA when used) and the history."""
    torch.manual_seed(cfg.seed)
    model = prepare_model(BonusNet(cfg.width, cfg.convs_per_stage, cfg.head, cfg.batchnorm), device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(loaders["train"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.25) \
        if cfg.schedule == "onecycle" else None
    ema = AveragedModel(model, avg_fn=ema_update, use_buffers=True) if cfg.ema else None
    augment = RandomAffine(background, cfg.seed) if cfg.augment else None
    evaluated = ema if ema is not None else model
    hist = {"epoch": [], "train_loss": [], "val_loss": [], "val_acc": [], "epoch_time_s": [], "diverged": False}
    bar = progress_bar(steps, f"bonus, {cfg.epochs} epochs, seed {cfg.seed}", disable=not progress)
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        for x, y in loaders["train"]:
            loss = F.cross_entropy(model(augment(x) if augment else x), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            if ema is not None:
                ema.update_parameters(model)
            loss_sum += loss.detach()
            bar.update()
        train_loss = float(loss_sum) / len(loaders["train"])
        if not math.isfinite(train_loss):
            hist["diverged"] = True
            break
        val_loss, val_acc = evaluate(evaluated, loaders["val"])
        for key, value in zip(hist, (epoch, train_loss, val_loss, val_acc, time.perf_counter() - t0)):
            hist[key].append(value)
        bar.set_postfix(train_loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.4f}", refresh=False)
    bar.close()
    return (ema.module if ema is not None else model), hist


def run_bonus(config: BonusConfig, test: bool = False, device: torch.device | str = "cpu",
              progress: bool = True) -> tuple[dict, list[nn.Module]]:
    """Train one bonus configuration and evaluate it on validation; with `test` (the final model), also with
    test-time augmentation (TTA) on validation, then the test split, with TTA only if it helped on validation."""
    splits = kmnist_splits(train_subset=config.train_subset)
    loaders = make_loaders(splits, config.batch_size, device, seed=config.seed)
    background = (0.0 - splits.preprocess.mean) / splits.preprocess.std  # a blank pixel after normalisation
    t0 = time.perf_counter()
    model, history = train_bonus(config, loaders, background, device, progress)
    train_time = time.perf_counter() - t0
    final = {"train_eval_acc": evaluate(model, loaders["train_eval"])[1], "val_acc": evaluate(model, loaders["val"])[1]}
    if test:
        tta = ShiftTTA(model, background)
        final["val_acc_tta"] = evaluate(tta, loaders["val"])[1]
        final["use_tta"] = final["val_acc_tta"] > final["val_acc"]  # decided on validation, before any test
        final["test_loss"], final["test_acc"] = evaluate(tta if final["use_tta"] else model, loaders["test"])
    return {"config": dataclasses.asdict(config), "history": history, "final": final, "wall_time_s": train_time,
            "n_params": count_parameters(model), "device": describe(torch.device(device))}, [model]


FINAL = BonusConfig()  # chosen on validation only; the test split is evaluated for this design alone


def ablation_configs(epochs: int = 3, width: int = 16) -> list[tuple[str, BonusConfig]]:
    """From the homework CNN of 2.3 (SGD-Nesterov lr=0.01, batch 64) to the final design, one change per row."""
    cfg = BonusConfig(width=width, convs_per_stage=1, head="flatten", batchnorm=False, augment=False,
                      label_smoothing=0.0, ema=False, epochs=epochs, batch_size=64, schedule="constant", lr=0.01,
                      weight_decay=0.0)
    rows = []
    for name, change in [("homework CNN (2.3)", {}), ("+ BatchNorm", dict(batchnorm=True)),
                         ("+ second conv per stage", dict(convs_per_stage=2)),
                         ("+ global max-pool head", dict(head="maxpool")),
                         ("+ batch 128", dict(batch_size=128)), ("+ weight decay 5e-4", dict(weight_decay=5e-4)),
                         ("+ OneCycle schedule, peak lr 0.2", dict(schedule="onecycle", lr=0.2)),
                         ("+ random affine augmentation", dict(augment=True)),
                         ("+ label smoothing 0.1", dict(label_smoothing=0.1)),
                         ("+ EMA of the weights", dict(ema=True))]:
        cfg = dataclasses.replace(cfg, **change)
        rows.append((name, cfg))
    return rows
