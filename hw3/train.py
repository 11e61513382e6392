"""Plain train / evaluate loops with per-step loss logging, divergence handling and a progress bar."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

# The four optimizer configurations of questions 2.2 and 2.3: key -> (label, class, hyperparameters).
OPTIMIZERS: dict[str, tuple[str, type, dict]] = {
    "sgd":      ("SGD lr=0.01",          torch.optim.SGD,  dict(lr=0.01)),
    "nesterov": ("SGD-Nesterov lr=0.01", torch.optim.SGD,  dict(lr=0.01, momentum=0.9, nesterov=True)),
    "adam":     ("Adam lr=0.01",         torch.optim.Adam, dict(lr=0.01)),
    "adam_lr1": ("Adam lr=1",            torch.optim.Adam, dict(lr=1.0)),
}
# Control runs outside the homework's four, each testing one explanation given in the answers.
CONTROLS: dict[str, tuple[str, type, dict]] = {
    "adam_lr1e-3": ("Adam lr=0.001", torch.optim.Adam, dict(lr=1e-3)),  # is Adam's lr=0.01 too large?
}
ALL_OPTIMIZERS = {**OPTIMIZERS, **CONTROLS}  # every key a run may name


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """One of the homework's four optimizers ('sgd', 'nesterov', 'adam', 'adam_lr1') or a CONTROLS one, by key."""
    if name not in ALL_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(ALL_OPTIMIZERS)}, got {name!r}")
    _, cls, kwargs = ALL_OPTIMIZERS[name]
    return cls(params, **kwargs)


def evaluate(model: nn.Module, loader: Iterable) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of model over a loader (one host sync, at the end)."""
    model.eval()
    loss_sum, correct, n = None, None, 0
    with torch.inference_mode():
        for x, y in loader:
            logits = model(x)
            batch_loss = F.cross_entropy(logits, y, reduction="sum")
            batch_correct = (logits.argmax(1) == y).sum()
            loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
            correct = batch_correct if correct is None else correct + batch_correct
            n += len(y)
    if n == 0:
        raise ValueError("evaluate got an empty loader")
    return loss_sum.item() / n, correct.item() / n


def train(model: nn.Module, loaders: Mapping[str, Iterable], optimizer: torch.optim.Optimizer, epochs: int,
          progress: bool = True, desc: str = "", log_every: int = 50, augment: Callable | None = None,
          scheduler=None, label_smoothing: float = 0.0, ema: nn.Module | None = None) -> dict:
    """Train for `epochs` on loaders['train'], validating on loaders['val'] before training and after every epoch.

    Returns the history: the loss of every step, and per epoch the mean training loss, validation
    loss and accuracy. A non-finite training loss stops the run and marks it diverged; what was
    recorded until then is kept. Losses stay on the device and are read back every `log_every` steps.
    Optional extras (the bonus uses them): `augment` maps a training batch to an augmented one,
    `scheduler` steps after every optimizer step, `ema` (an AveragedModel) is updated after every
    step and is the model that gets validated.
    """
    evaluated = ema if ema is not None else model
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    train_loader = loaders["train"]
    steps_per_epoch = len(train_loader)
    val_loss, val_acc = evaluate(evaluated, loaders["val"])
    hist = {"steps_per_epoch": steps_per_epoch, "step_loss": [], "epoch": [0], "train_loss": [None],
            "val_loss": [val_loss], "val_acc": [val_acc], "epoch_time_s": [0.0],
            "diverged": False, "diverged_step": None}
    bar = tqdm(total=epochs * steps_per_epoch, desc=desc, disable=not progress, mininterval=1.0, leave=True)
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            model.train()
            pending = []  # loss tensors not yet read back to the host
            for x, y in train_loader:
                if augment is not None:
                    x = augment(x)
                loss = F.cross_entropy(model(x), y, label_smoothing=label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                pending.append(loss.detach())
                if len(pending) == log_every:
                    if not _flush(pending, hist, bar):
                        break
            else:
                _flush(pending, hist, bar)
            if hist["diverged"]:
                break
            val_loss, val_acc = evaluate(evaluated, loaders["val"])
            hist["epoch"].append(epoch)
            hist["train_loss"].append(sum(hist["step_loss"][-steps_per_epoch:]) / steps_per_epoch)
            hist["val_loss"].append(val_loss)
            hist["val_acc"].append(val_acc)
            hist["epoch_time_s"].append(time.perf_counter() - t0)
            bar.set_postfix(loss=f"{hist['train_loss'][-1]:.3f}", val_acc=f"{val_acc:.3f}", refresh=False)
    finally:
        bar.close()
    return hist


def _flush(pending: list, hist: dict, bar) -> bool:
    """Move buffered step losses to the history; False (and mark diverged) on the first non-finite one."""
    if not pending:
        return True
    values = torch.stack(pending).float().cpu().tolist()
    pending.clear()
    for v in values:
        if not math.isfinite(v):
            hist["diverged"], hist["diverged_step"] = True, len(hist["step_loss"])
            bar.set_postfix(loss="diverged", refresh=True)
            return False
        hist["step_loss"].append(v)
    bar.update(len(values))
    bar.set_postfix(loss=f"{values[-1]:.3f}", refresh=False)
    return True
