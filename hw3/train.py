"""The homework's training loop (questions 2.2 to 2.5): plain `train` and `evaluate`, every step's loss logged."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .progress import progress_bar

# The four optimizer configurations of questions 2.2 and 2.3: key -> (label, class, hyperparameters).
OPTIMIZERS: dict[str, tuple[str, type, dict]] = {
    "sgd":      ("SGD lr=0.01",          torch.optim.SGD,  dict(lr=0.01)),
    "nesterov": ("SGD-Nesterov lr=0.01", torch.optim.SGD,  dict(lr=0.01, momentum=0.9, nesterov=True)),
    "adam":     ("Adam lr=0.01",         torch.optim.Adam, dict(lr=0.01)),
    "adam_lr1": ("Adam lr=1",            torch.optim.Adam, dict(lr=1.0)),
}


def evaluate(model: nn.Module, loader: Iterable) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` over a loader, in eval mode (one host sync, at the end)."""
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    with torch.inference_mode():
        for x, y in loader:
            logits = model(x)
            loss_sum = loss_sum + F.cross_entropy(logits, y, reduction="sum")
            correct = correct + (logits.argmax(1) == y).sum()
            n += len(y)
    if n == 0:
        raise ValueError("evaluate got an empty loader")
    return float(loss_sum) / n, int(correct) / n


def train(model: nn.Module, loaders: Mapping[str, Iterable], optimizer: torch.optim.Optimizer, epochs: int,
          progress: bool = True, desc: str = "", schedule=None, label_smoothing: float = 0.0) -> dict:
    """Train for `epochs`, validating before and after each; returns every step's loss and per epoch the mean training
    loss, validation loss and accuracy (2.6 adds a `schedule` and `label_smoothing`)."""
    if epochs < 1 or not 0 <= label_smoothing < 1:
        raise ValueError(f"expected epochs >= 1 and 0 <= label_smoothing < 1, got {epochs} and {label_smoothing}")
    val_loss, val_acc = evaluate(model, loaders["val"])
    hist = {"steps_per_epoch": len(loaders["train"]), "step_loss": [], "train_loss": [None], "val_loss": [val_loss],
            "val_acc": [val_acc]}
    bar = progress_bar(epochs * len(loaders["train"]), desc, disable=not progress)
    for _ in range(epochs):
        model.train()
        losses = []  # kept on the device: reading each loss back would stall every step
        for x, y in loaders["train"]:
            loss = F.cross_entropy(model(x), y, label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            losses.append(loss.detach())
            bar.update()
        epoch_losses = torch.stack(losses).float().cpu()
        hist["step_loss"] += epoch_losses.tolist()
        val_loss, val_acc = evaluate(model, loaders["val"])
        hist["train_loss"].append(epoch_losses.mean().item())
        hist["val_loss"].append(val_loss)
        hist["val_acc"].append(val_acc)
        bar.set_postfix(train_loss=f"{hist['train_loss'][-1]:.3f}", val_acc=f"{val_acc:.3f}", refresh=False)
    bar.close()
    return hist
