"""EE-411 Homework 3: NumPy backprop (Part 1) and MLP / CNN experiments on KMNIST (Part 2)."""
from .backprop import gradient, logistic_loss, predict, sigmoid, stable_logistic_loss
from .data import (CLASSES, RandomPermutation, kmnist_splits, load_kmnist, make_loaders, resolve_data_dir,
                   split_indices, standard_loaders)
from .device import environment_summary, pick_device
from .experiments import Config, Implementation, RunSettings, run_experiment, run_group
from .models import CNN, MLP, count_parameters

__all__ = ["predict", "logistic_loss", "stable_logistic_loss", "gradient", "sigmoid",
           "CLASSES", "RandomPermutation", "kmnist_splits", "load_kmnist", "make_loaders",
           "resolve_data_dir", "split_indices", "standard_loaders", "environment_summary", "pick_device",
           "Config", "Implementation", "RunSettings", "run_experiment", "run_group", "CNN", "MLP", "count_parameters"]
