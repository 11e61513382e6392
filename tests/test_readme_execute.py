"""The README's command, `jupyter nbconvert --to notebook --execute --inplace homework3.ipynb`, run as written
(quick mode, synthetic data) on a copy of the notebook: a broken nbconvert, kernel or notebook fails here. The
runs it makes are the package's runs, key for key: the notebook's definitions hash like the package's."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
if importlib.util.find_spec("nbconvert") is None:  # not importorskip: an nbconvert that is installed but broken must fail
    pytest.skip("nbconvert is not installed: the README's execute command cannot run", allow_module_level=True)

from hw3.cache import COUNTS  # noqa: E402
from hw3.experiments import GROUPS, run_group  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _jupyter() -> list[str]:
    """The `jupyter` of this interpreter's environment, so that its nbconvert is the one that runs."""
    beside = Path(sys.executable).with_name("jupyter")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "jupyter"]


def _package_runs(results: Path, monkeypatch) -> tuple[set[str], set[str]]:
    """The result files the package's own experiment groups load and train for the notebook's quick-mode runs."""
    monkeypatch.setenv("HW3_RESULTS_DIR", str(results))
    COUNTS["loaded"].clear(), COUNTS["trained"].clear()
    seeds = {"mlp": (0,), "cnn": (0,), "ablation": (0,), "final": (0,)}
    for group in GROUPS:
        run_group(group, progress=False, seeds=seeds, epochs=1, train_subset=1000,
                  **({} if group == "bonus" else {"batch_size": 64}))
    return set(COUNTS["loaded"]), set(COUNTS["trained"])


def test_readme_nbconvert_execute_command_runs_the_notebook(fake_root, md5_file, quick_results, tmp_path, monkeypatch):
    copy = tmp_path / "homework3.ipynb"
    nb = nbformat.read(ROOT / "homework3.ipynb", as_version=4)
    for c in nb.cells:  # start from a clean copy, so every output below is this run's
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nbformat.write(nb, copy)
    results = quick_results  # shared with the export's execution: whichever runs second loads the runs
    env = dict(os.environ, HW3_QUICK="1", HW3_DATA_DIR=str(fake_root), HW3_RESULTS_DIR=str(results),
               HW3_RAW_MD5=str(md5_file), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    cmd = _jupyter() + ["nbconvert", "--to", "notebook", "--execute", "--inplace", str(copy)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    ran = nbformat.read(copy, as_version=4)
    code = [c for c in ran.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == [], f"error outputs: {[(o.get('ename'), o.get('evalue')) for o in errors][:3]}"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "not every cell ran, in order"
    text = "".join(o.get("text", "") for c in code for o in c.get("outputs", []))
    assert "epochs=1" in text and "relative error" in text  # quick mode, Part 1 included
    assert any("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    written = {p.name for p in results.glob("*.json")}
    loaded, trained = _package_runs(results, monkeypatch)
    assert trained == set(), f"the package trained runs the notebook did not make: {sorted(trained)[:3]}"
    assert loaded == written  # the notebook's code is the package's, run for run
