"""The package's house: no import cycle, every command behind the CLI, the code shown in the notebook,
the paired test, the export's bad input, the setup cell's failures, the collapse report."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import hw3
from hw3 import experiments, plots, stats
from hw3.source import show_code

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "hw3"


def _imports(path: Path) -> set[str]:
    """Every hw3 module that a module imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hw3"):
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("hw3.")}
    modules = {p.stem for p in PKG.glob("*.py")}
    return found & modules


def test_no_module_imports_one_that_imports_it_back():
    graph = {p.stem: _imports(p) - {p.stem} for p in PKG.glob("*.py")}
    assert "experiments" not in graph["bonus"] and "bonus" in graph["experiments"]  # the old circle is gone

    def reaches(start, target, seen=()):
        return any(n == target or (n not in seen and reaches(n, target, (*seen, n))) for n in graph.get(start, ()))

    cycles = [m for m in graph if m != "__init__" and reaches(m, m)]
    assert cycles == [], f"import cycles through {cycles}: {graph}"


def test_cli_help_lists_every_experiment_and_command():
    run = lambda *a: subprocess.run([sys.executable, "-m", "hw3", *a], capture_output=True, text=True, cwd=ROOT)  # noqa: E731
    top = run("--help")
    assert top.returncode == 0 and all(c in top.stdout for c in ("run", "sweep", "export"))
    assert all(g in top.stdout for g in experiments.GROUPS)  # every experiment named on the first screen
    groups = run("run", "--help").stdout
    assert all(g in groups for g in experiments.GROUPS)
    sweep = run("sweep", "--help")
    assert sweep.returncode == 0 and all(o in sweep.stdout for o in ("--data", "--results", "--force", "--record"))
    from hw3.sweep import STUDIES
    assert all(s in sweep.stdout for s in STUDIES) and all(s in top.stdout for s in STUDIES)
    bad = run("sweep", "seeds")
    assert bad.returncode == 2 and "expected one of controls, cnn-seeds, ablation, explorations, got 'seeds'" in bad.stderr
    assert "--out" in run("export", "--help").stdout


def test_show_code_renders_the_package_source():
    code = show_code(hw3.backprop.gradient, "hw3.train:OPTIMIZERS")
    md = code._repr_markdown_()
    assert md.count("```python") == 1 and "def gradient(X" in md and '"adam_lr1"' in md
    assert "hw3.backprop.gradient" in repr(code)
    with pytest.raises(ValueError, match="module-level assignment named 'NOPE'"):
        show_code("hw3.train:NOPE")
    with pytest.raises(ValueError, match="expected a function, class or method"):
        show_code(3)
    with pytest.raises(ValueError, match="at least one"):
        show_code()


def test_paired_comparison_counts_the_discordant_images():
    y = torch.zeros(1000, dtype=torch.long)
    a, b = y.clone(), y.clone()
    a[:5] = 1        # A wrong on 5 images
    b[5:25] = 1      # B wrong on 20 others
    r = stats.paired_comparison(y, a, b)
    assert (r["a_only_right"], r["b_only_right"]) == (20, 5)
    assert r["diff"] == pytest.approx(0.015)
    # exact two-sided binomial tail of 5 or fewer out of 25 at p = 1/2
    from math import comb
    assert r["p_value"] == pytest.approx(2 * sum(comb(25, k) for k in range(6)) / 2 ** 25)
    assert r["se_diff"] == pytest.approx(((25 / 1000 - 0.015 ** 2) / 1000) ** 0.5)
    assert "p = " in stats.paired_text(r, "A", "B")
    lopsided = stats.paired_comparison(torch.zeros(3000, dtype=torch.long), torch.zeros(3000, dtype=torch.long),
                                       torch.ones(3000, dtype=torch.long))
    assert lopsided["p_value"] == 0.0 and "p < 1e-300" in stats.paired_text(lopsided, "A", "B")  # never "p = 0"
    with pytest.raises(ValueError, match="one length"):
        stats.paired_comparison(y, a[:5], b)


def test_export_refuses_an_unwritable_out_and_warns_about_a_notebook_without_outputs(tmp_path):
    from hw3.export import ExportError, export_notebook
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="cannot write"):
        export_notebook(blocker / "homework3.ipynb")
    with pytest.raises(ExportError, match="must be a file path"):
        export_notebook(tmp_path)
    with pytest.raises(ExportError, match="cannot read the notebook"):
        export_notebook(tmp_path / "out.ipynb", tmp_path / "missing.ipynb")
    import nbformat
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nbformat.write(bare, tmp_path / "bare.ipynb")
    out, warnings = export_notebook(tmp_path / "dist" / "bare.ipynb", tmp_path / "bare.ipynb")
    assert len(warnings) == 1 and "no executed outputs" in warnings[0]
    assert out.exists() and [p.name for p in out.parent.iterdir()] == ["bare.ipynb"]  # no temporary file left
    cli = subprocess.run([sys.executable, "-m", "hw3", "export", "--out", str(blocker / "x.ipynb")],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 2 and cli.stderr.startswith("error: cannot write")


def _setup_cell() -> str:
    import nbformat
    nb = nbformat.read(ROOT / "homework3.ipynb", as_version=4)
    cell = next(c.source for c in nb.cells if c.cell_type == "code" and "Setup" in c.source)
    return "\n".join(line for line in cell.splitlines() if not line.startswith("%"))


@pytest.mark.parametrize("hidden, pip, expect_rc, expect", [
    ("matplotlib_fontja", "/bin/false", 0, "note: could not install matplotlib-fontja"),  # pip fails (offline)
    ("matplotlib_fontja", "/no/such/python", 0, "note: could not install matplotlib-fontja"),  # no pip at all
    ("torch", "/bin/false", 1, "pip install -r requirements.txt"),  # required: stop, saying what to do
])
def test_setup_cell_goes_on_without_a_cosmetic_and_stops_without_a_requirement(hidden, pip, expect_rc, expect):
    # the cell installs with [sys.executable, "-m", "pip", ...]: point that at a failing or missing program
    hide = (f"import sys, importlib.util as u; _f = u.find_spec; sys.executable = {pip!r}\n"
            f"u.find_spec = lambda name, *a: None if name == {hidden!r} else _f(name, *a)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    p = subprocess.run([sys.executable, "-c", hide + _setup_cell()], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == expect_rc, p.stderr
    assert expect in p.stdout + p.stderr
    if expect_rc == 0:
        assert (p.stdout.count("\n") == 2) and "device:" in p.stdout  # the note, then the environment line


@pytest.mark.parametrize("model, layers", [("mlp", [100, 100]), ("cnn", [16, 32, 64])])
def test_collapse_report_looks_inside_the_trained_network_without_training_it_again(fake_root, tmp_path, monkeypatch,
                                                                                    model, layers):
    cfg = experiments.Config(model=model, optimizer="adam_lr1", epochs=1, train_subset=512)
    run = experiments.run_experiment(cfg, data_dir=fake_root, results=tmp_path, device="cpu", progress=False)
    monkeypatch.setattr(experiments, "save_result", lambda *a, **k: pytest.fail("the saved weights should be used"))
    r = experiments.collapse_report(cfg, data_dir=fake_root, results=tmp_path, device="cpu")
    assert r["hidden_units"] == layers and all(0 <= d <= 1 for d in r["dead_fraction"])
    assert sum(r["predicted_classes"]) == 10_000 and abs(sum(r["mean_probs"]) - 1) < 1e-4
    assert 0 < r["identical_output_share"] <= 1 and r["max_step_loss"] == max(run["history"]["step_loss"])
    assert r["val_loss"] == pytest.approx(run["final"]["val_loss"], rel=1e-4)  # the run's own network
    assert "dead units" in plots.collapse_text(r)


def test_missing_weights_are_trained_again(fake_root, tmp_path):
    cfg = experiments.Config(model="mlp", optimizer="sgd", epochs=1, train_subset=256)
    experiments.run_experiment(cfg, data_dir=fake_root, results=tmp_path, device="cpu", progress=False)
    (tmp_path / f"{cfg.key()}.pt").write_bytes(b"not a checkpoint")
    model, result = experiments.trained_model(cfg, data_dir=fake_root, results=tmp_path, device="cpu")
    assert isinstance(model, hw3.MLP) and result["config"]["optimizer"] == "sgd" and (tmp_path / f"{cfg.key()}.pt").stat().st_size > 1000


def test_compare_runs_and_error_summary():
    run = lambda v, t: {"label": "SGD lr=0.01", "final": {"val_acc": v, "test_acc": t}}  # noqa: E731
    table = plots.compare_runs([run(0.95, 0.89)], [run(0.98, 0.94)], "MLP", "CNN")
    assert "+3.00" in table and "+5.00" in table
    with pytest.raises(ValueError, match="one length"):
        plots.compare_runs([run(0.9, 0.9)], [], "a", "b")
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    text = plots.error_summary(y, torch.tensor([0, 1, 1, 1, 1, 2]))
    assert text.startswith("2 errors of 6") and "-> " in text
