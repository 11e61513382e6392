"""Learning-curve figures and the sample grid, from synthetic result dicts: what a reader of the figure relies on."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hw3 import data, plots  # noqa: E402

EPOCHS, SPE = 20, 50


def make_run(label: str, floor: float = 0.05, spike: float = 0.0, diverge_at: int | None = None,
             model: str = "mlp", dataset: str = "plain", epochs: int = EPOCHS, spe: int = SPE, seed: int = 0) -> dict:
    """A hw3-shaped result: loss from ln 10 to `floor`, or a first-epoch `spike` then ln 10; nulls from `diverge_at`."""
    rng = np.random.default_rng(seed)
    n = epochs * spe
    t = np.arange(n)
    loss = floor + (math.log(10) - floor) * np.exp(-t / (2 * spe))
    loss *= np.exp(rng.normal(0, 0.15, n))
    if spike:
        loss = np.full(n, math.log(10)) * np.exp(rng.normal(0, 0.01, n))
        loss[:spe] = spike * np.exp(rng.normal(0, 1.0, spe))
    step_loss: list[float | None] = [float(v) for v in loss]
    val = [math.log(10)] + [float(floor * 1.5 + (math.log(10) - floor) * math.exp(-e * spe / (2 * spe)))
                            for e in range(1, epochs + 1)]
    if spike:
        val = [math.log(10), 3e3] + [math.log(10)] * (epochs - 1)
    train = [None] + [float(np.mean(loss[(e - 1) * spe:e * spe])) for e in range(1, epochs + 1)]
    acc = [0.1] + [0.1 if spike else 1 - floor / 5 - 0.5 * math.exp(-e) for e in range(1, epochs + 1)]
    epoch = list(range(epochs + 1))
    if diverge_at is not None:
        step_loss = step_loss[:diverge_at] + [None] * (n - diverge_at)
        last = diverge_at // spe  # the epochs completed before the divergence
        epoch, val, train, acc = epoch[:last + 1], val[:last + 1], train[:last + 1], acc[:last + 1]
    return {"config": {"model": model, "dataset": dataset, "optimizer": "sgd", "seed": seed, "epochs": epochs,
                       "batch_size": 64},
            "label": label,
            "history": {"steps_per_epoch": spe, "step_loss": step_loss, "epoch": epoch, "train_loss": train,
                        "val_loss": val, "val_acc": acc, "epoch_time_s": [1.0] * len(epoch),
                        "diverged": diverge_at is not None, "diverged_step": diverge_at},
            "final": {"train_acc": acc[-1], "val_acc": acc[-1], "test_acc": acc[-1], "val_loss": val[-1],
                      "diverged": diverge_at is not None},
            "wall_time_s": 10.0, "n_params": 1000}


def four_plus_collapsed() -> list[dict]:
    """The homework's five optimizers, one of them collapsing after a loss spike of about 1e5."""
    return [make_run("SGD lr=0.01", 0.3, seed=1), make_run("SGD-Nesterov lr=0.01", 0.05, seed=2),
            make_run("Adam lr=0.01", 0.1, seed=3), make_run("Adam lr=1", spike=1e5, seed=4),
            make_run("AdamW lr=0.001", 0.02, seed=5)]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _main_axes(fig: plt.Figure) -> list[plt.Axes]:
    """The figure's visible panels (the epoch scales along the top of the steps panels are their child axes)."""
    return [ax for ax in fig.axes if ax.get_visible()]


def _lines_ymax(ax: plt.Axes) -> float:
    ys = [np.nanmax(np.asarray(line.get_ydata(), float)) for line in ax.get_lines()
          if np.isfinite(np.asarray(line.get_ydata(), float)).any()]
    return max(ys)


def test_collapsed_run_gets_its_own_panel_and_the_working_axes_stay_readable():
    rs = four_plus_collapsed()
    assert plots.collapsed_runs(rs) == [False, False, False, True, False]
    fig = plots.plot_learning_curves(rs, "MLP")
    fig.canvas.draw()
    steps, epochs, err, own = fig.axes[:4]
    for ax in (steps, epochs):  # every run on one plot; the 1e5 spike clipped, so the working runs stay readable
        assert ax.get_ylim()[1] < 100 and _lines_ymax(ax) > 1e4
        assert len(ax.get_lines()) == 2 * 5 + 1  # 5 runs, training and validation, and the ln 10 line
        assert "Adam lr=1: clipped at the top of this axis" in ax.get_title()
    assert own.get_ylim()[1] > 1e4 and _lines_ymax(own) > 1e4  # the collapsed run, on its own scale
    assert "Adam lr=1 (collapsed)" in own.get_title() and "own log scales" in own.get_title()
    assert own.get_xscale() == "log"  # a collapse within the first steps stays visible
    assert err.get_yscale() == "log" and len(err.get_lines()) == 5  # validation error: every run, chance level too


def test_collapse_is_decided_by_the_data_not_the_label():
    rs = [make_run("Adam lr=1", 0.05), make_run("SGD lr=0.01", spike=1e6, seed=1)]
    assert plots.collapsed_runs(rs) == [False, True]
    assert plots.collapsed_runs(rs, threshold=1e7) == [False, False]
    assert plots.collapsed_runs([make_run("x", spike=1e5)]) == [False]  # all collapsed: nothing to set apart


def test_diverged_run_with_a_null_tail_goes_to_its_own_panel_and_is_marked():
    rs = [make_run("SGD lr=0.01", 0.3), make_run("SGD lr=1e6", diverge_at=3 * SPE + 7, seed=1)]
    assert plots.collapsed_runs(rs) == [False, True]
    fig = plots.plot_learning_curves(rs)
    own = fig.axes[3]
    assert any("diverged at step 157" in t.get_text() for t in own.texts)
    smoothed = own.get_lines()[0].get_ydata()
    assert np.isfinite(smoothed[:157]).all() and np.isnan(smoothed[157:]).all()  # no average across the nulls


def test_one_shared_legend_outside_the_axes_that_says_which_style_is_which():
    fig = plots.plot_learning_curves(four_plus_collapsed(), "MLP")
    fig.canvas.draw()
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) == 5 + 3 and "Adam lr=1 (clipped; own panel)" in texts
    assert any("solid" in t and "training" in t for t in texts)
    assert any("dashed" in t and "validation" in t for t in texts)
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 9
    box = legend.get_window_extent()
    for ax in _main_axes(fig):
        assert not box.overlaps(ax.get_window_extent()), ax.get_title()
        assert box.y1 <= ax.get_window_extent().y0  # below every panel, within the figure
    assert box.y0 >= 0


@pytest.mark.parametrize("epochs", [20, 7, 1])
def test_epoch_ticks_are_whole_epochs_within_those_trained(epochs):
    rs = [make_run("a", 0.1, epochs=epochs), make_run("b", spike=1e5, epochs=epochs, seed=1)]
    fig = plots.plot_learning_curves(rs)
    fig.canvas.draw()
    epoch_axes = [fig.axes[1], fig.axes[2]] + [child for ax in fig.axes for child in ax.child_axes]
    assert len(epoch_axes) == 3  # epochs, validation error, and the epoch scale on top of the steps panel
    for ax in epoch_axes:
        ticks = [t for t in ax.get_xticks()]
        assert ticks and all(float(t).is_integer() and 0 <= t <= epochs for t in ticks), ticks
        assert max(ticks) == epochs or epochs - max(ticks) < ticks[1] - ticks[0]
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert all(0 <= float(s.replace("\u2212", "-")) <= epochs for s in labels), labels
    assert fig.axes[0].get_xlim() == (0, epochs * SPE)


def test_every_panel_has_a_title_and_readable_ticks():
    for fig in (plots.plot_learning_curves(four_plus_collapsed(), "MLP"),
                plots.plot_learning_curves(four_plus_collapsed()[:2])):
        fig.canvas.draw()
        panels = _main_axes(fig)
        assert len(panels) in (3, 4) and all(ax.get_title() for ax in panels)
        assert "Loss against training steps" in panels[0].get_title() and "moving average" in panels[0].get_title()
        assert "Loss against epochs" in panels[1].get_title()
        for ax in fig.axes + [child for ax in fig.axes for child in ax.child_axes]:
            sizes = [t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
            assert sizes and min(sizes) >= 9, ax
    assert len(_main_axes(plots.plot_learning_curves(four_plus_collapsed()[:2]))) == 3  # no empty collapsed panel


def test_permuted_figure_one_row_per_model_one_legend():
    plain = [make_run("SGD-Nesterov", 0.05, model=m) for m in ("mlp", "cnn")]
    perm = [make_run("SGD-Nesterov", 0.2, model=m, dataset="permuted", seed=1) for m in ("mlp", "cnn")]
    fig = plots.plot_permuted(plain, perm)
    fig.canvas.draw()
    panels = _main_axes(fig)
    assert len(panels) == 6 and all(ax.get_title() for ax in panels)
    assert [sub._suptitle.get_text().split(",")[0] for sub in fig.subfigs] == ["MLP", "CNN"]
    assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["plain", "permuted"]
    box = fig.legends[0].get_window_extent()
    assert all(not box.overlaps(ax.get_window_extent()) for ax in panels)


def test_caller_axes_are_kept_compatible():
    fig, axes = plt.subplots(1, 3)
    out = plots.plot_learning_curves(four_plus_collapsed()[:2], "row", 10, ["a", "b"], axes)
    assert out is fig and axes[0].get_title().startswith("row: Loss against training steps")
    assert axes[0].get_legend() is not None and axes[2].get_yscale() == "log"


def test_smooth_ignores_nulls_and_keeps_their_gaps():
    v = np.array([1.0, 3.0, np.nan, 5.0, 7.0])
    out = plots._smooth(v, 2)
    assert out[0] == 1.0 and out[1] == 2.0 and np.isnan(out[2]) and out[3] == 5.0 and out[4] == 6.0
    assert plots._smooth(np.array([]), 50).shape == (0,)


def synthetic_splits(permutation: data.RandomPermutation | None = None) -> data.KMNISTSplits:
    """Splits of fake characters (a fixed stroke pattern per class, plus noise), with the homework's preprocessing."""
    g = torch.Generator().manual_seed(0)
    templates = (torch.rand(10, 28, 28, generator=g) > 0.8).float() * 200
    labels = torch.arange(10).repeat(20)
    images = (templates[labels] + 55 * torch.rand(len(labels), 28, 28, generator=g)).to(torch.uint8)
    x = images.double() / 255
    return data.KMNISTSplits({"train": images}, {"train": labels},
                             data.Preprocess(float(x.mean()), float(x.std()), permutation))


def test_sample_grid_titles_say_what_is_shown():
    fig = plots.show_samples(synthetic_splits(), per_class=3, permuted=synthetic_splits(data.RandomPermutation(784, 0)))
    texts = [t.get_text() for t in fig.texts]
    plain_title = [t for t in texts if "after ToTensor + Normalize\n" in t]
    assert len(plain_title) == 1 and "what the model sees" in plain_title[0]
    assert any("RandomPermutation" in t for t in texts)
    assert not any("as loaded" in t for t in texts)
    shown = [im for ax in fig.axes for im in ax.get_images()]
    assert len(shown) == 10 * 3 * 2 and len({im.get_clim() for im in shown}) == 1  # one grey scale for every image
