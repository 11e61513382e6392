"""Command line: `python -m hw3 run mlp|cnn|permuted|bonus|all [options]`, the notebook's experiments."""
from __future__ import annotations

import argparse
import time

from . import experiments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its --help documents every option)."""
    p = argparse.ArgumentParser(prog="python -m hw3", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="run")
    run = sub.add_parser("run", help="run experiments (cached under results/) and save their figures",
                         description="Run the experiments of Part 2. Finished runs are cached as JSON under the "
                                     "results folder and loaded instead of retrained unless --force is given; "
                                     "figures are saved under <results>/figures/.")
    run.add_argument("group", choices=[*experiments.GROUPS, "all"],
                     help="mlp: 2.2 (4 optimizers); cnn: 2.3 (4 optimizers); permuted: 2.5 (MLP and CNN, "
                          "SGD-Nesterov, permuted pixels); bonus: 2.6; all: every group")
    run.add_argument("--epochs", type=_positive_int, default=20, help="epochs per run for mlp/cnn/permuted (default 20)")
    run.add_argument("--batch-size", type=_positive_int, default=64, help="training batch size (default 64)")
    run.add_argument("--seed", type=int, default=0, help="seed of the initialisation and data order (default 0)")
    run.add_argument("--data", metavar="DIR", default=None,
                     help="KMNIST folder holding KMNIST/raw/ (default: $HW3_DATA_DIR, else data/)")
    run.add_argument("--results", metavar="DIR", default=None,
                     help="where results and figures go (default: $HW3_RESULTS_DIR, else results/)")
    run.add_argument("--device", default=None, help="cpu, cuda or mps (default: the fastest available)")
    run.add_argument("--force", action="store_true", help="retrain even when a cached result exists")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    from . import plots

    groups = experiments.GROUPS if args.group == "all" else (args.group,)
    figures = experiments.results_dir(args.results) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for group in groups:
        results = experiments.run_group(group, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                        data_dir=args.data, force=args.force, results=args.results,
                                        device=args.device, progress=not args.no_progress)
        print(f"\n== {group} ==\n{plots.summary_table(results)}")
        if group != "bonus":
            fig = plots.plot_learning_curves(results, title=f"{group}: learning curves")
            fig.savefig(figures / f"{group}_curves.png", dpi=120)
            print(f"figure: {figures / f'{group}_curves.png'}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s (cached runs cost nothing)")
    return 0
