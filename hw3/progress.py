"""Progress in a saved notebook: one text line per cell that ends as a summary of the cell's runs; tqdm in a terminal.

A tqdm widget saved by nbconvert keeps its text fallback frozen at 0%. Here each cell that trains or loads runs
gets one ordinary text display, updated in place (Jupyter's update_display_data): live it shows the runs so far and
the bar of the run in training; once saved, the notebook holds its last state, e.g. "12 runs: 12 trained now, 0 loaded
from results/", which tells a reader at each question whether its numbers were computed now (the tables print the
runs' training times).
"""
from __future__ import annotations

import sys

from tqdm.std import tqdm


def _shell():
    """The running Jupyter kernel's shell, else None (a terminal, a plain IPython, pytest)."""
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def summary(runs: list[bool]) -> str:
    """One line on a cell's runs, each True if trained now, False if loaded."""
    n_trained = sum(runs)
    return f"{len(runs)} run{'s' * (len(runs) != 1)}: {n_trained} trained now, {len(runs) - n_trained} loaded from results/"


class _CellLine:
    """The one updatable display line of the cell being executed: its runs so far, then the live bar (if any)."""

    current: _CellLine | None = None

    def __init__(self, cell: int):
        from IPython.display import display
        self.cell, self.runs, self.handle = cell, [], display({"text/plain": ""}, raw=True, display_id=True)

    @classmethod
    def of_this_cell(cls) -> _CellLine | None:
        shell = _shell()
        if shell is None:
            return None
        if cls.current is None or cls.current.cell != shell.execution_count:  # the count is the cell's while it runs
            cls.current = cls(shell.execution_count)
        return cls.current

    def show(self, bar: str = "") -> None:
        self.handle.update({"text/plain": " · ".join(filter(None, [self.runs and summary(self.runs), bar]))}, raw=True)

    def write(self, text: str) -> None:  # tqdm's file: keep its last line as the bar
        line = text.replace("\r", "\n").strip().splitlines()
        if line:
            self.show(line[-1])

    def flush(self) -> None:
        pass


def note_run(trained: bool) -> None:
    """Count a run that `cached` trained now or loaded in the cell's line (in a Jupyter kernel only)."""
    line = _CellLine.of_this_cell()
    if line is not None:
        line.runs.append(trained)
        line.show()


def progress_bar(total: int, desc: str = "", disable: bool = False) -> tqdm:
    """A tqdm bar: in a Jupyter kernel drawn on the cell's line (see `note_run`), elsewhere on stderr."""
    line = None if disable else _CellLine.of_this_cell()
    if line is None:
        return tqdm(total=total, desc=desc, disable=disable, mininterval=1.0, leave=True)
    return tqdm(total=total, desc=desc, file=line, mininterval=1.0, ascii=True, leave=True)  # no width: the postfix is never cut
