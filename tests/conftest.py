"""Synthetic KMNIST in torchvision's raw layout, so that no test needs the network or the real data."""
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import hw3.kmnist

N_TRAIN, N_TEST = 11_000, 1_000  # 10,000 validation images as in the homework, 1,000 left to train on


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file: magic (0, 0, type 0x08 = uint8, ndim), big-endian dims, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def synthetic_kmnist(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake characters: each class is a fixed random stroke pattern, plus shifts and noise."""
    rng = np.random.default_rng(seed)
    templates = (np.random.default_rng(0).random((10, 28, 28)) > 0.8) * 255.0
    labels = np.repeat(np.arange(10), n // 10)
    rng.shuffle(labels)
    images = templates[labels]
    shifts = rng.integers(-1, 2, size=(n, 2))
    images = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(images, shifts)])
    images = np.clip(0.7 * images + rng.normal(0, 40, images.shape), 0, 255)
    return images.astype(np.uint8), labels.astype(np.uint8)


def make_fake_root(root: Path) -> dict[str, str]:
    """Write the four files under root/KMNIST/raw; return their md5s."""
    raw = root / "KMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", N_TRAIN, 1), ("t10k", N_TEST, 2)):
        images, labels = synthetic_kmnist(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return {name: hashlib.md5((raw / name).read_bytes()).hexdigest() for name in hw3.kmnist.RAW_MD5}


@pytest.fixture(scope="session")
def fake_md5(tmp_path_factory):
    root = tmp_path_factory.mktemp("kmnist")
    return root, make_fake_root(root)


@pytest.fixture
def fake_root(fake_md5, monkeypatch, tmp_path):
    """A synthetic data root, with hw3's md5 table pointed at its files and $HW3_DATA_DIR at the root, and
    $HW3_RESULTS_DIR at a fresh folder, for the test's duration."""
    root, md5 = fake_md5
    monkeypatch.setattr(hw3.kmnist, "RAW_MD5", md5)
    monkeypatch.setenv("HW3_DATA_DIR", str(root))
    monkeypatch.setenv("HW3_RESULTS_DIR", str(tmp_path / "results"))
    return root


@pytest.fixture(scope="session")
def quick_results(tmp_path_factory):
    """One results folder for the quick-mode executions of the notebook: the second one loads the first's runs."""
    return tmp_path_factory.mktemp("quick-results")


@pytest.fixture
def md5_file(fake_md5, tmp_path):
    """A JSON file of the synthetic files' md5s, for $HW3_RAW_MD5 in another process (a kernel, the CLI)."""
    path = tmp_path / "md5.json"
    path.write_text(json.dumps(fake_md5[1]))
    return path


def find_real_kmnist():
    """A folder with the real KMNIST (md5-checked later), or None."""
    import os
    candidates = [os.environ.get("HW3_DATA_DIR"), hw3.kmnist.DEFAULT_DATA_DIR, hw3.kmnist.PROJECT_ROOT.parent / "shared" / "kmnist"]
    for c in candidates:
        if c and (Path(c) / "KMNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return Path(c)
    return None


def pytest_terminal_summary(terminalreporter):
    """Say loudly, at the end of every run, when the checks on the real KMNIST did not run (no data here)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "real KMNIST not found" in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep("=", f"{len(skipped)} test(s) on the real KMNIST NOT RUN", yellow=True, bold=True)
        terminalreporter.write_line("real KMNIST not found: set HW3_DATA_DIR to a folder holding KMNIST/raw/ "
                                    "to check the real files' md5s, counts and split sizes")
