"""The cache key follows the code: an edit of a model, the loop or the bonus recipe retrains; comments do not."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from hw3 import bonus, experiments
from hw3.cache import _source, code_digest

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("from hw3 import experiments as ex, bonus; "
        "print(ex.Config(model='mlp').key(), ex.Config(model='cnn').key(), bonus.FINAL.key())")


def _keys(tree: Path, hash_seed: str = "0") -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED=hash_seed)
    p = subprocess.run([sys.executable, "-c", KEYS], capture_output=True, text=True, env=env, cwd=tree, check=True)
    return p.stdout.split()


@pytest.fixture(scope="module")
def copy_keys(tmp_path_factory):
    """Keys computed in a fresh process from a copy of the package in which `edit` replaced one line."""
    memo = {}

    def keys(file: str = "", old: str = "", new: str = "") -> list[str]:
        if (file, old, new) in memo:
            return memo[file, old, new]
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
    ("models.py", "layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.MaxPool2d(2), nn.ReLU()]",
     "layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.MaxPool2d(2), nn.GELU()]", [1, 2]),  # the bonus's first ablation rows use it
    ("train.py", "optimizer.zero_grad(set_to_none=True)", "optimizer.zero_grad(set_to_none=False)", [0, 1]),
    ("train.py", "correct = correct + (logits.argmax(1) == y).sum()", "correct = correct + (logits.argmax(1) != y).sum()",
     [0, 1, 2]),
    ("data.py", "x.div_(255.0).sub_(self.mean).div_(self.std)", "x.div_(255.0).sub_(self.mean)", [0, 1, 2]),
    ("bonus.py", "loss_sum += loss.detach()", "loss_sum = loss_sum + loss.detach()", [2]),
    ("bonus.py", "max_deg: float = 10.0", "max_deg: float = 15.0", [2]),
])
def test_an_edit_of_the_code_behind_a_result_gives_it_a_new_key(copy_keys, file, old, new, changed):
    before, after = copy_keys(), copy_keys(file, old, new)
    assert [i for i in range(3) if before[i] != after[i]] == changed


def test_a_comment_only_edit_keeps_the_keys(copy_keys):
    assert copy_keys("train.py", "        losses = []  # kept on the device", "        losses = []  # (reworded) kept on the device") \
        == copy_keys()


def test_the_code_a_notebook_passes_in_is_part_of_the_key():
    class MLP(nn.Module):  # another network under the same name
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

        def forward(self, x):
            return self.net(x)

    cfg = experiments.Config(model="mlp")
    assert cfg.key(experiments.Implementation(MLP=MLP)) != cfg.key()
    assert cfg.key(experiments.Implementation(CNN=MLP)) == cfg.key()  # an MLP run does not depend on the CNN


def test_a_class_hashes_by_its_functions_so_a_notebook_copy_hashes_like_the_module():
    src = _source(experiments.models.CNN)
    assert "def forward(self, x: torch.Tensor) -> torch.Tensor:" in src and "#" not in src  # parsed: no comments
    assert code_digest(bonus.BonusConfig) != code_digest(bonus.BonusNet)
