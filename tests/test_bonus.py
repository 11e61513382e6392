"""Bonus (2.6): augmentation, TTA, the ablation protocol (test evaluated once) and caching."""
import pytest
import torch

import hw3.bonus as bonus

TINY = dict(width=4, epochs=1, train_subset=1000, progress=False)


def test_random_affine_keeps_shape_background_and_varies():
    x = torch.full((6, 1, 28, 28), -0.5)
    x[:, :, 10:18, 10:18] = 2.0
    aug = bonus.RandomAffine(background=-0.5, seed=0)
    out = aug(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out[:, :, :3, :3], torch.full((6, 1, 3, 3), -0.5))  # corners stay background
    assert not torch.allclose(out[0], out[1])  # a different warp per sample
    still = bonus.RandomAffine(background=-0.5, seed=0, max_shift=0, max_deg=0, max_scale=0)(x)
    torch.testing.assert_close(still, x, atol=1e-5, rtol=0)  # the identity warp changes nothing


def test_shift_tta_averages_five_views():
    model = bonus.BonusNet(width=4).eval()
    x = torch.randn(3, 1, 28, 28)
    out = bonus.ShiftTTA(model, background=0.0)(x)
    assert out.shape == (3, 10)
    shifted = torch.nn.functional.pad(x, (1, 1, 1, 1))[..., 1:29, 2:30]  # one of the four shifts
    assert not torch.allclose(out, model(x)) and not torch.allclose(out, model(shifted))


def test_ablation_protocol_and_cache(fake_root, tmp_path, monkeypatch):
    rows, final = bonus.bonus_ablation(1, 1, data_dir=fake_root, results=tmp_path, width=4, train_subset=1000, progress=False)
    assert len(rows) == len(bonus.ABLATION)
    assert all(r["final"]["test_acc"] is None and r["test_pred"] is None for r in rows)  # validation only
    f = final["final"]
    assert f["test_acc"] is not None and len(final["test_pred"]) == 1000
    assert f["use_tta"] == (f["val_acc_tta"] > f["val_acc"])  # TTA chosen on validation
    assert not rows[0]["config"]["augment"] and rows[-1]["config"]["ema"]
    monkeypatch.setattr(bonus, "train", lambda *a, **k: pytest.fail("cached result should be loaded"))
    again = bonus.run_bonus(data_dir=fake_root, results=tmp_path, evaluate_test=True, **TINY)
    assert again["final"] == final["final"]


def test_bonus_learns(fake_root, tmp_path):
    # BatchNorm running statistics need some steps to settle: 3 epochs of 32 steps
    r = bonus.run_bonus(data_dir=fake_root, results=tmp_path, width=8, epochs=3, batch_size=32, train_subset=1000,
                        progress=False)
    assert r["final"]["val_acc"] > 0.5 and not r["final"]["diverged"]
