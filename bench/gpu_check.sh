#!/usr/bin/env bash
# One prepared check on a CUDA machine: every run of the notebook on CUDA (timed), then the side studies. Expects the KMNIST .gz files in .kmnist/KMNIST/raw/.
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD HW3_DATA_DIR=$PWD/.kmnist HW3_RESULTS_DIR=${OUT:-/tmp}/results
gunzip -kf .kmnist/KMNIST/raw/*.gz
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"
python3 -m hw3 run mlp --no-progress
python3 -m hw3 run cnn --no-progress
python3 -m hw3 run permuted --no-progress
python3 -m hw3 run bonus --no-progress
# the side studies of the appendix, one run after the other (run as 8 parallel processes on one H200, none
# of them finished within 7 minutes: do not share the GPU between processes)
python3 -m hw3 sweep --no-progress
