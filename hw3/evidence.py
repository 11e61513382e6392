"""The margin by which the notebook's text calls one set of runs better than another, and the printed checks of
its claims: a claim about training results is made only where `beats` says so in the execution at hand."""
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


def check(claim: str, holds: bool, evidence: str) -> None:
    """Print whether a claim of the text holds in this execution, with the numbers behind it."""
    print(f"{'claim holds' if holds else 'CLAIM DOES NOT HOLD in this run'}: {claim} ({evidence})")
