"""Part 1: a one-hidden-layer sigmoid network with logistic loss, forward and backward in NumPy.

Shapes follow the homework: X is B x D, W = {"w_1": D x K, "w_2": K x 1}. The maths writes
z^(1) = W^(1) x^(0) for one column vector x; with samples stored as rows that is Z1 = X @ w_1,
i.e. W^(1) = w_1^T. Every function here is vectorised: no Python loops (a test checks the AST).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["sigmoid", "predict", "logistic_loss", "stable_logistic_loss", "gradient"]


# ---------------------------------------------------------------------------------------------
# input checks: bad input raises a ValueError (KeyError for a missing weight) saying what was expected and
# what was received, never a silently wrong number. Vectors may be (B,) or columns (B, 1).


def _as_finite_array(name: str, a: object, ndim: int) -> np.ndarray:
    arr = np.asarray(a)
    arr = arr[:, 0] if ndim == 1 and arr.shape[1:] == (1,) else arr  # a column (B, 1) is a vector (B,) too
    bad = int(np.size(arr) - np.isfinite(arr).sum()) if arr.dtype.kind in "biuf" else -1  # NaN/inf count; -1: not numeric
    if bad or arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D{' (B,) or (B, 1)' * (ndim == 1)}, numeric and finite; "
                         f"got shape {np.shape(a)}, dtype {arr.dtype}" + f", {bad} NaN/inf entries" * (bad > 0))
    return arr.astype(np.float64)


def _check_X_W(X: object, W: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(W, Mapping):
        raise ValueError(f"W must be a dict with keys 'w_1' and 'w_2', got {type(W).__name__}")
    if missing := sorted({"w_1", "w_2"} - set(W)):
        raise KeyError(f"W must have keys 'w_1' (D x K) and 'w_2' (K x 1); missing {missing}, got keys {sorted(map(str, W))}")
    X, w_1, w_2 = _as_finite_array("X", X, 2), _as_finite_array("W['w_1']", W["w_1"], 2), _as_finite_array("W['w_2']", W["w_2"], 2)
    if w_1.shape[0] != X.shape[1] or w_2.shape != (w_1.shape[1], 1):
        raise ValueError(f"W['w_1'] must be D x K and W['w_2'] K x 1 with D = X.shape[1] = {X.shape[1]}, K = W['w_1'].shape[1] = {w_1.shape[1]}: "
                         f"expected ({X.shape[1]}, {w_1.shape[1]}) and ({w_1.shape[1]}, 1), got {w_1.shape} and {w_2.shape}")
    return X, w_1, w_2


def _check_labels(y: object, n: int, other: str) -> np.ndarray:
    y = _as_finite_array("y", y, 1)
    if y.shape[0] != n or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"y must have one label per sample and only the labels 0 and 1: {other} has {n} entries, "
                         f"y has {y.shape[0]}, values other than 0 and 1: {np.setdiff1d(y, (0.0, 1.0))[:5].tolist()}")
    return y


# ---------------------------------------------------------------------------------------------
# the four functions of questions 1.1, 1.2, 1.3 and 1.5


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic sigmoid 1/(1+e^-z), overflow-free for every finite z."""
    # exp(-|z|) lies in (0, 1], so it never overflows; the two branches are algebraically equal.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def predict(X: np.ndarray, W: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward pass of a batch: returns (z1 of shape (B, K), z2 of shape (B,), y_hat of shape (B,))."""
    X, w_1, w_2 = _check_X_W(X, W)
    z1 = X @ w_1                     # (B, K): row i is (W^(1) x_i)^T
    z2 = (sigmoid(z1) @ w_2)[:, 0]   # (B,)
    return z1, z2, sigmoid(z2)


def logistic_loss(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Average of -y log(y_hat) - (1-y) log(1-y_hat), eq. (3) as written (no clipping)."""
    y_hat = _as_finite_array("y_hat", y_hat, 1)
    y = _check_labels(y, y_hat.shape[0], "y_hat")
    if ((y_hat < 0) | (y_hat > 1)).any():
        raise ValueError(f"y_hat must be probabilities in [0, 1], got values in [{y_hat.min()}, {y_hat.max()}]")
    # Deliberately literal: y_hat = 0 with y = 0 gives 0 * log(0) = 0 * (-inf) = nan (question 1.2).
    return float(np.mean(-y * np.log(y_hat) - (1 - y) * np.log(1 - y_hat)))


def stable_logistic_loss(y: np.ndarray, z_2: np.ndarray) -> float:
    """Average logistic loss computed from the logits z_2, exact and warning-free for any finite z_2."""
    z_2 = _as_finite_array("z_2", z_2, 1)
    y = _check_labels(y, z_2.shape[0], "z_2")
    # -log(sigmoid(z)) = log(1 + e^-z) and -log(1 - sigmoid(z)) = log(1 + e^z); logaddexp(0, t)
    # evaluates log(e^0 + e^t) as max(0, t) + log1p(e^-|t|): no overflow, no log(0).
    return float(np.mean(y * np.logaddexp(0.0, -z_2) + (1 - y) * np.logaddexp(0.0, z_2)))


def gradient(X: np.ndarray, y: np.ndarray, W: Mapping) -> dict[str, np.ndarray]:
    """Gradient of the average stable logistic loss w.r.t. w_1 and w_2 (same keys and shapes as W)."""
    X, w_1, w_2 = _check_X_W(X, W)
    y = _check_labels(y, X.shape[0], "X")
    B = X.shape[0]
    z1 = X @ w_1
    x1 = sigmoid(z1)
    z2 = (x1 @ w_2)[:, 0]
    # dL/dz2 = sigmoid(z2) - y: bounded in [-1, 1] whatever the size of z2 (see 1.4).
    delta2 = (sigmoid(z2) - y) / B                         # (B,), the 1/B of the batch mean
    grad_w2 = x1.T @ delta2[:, None]                       # (K, 1)
    # sigma'(z) = sigma(z) sigma(-z): no 1 - sigma(z) cancellation when z is large.
    delta1 = (delta2[:, None] @ w_2.T) * x1 * sigmoid(-z1)  # (B, K)
    grad_w1 = X.T @ delta1                                 # (D, K)
    return {"w_1": grad_w1, "w_2": grad_w2}
