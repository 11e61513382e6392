"""The README's command, `jupyter nbconvert --to notebook --execute --inplace homework3.ipynb`, run as written
(quick mode, synthetic data) on a copy of the notebook: a broken nbconvert, kernel or notebook fails here. The
runs it makes are the package's runs, key for key: the notebook's definitions hash like the package's."""
import dataclasses
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
if importlib.util.find_spec("nbconvert") is None:  # not importorskip: an nbconvert that is installed but broken must fail
    pytest.skip("nbconvert is not installed: the README's execute command cannot run", allow_module_level=True)

from hw3 import bonus  # noqa: E402
from hw3.cache import result_path  # noqa: E402
from hw3.experiments import run_experiment  # noqa: E402
from hw3.models import CNN, MLP  # noqa: E402
from hw3.train import CONTROLS, OPTIMIZERS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _jupyter() -> list[str]:
    """The `jupyter` of this interpreter's environment, so that its nbconvert is the one that runs."""
    beside = Path(sys.executable).with_name("jupyter")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "jupyter"]


def _package_keys(results: Path) -> set[str]:
    """The result files the package would write for the notebook's quick-mode runs."""
    common = dict(epochs=1, batch_size=64, train_subset=1000, seed=0)
    configs = [(run_experiment, dict(model=MLP, optimizer=o, **common)) for o in [*OPTIMIZERS, *CONTROLS]]
    configs += [(run_experiment, dict(model=CNN, optimizer=o, **common)) for o in OPTIMIZERS]
    configs += [(run_experiment, dict(model=m, optimizer="nesterov", dataset="permuted", **common)) for m in (MLP, CNN)]
    configs += [(bonus.run_bonus, dict(config=dataclasses.replace(bonus.FINAL, epochs=1, train_subset=1000), test=True))]
    configs += [(bonus.run_bonus, dict(config=dataclasses.replace(cfg, seed=0, train_subset=1000)))
                for _, cfg in bonus.ablation_configs(1)]
    return {result_path(fn, cfg, results).name for fn, cfg in configs}


def test_readme_nbconvert_execute_command_runs_the_notebook(fake_root, md5_file, quick_results, tmp_path):
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
    assert written == _package_keys(results)  # the notebook's code is the package's, run for run
