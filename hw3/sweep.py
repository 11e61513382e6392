"""Question 2.6's side studies, on validation: the candidates for the final model and the seed spread of the ablation.

`python -m hw3 sweep` trains what the cache lacks (about half an hour on a 2-core CPU), then prints both
tables; `--record` also writes their summary to hw3/recorded/sweep.json, which ships with the package.
The notebook shows the summary from this machine's cache when every run is there, else the recorded
one, labelled as such. The test split is evaluated for one candidate only: the width-24 network, whose
test accuracy was measured and disclosed before the ensemble was chosen; its errors let the notebook
compare the two tested designs with a paired test. No choice depends on it.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from . import bonus, stats
from .cache import load_result, results_dir, write_json_atomic
from .device import cpu_name

RECORDED = Path(__file__).resolve().parent / "recorded" / "sweep.json"
SEEDS = (0, 1, 2)  # every ablation row is trained with each of these seeds (seed 0 is the notebook's own row)
DISCLOSED = "one width-24 network, 20 epochs"  # the design tested first (its test accuracy is disclosed in 2.6)
COMMAND = "python -m hw3 sweep"


def _runs() -> dict:
    """Every run of the sweep: {(kind, name, seed): BonusConfig overrides}."""
    runs = {("candidate", name, 0): dict(overrides) for name, overrides in bonus.FINAL_CANDIDATES.items()}
    for seed in SEEDS:
        for name, overrides in bonus.ABLATION:
            runs[("ablation", name, seed)] = dict(overrides, epochs=bonus.ABLATION_EPOCHS, seed=seed)
    return runs


def run_sweep(data_dir=None, results=None, force: bool = False, device=None, progress: bool = True) -> dict:
    """Train (or load) every run of the sweep, then return its summary."""
    for (kind, name, _), overrides in _runs().items():
        bonus.run_bonus(data_dir=data_dir, results=results, force=force, device=device, progress=progress,
                        evaluate_test=(kind == "candidate" and name == DISCLOSED), **overrides)
    return summary(results)


def summary(results=None) -> dict | None:
    """The sweep's numbers from the cache, or None when any of its runs is missing there."""
    rows = []
    for (kind, name, seed), overrides in _runs().items():
        r = load_result(results_dir(results) / f"{bonus.BonusConfig(**overrides).key()}.json")
        if r is None:
            return None
        f = r["final"]
        row = {"kind": kind, "name": name, "seed": seed, "val_acc": f["val_acc"], "val_acc_tta": f["val_acc_tta"],
               "val_loss": f["val_loss"], "wall_time_s": r["wall_time_s"], "device": r["device"],
               "members": r["members"]}
        if kind == "candidate" and name == DISCLOSED and r.get("test_pred") is not None:
            row["test_acc"] = f["test_acc"]
            row["test_pred"] = "".join(map(str, r["test_pred"]))  # one digit per test image: compact when recorded
        rows.append(row)
    return {"command": COMMAND, "rows": rows}


def record(summary_: dict, path: Path = RECORDED) -> Path:
    """Write a summary as the recorded one (the machine is named in it); returns the path."""
    write_json_atomic(dict(summary_, machine=_machine(summary_), recorded_by=f"{COMMAND} --record"), path, indent=1)
    return path


def _machine(summary_: dict) -> str:
    devices = sorted({r["device"] for r in summary_["rows"]})
    return f"{', '.join(devices)}; processor: {cpu_name()}"


def load(results=None, recorded: Path = RECORDED) -> tuple[dict | None, str]:
    """The summary to show and where it comes from: this machine's cache if complete, else the recorded file."""
    current = summary(results)
    if current is not None:
        return current, "trained on this machine (cache)"
    try:
        rec = json.loads(Path(recorded).read_text())
    except (OSError, ValueError):
        return None, f"not run here and no recorded summary: run `{COMMAND}`"
    return rec, f"RECORDED on {rec.get('machine', 'another machine')} (not trained by this notebook; `{COMMAND}` reproduces it)"


def _rows(summary_: dict, kind: str) -> list[dict]:
    return [r for r in summary_["rows"] if r["kind"] == kind]


def candidate_table(summary_: dict) -> str:
    """The final-model candidates on validation: accuracy without and with TTA, NLL, training time."""
    lines = [f"{'candidate (validation only)':42} {'val acc':>8} {'val+TTA':>8} {'val NLL':>8} {'time':>6}"]
    for r in _rows(summary_, "candidate"):
        lines.append(f"{r['name']:42} {100 * r['val_acc']:8.2f} {100 * r['val_acc_tta']:8.2f} {r['val_loss']:8.4f} "
                     f"{r['wall_time_s']:5.0f}s")
    return "\n".join(lines)


def seed_spread(summary_: dict) -> dict[str, dict]:
    """Per ablation row: validation accuracy (and with TTA) for every seed, their mean and standard deviation."""
    out = {}
    for name, _ in bonus.ABLATION:
        rows = sorted((r for r in _rows(summary_, "ablation") if r["name"] == name), key=lambda r: r["seed"])
        acc, tta = [r["val_acc"] for r in rows], [r["val_acc_tta"] for r in rows]
        out[name] = {"seeds": [r["seed"] for r in rows], "val_acc": acc, "val_acc_tta": tta,
                     "mean": statistics.mean(acc), "sd": statistics.stdev(acc) if len(acc) > 1 else float("nan"),
                     "mean_tta": statistics.mean(tta), "sd_tta": statistics.stdev(tta) if len(tta) > 1 else float("nan")}
    return out


def seed_table(summary_: dict) -> str:
    """The ablation rows over several seeds: each seed's validation accuracy, then mean and standard deviation."""
    spread = seed_spread(summary_)
    seeds = next(iter(spread.values()))["seeds"]
    head = f"{'ablation row (4 epochs)':24} " + " ".join(f"{'seed ' + str(s):>7}" for s in seeds) + \
        f" {'mean':>6} {'sd':>5} | {'TTA mean':>8} {'sd':>5}"
    lines = [head, "-" * len(head)]
    for name, s in spread.items():
        lines.append(f"{name:24} " + " ".join(f"{100 * a:7.2f}" for a in s["val_acc"]) +
                     f" {100 * s['mean']:6.2f} {100 * s['sd']:5.2f} | {100 * s['mean_tta']:8.2f} {100 * s['sd_tta']:5.2f}")
    return "\n".join(lines)


def paired_with_disclosed(summary_: dict, y_test, final_pred) -> dict | str:
    """McNemar's test of the final model against the first tested design, on the same test images
    (or a one-line reason why it cannot be made with these predictions)."""
    row = next((r for r in summary_["rows"] if r["name"] == DISCLOSED and r.get("test_pred")), None)
    if row is None:
        return f"no test predictions of '{DISCLOSED}' in the summary: run `{COMMAND}`"
    first = [int(c) for c in row["test_pred"]]
    if len(first) != len(y_test) or len(final_pred) != len(y_test):
        return (f"the recorded predictions cover {len(first)} test images, this test set has {len(y_test)} "
                f"(not the real KMNIST?): no paired test")
    return stats.paired_comparison(y_test, final_pred, first)
