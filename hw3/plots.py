"""Figures and tables: sample grids, learning curves, summary tables, confusion matrix, mistakes, class shift."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
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
                         labels: list[str] | None = None) -> plt.Figure:
    """Training (solid, per step, smoothed) and validation (dashed, per epoch) loss of each run, log scale,
    with steps on the bottom axis and epochs on the top one; validation accuracy in a second panel."""
    fig, (ax, ax_acc) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 2]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    spe = results[0]["history"]["steps_per_epoch"]
    labels = labels or run_labels(results)
    for i, r in enumerate(results):
        h, color, name = r["history"], colors[i % len(colors)], labels[i]
        step_loss = _nan_array(h["step_loss"])
        steps = np.arange(1, len(step_loss) + 1)
        ax.plot(steps, step_loss, color=color, alpha=0.15, lw=0.5)
        ax.plot(steps, _smooth(step_loss, smooth_steps), color=color, lw=1.5, label=f"{name} train")
        val = _nan_array(h["val_loss"])
        ax.plot(np.array(h["epoch"]) * spe, val, "--o", color=color, ms=3, lw=1.2, label=f"{name} val")
        acc = _nan_array(h["val_acc"])
        ax_acc.plot(h["epoch"], 100 * acc, "--o", color=color, ms=3, label=name)
        if h["diverged"]:
            x = h["diverged_step"] or 1
            ax.axvline(x, color=color, ls=":", lw=1)
            ax.annotate("diverged (non-finite loss)", (x, 0.98), xycoords=("data", "axes fraction"),
                        color=color, rotation=90, va="top", ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("training step (batch of 64)")
    ax.set_ylabel("cross-entropy loss (log scale)")
    top = ax.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    top.set_xlabel("epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy (%)")
    ax_acc.grid(True, alpha=0.3)
    finite = [100 * a for r in results for a in r["history"]["val_acc"][1:] if a is not None]
    if finite:  # zoom on the useful range; runs that stay below it are named in the legend
        bottom = max(0.0, max(finite) - 15)
        ax_acc.set_ylim(bottom, 100)
        for line, r in zip(ax_acc.get_lines(), results):
            acc = r["final"]["val_acc"]
            if acc is not None and 100 * acc < bottom:
                line.set_label(f"{line.get_label()} ({100 * acc:.1f}%, below the axis)")
    ax_acc.legend(fontsize=8)
    ax_acc.set_title("validation accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _fmt(v, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def summary_table(results: list[dict]) -> str:
    """A fixed-width table: final train/val loss, val/test accuracy, time, parameters, per run."""
    head = f"{'model':6} {'data':8} {'optimizer':22} {'train loss':>10} {'val loss':>9} {'val acc':>8} {'test acc':>8} {'time':>7} {'params':>7}"
    rows = [head, "-" * len(head)]
    for r in results:
        c, f = r["config"], r["final"]
        name = r["label"] + (" (diverged)" if f["diverged"] else "")
        rows.append(f"{c['model']:6} {c['dataset']:8} {name:22} {_fmt(f['train_loss'], '10.4f')} {_fmt(f['val_loss'], '9.4f')} "
                    f"{_pct(f['val_acc']):>8} {_pct(f['test_acc']):>8} "
                    f"{r['wall_time_s']:6.0f}s {r['n_params']:7d}")
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


def show_mistakes(images: torch.Tensor, y_true: torch.Tensor, y_pred: torch.Tensor, n: int = 24, cols: int = 8) -> plt.Figure:
    """The first `n` misclassified images (uint8, N x 28 x 28) with true and predicted class names."""
    wrong = torch.nonzero(y_true != y_pred).flatten()[:n]
    rows = max(1, math.ceil(len(wrong) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong.tolist()):
        ax.imshow(images[i].numpy(), cmap="gray_r")
        ax.set_title(f"true {class_name(int(y_true[i]))}\npred {class_name(int(y_pred[i]))}", fontsize=8)
    fig.suptitle(f"{len(wrong)} of {int((y_true != y_pred).sum())} misclassified test images")
    fig.tight_layout()
    return fig


def run_facts(results: list[dict]) -> str:
    """Plain-text facts the written answers rest on: accuracy after one epoch, the largest step loss, best
    validation epoch, how far the validation loss rose from its minimum, the validation-test gap."""
    lines = []
    for r, name in zip(results, run_labels(results)):
        h, f = r["history"], r["final"]
        accs = [a if a is not None else -1 for a in h["val_acc"]]
        losses = [v if v is not None else float("inf") for v in h["val_loss"]]
        best_acc_ep = max(range(len(accs)), key=accs.__getitem__)
        best_loss_ep = min(range(len(losses)), key=losses.__getitem__)
        line = (f"{name}: val acc after epoch 1 {_pct(h['val_acc'][1] if len(h['val_acc']) > 1 else None)}, "
                f"best {_pct(h['val_acc'][best_acc_ep])} at epoch {h['epoch'][best_acc_ep]}, final {_pct(f['val_acc'])}; "
                f"min val loss {_fmt(losses[best_loss_ep], '.4f')} at epoch {h['epoch'][best_loss_ep]}, "
                f"final {_fmt(f['val_loss'], '.4f')}")
        if f["val_loss"] is not None and math.isfinite(losses[best_loss_ep]) and losses[best_loss_ep] > 0:
            line += f" ({100 * (f['val_loss'] / losses[best_loss_ep] - 1):+.0f}% from the min)"
        if f["train_loss"] is not None:
            line += f"; final train loss {f['train_loss']:.2g}"
        finite_steps = [v for v in h["step_loss"] if v is not None]
        if finite_steps:
            line += f"; largest step loss {max(finite_steps):.3g}"
        if f["test_acc"] is not None and f["val_acc"] is not None:
            line += f"; test - val = {100 * (f['test_acc'] - f['val_acc']):+.2f} points"
        if f["diverged"]:
            line += f"; DIVERGED at step {h['diverged_step']}"
        lines.append(line)
    return "\n".join(lines)


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


def ablation_table(baseline: dict, rows: list[dict], final: dict) -> str:
    """Bonus ablation: the homework CNN, each added idea (validation only), then the final model with its test accuracy."""
    head = f"{'configuration':44} {'epochs':>6} {'val acc':>8} {'val+TTA':>8} {'test acc':>8} {'time':>6} {'params':>7}"
    out = [head, "-" * len(head)]
    b = baseline
    out.append(f"{'homework CNN, SGD-Nesterov (2.3)':44} {b['config']['epochs']:6d} {_pct(b['final']['val_acc']):>8} "
               f"{'-':>8} {'-':>8} {b['wall_time_s']:5.0f}s {b['n_params']:7d}")
    for r in rows:
        f = r["final"]
        out.append(f"{r['label']:44} {r['config']['epochs']:6d} {_pct(f['val_acc']):>8} {_pct(f['val_acc_tta']):>8} "
                   f"{'-':>8} {r['wall_time_s']:5.0f}s {r['n_params']:7d}")
    f, c = final["final"], final["config"]
    members = c["members"]
    name = (f"final: all of the above{' + TTA' if f['use_tta'] else ''}, "
            + (f"{members} x width {c['width']}" if members > 1 else f"width {c['width']}"))
    out.append(f"{name:44} {c['epochs']:6d} {_pct(f['val_acc']):>8} {_pct(f['val_acc_tta']):>8} "
               f"{_pct(f['test_acc']):>8} {final['wall_time_s']:5.0f}s {final['n_params']:7d}")
    if final["members"]:  # per-network results, recorded for ensembles only
        alone = ", ".join(f"{_pct(m['val_acc'])} ({_pct(m['val_acc_tta'])})" for m in final["members"])
        out.append(f"(each of the {members} networks alone, val acc (val+TTA): {alone})")
    out.append(f"(test accuracy of the final model only, evaluated once{' with TTA' if f['use_tta'] else ''}; "
               f"trained on {final['device']})")
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
    fig, axes = plt.subplots(len(rows), len(CLASSES), figsize=(1.3 * len(CLASSES), 1.45 * len(rows) + 0.6), squeeze=False)
    for r, (name, imgs, cmap) in enumerate(rows):
        for c in range(len(CLASSES)):
            ax = axes[r, c]
            lim = (-0.5, 0.5) if cmap == "RdBu_r" else (0, 1)
            ax.imshow(imgs[c].numpy(), cmap=cmap, vmin=lim[0], vmax=lim[1])
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(class_name(c), fontsize=11)
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
            if r == len(rows) - 1:
                ax.set_xlabel(f"val {dist['val'][c]:.2f}\ntest {dist['test'][c]:.2f}", fontsize=9)
    fig.suptitle("Mean image per class; below: L2 distance of the val / test mean from the train mean", y=0.99)
    fig.tight_layout()
    return fig


def class_shift_table(splits: KMNISTSplits) -> str:
    """Per class, the distance of the validation and of the test mean image from the training mean (as text)."""
    d = class_shift(splits)
    rows = [f"{'class':10} {'val':>6} {'test':>6}"]
    rows += [f"{class_name(c):10} {float(d['val'][c]):6.2f} {float(d['test'][c]):6.2f}" for c in range(len(CLASSES))]
    rows.append(f"{'range':10} {float(d['val'].min()):.2f}-{float(d['val'].max()):.2f} "
                f"{float(d['test'].min()):.2f}-{float(d['test'].max()):.2f}")
    return "\n".join(rows)


def collapse_text(report: dict) -> str:
    """hw3.experiments.collapse_report as a few lines of text."""
    dead = ", ".join(f"hidden layer {i + 1}: {100 * d:.0f}% of {n}"
                     for i, (d, n) in enumerate(zip(report["dead_fraction"], report["hidden_units"])))
    counts = report["predicted_classes"]
    top = max(range(len(counts)), key=counts.__getitem__)
    return (f"{report['label']}, {report['epochs']} epochs, on the validation split:\n"
            f"  dead ReLUs (output 0 for every image): {dead}\n"
            f"  predicts {class_name(top)} for {counts[top]} of {sum(counts)} images; "
            f"{sum(c > 0 for c in counts)} classes predicted at all\n"
            f"  mean predicted probabilities: {' '.join(f'{p:.3f}' for p in report['mean_probs'])} (uniform: 0.100)\n"
            f"  images that get exactly the same output: {100 * report['identical_output_share']:.2f}%; largest deviation "
            f"of one image's probabilities from the mean: {report['max_deviation_from_mean_probs']:.3f}\n"
            f"  val loss {report['val_loss']:.4f} (uniform guess: ln 10 = {math.log(10):.4f}), val acc {_pct(report['val_acc'])}, "
            f"largest training step loss {_fmt(report['max_step_loss'], '.3g')}")
