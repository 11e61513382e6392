"""Tables of results, grouped over seeds: a Markdown table in Jupyter, aligned text elsewhere."""
from __future__ import annotations

import math
import statistics


class Table:
    """Rows under named columns; Jupyter renders it as a Markdown table, print() as aligned text."""

    def __init__(self, columns: list[str], rows: list[list[str]], note: str = ""):
        self.columns, self.rows, self.note = columns, rows, note

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + (f"\n\n{self.note}" if self.note else "")

    def __repr__(self) -> str:
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        lines = [fmt(self.columns), "-" * (sum(widths) + 2 * len(widths) - 2)] + [fmt(r) for r in self.rows]
        return "\n".join(lines) + (f"\n{self.note}" if self.note else "")


def _finite(values) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def mean_sd(values, scale: float = 100.0, digits: int = 1) -> str:
    """'mean ± sd' of the finite values (sd over seeds; alone when there is one value), scaled (% by default)."""
    v = [scale * x for x in _finite(values)]
    if not v:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.mean(v):.{digits}f} ± {statistics.stdev(v):.{digits}f}"


def _devices(results: list[dict]) -> str:
    """Where the runs were trained, as their results recorded it."""
    return "trained on " + " and ".join(sorted({r.get("device", "an unrecorded device") for r in results}))


def group(results: list[dict], key=lambda r: r["label"]) -> dict[str, list[dict]]:
    """Results grouped by `key` (default: the optimizer's label), in order of first appearance."""
    out: dict[str, list[dict]] = {}
    for r in results:
        out.setdefault(key(r), []).append(r)
    return out


def run_stats(r: dict) -> dict:
    """From one run: validation accuracy after epoch 1, best and final; the epoch of the lowest validation loss
    and how far the final loss lies above it (relative)."""
    h = r["history"]
    accs = _finite(h["val_acc"][1:])
    losses = [(v, e) for v, e in zip(h["val_loss"], h["epoch"]) if v is not None and e > 0]
    low, low_epoch = min(losses) if losses else (None, None)
    final_loss = h["val_loss"][-1]
    return {"epoch1": accs[0] if accs else None, "best": max(accs) if accs else None,
            "final": accs[-1] if accs else None, "low_loss": low, "low_epoch": low_epoch,
            "rise": final_loss / low - 1 if low and final_loss is not None else None}


def runs_table(results: list[dict], key=lambda r: r["label"]) -> Table:
    """One row per configuration (grouped over seeds by `key`): accuracies in %, mean ± sd over the seeds."""
    cols = ["run", "seeds", "val acc after epoch 1", "final val acc", "best val acc", "lowest val loss (epoch)",
            "val loss rise, lowest to final (%)", "train acc (after training)", "test acc", "training time"]
    rows = []
    for name, runs in group(results, key).items():
        stats = [run_stats(r) for r in runs]
        epochs = sorted({s["low_epoch"] for s in stats if s["low_epoch"] is not None})
        diverged = sum(bool(r["history"].get("diverged")) for r in runs)
        rows.append([name + (f" ({diverged} diverged)" if diverged else ""), str(len(runs)),
                     mean_sd([s["epoch1"] for s in stats]), mean_sd([s["final"] for s in stats]),
                     mean_sd([s["best"] for s in stats]),
                     f"{mean_sd([s['low_loss'] for s in stats], 1, 3)} ({'-'.join(map(str, epochs[:1] + epochs[-1:]))})"
                     if epochs else "-",
                     mean_sd([s["rise"] for s in stats], 100, 0),
                     mean_sd([r["final"]["train_eval_acc"] for r in runs]), mean_sd([r["final"]["test_acc"] for r in runs]),
                     f"{statistics.mean(r['wall_time_s'] for r in runs):.0f} s"])
    return Table(cols, rows, "Accuracies in %, mean ± standard deviation over the seeds; the epoch of the "
                             "lowest validation loss as the range over the seeds; time: training, per run, "
                             f"{_devices(results)}.")


def compare_table(a: list[dict], b: list[dict], name_a: str, name_b: str) -> Table:
    """Per optimizer, the mean final validation and test accuracy of two models and the difference (in points)."""
    ga, gb = group(a), group(b)
    mean = lambda runs, k: statistics.mean(r["final"][k] for r in runs) * 100
    rows = []
    for label in ga:
        if label in gb:
            cells = []
            for k in ("val_acc", "test_acc"):
                x, y = mean(ga[label], k), mean(gb[label], k)
                cells += [f"{x:.1f}", f"{y:.1f}", f"{y - x:+.1f}"]
            rows.append([label] + cells)
    cols = ["optimizer", f"{name_a} val acc", f"{name_b} val acc", "difference", f"{name_a} test acc",
            f"{name_b} test acc", "difference"]
    return Table(cols, rows, "Means over the seeds, in %; differences in points.")


def bonus_table(named: list[tuple[str, dict]]) -> Table:
    """One row per name (grouped over seeds): validation accuracy with and without TTA, training and test accuracy
    (a column that no row measured is left out)."""
    groups: dict[str, list[dict]] = {}
    for name, r in named:
        groups.setdefault(name, []).append(r)
    rows = [[name, str(len(runs)), mean_sd([r["final"]["val_acc"] for r in runs], digits=2),
             mean_sd([r["final"].get("val_acc_tta") for r in runs], digits=2),
             mean_sd([r["final"]["train_eval_acc"] for r in runs], digits=2),
             mean_sd([r["final"].get("test_acc") for r in runs], digits=2),
             f"{statistics.mean(r['wall_time_s'] for r in runs):.0f} s", f"{runs[0]['n_params']:,}"]
            for name, runs in groups.items()]
    cols = ["model", "seeds", "val acc", "val acc with TTA", "train acc (no augmentation)", "test acc",
            "training time", "parameters"]
    keep = [i for i in range(len(cols)) if any(row[i] != "-" for row in rows)]  # no column measured for no row
    cols, rows = [cols[i] for i in keep], [[row[i] for i in keep] for row in rows]
    return Table(cols, rows, "In %, mean ± standard deviation over the seeds; '-': not measured; time: training, per run, "
                             f"{_devices([r for _, r in named])}.")
