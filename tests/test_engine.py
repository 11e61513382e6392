"""Models, the training loop, the driver of Part 2, its cache, and the command line, on synthetic KMNIST."""
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
from hw3 import plots, tables  # noqa: E402
from hw3.data import kmnist_splits, make_loaders  # noqa: E402
from hw3.models import CNN, MLP, count_parameters  # noqa: E402
from hw3.train import CONTROLS, OPTIMIZERS, train  # noqa: E402

TINY = dict(epochs=2, train_subset=256, batch_size=64, progress=False)


def test_parameter_counts_match_hand_formulas():
    assert count_parameters(MLP()) == (784 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10) == 89_610
    conv = (1 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 64 * 9 + 64)
    assert count_parameters(CNN()) == conv + (64 * 3 * 3 * 10 + 10) == 29_066
    frozen = MLP()
    frozen.net[1].requires_grad_(False)
    assert count_parameters(frozen) == 89_610 - (784 * 100 + 100)
    with pytest.raises(ValueError, match="torch.nn.Module, got list"):
        count_parameters([1, 2])


def test_cnn_is_the_questions_architecture():
    x = torch.randn(5, 1, 28, 28)
    assert MLP()(x).shape == (5, 10) and CNN()(x).shape == (5, 10)
    kinds = [type(m) for m in CNN().features]
    assert kinds == [nn.Conv2d, nn.ReLU, nn.MaxPool2d] * 3  # conv -> non-linearity -> max-pool, three times
    assert [m.out_channels for m in CNN().features if isinstance(m, nn.Conv2d)] == [16, 32, 64]
    assert all(m.kernel_size == (3, 3) for m in CNN().features if isinstance(m, nn.Conv2d))


def test_optimizer_table_is_the_questions():
    assert OPTIMIZERS["sgd"][1:] == (torch.optim.SGD, dict(lr=0.01))
    assert OPTIMIZERS["nesterov"][1:] == (torch.optim.SGD, dict(lr=0.01, momentum=0.9, nesterov=True))
    assert OPTIMIZERS["adam"][1:] == (torch.optim.Adam, dict(lr=0.01))
    assert OPTIMIZERS["adam_lr1"][1:] == (torch.optim.Adam, dict(lr=1.0))
    assert set(CONTROLS).isdisjoint(OPTIMIZERS)


@pytest.mark.parametrize("model", [MLP, CNN])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_tiny_end_to_end_run(fake_root, model, optimizer):
    r = cache.cached(ex.run_experiment, model=model, optimizer=optimizer, **TINY)
    h = r["history"]
    assert h["steps_per_epoch"] == 4
    if not h["diverged"]:
        assert len(h["step_loss"]) == 8 and h["epoch"] == [0, 1, 2]
        assert len(h["val_loss"]) == len(h["val_acc"]) == len(h["train_loss"]) == 3
    assert 0 <= r["final"]["test_acc"] <= 1 and r["n_params"] == count_parameters(model())
    assert 0 <= r["final"]["train_eval_acc"] <= 1 and r["final"]["train_eval_loss"] >= 0
    path = cache.result_path(ex.run_experiment, dict(model=model, optimizer=optimizer, **TINY))
    saved = json.loads(path.read_text())
    assert saved["config"]["optimizer"] == optimizer and saved["history"]["step_loss"] == h["step_loss"]
    assert path.with_suffix(".pt").exists()  # the weights, beside the result


def test_training_learns_on_synthetic_data(fake_root):
    r, _ = ex.run_experiment(MLP, "adam", epochs=3, train_subset=1000, progress=False)
    assert r["final"]["val_acc"] > 0.9  # the synthetic classes are easy: a broken loop would not get there


def test_same_seed_same_history_on_cpu(fake_root):
    a, _ = ex.run_experiment(CNN, "nesterov", **TINY)
    b, _ = ex.run_experiment(CNN, "nesterov", **TINY)
    assert a["history"]["step_loss"] == b["history"]["step_loss"] and a["history"]["val_loss"] == b["history"]["val_loss"]
    c, _ = ex.run_experiment(CNN, "nesterov", seed=1, **TINY)
    assert c["history"]["step_loss"] != a["history"]["step_loss"]


def test_driver_rejects_bad_values(fake_root):
    with pytest.raises(ValueError, match="expected dataset 'plain' or 'permuted'.*got dataset='rotated'"):
        ex.run_experiment(MLP, "sgd", dataset="rotated")
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        ex.run_experiment(MLP, "rmsprop")
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        ex.run_experiment(MLP, "sgd", epochs=0, train_subset=64, progress=False)


def test_cache_hit_miss_and_force(fake_root, tmp_path):
    calls = []

    def run(**kw):  # a spy around the driver: counts real trainings
        calls.append(kw)
        return ex.run_experiment(**kw)

    run.__qualname__ = run.__name__ = "run"
    first = cache.cached(run, model=MLP, optimizer="sgd", **TINY)
    assert cache.cached(run, model=MLP, optimizer="sgd", **TINY) == first and len(calls) == 1  # hit
    cache.cached(run, model=MLP, optimizer="sgd", seed=5, **TINY)  # miss: another config
    assert len(calls) == 2
    cache.cached(run, model=MLP, optimizer="sgd", force=True, **TINY)  # force
    assert len(calls) == 3 and len(list((tmp_path / "results").glob("*.json"))) == 2
    # device and progress are not part of the key: a CPU result is reused on another device
    assert cache.result_path(run, dict(model=MLP, optimizer="sgd", **TINY)) == \
        cache.result_path(run, dict(model=MLP, optimizer="sgd", **{**TINY, "progress": True}, device="cuda"))


def test_an_interrupted_run_leaves_nothing(fake_root, tmp_path):
    def interrupted(**kw):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        cache.cached(interrupted, model=MLP)
    assert not (tmp_path / "results").exists() or list((tmp_path / "results").iterdir()) == []


def test_half_written_file_is_never_a_result(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    monkeypatch.setattr(cache.json, "dump", lambda obj, f, **kw: (f.write('{"history": '), (_ for _ in ()).throw(KeyboardInterrupt)))
    with pytest.raises(KeyboardInterrupt):
        cache.write_json_atomic({"history": [], "final": {}}, path)
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary file
    path.write_text('{"history": {"step_loss": [1.0, 2')  # e.g. a copy cut short by a disconnect
    assert cache.load_result(path) is None


def test_a_cached_model_comes_back_from_its_weights_and_missing_weights_are_trained_again(fake_root, tmp_path):
    cfg = dict(model=MLP, optimizer="nesterov", **{k: v for k, v in TINY.items() if k != "progress"})
    net, = cache.cached_models(ex.run_experiment, MLP, **cfg)
    path = cache.result_path(ex.run_experiment, cfg)
    loader = make_loaders(kmnist_splits(train_subset=256), 64)["val"]
    expected = json.loads(path.read_text())["final"]["val_acc"]
    assert ex.evaluate(net, loader)[1] == pytest.approx(expected)
    path.with_suffix(".pt").unlink()
    again, = cache.cached_models(ex.run_experiment, MLP, **cfg)
    assert path.with_suffix(".pt").exists() and ex.evaluate(again, loader)[1] == pytest.approx(expected)


def test_dead_units_sees_a_dead_layer_and_a_constant_output():
    net = MLP()
    with torch.no_grad():
        net.net[3].bias.fill_(-1e6)  # the second hidden layer can never fire
    dead, outputs = ex.dead_units(net, [(torch.randn(50, 1, 28, 28), torch.zeros(50, dtype=torch.long))])
    assert dead[1] == 1.0 and dead[0] < 0.5 and outputs == 1
    dead, outputs = ex.dead_units(MLP(), [(torch.randn(50, 1, 28, 28), torch.zeros(50, dtype=torch.long))])
    assert max(dead) < 0.5 and outputs == 50


def test_divergence_stops_the_run_and_keeps_history(fake_root):
    loaders = make_loaders(kmnist_splits(train_subset=512), 64)
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=1e6)  # certain to blow up
    h = train(model, loaders, opt, epochs=3, progress=False)
    assert h["diverged"] and h["diverged_step"] == len(h["step_loss"]) < 8 and h["epoch"] == [0]
    assert all(v == v and abs(v) != float("inf") for v in h["step_loss"])


def test_figures_and_tables_from_results(fake_root):
    rs = ex.run_group("mlp", progress=False, seeds={"mlp": (0, 1)}, epochs=2, train_subset=256)
    assert [r["config"]["optimizer"] for r in rs] == [o for o in [*OPTIMIZERS, *CONTROLS] for _ in (0, 1)]
    plots.plot_learning_curves([r for r in rs if r["config"]["seed"] == 0], "mlp")
    t = tables.runs_table(rs)
    assert [row[0].split(" (")[0] for row in t.rows] == [o[0] for o in [*OPTIMIZERS.values(), *CONTROLS.values()]]
    accs = [100 * r["final"]["test_acc"] for r in rs[2:4]]
    assert t.rows[1][8].startswith(f"{sum(accs) / 2:.1f} ± ")  # mean ± sd over the two seeds
    assert "| run | seeds |" in t._repr_markdown_() and "val acc after epoch 1" in repr(t)
    s = tables.run_stats(rs[2])
    assert s["best"] == max(rs[2]["history"]["val_acc"][1:])
    cmp = tables.compare_table(rs, rs, "A", "B")
    assert all(row[3] == "+0.0" for row in cmp.rows)
    with pytest.raises(ValueError, match="experiment group must be one of"):
        ex.run_group("vgg")


def test_permutation_twins_follow_one_trajectory(fake_root):
    assert ex.permutation_twins(steps=30) < 1e-10


def test_cli_help_and_bad_options():
    run = lambda *a: subprocess.run([sys.executable, "-m", "hw3", *a], capture_output=True, text=True)  # noqa: E731
    h = run("run", "--help")
    assert h.returncode == 0 and all(opt in h.stdout for opt in ("--epochs", "--data", "--force", "--results"))
    assert all(g in h.stdout for g in ex.GROUPS)
    bad = run("run", "mlp", "--epochs", "-3")
    assert bad.returncode == 2 and "expected a positive integer, got -3" in bad.stderr
    assert run("run", "vgg").returncode == 2 and "invalid choice: 'vgg'" in run("run", "vgg").stderr
    top = run("--help")
    assert top.returncode == 0 and "run" in top.stdout and "export" in top.stdout


def test_cli_runs_on_synthetic_data(fake_md5, md5_file, tmp_path):
    root, _ = fake_md5
    env = {**__import__("os").environ, "HW3_RAW_MD5": str(md5_file)}
    p = subprocess.run([sys.executable, "-m", "hw3", "run", "permuted", "--epochs", "1", "--data", str(root),
                        "--results", str(tmp_path / "r"), "--no-progress"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "CNN permuted SGD-Nesterov" in p.stdout
    assert len(list((tmp_path / "r").glob("*.json"))) == len(ex.MLP_SEEDS) + 1  # the permuted CNN: one seed, as in 2.5


def test_bonus_table_leaves_out_the_columns_no_row_measured():
    run = lambda final: {"final": final, "wall_time_s": 3.0, "n_params": 10}  # noqa: E731
    val_only = {"val_acc": 0.9, "train_eval_acc": 0.95}
    t = tables.bonus_table([("a", run(val_only)), ("a", run(val_only))])
    assert t.columns == ["model", "seeds", "val acc", "train acc (no augmentation)", "training time", "parameters"]
    assert t.rows == [["a", "2", "90.00 ± 0.00", "95.00 ± 0.00", "3 s", "10"]]
    tested = run({**val_only, "val_acc_tta": 0.91, "test_acc": 0.8})
    t = tables.bonus_table([("a", run(val_only)), ("b", tested)])
    assert "val acc with TTA" in t.columns and "test acc" in t.columns and t.rows[0][3] == "-"
