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


def test_elastic_deformation_moves_pixels_by_about_the_simard_amount():
    x = torch.zeros(400, 1, 28, 28)
    x[:, :, :, 14] = 1.0  # a vertical stroke: its horizontal displacement is visible row by row
    still = dict(max_shift=0, max_deg=0, max_scale=0)
    torch.testing.assert_close(bonus.RandomAffine(0.0, seed=0, elastic_alpha=0.0, **still)(x), x, atol=1e-5, rtol=0)
    out = bonus.RandomAffine(0.0, seed=0, elastic_alpha=34.0, elastic_sigma=4.0, **still)(x)
    cols = torch.arange(28.0)
    centre = (out[:, 0] * cols).sum(-1) / out[:, 0].sum(-1).clamp_min(1e-6)  # where the stroke is, per row
    shift = (centre[:, 6:22] - 14).flatten()  # inner rows, away from the zero-padded border of the blur
    assert 0.8 < shift.std() < 2.0 and shift.mean().abs() < 0.2  # about 1.3 px, no drift
    rows = centre[:, 6:22] - 14
    assert (rows[:, 1:] - rows[:, :-1]).abs().mean() < 0.5 * rows.std()  # smooth: neighbours move together
    assert not torch.equal(out[0], out[1])  # a different field per sample
    with pytest.raises(ValueError, match="elastic_sigma > 0"):
        bonus.RandomAffine(0.0, seed=0, elastic_alpha=34.0, elastic_sigma=0.0)
    with pytest.raises(ValueError, match="sigma > 0"):
        bonus.gaussian_blur(x, -1.0)


def test_gaussian_blur_matches_a_convolution_with_zero_padding():
    f = torch.randn(3, 2, 28, 20)
    r = 20
    t = torch.arange(-r, r + 1.0)
    k = torch.exp(-t ** 2 / 8) / (2 * torch.pi) ** 0.5 / 2  # sigma 2
    ref = torch.nn.functional.conv2d(f.reshape(-1, 1, 28, 20), k.view(1, 1, 1, -1), padding=(0, r))
    ref = torch.nn.functional.conv2d(ref, k.view(1, 1, -1, 1), padding=(r, 0)).reshape(f.shape)
    torch.testing.assert_close(bonus.gaussian_blur(f, 2.0), ref, atol=1e-5, rtol=1e-5)


def test_old_configurations_keep_their_cache_names():
    # the elastic switch came last: configurations without it hash exactly as before it existed
    from hw3.cache import config_digest
    cfg = bonus.BonusConfig(elastic=False)
    fields = {k: v for k, v in bonus.dataclasses.asdict(cfg).items() if k != "elastic"}
    assert cfg.key() == "bonus-" + config_digest(fields)[:12]
    assert bonus.BonusConfig(elastic=True).key() != cfg.key()


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


@pytest.mark.parametrize("bad", [dict(members=0), dict(width=-1), dict(epochs=2.5), dict(label_smoothing=1.0),
                                 dict(lr=0.0), dict(members=True), dict(elastic=True, augment=False)])
def test_bonus_config_rejects_bad_values(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        bonus.BonusConfig(**bad)


def test_ensemble_averages_probabilities():
    torch.manual_seed(0)
    models = [bonus.BonusNet(width=4).eval() for _ in range(3)]
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        out = bonus.Ensemble(models)(x)
        mean_probs = torch.stack([m(x).softmax(1) for m in models]).mean(0)
    torch.testing.assert_close(out.exp(), mean_probs)
    torch.testing.assert_close(out.log_softmax(1), out)  # already log-probabilities: cross-entropy applies as is
    with pytest.raises(ValueError, match="at least one model"):
        bonus.Ensemble([])


def test_validation_only_run_is_tested_later_from_its_saved_weights(fake_root, tmp_path, monkeypatch):
    # on the CPU, where training is deterministic, so that a fresh run is the reference (CUDA kernels are not)
    kw = dict(TINY, members=2, data_dir=fake_root, device="cpu")
    fresh = bonus.run_bonus(results=tmp_path / "fresh", evaluate_test=True, **kw)  # trained and tested in one go
    val_only = bonus.run_bonus(results=tmp_path / "later", **kw)
    assert val_only["final"]["test_acc"] is None and len(val_only["members"]) == 2
    assert val_only["n_params"] == 2 * bonus.count_parameters(bonus.BonusNet(width=4))
    with monkeypatch.context() as m:
        m.setattr(bonus, "train", lambda *a, **k: pytest.fail("the saved weights should be tested, not retrained"))
        tested = bonus.run_bonus(results=tmp_path / "later", evaluate_test=True, **kw)
    assert tested["final"] == fresh["final"] and tested["test_pred"] == fresh["test_pred"]
    assert bonus.run_bonus(results=tmp_path / "later", **kw)["final"]["test_acc"] == fresh["final"]["test_acc"]  # cached
    # unreadable weights: the run is trained again rather than failing
    cfg = bonus.BonusConfig(width=4, members=2, epochs=1, train_subset=1000)
    bonus.save_result(val_only, tmp_path / "broken" / f"{cfg.key()}.json")  # validated, never tested
    (tmp_path / "broken" / f"{cfg.key()}.pt").write_bytes(b"not a checkpoint")
    again = bonus.run_bonus(results=tmp_path / "broken", evaluate_test=True, **kw)
    assert again["test_pred"] == fresh["test_pred"]


def test_sweep_summary_reads_validation_results_from_the_cache_else_the_recorded_one(fake_root, tmp_path, monkeypatch):
    from hw3 import sweep
    monkeypatch.setattr(bonus, "FINAL_CANDIDATES", {"tiny pair": dict(width=4, members=2, epochs=1, train_subset=1000),
                                                     sweep.DISCLOSED: dict(width=5, members=1, epochs=1, train_subset=1000)})
    tiny_rows = [(name, dict(overrides, width=4, train_subset=1000)) for name, overrides in bonus.ABLATION[:2]]
    monkeypatch.setattr(bonus, "ABLATION", tiny_rows)
    monkeypatch.setattr(bonus, "ABLATION_EPOCHS", 1)
    monkeypatch.setattr(sweep, "SEEDS", (0, 1))
    recorded = tmp_path / "recorded.json"
    assert sweep.summary(tmp_path / "cache") is None  # nothing trained yet
    none, why = sweep.load(tmp_path / "cache", recorded=recorded)
    assert none is None and "python -m hw3 sweep" in why
    summary = sweep.run_sweep(data_dir=fake_root, results=tmp_path / "cache", progress=False)
    rows = {(r["kind"], r["name"], r["seed"]): r for r in summary["rows"]}
    assert len(rows) == 2 + 2 * 2
    pair = rows[("candidate", "tiny pair", 0)]
    table = sweep.candidate_table(summary)
    assert f"{100 * pair['val_acc']:8.2f}" in table.splitlines()[1]
    assert "test_pred" not in pair  # the comparison never looks at the test split...
    first = rows[("candidate", sweep.DISCLOSED, 0)]
    assert len(first["test_pred"]) == 1000  # ...except for the design whose test accuracy was disclosed
    spread = sweep.seed_spread(summary)[bonus.ABLATION[0][0]]
    assert spread["seeds"] == [0, 1] and abs(spread["mean"] - sum(spread["val_acc"]) / 2) < 1e-12
    assert bonus.ABLATION[1][0] in sweep.seed_table(summary)
    y = torch.tensor([int(c) for c in first["test_pred"]])
    paired = sweep.paired_with_disclosed(summary, y, y)
    assert paired["a_only_right"] == paired["b_only_right"] == 0 and paired["p_value"] == 1.0
    assert "no paired test" in sweep.paired_with_disclosed(summary, y[:10], y[:10])
    sweep.record(summary, recorded)
    shown, why = sweep.load(tmp_path / "empty", recorded=recorded)  # another machine: the recorded summary
    assert why.startswith("RECORDED on") and shown["rows"] == summary["rows"]
    assert sweep.load(tmp_path / "cache", recorded=recorded)[1] == "trained on this machine (cache)"


def test_class_shift_sees_a_shifted_split_and_not_a_resample():
    from hw3 import plots
    from hw3.data import KMNISTSplits, Preprocess
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat(60)
    base = torch.randint(0, 120, (len(labels), 28, 28), generator=g, dtype=torch.uint8)
    shifted = base.clone()
    shifted[labels == 3, :, :5] = 255  # class 3 of the "test" split gets a bar on the left
    splits = KMNISTSplits(images={"train": base, "val": base.flip(0), "test": shifted},
                          labels={"train": labels, "val": labels.flip(0), "test": labels},
                          preprocess=Preprocess(0.0, 1.0))
    d = plots.class_shift(splits)
    torch.testing.assert_close(d["val"], torch.zeros(10))  # the same images in another order: no shift
    assert d["test"][3] > 1 and torch.count_nonzero(d["test"]) == 1
    plots.plot_class_shift(splits)
    plots.plt.close("all")
    with pytest.raises(ValueError, match="every class"):
        plots.class_means(base[:5], labels[:5])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plots.class_means(base[:, None], labels)
