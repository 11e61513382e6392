"""The results cache: one JSON file per finished run, named by a digest of its configuration, its data and its code.

What is hashed (`config_digest`): the run's configuration, the md5s of the four KMNIST files, and the
`code_digest` of every function and class that determines the result (each caller lists them: the model
classes, the training loop, the data preparation, the bonus recipe, and whatever the notebook passes in
instead of the package's own). A function counts by its source text, parsed and printed again by the
`ast` module: an edit of the code, docstrings included, gives a new key and so a new training run; a
change of comments or formatting alone does not. A class counts by the source of each function defined
in its body and the value of its other attributes, so a class defined in a notebook cell hashes like the
same class in a module (`inspect.getsource` of a class fails in a notebook before Python 3.13). Code
whose source cannot be found (a builtin, a function made by exec) counts by its qualified name.

Writes are atomic (a temporary file, then a rename), so an interrupted run leaves nothing behind and
a reader never sees half a result. JSON has no NaN or infinity: they are stored as null.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import os
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from . import data

RESULTS_DIR = data.PROJECT_ROOT / "results"


def _source(obj) -> str:
    """The normalised source of a function, or a class as its functions' sources and its attributes' values."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        return "property:" + "|".join(_source(f) for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
    if inspect.isclass(obj):
        skip = {"__dict__", "__weakref__", "__module__", "__doc__", "__annotations__", "__dataclass_params__",
                "__dataclass_fields__", "__match_args__", "__hash__", "__static_attributes__", "__firstlineno__"}
        parts = [f"class {obj.__qualname__}({', '.join(b.__qualname__ for b in obj.__bases__)})", inspect.getdoc(obj) or ""]
        for name, value in sorted(vars(obj).items()):
            if name in skip:
                continue
            code = getattr(getattr(value, "__func__", value), "__code__", None)
            if code is not None and code.co_filename == "<string>":  # made by exec, e.g. a dataclass's __init__
                continue
            parts.append(f"{name}={_source(value) if callable(value) or code is not None or isinstance(value, property) else repr(value)}")
        return "\n".join(parts)
    if callable(obj) and hasattr(obj, "__code__"):
        try:
            text = inspect.getsource(obj)
        except (OSError, TypeError):
            return f"<no source: {obj.__module__}.{obj.__qualname__}>"
        return ast.unparse(ast.parse(textwrap.dedent(text)))
    return repr(obj)


def code_digest(*objects) -> str:
    """sha1 of the normalised source of functions and classes (and the repr of plain values), in order."""
    return hashlib.sha1("\0".join(_source(o) for o in objects).encode()).hexdigest()


def config_digest(config, code: str = "") -> str:
    """sha1 of a config (a dataclass or its dict of fields), the md5s of the data files and a code_digest."""
    fields = config if isinstance(config, dict) else dataclasses.asdict(config)
    payload = json.dumps([fields, data.RAW_MD5, code], sort_keys=True)
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


def save_weights(models: list, path: Path) -> None:
    """The models' weights beside a result (<key>.pt, on the CPU), written atomically like the JSON."""
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.pt.tmp")
    torch.save([{k: v.cpu() for k, v in m.state_dict().items()} for m in models], tmp)
    os.replace(tmp, path.with_suffix(".pt"))


def load_weights(path: Path, build: Callable, device, count: int) -> list | None:
    """`count` models made by `build()` with the weights saved beside a result, or None when missing or not fitting."""
    import pickle

    import torch

    from .models import prepare_model
    try:
        states = torch.load(path.with_suffix(".pt"), map_location="cpu", weights_only=True)
        models = []
        for state in states:
            model = build()
            model.load_state_dict(state)
            models.append(prepare_model(model, device).eval())
    except (OSError, RuntimeError, ValueError, TypeError, KeyError, pickle.UnpicklingError):
        return None
    return models if len(models) == count else None
