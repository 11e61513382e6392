"""Tables of results, as mean ± sd over seeds: a Markdown table in Jupyter, aligned text elsewhere."""
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


def runs_table(results: list[dict], key=lambda r: r["label"]) -> Table:
    """One row per configuration (grouped over seeds by `key`): accuracies in %, mean ± sd over the seeds."""
    cols = ["run", "seeds", "val acc after epoch 1", "final val acc", "test acc", "train acc"]
    rows = [[name, str(len(runs)), mean_sd([r["history"]["val_acc"][1] for r in runs]),
             mean_sd([r["final"]["val_acc"] for r in runs]), mean_sd([r["final"]["test_acc"] for r in runs]),
             mean_sd([r["final"]["train_eval_acc"] for r in runs])] for name, runs in group(results, key).items()]
    return Table(cols, rows, "Accuracies in %, mean ± standard deviation over the seeds, after the last epoch "
                             "(train acc: the training split in eval mode); " + _devices(results) + ", "
                             + _times(results) + ".")


def _times(results: list[dict]) -> str:
    """The range of the runs' training times (evaluation included)."""
    t = [r["wall_time_s"] for r in results]
    return f"{min(t):.0f} to {max(t):.0f} s per run" if len(t) > 1 else f"{t[0]:.0f} s"


def selection_table(rows: list[tuple[str, list[dict], bool]], margin: float) -> Table:
    """2.6's forward selection: each change tried on the recipe so far, its validation accuracy, its gain over the
    recipe so far against the margin (the two seed spreads + `margin` points), and whether it was kept."""
    out, best = [], None
    for name, runs, kept in rows:
        acc = [100 * r["final"]["val_acc"] for r in runs]
        mean, sd = statistics.mean(acc), (statistics.stdev(acc) if len(acc) > 1 else 0.0)
        verdict = "start"
        if best is not None:
            verdict = f"{'yes' if kept else 'no'}: {mean - best[0]:+.2f} {'>' if kept else '≤'} {sd + best[1] + margin:.2f}"
        # val acc to 3 decimals: the gain and margin (2 decimals) can then be recomputed from the printed values
        out.append([name, str(len(runs)), mean_sd([r["final"]["val_acc"] for r in runs], digits=3),
                    mean_sd([r["final"]["train_eval_acc"] for r in runs], digits=2), verdict])
        if best is None or kept:
            best = (mean, sd)
    return Table(["change tried on the recipe so far", "seeds", "val acc", "train acc", "kept: gain > margin"], out,
                 "In %, mean ± standard deviation over the seeds; gain: the change in mean val acc over the recipe so far; "
                 f"margin: the two standard deviations + {margin} (`beats`), both in points; "
                 f"{_devices([r for _, runs, _ in rows for r in runs])}, {_times([r for _, runs, _ in rows for r in runs])}.")


def final_table(named: list[tuple[str, list[dict]]]) -> Table:
    """One row per model: validation, test and training accuracy (mean ± sd over seeds, %) and its parameters."""
    rows = [[name, str(len(runs)), mean_sd([r["final"]["val_acc"] for r in runs], digits=2),
             mean_sd([r["final"]["test_acc"] for r in runs], digits=2),
             mean_sd([r["final"]["train_eval_acc"] for r in runs], digits=2), f"{runs[0]['n_params']:,}"]
            for name, runs in named]
    runs = [r for _, rs in named for r in rs]
    return Table(["model", "seeds", "val acc", "test acc", "train acc", "parameters"], rows,
                 f"In %, mean ± standard deviation over the seeds; {_devices(runs)}, {_times(runs)}.")
