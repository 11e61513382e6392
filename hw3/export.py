"""`python -m hw3 export`: homework3.ipynb as one self-contained notebook that carries the hw3 package.

The export is the committed notebook, outputs included, with one section added after its title: a
`%%writefile` cell per file of the package (readable, syntax-highlighted source) and a cell that puts
them on the import path. The files go to a folder named after a hash of their contents, so running the
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
        "## The `hw3` package, carried inside this notebook\n\n"
        "This file is self-contained: the next cells write the package that the answers below call "
        f"(`hw3/`, {len(files)} files) into the folder `{folder}/` next to the notebook and put it on the import "
        "path; its name is a hash of the code, so nothing else is ever overwritten. The same code is shown at "
        "each question that grades it. Data go to `./data` (KMNIST is downloaded on first use) and cached "
        "results to `./results`, unless `HW3_DATA_DIR` / `HW3_RESULTS_DIR` say otherwise.")
    setup = nbformat.v4.new_code_cell(
        "import os, sys\n"
        f"HW3_BUNDLE = os.path.abspath({folder!r})\n"
        f"for d in {dirs!r}:\n"
        "    os.makedirs(d, exist_ok=True)\n"
        "sys.path.insert(0, HW3_BUNDLE)  # this notebook's own hw3 comes first\n"
        "os.environ.setdefault('HW3_DATA_DIR', os.path.abspath('data'))\n"
        "os.environ.setdefault('HW3_RESULTS_DIR', os.path.abspath('results'))")
    cells = [intro, setup] + [nbformat.v4.new_code_cell(f"%%writefile {folder}/{name}\n{text}") for name, text in files.items()]
    for c in cells:
        c.metadata["tags"] = [TAG]
    return cells


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
