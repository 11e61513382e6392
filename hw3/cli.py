"""Command line: the notebook's experiments outside Jupyter, and the self-contained notebook to hand in.

  python -m hw3 run mlp|cnn|permuted|bonus|all   the runs of 2.2 to 2.6 (cached under results/)
  python -m hw3 export                                    homework3.ipynb with the hw3 package inside it, executed
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


GROUPS = ("mlp", "cnn", "permuted", "bonus")  # hw3.experiments.GROUPS, named here so --help needs no torch


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its --help documents every command and option)."""
    p = argparse.ArgumentParser(prog="python -m hw3", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,export}")
    run = sub.add_parser("run", help="run the experiments of 2.2 to 2.6 (cached) and print their tables",
                         description="Run the experiments of Part 2 with the package's definitions (the notebook's). "
                                     "Finished runs are cached under the results folder and loaded instead of "
                                     "retrained unless --force is given.")
    run.add_argument("group", choices=[*GROUPS, "all"],
                     help="mlp: 2.2 (4 optimizers, 3 seeds); cnn: 2.3 (4 optimizers, "
                          "3 seeds); permuted: 2.5 (MLP and CNN, 3 seeds each, SGD-Nesterov); bonus: 2.6's forward selection "
                          "(validation only), then the final recipe over 3 seeds (tested); all: every group")
    run.add_argument("--epochs", type=_positive_int, default=20, help="epochs per run for mlp/cnn/permuted (default 20)")
    run.add_argument("--data", metavar="DIR", default=None,
                     help="KMNIST folder holding KMNIST/raw/ (default: $HW3_DATA_DIR, else data/)")
    run.add_argument("--results", metavar="DIR", default=None,
                     help="where results go (default: $HW3_RESULTS_DIR, else results/)")
    run.add_argument("--device", default=None, help="cpu, cuda or mps (default: the fastest available)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    run.add_argument("--force", action="store_true", help="retrain even when a cached result exists")
    export = sub.add_parser("export", help="write one self-contained, executed notebook to hand in",
                            description="Write homework3.ipynb as a single notebook that carries the hw3 package "
                                        "inside it, execute it (reusing cached results whose code is unchanged) and "
                                        "save it with its outputs; nothing is written if a cell fails.")
    export.add_argument("--out", metavar="FILE", default="dist/homework3.ipynb",
                        help="where to write it (default: dist/homework3.ipynb)")
    export.add_argument("--no-execute", action="store_true", help="write it without executing it (no outputs)")
    export.add_argument("--timeout", type=_positive_int, default=3600, help="seconds one cell may take (default 3600)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "export":
        return _export(args)
    for name, value in (("HW3_DATA_DIR", args.data), ("HW3_RESULTS_DIR", args.results)):
        if value:
            os.environ[name] = str(Path(value).resolve())
    from . import tables
    from .device import pick_device
    from .experiments import run_group
    device = pick_device(args.device)
    t0 = time.perf_counter()
    for group in GROUPS if args.group == "all" else (args.group,):
        results = run_group(group, device=device, progress=not args.no_progress, force=args.force,
                            **({} if group == "bonus" else {"epochs": args.epochs}))
        table = tables.runs_table(results, key=lambda r: f"{r['config']['model']} {r['config']['dataset']} {r['label']}") \
            if group != "bonus" else tables.final_table([("2.6 final recipe", [r for r in results if "test_acc" in r["final"]])])
        print(f"\n== {group} ==\n{table!r}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s (cached runs cost nothing)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import ExportError, export_notebook
    try:
        out = export_notebook(Path(args.out), execute=not args.no_execute, timeout=args.timeout)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: upload this one file to Colab (or hand it in) and run all cells")
    return 0
