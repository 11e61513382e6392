"""The progress line of a notebook cell: live bar, then one summary of the cell's runs (trained now or loaded)."""
import types

import IPython.display
import pytest

from hw3 import cache, progress


def test_summary_counts_the_runs_trained_now_and_loaded():
    assert progress.summary([True, True, False]) == "3 runs: 2 trained now, 1 loaded from results/"
    assert progress.summary([False] * 12) == "12 runs: 0 trained now, 12 loaded from results/"
    assert progress.summary([True]) == "1 run: 1 trained now, 0 loaded from results/"


class _Handle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, data, raw):
        self.shown.append(data["text/plain"])


@pytest.fixture
def kernel(monkeypatch):
    """A fake Jupyter kernel: its cell count, and the texts each display line showed, in order."""
    shell, lines = types.SimpleNamespace(execution_count=1), []

    def display(data, raw, display_id):
        lines.append([])
        return _Handle(lines[-1])

    monkeypatch.setattr(progress, "_shell", lambda: shell)
    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(progress._CellLine, "current", None)
    return shell, lines


def test_a_cell_shows_one_line_that_ends_as_the_summary_of_its_runs(kernel):
    shell, lines = kernel
    for run in range(2):
        bar = progress.progress_bar(10, f"run {run}")
        bar.update(10)
        bar.close()
        progress.note_run(trained=True)
    progress.note_run(trained=False)
    assert len(lines) == 1  # one display for the whole cell
    assert any(shown.startswith("1 run: 1 trained now, 0 loaded from results/ · run 1: 100%") for shown in lines[0])
    assert lines[0][-1] == "3 runs: 2 trained now, 1 loaded from results/"  # the saved state: no bar
    shell.execution_count = 2  # the next cell gets a line of its own
    progress.note_run(trained=False)
    assert len(lines) == 2 and lines[1] == ["1 run: 0 trained now, 1 loaded from results/"]


def test_cached_counts_each_run_in_the_cell_line(kernel, tmp_path):
    _, lines = kernel

    def run(width: int = 1):
        return {"history": [], "final": {}, "wall_time_s": 5.0, "width": width}, []

    cache.cached(run, results=tmp_path, width=1)
    cache.cached(run, results=tmp_path, width=1)
    assert lines[0][-1] == "2 runs: 1 trained now, 1 loaded from results/"


def test_outside_a_kernel_bars_go_to_stderr_and_nothing_is_displayed(monkeypatch, capsys):
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: pytest.fail("displayed outside a kernel"))
    progress.note_run(trained=True)
    bar = progress.progress_bar(3, "terminal")
    bar.update(3)
    bar.close()
    assert "terminal: 100%" in capsys.readouterr().err
