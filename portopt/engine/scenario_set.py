"""ScenarioSet: what the scenario engine hands the optimiser, and its Parquet form."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_FIELDS: dict[str, type] = {
    "pv_draw": np.float64,
    "pv_japan": np.float64,
    "pv_us": np.float64,
    "recoup_q": np.int32,
    "complete_q": np.int32,
    "online_share": np.float64,
    "balance_end": np.float64,
}
"""Per (scenario, project) outputs, per dollar of base cost (docs/scenario-model.md)."""

SCENARIO_FIELDS: dict[str, type] = {"coercion_share": np.float64, "coercion_episodes": np.int32}
"""Per scenario outputs."""

CASH_FIELDS = ("cash_japan", "cash_us", "cash_draw")
"""Per (scenario, quarter) portfolio cash, present only when the engine was given weights."""


@dataclass
class EngineResult:
    """What either engine returns for ``n`` scenarios: the arrays of :class:`ScenarioSet`
    (fields :data:`PROJECT_FIELDS`, :data:`SCENARIO_FIELDS`, :data:`CASH_FIELDS`) as host
    arrays, before their identity and metadata are attached."""

    project: dict[str, np.ndarray]
    stress: np.ndarray
    scenario: dict[str, np.ndarray]
    cash: dict[str, np.ndarray]


@dataclass
class ScenarioSet:
    """Scenario outcomes for scenarios ``first .. first + n - 1``.

    ``project`` maps each name of :data:`PROJECT_FIELDS` to an (n, projects) array;
    ``stress`` is (n, chokepoints); ``scenario`` maps :data:`SCENARIO_FIELDS` to (n,) arrays;
    ``cash`` maps :data:`CASH_FIELDS` to (n, quarters) arrays in dollars when a portfolio was
    given, else it is empty. ``metadata`` records seed, backend, device, timings, config digest.
    """

    first: int
    project_ids: list[str]
    chokepoint_ids: list[str]
    project: dict[str, np.ndarray]
    stress: np.ndarray
    scenario: dict[str, np.ndarray]
    cash: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.stress.shape[0])

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.first, self.first + self.n, dtype=np.int64)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.project[name]

    def check_finite(self) -> None:
        """Raise :class:`ScenarioError` if any amount is NaN or infinite (never dropped)."""
        from portopt.errors import ScenarioError

        arrays = {**self.project, "stress": self.stress, **self.scenario, **self.cash}
        for name, arr in arrays.items():
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                bad = np.argwhere(~np.isfinite(arr))[0]
                where = f"scenario {self.first + int(bad[0])}"
                if arr.ndim > 1 and name in self.project:
                    where += f", project '{self.project_ids[int(bad[1])]}'"
                raise ScenarioError(
                    f"non-finite value in '{name}' at {where}; check the"
                    " catalog and the scenario parameters"
                )

    @classmethod
    def concat(cls, parts: list[ScenarioSet]) -> ScenarioSet:
        """Join consecutive scenario ranges (e.g. shards generated on different workers)."""
        parts = sorted(parts, key=lambda p: p.first)
        for a, b in itertools.pairwise(parts):
            if a.first + a.n != b.first:
                raise ValueError(
                    f"scenario ranges are not consecutive: {a.first}+{a.n} then {b.first}"
                )
        head = parts[0]
        return cls(
            first=head.first,
            project_ids=head.project_ids,
            chokepoint_ids=head.chokepoint_ids,
            project={k: np.concatenate([p.project[k] for p in parts]) for k in head.project},
            stress=np.concatenate([p.stress for p in parts]),
            scenario={k: np.concatenate([p.scenario[k] for p in parts]) for k in head.scenario},
            cash={k: np.concatenate([p.cash[k] for p in parts]) for k in head.cash},
            metadata=dict(head.metadata),
        )

    def to_parquet(self, path: str | Path) -> None:
        """Write one long table: a row per (scenario, project) and per (scenario, chokepoint).

        Columns: ``scenario``, ``kind`` (``project`` or ``chokepoint``), ``id``, the fields of
        :data:`PROJECT_FIELDS`, ``stress``, the per-scenario fields (on every row); fields that
        do not apply to a row's kind are null. Metadata is stored in the file's key-value
        metadata as JSON.
        """
        import json

        import pyarrow as pa
        import pyarrow.parquet as pq

        n, p = self.project["pv_draw"].shape
        k = self.stress.shape[1]
        idx = self.indices
        cols: dict[str, Any] = {
            "scenario": np.concatenate([np.repeat(idx, p), np.repeat(idx, k)]),
            "kind": pa.array(["project"] * (n * p) + ["chokepoint"] * (n * k)).dictionary_encode(),
            "id": pa.array(
                list(self.project_ids) * n + list(self.chokepoint_ids) * n
            ).dictionary_encode(),
        }
        for name, dtype in PROJECT_FIELDS.items():
            values = self.project[name].astype(dtype).ravel()
            cols[name] = pa.array(
                np.concatenate([values, np.zeros(n * k, dtype)]),
                mask=np.r_[np.zeros(n * p, bool), np.ones(n * k, bool)],
            )
        cols["stress"] = pa.array(
            np.concatenate([np.zeros(n * p), self.stress.ravel()]),
            mask=np.r_[np.ones(n * p, bool), np.zeros(n * k, bool)],
        )
        for name, dtype in SCENARIO_FIELDS.items():
            v = self.scenario[name].astype(dtype)
            cols[name] = np.concatenate([np.repeat(v, p), np.repeat(v, k)])
        table = pa.table(cols)
        meta = {
            "first": self.first,
            "project_ids": self.project_ids,
            "chokepoint_ids": self.chokepoint_ids,
            "metadata": self.metadata,
        }
        table = table.replace_schema_metadata({"portopt": json.dumps(meta, default=str)})
        pq.write_table(table, str(path), compression="zstd")

    @classmethod
    def from_parquet(cls, path: str | Path) -> ScenarioSet:
        """Read what :meth:`to_parquet` wrote (portfolio cash paths are not stored)."""
        import json

        import pyarrow.parquet as pq

        table = pq.read_table(str(path))
        meta = json.loads(table.schema.metadata[b"portopt"])
        pids, cids = meta["project_ids"], meta["chokepoint_ids"]
        df = table.to_pandas()
        proj = df[df["kind"] == "project"]
        chk = df[df["kind"] == "chokepoint"]
        n = len(proj) // max(len(pids), 1) if pids else len(chk) // max(len(cids), 1)
        project = {
            name: proj[name].to_numpy(dtype=dtype).reshape(n, len(pids))
            for name, dtype in PROJECT_FIELDS.items()
        }
        stress = chk["stress"].to_numpy(dtype=np.float64).reshape(n, len(cids))
        per_scenario = proj.iloc[:: max(len(pids), 1)] if pids else chk.iloc[:: len(cids)]
        scenario = {
            name: per_scenario[name].to_numpy(dtype=dtype)
            for name, dtype in SCENARIO_FIELDS.items()
        }
        return cls(meta["first"], pids, cids, project, stress, scenario, {}, meta["metadata"])
