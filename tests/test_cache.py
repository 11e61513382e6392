"""The cache key follows the code: an edit of a model, the loop, the data preparation or the bonus recipe retrains
what depends on it, and only that; comments, formatting and plumbing (plots, tables) do not."""
import dataclasses
import linecache
import os
import re
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
        "(ex.run_experiment, dict(model=CNN, optimizer='sgd')), (bonus.run_bonus, dict(config=bonus.BonusConfig(), test=True))]))")


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
    ("models.py", "padding=1), nn.ReLU(), nn.MaxPool2d(2)]", "padding=1), nn.GELU(), nn.MaxPool2d(2)]", [1]),
    ("bonus.py", "*norm, nn.ReLU()]", "*norm, nn.GELU()]", [2]),  # the bonus's own CNN
    ("train.py", "optimizer.zero_grad(set_to_none=True)", "optimizer.zero_grad(set_to_none=False)", [0, 1, 2]),  # bonus trains with train()
    ("train.py", "correct = correct + (logits.argmax(1) == y).sum()", "correct = correct + (logits.argmax(1) != y).sum()",
     [0, 1, 2]),
    ("train.py", '"adam":     ("Adam lr=0.01",         torch.optim.Adam, dict(lr=0.01)),',
     '"adam":     ("Adam lr=0.01",         torch.optim.Adam, dict(lr=0.02)),', [0, 1]),
    ("data.py", ".div_(255.0).sub_(self.mean).div_(self.std)", ".div_(255.0).sub_(self.mean)", [0, 1, 2]),
    ("data.py", "def split_indices(n: int, n_val: int = 10_000, seed: int = 411)",
     "def split_indices(n: int, n_val: int = 10_000, seed: int = 412)", [0, 1, 2]),
    ("experiments.py", "torch.manual_seed(seed)  # the initial weights", "torch.manual_seed(seed + 1)  # the initial weights",
     [0, 1]),
    ("bonus.py", "label_smoothing: float = 0.0", "label_smoothing: float = 0.05", [2]),
    ("bonus.py", "pct_start=0.25", "pct_start=0.3", [2]),
    ("data.py", "BatchSampler(RandomSampler(sets[\"train\"], generator=shuffle), batch_size, drop_last=False)",
     "BatchSampler(RandomSampler(sets[\"train\"], generator=shuffle), batch_size, drop_last=True)", [0, 1, 2]),
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
    assert "def __init__(self, batchnorm: bool=False, second_conv: bool=False):" in _source(bonus.BonusCNN)  # ast.unparse
    assert "#" not in _source(models.CNN)  # comments are not part of a key
    assert closure_digest(bonus.BonusConfig) != closure_digest(bonus.run_bonus)


def test_a_configuration_holds_json_values_classes_and_dataclasses_only():
    with pytest.raises(TypeError, match="JSON values, classes and dataclasses, got object"):
        result_path(experiments.run_experiment, dict(model=object()))


# ---- the data's md5s are part of every key ---------------------------------------------------------

def test_the_data_files_md5s_are_in_the_key(monkeypatch):
    import hw3.kmnist
    run, config = experiments.run_experiment, dict(model=models.MLP, optimizer="sgd")
    original = dict(hw3.kmnist.RAW_MD5)
    base = result_path(run, config)
    seen = {base.name}
    for name in original:  # each of the four files: another md5, another key
        monkeypatch.setattr(hw3.kmnist, "RAW_MD5", {**original, name: "0" * 32})
        seen.add(result_path(run, config).name)
    assert len(seen) == 5
    monkeypatch.setattr(hw3.kmnist, "RAW_MD5", dict(original))  # same values, another dict: the same key
    assert result_path(run, config) == base


# ---- atomic writes: an interrupt or a failure at any point leaves no temporary and no partial file ----

def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("where", ["write", "fsync", "chmod", "replace", "after replace"])
def test_an_interrupt_at_any_point_of_a_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, where):
    import hw3.cache as cache
    target = tmp_path / "r.json"
    target.write_text('{"old": 1}')

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    def write(f):
        f.write('{"new": ')  # half a result, in the temporary file
        assert target.read_text() == '{"old": 1}', "the target changed before the write completed"
        assert len(_files(tmp_path)) == 2  # the target and one temporary file beside it
        if where == "write":
            raise KeyboardInterrupt
        f.write("2}")

    real_replace = os.replace

    def replace_then_interrupt(a, b):
        real_replace(a, b)
        raise KeyboardInterrupt  # the interrupt arrives just after the rename: the new file is whole

    if where == "after replace":
        monkeypatch.setattr(cache.os, "replace", replace_then_interrupt)
    elif where != "write":
        monkeypatch.setattr(cache.os, where, interrupt)
    with pytest.raises(KeyboardInterrupt):  # the interrupt itself, not an error of the clean-up
        cache.write_atomic(target, write)
    monkeypatch.undo()
    assert _files(tmp_path) == ["r.json"]
    assert target.read_text() == ('{"new": 2}' if where == "after replace" else '{"old": 1}')
    cache.write_atomic(target, lambda f: f.write('{"new": 2}'))  # and without an interrupt it is replaced
    assert _files(tmp_path) == ["r.json"] and target.read_text() == '{"new": 2}'
    assert (target.stat().st_mode & 0o777) == 0o644


def test_save_weights_interrupted_inside_torch_save_leaves_nothing(tmp_path, monkeypatch):
    import torch

    import hw3.cache as cache

    def partial_save(obj, f, *args, **kwargs):
        handle = open(f, "wb") if isinstance(f, (str, os.PathLike)) else f  # a path or a file: both are caught
        handle.write(b"PK\x03\x04 half a zip archive")
        handle.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", partial_save)
    with pytest.raises(KeyboardInterrupt):
        cache.save_weights([nn.Linear(3, 2)], tmp_path / "results" / "run-abc.json")
    assert _files(tmp_path / "results") == []  # no .pt, no .run-abc.pt.*.tmp
    monkeypatch.undo()
    cache.save_weights([nn.Linear(3, 2)], tmp_path / "results" / "run-abc.json")
    assert _files(tmp_path / "results") == ["run-abc.pt"]
    models_back = cache.load_weights(tmp_path / "results" / "run-abc.json", lambda: nn.Linear(3, 2), "cpu")
    assert models_back is not None and len(models_back) == 1


FULL_DISK = """
import json, resource, sys
from pathlib import Path
import torch
from hw3.cache import save_result, save_weights
folder = Path(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))  # a write past 4 KiB fails (EFBIG) midway
out = {}
for name, save in (("result", lambda p: save_result({"history": list(range(100_000)), "final": {}}, p)),
                   ("weights", lambda p: save_weights([torch.nn.Linear(100, 100)], p))):
    try:
        save(folder / f"{name}.json")
        out[name] = "written"
    except Exception as e:  # OSError EFBIG (torch may wrap it in a RuntimeError of its own)
        out[name] = "failed"
print(json.dumps(out))
"""


def test_a_write_failing_inside_the_os_write_leaves_no_partial_file(tmp_path):
    # The file-size limit makes the operating system refuse the write after 4 KiB have gone to disk: a plain
    # write to the target would leave those 4 KiB there, a half result a reader would load.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split("\n")[-2] == '{"result": "failed", "weights": "failed"}'
    assert _files(tmp_path) == [], "a partial or temporary file is left behind"


# ---- the key's parts, in this process (so that mutation testing sees them) ----------------------------

_CELLS = iter(range(10**6))
NOTEBOOK = '''
import dataclasses
import math
SCALE = 2
_STATE = 5
def helper(x):
    return x + SCALE  # a comment
def outer(x):
    def inner(y):
        return helper(y)
    return inner(x) * 2
class Base:
    def step(self):
        return 1
class Net(Base):
    """A net."""
    WIDTH = 8
    def forward(self, x):
        return abs(outer(x)) + math.floor(x)
    @property
    def size(self):
        return self.WIDTH
    @staticmethod
    def make():
        return OFFSET
    @classmethod
    def build(cls):
        return cls()
OFFSET = 3
LIMIT = 4
def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)
@dataclasses.dataclass
class Cfg:
    width: int = 2
    def doubled(self):
        return 2 * self.width
def run(x):
    class Local:
        K = LIMIT
    return Net().forward(x) + _STATE + Local.K + fact(3) + Cfg().doubled() + imported(x) + foreign(x) + plumbing(x)
'''


HELPERS = {"hw3.fake": "def imported(x):\n    return x + 1\n",      # project code: followed
           "other.lib": "def foreign(x):\n    return x + 1\n",     # another library: not followed
           "hw3.plots": "def plumbing(x):\n    return x + 1\n"}     # the package's plumbing: not followed


def _run_as(module: str, source: str) -> dict:
    """Run `source` as the code of `module` (for __main__, as a notebook cell); its namespace."""
    name = f"<cell-{next(_CELLS)}>"
    namespace = types.ModuleType(module).__dict__
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(compile(source, name, "exec"), namespace)
    return namespace


def _notebook_digest(source: str, root: str = "run", helpers: dict | None = None) -> str:
    """closure_digest of `root` defined by running `source` as a notebook cell does (module __main__), with one
    function each from a module of hw3, of another library and of hw3's plumbing in its namespace."""
    namespace = types.ModuleType("__main__").__dict__
    for module, text in (helpers or HELPERS).items():
        namespace.update({k: v for k, v in _run_as(module, text).items() if not k.startswith("__")})
    name = f"<cell-{next(_CELLS)}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(compile(source, name, "exec"), namespace)
    return closure_digest(namespace[root])


@pytest.mark.parametrize("module, changed", [("hw3.fake", True), ("other.lib", False), ("hw3.plots", False)])
def test_the_code_digest_follows_the_package_but_not_other_libraries_or_plumbing(module, changed):
    edited = {**HELPERS, module: HELPERS[module].replace("x + 1", "x + 2")}
    assert (_notebook_digest(NOTEBOOK) != _notebook_digest(NOTEBOOK, helpers=edited)) is changed


@pytest.mark.parametrize("old, new, changed", [
    ("return x + SCALE  # a comment", "return x + SCALE  # another comment", False),
    ("return x + SCALE  # a comment", "return (x + SCALE)", False),  # formatting
    ("SCALE = 2", "SCALE = 3", True),               # a constant reached by name
    ("_STATE = 5", "_STATE = 6", False),            # _private: state, not a setting
    ("return x + SCALE", "return x - SCALE", True),  # a function reached through a nested function
    ("return 1\n", "return 2\n", True),             # a base class's method
    ("WIDTH = 8", "WIDTH = 9", True),               # a class attribute
    ("return self.WIDTH", "return -self.WIDTH", True),  # a property
    ("return cls()", "return cls", True),           # a class method
    ("math.floor(x)", "math.ceil(x)", True),        # the root's own code
    ("return OFFSET", "return OFFSET + 0", True),   # a static method's code
    ("OFFSET = 3", "OFFSET = 4", True),             # a constant only a static method reads
    ("LIMIT = 4", "LIMIT = 5", True),               # a constant read in the body of a class made by the root
    ("n * fact(n - 1)", "n * fact(n - 2)", True),   # a recursive function
    ("return 2 * self.width", "return 3 * self.width", True),  # a dataclass's own method
    ("width: int = 2", "width: int = 3", True),     # a dataclass's default
    ('"""A net."""', '"""A network."""', True),   # a class's docstring, as a function's docstring is code too
])
def test_the_code_digest_follows_what_a_result_depends_on(old, new, changed):
    assert NOTEBOOK.count(old) == 1
    assert (_notebook_digest(NOTEBOOK) != _notebook_digest(NOTEBOOK.replace(old, new))) is changed
    assert _notebook_digest(NOTEBOOK) == _notebook_digest(NOTEBOOK)  # and it is a function of the text alone


def test_a_configs_class_is_hashed_by_its_code_not_only_its_name(tmp_path):
    def net(body):
        ns = types.ModuleType("__main__")
        source = f"class Net:\n    def forward(self, x):\n        return {body}\n"
        name = f"<cell-{next(_CELLS)}>"
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        exec(compile(source, name, "exec"), ns.__dict__)
        return ns.Net
    run = experiments.run_experiment
    one, same, other = (result_path(run, dict(model=net(b), optimizer="sgd"), tmp_path) for b in ("x", "x", "-x"))
    assert one == same and one != other and one.name.startswith("run_experiment-Net-sgd-")


@dataclasses.dataclass
class _Cfg:
    width: int = 8


@dataclasses.dataclass
class _Other:
    width: int = 8


def test_a_dataclass_config_is_keyed_by_its_type_and_fields(tmp_path):
    run = experiments.run_experiment
    keys = [result_path(run, dict(config=c), tmp_path).name for c in (_Cfg(), _Cfg(), _Cfg(9), _Other())]
    assert keys[0] == keys[1] and len(set(keys)) == 3


def test_result_path_names_a_result_readably_where_it_is_asked(tmp_path, monkeypatch):
    run = experiments.run_experiment
    path = result_path(run, dict(model=models.MLP, optimizer="a b/c", epochs=3, lr=0.5), tmp_path / "r")
    assert path.parent == tmp_path / "r"
    assert re.fullmatch(r"run_experiment-3-MLP-a-b-c-[0-9a-f]{12}\.json", path.name), path.name  # floats: no
    long = result_path(run, dict(optimizer="x" * 100), tmp_path).name
    assert long == f"run_experiment-{'x' * 60}-{long[-17:-5]}.json"
    monkeypatch.setenv("HW3_RESULTS_DIR", str(tmp_path / "env"))
    assert result_path(run, dict(optimizer="sgd")).parent == tmp_path / "env"
    assert result_path(run, dict(optimizer="sgd"), tmp_path / "arg").parent == tmp_path / "arg"  # the argument wins
    monkeypatch.delenv("HW3_RESULTS_DIR")
    import hw3.cache as cache
    assert result_path(run, dict(optimizer="sgd")).parent == cache.RESULTS_DIR


def test_write_atomic_makes_folders_writes_utf8_and_binary(tmp_path):
    import hw3.cache as cache
    target = tmp_path / "a" / "b" / "r.json"
    seen = []
    cache.write_atomic(target, lambda f: (seen.extend(p.name for p in target.parent.iterdir()), f.write("é")))
    assert len(seen) == 1 and seen[0].startswith(".r.json.") and seen[0].endswith(".tmp")  # beside it, hidden
    assert target.read_bytes() == "é".encode("utf-8")
    cache.write_atomic(tmp_path / "w.pt", lambda f: f.write(b"\x00\xff"), binary=True)
    assert (tmp_path / "w.pt").read_bytes() == b"\x00\xff"


class _Planted:
    """An object whose unpickling creates a file: what a tampered weights file could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_load_weights_gives_the_saved_models_in_eval_mode_and_never_unpickles_objects(tmp_path):
    import torch

    import hw3.cache as cache
    torch.manual_seed(0)
    saved = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    cache.save_weights([saved], tmp_path / "r.json")
    back = cache.load_weights(tmp_path / "r.json", lambda: nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5)), "cpu")
    assert len(back) == 1 and isinstance(back[0], nn.Module) and not back[0].training
    x = torch.randn(4, 3)
    torch.testing.assert_close(back[0](x), saved.eval()(x), rtol=0, atol=0)
    marker = tmp_path / "planted"
    torch.save([_Planted(marker)], tmp_path / "evil.pt")
    assert cache.load_weights(tmp_path / "evil.json", lambda: nn.Linear(3, 2), "cpu") is None
    assert not marker.exists(), "loading weights ran code from the file"
    assert cache.load_weights(tmp_path / "missing.json", lambda: nn.Linear(3, 2), "cpu") is None


# ---- cached, load_weights, the JSON round trip --------------------------------------------------------

_CALLS = []
_RUNTIME = []


def _tiny_run(width: int = 2, device="cpu", progress=True):
    _CALLS.append(width)
    _RUNTIME.append((device, progress))
    import torch
    torch.manual_seed(width)
    return {"history": [1.0, float("nan")], "final": {"acc": float("inf"), "w": width}}, [nn.Linear(width, 1)]


def test_cached_computes_once_keeps_result_and_weights_and_recomputes_when_forced(tmp_path, monkeypatch):
    import hw3.cache as cache
    _CALLS.clear()
    monkeypatch.setattr(cache, "COUNTS", {"loaded": set(), "trained": set()})
    first = cache.cached(_tiny_run, results=tmp_path, width=2)
    assert first == {"history": [1.0, None], "final": {"acc": None, "w": 2}}  # no NaN or infinity in JSON
    path = result_path(_tiny_run, dict(width=2), tmp_path)
    assert path.name in cache.COUNTS["trained"] and sorted(_files(tmp_path)) == sorted([path.name, path.stem + ".pt"])
    assert cache.cached(_tiny_run, results=tmp_path, width=2, device="cuda", progress=False) == first  # loaded
    assert _CALLS == [2] and cache.COUNTS == {"loaded": {path.name}, "trained": {path.name}}
    assert cache.cached(_tiny_run, results=tmp_path, force=True, width=2) == first and _CALLS == [2, 2]
    cache.cached(_tiny_run, results=tmp_path, width=3)
    assert _CALLS == [2, 2, 3]


def test_load_weights_gives_the_trained_models_or_none_when_missing_broken_or_not_fitting(tmp_path):
    import torch

    import hw3.cache as cache
    cache.cached(_tiny_run, results=tmp_path, width=4)
    path = result_path(_tiny_run, dict(width=4), tmp_path)
    models_ = cache.load_weights(path, lambda: nn.Linear(4, 1), "cpu")
    torch.manual_seed(4)
    torch.testing.assert_close(models_[0].weight, nn.Linear(4, 1).weight)  # the trained model's own weights
    assert not models_[0].training  # ready to evaluate
    assert cache.load_weights(path, lambda: nn.Linear(5, 1), "cpu") is None  # another architecture: does not fit
    path.with_suffix(".pt").write_bytes(b"broken")
    assert cache.load_weights(path, lambda: nn.Linear(4, 1), "cpu") is None


def test_load_result_refuses_what_is_not_a_whole_result(tmp_path):
    import hw3.cache as cache
    p = tmp_path / "r.json"
    assert cache.load_result(p) is None  # absent
    for text in ("{", "[1, 2]", '{"history": []}', '{"final": {}}'):
        p.write_text(text)
        assert cache.load_result(p) is None, text
    cache.save_result({"history": [float("-inf")], "final": {"x": [0.5, float("nan")]}}, p)
    assert cache.load_result(p) == {"history": [None], "final": {"x": [0.5, None]}}
    cache.write_json_atomic({"a": [1]}, tmp_path / "i.json", indent=2)
    assert (tmp_path / "i.json").read_text() == '{\n  "a": [\n    1\n  ]\n}'
    assert cache.finite_or_none((1.0, "x")) == (1.0, "x") and cache.finite_or_none(-0.0) == 0.0


def test_the_key_holds_the_drivers_code_and_a_dataclass_by_type_and_fields(tmp_path):
    def driver(body):
        return _run_as("__main__", f"def run_experiment(optimizer):\n    return {body}\n")["run_experiment"]
    keys = {result_path(driver(b), dict(optimizer="sgd"), tmp_path).name for b in ("1", "1", "2")}
    assert len(keys) == 2  # the same name and configuration, another body: another key
    from hw3.cache import _config_json
    assert _config_json({"c": _Cfg(3), "m": nn.Linear}) == \
        '{"c": {"__dataclass__": "_Cfg", "width": 3}, "m": "class Linear"}'


def test_a_class_is_hashed_without_memory_addresses():
    import hw3.bonus
    import hw3.data
    for cls in [v for m in (models, hw3.bonus, hw3.data) for v in vars(m).values()
                if isinstance(v, type) and v.__module__ == m.__name__]:
        assert " at 0x" not in _source(cls), f"{cls.__qualname__}'s hash holds an address: it changes every run"


def test_a_nested_class_hashes_alike_in_a_notebook_and_in_the_package():
    source = "class Net:\n    class Inner:\n        K = 1\n    def forward(self, x):\n        return x\n"
    in_notebook, in_package = _run_as("__main__", source)["Net"], _run_as("hw3.fake", source)["Net"]
    assert _source(in_notebook) == _source(in_package)  # by its code, not by a repr that names its module
    assert _source(_run_as("__main__", source.replace("K = 1", "K = 2"))["Net"]) != _source(in_notebook)


def test_a_class_attribute_that_is_a_builtin_or_a_callable_object_is_hashed_by_its_value():
    source = "import functools\nclass Net:\n    ACT = max\n    PART = functools.partial(max, 1)\n"
    text = _source(_run_as("__main__", source)["Net"])
    assert "ACT=<built-in function max>" in text and "PART=functools.partial(<built-in function max>, 1)" in text
    assert _source(_run_as("__main__", source.replace("ACT = max", "ACT = min"))["Net"]) != text
