"""Part 2's driver (one run: model, optimizer, training, evaluation), the analyses the answers cite, and the
experiment groups of the command line. The notebook defines the same functions in its cells."""
from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn.functional as F
from torch import nn

from .cache import cached
from .data import PERMUTATION_SEED, RandomPermutation, kmnist_splits, make_loaders
from .device import describe, prepare_model
from .models import CNN, MLP
from .train import CONTROLS, OPTIMIZERS, evaluate, train


def run_experiment(model: type[nn.Module], optimizer: str, dataset: str = "plain", epochs: int = 20,
                   batch_size: int = 64, seed: int = 0, train_subset: int | None = None,
                   device: torch.device | str = "cpu", progress: bool = True) -> tuple[dict, list[nn.Module]]:
    """One run of Part 2: seed, build `model`, train it with one optimizer of the table, evaluate every split."""
    choices = {**OPTIMIZERS, **CONTROLS}
    if dataset not in ("plain", "permuted") or optimizer not in choices:
        raise ValueError(f"expected dataset 'plain' or 'permuted' and an optimizer of {list(choices)}, "
                         f"got dataset={dataset!r}, optimizer={optimizer!r}")
    permutation = RandomPermutation(28 * 28, seed=PERMUTATION_SEED) if dataset == "permuted" else None
    loaders = make_loaders(kmnist_splits(permutation, train_subset), batch_size, device, seed=seed)
    torch.manual_seed(seed)  # the initial weights: one seed, the same network for every optimizer
    net = prepare_model(model(), device)
    label, optimizer_class, settings = choices[optimizer]
    t0 = time.perf_counter()
    history = train(net, loaders, optimizer_class(net.parameters(), **settings), epochs, progress,
                    desc=f"{model.__name__} {dataset} {label} seed {seed}")
    train_time = time.perf_counter() - t0
    final = {}
    for split in ("train_eval", "val", "test"):  # train_eval: the training split in eval mode, after training
        final[f"{split}_loss"], final[f"{split}_acc"] = evaluate(net, loaders[split])
    config = dict(model=model.__name__, optimizer=optimizer, dataset=dataset, epochs=epochs, batch_size=batch_size,
                  seed=seed, train_subset=train_subset)
    return {"config": config, "label": label, "history": history, "final": final, "wall_time_s": train_time,
            "n_params": sum(p.numel() for p in net.parameters()), "device": describe(torch.device(device))}, [net]


def dead_units(model: nn.Module, loader) -> tuple[list[float], int]:
    """Per ReLU layer, the share of its units (neurons, or channels) that output 0 for every image of `loader`,
    and the number of distinct outputs the model gives these images."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    alive = [None] * len(relus)
    def record(i):
        def hook(_module, _inputs, out):  # a unit is alive on an image when it is > 0 somewhere
            seen = ((out.flatten(2).amax(2) if out.ndim > 2 else out) > 0).any(0)
            alive[i] = seen if alive[i] is None else alive[i] | seen
        return hook
    handles = [r.register_forward_hook(record(i)) for i, r in enumerate(relus)]
    model.eval()
    try:
        with torch.inference_mode():
            outputs = torch.cat([model(x) for x, _ in loader])
    finally:
        for h in handles:
            h.remove()
    return [1 - a.float().mean().item() for a in alive], len(torch.unique(outputs, dim=0))


def permutation_twins(steps: int = 300, seed: int = 0, batch_size: int = 64) -> float:
    """Question 2.5: an MLP on plain images and its twin with permuted first-layer columns on permuted images,
    trained on the same batches in float64; returns the largest difference of their losses."""
    permutation = RandomPermutation(28 * 28, seed=PERMUTATION_SEED)
    torch.manual_seed(seed)
    plain, twin = MLP().double(), MLP().double()
    with torch.no_grad():  # W' x[perm] = W x  <=>  W' = W[:, perm]
        twin.load_state_dict(plain.state_dict())
        twin.net[1].weight.copy_(plain.net[1].weight[:, permutation.reindex])
    losses = []
    for net, perm in ((plain, None), (twin, permutation)):
        loader = make_loaders(kmnist_splits(perm), batch_size, seed=seed)["train"]
        opt = torch.optim.SGD(net.parameters(), **OPTIMIZERS["nesterov"][2])
        out = []
        for _, (x, y) in zip(range(steps), loader):
            loss = F.cross_entropy(net(x.double()), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        losses.append(out)
    return max(abs(a - b) for a, b in zip(*losses))


# ---------------------------------------------------------------------------------------------
# the command line's experiment groups: the notebook's runs, with the package's definitions

MLP_SEEDS, CNN_SEEDS, ABLATION_SEEDS = (0, 1, 2), (0, 1), (0, 1)  # as in the notebook: a CNN run costs ~8 MLP runs
GROUPS = ("mlp", "cnn", "permuted", "bonus", "ablation")


def run_group(name: str, device=None, progress: bool = True, force: bool = False, seeds: dict | None = None,
              **common) -> list[dict]:
    """The cached runs behind one question, as the notebook makes them (`common`: epochs, batch_size, train_subset;
    `seeds`: {'mlp': ..., 'cnn': ..., 'ablation': ...} instead of the notebook's)."""
    from . import bonus
    seeds = {"mlp": MLP_SEEDS, "cnn": CNN_SEEDS, "ablation": ABLATION_SEEDS, **(seeds or {})}
    kw = dict(device=device or "cpu", progress=progress, force=force)
    if name == "mlp":
        return [cached(run_experiment, model=MLP, optimizer=o, seed=s, **common, **kw)
                for o in [*OPTIMIZERS, *CONTROLS] for s in seeds["mlp"]]
    if name == "cnn":  # Adam lr=1 on one seed: it collapses with every MLP seed
        return [cached(run_experiment, model=CNN, optimizer=o, seed=s, **common, **kw)
                for o in OPTIMIZERS for s in (seeds["cnn"][:1] if o == "adam_lr1" else seeds["cnn"])]
    if name == "permuted":
        return [cached(run_experiment, model=m, optimizer="nesterov", dataset="permuted", seed=s, **common, **kw)
                for m, ss in ((MLP, seeds["mlp"]), (CNN, seeds["cnn"][:1])) for s in ss]  # CNN: one seed, as in 2.5
    if name == "bonus":
        return [cached(bonus.run_bonus, config=bonus.FINAL, test=True, **kw)]
    if name == "ablation":
        return [cached(bonus.run_bonus, config=dataclasses.replace(cfg, seed=s), **kw)
                for _, cfg in bonus.ablation_configs() for s in seeds["ablation"]]
    raise ValueError(f"experiment group must be one of {GROUPS} or 'all', got {name!r}")
