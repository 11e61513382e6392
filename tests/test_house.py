"""The package's house: no import cycle, and every command behind the CLI with its help and bad input."""
import ast
import subprocess
import sys
from pathlib import Path

from hw3 import experiments

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
    assert top.returncode == 0 and all(c in top.stdout for c in ("run", "export"))
    from hw3.cli import GROUPS
    assert GROUPS == experiments.GROUPS and all(g in top.stdout for g in GROUPS)  # every experiment, first screen
    assert all(g in run("run", "--help").stdout for g in experiments.GROUPS)
    assert all(o in run("export", "--help").stdout for o in ("--out", "--no-execute", "--timeout"))
    blocker = ROOT / "README.md"  # a file: nothing can be written below it
    cli = run("export", "--no-execute", "--out", str(blocker / "x.ipynb"))
    assert cli.returncode == 2 and cli.stderr.startswith("error: cannot write")
