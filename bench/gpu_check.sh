#!/usr/bin/env bash
# One prepared check on a CUDA machine: the whole notebook executed there (timed), from an empty cache.
# Expects the KMNIST .gz files in .kmnist/KMNIST/raw/ and nbclient/nbformat/ipykernel installed (bring a wheelhouse).
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD HW3_DATA_DIR=$PWD/.kmnist HW3_RESULTS_DIR=${OUT:-/tmp}/results MPLBACKEND=Agg
gunzip -kf .kmnist/KMNIST/raw/*.gz
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"
time python3 -m hw3 export --out "${OUT:-/tmp}/homework3.cuda.ipynb"
