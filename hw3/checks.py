"""Input checks of Part 1's functions: bad input raises a ValueError (KeyError for a missing weight) saying what
was expected and what was received, never a silently wrong number. Vectors may be (B,) or columns (B, 1).

Plumbing: Part 1's graded functions call these; they compute nothing.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def as_finite_array(name: str, a: object, ndim: int) -> np.ndarray:
    """`a` as a float64 array of `ndim` dimensions (a column (B, 1) counts as a vector), numeric and finite."""
    arr = np.asarray(a)
    arr = arr[:, 0] if ndim == 1 and arr.shape[1:] == (1,) else arr  # a column (B, 1) is a vector (B,) too
    bad = int(np.size(arr) - np.isfinite(arr).sum()) if arr.dtype.kind in "biuf" else -1  # NaN/inf count; -1: not numeric
    if bad or arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D{' (B,) or (B, 1)' * (ndim == 1)}, numeric and finite; "
                         f"got shape {np.shape(a)}, dtype {arr.dtype}" + f", {bad} NaN/inf entries" * (bad > 0))
    if arr.size == 0:  # an empty batch would give a gradient of zeros and a loss of nan, with no error
        raise ValueError(f"{name} must not be empty (at least one sample, one feature, one hidden unit); got shape {np.shape(a)}")
    return arr.astype(np.float64)


def check_X_W(X: object, W: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X (B x D) and the weights w_1 (D x K), w_2 (K x 1) as float64 arrays, their shapes checked against each other."""
    if not isinstance(W, Mapping):
        raise ValueError(f"W must be a dict with keys 'w_1' and 'w_2', got {type(W).__name__}")
    if missing := sorted({"w_1", "w_2"} - set(W)):
        raise KeyError(f"W must have keys 'w_1' (D x K) and 'w_2' (K x 1); missing {missing}, got keys {sorted(map(str, W))}")
    X, w_1, w_2 = as_finite_array("X", X, 2), as_finite_array("W['w_1']", W["w_1"], 2), as_finite_array("W['w_2']", W["w_2"], 2)
    if w_1.shape[0] != X.shape[1] or w_2.shape != (w_1.shape[1], 1):
        raise ValueError(f"W['w_1'] must be D x K and W['w_2'] K x 1 with D = X.shape[1] = {X.shape[1]}, K = W['w_1'].shape[1] = {w_1.shape[1]}: "
                         f"expected ({X.shape[1]}, {w_1.shape[1]}) and ({w_1.shape[1]}, 1), got {w_1.shape} and {w_2.shape}")
    return X, w_1, w_2


def check_labels(y: object, n: int, other: str) -> np.ndarray:
    """y as n labels in {0, 1} (float64), `other` naming the array y must match."""
    y = as_finite_array("y", y, 1)
    if y.shape[0] != n or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"y must have one label per sample and only the labels 0 and 1: {other} has {n} entries, "
                         f"y has {y.shape[0]}, values other than 0 and 1: {np.setdiff1d(y, (0.0, 1.0))[:5].tolist()}")
    return y
