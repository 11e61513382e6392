"""Show the package's own code in the notebook, at the question it answers (one source of truth: the tests test it)."""
from __future__ import annotations

import ast
import importlib
import inspect
import textwrap


class Code:
    """Source code that Jupyter, Colab and GitHub render as a highlighted Python block (plain text elsewhere)."""

    def __init__(self, text: str, origin: str):
        self.text, self.origin = text, origin

    def _repr_markdown_(self) -> str:
        return f"`{self.origin}`\n\n```python\n{self.text}\n```"

    def __repr__(self) -> str:
        return f"# {self.origin}\n{self.text}"


def _constant_source(spec: str) -> str:
    """The source of a module-level assignment named 'package.module:NAME' (found with the ast module)."""
    module_name, _, name = spec.partition(":")
    module = importlib.import_module(module_name)
    text = inspect.getsource(module)
    for node in ast.parse(text).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.get_source_segment(text, node)
    raise ValueError(f"expected a module-level assignment named {name!r} in {module_name}, found none")


def show_code(*objects) -> Code:
    """The source of functions, classes or methods, or of constants given as 'module:NAME', one after the other."""
    if not objects:
        raise ValueError("show_code needs at least one function, class, method or 'module:NAME', got none")
    parts, origins = [], []
    for obj in objects:
        if isinstance(obj, str):
            if ":" not in obj:
                raise ValueError(f"a constant is named 'package.module:NAME', got {obj!r}")
            parts.append(_constant_source(obj))
            origins.append(obj.replace(":", "."))
            continue
        try:
            parts.append(textwrap.dedent(inspect.getsource(obj)).rstrip())
        except (TypeError, OSError) as e:
            raise ValueError(f"expected a function, class or method defined in a file, got {obj!r}: {e}") from None
        origins.append(f"{obj.__module__}.{obj.__qualname__}")
    return Code("\n\n\n".join(parts), ", ".join(origins))
