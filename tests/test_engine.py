"""Models, training, experiments (cache, atomicity, divergence, determinism), plots and the CLI."""
import json
import subprocess
import sys

import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

import hw3.cache as cache  # noqa: E402
import hw3.experiments as ex  # noqa: E402
from hw3 import plots  # noqa: E402
from hw3.models import CNN, MLP, build_model, count_parameters  # noqa: E402
from hw3.train import OPTIMIZERS, make_optimizer, train  # noqa: E402

TINY = dict(epochs=2, train_subset=256, batch_size=64)


def test_parameter_counts_match_hand_formulas():
    assert count_parameters(MLP()) == (784 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10) == 89_610
    conv = (1 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 64 * 9 + 64)
    assert count_parameters(CNN()) == conv + (64 * 3 * 3 * 10 + 10) == 29_066
    frozen = MLP()
    frozen.net[1].requires_grad_(False)
    assert count_parameters(frozen) == 89_610 - (784 * 100 + 100)
    with pytest.raises(ValueError, match="torch.nn.Module, got list"):
        count_parameters([1, 2])


def test_model_shapes_and_pool_relu_order_equivalence():
    x = torch.randn(5, 1, 28, 28)
    assert MLP()(x).shape == (5, 10)
    cnn = CNN()
    assert cnn(x).shape == (5, 10)
    # the question's order (conv -> ReLU -> pool) with the same weights gives the same function
    convs = [m for m in cnn.features if isinstance(m, nn.Conv2d)]
    ref = nn.Sequential(*[layer for c in convs for layer in (c, nn.ReLU(), nn.MaxPool2d(2))])
    torch.testing.assert_close(cnn.classifier(ref(x).flatten(1)), cnn(x))


def test_build_model_seeded_and_bad_name():
    a, b = build_model("cnn", seed=3), build_model("cnn", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="model must be one of \\['cnn', 'mlp'\\], got 'resnet'"):
        build_model("resnet")
    with pytest.raises(ValueError, match="model must be one of \\['cnn', 'mlp'\\], got 'resnet'"):
        ex.Implementation().model_class("resnet")


def test_optimizer_table_is_the_homeworks():
    p = [nn.Parameter(torch.zeros(1))]
    assert make_optimizer("sgd", p).defaults["lr"] == 0.01 and make_optimizer("sgd", p).defaults["momentum"] == 0
    nes = make_optimizer("nesterov", p).defaults
    assert (nes["lr"], nes["momentum"], nes["nesterov"]) == (0.01, 0.9, True)
    assert isinstance(make_optimizer("adam", p), torch.optim.Adam) and make_optimizer("adam", p).defaults["lr"] == 0.01
    assert make_optimizer("adam_lr1", p).defaults["lr"] == 1.0
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("rmsprop", p)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_tiny_end_to_end_run(fake_root, tmp_path, model, optimizer):
    r = ex.run_experiment(ex.Config(model=model, optimizer=optimizer, **TINY), data_dir=fake_root,
                          results=tmp_path, progress=False)
    h = r["history"]
    assert h["steps_per_epoch"] == 4
    if not h["diverged"]:
        assert len(h["step_loss"]) == 8 and h["epoch"] == [0, 1, 2]
        assert len(h["val_loss"]) == len(h["val_acc"]) == len(h["train_loss"]) == 3
    assert 0 <= r["final"]["test_acc"] <= 1 and r["n_params"] == count_parameters(build_model(model))
    assert 0 <= r["final"]["train_acc"] <= 1 and r["final"]["train_eval_loss"] >= 0  # the training split, evaluated
    key = ex.Config(model=model, optimizer=optimizer, **TINY).key()
    saved = json.loads((tmp_path / f"{key}.json").read_text())
    assert saved["config"]["optimizer"] == optimizer and saved["history"]["step_loss"] == h["step_loss"]
    assert (tmp_path / f"{key}.pt").exists()  # the weights, beside the result


def test_training_learns_on_synthetic_data(fake_root, tmp_path):
    r = ex.run_experiment(ex.Config(model="mlp", optimizer="adam", epochs=3, train_subset=1000), data_dir=fake_root,
                          results=tmp_path, progress=False)
    assert r["final"]["val_acc"] > 0.9  # the synthetic classes are easy: a broken loop would not get there


def test_same_seed_same_history_on_cpu(fake_root, tmp_path):
    cfg = ex.Config(model="cnn", optimizer="nesterov", **TINY)
    a = ex.run_experiment(cfg, data_dir=fake_root, results=tmp_path / "a", progress=False, device="cpu")
    b = ex.run_experiment(cfg, data_dir=fake_root, results=tmp_path / "b", progress=False, device="cpu")
    assert a["history"]["step_loss"] == b["history"]["step_loss"] and a["history"]["val_loss"] == b["history"]["val_loss"]
    c = ex.run_experiment(ex.Config(model="cnn", optimizer="nesterov", **{**TINY, "epochs": 2}, seed=1),
                          data_dir=fake_root, results=tmp_path / "c", progress=False, device="cpu")
    assert c["history"]["step_loss"] != a["history"]["step_loss"]


def test_cache_hit_miss_and_force(fake_root, tmp_path, monkeypatch):
    cfg = ex.Config(model="mlp", optimizer="sgd", **TINY)
    first = ex.run_experiment(cfg, data_dir=fake_root, results=tmp_path, progress=False)
    calls = []  # a spy on the saving of a trained result (patching a hashed function would change the key)
    real_save = ex.save_result
    monkeypatch.setattr(ex, "save_result", lambda *a, **k: calls.append(1) or real_save(*a, **k))
    assert ex.run_experiment(cfg, data_dir=fake_root, results=tmp_path, progress=False) == first  # hit
    assert calls == []
    ex.run_experiment(ex.Config(model="mlp", optimizer="sgd", **{**TINY, "seed": 5}), data_dir=fake_root,
                      results=tmp_path, progress=False)  # miss: another config
    assert calls == [1]
    ex.run_experiment(cfg, data_dir=fake_root, results=tmp_path, progress=False, force=True)  # force
    assert calls == [1, 1]
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_interrupted_run_leaves_nothing(fake_root, tmp_path, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(ex, "_train_config", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ex.run_experiment(ex.Config(model="mlp", **TINY), data_dir=fake_root, results=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_half_written_file_is_never_a_result(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    monkeypatch.setattr(cache.json, "dump", lambda obj, f, **kw: (f.write('{"history": '), (_ for _ in ()).throw(KeyboardInterrupt)))
    with pytest.raises(KeyboardInterrupt):
        cache.write_json_atomic({"history": [], "final": {}}, path)
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary file
    path.write_text('{"history": {"step_loss": [1.0, 2')  # e.g. a copy cut short by a disconnect
    assert cache.load_result(path) is None


def test_divergence_stops_the_run_and_keeps_history(fake_root):
    splits = ex.data.load_splits("plain", fake_root, train_subset=512)
    loaders = ex.data.make_loaders(splits, 64)
    model = build_model("mlp", seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=1e6)  # certain to blow up
    h = train(model, loaders, opt, epochs=3, progress=False)
    assert h["diverged"] and h["diverged_step"] == len(h["step_loss"]) < 8 and h["epoch"] == [0]
    assert all(v == v and abs(v) != float("inf") for v in h["step_loss"])
    fig = plots.plot_learning_curves([{"label": "SGD lr=1e6", "config": {"model": "mlp", "dataset": "plain"},
                                       "history": h}], title="diverged")
    assert any("diverged" in t.get_text() for t in fig.axes[0].texts)


def test_plots_and_table_from_results(fake_root, tmp_path):
    rs = ex.run_group("mlp", data_dir=fake_root, results=tmp_path, progress=False, **TINY)
    assert [r["config"]["optimizer"] for r in rs] == list(OPTIMIZERS)
    fig = plots.plot_learning_curves(rs, "mlp")
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].get_legend().get_texts()) == 8
    assert fig.axes[1].get_yscale() == "log"  # validation error: chance level and 1% on one axis
    assert all(float(t).is_integer() for t in fig.axes[1].get_xticks())  # whole epochs
    table = plots.summary_table(rs)
    assert table.count("\n") == 6
    s = plots.run_stats(rs[1])
    accs = rs[1]["history"]["val_acc"][1:]
    assert s["last5"] == pytest.approx(sum(accs[-5:]) / len(accs[-5:])) and s["best"] == max(accs)
    assert f"{100 * rs[1]['final']['train_acc']:.2f}" in table.splitlines()[3]
    plots.plot_permuted(rs[:2], rs[2:])
    splits = ex.data.load_splits("permuted", fake_root)
    plots.show_samples(ex.data.load_splits("plain", fake_root), per_class=3, permuted=splits)
    with pytest.raises(ValueError, match="experiment group must be one of"):
        ex.run_group("vgg")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="dataset must be one of \\('plain', 'permuted'\\), got 'rotated'"):
        ex.Config(dataset="rotated")
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        ex.Config(epochs=0)


def test_permutation_equivalence_of_the_mlp(fake_root):
    r = ex.permutation_equivalence(steps=30, data_dir=fake_root)
    assert r["max_abs_diff"] < 1e-10 and r["loss_plain"][0] > r["loss_plain"][-1]


def test_cli_help_and_bad_options():
    run = lambda *a: subprocess.run([sys.executable, "-m", "hw3", *a], capture_output=True, text=True)  # noqa: E731
    h = run("run", "--help")
    assert h.returncode == 0 and all(opt in h.stdout for opt in ("--epochs", "--data", "--force", "--results"))
    bad = run("run", "mlp", "--epochs", "-3")
    assert bad.returncode == 2 and "expected a positive integer, got -3" in bad.stderr
    assert run("run", "vgg").returncode == 2 and "invalid choice: 'vgg'" in run("run", "vgg").stderr


def test_cli_runs_on_synthetic_data(fake_md5, tmp_path):
    root, md5 = fake_md5
    code = ("import sys, json, hw3.data; hw3.data.RAW_MD5.update(json.loads(sys.argv[1])); "
            "from hw3.cli import main; sys.exit(main(sys.argv[2:]))")
    p = subprocess.run([sys.executable, "-c", code, json.dumps(md5), "run", "permuted", "--epochs", "1",
                        "--data", str(root), "--results", str(tmp_path), "--no-progress"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "SGD-Nesterov" in p.stdout and (tmp_path / "figures" / "permuted_curves.png").stat().st_size > 10_000
