"""The device: pick the fastest available one (CUDA, then Apple's MPS, then the CPU) and put a model on it."""
from __future__ import annotations

import torch
from torch import nn


def pick_device(name: str | None = None) -> torch.device:
    """The device to train on: `name` if given (e.g. 'cpu'), else cuda > mps > cpu."""
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def prepare_model(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Move a model to the device; channels_last on the CPU, where it makes oneDNN's convolutions faster."""
    device = torch.device(device)
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cpu" else model


def describe(device: torch.device) -> str:
    """A one-line description of the device, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux, else what the platform module says)."""
    import platform
    name = ""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return name or platform.processor() or platform.machine() or "unknown processor"


def environment_summary() -> str:
    """Device and library versions, for the top of the notebook."""
    import platform

    import numpy
    import torchvision
    dev = pick_device()
    return (f"device: {describe(dev)} | cpu: {cpu_name()} | python {platform.python_version()} | torch {torch.__version__} | "
            f"torchvision {torchvision.__version__} | numpy {numpy.__version__}")
