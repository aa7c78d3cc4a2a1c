"""ScenarioSet: what the scenario engine hands the optimiser, and its Parquet form."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from portopt.schema import QUARTER_OFFSET_MEANING

PROJECT_FIELDS: dict[str, type] = {
    "pv_draw": np.float64,
    "pv_japan": np.float64,
    "pv_us": np.float64,
    "recoup_q": np.int32,
    "complete_q": np.int32,
    "online_share": np.float64,
    "balance_end": np.float64,
    "pv_floor": np.float64,
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
    ``declined`` is the (n, projects) mask of the (scenario, column) pairs Japan declined, with
    their outcomes zeroed (:func:`portopt.plan.declines.apply_declines`); None when none were.
    """

    first: int
    project_ids: list[str]
    chokepoint_ids: list[str]
    project: dict[str, np.ndarray]
    stress: np.ndarray
    scenario: dict[str, np.ndarray]
    cash: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    declined: np.ndarray | None = None

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
            declined=None
            if all(p.declined is None for p in parts)
            else np.concatenate([p.declined_mask() for p in parts]),
        )

    def declined_mask(self) -> np.ndarray:
        """(n, projects) bool: which (scenario, column) pairs were declined."""
        if self.declined is None:
            return np.zeros((self.n, len(self.project_ids)), dtype=bool)
        return self.declined

    def to_parquet(self, folder: str | Path) -> None:
        """Write the set as a folder of tidy Parquet tables, one per grain (columns:
        :data:`portopt.schema.PARQUET_COLUMNS`, meanings: docs/outputs.md):

        - ``projects.parquet``: a row per (``scenario``, ``project_id``, ``proposal_quarter``),
          whether Japan ``declined`` it, and a column per field of :data:`PROJECT_FIELDS`. A
          plan's column ``<id>@<quarter>`` (the project proposed in that round) is split into
          the two keys; a column of a one-shot set has no round (null ``proposal_quarter``);
        - ``chokepoints.parquet``: a row per (``scenario``, ``chokepoint_id``) with its ``stress``;
        - ``scenarios.parquet``: a row per ``scenario``, a column per field of
          :data:`SCENARIO_FIELDS`.

        A negative integer (the engine's "never", e.g. a project that never recoups) is written
        as null; the ``_q`` fields carry their meaning as field metadata. Each file's key-value
        metadata holds the ids, the first index and :attr:`metadata` without its timings, so the
        same seed gives byte-identical files. Portfolio cash paths are not stored.
        """
        import pyarrow.parquet as pq

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in self.arrow_tables().items():
            pq.write_table(table, str(folder / name), compression="zstd")

    def arrow_tables(self) -> dict[str, Any]:
        """The tables :meth:`to_parquet` writes, as ``pyarrow.Table`` by file name."""
        import pyarrow as pa

        def key_column(values: np.ndarray | list[str | None]) -> pa.Array:
            if isinstance(values, np.ndarray) and values.dtype != object:
                return pa.array(values)
            # ids repeated per scenario, dictionary-encoded as pyarrow's dictionary_encode would
            # (first-appearance order, nulls as null codes), without building a (scenarios x
            # ids) array of strings first: it would be the peak of a run's write stage
            per_column = list(values)
            words = list(dict.fromkeys(v for v in per_column if v is not None))
            if not words:  # no value at all (a one-shot set's rounds): a null column
                return pa.nulls(len(per_column) * self.n)
            code = {w: i for i, w in enumerate(words)}
            codes = np.array([code.get(v, -1) for v in per_column], dtype=np.int32)
            tiled = np.tile(codes, self.n)
            indices = pa.array(tiled, mask=tiled < 0)
            return pa.DictionaryArray.from_arrays(indices, pa.array(words, type=pa.string()))

        def value_column(values: np.ndarray) -> pa.Array:
            if np.issubdtype(values.dtype, np.integer):  # negative: "never", a null
                return pa.array(values, mask=values < 0)
            return pa.array(values)

        def field_of(name: str, array: pa.Array) -> pa.Field:
            meaning = {"meaning": QUARTER_OFFSET_MEANING} if name.endswith("_q") else None
            return pa.field(name, array.type, metadata=meaning)

        ids, rounds = zip(*(_split_round(pid) for pid in self.project_ids), strict=True)

        idx = self.indices
        p, k = len(self.project_ids), len(self.chokepoint_ids)
        grains = {
            PROJECTS_TABLE: (
                {
                    "scenario": np.repeat(idx, p),
                    "project_id": list(ids),
                    "proposal_quarter": list(rounds),
                },
                {
                    "declined": self.declined_mask().ravel(),
                    **{
                        n: self.project[n].astype(d, copy=False).ravel()
                        for n, d in PROJECT_FIELDS.items()
                    },
                },
            ),
            CHOKEPOINTS_TABLE: (
                {
                    "scenario": np.repeat(idx, k),
                    "chokepoint_id": list(self.chokepoint_ids),
                },
                {"stress": self.stress.astype(np.float64, copy=False).ravel()},
            ),
            SCENARIOS_TABLE: (
                {"scenario": idx},
                {name: self.scenario[name].astype(d) for name, d in SCENARIO_FIELDS.items()},
            ),
        }
        meta = json.dumps(
            {
                "first": self.first,
                "project_ids": self.project_ids,
                "chokepoint_ids": self.chokepoint_ids,
                "metadata": {k: v for k, v in self.metadata.items() if k not in TIMING_KEYS},
            },
            default=str,
            sort_keys=True,
        )
        tables = {}
        for name, (keys, fields) in grains.items():
            columns = {
                **{c: key_column(v) for c, v in keys.items()},
                **{c: value_column(v) for c, v in fields.items()},
            }
            schema = pa.schema([field_of(c, a) for c, a in columns.items()], {"portopt": meta})
            tables[name] = pa.table(columns, schema=schema)
        return tables

    @classmethod
    def from_parquet(cls, folder: str | Path) -> ScenarioSet:
        """Read what :meth:`to_parquet` wrote (nulls back to -1; no cash paths, no timings)."""
        import pyarrow.parquet as pq

        folder = Path(folder)
        tables = {name: pq.read_table(str(folder / name)) for name in PARQUET_TABLES}
        meta = json.loads(tables[SCENARIOS_TABLE].schema.metadata[b"portopt"])
        pids, cids = meta["project_ids"], meta["chokepoint_ids"]
        n = tables[SCENARIOS_TABLE].num_rows

        def read(table: Any, name: str, dtype: type, width: int) -> np.ndarray:
            column = table.column(name).to_numpy(zero_copy_only=False)
            if np.issubdtype(dtype, np.integer):
                column = np.where(np.isnan(column.astype(np.float64)), -1, column)
            return column.astype(dtype).reshape((n, width) if width else n)

        projects, chokepoints = tables[PROJECTS_TABLE], tables[CHOKEPOINTS_TABLE]
        scenarios = tables[SCENARIOS_TABLE]
        declined = read(projects, "declined", np.bool_, len(pids))
        return cls(
            meta["first"],
            pids,
            cids,
            {name: read(projects, name, d, len(pids)) for name, d in PROJECT_FIELDS.items()},
            read(chokepoints, "stress", np.float64, len(cids)),
            {name: read(scenarios, name, d, 0) for name, d in SCENARIO_FIELDS.items()},
            {},
            meta["metadata"],
            declined if declined.any() else None,
        )


def _split_round(column_id: str) -> tuple[str, str | None]:
    """A column id's project and proposal round: ``"<id>@<quarter>"`` (a plan's proposal
    option, :func:`portopt.plan.plan_options`) or a plain project id (no round)."""
    project, at, quarter = column_id.partition("@")
    return (project, quarter) if at else (column_id, None)


PROJECTS_TABLE = "projects.parquet"
CHOKEPOINTS_TABLE = "chokepoints.parquet"
SCENARIOS_TABLE = "scenarios.parquet"
PARQUET_TABLES = (PROJECTS_TABLE, CHOKEPOINTS_TABLE, SCENARIOS_TABLE)
"""The files of a scenario set's Parquet folder (:meth:`ScenarioSet.to_parquet`)."""
TIMING_KEYS = frozenset({"seconds"})
"""Metadata that differs between two runs of one seed, kept out of the Parquet files."""
