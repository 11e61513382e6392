"""EE-411 Homework 3: NumPy backprop (Part 1) and MLP / CNN experiments on KMNIST (Part 2).

Every graded name is importable from the package itself, e.g.

    from hw3 import predict, logistic_loss, stable_logistic_loss, gradient, MLP, CNN, count_parameters

Each is loaded from its module on first use (PEP 562), so `import hw3` alone imports neither torch
nor NumPy, and the self-contained export, which carries only the modules the notebook imports, is
unchanged by this list (the modules are named as strings here, never imported at the top).

`hw3.train` is the function `train` (a graded name) even once the module of the same name is loaded;
the module is `from hw3.train import ...` or `sys.modules["hw3.train"]`.
"""
from __future__ import annotations

import importlib
import sys
import types

_LAZY = {
    **dict.fromkeys(("predict", "logistic_loss", "stable_logistic_loss", "gradient", "sigmoid"), "backprop"),
    **dict.fromkeys(("MLP", "CNN", "count_parameters"), "models"),
    **dict.fromkeys(("RandomPermutation", "load_kmnist", "kmnist_splits", "make_loaders"), "data"),
    **dict.fromkeys(("train", "evaluate"), "train"),
    "run_experiment": "experiments",
    **dict.fromkeys(("BonusCNN", "BonusConfig", "run_bonus", "CANDIDATES", "select_recipe"), "bonus"),
}  # graded name -> the module of the package that defines it
__all__ = list(_LAZY)


def __getattr__(name: str):
    """A graded name, imported from its module on first use and then kept as an attribute of the package."""
    if name not in _LAZY:  # also how `from hw3 import plots` falls back to importing the submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package's module type: loading the submodule `hw3.train` must not rebind `hw3.train`, the function."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            return  # the import system binds a loaded submodule to its parent; here the graded name wins
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
