"""Part 2's driver (one run: model, optimizer, training, evaluation), the analyses the answers cite, and the
experiment groups of the command line. The notebook defines the same functions in its cells."""
from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn

from .cache import cached
from .data import PERMUTATION_SEED, RandomPermutation, kmnist_splits, make_loaders
from .device import describe, prepare_model
from .models import CNN, MLP
from .train import OPTIMIZERS, evaluate, train


def run_experiment(model: type[nn.Module], optimizer: str, dataset: str = "plain", epochs: int = 20,
                   batch_size: int = 64, seed: int = 0, train_subset: int | None = None,
                   device: torch.device | str = "cpu", progress: bool = True) -> tuple[dict, list[nn.Module]]:
    """One run of Part 2: seed, build `model`, train it with one optimizer of the table, evaluate every split."""
    if dataset not in ("plain", "permuted") or optimizer not in OPTIMIZERS:
        raise ValueError(f"expected dataset 'plain' or 'permuted' and an optimizer of {list(OPTIMIZERS)}, "
                         f"got dataset={dataset!r}, optimizer={optimizer!r}")
    permutation = RandomPermutation(28 * 28, seed=PERMUTATION_SEED) if dataset == "permuted" else None
    loaders = make_loaders(kmnist_splits(permutation, train_subset), batch_size, device, seed=seed)
    torch.manual_seed(seed)  # the initial weights: one seed, the same network for every optimizer
    net = prepare_model(model(), device)
    label, optimizer_class, settings = OPTIMIZERS[optimizer]
    t0 = time.perf_counter()
    history = train(net, loaders, optimizer_class(net.parameters(), **settings), epochs, progress,
                    desc=f"{model.__name__} {dataset} {label} seed {seed}")
    final = {f"{split}_{what}": value for split in ("train_eval", "val", "test")  # train_eval: training split, eval mode
             for what, value in zip(("loss", "acc"), evaluate(net, loaders[split]))}
    config = dict(model=model.__name__, optimizer=optimizer, dataset=dataset, epochs=epochs, batch_size=batch_size,
                  seed=seed, train_subset=train_subset)
    return {"config": config, "label": label, "history": history, "final": final, "wall_time_s": time.perf_counter() - t0,
            "n_params": sum(p.numel() for p in net.parameters()), "device": describe(torch.device(device))}, [net]


# ---------------------------------------------------------------------------------------------
# the command line's experiment groups: the notebook's runs, with the package's definitions

MLP_SEEDS = CNN_SEEDS = ABLATION_SEEDS = FINAL_SEEDS = (0, 1, 2)  # as in the notebook
ABLATION_EPOCHS, FINAL_EPOCHS = 3, 10
GROUPS = ("mlp", "cnn", "permuted", "bonus")


def run_group(name: str, device=None, progress: bool = True, force: bool = False, seeds: dict | None = None,
              **common) -> list[dict]:
    """The cached runs behind one question, as the notebook makes them (`common`: epochs, batch_size, train_subset
    of 2.2 to 2.5; `seeds`: {'mlp': ..., 'cnn': ..., 'ablation': ..., 'final': ...} instead of the notebook's).
    'bonus' runs 2.6's forward selection and then the final recipe over its seeds, test included."""
    from . import bonus
    seeds = {"mlp": MLP_SEEDS, "cnn": CNN_SEEDS, "ablation": ABLATION_SEEDS, "final": FINAL_SEEDS, **(seeds or {})}
    kw = dict(device=device or "cpu", progress=progress, force=force)
    if name == "mlp":
        return [cached(run_experiment, model=MLP, optimizer=o, seed=s, **common, **kw)
                for o in OPTIMIZERS for s in seeds["mlp"]]
    if name == "cnn":  # Adam lr=1 on one seed: it collapses with every MLP seed
        return [cached(run_experiment, model=CNN, optimizer=o, seed=s, **common, **kw)
                for o in OPTIMIZERS for s in (seeds["cnn"][:1] if o == "adam_lr1" else seeds["cnn"])]
    if name == "permuted":
        return [cached(run_experiment, model=m, optimizer="nesterov", dataset="permuted", seed=s, **common, **kw)
                for m, ss in ((MLP, seeds["mlp"]), (CNN, seeds["cnn"])) for s in ss]
    if name == "bonus":
        epochs = common.get("epochs")  # given only for a quick preview: then both stages run that many epochs
        recipe, rows = bonus.select_recipe(seeds["ablation"], epochs or ABLATION_EPOCHS, common.get("train_subset"), **kw)
        final = dataclasses.replace(recipe, epochs=epochs or FINAL_EPOCHS)
        return [r for _, runs, _ in rows for r in runs] + [
            cached(bonus.run_bonus, config=dataclasses.replace(final, seed=s), test=True, **kw) for s in seeds["final"]]
    raise ValueError(f"experiment group must be one of {GROUPS} or 'all', got {name!r}")
