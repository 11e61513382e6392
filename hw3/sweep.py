"""The side studies behind the answers, recorded: `python -m hw3 sweep [STUDY ...]`.

- controls:     the four MLP runs of 2.2 with seed 1, and Adam with lr=0.001 (tests a claim of 2.2)
- cnn-seeds:    the four CNN runs of 2.3 with seeds 1 and 2 (seed 0 is the notebook's own): the CNN's spread
- ablation:     2.6's ablation, from the homework CNN one change per row, seeds 0-2, validation only
- explorations: 2.6's post-hoc designs (three-network ensemble, + elastic), and the final design for the
                paired test; the test split is evaluated for the final design and the ensemble only,
                whose test accuracies were already disclosed
Each study trains what the cache lacks; `--record` writes the summary to hw3/recorded/sweep.json, which
ships with the package, and the notebook shows it (labelled as recorded) when its own cache lacks the runs.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from . import bonus, plots, stats
from .cache import load_result, results_dir, write_json_atomic
from .device import cpu_name
from .experiments import Config, run_experiment
from .train import CONTROLS, OPTIMIZERS

RECORDED = Path(__file__).resolve().parent / "recorded" / "sweep.json"
SEEDS = (0, 1, 2)
COMMAND = "python -m hw3 sweep"
STUDIES = ("controls", "cnn-seeds", "ablation", "explorations")
FINAL_NAME = "final: one width-24 network, 20 epochs"
TESTED = (FINAL_NAME, "three width-16 networks, 12 epochs each")  # the designs whose test accuracy was disclosed


def _runs(study: str) -> list[tuple[str, int, object]]:
    """The runs of one study: (name, seed, Config or BonusConfig)."""
    if study == "controls":
        return ([(f"MLP {OPTIMIZERS[o][0]}", 1, Config(model="mlp", optimizer=o, seed=1)) for o in OPTIMIZERS]
                + [(f"MLP {CONTROLS[o][0]}", 0, Config(model="mlp", optimizer=o)) for o in CONTROLS])
    if study == "cnn-seeds":
        return [(f"CNN {OPTIMIZERS[o][0]}", s, Config(model="cnn", optimizer=o, seed=s)) for s in (1, 2) for o in OPTIMIZERS]
    if study == "ablation":
        return [(name, s, bonus.BonusConfig(**overrides, seed=s)) for s in SEEDS for name, overrides in bonus.ABLATION]
    if study == "explorations":
        return [(FINAL_NAME, 0, bonus.FINAL)] + [(n, 0, bonus.BonusConfig(**o)) for n, o in bonus.EXPLORATIONS.items()]
    raise ValueError(f"study must be one of {STUDIES}, got {study!r}")


def _path(cfg, results) -> Path:
    return results_dir(results) / f"{cfg.key()}.json"


def run_sweep(studies=STUDIES, data_dir=None, results=None, force: bool = False, device=None, progress: bool = True) -> dict:
    """Train (or load) every run of the given studies, then return the summary of every study in the cache."""
    for study in studies:
        for name, _, cfg in _runs(study):
            kw = dict(data_dir=data_dir, results=results, force=force, device=device, progress=progress)
            if isinstance(cfg, bonus.BonusConfig):
                bonus.run_bonus(cfg, evaluate_test=name in TESTED, **kw)
            else:
                run_experiment(cfg, **kw)
    return summary(results)


def _row(name: str, seed: int, r: dict) -> dict:
    f, h = r["final"], r["history"]
    row = {"name": name, "seed": seed, "val_acc": f["val_acc"], "val_loss": f["val_loss"], "train_acc": f.get("train_acc"),
           "last5_val_acc": plots.run_stats(r)["last5"], "test_acc": f.get("test_acc"),
           "wall_time_s": r["wall_time_s"], "device": r["device"]}
    if "val_acc_tta" in f:
        row.update(val_acc_tta=f["val_acc_tta"], members=r["members"], ema_decay=h.get("ema_decay_reached"))
    if r.get("test_pred") is not None:
        row["test_pred"] = "".join(map(str, r["test_pred"]))  # one digit per test image: compact when recorded
    return row


def summary(results=None) -> dict:
    """{study: rows} for every study whose runs are all in the cache."""
    out = {}
    for study in STUDIES:
        rows = []
        for name, seed, cfg in _runs(study):
            r = load_result(_path(cfg, results))
            if r is None:
                break
            rows.append(_row(name, seed, r))
        else:
            out[study] = rows
    return {"command": COMMAND, "studies": out}


def record(summary_: dict, path: Path = RECORDED) -> Path:
    """Write a summary as the recorded one (the machine is named in it); returns the path."""
    devices = sorted({r["device"] for rows in summary_["studies"].values() for r in rows})
    write_json_atomic(dict(summary_, machine=f"{', '.join(devices)}; processor: {cpu_name()}",
                           recorded_by=f"{COMMAND} --record"), path, indent=1)
    return path


def load(study: str, results=None, recorded: Path = RECORDED) -> tuple[list[dict] | None, str]:
    """The rows of one study and where they come from: this machine's cache if complete, else the recorded file."""
    current = summary(results)["studies"].get(study)
    if current is not None:
        return current, "trained on this machine (cache)"
    try:
        rec = json.loads(Path(recorded).read_text())
    except (OSError, ValueError):
        rec = {}
    rows = rec.get("studies", {}).get(study)
    if rows is None:
        return None, f"not run here and not recorded: run `{COMMAND} {study}`"
    return rows, f"RECORDED on {rec.get('machine', 'another machine')} (`{COMMAND} {study}` reproduces it)"


def spread(rows: list[dict], key: str = "val_acc") -> dict[str, dict]:
    """Per name (in order of appearance): the values of `key` over seeds, their mean and standard deviation."""
    out: dict[str, dict] = {}
    for r in rows:
        out.setdefault(r["name"], {"seeds": [], "values": []})
        out[r["name"]]["seeds"].append(r["seed"])
        out[r["name"]]["values"].append(r[key])
    for s in out.values():
        s["mean"] = statistics.mean(s["values"])
        s["sd"] = statistics.stdev(s["values"]) if len(s["values"]) > 1 else float("nan")
    return out


def rows_of(results: list[dict], prefix: str) -> list[dict]:
    """The notebook's own runs (seed 0) as sweep rows, named like the sweep's ('MLP SGD lr=0.01')."""
    return [_row(f"{prefix} {r['label']}", r["config"]["seed"], r) for r in results]


def seed_table(rows: list[dict], title: str, keys: tuple[str, ...] = ("val_acc",)) -> str:
    """Each name's value per seed, then mean and standard deviation over its seeds, for each key (in %)."""
    lines = []
    seeds = sorted({r["seed"] for r in rows})
    for key in keys:
        sp = spread(rows, key)
        head = f"{title + ' [' + key + ', %]':46} " + " ".join(f"{'seed ' + str(s):>7}" for s in seeds) + f" {'mean':>6} {'sd':>5}"
        lines += [head, "-" * len(head)]
        for name, s in sp.items():
            by_seed = dict(zip(s["seeds"], s["values"]))
            cells = " ".join(f"{100 * by_seed[sd]:7.2f}" if sd in by_seed else f"{'':7}" for sd in seeds)
            sd_text = f"{100 * s['sd']:5.2f}" if len(s["values"]) > 1 else f"{'-':>5}"
            lines.append(f"{name:46} {cells} {100 * s['mean']:6.2f} {sd_text}")
        lines.append("")
    return "\n".join(lines).rstrip()


def explorations_table(rows: list[dict]) -> str:
    """The final design and the post-hoc explorations: validation (with TTA), training and test accuracy, time."""
    head = f"{'design':42} {'val acc':>8} {'val+TTA':>8} {'val loss':>8} {'train acc':>9} {'test acc':>8} {'time':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        test = "-" if r.get("test_acc") is None else f"{100 * r['test_acc']:.2f}"
        lines.append(f"{r['name']:42} {100 * r['val_acc']:8.2f} {100 * r['val_acc_tta']:8.2f} {r['val_loss']:8.4f} "
                     f"{100 * r['train_acc']:9.2f} {test:>8} {r['wall_time_s']:5.0f}s")
    return "\n".join(lines)


def paired(rows: list[dict], y_test, pred_a, name_b: str = TESTED[1]) -> dict | str:
    """McNemar's test of predictions `pred_a` against the recorded test predictions of design `name_b`
    (or a one-line reason why it cannot be made)."""
    row = next((r for r in rows if r["name"] == name_b and r.get("test_pred")), None)
    if row is None:
        return f"no test predictions of '{name_b}' recorded: run `{COMMAND} explorations`"
    other = [int(c) for c in row["test_pred"]]
    if len(other) != len(y_test) or len(pred_a) != len(y_test):
        return (f"the recorded predictions cover {len(other)} test images, this test set has {len(y_test)} "
                f"(not the real KMNIST?): no paired test")
    return stats.paired_comparison(y_test, pred_a, other)
