"""Checks of Part 1's analytic gradient: central finite differences (loops are fine in a check) and PyTorch autograd."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .backprop import predict, stable_logistic_loss


def numerical_gradient(X: np.ndarray, y: np.ndarray, W: Mapping, h: float = 1e-6) -> dict[str, np.ndarray]:
    """(L(w + h e_k) - L(w - h e_k)) / 2h for every weight w_k of the average stable loss."""
    def loss(weights):
        return stable_logistic_loss(y, predict(X, weights)[1])

    grads = {}
    for key in ("w_1", "w_2"):
        g = np.zeros_like(np.asarray(W[key], dtype=float))
        for idx in np.ndindex(g.shape):
            plus = {k: np.array(v, dtype=float) for k, v in W.items()}
            minus = {k: np.array(v, dtype=float) for k, v in W.items()}
            plus[key][idx] += h
            minus[key][idx] -= h
            g[idx] = (loss(plus) - loss(minus)) / (2 * h)
        grads[key] = g
    return grads


def relative_error(a: Mapping, b: Mapping) -> float:
    """max over the weight matrices of ||a - b|| / (||a|| + ||b||): ~1e-10 when two gradients agree."""
    return max(float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(a[k]) + np.linalg.norm(b[k]), 1e-300)) for k in a)


def autograd_gradient(X: np.ndarray, y: np.ndarray, W: Mapping) -> dict[str, np.ndarray]:
    """PyTorch's gradient of the same average loss, in float64, written in a stable form."""
    import torch
    w = {k: torch.tensor(v, requires_grad=True) for k, v in W.items()}
    # sigmoid as exp(logsigmoid): its backward is sigma(z) sigma(-z), where torch.sigmoid's
    # sigma(z) (1 - sigma(z)) rounds to 0 once sigma(z) rounds to 1 (z >= 37, see 1.2)
    x1 = torch.exp(torch.nn.functional.logsigmoid(torch.tensor(X) @ w["w_1"]))
    z2 = (x1 @ w["w_2"])[:, 0]
    torch.nn.functional.binary_cross_entropy_with_logits(z2, torch.tensor(y)).backward()
    return {k: v.grad.numpy() for k, v in w.items()}
