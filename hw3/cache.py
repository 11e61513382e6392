"""The results cache: one JSON file per finished run, named by a digest of its configuration and data files.

Writes are atomic (a temporary file, then a rename), so an interrupted run leaves nothing behind and
a reader never sees half a result. JSON has no NaN or infinity: they are stored as null.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from . import data

RESULTS_DIR = data.PROJECT_ROOT / "results"


def config_digest(config) -> str:
    """sha1 of a config (a dataclass or its dict of fields) together with the md5s of the data files it was trained on."""
    fields = config if isinstance(config, dict) else dataclasses.asdict(config)
    payload = json.dumps([fields, data.RAW_MD5], sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """Where results go: the argument, else $HW3_RESULTS_DIR, else the project's results/."""
    return Path(path or os.environ.get("HW3_RESULTS_DIR") or RESULTS_DIR)


def write_atomic(path: Path, write: Callable[[TextIO], None]) -> None:
    """Write a text file through `write(f)` into a temporary file in the same folder, then rename it:
    readers never see half a file, and a failure leaves neither the target nor the temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(obj: dict, path: Path, indent: int | None = None) -> None:
    """Write JSON atomically (see write_atomic)."""
    write_atomic(path, lambda f: json.dump(obj, f, indent=indent))


def save_result(result: dict, path: Path) -> None:
    """Store a result atomically, with its non-finite floats as null."""
    write_json_atomic(finite_or_none(result), path)


def load_result(path: Path) -> dict | None:
    """A cached result, or None when absent or unreadable (then the run is simply redone)."""
    try:
        with open(path) as f:
            result = json.load(f)
        return result if isinstance(result, dict) and "history" in result and "final" in result else None
    except (OSError, ValueError):
        return None


def finite_or_none(obj):
    """A copy of a JSON-like object with every NaN or infinite float replaced by None."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite_or_none(v) for v in obj]
    return obj
