"""Bonus (2.6): augmentation, EMA, TTA, the network, the final design and its ablation (validation only)."""
import dataclasses

import pytest
import torch
from torch import nn

import hw3.bonus as bonus
from hw3.cache import cached, result_path
from hw3.models import CNN, count_parameters

TINY = dict(epochs=1, train_subset=1000)


def test_random_affine_keeps_shape_background_and_varies():
    x = torch.full((6, 1, 28, 28), -0.5)
    x[:, :, 10:18, 10:18] = 2.0
    out = bonus.RandomAffine(background=-0.5, seed=0)(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out[:, :, :3, :3], torch.full((6, 1, 3, 3), -0.5))  # corners stay background
    assert not torch.allclose(out[0], out[1])  # a different warp per sample
    still = bonus.RandomAffine(background=-0.5, seed=0, max_shift=0, max_deg=0, max_scale=0)(x)
    torch.testing.assert_close(still, x, atol=1e-5, rtol=0)  # the identity warp changes nothing


def test_ema_update_warms_up_then_caps():
    avg, cur = torch.zeros(3), torch.ones(3)
    first = bonus.ema_update(avg, cur, torch.tensor(0))  # decay 1/10: the average moves 90% of the way
    torch.testing.assert_close(first, torch.full((3,), 0.9))
    late = bonus.ema_update(avg, cur, torch.tensor(10**6))  # capped at 0.999
    torch.testing.assert_close(late, torch.full((3,), 0.001))


def test_shift_tta_averages_five_views():
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    x = torch.randn(4, 1, 28, 28)
    tta = bonus.ShiftTTA(model, background=0.0)
    shifted = [torch.roll(x, s, d) for s, d in ((1, 3), (-1, 3), (1, 2), (-1, 2))]
    for v, (s, d) in zip(shifted, ((1, 3), (-1, 3), (1, 2), (-1, 2))):  # what rolls in from the border is background
        idx = 0 if s == 1 else -1
        v.select(d, idx).zero_()
    torch.testing.assert_close(tta(x), torch.stack([model(v) for v in [x] + shifted]).mean(0), atol=1e-5, rtol=1e-5)


def test_the_ablation_starts_at_the_homework_cnn_and_adds_one_change_per_row_up_to_the_final_design():
    rows = bonus.ablation_configs(epochs=3)
    first = rows[0][1]
    net = bonus.BonusNet(first.width, first.convs_per_stage, first.head, first.batchnorm)
    assert str(net.features) == str(CNN().features) and count_parameters(net) == count_parameters(CNN())
    torch.manual_seed(0)
    a = bonus.BonusNet(16, 1, "flatten", False)
    torch.manual_seed(0)
    b = CNN()
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(a(x), b(x))  # the same network, the same initial weights from one seed
    assert (first.lr, first.batch_size, first.schedule, first.augment, first.label_smoothing, first.ema) == \
        (0.01, 64, "constant", False, 0.0, False)
    for (_, a), (_, b) in zip(rows, rows[1:]):
        changed = {k for k, v in dataclasses.asdict(b).items() if dataclasses.asdict(a)[k] != v}
        assert changed and (len(changed) == 1 or changed == {"schedule", "lr"})  # a schedule sets its peak lr
    assert dataclasses.replace(rows[-1][1], epochs=bonus.FINAL.epochs) == bonus.FINAL


@pytest.mark.parametrize("bad", [dict(width=0), dict(head="avg"), dict(schedule="cosine"), dict(label_smoothing=1.0),
                                 dict(lr=0), dict(epochs=True)])
def test_bonus_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="BonusConfig"):
        bonus.BonusConfig(**bad)


def test_validation_only_unless_tested_and_tta_chosen_on_validation(fake_root):
    cfg = dataclasses.replace(bonus.FINAL, **TINY)
    val_only = cached(bonus.run_bonus, config=cfg, progress=False)
    assert not {"test_acc", "val_acc_tta", "use_tta"} & set(val_only["final"]) and 0 <= val_only["final"]["val_acc"] <= 1
    tested = cached(bonus.run_bonus, config=cfg, test=True, progress=False)
    assert 0 <= tested["final"]["test_acc"] <= 1
    assert tested["final"]["use_tta"] == (tested["final"]["val_acc_tta"] > tested["final"]["val_acc"])
    assert result_path(bonus.run_bonus, dict(config=cfg)) != result_path(bonus.run_bonus, dict(config=cfg, test=True))


def test_bonus_learns(fake_root):
    r, _ = bonus.run_bonus(dataclasses.replace(bonus.FINAL, epochs=4, batch_size=32, train_subset=1000), progress=False)
    assert r["final"]["val_acc"] > 0.9 and len(r["history"]["val_acc"]) == 4  # the whole recipe, on easy classes
