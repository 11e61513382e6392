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
    """Three blocks conv3x3 -> ReLU -> max-pool 2x2 (16, 32, 64 channels), then one Linear (question 2.3). For 2.6 only:
    BatchNorm before each ReLU, and a second conv3x3 -> ReLU after each pooling (both off by default)."""

    def __init__(self, batchnorm: bool = False, second_conv: bool = False):
        def conv(c_in, c_out):  # BatchNorm has its own shift: the convolution needs no bias then
            norm = [nn.BatchNorm2d(c_out)] if batchnorm else []
            return [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=not batchnorm), *norm, nn.ReLU(inplace=True)]
        layers, c_in = [], 1
        for c_out in (16, 32, 64):
            layers += conv(c_in, c_out) + [nn.MaxPool2d(2)] + (conv(c_out, c_out) if second_conv else [])
            c_in = c_out
        # padding 1 keeps each convolution's size, so the poolings give 28 -> 14 -> 7 -> 3 (7 // 2 = 3)
        super().__init__(*layers, nn.Flatten(), nn.Linear(64 * 3 * 3, N_CLASSES))


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters of a model."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
