"""The package's import graph, read with ``ast`` from every module (imports inside functions
included): no cycle between modules, no module importing a layer above its own, and no module
using another module's private (``_name``) names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "portopt"

LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "portopt._version",
        "portopt.errors",
        "portopt.interrupts",
        "portopt.vocabulary",
        "portopt.schema",
    ),
    ("portopt.config",),
    ("portopt.catalog",),
    ("portopt.engine", "portopt.priorities", "portopt.memory", "portopt.plan"),
    ("portopt.model",),
    ("portopt.evaluate",),
    (
        "portopt.outputs",
        "portopt.report",
        "portopt.report_plan",
        "portopt.report_frontier",
        "portopt.synth",
        "portopt.compare",
    ),
    (
        "portopt.pipeline",
        "portopt.tradeoff",
        "portopt.alternatives",
        "portopt.bench",
        "portopt.bankable",
    ),
    ("portopt.run", "portopt.planning"),
    ("portopt.api", "portopt.sweeps", "portopt.whatif"),
    ("portopt.cli", "portopt.__main__"),
)
"""Lowest first: a module may import its own layer and those below, never one above.
``portopt`` itself (the lazy public API) stands above them all."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The portopt modules ``name`` imports anywhere in its body, resolved to known modules."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("portopt") and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return len(LAYERS) if module == "portopt" else -1


def test_every_module_has_a_layer() -> None:
    assert [m for m in _graph() if _layer(m) < 0] == []


def test_no_upward_import() -> None:
    graph = _graph()
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_import_cycle() -> None:
    graph = _graph()
    # a package's __init__ re-exporting its own submodules is not a cycle of meaning
    edges = {
        m: {t for t in ts if not (t.startswith(m + ".") and _modules()[m].name == "__init__.py")}
        for m, ts in graph.items()
    }
    cycles, state = [], dict.fromkeys(edges, 0)

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif state.get(nxt) == 0:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(edges):
        if state[node] == 0:
            visit(node, [node])
    assert cycles == []


@pytest.mark.parametrize("bad", ["portopt.evaluate", "portopt.report", "portopt.cli.main"])
def test_the_check_sees_an_upward_import_inside_a_function(tmp_path, bad) -> None:
    source = f"def f():\n    import {bad}\n"
    path = tmp_path / "probe.py"
    path.write_text(source)
    found = _imports("portopt.model.probe", path, set(_modules()) | {bad})
    assert bad in found and _layer(bad) > _layer("portopt.model.probe")


def _private_uses(name: str, path: Path, known: set[str]) -> list[str]:
    """The ``_private`` names ``name`` takes from other portopt modules: ``from m import _x``
    anywhere in its body, and ``m._x`` on a module it imported (``import m``, ``import m as
    a``, ``from package import m``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    modules: dict[str, str] = {}  # local name -> portopt module
    found: list[str] = []

    def private(attr: str) -> bool:
        return attr.startswith("_") and not attr.startswith("__")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("portopt") and a.asname:
                    modules[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if not base.startswith("portopt") or base == name:
                continue
            for a in node.names:
                if f"{base}.{a.name}" in known:
                    modules[a.asname or a.name] = f"{base}.{a.name}"
                elif private(a.name):
                    found.append(f"{name} imports {base}.{a.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            value = node.value
            if isinstance(value, ast.Name) and value.id in modules:
                found.append(f"{name} uses {modules[value.id]}.{node.attr}")
    return found


def test_no_module_uses_a_private_name_of_another() -> None:
    modules = _modules()
    known = set(modules)
    found = [use for name, path in modules.items() for use in _private_uses(name, path, known)]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "def f():\n    from portopt.run import _secret\n",
        "from ..report import _CSS\n",
        "def f():\n    import portopt.report as r\n    return r._CSS\n",
        "from portopt import report\nx = report._CSS\n",
    ],
)
def test_the_check_sees_a_private_import(tmp_path: Path, source: str) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert _private_uses("portopt.model.probe", path, set(_modules())) != []
    path.write_text(source.replace("_CSS", "CSS").replace("_secret", "secret"))
    assert _private_uses("portopt.model.probe", path, set(_modules())) == []
