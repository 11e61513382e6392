"""The rule by which the notebook's text calls one set of runs better than another (`beats`), the tests of its other
claims about training (`at_chance`, `loss_rises`, ...), and the printer of its checks: a claim about training results
is made only where its test holds in the execution at hand.

The notebook defines each of these in question 2.2 (`tests/test_notebook.py` compares them node by node); the
package's copy serves 2.6's `select_recipe` and the tests.
"""
from __future__ import annotations

import statistics


MARGIN = 0.1  # points: the least difference called real, on top of the spread over seeds


def accuracy(runs: list[dict], split: str = "val") -> tuple[float, float]:
    """Mean and standard deviation over seeds (0 for one run) of the runs' final accuracy on a split, in %."""
    values = [100 * r["final"][f"{split}_acc"] for r in runs]
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def acc(runs: list[dict], split: str = "val") -> str:
    """`accuracy` as text: mean ± sd over the seeds, or the one run's value."""
    mean, sd = accuracy(runs, split)
    return f"{mean:.1f} ± {sd:.1f}" if len(runs) > 1 else f"{mean:.1f} (one seed)"


def beats(a: list[dict], b: list[dict], split: str = "val") -> bool:
    """Are runs `a` more accurate than runs `b` beyond the seed spread: mean(a) - mean(b) > sd(a) + sd(b) + MARGIN?"""
    (mean_a, sd_a), (mean_b, sd_b) = accuracy(a, split), accuracy(b, split)
    return mean_a - mean_b > sd_a + sd_b + MARGIN


VERDICTS: dict[str, bool] = {}  # every claim checked in this execution -> whether it holds (a cell run again replaces its own)


def check(claim: str, holds: bool, evidence: str, tag: str = "") -> None:
    """Print whether a claim of the text (numbered `tag` there) holds in this execution, with the numbers behind it."""
    VERDICTS[f"({tag}) {claim}" if tag else claim] = holds
    print(f"{'claim holds' if holds else 'CLAIM DOES NOT HOLD in this run'}: {f'({tag}) ' if tag else ''}{claim} ({evidence})")


def check_beats(name_a: str, a: list[dict], name_b: str, b: list[dict], tag: str = "") -> None:
    """Check and print the claim 'runs `a` beat runs `b`' by `beats` on validation and on test, with the margins."""
    numbers = []
    for split, where in (("val", "validation"), ("test", "test")):
        (mean_a, sd_a), (mean_b, sd_b) = accuracy(a, split), accuracy(b, split)  # the margin of `beats`, printed
        gain, margin = mean_a - mean_b, sd_a + sd_b + MARGIN
        numbers.append(f"{where} {acc(a, split)} vs {acc(b, split)}, gain {gain:.2f} {'>' if gain > margin else '≤'} margin {margin:.2f}")
    check(f"{name_a} beats {name_b} on validation and test", beats(a, b) and beats(a, b, "test"), "; ".join(numbers), tag)


# The tests of the claims of 2.2-2.5 that are not an order of settings: each returns (holds, the numbers behind it).
def at_chance(runs: list[dict]) -> tuple[bool, str]:
    """Does every run end under 12% (chance is 10%) on validation and on test?"""
    return (all(r["final"][f"{split}_acc"] < 0.12 for r in runs for split in ("val", "test")),
            f"validation {acc(runs)}, test {acc(runs, 'test')}")


def drops_on_test(groups: dict[str, list[dict]]) -> tuple[bool, str]:
    """Does every run of every group (name -> runs) score over 2 points lower on test than on validation?"""
    return (all(r["final"]["val_acc"] - r["final"]["test_acc"] > 0.02 for runs in groups.values() for r in runs),
            ", ".join(f"{name} {acc(runs)} vs {acc(runs, 'test')}" for name, runs in groups.items()))


def lowest_loss_epoch(run: dict) -> int:
    """The epoch after which a run's validation loss was lowest (the first such epoch on a tie)."""
    losses = run["history"]["val_loss"]  # [0]: before training, [e]: after epoch e
    return min(range(1, len(losses)), key=losses.__getitem__)


def loss_rise(run: dict) -> float:
    """How far a run's last validation loss lies above its lowest, relative (0.1: 10% higher)."""
    losses = run["history"]["val_loss"]
    return losses[-1] / losses[lowest_loss_epoch(run)] - 1


def loss_rises(runs: list[dict]) -> tuple[bool, str]:
    """In every run, is the validation loss lowest in the first half of training and over 10% higher at the end, while
    the validation accuracy does not fall by more than 0.2 points from that lowest-loss epoch to the end?"""
    holds, numbers = True, []
    for r in runs:
        e, val_acc = lowest_loss_epoch(r), r["history"]["val_acc"]
        rise, change = loss_rise(r), 100 * (val_acc[-1] - val_acc[e])
        holds = holds and 2 * e <= len(r["history"]["val_loss"]) - 1 and rise > 0.1 and change >= -0.2
        numbers.append(f"epoch {e}, loss +{rise:.0%}, accuracy {change:+.2f} points")
    return holds, "; ".join(numbers)
