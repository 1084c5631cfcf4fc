"""The layers of ``monitor/`` (ARCHITECTURE.md): every import points to the same or a lower layer.

Each module's imports are read from its source (module level and inside functions alike). A module
belongs to the layer of the longest prefix below that names it. Within a layer, the packages form no cycle.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

import pytest

MONITOR = Path(__file__).resolve().parents[2] / "monitor"

LAYERS: dict[str, int] = {
    # 0: vocabulary and helpers every part may use
    "monitor": 0,  # the package's own __init__ (version)
    "monitor.durations": 0,
    "monitor.errors": 0,
    "monitor.outcomes": 0,
    "monitor.urls": 0,
    # 1: the contracts, the settings, the metric definitions
    "monitor.events": 1,
    "monitor.schemas": 1,
    "monitor.settings": 1,
    "monitor.metrics": 1,
    # 2: the message bus (interface, in-process and Kafka adapters, the stage loop)
    "monitor.bus": 2,
    # 3: the domain: signals, alerts, feeds, the classifier, where things stand
    "monitor.signals": 3,
    "monitor.alerts": 3,
    "monitor.feeds": 3,
    "monitor.classify": 3,
    "monitor.status": 3,
    # 4: the config file (feeds, signal windows, rules, routes)
    "monitor.config": 4,
    # 5: local state in SQLite (the poller's and the alerter's)
    "monitor.store": 5,
    # 6: the command line's parser
    "monitor.cli": 6,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(MONITOR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The longest prefix of ``module`` that LAYERS names."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in LAYERS:
            return candidate
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to ARCHITECTURE.md)")


@functools.cache
def imports() -> dict[str, set[str]]:
    """module -> the project modules it imports (monitor.* and pipelines.*)."""
    out: dict[str, set[str]] = {}
    for path in sorted(MONITOR.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        out[module_name(path)] = {n for n in names if n.split(".")[0] in ("monitor", "pipelines")}
    return out


def test_every_module_is_in_a_layer() -> None:
    for module in imports():
        unit_of(module)


@pytest.mark.parametrize("module", sorted(imports()))
def test_imports_point_to_the_same_or_a_lower_layer(module: str) -> None:
    own = LAYERS[unit_of(module)]
    for target in sorted(imports()[module]):
        assert not target.startswith("pipelines"), (
            f"{module} imports {target}: the library never imports wiring"
        )
        layer = LAYERS[unit_of(target)]
        assert layer <= own, f"{module} (layer {own}) imports {target} (layer {layer})"


def test_no_cycle_between_the_units_of_a_layer() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports().items():
        for target in targets:
            a, b = unit_of(module), unit_of(target)
            if a != b:
                graph[a].add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(u for u in list(graph) if reaches(u, u, {u}))
    assert cycles == []


def test_the_library_imports_no_wiring_by_name() -> None:
    """No ``import_module("pipelines...")`` or other string import of the wiring from the library."""
    offenders = [
        str(path.relative_to(MONITOR.parent))
        for path in MONITOR.rglob("*.py")
        if '"pipelines.' in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
