"""`python -m hw3 export`: homework3.ipynb as one self-contained notebook that carries the hw3 package.

The export is the committed notebook, outputs included, with one section added after its title: a
collapsed cell per file of the package that writes it (its text in a raw string; Colab's form view and
JupyterLab show only a title) and a cell that puts them on the import path. Cell ids are fixed, so two
exports of the same commit are identical. The files go to a folder named after a hash of their contents, so running the
export anywhere, the project folder included, never overwrites a different `hw3/`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .cache import write_atomic

PACKAGE = Path(__file__).resolve().parent
NOTEBOOK = PACKAGE.parent / "homework3.ipynb"
TAG = "hw3-package"  # metadata tag of the added cells


class ExportError(RuntimeError):
    """The notebook cannot be exported (unreadable input, unwritable output)."""


def package_files() -> dict[str, str]:
    """The package's source and recorded results: {path relative to the package's parent: text}."""
    paths = sorted(PACKAGE.glob("*.py")) + sorted(PACKAGE.glob("recorded/*.json"))
    return {p.relative_to(PACKAGE.parent).as_posix(): p.read_text(encoding="utf-8") for p in paths}


def bundle_cells(files: dict[str, str]) -> list:
    """The cells that write the package next to the notebook and make it importable."""
    import nbformat
    digest = hashlib.sha1("".join(f"{k}\0{v}\0" for k, v in files.items()).encode()).hexdigest()[:10]
    folder = f"hw3_bundle_{digest}"
    dirs = sorted({str(Path(folder, name).parent.as_posix()) for name in files})
    intro = nbformat.v4.new_markdown_cell(
        "## Setup: the `hw3` package, carried inside this notebook (run these cells first)\n\n"
        "This file is self-contained: the next, collapsed cells write the package that the answers below call "
        f"(`hw3/`, {len(files)} files) into the folder `{folder}/` next to the notebook and put it on the import "
        "path; its name is a hash of the code, so nothing else is ever overwritten. The graded code is defined "
        "in code cells at each question (identical to the package's, a test checks it). Data go to `./data` (KMNIST is downloaded on first use) and cached "
        "results to `./results`, unless `HW3_DATA_DIR` / `HW3_RESULTS_DIR` say otherwise.")
    setup = nbformat.v4.new_code_cell(
        "#@title Write the package next to this notebook (runs first)\n"
        "import os, sys\n"
        f"HW3_BUNDLE = os.path.abspath({folder!r})\n"
        f"for d in {dirs!r}:\n"
        "    os.makedirs(d, exist_ok=True)\n"
        "sys.path.insert(0, HW3_BUNDLE)  # this notebook's own hw3 comes first\n"
        "os.environ.setdefault('HW3_DATA_DIR', os.path.abspath('data'))\n"
        "os.environ.setdefault('HW3_RESULTS_DIR', os.path.abspath('results'))")
    cells = [intro, setup] + [nbformat.v4.new_code_cell(_writer_source(folder, name, text)) for name, text in files.items()]
    for i, c in enumerate(cells):
        c.id = f"{TAG}-{i}"  # fixed ids: two exports of the same commit are identical
        c.metadata["tags"] = [TAG]
        if c.cell_type == "code":  # collapsed: Colab's form view, JupyterLab's hidden source
            c.metadata["cellView"] = "form"
            c.metadata["jupyter"] = {"source_hidden": True}
    return cells


def _writer_source(folder: str, name: str, text: str) -> str:
    """A code cell that writes one file of the package, its text readable in a raw string literal."""
    for quote in ("\'\'\'", '\"\"\"'):
        if quote not in text and not text.endswith("\\"):
            return (f"#@title {name} (click to show the code)\n"
                    f"_path = os.path.join(HW3_BUNDLE, {name!r})\n"
                    f"with open(_path, 'w', encoding='utf-8') as _f:\n"
                    f"    _f.write(r{quote}{text}{quote})")
    raise ExportError(f"{name} holds both kinds of triple quotes: it cannot be carried as a raw string")


def export_notebook(out: Path, notebook: Path | None = None) -> tuple[Path, list[str]]:
    """Write the self-contained notebook to `out` (atomically); returns its path and any warnings."""
    import nbformat
    notebook = Path(notebook or NOTEBOOK)
    try:
        nb = nbformat.read(notebook, as_version=4)
    except (OSError, ValueError) as e:  # missing, unreadable or not a notebook (nbformat raises ValueError subclasses)
        raise ExportError(f"cannot read the notebook {notebook}: {e}") from e
    warnings = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not any(c.get("outputs") for c in code):
        warnings.append(f"{notebook} has no executed outputs, so the export carries none; execute it first "
                        "(README: 'Execute the whole notebook')")
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells[first_code:first_code] = bundle_cells(package_files())
    nb.metadata.pop("jupytext", None)  # the export is not paired with a text file
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"--out must be a file path, got the folder {out}")
    try:
        write_atomic(out, lambda f: nbformat.write(nb, f))  # nothing half-written
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from e
    return out, warnings
