"""The candidates for the bonus's final model (hw3.bonus.FINAL_CANDIDATES), compared on validation only.

    PYTHONPATH=. python scripts/bonus_sweep.py            # train the candidates not yet cached, then print the comparison
    PYTHONPATH=. python scripts/bonus_sweep.py --force    # retrain them

The test split is never evaluated here. Each candidate takes about 12-13 minutes on a 2-core CPU.
"""
from __future__ import annotations

import argparse

from hw3.bonus import FINAL_CANDIDATES, candidate_comparison, run_bonus


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="retrain even when a cached result exists")
    p.add_argument("--data", metavar="DIR", default=None, help="KMNIST folder (default: $HW3_DATA_DIR, else data/)")
    args = p.parse_args()
    for name, overrides in FINAL_CANDIDATES.items():
        r = run_bonus(data_dir=args.data, force=args.force, progress=False, **overrides)  # validation only
        print(f"{name}: val {100 * r['final']['val_acc']:.2f}%, val+TTA {100 * r['final']['val_acc_tta']:.2f}%, "
              f"{r['wall_time_s']:.0f}s", flush=True)
    print(candidate_comparison())


if __name__ == "__main__":
    main()
