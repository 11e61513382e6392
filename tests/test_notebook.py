"""The notebook: its graded code is the package's, its text pair is in sync, its outputs show no machine path,
it runs top to bottom in quick mode, and so does its self-contained export."""
import ast
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
HEADINGS = ["1.1", "1.2", "1.3", "1.4", "1.5", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]


# Each question's implementation: defined in a code cell under its heading, node for node as in the package.
DEFINED_AT = {
    "1.1": ("backprop", ["_as_finite_array", "_check_X_W", "sigmoid", "predict"]),
    "1.2": ("backprop", ["_check_labels", "logistic_loss"]),
    "1.3": ("backprop", ["stable_logistic_loss"]),
    "1.5": ("backprop", ["gradient"]),
    "2.1": ("data", ["Preprocess", "make_loaders"]),
    "2.2": ("models", ["MLP"]),
    "2.3": ("models", ["CNN"]),
    "2.4": ("models", ["count_parameters"]),
    "2.5": ("data", ["RandomPermutation"]),
}
DEFINED_AT_2_2_TRAIN = ("train", ["evaluate", "train"])


def _definitions_by_question(nb) -> dict[str, dict[str, ast.AST]]:
    """{question: {name: the def/class node}} for every top-level definition in the notebook's code cells."""
    out, question = {}, None
    for c in nb.cells:
        if c.cell_type == "markdown":
            heads = re.findall(r"^#{1,3} (\S+)", c.source, re.M)
            question = heads[-1] if heads else question
        elif c.cell_type == "code" and not c.source.lstrip().startswith("%"):
            python = "\n".join(line for line in c.source.splitlines() if not line.startswith("%"))  # no magics
            for node in ast.parse(python).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    out.setdefault(question, {})[node.name] = node
    return out


def _package_definitions() -> dict[str, tuple[str, ast.AST]]:
    """{name: (module, node)} for every top-level def/class of the modules the notebook copies from."""
    return {n.name: (module, n) for module in ("backprop", "data", "models", "train")
            for n in ast.parse((ROOT / "hw3" / f"{module}.py").read_text()).body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def test_each_graded_implementation_is_defined_at_its_question_as_in_the_package():
    defined = _definitions_by_question(nbformat.read(ROOT / "homework3.ipynb", as_version=4))
    package = _package_definitions()
    expected = {q: [(mod, n) for n in names] for q, (mod, names) in DEFINED_AT.items()}
    expected["2.2"] += [(DEFINED_AT_2_2_TRAIN[0], n) for n in DEFINED_AT_2_2_TRAIN[1]]
    for question, wanted in expected.items():
        for module, name in wanted:
            assert name in defined.get(question, {}), f"{name} is not defined in a code cell of question {question}"
            assert package[name][0] == module and ast.dump(defined[question][name]) == ast.dump(package[name][1]), \
                f"the notebook's {name} (question {question}) differs from hw3/{module}.py: copy it over"
    # nothing else is defined in the notebook under a package name with other code
    for question, nodes in defined.items():
        for name, node in nodes.items():
            if name in package:
                module, twin = package[name]
                assert ast.dump(node) == ast.dump(twin), f"{name} ({question}) differs from hw3/{module}.py"


def test_committed_outputs_show_no_absolute_path_and_no_frozen_progress_bar():
    nb = nbformat.read(ROOT / "homework3.ipynb", as_version=4)
    texts = []
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            texts.append(o.get("text", "") + "".join(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/")))
    text = "\n".join(texts)
    paths = re.findall(r"(?:/work|/tmp|/home|/root|/Users|/content|[A-Z]:\\)[\w./\\-]+", text)
    assert paths == [], f"outputs show absolute paths of the machine that ran the notebook: {sorted(set(paths))[:5]}"
    frozen = re.findall(r"\b0%\|.*\| 0/\d+", text)
    assert frozen == [], f"saved progress bars frozen at 0%: {frozen[:3]}"
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code"), "the committed notebook is not fully executed"


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
    assert any("class BonusNet(" in s for s in shown)  # the bonus recipe, shown from the package
    assert "hash exactly like the package's (same cache keys as `python -m hw3 run`): True" in text
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
    again, _ = export_notebook(tmp_path / "dist2" / "homework3.ipynb")
    assert out.read_bytes() == again.read_bytes()  # deterministic: the same commit, the same file
    nb = nbformat.read(out, as_version=4)
    bundled = [i for i, c in enumerate(nb.cells) if TAG in c.metadata.get("tags", [])]
    assert bundled == list(range(bundled[0], bundled[0] + len(package_files()) + 2))  # one block, before 1.1
    first_question = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "## 1.1" in c.source)
    assert bundled[-1] < first_question
    code = [nb.cells[i] for i in bundled if nb.cells[i].cell_type == "code"]
    assert all(c.source.startswith("#@title") and c.metadata["cellView"] == "form"
               and c.metadata["jupyter"]["source_hidden"] for c in code)  # collapsed in Colab and JupyterLab
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
    files = {p.relative_to(written[0]).as_posix(): p.read_text(encoding="utf-8") for p in written[0].rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    assert files == package_files()  # every file, byte for byte
