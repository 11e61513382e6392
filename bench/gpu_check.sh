#!/usr/bin/env bash
# One prepared check on a CUDA machine: the engine on CUDA (timed), and a bonus width/epochs sweep
# measured on validation only. Expects the KMNIST .gz files in .kmnist/KMNIST/raw/.
set -euo pipefail
export PYTHONUNBUFFERED=1 HW3_DATA_DIR=$PWD/.kmnist HW3_RESULTS_DIR=${OUT:-/tmp}/results
gunzip -kf .kmnist/KMNIST/raw/*.gz
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"
python3 -m hw3 run mlp --no-progress
python3 -m hw3 run cnn --no-progress
python3 -m hw3 run permuted --no-progress
python3 - <<'PY'
import time
from hw3.bonus import run_bonus
for width, epochs in [(32, 16), (24, 24), (16, 40)]:
    t = time.time()
    r = run_bonus(width=width, epochs=epochs, progress=False)
    f = r["final"]
    print(f"bonus width {width} epochs {epochs}: val {100*f['val_acc']:.2f}% val+TTA {100*f['val_acc_tta']:.2f}% "
          f"time {r['wall_time_s']:.0f}s", flush=True)
PY
