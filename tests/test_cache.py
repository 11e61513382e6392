"""The cache key follows the code: an edit of a model, the loop, the data preparation or the bonus recipe retrains
what depends on it, and only that; comments, formatting and plumbing (plots, tables) do not."""
import linecache
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from torch import nn

from hw3 import bonus, experiments, models
from hw3.cache import _source, closure_digest, result_path

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("from hw3 import experiments as ex, bonus; from hw3.cache import result_path; from hw3.models import MLP, CNN; "
        "print(*(result_path(f, c).name for f, c in [(ex.run_experiment, dict(model=MLP, optimizer='sgd')), "
        "(ex.run_experiment, dict(model=CNN, optimizer='sgd')), (bonus.run_bonus, dict(config=bonus.FINAL, test=True))]))")


def _keys(tree: Path, hash_seed: str = "0") -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED=hash_seed)
    p = subprocess.run([sys.executable, "-c", KEYS], capture_output=True, text=True, env=env, cwd=tree, check=True)
    return p.stdout.split()


@pytest.fixture(scope="module")
def copy_keys(tmp_path_factory):
    """Keys computed in a fresh process from a copy of the package in which one line was replaced."""
    memo = {}

    def keys(file: str = "", old: str = "", new: str = "") -> list[str]:
        if (file, old, new) not in memo:
            tree = tmp_path_factory.mktemp("tree")
            shutil.copytree(ROOT / "hw3", tree / "hw3", ignore=shutil.ignore_patterns("__pycache__"))
            if file:
                path = tree / "hw3" / file
                text = path.read_text()
                assert text.count(old) == 1, f"{old!r} must occur once in {file}"
                path.write_text(text.replace(old, new))
            memo[file, old, new] = _keys(tree)
        return memo[file, old, new]
    return keys


def test_an_unchanged_tree_gives_the_same_keys_across_processes(copy_keys):
    assert _keys(ROOT, "1") == _keys(ROOT, "2") == copy_keys()


@pytest.mark.parametrize("file, old, new, changed", [
    ("models.py", "nn.Linear(in_features, hidden), nn.ReLU(),", "nn.Linear(in_features, hidden), nn.Tanh(),", [0]),
    ("models.py", "nn.ReLU(inplace=True), nn.MaxPool2d(2)]", "nn.GELU(), nn.MaxPool2d(2)]", [1]),
    ("train.py", "optimizer.zero_grad(set_to_none=True)", "optimizer.zero_grad(set_to_none=False)", [0, 1]),
    ("train.py", "correct = correct + (logits.argmax(1) == y).sum()", "correct = correct + (logits.argmax(1) != y).sum()",
     [0, 1, 2]),
    ("train.py", '"adam":     ("Adam lr=0.01",         torch.optim.Adam, dict(lr=0.01)),',
     '"adam":     ("Adam lr=0.01",         torch.optim.Adam, dict(lr=0.02)),', [0, 1]),
    ("data.py", "x.div_(255.0).sub_(self.mean).div_(self.std)", "x.div_(255.0).sub_(self.mean)", [0, 1, 2]),
    ("data.py", "def split_indices(labels: torch.Tensor, n_val: int = 10_000, seed: int = 411)",
     "def split_indices(labels: torch.Tensor, n_val: int = 10_000, seed: int = 412)", [0, 1, 2]),
    ("experiments.py", "torch.manual_seed(seed)  # the initial weights", "torch.manual_seed(seed + 1)  # the initial weights",
     [0, 1]),
    ("bonus.py", "loss_sum += loss.detach()", "loss_sum = loss_sum + loss.detach()", [2]),
    ("bonus.py", "max_deg: float = 10.0", "max_deg: float = 15.0", [2]),
    ("data.py", "return tuple(t.index_select(0, index.to(t.device)) for t in self.tensors)",
     "return tuple(t[index.to(t.device)] for t in self.tensors)", [0, 1, 2]),
    ("plots.py", "def _smooth(", "def _smooth_(", []),  # plumbing: never part of a key
    ("kmnist.py", "DOWNLOAD_TRIES = 3", "DOWNLOAD_TRIES = 4", []),  # the files' md5s are in the key, not this code
    ("device.py", "return model.to(memory_format=torch.channels_last)", "return model", []),
    ("tables.py", "class Table:", "class Table2:", []),
])
def test_an_edit_of_the_code_behind_a_result_gives_it_a_new_key(copy_keys, file, old, new, changed):
    before, after = copy_keys(), copy_keys(file, old, new)
    assert [i for i in range(3) if before[i] != after[i]] == changed


def test_a_comment_only_edit_keeps_the_keys(copy_keys):
    assert copy_keys("train.py", "        losses = []  # kept on the device", "        losses = []  # (reworded) kept on the device") \
        == copy_keys()


def test_another_class_under_the_same_name_gets_another_key():
    class MLP(nn.Module):  # another network under the same name, as a notebook cell could define it
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

        def forward(self, x):
            return self.net(x)

    run = experiments.run_experiment
    assert result_path(run, dict(model=MLP, optimizer="sgd")) != result_path(run, dict(model=models.MLP, optimizer="sgd"))
    assert result_path(run, dict(model=models.MLP, optimizer="sgd")) == \
        result_path(run, dict(optimizer="sgd", model=models.MLP, device="cuda", progress=False))  # order, runtime: no


def test_a_definition_run_in_a_notebook_hashes_like_the_modules():
    notebook = types.ModuleType("__main__")  # a notebook's namespace: the module's source run as __main__ code
    source = (ROOT / "hw3" / "models.py").read_text()
    linecache.cache["<cell-1>"] = (len(source), None, source.splitlines(True), "<cell-1>")  # as IPython keeps cells
    exec(compile(source, "<cell-1>", "exec"), notebook.__dict__)
    assert notebook.CNN.__module__ == "__main__"
    assert _source(notebook.CNN) == _source(models.CNN) and closure_digest(notebook.CNN) == closure_digest(models.CNN)
    assert "def forward(self, x: torch.Tensor) -> torch.Tensor:" in _source(models.CNN) and "#" not in _source(models.CNN)
    assert closure_digest(bonus.BonusConfig) != closure_digest(bonus.BonusNet)


def test_a_configuration_holds_json_values_classes_and_dataclasses_only():
    with pytest.raises(TypeError, match="JSON values, classes and dataclasses, got object"):
        result_path(experiments.run_experiment, dict(model=object()))
