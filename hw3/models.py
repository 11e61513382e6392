"""The two models of Part 2 and a parameter counter."""
from __future__ import annotations

from torch import nn

N_CLASSES = 10


class MLP(nn.Sequential):
    """784 -> 100 -> 100 -> 10 with ReLU and a linear output (question 2.2)."""

    def __init__(self, hidden: int = 100, in_features: int = 28 * 28, n_classes: int = N_CLASSES):
        super().__init__(nn.Flatten(),
                         nn.Linear(in_features, hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_classes))


class CNN(nn.Sequential):
    """Three blocks conv3x3 -> ReLU -> max-pool 2x2 (16, 32, 64 channels), then one Linear (question 2.3)."""

    def __init__(self):
        layers, c_in = [], 1
        for c_out in (16, 32, 64):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        # padding 1 keeps each convolution's size, so the poolings give 28 -> 14 -> 7 -> 3 (7 // 2 = 3)
        super().__init__(*layers, nn.Flatten(), nn.Linear(64 * 3 * 3, N_CLASSES))


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters of a model."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
