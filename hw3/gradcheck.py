"""References for Part 1's analytic gradient (1.5): central finite differences of any loss (loops are fine in a check)
and PyTorch autograd."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F


def numerical_gradient(loss: Callable[[dict], float], W: Mapping, h: float = 1e-6) -> dict[str, np.ndarray]:
    """(loss(w + h e_k) - loss(w - h e_k)) / 2h for every weight w_k of the weights W (a dict of arrays)."""
    def moved(key, idx, step):  # the loss with the one weight W[key][idx] moved by `step`
        w = {k: np.array(v, dtype=float) for k, v in W.items()}
        w[key][idx] += step
        return loss(w)
    return {key: np.reshape([(moved(key, i, h) - moved(key, i, -h)) / (2 * h) for i in np.ndindex(np.shape(v))], np.shape(v))
            for key, v in W.items()}


def relative_error(a: Mapping, b: Mapping) -> float:
    """max over the weight matrices of ||a - b|| / (||a|| + ||b||): ~1e-10 when two gradients agree."""
    return max(float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(a[k]) + np.linalg.norm(b[k]), 1e-300)) for k in a)


def autograd_gradient(X: np.ndarray, y: np.ndarray, W: Mapping) -> dict[str, np.ndarray]:
    """PyTorch autograd's gradient of the average logistic loss, in float64: the reference for `gradient`."""
    w = {k: torch.tensor(v, requires_grad=True) for k, v in W.items()}
    # sigmoid as exp(logsigmoid), whose backward is sigma(z) sigma(-z): torch.sigmoid's is 0 once sigma(z) rounds to 1
    x1 = torch.exp(F.logsigmoid(torch.tensor(X) @ w["w_1"]))
    F.binary_cross_entropy_with_logits((x1 @ w["w_2"])[:, 0], torch.tensor(y)).backward()
    return {k: v.grad.numpy() for k, v in w.items()}
