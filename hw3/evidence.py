"""The printed checks of Part 2's claims, each stating its test and its numbers.

`MARGIN`, `accuracy`, `beats` and `check` are also defined, identically, in the notebook's question 2.2, which takes
the other functions from here. An order between two settings is claimed only where `beats` says so in the execution
at hand."""
from __future__ import annotations

import statistics


MARGIN = 0.1  # points: the least difference called real, on top of the spread over seeds


def accuracy(runs: list[dict], split: str = "val") -> tuple[float, float]:
    """Mean and standard deviation over seeds (0 for one run) of the runs' final accuracy on a split, in %."""
    values = [100 * r["final"][f"{split}_acc"] for r in runs]
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def beats(a: list[dict], b: list[dict], split: str = "val") -> bool:
    """Are runs `a` more accurate than runs `b` beyond the seed spread: mean(a) - mean(b) > sd(a) + sd(b) + MARGIN?"""
    (mean_a, sd_a), (mean_b, sd_b) = accuracy(a, split), accuracy(b, split)
    return mean_a - mean_b > sd_a + sd_b + MARGIN


def check(claim: str, holds: bool, evidence: str, tag: str = "") -> None:
    """Print whether a claim of the text (numbered `tag` there) holds in this execution, with the numbers behind it."""
    print(f"{'claim holds' if holds else 'CLAIM DOES NOT HOLD in this run'}: {f'({tag}) ' if tag else ''}{claim} ({evidence})")


def acc(runs: list[dict], split: str = "val") -> str:
    """Final accuracy on a split in %: mean ± sd over the seeds, or the one run's value."""
    mean, sd = accuracy(runs, split)
    return f"{mean:.1f} ± {sd:.1f}" if len(runs) > 1 else f"{mean:.1f} (one seed)"


def check_beats(name_a: str, a: list[dict], name_b: str, b: list[dict], split: str = "val", tag: str = "") -> None:
    """Check and print the claim 'runs `a` beat runs `b` on a split' by `beats`, with both accuracies and the margin."""
    where = {"val": "validation", "train_eval": "the training split"}.get(split, split)
    (mean_a, sd_a), (mean_b, sd_b) = accuracy(a, split), accuracy(b, split)  # the margin of `beats`, printed
    check(f"{name_a} beats {name_b} on {where}", beats(a, b, split),
          f"{acc(a, split)} vs {acc(b, split)}; gain {mean_a - mean_b:.2f}, needed over {sd_a + sd_b + MARGIN:.2f}", tag)


def val_loss_low(run: dict) -> tuple[int, float]:
    """The epoch of a run's lowest validation loss, and how far its last validation loss lies above it (relative)."""
    losses = run["history"]["val_loss"]  # [0]: before training, [e]: after epoch e
    low = min(range(1, len(losses)), key=losses.__getitem__)
    return low, losses[-1] / losses[low] - 1


def check_loss_rises(name: str, runs: list[dict], tag: str = "") -> None:
    """Check that every run's validation loss is lowest in the first half of training, then over 10% higher at the end."""
    lows = [val_loss_low(r) for r in runs]
    check(f"{name}: lowest validation loss in the first half, then over 10% higher at the end, every seed",
          all(e <= (len(r["history"]["val_loss"]) - 1) / 2 and rise > 0.1 for r, (e, rise) in zip(runs, lows)),
          "; ".join(f"epoch {e}, +{rise:.0%}" for e, rise in lows), tag)


def check_test_drop(model: str, groups: list[list[dict]], tag: str = "") -> None:
    """Check that every run of every group (one optimizer's seeds) scores over 2 points lower on test than on validation."""
    check(f"every working {model} run scores over 2 points lower on test than on validation",
          all(r["final"]["val_acc"] - r["final"]["test_acc"] > 0.02 for runs in groups for r in runs),
          ", ".join(f"{runs[0]['label']} {acc(runs)} vs {acc(runs, 'test')}" for runs in groups), tag)


def check_first_epoch_lead(name_a: str, a: list[dict], name_b: str, b: list[dict], tag: str = "") -> None:
    """Check that after the first epoch every run of `a` leads every run of `b` on validation by over 5 points."""
    worst_a = min(100 * r["history"]["val_acc"][1] for r in a)  # val_acc[0]: before training, [1]: after epoch 1
    best_b = max(100 * r["history"]["val_acc"][1] for r in b)
    check(f"after epoch 1, every {name_a} seed leads every {name_b} seed by over 5 points on validation",
          worst_a > best_b + 5, f"{worst_a:.1f} vs {best_b:.1f}", tag)


def check_at_chance(name: str, runs: list[dict], tag: str = "") -> None:
    """Check that every run ends at chance (under 12% for 10 classes) on validation and on test."""
    check(f"{name} ends at chance (under 12%) on validation and test, every seed",
          all(r["final"][f"{split}_acc"] < 0.12 for r in runs for split in ("val", "test")),
          f"val {acc(runs)}, test {acc(runs, 'test')}", tag)
