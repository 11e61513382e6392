"""Bonus (2.6): the configuration, the network, the augmentation, one run, and the forward selection."""
import dataclasses
import math

import pytest
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

import hw3.bonus as bonus
import hw3.evidence as ev
from hw3.cache import result_path
from hw3.data import kmnist_splits, make_loaders
from hw3.device import describe
from hw3.models import CNN, count_parameters
from hw3.train import evaluate

# ---------------------------------------------------------------------------------------------
# configuration and network


def test_default_config_is_the_homework_cnn_with_sgd_nesterov():
    c = bonus.BonusConfig()
    assert (c.convs_per_stage, c.batchnorm, c.schedule, c.lr, c.augment, c.label_smoothing, c.epochs, c.seed,
            c.train_subset) == (1, False, "constant", 0.01, False, 0.0, 3, 0, None)


@pytest.mark.parametrize("bad", [dict(convs_per_stage=3), dict(convs_per_stage=0), dict(schedule="x"), dict(epochs=0),
                                 dict(lr=0), dict(lr=-0.1), dict(label_smoothing=1.0), dict(label_smoothing=-0.1)])
def test_bonus_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="BonusConfig needs convs_per_stage 1 or 2"):
        bonus.BonusConfig(**bad)


def test_default_bonus_net_is_the_homework_cnn_layer_for_layer():
    net = bonus.BonusNet()
    assert str(net.features) == str(CNN().features) and str(net.classifier) == str(CNN().classifier)
    assert count_parameters(net) == count_parameters(CNN()) == 29_066
    torch.manual_seed(0)
    a = bonus.BonusNet()
    torch.manual_seed(0)
    b = CNN()
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(a(x), b(x))  # the same network, the same initial weights from one seed


def test_two_convs_per_stage_with_batchnorm_before_every_relu_and_bias_free_convs():
    net = bonus.BonusNet(2, True)
    layers = list(net.features)
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
    with_bias = bonus.BonusNet(2, False)
    assert all(m.bias is not None for m in with_bias.features if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in with_bias.features)
    assert count_parameters(with_bias) == 29_066 + (16 * 16 * 9 + 16) + (32 * 32 * 9 + 32) + (64 * 64 * 9 + 64)


# ---------------------------------------------------------------------------------------------
# augmentation

def test_random_affine_of_a_background_image_stays_background():
    x = torch.full((16, 1, 28, 28), -0.5)  # a blank image, with a non-zero background value
    out = bonus.RandomAffine(background=-0.5, seed=0)(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)  # nothing but background comes in from outside


def test_random_affine_brings_in_background_from_outside_the_image():
    x = torch.full((8, 1, 28, 28), 2.0)  # a full image: whatever comes from outside the image must be the background
    out = bonus.RandomAffine(background=-0.5, seed=0, max_shift=28, max_deg=0, max_scale=0)(x)  # shifts up to 28 px
    assert out.min() >= -0.5 - 1e-5 and out.max() <= 2.0 + 1e-5
    background = (out + 0.5).abs() < 1e-5
    assert background.float().mean() > 0.1  # much of the image shifted out: background, not zero, came in
    assert not ((out.abs() < 1e-5) & ~background).float().mean() > 0.01


def test_random_affine_moves_the_content_and_is_reproducible_per_seed():
    x = torch.full((6, 1, 28, 28), -0.5)
    x[:, :, 10:18, 10:18] = 2.0
    out = bonus.RandomAffine(background=-0.5, seed=0)(x)
    torch.testing.assert_close(out[:, :, :3, :3], torch.full((6, 1, 3, 3), -0.5))  # corners stay background
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out, x)  # a different warp per sample
    torch.testing.assert_close(bonus.RandomAffine(background=-0.5, seed=0)(x), out, rtol=0, atol=0)  # per seed
    assert not torch.allclose(bonus.RandomAffine(background=-0.5, seed=1)(x), out)
    aug = bonus.RandomAffine(background=-0.5, seed=0)
    first, second = aug(x), aug(x)
    assert torch.equal(first, out) and not torch.allclose(first, second)  # new warps at every call
    still = bonus.RandomAffine(background=-0.5, seed=0, max_shift=0, max_deg=0, max_scale=0)(x)
    torch.testing.assert_close(still, x, atol=1e-5, rtol=0)  # the identity warp changes nothing


@pytest.mark.parametrize("seed", [1, 2, 3, 5])
def test_random_affine_shift_is_in_pixels(seed):
    x = torch.full((1, 1, 28, 28), -0.5)
    x[0, 0, 12, 12] = 2.0  # one bright pixel
    out = bonus.RandomAffine(background=-0.5, seed=seed, max_shift=2, max_deg=0, max_scale=0)(x)
    u = torch.rand(1, 4, generator=torch.Generator().manual_seed(seed)).mul(2).sub(1)  # the draw it makes
    shift = 2 * u[0, 2:]  # up to max_shift = 2 pixels: x (columns), then y (rows); output(p) = input(p + shift)
    assert divmod(int(out.flatten().argmax()), 28) == (round(12 - float(shift[1])), round(12 - float(shift[0])))


def test_random_affine_builds_the_warp_of_its_draw(monkeypatch):
    # fixed draws u per sample (rotation, scale, shift x, shift y); the spy records the matrix given to affine_grid
    u = torch.tensor([[1.0, -1.0, 0.5, -0.25], [-0.5, 1.0, -1.0, 1.0]])
    draws, thetas = [], []
    monkeypatch.setattr(torch, "rand", lambda *shape, generator: draws.append(shape) or (u + 1) / 2)
    real_grid = torch.nn.functional.affine_grid
    monkeypatch.setattr(torch.nn.functional, "affine_grid", lambda theta, size, **kw: thetas.append(theta) or real_grid(theta, size, **kw))
    x = torch.zeros(2, 1, 28, 28)
    bonus.RandomAffine(background=0.0, seed=0)(x)  # defaults: 2 px, 10 degrees, scale 0.9 to 1.1
    assert draws == [(2, 4)]
    angle, scale = u[:, 0] * math.radians(10), 1 + u[:, 1] * 0.1
    cos, sin, shift = torch.cos(angle) / scale, torch.sin(angle) / scale, u[:, 2:] * 2 * 2 / 28  # [-1, 1] spans 28 px
    want = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    torch.testing.assert_close(thetas[0], want)


def test_random_affine_stays_on_the_batch_device():
    assert bonus.RandomAffine(background=-0.5, seed=0)(torch.zeros(2, 1, 28, 28, device="meta")).device.type == "meta"


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
                                 bonus.BonusConfig(schedule="onecycle", lr=0.05, augment=True, label_smoothing=0.1, epochs=2,
                                                   seed=4, train_subset=256)])
def test_run_bonus_hands_the_loop_its_configuration(fake_root, monkeypatch, cfg):
    got = {}

    def fake_train(model, loaders, optimizer, epochs, progress, desc, schedule, augment, label_smoothing):
        got.update(loaders=loaders, optimizer=optimizer, epochs=epochs, progress=progress, desc=desc, schedule=schedule,
                   augment=augment, label_smoothing=label_smoothing)
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
    if cfg.schedule == "constant":
        assert got["schedule"] is None and group["lr"] == cfg.lr
    else:  # warm-up over the first quarter of all steps to the peak lr, then down; momentum not cycled
        sched = got["schedule"]
        assert isinstance(sched, torch.optim.lr_scheduler.OneCycleLR) and sched.total_steps == 2 * 256 // 64
        assert group["max_lr"] == cfg.lr and sched._schedule_phases[0]["end_step"] == 0.25 * 8 - 1
        assert not sched.cycle_momentum and group["momentum"] == 0.9
    if cfg.augment:
        pre = kmnist_splits(train_subset=256).preprocess
        assert isinstance(got["augment"], bonus.RandomAffine) and got["augment"].background == pytest.approx(-pre.mean / pre.std)
        assert torch.equal(got["augment"].generator.get_state(), torch.Generator().manual_seed(cfg.seed).get_state())
    else:
        assert got["augment"] is None


def test_run_bonus_puts_its_data_and_model_on_the_device_asked_for(fake_root, monkeypatch):
    got = {}
    monkeypatch.setattr(bonus, "train", lambda model, loaders, *a: got.update(model=model, loaders=loaders) or {"val_acc": [0.1]})
    monkeypatch.setattr(bonus, "evaluate", lambda model, loader: (0.0, 0.5))
    r, _ = bonus.run_bonus(bonus.BonusConfig(epochs=1, train_subset=64), device="meta")
    assert all(t.device.type == "meta" for loader in got["loaders"].values() for t in loader.dataset.tensors)
    assert next(got["model"].parameters()).device.type == "meta" and r["device"] == describe(torch.device("meta"))


def test_the_whole_recipe_runs_end_to_end(small_val):
    cfg = bonus.BonusConfig(convs_per_stage=2, batchnorm=True, schedule="onecycle", lr=0.05, augment=True,
                            label_smoothing=0.1, epochs=2, train_subset=256)
    r, (model,) = bonus.run_bonus(cfg, progress=False)
    assert r["n_params"] == count_parameters(bonus.BonusNet(2, True)) and len(r["history"]["step_loss"]) == 2 * 4
    assert 0 <= r["final"]["val_acc"] <= 1  # too few steps to judge learning; OneCycle took exactly its total steps
    assert all(math.isfinite(v) for v in r["history"]["step_loss"])


# ---------------------------------------------------------------------------------------------
# forward selection, with a fake cache that returns chosen validation accuracies

GAIN = {  # points of validation accuracy each candidate adds (the recipe's accuracy is 90% + the kept gains)
    "schedule": 0.3,           # kept: +0.3 > 0 + 0 + 0.1
    "batchnorm": 0.03,         # with the second conv (one candidate): refused, +0.08 <= 0.1
    "convs_per_stage": 0.05,
    "augment": 0.2,            # refused: +0.2 beyond the margin, but not beyond its seed spread (sd 0.71)
    "label_smoothing": 0.15,   # kept
}


def fake_accuracy(config: bonus.BonusConfig) -> float:
    base = bonus.BonusConfig()
    points = 90.0 + sum(g for k, g in GAIN.items() if getattr(config, k) != getattr(base, k))
    if config.augment:
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
        [(name, k) for (name, _), k in zip(bonus.CANDIDATES, [True, False, False, True])]
    assert recipe == bonus.BonusConfig(schedule="onecycle", lr=0.05, label_smoothing=0.1, epochs=2, train_subset=100)
    # every trial is the recipe so far plus one candidate, over both seeds
    tried = [bonus.BonusConfig(epochs=2, train_subset=100),
             bonus.BonusConfig(schedule="onecycle", lr=0.05, epochs=2, train_subset=100),
             bonus.BonusConfig(schedule="onecycle", lr=0.05, batchnorm=True, convs_per_stage=2, epochs=2, train_subset=100),
             bonus.BonusConfig(schedule="onecycle", lr=0.05, augment=True, epochs=2, train_subset=100),
             bonus.BonusConfig(schedule="onecycle", lr=0.05, label_smoothing=0.1, epochs=2, train_subset=100)]
    assert calls == [dataclasses.replace(c, seed=s) for c in tried for s in (0, 1)]
    for (_, runs, _), config in zip(rows, tried):
        assert [r["config"]["seed"] for r in runs] == [0, 1] and runs[0]["final"]["val_acc"] == fake_accuracy(config)


def test_select_recipe_verdicts_are_those_of_beats(monkeypatch):
    verdicts = iter([False, True, False, True])  # whatever the accuracies, `beats` decides

    def fake_beats(a, b):
        return next(verdicts)

    monkeypatch.setattr(bonus, "cached", lambda fn, config, device, **kw: {"config": config, "final": {"val_acc": 0.9}})
    monkeypatch.setattr(bonus, "beats", fake_beats)
    recipe, rows = bonus.select_recipe((0,), epochs=1)
    assert [kept for _, _, kept in rows] == [True, False, True, False, True]
    assert recipe == bonus.BonusConfig(batchnorm=True, convs_per_stage=2, label_smoothing=0.1, epochs=1)
    assert rows[-1][1][0]["config"] == bonus.BonusConfig(batchnorm=True, convs_per_stage=2, label_smoothing=0.1, epochs=1,
                                                         seed=0)


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
