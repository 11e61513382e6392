"""Models, the training loop, the driver of Part 2, its analyses, its cache, the tables and the command line."""
import json
import math
import subprocess
import sys

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from torch import nn

matplotlib.use("Agg")

import hw3.cache as cache  # noqa: E402
import hw3.evidence as ev  # noqa: E402
import hw3.experiments as ex  # noqa: E402
from hw3 import plots, tables  # noqa: E402
from hw3.data import kmnist_splits, make_loaders  # noqa: E402
from hw3.models import CNN, MLP, count_parameters  # noqa: E402
from hw3.train import OPTIMIZERS, evaluate, train  # noqa: E402

TINY = dict(epochs=2, train_subset=128, batch_size=64, progress=False)  # 2 steps per epoch


def test_parameter_counts_match_hand_formulas():
    assert count_parameters(MLP()) == (784 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10) == 89_610
    conv = (1 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 64 * 9 + 64)
    assert count_parameters(CNN()) == conv + (64 * 3 * 3 * 10 + 10) == 29_066
    frozen = MLP()
    frozen[1].requires_grad_(False)
    assert count_parameters(frozen) == 89_610 - (784 * 100 + 100)
    with pytest.raises(ValueError, match="torch.nn.Module, got list"):
        count_parameters([1, 2])


def test_cnn_is_the_questions_architecture():
    x = torch.randn(5, 1, 28, 28)
    assert MLP()(x).shape == (5, 10) and CNN()(x).shape == (5, 10)
    kinds = [type(m) for m in CNN()]  # conv -> non-linearity -> max-pool, three times; then one fully connected layer
    assert kinds == [nn.Conv2d, nn.ReLU, nn.MaxPool2d] * 3 + [nn.Flatten, nn.Linear]
    assert [m.out_channels for m in CNN() if isinstance(m, nn.Conv2d)] == [16, 32, 64]
    assert all(m.kernel_size == (3, 3) for m in CNN() if isinstance(m, nn.Conv2d))


def test_optimizer_table_is_the_questions():
    assert OPTIMIZERS["sgd"][1:] == (torch.optim.SGD, dict(lr=0.01))
    assert OPTIMIZERS["nesterov"][1:] == (torch.optim.SGD, dict(lr=0.01, momentum=0.9, nesterov=True))
    assert OPTIMIZERS["adam"][1:] == (torch.optim.Adam, dict(lr=0.01))
    assert OPTIMIZERS["adam_lr1"][1:] == (torch.optim.Adam, dict(lr=1.0))
    assert list(OPTIMIZERS) == ["sgd", "nesterov", "adam", "adam_lr1"]


# ---------------------------------------------------------------------------------------------
# evaluate and train, on hand-made loaders

def _linear(weight, bias) -> nn.Linear:
    m = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        m.weight.copy_(torch.tensor(weight, dtype=torch.float32)), m.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return m


def test_evaluate_loss_and_accuracy_computed_by_hand():
    # logits = x @ W.T: for x = (a, b) the logits are (a, b, 0); batches of 3 and 2 samples
    model = _linear([[1, 0], [0, 1], [0, 0]], [0, 0, 0])
    xs = [[2.0, 0.0], [0.0, 3.0], [-1.0, -2.0], [1.0, 0.5], [-1.0, 4.0]]
    ys = [0, 0, 2, 1, 1]
    loader = [(torch.tensor(xs[:3]), torch.tensor(ys[:3])), (torch.tensor(xs[3:]), torch.tensor(ys[3:]))]
    by_hand = []
    for (a, b), y in zip(xs, ys):
        logits = [a, b, 0.0]
        by_hand.append(math.log(sum(math.exp(v) for v in logits)) - logits[y])
    loss, acc = evaluate(model, loader)
    assert loss == pytest.approx(sum(by_hand) / 5, rel=1e-6)  # the mean over samples, not over batches
    assert acc == pytest.approx(3 / 5)  # argmax 0, 1, 2, 0, 1 against labels 0, 0, 2, 1, 1
    assert not model.training


def test_evaluate_is_the_mean_cross_entropy_over_every_sample_of_big_batches():
    torch.manual_seed(0)
    model = _linear(torch.randn(10, 20).mul(3).tolist(), torch.zeros(10).tolist())
    x, y = torch.randn(1250, 20), torch.randint(0, 10, (1250,))
    loader = [(x[i:i + 500], y[i:i + 500]) for i in range(0, 1250, 500)]  # 500, 500, 250: like the eval loaders
    with torch.no_grad():
        logits = model(x)
        want_loss = float(F.cross_entropy(logits.double(), y))
        want_acc = float((logits.argmax(1) == y).double().mean())
    loss, acc = evaluate(model, loader)
    assert loss > 1 and loss == pytest.approx(want_loss, rel=1e-5)  # a per-batch mean / n would be ~500x smaller
    assert acc == pytest.approx(want_acc, abs=1e-12)
    with pytest.raises(ValueError, match="^evaluate got an empty loader$"):
        evaluate(model, [])


def _toy_loaders(n_train=40, batch=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n_train + 30, 1, 4, 4, generator=g), torch.randint(0, 10, (n_train + 30,), generator=g)
    train_batches = [(x[i:i + batch], y[i:i + batch]) for i in range(0, n_train, batch)]
    return {"train": train_batches, "val": [(x[n_train:], y[n_train:])]}


def _toy_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 10))


def test_train_history_lengths_and_values():
    loaders, model = _toy_loaders(), _toy_model()
    before = evaluate(model, loaders["val"])
    h = train(model, loaders, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, progress=False)
    assert set(h) == {"steps_per_epoch", "step_loss", "train_loss", "val_loss", "val_acc"}
    assert h["steps_per_epoch"] == 5 and len(h["step_loss"]) == 3 * 5
    assert len(h["train_loss"]) == len(h["val_loss"]) == len(h["val_acc"]) == 3 + 1
    assert h["train_loss"][0] is None and (h["val_loss"][0], h["val_acc"][0]) == pytest.approx(before)
    for e in (1, 2, 3):
        assert h["train_loss"][e] == pytest.approx(sum(h["step_loss"][5 * (e - 1):5 * e]) / 5, rel=1e-6)
    assert (h["val_loss"][-1], h["val_acc"][-1]) == pytest.approx(evaluate(model, loaders["val"]))
    assert h["step_loss"][-1] < h["step_loss"][0]  # it learned something
    with pytest.raises(ValueError, match="expected epochs >= 1 and 0 <= label_smoothing < 1, got 0 and 0.0"):
        train(model, loaders, torch.optim.SGD(model.parameters(), lr=0.1), epochs=0, progress=False)
    for bad in (1.0, 1.5, -0.1):  # 1.0 would train on uniform targets only; torch accepts it and any negative value
        with pytest.raises(ValueError, match=f"got 1 and {bad}"):
            train(model, loaders, torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, progress=False, label_smoothing=bad)


class _RecordingBar:
    """Stands in for the progress bar: records what the training loop tells it."""

    def __init__(self, total, desc="", disable=False):
        self.args, self.updates, self.postfixes, self.closed = (total, desc, disable), 0, [], False

    def update(self):
        self.updates += 1

    def set_postfix(self, **kwargs):
        self.postfixes.append(kwargs)

    def close(self):
        self.closed = True


@pytest.mark.parametrize("kwargs, desc, disable", [({}, "", False), ({"progress": False, "desc": "MLP seed 3"}, "MLP seed 3", True)])
def test_train_drives_one_progress_bar_over_every_step(monkeypatch, kwargs, desc, disable):
    bars = []
    monkeypatch.setattr(sys.modules["hw3.train"], "progress_bar", lambda *a, **k: bars.append(_RecordingBar(*a, **k)) or bars[-1])
    loaders, model = _toy_loaders(), _toy_model()
    h = train(model, loaders, torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, **kwargs)
    bar, = bars
    assert bar.args == (2 * 5, desc, disable) and bar.updates == 2 * 5 and bar.closed
    # after each epoch: that epoch's mean training loss and validation accuracy, shown when the bar next redraws
    assert bar.postfixes == [{"train_loss": f"{h['train_loss'][e]:.3f}", "val_acc": f"{h['val_acc'][e]:.3f}", "refresh": False}
                             for e in (1, 2)]


def test_train_first_step_loss_is_the_cross_entropy_of_the_first_batch_and_label_smoothing_is_used():
    loaders = _toy_loaders()
    x0, y0 = loaders["train"][0]
    for smoothing in (0.0, 0.3):
        model = _toy_model()
        with torch.no_grad():
            want = float(F.cross_entropy(model(x0), y0, label_smoothing=smoothing))
        h = train(model, loaders, torch.optim.SGD(model.parameters(), lr=0.1), 1, progress=False, label_smoothing=smoothing)
        assert h["step_loss"][0] == pytest.approx(want, rel=1e-6)
    plain, smooth = (train(_toy_model(), loaders, torch.optim.SGD(_toy_model().parameters(), lr=0.0), 1, progress=False,
                           label_smoothing=s)["step_loss"][0] for s in (0.0, 0.3))
    assert plain != pytest.approx(smooth)


def test_train_steps_the_schedule_after_every_batch():
    loaders, model = _toy_loaders(), _toy_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=2 * 5)
    used, steps = [], []

    class Spy:  # the schedule, with a record of the rate each optimizer step used and of the steps taken so far
        def step(self):
            used.append(opt.param_groups[0]["lr"])
            steps.append(len(steps) + 1)
            one_cycle.step()

    def before_forward(module, args):  # each training batch's forward: the schedule stepped once per batch so far
        if module.training:
            assert len(steps) == len(used)
            calls.append(len(steps))

    calls = []
    model.register_forward_pre_hook(before_forward)
    train(model, loaders, opt, 2, progress=False, schedule=Spy())
    assert calls == list(range(10)) and steps == list(range(1, 11))  # one schedule step after each of the 10 batches
    ref_opt = torch.optim.SGD(_toy_model().parameters(), lr=0.1)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, 0.1, total_steps=10)
    want = []
    for _ in range(10):
        want.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step(), ref.step()
    assert used == pytest.approx(want) and max(used) == pytest.approx(0.1)


def test_train_keeps_going_when_the_loss_blows_up():
    loaders, model = _toy_loaders(), _toy_model()
    h = train(model, loaders, torch.optim.SGD(model.parameters(), lr=1e30), 2, progress=False)
    assert len(h["step_loss"]) == 10 and len(h["val_acc"]) == 3  # no early stop: every epoch is logged
    assert not all(v < 1e6 for v in h["step_loss"][5:])  # it did blow up (huge, inf or nan), and went on


# ---------------------------------------------------------------------------------------------
# the driver

@pytest.mark.parametrize("model, optimizer", [(MLP, o) for o in OPTIMIZERS] + [(CNN, "nesterov")])
def test_tiny_end_to_end_run(fake_root, model, optimizer):
    r = cache.cached(ex.run_experiment, model=model, optimizer=optimizer, **TINY)
    h = r["history"]
    assert h["steps_per_epoch"] == 2 and len(h["step_loss"]) == 4
    assert len(h["val_loss"]) == len(h["val_acc"]) == len(h["train_loss"]) == 3
    assert set(r) == {"config", "label", "history", "final", "wall_time_s", "n_params", "device"}
    assert set(r["final"]) == {f"{s}_{w}" for s in ("train_eval", "val", "test") for w in ("loss", "acc")}
    assert r["label"] == OPTIMIZERS[optimizer][0] and r["device"].startswith("cpu")
    assert r["config"] == dict(model=model.__name__, optimizer=optimizer, dataset="plain", epochs=2, batch_size=64,
                               seed=0, train_subset=128)
    assert 0 <= r["final"]["test_acc"] <= 1 and r["n_params"] == count_parameters(model())
    assert 0 <= r["final"]["train_eval_acc"] <= 1
    path = cache.result_path(ex.run_experiment, dict(model=model, optimizer=optimizer, **TINY))
    saved = json.loads(path.read_text())
    assert saved["config"]["optimizer"] == optimizer and saved["history"]["step_loss"] == h["step_loss"]
    assert path.with_suffix(".pt").exists()  # the weights, beside the result


def test_final_metrics_are_those_of_the_returned_model(fake_root):
    r, (net,) = ex.run_experiment(MLP, "nesterov", **TINY)
    loaders = make_loaders(kmnist_splits(train_subset=128), 64)
    for split in ("train_eval", "val", "test"):
        loss, acc = evaluate(net, loaders[split])
        assert r["final"][f"{split}_loss"] == pytest.approx(loss) and r["final"][f"{split}_acc"] == pytest.approx(acc)
    assert r["final"]["val_acc"] == pytest.approx(r["history"]["val_acc"][-1])


def test_training_learns_on_synthetic_data(fake_root):
    r, _ = ex.run_experiment(MLP, "adam", epochs=3, train_subset=1000, progress=False)
    assert r["final"]["val_acc"] > 0.9  # the synthetic classes are easy: a broken loop would not get there


def test_same_seed_same_history_on_cpu(fake_root):
    a, _ = ex.run_experiment(MLP, "nesterov", **TINY)
    b, _ = ex.run_experiment(MLP, "nesterov", **TINY)
    assert a["history"]["step_loss"] == b["history"]["step_loss"] and a["history"]["val_loss"] == b["history"]["val_loss"]
    c, _ = ex.run_experiment(MLP, "nesterov", seed=1, **TINY)
    assert c["history"]["step_loss"] != a["history"]["step_loss"]


def test_driver_rejects_bad_values(fake_root):
    with pytest.raises(ValueError, match="expected dataset 'plain' or 'permuted'.*got dataset='rotated'"):
        ex.run_experiment(MLP, "sgd", dataset="rotated")
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        ex.run_experiment(MLP, "rmsprop")
    with pytest.raises(ValueError, match="expected epochs >= 1 and 0 <= label_smoothing < 1, got 0 and 0.0"):
        ex.run_experiment(MLP, "sgd", epochs=0, train_subset=64, progress=False)
    for bad in (-5, 0, 1001):
        with pytest.raises(ValueError, match=f"train_subset must be None .* got {bad}$"):
            ex.run_experiment(MLP, "sgd", epochs=1, train_subset=bad, progress=False)


# ---------------------------------------------------------------------------------------------
# the analyses the answers cite: accuracy over seeds, `beats`, `check`

def _run(val=None, test=None, train=None, val1=None, label="SGD", device="cpu (2 threads)", wall=10.0, n_params=1000):
    """A hand-made result with the fields the tables and analyses read (accuracies as fractions)."""
    return {"label": label, "final": {"val_acc": val, "test_acc": test, "train_eval_acc": train},
            "history": {"val_acc": [0.1, val1]}, "device": device, "wall_time_s": wall, "n_params": n_params}


def test_accuracy_is_the_mean_and_sd_over_seeds_in_percent():
    assert ev.accuracy([_run(0.9)]) == pytest.approx((90.0, 0.0))  # one run: sd 0
    mean, sd = ev.accuracy([_run(0.90), _run(0.92), _run(0.97)])
    assert mean == pytest.approx(93.0) and sd == pytest.approx(math.sqrt((9 + 1 + 16) / 2))  # sample sd (n - 1)
    assert ev.accuracy([_run(0.5, test=0.8), _run(0.5, test=0.9)], split="test") == pytest.approx((85.0, math.sqrt(50)))


def test_beats_needs_a_gain_beyond_both_spreads_and_the_margin():
    assert ev.MARGIN == 0.1
    one = lambda *accs: [_run(a) for a in accs]  # noqa: E731
    assert ev.beats(one(0.9012), one(0.9)) and not ev.beats(one(0.9008), one(0.9))  # 0.12 > 0.1 > 0.08 points
    assert not ev.beats(one(0.9), one(0.9012))  # a loss is no gain
    assert not ev.beats(one(0.9), one(0.9))
    # a's spread: sd 1.414 points; gains of 2 and 1.5 points against 1.414 + 0 + 0.1
    assert ev.beats(one(0.91, 0.93), one(0.90)) and not ev.beats(one(0.91, 0.93), one(0.905))
    # b's spread counts too
    assert ev.beats(one(0.92), one(0.89, 0.91)) and not ev.beats(one(0.915), one(0.89, 0.91))
    # on another split, for both sets (b's validation accuracy would reverse the verdict on test)
    a, b = [_run(0.5, test=0.95)], [_run(0.99, test=0.90)]
    assert ev.beats(a, b, split="test") and not ev.beats(a, b)
    # a gain of exactly the margin is not enough: 100 * 0.002 - 100 * 0.001 == 0.1 in floating point
    assert 100 * 0.002 - 100 * 0.001 == ev.MARGIN and not ev.beats(one(0.002), one(0.001))


def test_check_prints_whether_the_claim_holds_and_keeps_the_last_verdict_of_each_claim(capsys, monkeypatch):
    monkeypatch.setattr(ev, "VERDICTS", {})
    ev.check("CNN beats MLP", True, "98.0 vs 91.0")
    ev.check("Adam lr=1 learns", False, "10.0%")
    ev.check("SGD is slow", True, "epoch 20", tag="3")  # the claim's number in the text
    assert capsys.readouterr().out.splitlines() == ["claim holds: CNN beats MLP (98.0 vs 91.0)",
                                                   "CLAIM DOES NOT HOLD in this run: Adam lr=1 learns (10.0%)",
                                                   "claim holds: (3) SGD is slow (epoch 20)"]
    assert ev.VERDICTS == {"CNN beats MLP": True, "Adam lr=1 learns": False, "(3) SGD is slow": True}
    ev.check("Adam lr=1 learns", True, "10.0%")  # a cell run again: its claim counted once, with the new verdict
    ev.check("SGD is slow", False, "epoch 20", tag="4")  # the same words under another number: another claim
    assert ev.VERDICTS == {"CNN beats MLP": True, "Adam lr=1 learns": True, "(3) SGD is slow": True, "(4) SGD is slow": False}


def test_acc_prints_mean_and_sd_or_the_one_seed():
    assert ev.acc([_run(0.90), _run(0.92)]) == "91.0 ± 1.4"
    assert ev.acc([_run(0.5, test=0.875)], "test") == "87.5 (one seed)"


def test_check_beats_prints_the_verdict_of_beats_on_validation_and_test_in_one_line(capsys):
    a, b = [_run(0.95, test=0.90)], [_run(0.90, test=0.9005)]
    ev.check_beats("CNN", a, "MLP", b)  # on test a gain of -0.05 points: the claim fails though validation holds
    ev.check_beats("MLP", [_run(0.90, test=0.95)], "CNN", [_run(0.95, test=0.90)], tag="4")  # fails on validation only
    ev.check_beats("CNN", [_run(0.95, test=0.95)], "MLP", [_run(0.90, test=0.90)], tag="4")
    assert capsys.readouterr().out.splitlines() == [
        "CLAIM DOES NOT HOLD in this run: CNN beats MLP on validation and test (validation 95.0 (one seed) vs 90.0 "
        "(one seed), gain 5.00 > margin 0.10; test 90.0 (one seed) vs 90.0 (one seed), gain -0.05 ≤ margin 0.10)",
        "CLAIM DOES NOT HOLD in this run: (4) MLP beats CNN on validation and test (validation 90.0 (one seed) vs 95.0 "
        "(one seed), gain -5.00 ≤ margin 0.10; test 95.0 (one seed) vs 90.0 (one seed), gain 5.00 > margin 0.10)",
        "claim holds: (4) CNN beats MLP on validation and test (validation 95.0 (one seed) vs 90.0 (one seed), "
        "gain 5.00 > margin 0.10; test 95.0 (one seed) vs 90.0 (one seed), gain 5.00 > margin 0.10)"]
    assert 100 * 0.001 - 100 * 0.0 == 0.1  # a gain of exactly the margin in floating point: not beyond it
    ev.check_beats("A", [_run(0.001, test=0.001)], "B", [_run(0.0, test=0.0)])
    assert capsys.readouterr().out == ("CLAIM DOES NOT HOLD in this run: A beats B on validation and test (validation 0.1 "
                                       "(one seed) vs 0.0 (one seed), gain 0.10 ≤ margin 0.10; test 0.1 (one seed) vs 0.0 "
                                       "(one seed), gain 0.10 ≤ margin 0.10)\n")
    a2 = [_run(0.90, test=0.90), _run(0.92, test=0.92)]  # sd 1.41: the margin adds both spreads to MARGIN
    ev.check_beats("A", a2, "B", [_run(0.80, test=0.80), _run(0.81, test=0.81)])
    assert capsys.readouterr().out == ("claim holds: A beats B on validation and test (validation 91.0 ± 1.4 vs 80.5 ± 0.7, "
                                       "gain 10.50 > margin 2.22; test 91.0 ± 1.4 vs 80.5 ± 0.7, gain 10.50 > margin 2.22)\n")


def _losses(*val_loss, acc=None):
    """A hand-made run with a validation-loss history ([0]: before training, [e]: after epoch e) and a flat accuracy."""
    return {"history": {"val_loss": list(val_loss), "val_acc": list(acc or [0.9] * len(val_loss))}}


def test_lowest_loss_epoch_gives_the_first_epoch_of_the_lowest_validation_loss():
    assert ev.lowest_loss_epoch(_losses(0.1, 2.0, 1.0, 1.5)) == 2  # [0], before training, is never the lowest
    assert ev.lowest_loss_epoch(_losses(3.0, 2.0, 1.0, 0.5)) == 3
    assert ev.lowest_loss_epoch(_losses(3.0, 1.0, 1.0, 1.2)) == 1  # a tie: the first epoch


def test_loss_rise_is_the_last_validation_loss_relative_to_the_lowest():
    assert ev.loss_rise(_losses(0.1, 2.0, 1.0, 1.5)) == pytest.approx(0.5)  # [0], before training, is never the lowest
    assert ev.loss_rise(_losses(3.0, 2.0, 1.0, 0.5)) == 0.0


def test_loss_rises_needs_the_low_in_the_first_half_over_ten_percent_more_at_the_end_and_no_accuracy_fall():
    rises = _losses(3.0, 2.0, 1.0, 1.05, 1.2, acc=[0.1, 0.90, 0.95, 0.955, 0.96])  # low at epoch 2 of 4, +20%, +1 point
    assert ev.loss_rises([rises, _losses(3.0, 1.0, 1.5, 1.5, 1.5)]) == (
        True, "epoch 2, loss +20%, accuracy +1.00 points; epoch 1, loss +50%, accuracy +0.00 points")
    assert ev.loss_rises([rises, _losses(3.0, 2.0, 1.5, 1.0, 1.2)]) == (  # low at epoch 3 of 4: not in the first half
        False, "epoch 2, loss +20%, accuracy +1.00 points; epoch 3, loss +20%, accuracy +0.00 points")
    assert ev.loss_rises([_losses(3.0, 2.0, 1.0, 1.5, 1.5, 1.5)])[0] is True  # low at epoch 2 of 5: in the first half
    assert ev.loss_rises([_losses(3.0, 2.0, 1.5, 1.0, 1.5, 1.5)])[0] is False  # epoch 3 of 5: past it
    assert ev.loss_rises([rises, _losses(3.0, 1.0, 1.05, 1.1, 1.08)]) == (  # +8% only
        False, "epoch 2, loss +20%, accuracy +1.00 points; epoch 1, loss +8%, accuracy +0.00 points")
    assert ev.loss_rises([rises, _losses(3.0, 1.0, 1.5, 1.5, 1.5, acc=[0.1, 0.95, 0.95, 0.95, 0.947])]) == (
        False, "epoch 2, loss +20%, accuracy +1.00 points; epoch 1, loss +50%, accuracy -0.30 points")
    assert ev.loss_rises([_losses(3.0, 1.0, 1.5, 1.5, 1.5, acc=[0.1, 0.95, 0.95, 0.95, 0.949])]) == (
        True, "epoch 1, loss +50%, accuracy -0.10 points")
    assert ev.loss_rises([_losses(3.0, 0.5, 0.6, 0.6, 0.6)]) == (True, "epoch 1, loss +20%, accuracy +0.00 points")  # relative
    assert 100 * (0.0 - 0.002) == -0.2  # a fall of exactly 0.2 points in floating point is allowed ("not more than 0.2")
    assert ev.loss_rises([_losses(3.0, 1.0, 1.5, 1.5, 1.5, acc=[0.0, 0.002, 0.0, 0.0, 0.0])])[0] is True
    assert ev.loss_rises([_losses(3.0, 1.0, 1.5, 1.5, 1.5), rises])[0] is True  # the order of the runs does not matter
    assert ev.loss_rises([_losses(3.0, 1.0, 1.05, 1.1, 1.08), rises])[0] is False


def test_drops_on_test_needs_every_run_of_every_group_over_two_points_lower_on_test():
    sgd, adam = [_run(0.95, test=0.92), _run(0.96, test=0.93)], [_run(0.90, test=0.85)]
    assert ev.drops_on_test({"SGD": sgd, "Adam": adam}) == (
        True, "SGD 95.5 ± 0.7 vs 92.5 ± 0.7, Adam 90.0 (one seed) vs 85.0 (one seed)")
    assert ev.drops_on_test({"SGD": sgd, "Adam": [_run(0.90, test=0.89)]})[0] is False  # one run drops 1 point only
    assert ev.drops_on_test({"Adam": [_run(0.90, test=0.89)], "SGD": sgd})[0] is False
    assert ev.drops_on_test({"SGD": [_run(0.90, test=0.885)]}) == (False, "SGD 90.0 (one seed) vs 88.5 (one seed)")
    assert 0.0205 - 0.0005 == 0.02  # a drop of exactly 2 points in floating point is not over 2
    assert ev.drops_on_test({"SGD": [_run(0.0205, test=0.0005)]})[0] is False


def test_at_chance_needs_every_run_under_twelve_percent_on_validation_and_test():
    assert ev.at_chance([_run(0.10, test=0.10), _run(0.1, test=0.118)]) == (True, "validation 10.0 ± 0.0, test 10.9 ± 1.3")
    assert ev.at_chance([_run(0.10, test=0.10), _run(0.12, test=0.10)]) == (  # 12% is not under 12%
        False, "validation 11.0 ± 1.4, test 10.0 ± 0.0")
    assert ev.at_chance([_run(0.10, test=0.30)]) == (False, "validation 10.0 (one seed), test 30.0 (one seed)")
    assert ev.at_chance([_run(0.30, test=0.10)])[0] is False  # at chance on test only

def test_runs_table_has_six_columns_and_mean_sd_per_configuration():
    rs = [_run(0.90, 0.88, 0.95, 0.5, wall=10), _run(0.92, 0.90, 0.99, 0.6, wall=20),
          _run(0.80, 0.70, 0.85, 0.3, label="Adam", wall=15)]
    t = tables.runs_table(rs)
    assert t.columns == ["run", "seeds", "val acc after epoch 1", "final val acc", "test acc", "train acc"]
    assert t.rows == [["SGD", "2", "55.0 ± 7.1", "91.0 ± 1.4", "89.0 ± 1.4", "97.0 ± 2.8"],
                      ["Adam", "1", "30.0", "80.0", "70.0", "85.0"]]
    assert "trained on cpu (2 threads)" in t.note and "10 to 20 s per run" in t.note
    assert t._repr_markdown_().startswith("| run | seeds | val acc after epoch 1 | final val acc | test acc | train acc |")
    assert "val acc after epoch 1" in repr(t)
    by_seed = tables.runs_table(rs, key=lambda r: r["label"] + str(r["wall_time_s"]))
    assert [row[:2] for row in by_seed.rows] == [["SGD10", "1"], ["SGD20", "1"], ["Adam15", "1"]]


def test_selection_table_verdicts():
    rows = [("homework CNN (2.3)", [_run(0.90, train=0.95), _run(0.90, train=0.97)], True),
            ("a", [_run(0.905, train=0.96)] * 2, True),
            ("b", [_run(0.906, train=0.96)] * 2, False),
            ("c", [_run(0.91, train=0.99), _run(0.92, train=0.99)], True),
            ("d", [_run(0.92, train=0.99)] * 2, False)]
    t = tables.selection_table(rows, ev.MARGIN)
    assert t.columns == ["change tried on the recipe so far", "seeds", "val acc", "train acc", "kept: gain > margin"]
    assert t.rows == [["homework CNN (2.3)", "2", "90.000 ± 0.000", "96.00 ± 1.41", "start"],
                      ["a", "2", "90.500 ± 0.000", "96.00 ± 0.00", "yes: +0.50 > 0.10"],
                      ["b", "2", "90.600 ± 0.000", "96.00 ± 0.00", "no: +0.10 ≤ 0.10"],  # against a, the recipe so far
                      ["c", "2", "91.500 ± 0.707", "99.00 ± 0.00", "yes: +1.00 > 0.81"],
                      ["d", "2", "92.000 ± 0.000", "99.00 ± 0.00", "no: +0.50 ≤ 0.81"]]  # c's spread is in the margin


def test_final_table_columns_and_cells():
    named = [("homework CNN", [_run(0.90, 0.88, 0.95, n_params=29_066), _run(0.92, 0.90, 0.99, n_params=29_066)]),
             ("bonus", [_run(0.99, 0.97, 1.0, n_params=123_456)])]
    t = tables.final_table(named)
    assert t.columns == ["model", "seeds", "val acc", "test acc", "train acc", "parameters"]
    assert t.rows == [["homework CNN", "2", "91.00 ± 1.41", "89.00 ± 1.41", "97.00 ± 2.83", "29,066"],
                      ["bonus", "1", "99.00", "97.00", "100.00", "123,456"]]


def test_mean_sd_leaves_out_missing_values():
    assert tables.mean_sd([None, float("nan")]) == "-"
    assert tables.mean_sd([0.5, None]) == "50.0"
    assert tables.mean_sd([1.0, 2.0], scale=1, digits=3) == "1.500 ± 0.707"


# ---------------------------------------------------------------------------------------------
# the experiment groups of the command line

def test_group_runs_and_their_tables(fake_root):
    rs = ex.run_group("mlp", progress=False, seeds={"mlp": (0,)}, epochs=1, train_subset=64)
    assert [(r["config"]["optimizer"], r["config"]["seed"]) for r in rs] == [(o, 0) for o in OPTIMIZERS]
    assert len(plots.plot_learning_curves(rs, "mlp").axes) == 2
    t = tables.runs_table(rs)
    assert [row[0] for row in t.rows] == [o[0] for o in OPTIMIZERS.values()]
    assert t.rows[1][4] == f"{100 * rs[1]['final']['test_acc']:.1f}"
    assert ex.run_group("mlp", progress=False, seeds={"mlp": (0,)}, epochs=1, train_subset=64) == rs  # cached now
    with pytest.raises(ValueError, match="experiment group must be one of"):
        ex.run_group("vgg")


def test_groups_ask_the_cache_for_the_notebooks_runs(monkeypatch):
    calls = []
    monkeypatch.setattr(ex, "cached", lambda fn, **kw: calls.append((fn, kw)) or {"fn": fn.__name__, **kw})
    ex.run_group("cnn", epochs=3)
    assert [(kw["optimizer"], kw["seed"]) for _, kw in calls] == \
        [("sgd", 0), ("sgd", 1), ("sgd", 2), ("nesterov", 0), ("nesterov", 1), ("nesterov", 2), ("adam", 0), ("adam", 1),
         ("adam", 2), ("adam_lr1", 0)]
    assert all(fn is ex.run_experiment and kw["model"] is CNN and kw["epochs"] == 3 for fn, kw in calls)
    calls.clear()
    ex.run_group("permuted")
    assert [(kw["model"], kw["seed"], kw["dataset"], kw["optimizer"]) for _, kw in calls] == \
        [(MLP, s, "permuted", "nesterov") for s in ex.MLP_SEEDS] + [(CNN, s, "permuted", "nesterov") for s in ex.CNN_SEEDS]


def test_bonus_group_selects_then_trains_the_recipe_longer_with_test(monkeypatch):
    import hw3.bonus as bonus
    picked = bonus.BonusConfig(second_conv=True, epochs=3)
    selection_runs = [{"final": {"val_acc": 0.9}}]
    seen = {}

    def fake_select(seeds, epochs, train_subset, device, **kw):
        seen.update(seeds=seeds, epochs=epochs, train_subset=train_subset, device=device, **kw)
        return picked, [("homework CNN (2.3)", selection_runs, True)]

    calls = []
    monkeypatch.setattr(bonus, "select_recipe", fake_select)
    monkeypatch.setattr(ex, "cached", lambda fn, **kw: calls.append((fn, kw)) or kw)
    out = ex.run_group("bonus", progress=False, force=True)
    assert seen == dict(seeds=ex.ABLATION_SEEDS, epochs=ex.ABLATION_EPOCHS, train_subset=None, device="cpu",
                        progress=False, force=True)  # --no-progress and --force reach the selection runs too
    assert [kw["config"] for _, kw in calls] == [bonus.BonusConfig(second_conv=True, epochs=ex.FINAL_EPOCHS, seed=s)
                                               for s in ex.FINAL_SEEDS]
    assert all(fn is bonus.run_bonus and kw["test"] is True for fn, kw in calls)
    assert out[0] is selection_runs[0] and len(out) == 1 + len(ex.FINAL_SEEDS)


# ---------------------------------------------------------------------------------------------
# the cache and the command line

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


def test_a_cached_model_comes_back_from_its_weights(fake_root, tmp_path):
    cfg = dict(model=MLP, optimizer="nesterov", **{k: v for k, v in TINY.items() if k != "progress"})
    cache.cached(ex.run_experiment, **cfg)
    path = cache.result_path(ex.run_experiment, cfg)
    net, = cache.load_weights(path, MLP, "cpu")
    loader = make_loaders(kmnist_splits(train_subset=TINY["train_subset"]), 64)["val"]  # same normalisation
    expected = json.loads(path.read_text())["final"]["val_acc"]
    assert ex.evaluate(net, loader)[1] == pytest.approx(expected)


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


def test_cli_run_passes_its_options_to_the_groups_and_prints_their_tables(monkeypatch, tmp_path, capsys):
    from hw3 import cli
    calls = []

    def fake_group(name, **kw):
        calls.append((name, kw))
        return [{"label": "SGD lr=0.01", "config": {"model": "MLP", "dataset": name}, "history": {"val_acc": [0.1, 0.5]},
                 "final": {"val_acc": 0.9, "test_acc": 0.8, "train_eval_acc": 0.95}, "device": "cpu", "wall_time_s": 1.0}]

    monkeypatch.setattr(ex, "run_group", fake_group)
    monkeypatch.setenv("HW3_RESULTS_DIR", "unused")  # restored after the test: main() sets it
    assert cli.main(["run", "permuted", "--epochs", "3", "--device", "cpu", "--no-progress", "--force",
                     "--results", str(tmp_path / "r")]) == 0
    assert calls == [("permuted", dict(device=torch.device("cpu"), progress=False, force=True, epochs=3))]
    assert __import__("os").environ["HW3_RESULTS_DIR"] == str((tmp_path / "r").resolve())
    out = capsys.readouterr().out
    assert "== permuted ==" in out and "MLP permuted SGD lr=0.01" in out and "90.0" in out
