"""The export, on tiny notebooks (seconds, not the real run): the lazy `hw3/__init__.py` adds no module to the
bundle, the executed file holds no timing metadata (two exports are identical), and an unwritable output is
refused even for root."""
import re

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from hw3.export import PACKAGE, ExportError, _imports_of, bundle_cells, export_notebook, package_files  # noqa: E402

GRADED_MODULES = ("backprop", "data", "models", "train", "experiments", "bonus")


def _notebook(path, *sources):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t")]
                                            + [nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


PLUMBING_IMPORTS = ("from hw3 import plots, tables\nfrom hw3.cache import COUNTS, cached\n"
                    "from hw3.device import describe, pick_device\nfrom hw3.kmnist import ensure_kmnist\n"
                    "from hw3.progress import progress_bar")  # what the notebook takes from the package


def test_the_lazy_init_makes_the_bundle_carry_no_graded_module(tmp_path):
    assert _imports_of(PACKAGE / "__init__.py") == set(), "hw3/__init__.py must name its modules as strings only"
    carried = package_files(_notebook(tmp_path / "a.ipynb", PLUMBING_IMPORTS))
    assert sorted(carried) == [f"hw3/{m}.py" for m in ("__init__", "cache", "device", "kmnist", "plots", "progress",
                                                       "tables")]
    assert not {f"hw3/{m}.py" for m in GRADED_MODULES} & set(carried)


def test_the_bundle_intro_says_what_each_carried_file_does(tmp_path):
    files = package_files(_notebook(tmp_path / "c.ipynb", PLUMBING_IMPORTS))
    intro = bundle_cells(files)[0].source
    assert "- Worth a look" not in intro and "- Safe to skip: `cache.py` (the results cache)" in intro
    assert "every run is trained by this execution" in intro
    with_checks = bundle_cells(package_files(_notebook(tmp_path / "d.ipynb", PLUMBING_IMPORTS + "\nfrom hw3.checks import check_X_W")))
    assert "- Worth a look: `checks.py` (Part 1's graded functions call it, only to validate their inputs).\n" in with_checks[0].source
    all_three = bundle_cells(package_files(_notebook(tmp_path / "e.ipynb", PLUMBING_IMPORTS, "from hw3.checks import check_X_W\n"
                                                     "from hw3.gradcheck import relative_error")))
    assert ("- Worth a look: `checks.py` (Part 1's graded functions call it, only to validate their inputs); `gradcheck.py` "
            "(the references that 1.5 compares `gradient` with).\n") in all_three[0].source
    assert "`checks.py`" not in all_three[0].source.split("- Safe to skip")[1]  # each file listed once
    carried = package_files(_notebook(tmp_path / "f.ipynb", "from hw3.gradcheck import relative_error"))
    assert "hw3/gradcheck.py" in carried and "hw3/evidence.py" not in carried
    # the checks, carried without any graded module and without `evidence`, whose definitions the notebook has:
    assert not {f"hw3/{m}.py" for m in GRADED_MODULES} & set(carried)  # they check the cells' code, not their own copy
    roles = re.findall(r"`(\w+\.py)` \(([^;)]+)\)", intro)
    assert [f"hw3/{name}" for name, _ in roles] == [f for f in files if not f.endswith("__init__.py")]
    # each module's docstring, its first sentence up to a colon, lower-cased unless it starts with a name
    assert ("cache.py", "the results cache") in roles and ("kmnist.py", "KMNIST's four files") in roles
    assert ("plots.py", "figures") in roles


def test_a_graded_name_taken_from_the_package_carries_its_module(tmp_path):
    # not what the notebook does (it defines graded code in cells), but such an export must still run
    carried = package_files(_notebook(tmp_path / "b.ipynb", "from hw3 import predict, evaluate  # Part 1, 2"))
    assert {"hw3/backprop.py", "hw3/train.py"} <= set(carried) and "hw3/models.py" not in carried


@pytest.fixture
def export_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HW3_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HW3_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.delenv("PYTHONPATH", raising=False)


def test_an_executed_export_holds_no_timing_metadata_and_is_reproducible(tmp_path, export_env):
    source = _notebook(tmp_path / "tiny.ipynb", "print(6 * 7)", "import hw3, sys\n'torch' in sys.modules")
    stale = nbformat.read(source, as_version=4)  # timestamps of an earlier execution in place (nbconvert writes them)
    stale.cells[1].metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00.000000Z"}
    nbformat.write(stale, source)
    first = export_notebook(tmp_path / "one.ipynb", notebook=source)
    second = export_notebook(tmp_path / "two.ipynb", notebook=source)
    nb = nbformat.read(first, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))  # it did run
    assert code[-2].outputs[0]["text"] == "42\n" and code[-1].outputs[0]["data"]["text/plain"] == "False"
    timed = [i for i, c in enumerate(nb.cells) if "execution" in c.metadata]
    assert timed == [], f"cells {timed} carry nbclient's timing metadata"
    assert "iopub" not in first.read_text() and "shell.execute_reply" not in first.read_text()
    assert first.read_bytes() == second.read_bytes(), "two exports of the same notebook differ"


def test_an_unwritable_out_is_refused_even_for_root(tmp_path):
    source = _notebook(tmp_path / "tiny.ipynb", "1")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # its "child" cannot be created by anyone, root included
    with pytest.raises(ExportError, match="cannot write"):
        export_notebook(blocker / "out.ipynb", notebook=source, execute=False)
    assert blocker.read_text() == "not a folder" and not list(tmp_path.glob("**/*.tmp"))
