"""The two models of Part 2 and a parameter counter."""
from __future__ import annotations

import torch
from torch import nn

N_CLASSES = 10


class MLP(nn.Module):
    """784 -> 100 -> 100 -> 10 with ReLU and a linear output (question 2.2)."""

    def __init__(self, hidden: int = 100, in_features: int = 28 * 28, n_classes: int = N_CLASSES):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    """Three blocks conv3x3 -> ReLU -> max-pool 2x2 (16, 32, 64 channels), then one Linear (question 2.3).

    Padding 1 keeps each convolution's output the size of its input, so the poolings give
    28 -> 14 -> 7 -> 3 (7 // 2 = 3) and the classifier sees 64 x 3 x 3 = 576 features.
    """

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64), n_classes: int = N_CLASSES):
        super().__init__()
        layers, c_in, side = [], 1, 28
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in, side = c_out, side // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in * side * side, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters of a model."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
