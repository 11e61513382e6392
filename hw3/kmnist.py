"""KMNIST's four files: where they are, their md5 check, and torchvision's download when they are missing.

Plumbing: a result's cache key holds the files' md5s, so nothing here can change a number without changing the key.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from urllib.error import URLError

from torchvision import datasets
from torchvision.datasets.utils import calculate_md5

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"

# (romanised, hiragana) for labels 0..9, as in the README of the dataset (github.com/rois-codh/kmnist).
CLASSES = [("o", "お"), ("ki", "き"), ("su", "す"), ("tsu", "つ"), ("na", "な"),
           ("ha", "は"), ("ma", "ま"), ("ya", "や"), ("re", "れ"), ("wo", "を")]

# md5 of the decompressed IDX files that torchvision reads (the .gz md5s are torchvision's own,
# checked by its downloader).
RAW_MD5 = {
    "train-images-idx3-ubyte": "92be26ec9822e900ac425d0a0aa84ced",
    "train-labels-idx1-ubyte": "949e75301f8813e0dc5800dcc320fc52",
    "t10k-images-idx3-ubyte": "bf305b8cd328700fbc17f5acbc2856d2",
    "t10k-labels-idx1-ubyte": "9f55f451c0988b028eccdf7d5cc265ab",
}
DOWNLOAD_TRIES = 3
DOWNLOAD_TIMEOUT_S = 60


class DataUnavailableError(RuntimeError):
    """KMNIST is neither on disk nor downloadable."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $HW3_DATA_DIR, else the project's data/."""
    chosen = data_dir if data_dir is not None else os.environ.get("HW3_DATA_DIR") or DEFAULT_DATA_DIR
    return Path(chosen).expanduser().resolve()


def _missing_files_message(raw: Path, why: str) -> str:
    gz = dict(datasets.KMNIST.resources)
    rows = "\n".join(f"  {name}.gz  (md5 {gz[name + '.gz']}; decompressed md5 {md5})" for name, md5 in RAW_MD5.items())
    return (f"KMNIST is not available: {why}\n"
            f"Put these four files (from https://github.com/rois-codh/kmnist, .gz or decompressed) in\n  {raw}\n{rows}\n"
            f"or point HW3_DATA_DIR (or data_dir=...) at a folder that holds KMNIST/raw/.")


_MD5_SEEN: dict[tuple, str] = {}  # (path, inode, size, mtime) -> md5: each file version is hashed once per process


def _md5(path: Path) -> str:
    """md5 of a file, remembered for as long as the file keeps its inode, size and modification time."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _MD5_SEEN:
        _MD5_SEEN[key] = calculate_md5(str(path))
    return _MD5_SEEN[key]


def _bad_files(raw: Path) -> dict[str, str]:
    """Files that are missing or whose md5 differs from RAW_MD5: {name: reason}."""
    bad = {}
    for name, want in RAW_MD5.items():
        path = raw / name
        if not path.exists():
            bad[name] = "missing"
            continue
        got = _md5(path)
        if got != want:
            bad[name] = f"md5 {got}, expected {want} (corrupt or partial file)"
    return bad


def _set_aside(raw: Path, names) -> None:
    """Rename corrupt files to *.corrupt so that nothing, torchvision included, reads them as valid."""
    for name in names:
        for path in (raw / name, raw / f"{name}.gz"):
            if path.exists():
                path.replace(path.with_name(path.name + ".corrupt"))


def _download(root: Path) -> None:
    """torchvision's download (md5-checked .gz, then extraction), retried with a socket timeout."""
    last = None
    old_timeout = socket.getdefaulttimeout()
    for attempt in range(1, DOWNLOAD_TRIES + 1):
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # the mirror can hang; torchvision sets no timeout
        try:
            datasets.KMNIST(str(root), train=True, download=True)
            return
        except (RuntimeError, URLError, OSError) as e:
            last = e
            if attempt < DOWNLOAD_TRIES:
                time.sleep(2 ** attempt)
        finally:
            socket.setdefaulttimeout(old_timeout)
    raise DataUnavailableError(
        _missing_files_message(root / "KMNIST" / "raw", f"download failed {DOWNLOAD_TRIES} times; last error: {last}"))


def ensure_kmnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Make sure the four IDX files are present and md5-verified; download them if allowed. Returns the root."""
    root = resolve_data_dir(data_dir)
    raw = root / "KMNIST" / "raw"
    bad = _bad_files(raw)
    if not bad:
        return root
    corrupt = {n: why for n, why in bad.items() if why != "missing"}
    if corrupt and not os.access(raw, os.W_OK):
        raise DataUnavailableError(_missing_files_message(raw, f"corrupt files in a read-only folder: {corrupt}"))
    _set_aside(raw, corrupt)
    if not download:
        raise DataUnavailableError(_missing_files_message(raw, f"download disabled and files not usable: {bad}"))
    _download(root)
    bad = _bad_files(raw)
    if bad:
        _set_aside(raw, [n for n, why in bad.items() if why != "missing"])
        raise DataUnavailableError(_missing_files_message(raw, f"downloaded files failed verification: {bad}"))
    return root


def _raw_md5_override() -> None:
    """$HW3_RAW_MD5 names a JSON file of md5s for a copy other than the official files (e.g. a small synthetic one)."""
    path = os.environ.get("HW3_RAW_MD5")
    if path:
        RAW_MD5.update(json.loads(Path(path).read_text()))


_raw_md5_override()
