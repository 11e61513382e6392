"""Part 1: a one-hidden-layer sigmoid network with logistic loss, forward and backward in NumPy.

Shapes follow the homework: X is B x D, W = {"w_1": D x K, "w_2": K x 1}. The maths writes
z^(1) = W^(1) x^(0) for one column vector x; with samples stored as rows that is Z1 = X @ w_1,
i.e. W^(1) = w_1^T. Every function here is vectorised: no Python loops (a test checks the AST).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .checks import as_finite_array, check_labels, check_X_W

__all__ = ["sigmoid", "predict", "logistic_loss", "stable_logistic_loss", "gradient"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic sigmoid 1/(1+e^-z), overflow-free for every finite z."""
    # exp(-|z|) lies in (0, 1], so it never overflows; the two branches are algebraically equal.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def predict(X: np.ndarray, W: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward pass of a batch: returns (z1 of shape (B, K), z2 of shape (B,), y_hat of shape (B,))."""
    X, w_1, w_2 = check_X_W(X, W)
    z1 = X @ w_1                     # (B, K): row i is (W^(1) x_i)^T
    z2 = (sigmoid(z1) @ w_2)[:, 0]   # (B,)
    return z1, z2, sigmoid(z2)


def logistic_loss(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Average of -y log(y_hat) - (1-y) log(1-y_hat), eq. (3) as written (no clipping)."""
    y_hat = as_finite_array("y_hat", y_hat, 1)
    y = check_labels(y, y_hat.shape[0], "y_hat")
    if ((y_hat < 0) | (y_hat > 1)).any():
        raise ValueError(f"y_hat must be probabilities in [0, 1], got values in [{y_hat.min()}, {y_hat.max()}]")
    # Deliberately literal: y_hat = 0 with y = 0 gives 0 * log(0) = 0 * (-inf) = nan (question 1.2).
    return float(np.mean(-y * np.log(y_hat) - (1 - y) * np.log(1 - y_hat)))


def stable_logistic_loss(y: np.ndarray, z_2: np.ndarray) -> float:
    """Average logistic loss computed from the logits z_2, exact and warning-free for any finite z_2."""
    z_2 = as_finite_array("z_2", z_2, 1)
    y = check_labels(y, z_2.shape[0], "z_2")
    # -log(sigmoid(z)) = log(1 + e^-z) and -log(1 - sigmoid(z)) = log(1 + e^z); logaddexp(0, t)
    # evaluates log(e^0 + e^t) as max(0, t) + log1p(e^-|t|): no overflow, no log(0).
    return float(np.mean(y * np.logaddexp(0.0, -z_2) + (1 - y) * np.logaddexp(0.0, z_2)))


def gradient(X: np.ndarray, y: np.ndarray, W: Mapping) -> dict[str, np.ndarray]:
    """Gradient of the average stable logistic loss w.r.t. w_1 and w_2 (same keys and shapes as W)."""
    X, w_1, w_2 = check_X_W(X, W)
    y = check_labels(y, X.shape[0], "X")
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
