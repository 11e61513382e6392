"""The package's face: every graded name imports from `hw3` itself, lazily (no torch on `import hw3`)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

GRADED = {  # name -> module that defines it (the list; hw3/__init__.py must carry exactly these)
    **dict.fromkeys(("predict", "logistic_loss", "stable_logistic_loss", "gradient", "sigmoid"), "backprop"),
    **dict.fromkeys(("MLP", "CNN", "count_parameters"), "models"),
    **dict.fromkeys(("RandomPermutation", "load_kmnist", "kmnist_splits", "make_loaders"), "data"),
    **dict.fromkeys(("train", "evaluate"), "train"),
    "run_experiment": "experiments",
    **dict.fromkeys(("BonusCNN", "BonusConfig", "run_bonus", "CANDIDATES", "select_recipe"), "bonus"),
}


def _fresh(code: str) -> dict:
    """Run `code` in a new interpreter at the repository root; it prints one JSON object, returned here."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_all_lists_every_graded_name():
    import hw3
    assert sorted(hw3.__all__) == sorted(GRADED) and len(hw3.__all__) == len(set(hw3.__all__))
    assert set(GRADED) <= set(dir(hw3))


def test_import_hw3_alone_imports_neither_torch_nor_a_graded_module():
    out = _fresh("import sys, json, hw3; print(json.dumps(sorted(m for m in sys.modules "
                 "if m.split('.')[0] in ('torch', 'torchvision', 'numpy') or m.startswith('hw3.'))))")
    assert out == [], f"`import hw3` imported {out[:5]}"


@pytest.mark.parametrize("module", sorted(set(GRADED.values())))
def test_each_graded_name_imports_from_the_top_level_package_in_a_fresh_interpreter(module):
    names = sorted(n for n, m in GRADED.items() if m == module)
    out = _fresh(f"import json, sys\nfrom hw3 import {', '.join(names)}\n"
                 f"mod = sys.modules['hw3.{module}']\n"
                 f"print(json.dumps({{n: getattr(mod, n) is v for n, v in zip({names!r}, [{', '.join(names)}])}}))")
    assert out == dict.fromkeys(names, True), f"not the definitions of hw3/{module}.py: {out}"


def test_train_is_the_function_whatever_was_imported_first():
    # `train` is both a graded function and a module: loading the module (here through experiments) must not
    # make `from hw3 import train` return the module.
    out = _fresh("import json, sys, inspect\nimport hw3.experiments\nfrom hw3 import train, evaluate\nimport hw3\n"
                 "print(json.dumps([inspect.isfunction(train), train is sys.modules['hw3.train'].train, "
                 "hw3.train is train, inspect.isfunction(evaluate)]))")
    assert out == [True, True, True, True]


def test_unknown_names_raise_attribute_error_naming_module_and_name():
    import hw3
    with pytest.raises(AttributeError, match=r"module 'hw3' has no attribute 'no_such_thing'"):
        hw3.no_such_thing  # noqa: B018
    with pytest.raises(ImportError, match="no_such_thing"):
        exec("from hw3 import no_such_thing", {})


def test_submodules_still_import_by_name():
    out = _fresh("import json, types\nfrom hw3 import plots, tables, cache\nimport hw3.backprop as bp\n"
                 "print(json.dumps([isinstance(m, types.ModuleType) for m in (plots, tables, cache, bp)] + "
                 "[bp.__name__]))")
    assert out == [True, True, True, True, "hw3.backprop"]
