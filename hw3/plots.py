"""Figures: sample grids and learning curves."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import torch
from torchvision.transforms.functional import to_pil_image

from .kmnist import CLASSES


class Splits(Protocol):
    """What the sample grids read of question 2.1's `KMNISTSplits` (the figures do not import the data pipeline)."""

    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    mean: float
    std: float

    def transform(self) -> Callable[..., torch.Tensor]: ...


try:  # a Japanese font (IPAex Gothic) so that the hiragana class names render
    import matplotlib_fontja  # noqa: F401
    HIRAGANA = True
except ImportError:  # pragma: no cover - the romanised names are shown instead
    HIRAGANA = False


FONT = 11  # points, at the figure's own size: the figures are made about as wide as a notebook shows them


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


def show_samples(splits: Splits, split: str = "train", per_class: int = 8, seed: int = 0,
                 permuted: Splits | None = None) -> plt.Figure:
    """`per_class` samples per class after the transform; with `permuted`, the same samples permuted beside them."""
    picks = _pick_per_class(splits.labels[split], per_class, seed)
    panels = [("after ToTensor + Normalize", splits)]
    if permuted is not None:
        panels.append(("the same images, pixels permuted", permuted))
    gap = 0.35  # an empty column between the panels, in image widths
    ratios = ([1.0] * per_class + [gap]) * len(panels)
    fig, grid = plt.subplots(len(CLASSES), len(ratios) - 1, figsize=(0.62 * sum(ratios) + 2.0, 7.6), squeeze=False,
                             gridspec_kw={"wspace": 0.05, "hspace": 0.05, "left": 0.09, "right": 0.88,
                                          "top": 0.9, "bottom": 0.02, "width_ratios": ratios[:-1]})
    for ax in grid[:, per_class::per_class + 1].flat:
        ax.set_visible(False)
    axes = np.delete(grid, np.s_[per_class::per_class + 1], axis=1)
    # one grey scale for every image: the normalised values of pixel 0 (white) and 255 (black)
    vmin, vmax = (0 - splits.mean) / splits.std, (1 - splits.mean) / splits.std
    for p, (title, s) in enumerate(panels):
        tf = s.transform()  # torchvision's per-sample transform: cheap for these few images
        imgs = torch.stack([tf(to_pil_image(img)) for img in s.images[split][picks.flatten()]])
        imgs = imgs.view(len(CLASSES), per_class, 28, 28)
        for c in range(len(CLASSES)):
            for j in range(per_class):
                ax = axes[c, p * per_class + j]
                im = ax.imshow(imgs[c, j].numpy(), cmap="gray_r", vmin=vmin, vmax=vmax)
                ax.set_xticks([]), ax.set_yticks([])
                if j == 0 and p == 0:
                    ax.set_ylabel(class_name(c), rotation=0, ha="right", va="center", fontsize=FONT)
        # the panel title centred over its columns, in figure coordinates
        left, right = axes[0, p * per_class].get_position().x0, axes[0, (p + 1) * per_class - 1].get_position().x1
        fig.text((left + right) / 2, axes[0, 0].get_position().y1 + 0.008, title, ha="center", va="bottom", fontsize=FONT)
    cax = fig.add_axes((0.9, 0.2, 0.015, 0.6))
    cb = fig.colorbar(im, cax=cax)
    cb.set_label(f"normalised pixel value (x/255 - {splits.mean:.3f}) / {splits.std:.3f}", fontsize=FONT - 1)
    cb.ax.tick_params(labelsize=FONT - 1)
    fig.suptitle(f"KMNIST {split} split after the transform (ink dark): {per_class} samples per class", fontsize=FONT + 1, y=0.985)
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
    return [f"{r['config']['model']} {r['config']['dataset']} {r['label']}" for r in results]


LN10 = math.log(10)


def plot_learning_curves(results: list[dict], title: str, labels: list[str] | None = None,
                         smooth_steps: int = 50) -> plt.Figure:
    """Two panels: training loss per step (moving average) and validation loss per epoch on one step axis (epochs on
    top), and the validation error per epoch. A run whose loss leaves the working runs' range is clipped, marked
    and said so in the legend, with its largest single-step (unsmoothed) or validation loss."""
    labels = labels or run_labels(results)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    spe = results[0]["history"]["steps_per_epoch"]
    n_epochs = max(len(r["history"]["val_loss"]) - 1 for r in results)
    fig, (ax, ax_err) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained", gridspec_kw={"width_ratios": [3, 2]})
    curves = []
    for r, color in zip(results, colors):
        h = r["history"]
        loss = _smooth(_nan_array(h["step_loss"]), smooth_steps)
        curves.append((np.arange(1, len(loss) + 1), loss, np.arange(len(h["val_loss"])) * h["steps_per_epoch"],
                       _nan_array(h["val_loss"])))
        ax_err.plot(range(len(h["val_acc"])), 100 * (1 - _nan_array(h["val_acc"])), "-o", color=color, ms=3, lw=1.4)
    # the y-range of the runs that stay below 10x chance's loss; a run that goes above is drawn clipped and marked
    peaks = [np.nanmax(np.concatenate([c[1], c[3]])) for c in curves]
    working = [p for p in peaks if p < 10 * LN10] or peaks
    top = max(max(working) * 1.3, 1.2 * LN10)
    for r, (xs, loss, xv, val), peak, name, color in zip(results, curves, peaks, labels, colors):
        clipped = peak > top  # marked where it leaves the axis, and said in the legend with its unsmoothed peak
        raw = np.nanmax(np.concatenate([_nan_array(r["history"]["step_loss"]), val]))
        ax.plot(xs, loss, color=color, lw=1.4, label=f"{name} (▲ clipped, peak {raw:.0e})" if clipped else name)
        ax.plot(xv, val, "--o", color=color, ms=3, lw=1.2)
        if clipped:
            x_peak = xs[np.nanargmax(loss)] if np.nanmax(loss) >= np.nanmax(val) else xv[np.nanargmax(val)]
            ax.plot(x_peak, top, marker="^", color=color, ms=9, clip_on=False)
    ax.axhline(LN10, color="0.5", ls=":", lw=1)
    ax.annotate("chance (ln 10)", (0.99, LN10 * 0.93), xycoords=("axes fraction", "data"), ha="right", va="top",
                fontsize=FONT - 1, color="0.35")
    ax.set(yscale="log", ylim=(None, top), xlim=(0, n_epochs * spe), xlabel="training step",
           ylabel="cross-entropy loss (log)")
    top_axis = ax.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    top_axis.set_xlabel("epoch", fontsize=FONT)
    ax.set_title(f"Loss: training ({smooth_steps}-step mean, solid), validation (dashed)", fontsize=FONT)
    ax_err.set(yscale="log", xlabel="epoch", ylabel="validation error, % (log)")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax_err.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax_err.yaxis.set_minor_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}" if round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""))
    ax_err.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_err.set_xlim(-0.5, n_epochs + 0.5)  # no tick past the last epoch
    top_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_err.set_title("Validation error after each epoch", fontsize=FONT)
    for a in (ax, ax_err, top_axis):
        a.tick_params(labelsize=FONT - 1)
    for a in (ax, ax_err):
        a.xaxis.label.set_size(FONT), a.yaxis.label.set_size(FONT), a.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncol=min(len(results), 4), fontsize=FONT - 1, frameon=False)
    fig.suptitle(title, fontsize=FONT + 1)
    fig.get_layout_engine().set(h_pad=0.08)
    return fig
