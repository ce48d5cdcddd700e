"""Tests of helpers.layers: the imports of every helpers module, read with ast, run one way (down the layers).

Why: a circle (calibrate -> models -> pipeline -> ... -> models) or an upward arrow makes a module impossible to
understand, test or move on its own; a function-level import hides such an arrow. These tests read the code,
not a description of it, so the layer map cannot drift from the house as built.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import layers

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
MODULES = sorted(p.stem for p in HELPERS.glob("*.py") if p.stem != "__init__")


def helpers_imports(tree: ast.AST) -> set[str]:
    """Names of the helpers modules a syntax tree imports (``from helpers import x``, ``helpers.x``, ``from .x``)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("helpers.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                out |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif node.module == "helpers":
                out |= {a.name for a in node.names}
            elif node.module and node.module.startswith("helpers."):
                out.add(node.module.split(".")[1])
    return out


def function_level_imports(source: str) -> list[tuple[int, bool, str]]:
    """(line, has a reason comment, text) of every import inside a function or method.

    The reason is a ``#`` comment on the import's line or on the line above; in a run of consecutive imports
    the first one's reason covers the run.
    """
    lines = source.splitlines()
    tree = ast.parse(source)
    found: dict[int, tuple[ast.stmt, bool]] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno not in found:
                    found[node.lineno] = (node, False)
    result = []
    for lineno in sorted(found):
        node, _ = found[lineno]
        here = "#" in lines[lineno - 1]
        above = lines[lineno - 2].strip().startswith("#") if lineno > 1 else False
        covered = result and result[-1][0] == lineno - 1 and result[-1][1]
        result.append((lineno, here or above or bool(covered), lines[lineno - 1].strip()))
    return result


def imports_of(module: str) -> set[str]:
    return helpers_imports(ast.parse((HELPERS / f"{module}.py").read_text(encoding="utf-8"))) - {module}


def test_every_helpers_module_has_a_layer() -> None:
    mapped = [m for mods in layers.LAYERS.values() for m in mods]
    assert len(mapped) == len(set(mapped)), "a module is listed in two layers"
    assert sorted(set(MODULES) - set(mapped)) == [], "helpers modules missing from helpers.layers.LAYERS"
    assert sorted(set(mapped) - set(MODULES)) == [], "helpers.layers.LAYERS names modules that do not exist"


def test_layer_of_names_the_missing_module() -> None:
    assert layers.layer_of("study") == 0
    assert layers.layer_of("pipeline") == list(layers.LAYERS).index("pipeline")
    with pytest.raises(KeyError, match="helpers.nowhere has no layer"):
        layers.layer_of("nowhere")


@pytest.mark.parametrize("module", MODULES)
def test_no_import_runs_up(module: str) -> None:
    up = sorted(m for m in imports_of(module) if layers.layer_of(m) > layers.layer_of(module))
    assert up == [], (f"helpers.{module} ({list(layers.LAYERS)[layers.layer_of(module)]} layer) imports "
                      f"{up} from a higher layer")


def test_no_import_circle() -> None:
    graph = {m: imports_of(m) for m in MODULES}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        path.pop()
        state[m] = 2
        return None

    for m in MODULES:
        if m not in state:
            circle = visit(m)
            assert circle is None, "import circle: " + " -> ".join(circle)


@pytest.mark.parametrize("module", MODULES)
def test_function_level_imports_are_optional_dependencies_with_a_reason(module: str) -> None:
    source = (HELPERS / f"{module}.py").read_text(encoding="utf-8")
    inner = function_level_imports(source)
    helpers_inside = [text for _, _, text in inner if helpers_imports(ast.parse(text.split("#")[0].strip()))]
    assert helpers_inside == [], f"helpers.{module} hides an arrow in a function: {helpers_inside}"
    unexplained = [f"line {n}: {text}" for n, ok, text in inner if not ok]
    assert unexplained == [], f"helpers.{module}: function-level imports without a one-line reason: {unexplained}"


def test_the_readers_catch_what_they_look_for() -> None:
    """The checks above can fail: an upward arrow, a hidden helpers import and a bare lazy import are seen."""
    source = (
        "from helpers import study\n"
        "from helpers.models import fit_all\n"
        "import helpers.pipeline\n"
        "def f():\n"
        "    from helpers import run\n"
        "    import yaml\n"
        "def g():\n"
        "    import pyspark  # optional: only a Spark run needs it\n"
        "    import pyspark.sql\n"
    )
    assert helpers_imports(ast.parse(source)) == {"study", "models", "pipeline", "run"}
    assert [(n, ok) for n, ok, _ in function_level_imports(source)] == [(5, False), (6, False), (8, True), (9, True)]
