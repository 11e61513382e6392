"""The notebook: every graded implementation is defined at its question exactly as in the package, no graded
code is only imported, its text pair is in sync, its committed outputs are a complete in-order run without a
machine path, and its export is one self-contained file that carries the outputs of its own execution."""
import ast
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
HEADINGS = ["1.1", "1.2", "1.3", "1.4", "1.5", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]

# Each question's code: defined in a code cell under its heading, node for node as in the package.
DEFINED_AT = {
    "1.1": [("backprop", n) for n in ("sigmoid", "predict")],
    "1.2": [("backprop", "logistic_loss")],
    "1.3": [("backprop", "stable_logistic_loss")],
    "1.5": [("backprop", "gradient")],
    "2.1": [("data", n) for n in ("load_kmnist", "split_indices", "RandomPermutation", "KMNISTSplits",
                                  "kmnist_splits", "make_loaders", "PERMUTATION_SEED")],
    "2.2": [("models", "N_CLASSES"), ("models", "MLP"), ("train", "evaluate"), ("train", "train"), ("train", "OPTIMIZERS"),
            ("experiments", "run_experiment")]
           + [("evidence", n) for n in ("MARGIN", "accuracy", "acc", "beats", "VERDICTS", "check", "check_beats",  # the rule,
                                        "at_chance", "drops_on_test", "lowest_loss_epoch", "loss_rise", "loss_rises")],  # the claims' tests
    "2.3": [("models", "CNN")],
    "2.4": [("models", "count_parameters")],
    "2.6": [("bonus", n) for n in ("BonusCNN", "BonusConfig", "run_bonus", "CANDIDATES", "select_recipe")],
}
# What the notebook may take from the package: plumbing (cache, figures, tables, progress, device, download,
# Part 1's input checks) and 1.5's reference gradients, none graded; the notebook defines everything it shares with the
# package's `evidence` (the rule `beats`, the tests of the other claims, `check`).
PLUMBING = {"plots", "tables", "COUNTS", "as_finite_array", "check_labels", "check_X_W", "cached", "ensure_kmnist", "describe", "prepare_model",
            "progress_bar", "pick_device", "environment_summary"}
CHECKS = {"autograd_gradient", "numerical_gradient", "relative_error"}


def _name(node):
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def _python(cell) -> str:
    return "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("%"))  # no magics


def _definitions_by_question(nb) -> dict[str, dict[str, ast.AST]]:
    """{question: {name: node}} for every top-level def, class or assignment in the notebook's code cells."""
    out, question = {}, None
    for c in nb.cells:
        if c.cell_type == "markdown":
            heads = re.findall(r"^#{1,3} (\S+)", c.source, re.M)
            question = heads[-1] if heads else question
        elif c.cell_type == "code":
            for node in ast.parse(_python(c)).body:
                if _name(node):
                    out.setdefault(question, {})[_name(node)] = node
    return out


def _package_definitions() -> dict[str, tuple[str, ast.AST]]:
    modules = {m for q in DEFINED_AT.values() for m, _ in q}
    return {_name(n): (m, n) for m in modules for n in ast.parse((ROOT / "hw3" / f"{m}.py").read_text()).body if _name(n)}


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(ROOT / "homework3.ipynb", as_version=4)


def test_each_graded_implementation_is_defined_at_its_question_as_in_the_package(notebook):
    defined = _definitions_by_question(notebook)
    package = _package_definitions()
    for question, wanted in DEFINED_AT.items():
        for module, name in wanted:
            assert name in defined.get(question, {}), f"{name} is not defined in a code cell of question {question}"
            assert package[name][0] == module and ast.dump(defined[question][name]) == ast.dump(package[name][1]), \
                f"the notebook's {name} (question {question}) differs from hw3/{module}.py: copy it over"
    for question, nodes in defined.items():  # nothing else shares a package name with other code
        for name, node in nodes.items():
            if name in package and isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert ast.dump(node) == ast.dump(package[name][1]), f"{name} ({question}) differs from the package"


def test_the_notebook_takes_only_plumbing_from_the_package(notebook):
    taken = set()
    for c in notebook.cells:
        if c.cell_type == "code":
            for node in ast.walk(ast.parse(_python(c))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hw3"):
                    taken |= {a.name for a in node.names}
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "hw3":
                    taken.add(node.attr)
                elif isinstance(node, ast.Import):  # import hw3.backprop as bp takes the module
                    taken |= {a.name.split(".")[1] for a in node.names if a.name.startswith("hw3.")}
    assert taken <= PLUMBING | CHECKS, f"graded code imported from the package instead of defined in a cell: {taken - PLUMBING - CHECKS}"


def test_text_pair_is_in_sync(notebook):
    jupytext = pytest.importorskip("jupytext")
    text = jupytext.read(ROOT / "homework3.md")
    assert [(c.cell_type, c.source) for c in notebook.cells] == [(c.cell_type, c.source) for c in text.cells], \
        "homework3.md and .ipynb differ: run `jupytext --sync homework3.md`"
    assert notebook.metadata["jupytext"]["formats"] == "ipynb,md"


def test_headings_follow_the_assignment(notebook):
    heads = [line.split()[1] for c in notebook.cells if c.cell_type == "markdown" for line in c.source.splitlines()
             if line.startswith("## ")]
    assert heads == HEADINGS


def test_committed_outputs_are_one_complete_run_without_machine_paths(notebook):
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "not one complete run, in order"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(o.get("text", "") + "".join(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
                     for o in outputs)
    paths = re.findall(r"(?:/work|/tmp|/home|/root|/Users|/content|[A-Z]:\\)[\w./\\-]+", text)
    assert paths == [], f"outputs show absolute paths of the machine that ran the notebook: {sorted(set(paths))[:5]}"
    assert re.findall(r"\b0%\|.*\| 0/\d+", text) == [], "saved progress bars frozen at 0%"
    assert "epochs=20" in text and "training images: all" in text, "the committed outputs are not a full run"
    prose = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    for absent in ("README", "requirements.txt", "tests/", "python -m hw3"):
        assert absent not in prose, f"the text cites {absent!r}, which the handed-in file does not carry"


def _export_env(monkeypatch, root, md5_file, results):
    for k, v in dict(HW3_QUICK="1", HW3_DATA_DIR=str(root), HW3_RESULTS_DIR=str(results),
                     HW3_RAW_MD5=str(md5_file), MPLBACKEND="Agg").items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PYTHONPATH", raising=False)


def test_export_is_self_contained_and_carries_its_own_execution(fake_root, md5_file, quick_results, tmp_path,
                                                                monkeypatch):
    from hw3.export import TAG, export_notebook, package_files
    source = nbformat.read(ROOT / "homework3.ipynb", as_version=4)
    # a last cell that says where this kernel's hw3 came from: the folder the export's own cells wrote
    source.cells.append(nbformat.v4.new_code_cell("import hw3, os\nprint('hw3 from', os.path.basename("
                                                  "os.path.dirname(os.path.dirname(hw3.__file__))))"))
    copy = tmp_path / "source.ipynb"
    nbformat.write(source, copy)
    _export_env(monkeypatch, fake_root, md5_file, quick_results)
    out = export_notebook(tmp_path / "dist" / "homework3.ipynb", notebook=copy)
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))  # its own run, every cell, in order
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert "hw3 from hw3_bundle_" in "".join(o.get("text", "") for o in code[-1].outputs)
    bundled = [i for i, c in enumerate(nb.cells) if TAG in c.metadata.get("tags", [])]
    assert bundled == list(range(bundled[0], bundled[0] + len(package_files()) + 2))  # one block, before 1.1
    first_question = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "## 1.1" in c.source)
    assert bundled[-1] < first_question
    assert all(c.source.startswith("#@title") and c.metadata["cellView"] == "form"
               and c.metadata["jupyter"]["source_hidden"] for c in (nb.cells[i] for i in bundled) if c.cell_type == "code")
    carried = package_files()
    never_run = {"cli", "export", "experiments", "bonus", "train", "data", "models", "backprop", "evidence"}
    assert not {f"hw3/{m}.py" for m in never_run} & set(carried)  # graded code runs from the cells, not from here
    assert "jupytext" not in nb.metadata


def test_export_refuses_a_failing_notebook_and_an_unwritable_out(fake_root, md5_file, tmp_path, monkeypatch):
    from hw3.export import ExportError, export_notebook
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"),
                                          nbformat.v4.new_code_cell("raise ValueError('boom')")])
    nbformat.write(bad, tmp_path / "bad.ipynb")
    _export_env(monkeypatch, fake_root, md5_file, tmp_path / "results")
    with pytest.raises(ExportError, match="a cell failed, nothing written") as e:
        export_notebook(tmp_path / "out.ipynb", notebook=tmp_path / "bad.ipynb")
    assert "boom" in str(e.value)
    assert not (tmp_path / "out.ipynb").exists()
    with pytest.raises(ExportError, match="must be a file path"):
        export_notebook(tmp_path, notebook=tmp_path / "bad.ipynb", execute=False)
    with pytest.raises(ExportError, match="cannot read the notebook"):
        export_notebook(tmp_path / "x.ipynb", notebook=tmp_path / "missing.ipynb", execute=False)
    blocker = tmp_path / "a-file"  # a regular file as the folder: unwritable for root too
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write"):
        export_notebook(blocker / "x.ipynb", notebook=tmp_path / "bad.ipynb", execute=False)
