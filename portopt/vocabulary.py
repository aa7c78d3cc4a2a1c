"""The words the catalog, the config and the scenario engine share: sectors, market factors and
permitting tracks.

The engine stores a project's sector and price factor as positions in these tuples, so their
order is part of the scenario arrays' meaning.
"""

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

__all__ = ["FACTORS", "PERMITTING_TRACKS", "SECTORS"]
