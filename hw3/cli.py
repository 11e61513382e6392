"""Command line: every experiment of the notebook, and the export of the notebook as one self-contained file.

  python -m hw3 run mlp|cnn|permuted|bonus|all            the runs of 2.2 to 2.6 (cached under results/)
  python -m hw3 sweep [controls|cnn-seeds|ablation|explorations ...]
                                                          the side studies of the appendix (seeds, controls, ablation)
  python -m hw3 export                                    homework3.ipynb with the hw3 code inside it, to hand in
"""
from __future__ import annotations

import argparse
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


def _study(text: str) -> str:
    from .sweep import STUDIES
    if text not in STUDIES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(STUDIES)}, got {text!r}")
    return text


def _training_options() -> argparse.ArgumentParser:
    """The options every training command shares."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data", metavar="DIR", default=None,
                   help="KMNIST folder holding KMNIST/raw/ (default: $HW3_DATA_DIR, else data/)")
    p.add_argument("--results", metavar="DIR", default=None,
                   help="where results and figures go (default: $HW3_RESULTS_DIR, else results/)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the fastest available)")
    p.add_argument("--force", action="store_true", help="retrain even when a cached result exists")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its --help documents every command and option)."""
    from . import experiments, sweep as sweep_module
    p = argparse.ArgumentParser(prog="python -m hw3", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,sweep,export}")
    shared = _training_options()
    run = sub.add_parser("run", parents=[shared], help="run the experiments of 2.2 to 2.6 and save their figures",
                         description="Run the experiments of Part 2. Finished runs are cached as JSON under the "
                                     "results folder and loaded instead of retrained unless --force is given; "
                                     "figures are saved under <results>/figures/.")
    run.add_argument("group", choices=[*experiments.GROUPS, "all"],
                     help="mlp: 2.2 (4 optimizers); cnn: 2.3 (4 optimizers); permuted: 2.5 (MLP and CNN, "
                          "SGD-Nesterov, permuted pixels); bonus: 2.6 (the final model, tested); all: every group")
    run.add_argument("--epochs", type=_positive_int, default=20, help="epochs per run for mlp/cnn/permuted (default 20)")
    run.add_argument("--batch-size", type=_positive_int, default=64, help="training batch size (default 64)")
    run.add_argument("--seed", type=int, default=0, help="seed of the initialisation and data order (default 0)")
    sweep = sub.add_parser("sweep", parents=[shared], help="the appendix's side studies: " + ", ".join(sweep_module.STUDIES),
                           description=sweep_module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("studies", nargs="*", type=_study, metavar="STUDY",
                       help=f"one or more of {', '.join(sweep_module.STUDIES)} (default: all)")
    sweep.add_argument("--record", action="store_true",
                       help="also write the summary that the notebook shows to hw3/recorded/sweep.json")
    export = sub.add_parser("export", help="write one self-contained notebook to hand in",
                            description="Write homework3.ipynb, with its outputs, as a single notebook that carries "
                                        "the hw3 package inside it: uploaded alone to Colab, 'Run all' works.")
    export.add_argument("--out", metavar="FILE", default="dist/homework3.ipynb",
                        help="where to write it (default: dist/homework3.ipynb)")
    export.add_argument("--notebook", metavar="FILE", default=None,
                        help="the notebook to export (default: the project's homework3.ipynb)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "export":
        return _export(args)
    import matplotlib
    matplotlib.use("Agg")
    t0 = time.perf_counter()
    if args.command == "run":
        _run(args)
    else:
        _sweep(args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s (cached runs cost nothing)")
    return 0


def _run(args: argparse.Namespace) -> None:
    from . import experiments, plots
    from .cache import results_dir
    groups = experiments.GROUPS if args.group == "all" else (args.group,)
    figures = results_dir(args.results) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for group in groups:
        results = experiments.run_group(group, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                        data_dir=args.data, force=args.force, results=args.results,
                                        device=args.device, progress=not args.no_progress)
        print(f"\n== {group} ==\n{plots.summary_table(results)}")
        if group != "bonus":
            fig = plots.plot_learning_curves(results, title=f"{group}: learning curves")
            fig.savefig(figures / f"{group}_curves.png", dpi=120)
            print(f"figure: {figures / f'{group}_curves.png'}")


def _sweep(args: argparse.Namespace) -> None:
    from . import sweep
    summary = sweep.run_sweep(args.studies or sweep.STUDIES, data_dir=args.data, results=args.results, force=args.force,
                              device=args.device, progress=not args.no_progress)
    studies = summary["studies"]
    for name, keys in (("controls", ("val_acc", "test_acc")), ("cnn-seeds", ("val_acc", "last5_val_acc")),
                       ("ablation", ("val_acc", "val_acc_tta"))):
        if name in studies:
            print(f"\n{sweep.seed_table(studies[name], name, keys)}")
    if "explorations" in studies:
        print(f"\n{sweep.explorations_table(studies['explorations'])}")
    if args.record:
        print(f"\nrecorded: {sweep.record(summary)}")


def _export(args: argparse.Namespace) -> int:
    from .export import ExportError, export_notebook
    try:
        out, warnings = export_notebook(Path(args.out), Path(args.notebook) if args.notebook else None)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {out}: upload this one file to Colab (or hand it in) and run all cells")
    return 0
