"""The claims of Part 2 other than an order of settings, as data: each function returns (claim, holds, numbers) for `check`.

The notebook prints them with its own `check` (question 2.2); nothing here decides an order between settings
(that is `beats`, defined in the notebook) or is a copy of a definition of the notebook.
"""
from __future__ import annotations

import statistics

Claim = tuple[str, bool, str]  # the claim as the text states it, whether it holds, the numbers behind the verdict


def acc(runs: list[dict], split: str = "val") -> str:
    """Final accuracy on a split in %: mean ± sd over the seeds, or the one run's value."""
    values = [100 * r["final"][f"{split}_acc"] for r in runs]
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f} (one seed)"


def val_loss_low(run: dict) -> tuple[int, float]:
    """The epoch of a run's lowest validation loss, and how far its last validation loss lies above it (relative)."""
    losses = run["history"]["val_loss"]  # [0]: before training, [e]: after epoch e
    low = min(range(1, len(losses)), key=losses.__getitem__)
    return low, losses[-1] / losses[low] - 1


def loss_rises(name: str, runs: list[dict]) -> Claim:
    """Every run's validation loss is lowest in the first half of training, then over 10% higher at the end, while its
    validation accuracy does not fall by more than 0.2 points from that lowest-loss epoch to the end."""
    lows = [val_loss_low(r) for r in runs]
    change = [100 * (r["history"]["val_acc"][-1] - r["history"]["val_acc"][e]) for r, (e, _) in zip(runs, lows)]
    return (f"{name}: lowest validation loss in the first half, then over 10% higher at the end, while validation "
            f"accuracy does not fall by more than 0.2 points from that epoch to the end{', every seed' if len(runs) > 1 else ''}",
            all(e <= (len(r["history"]["val_loss"]) - 1) / 2 and rise > 0.1 and d >= -0.2
                for r, (e, rise), d in zip(runs, lows, change)),
            "; ".join(f"epoch {e}, loss +{rise:.0%}, accuracy {d:+.2f} points" for (e, rise), d in zip(lows, change)))


def drops_on_test(model: str, groups: list[list[dict]]) -> Claim:
    """Every run of every group (one optimizer's seeds) scores over 2 points lower on test than on validation."""
    return (f"every working {model} run scores over 2 points lower on test than on validation",
            all(r["final"]["val_acc"] - r["final"]["test_acc"] > 0.02 for runs in groups for r in runs),
            ", ".join(f"{runs[0]['label']} {acc(runs)} vs {acc(runs, 'test')}" for runs in groups))


def leads_after_epoch_1(name_a: str, a: list[dict], name_b: str, b: list[dict]) -> Claim:
    """After the first epoch every run of `a` leads every run of `b` on validation by over 5 points."""
    worst_a = min(100 * r["history"]["val_acc"][1] for r in a)  # val_acc[0]: before training, [1]: after epoch 1
    best_b = max(100 * r["history"]["val_acc"][1] for r in b)
    return (f"after epoch 1, every {name_a} seed leads every {name_b} seed by over 5 points on validation",
            worst_a > best_b + 5, f"{worst_a:.1f} vs {best_b:.1f}")


def at_chance(name: str, runs: list[dict]) -> Claim:
    """Every run ends at chance (under 12% for 10 classes) on validation and on test."""
    return (f"{name} ends at chance (under 12%) on validation and test{', every seed' if len(runs) > 1 else ''}",
            all(r["final"][f"{split}_acc"] < 0.12 for r in runs for split in ("val", "test")),
            f"val {acc(runs)}, test {acc(runs, 'test')}")
