"""The results cache: `cached(fn, **config)` runs fn(**config) once and keeps its result (JSON) and weights (.pt).

A result's file is named by a digest of its configuration, the md5s of the four KMNIST files, and the
code that computes it: `fn` and every function, class and constant of the notebook or of `hw3` that
it reaches by name, transitively (`closure_digest`). So an edit of the model, the loop, the data
preparation or the driver gives a new key and a new training run, whether the code is defined in a
notebook cell or in the package (identical definitions hash identically); a change of comments or
formatting does not. Plumbing that does not change what is computed (this module, plots, progress bars,
KMNIST's files, whose md5s are part of the key, and the device module) is not hashed, nor are the arguments
`device` and `progress`, nor the library versions. The device, `prepare_model`'s memory layout (channels_last
on a CPU) and the library versions can change floating-point rounding, as another processor does: a result
is the same computation, not the same bits, and a CPU result is reused on a GPU.

Writes are atomic (a temporary file, then a rename), so an interrupted run leaves nothing behind and
a reader never sees half a result. JSON has no NaN or infinity: they are stored as null.
"""
from __future__ import annotations

import ast
import dataclasses
import dis
import hashlib
import inspect
import json
import os
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import IO

import torch

from . import kmnist
from .progress import note_run

RESULTS_DIR = kmnist.PROJECT_ROOT / "results"


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
            return f"<no source: {obj.__qualname__}>"  # e.g. made by dataclasses: the same in a notebook
        return ast.unparse(ast.parse(textwrap.dedent(text)))
    return repr(obj)


PLUMBING = ("hw3.cache", "hw3.plots", "hw3.progress", "hw3.device", "hw3.kmnist")  # never hashed
RUNTIME = ("device", "progress")  # arguments that cannot change a result: not part of its key
_CONSTANTS = (int, float, str, bool, tuple, list, dict, frozenset, type(None))


def _project_code(obj) -> bool:
    """A function or class of the notebook (__main__) or of hw3, plumbing excepted."""
    module = getattr(obj, "__module__", None) or ""
    return ((inspect.isfunction(obj) or inspect.isclass(obj)) and (module == "__main__" or module.split(".")[0] == "hw3")
            and not module.startswith(PLUMBING))


def _global_names(code) -> set[str]:
    """Every global name a code object (and the functions and classes nested in it) loads; not attribute names."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _global_names(const)
    return names


def _functions_of(obj) -> list:
    """A function itself, or the functions defined in a class's body (methods, static/class methods, properties)."""
    if inspect.isfunction(obj):
        return [obj]
    out = []
    for value in vars(obj).values():
        value = getattr(value, "__func__", value)
        if isinstance(value, property):
            out += [f for f in (value.fget, value.fset, value.fdel) if f is not None]
        elif inspect.isfunction(value):
            out.append(value)
    return out


def closure_digest(*roots) -> str:
    """sha1 of the source of `roots` and of every project function, class and constant they reach by global name."""
    parts: dict[str, str] = {}
    todo, seen = list(roots), set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        parts[f"{obj.__qualname__}"] = _source(obj)
        if inspect.isclass(obj):
            todo += [b for b in obj.__bases__ if _project_code(b)]
        for f in _functions_of(obj):
            if getattr(f.__code__, "co_filename", "") == "<string>":  # made by exec (a dataclass's __init__)
                continue
            for name in sorted(_global_names(f.__code__)):
                if name not in f.__globals__:  # a builtin
                    continue
                value = f.__globals__[name]
                if _project_code(value):
                    todo.append(value)
                elif isinstance(value, _CONSTANTS) and not name.startswith("_"):  # _private: state, not settings
                    parts[f"{name}="] = repr(value)
    return hashlib.sha1("\0".join(f"{k}\0{v}" for k, v in sorted(parts.items())).encode()).hexdigest()


def _config_json(config: dict) -> str:
    """The configuration as canonical JSON: a class by its name, a dataclass by its fields."""
    def plain(v):
        if inspect.isclass(v):
            return f"class {v.__qualname__}"
        if dataclasses.is_dataclass(v):
            return {"__dataclass__": type(v).__qualname__, **dataclasses.asdict(v)}
        raise TypeError(f"a cached configuration holds JSON values, classes and dataclasses, got {type(v).__name__}")
    return json.dumps(config, sort_keys=True, default=plain)


def result_path(fn: Callable, config: dict, results: str | os.PathLike | None = None) -> Path:
    """Where the result of fn(**config) is kept: <results>/<fn name>-<readable values>-<digest>.json."""
    config = {k: v for k, v in config.items() if k not in RUNTIME}
    digest = hashlib.sha1(json.dumps([_config_json(config), kmnist.RAW_MD5,
                                      closure_digest(fn, *[v for v in config.values() if inspect.isclass(v)])]
                                     ).encode()).hexdigest()
    readable = "-".join(v.__name__ if inspect.isclass(v) else str(v) for _, v in sorted(config.items())
                        if isinstance(v, (str, int)) or inspect.isclass(v))
    readable = "".join(c if c.isalnum() or c in "._=" else "-" for c in readable)[:60]
    return results_dir(results) / f"{fn.__name__}-{readable}-{digest[:12]}.json"


COUNTS: dict[str, set] = {"loaded": set(), "trained": set()}  # the results `cached` loaded or computed in this process


def cached(fn: Callable, *, results: str | os.PathLike | None = None, force: bool = False, **config) -> dict:
    """fn(**config)'s result: loaded when this configuration already ran with the same code and data, else
    computed now and kept (fn returns the result and the list of trained models, whose weights are saved too)."""
    path = result_path(fn, config, results)
    if not force and (hit := load_result(path)) is not None:
        COUNTS["loaded"].add(path.name)
        note_run(trained=False)
        return hit
    COUNTS["trained"].add(path.name)
    result, models = fn(**config)
    result = finite_or_none(result)
    save_weights(models, path)  # weights first: a result on disk always has its weights beside it
    save_result(result, path)
    note_run(trained=True)
    return result


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """Where results go: the argument, else $HW3_RESULTS_DIR, else the project's results/."""
    return Path(path or os.environ.get("HW3_RESULTS_DIR") or RESULTS_DIR)


def write_atomic(path: Path, write: Callable[[IO], None], binary: bool = False) -> None:
    """Write a file through `write(f)` into a temporary file in the same folder, then rename it: readers
    never see half a file, and a failure or an interrupt at any point (even inside `write`) leaves neither
    the target nor the temporary file; an older target stays as it was. Text (UTF-8) unless `binary`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as f:
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
    states = [{k: v.cpu() for k, v in m.state_dict().items()} for m in models]
    write_atomic(path.with_suffix(".pt"), lambda f: torch.save(states, f), binary=True)


def load_weights(path: Path, build: Callable, device) -> list | None:
    """The models made by `build()` with the weights saved beside a result, or None when missing or not fitting."""
    import pickle

    from .device import prepare_model
    try:
        states = torch.load(path.with_suffix(".pt"), map_location="cpu", weights_only=True)
    except Exception:  # missing, truncated or garbage: torch raises anything from OSError to IndexError
        return None
    try:
        models = []
        for state in states:
            model = build()
            model.load_state_dict(state)
            models.append(prepare_model(model, device).eval())
    except (OSError, RuntimeError, ValueError, TypeError, KeyError, pickle.UnpicklingError):
        return None
    return models or None
