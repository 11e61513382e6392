"""Bonus (2.6): the configuration, the CNN's options, one run, and the forward selection."""
import dataclasses
import math

import pytest
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

import hw3.bonus as bonus
import hw3.evidence as ev
from hw3.bonus import BonusCNN
from hw3.cache import result_path
from hw3.data import kmnist_splits, make_loaders
from hw3.device import describe
from hw3.models import CNN, count_parameters
from hw3.train import evaluate

# ---------------------------------------------------------------------------------------------
# configuration and network


def test_default_config_is_the_homework_cnn_with_sgd_nesterov():
    c = bonus.BonusConfig()
    assert (c.batchnorm, c.second_conv, c.onecycle, c.lr, c.label_smoothing, c.epochs, c.seed,
            c.train_subset) == (False, False, False, 0.01, 0.0, 3, 0, None)


def test_an_unknown_setting_is_refused_by_name():
    with pytest.raises(TypeError, match="unexpected keyword argument 'schedule'"):
        bonus.BonusConfig(schedule="onecycle")


@pytest.mark.parametrize("bad, message", [(dict(epochs=0), "Expected positive integer total_steps, but got 0"),
                                          (dict(lr=-0.1), "Invalid learning rate: -0.1"),
                                          (dict(label_smoothing=-0.1), "0 <= label_smoothing < 1, got 3 and -0.1"),
                                          (dict(label_smoothing=1.0), "0 <= label_smoothing < 1, got 3 and 1.0"),
                                          (dict(onecycle=False, epochs=0), "expected epochs >= 1 .* got 0 and 0.0")])
def test_run_bonus_refuses_bad_values_before_any_step(small_val, bad, message):
    with pytest.raises((ValueError, RuntimeError), match=message):
        bonus.run_bonus(bonus.BonusConfig(**{"onecycle": True, **bad}, train_subset=64), progress=False)


def test_the_bonus_cnn_is_the_homework_cnn_by_default_and_names_its_options():
    assert str(BonusCNN(batchnorm=False, second_conv=False)) == str(BonusCNN())
    assert str(BonusCNN()).removeprefix("BonusCNN") == str(CNN()).removeprefix("CNN")  # the same layers
    assert count_parameters(BonusCNN()) == count_parameters(CNN()) == 29_066
    torch.manual_seed(0)
    homework = CNN()
    torch.manual_seed(0)
    for a, b in zip(homework.parameters(), BonusCNN().parameters(), strict=True):  # the same seed, the same network
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert str(BonusCNN(True, True)) == str(BonusCNN(batchnorm=True, second_conv=True))


def test_two_convs_per_stage_with_batchnorm_before_every_relu_and_bias_free_convs():
    net = BonusCNN(batchnorm=True, second_conv=True)
    layers = list(net)
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(1, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]
    assert all(m.bias is None and m.kernel_size == (3, 3) and m.padding == (1, 1) for m in convs)
    relus = [i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]
    assert len(relus) == 6
    for i in relus:  # conv -> BatchNorm (same channels) -> ReLU
        assert isinstance(layers[i - 1], nn.BatchNorm2d) and isinstance(layers[i - 2], nn.Conv2d)
        assert layers[i - 1].num_features == layers[i - 2].out_channels
    assert [type(m) for m in layers].count(nn.MaxPool2d) == 3
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    with_bias = BonusCNN(batchnorm=False, second_conv=True)
    assert all(m.bias is not None for m in with_bias if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in with_bias)
    assert count_parameters(with_bias) == 29_066 + (16 * 16 * 9 + 16) + (32 * 32 * 9 + 32) + (64 * 64 * 9 + 64)


# ---------------------------------------------------------------------------------------------
# one run (on a 300-image validation split: evaluating 10,000 images each epoch would dominate the time)

N_VAL = 300


def _small_val(loaders: dict) -> dict:
    ds = loaders["val"].dataset
    small = TensorDataset(*(t[:N_VAL] for t in ds.tensors))
    return {**loaders, "val": DataLoader(small, sampler=BatchSampler(SequentialSampler(small), 500, False), batch_size=None)}


@pytest.fixture
def small_val(fake_root, monkeypatch):
    real = bonus.make_loaders
    monkeypatch.setattr(bonus, "make_loaders", lambda *a, **kw: _small_val(real(*a, **kw)))

def test_run_bonus_evaluates_the_test_split_only_when_asked(small_val, monkeypatch):
    evaluated = []
    real = bonus.evaluate

    def spy(model, loader):  # the splits run_bonus evaluates after training, by their size
        out = real(model, loader)
        evaluated.append((len(loader.dataset), out))
        return out

    monkeypatch.setattr(bonus, "evaluate", spy)
    cfg = bonus.BonusConfig(epochs=1, train_subset=64)
    r, (model,) = bonus.run_bonus(cfg, progress=False)
    assert set(r["final"]) == {"train_eval_acc", "val_acc"} and [n for n, _ in evaluated] == [64, N_VAL]
    assert r["config"] == dataclasses.asdict(cfg) and r["n_params"] == 29_066 and len(r["history"]["val_acc"]) == 2
    evaluated.clear()
    r, (model,) = bonus.run_bonus(cfg, test=True, progress=False)
    assert [n for n, _ in evaluated] == [64, N_VAL, 1_000] and set(r["final"]) == {"train_eval_acc", "val_acc", "test_acc"}
    loaders = _small_val(make_loaders(kmnist_splits(train_subset=64), 64, seed=cfg.seed))
    assert r["final"]["test_acc"] == evaluated[2][1][1] == evaluate(model, loaders["test"])[1]  # the returned model's
    assert r["final"]["val_acc"] == evaluate(model, loaders["val"])[1] == r["history"]["val_acc"][-1]
    assert result_path(bonus.run_bonus, dict(config=cfg)) != result_path(bonus.run_bonus, dict(config=cfg, test=True))


@pytest.mark.parametrize("cfg", [bonus.BonusConfig(epochs=2, seed=3, train_subset=256),
                                 bonus.BonusConfig(onecycle=True, lr=0.05, label_smoothing=0.1, epochs=2,
                                                   seed=4, train_subset=256)])
def test_run_bonus_hands_the_loop_its_configuration(fake_root, monkeypatch, cfg):
    got = {}

    def fake_train(model, loaders, optimizer, epochs, progress, desc, schedule, label_smoothing):
        got.update(loaders=loaders, optimizer=optimizer, epochs=epochs, progress=progress, desc=desc, schedule=schedule,
                   label_smoothing=label_smoothing)
        return {"val_acc": [0.1]}

    monkeypatch.setattr(bonus, "train", fake_train)
    monkeypatch.setattr(bonus, "evaluate", lambda model, loader: (0.0, 0.5))
    r, _ = bonus.run_bonus(cfg)  # progress shown by default
    assert r["device"] == describe(torch.device("cpu")) and 0 <= r["wall_time_s"] < 60
    group = got["optimizer"].param_groups[0]
    assert isinstance(got["optimizer"], torch.optim.SGD) and (group["momentum"], group["nesterov"]) == (0.9, True)
    assert (got["epochs"], got["progress"], got["desc"], got["label_smoothing"]) == (2, True, f"bonus seed {cfg.seed}",
                                                                                      cfg.label_smoothing)
    want = make_loaders(kmnist_splits(train_subset=256), 64, seed=cfg.seed)["train"]  # batches of 64, shuffled by the seed
    assert [y.tolist() for _, y in got["loaders"]["train"]] == [y.tolist() for _, y in want]
    if not cfg.onecycle:
        assert got["schedule"] is None and group["lr"] == cfg.lr
    else:  # warm-up over the first quarter of all steps to the peak lr, then down; momentum not cycled
        sched = got["schedule"]
        assert isinstance(sched, torch.optim.lr_scheduler.OneCycleLR) and sched.total_steps == 2 * 256 // 64
        assert group["max_lr"] == cfg.lr and sched._schedule_phases[0]["end_step"] == 0.25 * 8 - 1
        assert not sched.cycle_momentum and group["momentum"] == 0.9


def test_run_bonus_puts_its_data_and_model_on_the_device_asked_for(fake_root, monkeypatch):
    got = {}
    monkeypatch.setattr(bonus, "train", lambda model, loaders, *a: got.update(model=model, loaders=loaders) or {"val_acc": [0.1]})
    monkeypatch.setattr(bonus, "evaluate", lambda model, loader: (0.0, 0.5))
    r, _ = bonus.run_bonus(bonus.BonusConfig(epochs=1, train_subset=64), device="meta")
    assert all(t.device.type == "meta" for loader in got["loaders"].values() for t in loader.dataset.tensors)
    assert next(got["model"].parameters()).device.type == "meta" and r["device"] == describe(torch.device("meta"))


def test_the_whole_recipe_runs_end_to_end(small_val):
    cfg = bonus.BonusConfig(second_conv=True, batchnorm=True, onecycle=True, lr=0.05, label_smoothing=0.1, epochs=2,
                            train_subset=256)
    r, (model,) = bonus.run_bonus(cfg, progress=False)
    assert r["n_params"] == count_parameters(BonusCNN(batchnorm=True, second_conv=True)) and len(r["history"]["step_loss"]) == 2 * 4
    assert 0 <= r["final"]["val_acc"] <= 1  # too few steps to judge learning; OneCycle took exactly its total steps
    assert all(math.isfinite(v) for v in r["history"]["step_loss"])


# ---------------------------------------------------------------------------------------------
# forward selection, with a fake cache that returns chosen validation accuracies

GAIN = {  # points of validation accuracy each candidate adds (the recipe's accuracy is 90% + the kept gains)
    "onecycle": 0.3,           # kept: +0.3 > 0 + 0 + 0.1
    "lr": 0.2,                 # kept
    "batchnorm": 0.12,         # beyond the margin, but not beyond its seed spread (sd 0.71): refused
    "second_conv": 0.08,       # within the margin: refused
    "label_smoothing": 0.15,   # kept, after two refusals
}


def fake_accuracy(config: bonus.BonusConfig) -> float:
    base = bonus.BonusConfig()
    points = 90.0 + sum(g for k, g in GAIN.items() if getattr(config, k) != getattr(base, k))
    if config.batchnorm:
        points += 0.5 if config.seed == 0 else -0.5
    return points / 100


def test_select_recipe_keeps_a_candidate_only_when_it_beats_the_recipe_so_far(monkeypatch):
    calls = []

    def fake_cached(fn, config, device, progress=True, force=False):
        calls.append(config)
        assert fn is bonus.run_bonus and device == "dev"
        return {"config": dataclasses.asdict(config), "final": {"val_acc": fake_accuracy(config)}}

    monkeypatch.setattr(bonus, "cached", fake_cached)
    recipe, rows = bonus.select_recipe((0, 1), epochs=2, train_subset=100, device="dev")
    assert [(name, kept) for name, _, kept in rows] == [("homework CNN (2.3), 2 epochs", True)] + \
        [(name, k) for (name, _), k in zip(bonus.CANDIDATES[:2] + bonus.CANDIDATES[3:], [True, True, False, False, False, True])]
    assert bonus.CANDIDATES[2][0] == "OneCycle and lr 0.05 together"  # skipped: both parts were kept
    assert recipe == bonus.BonusConfig(onecycle=True, lr=0.05, label_smoothing=0.1, epochs=2, train_subset=100)
    # every trial is the recipe so far plus one candidate, over both seeds
    kept = dict(onecycle=True, lr=0.05, epochs=2, train_subset=100)
    tried = [bonus.BonusConfig(epochs=2, train_subset=100),
             bonus.BonusConfig(onecycle=True, epochs=2, train_subset=100),
             bonus.BonusConfig(**kept),
             bonus.BonusConfig(**kept, batchnorm=True),
             bonus.BonusConfig(**kept, second_conv=True),
             bonus.BonusConfig(**kept, batchnorm=True, second_conv=True),  # both parts refused: the pair is tried
             bonus.BonusConfig(**kept, label_smoothing=0.1)]
    assert calls == [dataclasses.replace(c, seed=s) for c in tried for s in (0, 1)]
    for (_, runs, _), config in zip(rows, tried):
        assert [r["config"]["seed"] for r in runs] == [0, 1] and runs[0]["final"]["val_acc"] == fake_accuracy(config)


def test_select_recipe_verdicts_are_those_of_beats(monkeypatch):
    verdicts = iter([False, False, True, True, False, True])  # whatever the accuracies, `beats` decides

    def fake_beats(a, b):
        return next(verdicts)

    monkeypatch.setattr(bonus, "cached", lambda fn, config, device, **kw: {"config": config, "final": {"val_acc": 0.9}})
    monkeypatch.setattr(bonus, "beats", fake_beats)
    recipe, rows = bonus.select_recipe((0,), epochs=1)
    assert [kept for _, _, kept in rows] == [True, False, False, True, True, False, True]  # the pair tried, parts refused
    assert "BatchNorm and a second conv together" not in [name for name, _, _ in rows]  # = the refused second-conv trial
    assert recipe == bonus.BonusConfig(onecycle=True, lr=0.05, batchnorm=True, label_smoothing=0.1, epochs=1)
    assert rows[-1][1][0]["config"] == dataclasses.replace(recipe, seed=0)


def test_select_recipe_defaults_and_passes_its_options_to_the_cache(monkeypatch):
    seen = []
    monkeypatch.setattr(bonus, "cached", lambda fn, config, **kw: seen.append((config.epochs, kw)) or
                        {"config": config, "final": {"val_acc": 0.9}})
    bonus.select_recipe((0,))
    assert seen[0] == (3, dict(device="cpu", progress=True, force=False))
    seen.clear()
    bonus.select_recipe((0,), 2, device="dev", progress=False, force=True)
    assert seen[0] == (2, dict(device="dev", progress=False, force=True))


def test_select_recipe_uses_the_margin_of_the_text():
    assert bonus.beats is ev.beats
