"""Progress bars that a saved notebook shows finished: one text line updated in place in Jupyter, tqdm in a terminal.

A tqdm widget saved by nbconvert keeps its text fallback frozen at 0%. Here the bar is an ordinary text
display that is updated in place (Jupyter's update_display_data), so live it moves and, once saved, the
notebook holds its last state: the finished bar.
"""
from __future__ import annotations

import sys

from tqdm.std import tqdm


class _DisplayLine:
    """A file-like object for tqdm that shows its last line as one updatable Jupyter display."""

    def __init__(self):
        from IPython.display import display
        self.handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        line = text.replace("\r", "\n").strip().splitlines()
        if line:
            self.handle.update({"text/plain": line[-1]}, raw=True)

    def flush(self) -> None:
        pass


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_bar(total: int, desc: str = "", disable: bool = False) -> tqdm:
    """A tqdm bar: in a Jupyter kernel drawn as one text line updated in place, elsewhere on stderr."""
    if disable or not _in_jupyter():
        return tqdm(total=total, desc=desc, disable=disable, mininterval=1.0, leave=True)
    return tqdm(total=total, desc=desc, file=_DisplayLine(), mininterval=1.0, ascii=True, leave=True)  # no width: the postfix is never cut
