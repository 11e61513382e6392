"""Figures: sample grids and learning curves."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator
import numpy as np
import torch

from .kmnist import CLASSES

if TYPE_CHECKING:  # for annotations only: the figures do not import the data pipeline
    from .data import KMNISTSplits

try:  # a Japanese font (IPAex Gothic) so that the hiragana class names render
    import matplotlib_fontja  # noqa: F401
    HIRAGANA = True
except ImportError:  # pragma: no cover - the romanised names are shown instead
    HIRAGANA = False


def class_name(label: int) -> str:
    """'お (o)' when a Japanese font is available, else 'o'."""
    roman, kana = CLASSES[label]
    return f"{kana} ({roman})" if HIRAGANA else roman


def _pick_per_class(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(len(CLASSES)):
        idx = torch.nonzero(labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.stack(picks)  # (classes, per_class)


def show_samples(splits: KMNISTSplits, split: str = "train", per_class: int = 8, seed: int = 0,
                 permuted: KMNISTSplits | None = None) -> plt.Figure:
    """`per_class` samples per class as the model sees them; with `permuted`, the same samples permuted beside them."""
    picks = _pick_per_class(splits.labels[split], per_class, seed)
    panels = [("after ToTensor + Normalize\n(what the model sees)", splits)]
    if permuted is not None:
        panels.append(("after ToTensor + Normalize + RandomPermutation\n"
                       "(what the model sees: same images, pixels permuted)", permuted))
    gap = 0.35  # an empty column between the panels, in image widths
    ratios = ([1.0] * per_class + [gap]) * len(panels)
    fig, grid = plt.subplots(len(CLASSES), len(ratios) - 1, figsize=(sum(ratios) + 2.4, 11.2), squeeze=False,
                             gridspec_kw={"wspace": 0.05, "hspace": 0.05, "left": 0.09, "right": 0.88,
                                          "top": 0.9, "bottom": 0.02, "width_ratios": ratios[:-1]})
    for ax in grid[:, per_class::per_class + 1].flat:
        ax.set_visible(False)
    axes = np.delete(grid, np.s_[per_class::per_class + 1], axis=1)
    p0 = splits.preprocess  # one grey scale for every image: the normalised values of pixel 0 (white) and 255 (black)
    vmin, vmax = (0 - p0.mean) / p0.std, (1 - p0.mean) / p0.std
    for p, (title, s) in enumerate(panels):
        imgs = s.preprocess.batch(s.images[split][picks.flatten()]).view(len(CLASSES), per_class, 28, 28)
        for c in range(len(CLASSES)):
            for j in range(per_class):
                ax = axes[c, p * per_class + j]
                im = ax.imshow(imgs[c, j].numpy(), cmap="gray_r", vmin=vmin, vmax=vmax)
                ax.set_xticks([]), ax.set_yticks([])
                if j == 0 and p == 0:
                    ax.set_ylabel(class_name(c), rotation=0, ha="right", va="center", fontsize=12)
        # the panel title centred over its columns, in figure coordinates
        left, right = axes[0, p * per_class].get_position().x0, axes[0, (p + 1) * per_class - 1].get_position().x1
        fig.text((left + right) / 2, axes[0, 0].get_position().y1 + 0.008, title, ha="center", va="bottom", fontsize=12)
    cax = fig.add_axes((0.9, 0.2, 0.015, 0.6))
    cb = fig.colorbar(im, cax=cax)
    cb.set_label(f"normalised pixel value (x/255 - {p0.mean:.3f}) / {p0.std:.3f}", fontsize=10)
    cb.ax.tick_params(labelsize=10)
    fig.suptitle(f"KMNIST {split} split: {per_class} samples per class, one grey scale for all", fontsize=13, y=0.975)
    return fig


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over `window` steps (clipped to the data) of finite values; NaN where a step is."""
    v = np.asarray(values, dtype=float)
    window = max(1, min(window, len(v)))
    ok = np.isfinite(v)
    total = np.cumsum(np.insert(np.where(ok, v, 0.0), 0, 0.0))
    count = np.cumsum(np.insert(ok.astype(float), 0, 0.0))
    hi = np.arange(1, len(v) + 1)
    lo = np.maximum(hi - window, 0)
    n = count[hi] - count[lo]
    out = np.full(len(v), np.nan)
    np.divide(total[hi] - total[lo], n, out=out, where=n > 0)
    out[~ok] = np.nan
    return out


def _nan_array(values: list) -> np.ndarray:
    """History values as floats, with the nulls of non-finite values as NaN (matplotlib leaves a gap)."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def run_labels(results: list[dict]) -> list[str]:
    """Legend names: the optimizer when all runs share model and data, else model, data and optimizer."""
    if len({(r["config"]["model"], r["config"]["dataset"]) for r in results}) == 1:
        return [r["label"] for r in results]
    return [f"{r['config']['model'].upper()} {r['config']['dataset']} {r['label']}" for r in results]


COLLAPSE_LOSS = 10.0  # a loss above this (ln 10 = 2.30 is a uniform guess) squeezes the working runs: own panel
FONT = {"tick": 10, "label": 10.5, "title": 11, "legend": 10}
LN10 = math.log(10)


def _peak_loss(r: dict, smooth_steps: int) -> float:
    """The largest finite loss a run recorded: moving-averaged step loss, epoch training loss or validation loss."""
    h = r["history"]
    vals = np.concatenate([_smooth(_nan_array(h["step_loss"]), smooth_steps), _nan_array(h.get("train_loss") or []),
                           _nan_array(h.get("val_loss") or [])])
    vals = vals[np.isfinite(vals)]
    return float(vals.max()) if vals.size else math.inf


def collapsed_runs(results: list[dict], smooth_steps: int = 50, threshold: float = COLLAPSE_LOSS) -> list[bool]:
    """Per run, whether it diverged or its loss went above `threshold` (drawn on its own scale); none when all did."""
    flags = [bool(r["history"].get("diverged")) or _peak_loss(r, smooth_steps) > threshold for r in results]
    return flags if not all(flags) else [False] * len(flags)


def _n_epochs(results: list[dict]) -> int:
    """The epochs the runs span: the last recorded epoch, or the steps recorded, in whole epochs (at least 1)."""
    return max(1, *(max(max(r["history"]["epoch"], default=0),
                        math.ceil(len(r["history"]["step_loss"]) / r["history"]["steps_per_epoch"])) for r in results))


def _epoch_ticks(n_epochs: int) -> list[int]:
    """Whole epochs from 0 to n_epochs, at most about 11 of them."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 10 ** 9) if n_epochs / s <= 10.5)
    return list(range(0, n_epochs + 1, step))


def _log_axis(ax: plt.Axes) -> None:
    """Log y axis with plain-number labels: 1-2-5 ticks over up to 3 decades, powers of 10 beyond."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    subs = (1.0, 2.0, 5.0) if hi / max(lo, 1e-300) <= 1e3 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}" if 1e-3 <= v < 1e4 else f"{v:.0e}"))
    ax.yaxis.set_minor_formatter(plt.NullFormatter())


def _style(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> None:
    """Title, axis labels, readable tick labels and a light grid."""
    ax.set_title(title, fontsize=FONT["title"])
    ax.set_xlabel(xlabel, fontsize=FONT["label"])
    ax.set_ylabel(ylabel, fontsize=FONT["label"])
    ax.tick_params(which="both", labelsize=FONT["tick"])
    ax.grid(True, which="major", alpha=0.35)


def _epoch_top_axis(ax: plt.Axes, spe: int, n_epochs: int) -> None:
    """Whole epochs along the top of a steps axis."""
    top = ax.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    top.set_xticks(_epoch_ticks(n_epochs))
    top.set_xlabel("epoch", fontsize=FONT["label"])
    top.tick_params(labelsize=FONT["tick"])


def _loss_vs_steps(ax: plt.Axes, runs: list[tuple[dict, str, str]], smooth_steps: int, spe: int, n_epochs: int,
                   log_steps: bool = False) -> None:
    """Per run, the moving-averaged step loss (solid) and the validation loss after each epoch at its step (dashed)."""
    for r, _, color in runs:
        h = r["history"]
        loss = _smooth(_nan_array(h["step_loss"]), smooth_steps)
        ax.plot(np.arange(1, len(loss) + 1), loss, color=color, lw=1.6)
        ax.plot(np.array(h["epoch"]) * spe, _nan_array(h["val_loss"]), "--o", color=color, ms=4, lw=1.3)
        if h.get("diverged"):
            x = h.get("diverged_step") or 1
            ax.axvline(x, color=color, ls=":", lw=1.2)
            ax.annotate(f"diverged at step {x} (non-finite loss)", (x, 0.97), xycoords=("data", "axes fraction"),
                        color=color, rotation=90, va="top", ha="right", fontsize=FONT["tick"])
    ax.axhline(LN10, color="0.45", ls=":", lw=1.2)
    _log_axis(ax)
    if log_steps:  # a collapse within the first steps stays visible
        ax.set_xscale("log")
        ax.set_xlim(1, n_epochs * spe)
    else:
        ax.set_xlim(0, n_epochs * spe)
        _epoch_top_axis(ax, spe, n_epochs)


def _clipped(ax: plt.Axes, out: list[tuple[dict, str, str]], xs_ys) -> None:
    """Draw set-apart runs on a working panel, clipped to its y-range, and mark where they leave it."""
    lo, hi = ax.get_ylim()
    for r, name, color in out:
        for x, y, style in xs_ys(r):
            ax.plot(x, y, style, color=color, lw=1.3, ms=4, clip_on=True)
    ax.set_ylim(lo, hi)
    names = ", ".join(name for _, name, _ in out)
    ax.set_title(f"{ax.get_title()}\n({names}: clipped at the top of this axis, whole in its own panel)",
                 fontsize=FONT["title"])


def _collapse_fact(r: dict, smooth_steps: int) -> str:
    """What a set-apart run did, in a few words: where it diverged, or its peak loss and where it ended."""
    h = r["history"]
    if h.get("diverged"):
        return f"non-finite loss at step {h.get('diverged_step')}"
    loss = _smooth(_nan_array(h["step_loss"]), smooth_steps)
    if not np.isfinite(loss).any():
        return "no finite loss"
    peak_epoch = int(np.nanargmax(loss)) // h["steps_per_epoch"] + 1
    last = loss[np.isfinite(loss)][-1]
    chance = f" (ln 10 = {LN10:.2f}: about a uniform guess)" if abs(last - LN10) < 0.1 else ""
    return f"training loss up to {np.nanmax(loss):.1e} in epoch {peak_epoch}, then {last:.2f}{chance}"


def _draw_learning_curves(results: list[dict], axes: list[plt.Axes], labels: list[str], smooth_steps: int,
                          collapse_above: float) -> list[Line2D]:
    """Draw on axes (steps, epochs[, validation error[, collapsed runs]]); return the legend handles."""
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    spe, n_epochs = results[0]["history"]["steps_per_epoch"], _n_epochs(results)
    collapsed = collapsed_runs(results, smooth_steps, collapse_above) if len(axes) > 3 else [False] * len(results)
    runs = [(r, name, colors[i % len(colors)]) for i, (r, name) in enumerate(zip(results, labels))]
    working = [run for run, c in zip(runs, collapsed) if not c]
    out = [run for run, c in zip(runs, collapsed) if c]
    ax_steps, ax_ep = axes[0], axes[1]
    batch = results[0]["config"].get("batch_size", 64)
    _loss_vs_steps(ax_steps, working, smooth_steps, spe, n_epochs)
    _style(ax_steps, f"Loss against training steps\n(training: {smooth_steps}-step moving average; "
                     f"validation: after each epoch)", f"training step (batch of {batch})",
           "cross-entropy loss (log scale)")
    for r, _, color in working:
        h = r["history"]
        ax_ep.plot(h["epoch"], _nan_array(h["train_loss"]), color=color, lw=1.6)
        ax_ep.plot(h["epoch"], _nan_array(h["val_loss"]), "--o", color=color, ms=4, lw=1.3)
    ax_ep.axhline(LN10, color="0.45", ls=":", lw=1.2)
    ax_ep.set_xlim(-0.4, n_epochs + 0.4)
    ax_ep.set_xticks(_epoch_ticks(n_epochs))
    _log_axis(ax_ep)
    _style(ax_ep, "Loss against epochs\n(training: mean over each epoch; validation: after each epoch)",
           "epoch (0: before training)", "cross-entropy loss (log scale)")
    if out:  # the set-apart runs on the same axes too, clipped, so that all runs share one plot
        _clipped(ax_steps, out, lambda r: [(np.arange(1, len(r["history"]["step_loss"]) + 1),
                                             _smooth(_nan_array(r["history"]["step_loss"]), smooth_steps), "-"),
                                            (np.array(r["history"]["epoch"]) * spe, _nan_array(r["history"]["val_loss"]), "--o")])
        _clipped(ax_ep, out, lambda r: [(r["history"]["epoch"], _nan_array(r["history"]["train_loss"]), "-"),
                                         (r["history"]["epoch"], _nan_array(r["history"]["val_loss"]), "--o")])
    if len(axes) > 2:
        ax_err = axes[2]
        for r, _, color in runs:
            h = r["history"]
            ax_err.plot(h["epoch"], 100 * (1 - _nan_array(h["val_acc"])), "--o", color=color, ms=4, lw=1.3)
        ax_err.set_xlim(-0.4, n_epochs + 0.4)
        ax_err.set_xticks(_epoch_ticks(n_epochs))
        _log_axis(ax_err)
        note = f"; every run, {', '.join(n for _, n, _ in out)} included)" if out else ")"
        _style(ax_err, f"Validation error after each epoch\n(100% - accuracy{note}", "epoch (0: before training)",
               "validation error, % (log scale)")
    if len(axes) > 3:
        ax_c = axes[3]
        if out:
            _loss_vs_steps(ax_c, out, smooth_steps, spe, n_epochs, log_steps=True)
            what = " and ".join(sorted({"diverged" if r["history"].get("diverged") else "collapsed"
                                        for r, _, _ in out}))
            facts = "; ".join((f"{n}: " if len(out) > 1 else "") + _collapse_fact(r, smooth_steps) for r, n, _ in out)
            _style(ax_c, f"{', '.join(n for _, n, _ in out)} ({what}), on its own log scales\n({facts})",
                   f"training step (batch of {batch}, log scale)", "cross-entropy loss (log scale)")
        else:
            ax_c.set_visible(False)
    handles = [Line2D([], [], color=color, lw=3, label=name + (" (clipped; own panel)" if c else ""))
               for (_, name, color), c in zip(runs, collapsed)]
    handles += [Line2D([], [], color="k", lw=1.6, label="solid: training loss"),
                Line2D([], [], color="k", ls="--", marker="o", ms=4, lw=1.3, label="dashed + circles: validation"),
                Line2D([], [], color="0.45", ls=":", lw=1.2, label=f"dotted: ln 10 = {LN10:.2f} (uniform guess)")]
    return handles


def _figure_legend(fig: plt.Figure, handles: list[Line2D]) -> None:
    """One legend for the whole figure, below the axes (outside them, within the figure)."""
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles) if len(handles) <= 6 else
               math.ceil(len(handles) / 2), fontsize=FONT["legend"],
               frameon=False)


def plot_learning_curves(results: list[dict], title: str = "", smooth_steps: int = 50,
                         labels: list[str] | None = None, ax_pair: list[plt.Axes] | None = None, *,
                         collapse_above: float = COLLAPSE_LOSS, legend: bool = True) -> plt.Figure:
    """Loss against steps and epochs (training solid, validation dashed), validation error; collapsed runs apart."""
    labels = labels or run_labels(results)
    if ax_pair is not None:  # the caller's axes: steps, epochs[, validation error[, collapsed runs]]
        axes = list(ax_pair)
        handles = _draw_learning_curves(results, axes, labels, smooth_steps, collapse_above)
        if title:
            axes[0].set_title(f"{title}: {axes[0].get_title()}", fontsize=FONT["title"])
        if legend:
            axes[0].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4,
                           fontsize=FONT["legend"], frameon=False)
        return axes[0].figure
    if any(collapsed_runs(results, smooth_steps, collapse_above)):
        # working runs on top, the collapsed run below the steps panel (same steps), validation error beside it
        fig = plt.figure(figsize=(15, 10.5), layout="constrained")
        gs = fig.add_gridspec(2, 2, height_ratios=[3, 2])  # fig.axes in the order steps, epochs, error, collapsed
        axes = [fig.add_subplot(gs[i, j]) for i, j in ((0, 0), (0, 1), (1, 1), (1, 0))]
    else:
        fig, grid = plt.subplots(1, 3, figsize=(18, 6), layout="constrained", gridspec_kw={"width_ratios": [3, 2, 2]})
        axes = list(grid)
    axes[1].sharey(axes[0])
    handles = _draw_learning_curves(results, axes, labels, smooth_steps, collapse_above)
    if legend:
        _figure_legend(fig, handles)
    if title:
        fig.suptitle(title, fontsize=13)
    return fig


def plot_permuted(plain: list[dict], permuted: list[dict]) -> plt.Figure:
    """One row per model (plain vs permuted pixels, SGD-Nesterov): loss against steps and epochs, validation error."""
    pairs = list(zip(plain, permuted))
    extra = any(any(collapsed_runs([a, b])) for a, b in pairs)  # a collapsed run gets its own column
    fig = plt.figure(figsize=(18 + 5 * extra, 5.6 * len(pairs) + 0.8), layout="constrained")
    handles = []
    for sub, (a, b) in zip(np.atleast_1d(fig.subfigures(len(pairs), 1)), pairs):
        axes = list(sub.subplots(1, 3 + extra, gridspec_kw={"width_ratios": [3, 2, 2] + [3] * extra}))
        axes[1].sharey(axes[0])
        handles = _draw_learning_curves([a, b], axes, ["plain", "permuted"], 50, COLLAPSE_LOSS)
        sub.suptitle(f"{a['config']['model'].upper()}, SGD-Nesterov: plain vs permuted pixels", fontsize=13)
    _figure_legend(fig, handles)
    return fig
