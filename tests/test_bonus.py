"""Bonus (2.6): augmentation, TTA, the final design and the ablation (validation only), caching, the sweep."""
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


def test_the_final_design_is_the_preregistered_one_and_the_ablation_adds_one_change_per_row():
    f = bonus.FINAL
    assert (f.arch, f.width, f.members, f.epochs, f.elastic) == ("deep", 24, 1, 20, False)
    names = [n for n, _ in bonus.ABLATION]
    rows = [bonus.BonusConfig(**o) for _, o in bonus.ABLATION]
    assert rows[0].arch == "homework" and not rows[0].batchnorm and rows[0].schedule == "constant"
    assert (rows[0].lr, rows[0].batch_size, rows[0].augment, rows[0].label_smoothing, rows[0].ema) == (0.01, 64, False, 0.0, False)
    for name, a, b in zip(names[1:], rows, rows[1:]):
        changed = {k for k, v in bonus.dataclasses.asdict(b).items() if bonus.dataclasses.asdict(a)[k] != v}
        assert changed and changed <= {"batchnorm", "arch", "schedule", "lr", "weight_decay", "batch_size", "augment",
                                       "label_smoothing", "ema"}, (name, changed)
        assert len(changed) == 1 or name.startswith("+ OneCycle"), (name, changed)  # the one multi-field row says so
    last = rows[-1]
    assert {k: v for k, v in bonus.dataclasses.asdict(last).items() if k not in ("width", "epochs")} == \
        {k: v for k, v in bonus.dataclasses.asdict(bonus.FINAL).items() if k not in ("width", "epochs")}
    hw = bonus.HomeworkCNN(batchnorm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in hw.modules()) == 3 and hw(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert bonus.count_parameters(bonus.HomeworkCNN()) == 29_066


def test_ema_decay_reached_is_reported():
    assert bonus.ema_decay_after(1) == pytest.approx(1 / 10)
    assert bonus.ema_decay_after(1564) == pytest.approx(1564 / 1573)  # about 0.994: the cap 0.999 is not reached
    assert bonus.ema_decay_after(100_000) == bonus.EMA_DECAY


def test_shift_tta_averages_five_views():
    model = bonus.BonusNet(width=4).eval()
    x = torch.randn(3, 1, 28, 28)
    out = bonus.ShiftTTA(model, background=0.0)(x)
    assert out.shape == (3, 10)
    shifted = torch.nn.functional.pad(x, (1, 1, 1, 1))[..., 1:29, 2:30]  # one of the four shifts
    assert not torch.allclose(out, model(x)) and not torch.allclose(out, model(shifted))


def test_validation_only_rows_and_the_tested_final_model(fake_root, tmp_path, monkeypatch):
    row = bonus.run_bonus(bonus.BonusConfig(**dict(bonus.ABLATION[1][1], epochs=1, train_subset=1000)),
                          data_dir=fake_root, results=tmp_path, progress=False)
    assert row["final"]["test_acc"] is None and row["test_pred"] is None  # validation only
    assert row["history"]["ema_decay_reached"] is None and 0 <= row["final"]["train_acc"] <= 1
    final = bonus.run_bonus(data_dir=fake_root, results=tmp_path, evaluate_test=True, **TINY)
    f = final["final"]
    assert f["test_acc"] is not None and len(final["test_pred"]) == 1000
    assert f["use_tta"] == (f["val_acc_tta"] > f["val_acc"])  # TTA chosen on validation
    assert final["history"]["ema_decay_reached"] == bonus.ema_decay_after(8)  # 1,000 images, batch 128: 8 steps
    monkeypatch.setattr(bonus, "train_network", lambda *a, **k: pytest.fail("cached result should be loaded"))
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
        m.setattr(bonus, "train_network", lambda *a, **k: pytest.fail("the saved weights should be tested, not retrained"))
        tested = bonus.run_bonus(results=tmp_path / "later", evaluate_test=True, **kw)
    assert tested["final"] == fresh["final"] and tested["test_pred"] == fresh["test_pred"]
    assert bonus.run_bonus(results=tmp_path / "later", **kw)["final"]["test_acc"] == fresh["final"]["test_acc"]  # cached
    # unreadable weights: the run is trained again rather than failing
    cfg = bonus.BonusConfig(width=4, members=2, epochs=1, train_subset=1000)
    bonus.save_result(val_only, tmp_path / "broken" / f"{cfg.key()}.json")  # validated, never tested
    (tmp_path / "broken" / f"{cfg.key()}.pt").write_bytes(b"not a checkpoint")
    again = bonus.run_bonus(results=tmp_path / "broken", evaluate_test=True, **kw)
    assert again["test_pred"] == fresh["test_pred"]


def test_sweep_studies_are_recorded_and_read_back_from_the_cache_else_the_recorded_file(fake_root, tmp_path, monkeypatch):
    from hw3 import experiments, sweep
    tiny = dict(width=4, epochs=1, train_subset=1000)
    monkeypatch.setattr(bonus, "ABLATION", [(n, dict(o, **tiny)) for n, o in bonus.ABLATION[:2]])
    monkeypatch.setattr(bonus, "FINAL", bonus.BonusConfig(**tiny))
    monkeypatch.setattr(bonus, "EXPLORATIONS", {sweep.TESTED[1]: dict(tiny, members=2), "post hoc, validation only": dict(tiny, width=5)})
    monkeypatch.setattr(sweep, "SEEDS", (0, 1))
    real_config = experiments.Config
    monkeypatch.setattr(sweep, "Config", lambda **k: real_config(**k, epochs=1, train_subset=300))
    recorded = tmp_path / "recorded.json"
    assert sweep.summary(tmp_path / "cache")["studies"] == {}  # nothing trained yet
    none, why = sweep.load("ablation", tmp_path / "cache", recorded=recorded)
    assert none is None and "python -m hw3 sweep ablation" in why
    summary = sweep.run_sweep(data_dir=fake_root, results=tmp_path / "cache", progress=False)
    studies = summary["studies"]
    assert set(studies) == set(sweep.STUDIES)
    assert len(studies["cnn-seeds"]) == 8 and {r["seed"] for r in studies["cnn-seeds"]} == {1, 2}
    assert len(studies["controls"]) == 5 and len(studies["ablation"]) == 2 * 2
    assert all(r["test_acc"] is None and "test_pred" not in r for r in studies["ablation"])  # validation only
    explored = {r["name"]: r for r in studies["explorations"]}
    assert explored["post hoc, validation only"]["test_acc"] is None  # a new design never sees the test set
    assert all(len(explored[n]["test_pred"]) == 1000 for n in sweep.TESTED)  # the two disclosed designs
    cnn = studies["cnn-seeds"][0]
    assert cnn["last5_val_acc"] == pytest.approx(cnn["val_acc"])  # one epoch: the mean of the last five is the last
    spread = sweep.spread(studies["ablation"])[bonus.ABLATION[0][0]]
    assert spread["seeds"] == [0, 1] and spread["mean"] == pytest.approx(sum(spread["values"]) / 2)
    table = sweep.seed_table(studies["ablation"], "ablation", ("val_acc", "val_acc_tta"))
    assert bonus.ABLATION[1][0] in table and "val_acc_tta" in table
    assert f"{100 * explored[sweep.TESTED[1]]['val_acc']:8.2f}" in sweep.explorations_table(studies["explorations"])
    y = torch.tensor([int(c) for c in explored[sweep.TESTED[1]]["test_pred"]])
    paired = sweep.paired(studies["explorations"], y, y)
    assert paired["a_only_right"] == paired["b_only_right"] == 0 and paired["p_value"] == 1.0
    assert "no paired test" in sweep.paired(studies["explorations"], y[:10], y[:10])
    sweep.record(summary, recorded)
    shown, why = sweep.load("ablation", tmp_path / "empty", recorded=recorded)  # another machine: the recorded rows
    assert why.startswith("RECORDED on") and shown == studies["ablation"]
    assert sweep.load("ablation", tmp_path / "cache", recorded=recorded)[1] == "trained on this machine (cache)"


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
