"""The words the catalog, the config and the scenario engine share: sectors, market factors,
permitting tracks and grid regions.

The engine stores a project's sector and price factor as positions in these tuples, so their
order is part of the scenario arrays' meaning.
"""

import csv
import io
from functools import lru_cache
from importlib import resources

SECTORS = (
    "semiconductors",
    "pharmaceuticals",
    "critical_minerals",
    "metals",
    "shipbuilding",
    "energy",
    "ai_infrastructure",
    "quantum",
)
"""The MOU's investment sectors."""

FACTORS = ("power", "gas", "ndpr", "copper", "chip_demand", "usdjpy")
"""Market factors, in the order the scenario engine stores them; SOFR comes after them."""

PERMITTING_TRACKS = ("federal", "state", "mixed")
"""Who permits a project: the track sets its delay multiplier and volatility."""

REGIONS_FILE = "regions.csv"
"""The grid regions' table, package data beside the bundled catalog (portopt/data)."""


@lru_cache(maxsize=1)
def grid_regions() -> tuple[str, ...]:
    """The known grid regions: the ``id`` column of the bundled ``regions.csv``.

    The table is package data, not part of a user's catalog: every catalog's ``grid_region``
    and every per-region limit of the config are checked against it, so a typo cannot slip
    past the per-region power and workforce rules.
    """
    text = (resources.files("portopt") / "data" / REGIONS_FILE).read_text(encoding="utf-8")
    return tuple(row["id"] for row in csv.DictReader(io.StringIO(text)))


__all__ = ["FACTORS", "PERMITTING_TRACKS", "REGIONS_FILE", "SECTORS", "grid_regions"]
