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
LN10 = math.log(10)


def make_run(label: str, floor: float = 0.05, collapse: float = 0.0, model: str = "MLP", dataset: str = "plain",
             epochs: int = EPOCHS, spe: int = SPE, seed: int = 0) -> dict:
    """A hw3-shaped result: loss from ln 10 down to `floor`; or, with `collapse`, a first epoch at that loss, then ln 10."""
    rng = np.random.default_rng(seed)
    n = epochs * spe
    loss = (floor + (LN10 - floor) * np.exp(-np.arange(n) / (2 * spe))) * np.exp(rng.normal(0, 0.1, n))
    val = [LN10] + [floor * 1.5 + (LN10 - floor) * math.exp(-e / 2) for e in range(1, epochs + 1)]
    acc = [0.1] + [1 - floor / 5 - 0.5 * math.exp(-e) for e in range(1, epochs + 1)]
    if collapse:
        loss = np.full(n, LN10)
        loss[:spe] = collapse
        val, acc = [LN10, collapse] + [LN10] * (epochs - 1), [0.1] * (epochs + 1)
    train = [None] + [float(np.mean(loss[(e - 1) * spe:e * spe])) for e in range(1, epochs + 1)]
    return {"config": {"model": model, "dataset": dataset, "optimizer": "sgd", "seed": seed, "epochs": epochs,
                       "batch_size": 64},
            "label": label,
            "history": {"steps_per_epoch": spe, "step_loss": [float(v) for v in loss], "train_loss": train,
                        "val_loss": val, "val_acc": acc},
            "final": {"train_eval_acc": acc[-1], "val_acc": acc[-1], "test_acc": acc[-1], "val_loss": val[-1]},
            "wall_time_s": 10.0, "n_params": 1000}


def working_runs() -> list[dict]:
    return [make_run("SGD lr=0.01", 0.3, seed=1), make_run("SGD-Nesterov lr=0.01", 0.05, seed=2),
            make_run("Adam lr=0.01", 0.1, seed=3)]


def with_collapse() -> list[dict]:
    """The homework's four optimizers, Adam lr=1 collapsing with a loss of 1e3 during its first epoch."""
    rs = working_runs()
    return rs[:2] + [make_run("Adam lr=1", collapse=1e3, seed=4)] + rs[2:]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _draw(results, title="MLP", **kw) -> plt.Figure:
    fig = plots.plot_learning_curves(results, title, **kw)
    fig.canvas.draw()
    return fig


def _markers(ax, marker):
    return [line for line in ax.get_lines() if line.get_marker() == marker]


def test_two_panels_loss_per_step_and_validation_error_per_epoch():
    rs = working_runs()
    fig = _draw(rs)
    assert len(fig.axes) == 2
    loss, err = fig.axes
    assert [child.get_xlabel() for child in loss.child_axes] == ["epoch"]  # the epoch scale on top of the steps
    assert loss.get_xlabel() == "training step" and loss.get_yscale() == "log" and loss.get_xlim() == (0, EPOCHS * SPE)
    assert err.get_xlabel() == "epoch" and err.get_yscale() == "log"
    assert len(loss.get_lines()) == 2 * 3 + 1  # training and validation per run, and the ln 10 line
    assert len(err.get_lines()) == 3
    for line, r in zip(err.get_lines(), rs):  # validation error in %, before training and after every epoch
        assert list(line.get_xdata()) == list(range(EPOCHS + 1))
        np.testing.assert_allclose(line.get_ydata(), 100 * (1 - np.array(r["history"]["val_acc"])))
    val_lines = [line for line in loss.get_lines() if line.get_linestyle() == "--"]
    assert len(val_lines) == 3 and list(val_lines[0].get_xdata()) == [e * SPE for e in range(EPOCHS + 1)]
    np.testing.assert_allclose(val_lines[0].get_ydata(), rs[0]["history"]["val_loss"])


def test_titles_are_one_line_and_every_font_is_at_least_10_points():
    fig = _draw(with_collapse(), "MLP on KMNIST")
    assert fig._suptitle.get_text() == "MLP on KMNIST" and "\n" not in fig._suptitle.get_text()
    for ax in fig.axes:
        assert ax.get_title() and "\n" not in ax.get_title() and ax.title.get_fontsize() >= 10
    texts = [fig._suptitle, *fig.legends[0].get_texts()]
    for ax in fig.axes + [child for ax in fig.axes for child in ax.child_axes]:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        texts += [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    assert min(t.get_fontsize() for t in texts if t.get_text()) >= 10


def test_a_collapsed_run_is_clipped_marked_and_named_so_in_the_legend():
    rs = with_collapse()
    fig = _draw(rs)
    loss = fig.axes[0]
    top = loss.get_ylim()[1]
    assert top < 100  # the working runs keep the axis: a 1e3 spike does not squash them
    marks = _markers(loss, "^")
    assert len(marks) == 1 and marks[0].get_color() == loss.get_lines()[2 * 2].get_color()  # Adam lr=1's colour
    assert list(marks[0].get_ydata()) == [top] and 0 < marks[0].get_xdata()[0] <= SPE  # at the top, where it peaked
    assert [t.get_text() for t in fig.legends[0].get_texts()][2] == "Adam lr=1 (▲ clipped, peak 1e+03)"
    assert max(np.nanmax(line.get_ydata()) for line in loss.get_lines()) == pytest.approx(1e3)  # the data is all there


def test_the_legend_gives_the_unsmoothed_peak_and_the_chance_line_is_named():
    rs = working_runs()
    spike = make_run("Adam lr=1", collapse=LN10)  # flat at chance, but one step at 1e5
    spike["history"]["step_loss"][SPE] = 1e5  # after 50 steps: its 50-step mean is 2e3
    fig = _draw(rs[:2] + [spike])
    assert [t.get_text() for t in fig.legends[0].get_texts()][2] == "Adam lr=1 (▲ clipped, peak 1e+05)"
    assert max(np.nanmax(line.get_ydata()) for line in fig.axes[0].get_lines()[:6]) < 1e4  # the curve is a 50-step mean
    assert [t.get_text() for t in fig.axes[0].texts] == ["chance (ln 10)"]


def test_normal_runs_have_no_marker_and_fit_the_axis():
    fig = _draw(working_runs())
    loss = fig.axes[0]
    assert not _markers(loss, "^") and not any("clipped" in t.get_text() for t in fig.legends[0].get_texts())
    assert loss.get_ylim()[1] >= max(np.nanmax(line.get_ydata()) for line in loss.get_lines())


def test_the_collapse_is_decided_by_the_loss_not_the_label():
    fig = _draw([make_run("Adam lr=1", 0.05), make_run("SGD lr=0.01", collapse=1e4, seed=1)])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Adam lr=1", "SGD lr=0.01 (▲ clipped, peak 1e+04)"]
    fig = _draw([make_run("x", collapse=1e4), make_run("y", collapse=1e3, seed=1)])  # all collapsed: nothing to clip
    assert not _markers(fig.axes[0], "^") and fig.axes[0].get_ylim()[1] >= 1e4


def test_one_figure_legend_naming_every_run():
    rs = with_collapse()
    fig = _draw(rs)
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [r["label"] + " (▲ clipped, peak 1e+03)" * (i == 2)
                                                                 for i, r in enumerate(rs)]
    box = fig.legends[0].get_window_extent()
    assert all(not box.overlaps(ax.get_window_extent()) for ax in fig.axes)  # outside the panels
    assert _draw(rs, labels=["a", "b", "c", "d"]).legends[0].get_texts()[3].get_text() == "d"


def test_legend_names_model_and_data_when_the_runs_differ_in_them():
    rs = [make_run("SGD", model="MLP"), make_run("SGD", model="CNN", dataset="permuted", seed=1)]
    assert [t.get_text() for t in _draw(rs).legends[0].get_texts()] == ["MLP plain SGD", "CNN permuted SGD"]


@pytest.mark.parametrize("epochs", [20, 7, 1])
def test_epoch_ticks_are_whole_epochs(epochs):
    fig = _draw([make_run("a", 0.1, epochs=epochs), make_run("b", collapse=1e3, epochs=epochs, seed=1)])
    loss, err = fig.axes
    for ax in (err, *loss.child_axes):
        ticks = [t for t in ax.get_xticks() if 0 <= t <= epochs]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert labels and all(float(s.replace("\u2212", "-")).is_integer() for s in labels), labels
    assert loss.get_xlim() == (0, epochs * SPE)


def test_smooth_ignores_nulls_and_keeps_their_gaps():
    v = np.array([1.0, 3.0, np.nan, 5.0, 7.0])
    out = plots._smooth(v, 2)
    assert out[0] == 1.0 and out[1] == 2.0 and np.isnan(out[2]) and out[3] == 5.0 and out[4] == 6.0
    assert plots._smooth(np.array([]), 50).shape == (0,)
    np.testing.assert_allclose(plots._smooth(np.arange(6.0), 3), [0, 0.5, 1, 2, 3, 4])


def test_null_losses_leave_a_gap():
    r = make_run("a", 0.1)
    r["history"]["step_loss"][100:120] = [None] * 20  # as the cache stores a non-finite loss
    fig = _draw([r], smooth_steps=10)
    y = fig.axes[0].get_lines()[0].get_ydata()
    assert np.isnan(y[100:120]).all() and np.isfinite(y[:100]).all() and np.isfinite(y[120:]).all()


def synthetic_splits(permutation: data.RandomPermutation | None = None) -> data.KMNISTSplits:
    """Splits of fake characters (a fixed stroke pattern per class, plus noise), with the homework's preprocessing."""
    g = torch.Generator().manual_seed(0)
    templates = (torch.rand(10, 28, 28, generator=g) > 0.8).float() * 200
    labels = torch.arange(10).repeat(20)
    images = (templates[labels] + 55 * torch.rand(len(labels), 28, 28, generator=g)).to(torch.uint8)
    x = images.double() / 255
    return data.KMNISTSplits({"train": images}, {"train": labels}, float(x.mean()), float(x.std()), permutation)


def test_sample_grid_titles_say_what_is_shown():
    fig = plots.show_samples(synthetic_splits(), per_class=3, permuted=synthetic_splits(data.RandomPermutation(784, 0)))
    texts = [t.get_text() for t in fig.texts if t is not fig._suptitle]
    assert texts == ["after ToTensor + Normalize", "the same images, pixels permuted"]  # one panel title each, one line
    assert "after the transform (ink dark)" in fig._suptitle.get_text() and "3 samples per class" in fig._suptitle.get_text()
    assert min(t.get_fontsize() for t in [*fig.texts, fig._suptitle]) >= 10
    shown = [im for ax in fig.axes for im in ax.get_images()]
    assert len(shown) == 10 * 3 * 2 and len({im.get_clim() for im in shown}) == 1  # one grey scale for every image
    first = shown[0].get_array()  # class 0, first pick: the permuted panel shows the same image, pixels permuted
    assert sorted(np.asarray(first).ravel().tolist()) == sorted(np.asarray(shown[3].get_array()).ravel().tolist())
    assert [t.get_text() for t in plots.show_samples(synthetic_splits(), per_class=2).texts][0] == texts[0]
