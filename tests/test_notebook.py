"""The notebook: its text pair is in sync, it runs top to bottom in quick mode, and so does its self-contained export."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
HEADINGS = ["1.1", "1.2", "1.3", "1.4", "1.5", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]


def _quick_env(monkeypatch, root, tmp_path):
    monkeypatch.setenv("HW3_QUICK", "1")
    monkeypatch.setenv("HW3_DATA_DIR", str(root))
    monkeypatch.setenv("HW3_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


def _md5_cell(md5: dict):
    # The synthetic files are not the official ones: tell this kernel's hw3 their md5s (tests only).
    return nbformat.v4.new_code_cell(f"import hw3.data; hw3.data.RAW_MD5.update({json.dumps(md5)})")


def _check_ran_in_quick_mode(nb, tmp_path):
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "epochs=1" in text and "relative error" in text  # it really ran in quick mode, Part 1 included
    assert any("image/png" in o.get("data", {}) for o in outputs)
    shown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("def gradient(" in s for s in shown) and any("class CNN(" in s for s in shown)  # the code at its question
    assert os.listdir(tmp_path / "results")


def test_text_pair_is_in_sync():
    jupytext = pytest.importorskip("jupytext")
    ipynb = nbformat.read(ROOT / "homework3.ipynb", as_version=4)
    text = jupytext.read(ROOT / "homework3.md")
    pairs = list(zip([(c.cell_type, c.source) for c in ipynb.cells], [(c.cell_type, c.source) for c in text.cells]))
    assert len(ipynb.cells) == len(text.cells), "homework3.md and .ipynb differ: run `jupytext --sync homework3.md`"
    assert all(a == b for a, b in pairs), "homework3.md and .ipynb differ: run `jupytext --sync homework3.md`"
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,md"


def test_notebook_runs_top_to_bottom(fake_md5, tmp_path, monkeypatch):
    root, md5 = fake_md5
    nb = nbformat.read(ROOT / "homework3.ipynb", as_version=4)
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines() if line.startswith("## ")]
    assert [h.split()[1] for h in headings] == HEADINGS
    nb.cells.insert(0, _md5_cell(md5))
    _quick_env(monkeypatch, root, tmp_path)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    _check_ran_in_quick_mode(nb, tmp_path)


def test_export_runs_alone_in_an_empty_folder(fake_md5, tmp_path, monkeypatch):
    from hw3.export import TAG, export_notebook, package_files
    root, md5 = fake_md5
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('hw3') is not None)"
    if subprocess.run([sys.executable, "-c", probe], cwd=empty, env=env).returncode:
        pytest.skip("hw3 is installed in this environment, so no folder is without it")
    out, warnings = export_notebook(tmp_path / "dist" / "homework3.ipynb")
    assert warnings == []  # the committed notebook carries its outputs
    nb = nbformat.read(out, as_version=4)
    bundled = [i for i, c in enumerate(nb.cells) if TAG in c.metadata.get("tags", [])]
    assert any("%%writefile" in nb.cells[i].source and "def gradient(" in nb.cells[i].source for i in bundled)
    # where the exported notebook runs, hw3 must not be importable before its own cells write it
    nb.cells.insert(0, nbformat.v4.new_code_cell("import importlib.util\nassert importlib.util.find_spec('hw3') is None"))
    nb.cells.insert(bundled[-1] + 2, _md5_cell(md5))
    _quick_env(monkeypatch, root, tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(empty)}})
    client.execute()
    _check_ran_in_quick_mode(nb, tmp_path)
    written = [p for p in empty.iterdir()]
    assert len(written) == 1 and written[0].name.startswith("hw3_bundle_")  # its own folder, nothing else
    files = {p.relative_to(written[0]).as_posix() for p in written[0].rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert files == set(package_files())
