"""Figures and tables: sample grids, learning curves, summary tables, confusion matrix, mistakes, class shift."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator
import numpy as np
import torch

from .data import CLASSES, KMNISTSplits

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
    """A grid of `per_class` samples per class, labelled; with `permuted`, the same samples permuted beside them."""
    picks = _pick_per_class(splits.labels[split], per_class, seed)
    panels = [("as loaded", splits)] + ([("after RandomPermutation", permuted)] if permuted is not None else [])
    fig, axes = plt.subplots(len(CLASSES), per_class * len(panels), figsize=(1.0 * per_class * len(panels) + 1.2, 10.5),
                             squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
    for p, (title, s) in enumerate(panels):
        # what the model sees (normalised, maybe permuted), shown in grey levels
        imgs = s.preprocess.batch(s.images[split][picks.flatten()]).view(len(CLASSES), per_class, 28, 28)
        for c in range(len(CLASSES)):
            for j in range(per_class):
                ax = axes[c, p * per_class + j]
                ax.imshow(imgs[c, j].numpy(), cmap="gray_r")
                ax.set_xticks([]), ax.set_yticks([])
                if j == 0 and p == 0:
                    ax.set_ylabel(class_name(c), rotation=0, ha="right", va="center", fontsize=12)
        axes[0, p * per_class + per_class // 2].set_title(title, fontsize=12)
    fig.suptitle(f"KMNIST {split} split: {per_class} samples per class", y=0.92)
    return fig


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Moving average (window clipped to the data) so that per-step curves are readable."""
    window = max(1, min(window, len(values)))
    c = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    out[window - 1:] = (c[window:] - c[:-window]) / window
    out[:window - 1] = c[1:window] / np.arange(1, window)
    return out


def _nan_array(values: list) -> np.ndarray:
    """History values as floats, with the nulls of non-finite values as NaN (matplotlib leaves a gap)."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def run_labels(results: list[dict]) -> list[str]:
    """Legend names: the optimizer when all runs share model and data, else model, data and optimizer."""
    if len({(r["config"]["model"], r["config"]["dataset"]) for r in results}) == 1:
        return [r["label"] for r in results]
    return [f"{r['config']['model'].upper()} {r['config']['dataset']} {r['label']}" for r in results]


def plot_learning_curves(results: list[dict], title: str = "", smooth_steps: int = 50,
                         labels: list[str] | None = None, ax_pair=None) -> plt.Figure:
    """Left: the training loss of every step (faint) and its moving average over `smooth_steps` steps (solid),
    and the validation loss after every epoch (dashed, circles), log scale, steps below and epochs above.
    Right: the validation error per epoch on a log scale, so that runs near chance and runs near 1% both show."""
    if ax_pair is None:
        fig, (ax, ax_err) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 2]})
    else:
        ax, ax_err = ax_pair
        fig = ax.figure
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    spe = results[0]["history"]["steps_per_epoch"]
    labels = labels or run_labels(results)
    for i, r in enumerate(results):
        h, color, name = r["history"], colors[i % len(colors)], labels[i]
        step_loss = _nan_array(h["step_loss"])
        steps = np.arange(1, len(step_loss) + 1)
        ax.plot(steps, step_loss, color=color, alpha=0.12, lw=0.5)
        ax.plot(steps, _smooth(step_loss, smooth_steps), color=color, lw=1.5, label=f"{name}: train")
        val = _nan_array(h["val_loss"])
        ax.plot(np.array(h["epoch"]) * spe, val, "--o", color=color, ms=3, lw=1.2, label=f"{name}: validation")
        err = 100 * (1 - _nan_array(h["val_acc"]))
        ax_err.plot(h["epoch"], err, "--o", color=color, ms=3, label=name)
        if h["diverged"]:
            x = h["diverged_step"] or 1
            ax.axvline(x, color=color, ls=":", lw=1)
            ax.annotate("diverged (non-finite loss)", (x, 0.98), xycoords=("data", "axes fraction"),
                        color=color, rotation=90, va="top", ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-4)  # per-step losses of nearly fitted batches go lower: noise that would flatten the rest
    ax.set_xlabel(f"training step (batch of {r['config'].get('batch_size', 64)}); "
                  f"solid: moving average over {smooth_steps} steps, faint: every step")
    ax.set_ylabel("cross-entropy loss (log scale, cut at 1e-4)")
    top = ax.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    top.set_xlabel("epoch (dashed: validation loss after each epoch)")
    top.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax_err.set_yscale("log")
    ax_err.set_xlabel("epoch")
    ax_err.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax_err.set_ylabel("validation error, % (log scale)")
    ax_err.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_err.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax_err.yaxis.set_minor_formatter(plt.NullFormatter())
    ax_err.grid(True, which="both", alpha=0.3)
    ax_err.legend(fontsize=7)
    ax_err.set_title("validation error = 100% - accuracy")
    if title:
        ax.set_title(title) if ax_pair is not None else fig.suptitle(title)
    if ax_pair is None:
        fig.tight_layout()
    return fig


def plot_permuted(plain: list[dict], permuted: list[dict]) -> plt.Figure:
    """One row per model (plain vs permuted pixels, SGD-Nesterov): the learning curves of plot_learning_curves."""
    fig, axes = plt.subplots(len(plain), 2, figsize=(14, 4.6 * len(plain)), gridspec_kw={"width_ratios": [3, 2]},
                             squeeze=False)
    for row, (a, b) in enumerate(zip(plain, permuted)):
        plot_learning_curves([a, b], f"{a['config']['model'].upper()}, SGD-Nesterov", labels=["plain", "permuted"],
                             ax_pair=axes[row])
    fig.tight_layout()
    return fig


def _fmt(v, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def run_stats(r: dict) -> dict:
    """What the answers compare, from one result: final, best and mean-of-the-last-5-epochs validation accuracy,
    the epoch of the lowest validation loss and how far the final loss lies above it, accuracy after epoch 1."""
    h, f = r["history"], r["final"]  # the fields every history has, the bonus's included
    accs = [a for a in h["val_acc"][1:] if a is not None]
    losses = [(v, e) for v, e in zip(h["val_loss"], h["epoch"]) if v is not None and e > 0]
    best_loss, best_ep = min(losses) if losses else (None, None)
    return {"epoch1": accs[0] if accs else None, "best": max(accs) if accs else None,
            "last5": sum(accs[-5:]) / len(accs[-5:]) if accs else None, "final": f["val_acc"],
            "min_loss": best_loss, "min_loss_epoch": best_ep,
            "loss_rise": (f["val_loss"] / best_loss - 1) if best_loss and f["val_loss"] is not None else None}


def summary_table(results: list[dict], labels: list[str] | None = None) -> str:
    """Per run (accuracies in %): validation after epoch 1, best, mean of the last 5 epochs and final; the
    epoch of the lowest validation loss and the final loss's rise above it; training accuracy (eval mode),
    test accuracy, training time."""
    labels = labels or run_labels(results)
    width = max(22, *map(len, labels))
    head = (f"{'run':{width}} {'val@1':>6} {'best':>6} {'last5':>6} {'final':>6} {'minL':>6} {'minL@':>5} {'L rise':>7} "
            f"{'train':>6} {'test':>6} {'time':>6}")
    rows = [head, "-" * len(head)]
    for r, name in zip(results, labels):
        s, f = run_stats(r), r["final"]
        rise = "-" if s["loss_rise"] is None else f"{100 * s['loss_rise']:+.0f}%"
        rows.append(f"{name + (' (diverged)' if f['diverged'] else ''):{width}} {_pct(s['epoch1']):>6} {_pct(s['best']):>6} "
                    f"{_pct(s['last5']):>6} {_pct(s['final']):>6} {_fmt(s['min_loss'], '.3f'):>6} "
                    f"{_fmt(s['min_loss_epoch'], 'd'):>5} {rise:>7} "
                    f"{_pct(f.get('train_acc')):>6} {_pct(f['test_acc']):>6} {r['wall_time_s']:5.0f}s")
    rows.append(f"(accuracies in %: validation after epoch 1, best and mean of the last 5 epochs, final; minL: the "
                f"lowest validation loss, minL@: its epoch, L rise: the final validation loss above it; train: the "
                f"training split evaluated after training, in eval mode; test: the test split; time: training)")
    return "\n".join(rows)


def plot_confusion(y_true: torch.Tensor, y_pred: torch.Tensor, title: str = "") -> plt.Figure:
    """Confusion matrix (counts, rows = true class), class names on both axes."""
    n = len(CLASSES)
    cm = torch.bincount(y_true * n + y_pred, minlength=n * n).view(n, n).numpy()
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(np.log1p(cm), cmap="Blues")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    names = [class_name(c) for c in range(n)]
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    return fig


def compare_runs(a: list[dict], b: list[dict], name_a: str, name_b: str) -> str:
    """Two lists of runs matched by position (e.g. MLP and CNN per optimizer, or seed 0 and seed 1):
    validation and test accuracy of each, and the difference b - a in points."""
    if len(a) != len(b):
        raise ValueError(f"expected two lists of runs of one length, got {len(a)} and {len(b)}")
    head = (f"{'optimizer':22} {name_a + ' val':>10} {name_b + ' val':>10} {'diff':>6} | "
            f"{name_a + ' test':>10} {name_b + ' test':>10} {'diff':>6}")
    out = [head, "-" * len(head)]
    for ra, rb in zip(a, b):
        fa, fb = ra["final"], rb["final"]
        out.append(f"{ra['label']:22} {_pct(fa['val_acc']):>10} {_pct(fb['val_acc']):>10} "
                   f"{100 * (fb['val_acc'] - fa['val_acc']):+6.2f} | {_pct(fa['test_acc']):>10} {_pct(fb['test_acc']):>10} "
                   f"{100 * (fb['test_acc'] - fa['test_acc']):+6.2f}")
    return "\n".join(out)


def error_summary(y_true: torch.Tensor, y_pred: torch.Tensor, top: int = 5) -> str:
    """The errors per true class and the most frequent confusions, as text (what the confusion matrix shows)."""
    n = len(CLASSES)
    cm = torch.bincount(y_true * n + y_pred, minlength=n * n).view(n, n)
    wrong = cm.sum(1) - cm.diag()
    per_class = ", ".join(f"{class_name(c)} {int(wrong[c])}" for c in torch.argsort(wrong, descending=True, stable=True).tolist())
    off = cm.clone()
    off.fill_diagonal_(0)
    order = torch.argsort(off.flatten(), descending=True, stable=True)[:top].tolist()
    confusions = ", ".join(f"{class_name(i // n)} -> {class_name(i % n)} {int(off.flatten()[i])}" for i in order)
    return (f"{int(wrong.sum())} errors of {len(y_true)}; per true class: {per_class}\n"
            f"most frequent confusions (true -> predicted): {confusions}")


def bonus_table(final: dict, baseline: dict, n_test: int) -> str:
    """2.6's answer in one table: the homework CNN of 2.3 and the final model, validation, training and test accuracy."""
    head = f"{'model':40} {'epochs':>6} {'val':>6} {'val+TTA':>7} {'train':>6} {'test':>6} {'errors':>6} {'time':>6} {'params':>7}"
    out = [head, "-" * len(head)]
    for name, r in (("homework CNN, SGD-Nesterov (2.3)", baseline), ("final: " + final["label"], final)):
        f = r["final"]
        errors = round((1 - f["test_acc"]) * n_test)
        out.append(f"{name:40} {r['config']['epochs']:6d} {_pct(f['val_acc']):>6} {_pct(f.get('val_acc_tta')):>7} "
                   f"{_pct(f.get('train_acc')):>6} {_pct(f['test_acc']):>6} {errors:6d} {r['wall_time_s']:5.0f}s {r['n_params']:7d}")
    f = final["final"]
    decay = final["history"].get("ema_decay_reached")
    out.append(f"(accuracies in %; the final model's test accuracy {'with' if f['use_tta'] else 'without'} TTA, as chosen on "
               f"validation; train: training images without augmentation, eval mode"
               + (f"; EMA decay reached at the last step: {decay:.4f}" if decay is not None else "") + ")")
    return "\n".join(out)


def class_means(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean image of each class, shape (classes, H, W), with uint8 pixels scaled to [0, 1]."""
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"expected images (N, H, W) and labels (N,), got {tuple(images.shape)} and {tuple(labels.shape)}")
    present = set(labels.unique().tolist())
    if present != set(range(len(CLASSES))):
        raise ValueError(f"every class 0-{len(CLASSES) - 1} needs at least one image, got classes {sorted(present)}")
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return torch.stack([x[labels == c].mean(0) for c in range(len(CLASSES))])


def _split_class_means(splits: KMNISTSplits) -> dict[str, torch.Tensor]:
    return {s: class_means(splits.images[s], splits.labels[s]) for s in ("train", "val", "test")}


def class_shift(splits: KMNISTSplits, means: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Per class, the L2 distance of the validation and of the test mean image from the training mean image."""
    means = means or _split_class_means(splits)
    return {s: (means[s] - means["train"]).flatten(1).norm(dim=1) for s in ("val", "test")}


def plot_class_shift(splits: KMNISTSplits) -> plt.Figure:
    """Mean image of each class in train, validation and test, and the test-minus-train difference."""
    means = _split_class_means(splits)
    dist = class_shift(splits, means)
    rows = [("train", means["train"], "gray_r"), ("validation", means["val"], "gray_r"), ("test", means["test"], "gray_r"),
            ("test - train", means["test"] - means["train"], "RdBu_r")]
    fig, axes = plt.subplots(len(rows), len(CLASSES), figsize=(1.45 * len(CLASSES), 1.45 * len(rows) + 0.8), squeeze=False,
                             layout="constrained")
    for r, (name, imgs, cmap) in enumerate(rows):
        for c in range(len(CLASSES)):
            ax = axes[r, c]
            lim = (-0.5, 0.5) if cmap == "RdBu_r" else (0, 1)
            im = ax.imshow(imgs[c].numpy(), cmap=cmap, vmin=lim[0], vmax=lim[1])
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(class_name(c), fontsize=11)
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
            if r == len(rows) - 1:
                ax.set_xlabel(f"val {dist['val'][c]:.2f}\ntest {dist['test'][c]:.2f}", fontsize=9)
        if r == len(rows) - 2:  # one grey scale for the three rows of means
            fig.colorbar(im, ax=axes[:r + 1].ravel().tolist(), label="pixel value (0-1)", fraction=0.015, pad=0.01)
        if r == len(rows) - 1:
            fig.colorbar(im, ax=axes[r].tolist(), label="test - train", fraction=0.015, pad=0.01)
    fig.suptitle("Mean image per class; below: L2 distance of the val / test mean from the train mean")
    return fig


def class_shift_table(splits: KMNISTSplits) -> str:
    """Per class, the distance of the validation and of the test mean image from the training mean (as text)."""
    d = class_shift(splits)
    rows = [f"{'class':10} {'val':>6} {'test':>6}   (L2 distance of the class's mean image from its training mean)"]
    rows += [f"{class_name(c):10} {float(d['val'][c]):6.2f} {float(d['test'][c]):6.2f}" for c in range(len(CLASSES))]
    rows.append(f"{'range':10} {float(d['val'].min()):.2f}-{float(d['val'].max()):.2f} "
                f"{float(d['test'].min()):.2f}-{float(d['test'].max()):.2f}")
    return "\n".join(rows)


def collapse_text(report: dict) -> str:
    """hw3.experiments.collapse_report as a few lines of text."""
    dead = ", ".join(f"ReLU layer {i + 1}: {100 * d:.0f}% of {n}"
                     for i, (d, n) in enumerate(zip(report["dead_fraction"], report["hidden_units"])))
    counts = report["predicted_classes"]
    top = max(range(len(counts)), key=counts.__getitem__)
    return (f"{report['label']}, {report['epochs']} epochs, on the validation split:\n"
            f"  dead units (a neuron, or a CNN channel, whose ReLU outputs 0 for every image): {dead}\n"
            f"  predicts {class_name(top)} for {counts[top]} of {sum(counts)} images; "
            f"{sum(c > 0 for c in counts)} classes predicted at all\n"
            f"  mean predicted probabilities: {' '.join(f'{p:.3f}' for p in report['mean_probs'])} (uniform: 0.100)\n"
            f"  images that get exactly the same output: {100 * report['identical_output_share']:.2f}%; largest deviation "
            f"of one image's probabilities from the mean: {report['max_deviation_from_mean_probs']:.3f}\n"
            f"  val loss {report['val_loss']:.4f} (uniform guess: ln 10 = {math.log(10):.4f}), val acc {_pct(report['val_acc'])}%, "
            f"largest training step loss {_fmt(report['max_step_loss'], '.3g')}")
