"""`python -m hw3 export`: homework3.ipynb as one self-contained notebook that carries the hw3 package, executed.

The export is the notebook with one section added after its title: a collapsed cell per file of the
package that writes it (its text in a raw string; Colab's form view and JupyterLab show only a title)
and a cell that puts it on the import path. The files go to a folder named after a hash of their
contents, so running the export anywhere never overwrites a different `hw3/`. The result is then
executed top to bottom with nbclient, in an empty folder, with the project's results cache (a run
whose code and data are unchanged is loaded, not retrained), and written only if no cell failed: the
file handed in carries the outputs of its own execution, execution counts 1 to N, and no per-cell timing
metadata: two exports of the same results differ only where a cell prints its own wall time.
"""
from __future__ import annotations

import ast
import hashlib
import os
import re
import tempfile
from pathlib import Path

from . import _LAZY
from .cache import results_dir, write_atomic
from .data import resolve_data_dir

PACKAGE = Path(__file__).resolve().parent
NOTEBOOK = PACKAGE.parent / "homework3.ipynb"
TAG = "hw3-package"  # metadata tag of the added cells


class ExportError(RuntimeError):
    """The notebook cannot be exported (unreadable input, unwritable output, a failing cell)."""


def _imports_of(path: Path) -> set[str]:
    """The hw3 modules a module of the package imports (at the top or inside a function; not for type checkers only)."""
    found, todo = set(), [ast.parse(path.read_text(encoding="utf-8"))]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo += node.orelse  # `if TYPE_CHECKING:` never runs
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        todo += ast.iter_child_nodes(node)
    return found


BUNDLE_INIT = ('"""The notebook\'s plumbing: KMNIST\'s files, the results cache, figures, tables, progress bars, the device,\n'
               'Part 1\'s input checks and 1.5\'s reference gradients. The graded code is defined in the notebook\'s cells,\n'
               'at each question."""\n')


WORTH_A_LOOK = {  # carried files a grader may want to read, and why
    "hw3/checks.py": "`checks.py` (Part 1's graded functions call it, only to validate their inputs)",
    "hw3/gradcheck.py": "`gradcheck.py` (the references that 1.5 compares `gradient` with)",
}


def package_files(notebook: Path | None = None) -> dict[str, str]:
    """The files of the package that the notebook imports, transitively: {path relative to the package's parent: text}."""
    import nbformat
    nb = nbformat.read(Path(notebook or NOTEBOOK), as_version=4)
    todo = {"__init__"}
    for c in nb.cells:
        if c.cell_type == "code":
            todo |= set(re.findall(r"^\s*from hw3(?:\.(\w+))? import", c.source, re.M)) - {""}
            todo |= {_LAZY.get(m, m) for line in re.findall(r"^\s*from hw3 import (.+)$", c.source, re.M)
                     for m in re.findall(r"\w+", line.split("#")[0])}  # a graded name: the module defining it
    needed: set[str] = set()
    while todo:
        module = todo.pop()
        if module not in needed and (PACKAGE / f"{module}.py").exists():
            needed.add(module)
            todo |= _imports_of(PACKAGE / f"{module}.py")
    files = {f"hw3/{m}.py": (PACKAGE / f"{m}.py").read_text(encoding="utf-8") for m in sorted(needed)}
    # the bundle's package holds plumbing only: its __init__ names no graded module (those are the notebook's cells)
    files["hw3/__init__.py"] = BUNDLE_INIT
    return files


def bundle_cells(files: dict[str, str]) -> list:
    """The cells that write the package next to the notebook and make it importable."""
    import nbformat
    digest = hashlib.sha1("".join(f"{k}\0{v}\0" for k, v in files.items()).encode()).hexdigest()[:10]
    folder = f"hw3_bundle_{digest}"
    worth = [text for name, text in WORTH_A_LOOK.items() if name in files]
    skip = "; ".join(f"`{name.removeprefix('hw3/')}` ({_summary(text)})" for name, text in files.items()
                     if not name.endswith("__init__.py") and name not in WORTH_A_LOOK)
    intro = nbformat.v4.new_markdown_cell(
        "## Setup: the `hw3` helpers (run these cells first)\n\n"
        f"These collapsed cells write the plumbing package `hw3/` into `{folder}/`. None holds graded code or changes how "
        "a network is built or trained: `device.py`'s `prepare_model` only moves it to the device (channels_last on a "
        "CPU), and `cache.py` saves its trained weights.\n\n"
        + (f"- Worth a look: {'; '.join(worth)}.\n" if worth else "")
        + f"- Safe to skip: {skip}.\n\n"
        "`cache.py` loads a run from `results/` only if the same code, configuration and data stored it (not the device "
        "or library versions, which can change rounding); on a fresh machine every run is trained by this execution, as "
        "the last cell prints.")
    setup = nbformat.v4.new_code_cell(
        "#@title Put the package next to this notebook on the import path (runs first)\n"
        "import os, sys\n"
        f"HW3_BUNDLE = os.path.abspath({folder!r})\n"
        "os.makedirs(os.path.join(HW3_BUNDLE, 'hw3'), exist_ok=True)\n"
        "sys.path.insert(0, HW3_BUNDLE)  # this notebook's own hw3 comes first\n"
        "_ = os.environ.setdefault('HW3_DATA_DIR', os.path.abspath('data'))\n"
        "_ = os.environ.setdefault('HW3_RESULTS_DIR', os.path.abspath('results'))")
    cells = [intro, setup] + [nbformat.v4.new_code_cell(_writer_source(name, text)) for name, text in files.items()]
    for i, c in enumerate(cells):
        c.id = f"{TAG}-{i}"  # fixed ids: two exports of the same commit have the same cells
        c.metadata["tags"] = [TAG]
        if c.cell_type == "code":  # collapsed: Colab's form view, JupyterLab's hidden source
            c.metadata["cellView"] = "form"
            c.metadata["jupyter"] = {"source_hidden": True}
    return cells


def _summary(text: str) -> str:
    """What a module is, in a few words: its docstring's first sentence, up to a colon."""
    doc = ast.get_docstring(ast.parse(text)) or ""
    sentence = re.split(r"(?<=\.)\s", " ".join(doc.split("\n\n")[0].split()))[0]
    head = sentence.split(": ")[0].rstrip(".")
    return head[:1].lower() + head[1:] if head[1:2].islower() else head  # "The cache" -> "the cache"; "KMNIST's" kept


def _writer_source(name: str, text: str) -> str:
    """A code cell that writes one file of the package, its text readable in a raw string literal."""
    for quote in ("\'\'\'", '\"\"\"'):
        if quote not in text and not text.endswith("\\"):
            return (f"#@title {name} (click to show the code)\n"
                    f"with open(os.path.join(HW3_BUNDLE, {name!r}), 'w', encoding='utf-8') as _f:\n"
                    f"    _f.write(r{quote}{text}{quote})")
    raise ExportError(f"{name} holds both kinds of triple quotes: it cannot be carried as a raw string")


def build(notebook: Path | None = None):
    """The self-contained notebook (not executed): the project's notebook, without outputs, plus the package."""
    import nbformat
    notebook = Path(notebook or NOTEBOOK)
    try:
        nb = nbformat.read(notebook, as_version=4)
    except (OSError, ValueError) as e:  # missing, unreadable or not a notebook (nbformat raises ValueError subclasses)
        raise ExportError(f"cannot read the notebook {notebook}: {e}") from e
    for c in nb.cells:
        if c.cell_type == "code":  # nothing of an earlier execution: outputs, counts, nor its timestamps
            c.outputs, c.execution_count = [], None
            c.metadata.pop("execution", None)
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells[first_code:first_code] = bundle_cells(package_files(notebook))
    nb.metadata.pop("jupytext", None)  # the export is not paired with a text file
    return nb


def run_all(nb, timeout: int = 3600) -> None:
    """Run every cell in order in a fresh kernel, in an empty folder, with this project's data and results cache."""
    import nbclient
    env = {"HW3_DATA_DIR": str(resolve_data_dir()), "HW3_RESULTS_DIR": str(results_dir().resolve())}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with tempfile.TemporaryDirectory(prefix="hw3-export-") as folder:
            client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                             resources={"metadata": {"path": folder}})  # no timestamps in cells
            client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        raise ExportError(f"a cell failed, nothing written:\n{str(e)[-3000:]}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def export_notebook(out: Path, notebook: Path | None = None, execute: bool = True, timeout: int = 3600) -> Path:
    """Write the self-contained notebook to `out`, executed unless `execute` is False; atomically."""
    import nbformat
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"--out must be a file path, got the folder {out}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from e
    if not os.access(out.parent, os.W_OK):
        raise ExportError(f"cannot write {out}: its folder is not writable")
    nb = build(notebook)
    if execute:
        run_all(nb, timeout)
    try:
        write_atomic(out, lambda f: nbformat.write(nb, f))  # nothing half-written
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from e
    return out
