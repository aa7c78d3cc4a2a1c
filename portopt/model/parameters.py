"""Which config changes are Parameter updates of a compiled model, and which change its structure.

A compiled model (either formulation) re-solves a new config by setting ``cp.Parameter``
values when only the keys its terms list in ``parameter_keys`` (or keys that touch no part of
the model, :data:`IGNORED_PREFIXES`) differ; any other difference is a
:class:`StructuralChange` and needs a new build. A key matches a listed key when it equals it
or lies under it (``model.groups.sector_shares.bounds.energy`` under
``model.groups.sector_shares.bounds``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from portopt.config import RunConfig
from portopt.model.data import ModelData
from portopt.model.objective import Coverage
from portopt.model.terms import GROUPS, Term

IGNORED_PREFIXES = (
    "solver",
    "output",
    "backend",
    "scenarios.evaluation",
    "scenarios.chunk_memory_mb",
)
"""Config keys that do not touch the optimisation model at all."""


class StructuralChange(ValueError):
    """The new config changes the model's structure; build a new model."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        super().__init__(
            "these keys change the model's structure, not a Parameter: " + ", ".join(keys[:10])
        )


def matches(key: str, prefixes: Iterable[str]) -> bool:
    """Whether dotted ``key`` equals one of ``prefixes`` or lies under one."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def is_parameter(key: str, parameter_keys: Iterable[str]) -> bool:
    """Whether changing ``key`` is a Parameter update (or touches no part of the model)."""
    return matches(key, parameter_keys) or matches(key, IGNORED_PREFIXES)


def model_parameter_keys(
    data: ModelData, config: RunConfig, groups: Sequence[Term] | None = None
) -> list[str]:
    """The Parameter keys of the objective and of every enabled group of ``config``."""
    terms = groups if groups is not None else [g(data, config) for g in GROUPS]
    keys = set(Coverage.parameter_keys)
    for g in terms:
        if g.enabled(config):
            keys.update(g.parameter_keys)
    return sorted(keys)


def changed_keys(old: RunConfig, new: RunConfig) -> list[str]:
    """Every dotted key whose value differs between two configs."""
    a, b = _flatten(old.model_dump(mode="json")), _flatten(new.model_dump(mode="json"))
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def structural_changes(old: RunConfig, new: RunConfig, parameter_keys: Iterable[str]) -> None:
    """Raise :class:`StructuralChange` naming the changed keys that are not Parameters."""
    keys = list(parameter_keys)
    structural = [k for k in changed_keys(old, new) if not is_parameter(k, keys)]
    if structural:
        raise StructuralChange(structural)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out or {prefix.rstrip("."): tree}
    return {prefix.rstrip("."): tree}
