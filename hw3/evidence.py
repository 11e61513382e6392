"""The rule by which the notebook's text calls one set of runs better than another (`beats`), and the printer of
its checks: a claim about training results is made only where `beats` says so in the execution at hand.

The notebook defines each of these in question 2.2 (`tests/test_notebook.py` compares them node by node); the
package's copy serves 2.6's `select_recipe` and the tests.
"""
from __future__ import annotations

import statistics

from .claims import acc


MARGIN = 0.1  # points: the least difference called real, on top of the spread over seeds


def accuracy(runs: list[dict], split: str = "val") -> tuple[float, float]:
    """Mean and standard deviation over seeds (0 for one run) of the runs' final accuracy on a split, in %."""
    values = [100 * r["final"][f"{split}_acc"] for r in runs]
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def beats(a: list[dict], b: list[dict], split: str = "val") -> bool:
    """Are runs `a` more accurate than runs `b` beyond the seed spread: mean(a) - mean(b) > sd(a) + sd(b) + MARGIN?"""
    (mean_a, sd_a), (mean_b, sd_b) = accuracy(a, split), accuracy(b, split)
    return mean_a - mean_b > sd_a + sd_b + MARGIN


VERDICTS: dict[str, bool] = {}  # every claim checked in this execution -> whether it holds (a cell run again replaces its own)


def check(claim: str, holds: bool, evidence: str, tag: str = "") -> None:
    """Print whether a claim of the text (numbered `tag` there) holds in this execution, with the numbers behind it."""
    VERDICTS[f"({tag}) {claim}" if tag else claim] = holds
    print(f"{'claim holds' if holds else 'CLAIM DOES NOT HOLD in this run'}: {f'({tag}) ' if tag else ''}{claim} ({evidence})")


def check_beats(name_a: str, a: list[dict], name_b: str, b: list[dict], splits: tuple[str, ...] = ("val", "test"),
                tag: str = "") -> None:
    """Check and print the claim 'runs `a` beat runs `b`' by `beats` on every split given, with the accuracies and margins."""
    where = {"val": "validation", "train_eval": "the training split"}
    numbers = []
    for split in splits:
        (mean_a, sd_a), (mean_b, sd_b) = accuracy(a, split), accuracy(b, split)  # the margin of `beats`, printed
        gain, margin = mean_a - mean_b, sd_a + sd_b + MARGIN
        numbers.append(f"{where.get(split, split)} {acc(a, split)} vs {acc(b, split)}, "
                       f"gain {gain:.2f} {'>' if gain > margin else '≤'} margin {margin:.2f}")
    check(f"{name_a} beats {name_b} on {' and '.join(where.get(s, s) for s in splits)}",
          all(beats(a, b, split) for split in splits), "; ".join(numbers), tag)
