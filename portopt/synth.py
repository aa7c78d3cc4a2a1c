"""Synthetic catalogs that follow the bundled one, for scale tests and benchmarks.

Each synthetic project is a *template* row of the bundled catalog (``portopt/data``) of the same
sector, perturbed:

* sector: the first eight projects take the eight MOU sectors in turn (so every sector is
  present), the rest are drawn with the bundled catalog's sector frequencies;
* money: ``base_cost = K_tpl · exp(0.35 z)``; revenue keeps the template's revenue per dollar
  times ``exp(0.15 z')``; workers keep the template's workers per dollar;
* shares (opex, offtake, Japanese content, failure probability) move by ``N(0, 0.05)`` and are
  clipped to their ranges; overrun median and P90 by ``exp(0.2 z)`` with ``p90 >= median``;
  earliest start by 0–4 quarters (never after 2029Q1); delay median by ``exp(0.2 z)``;
* capacity: for each chokepoint the template serves, capacity per dollar is drawn from the
  sector's empirical capacity per dollar in that chokepoint (every bundled project of the sector
  that serves it), times ``exp(0.25 z)``, times the new cost;
* power links: data-centre campuses (``dc_load_mw > 0``) are placed in a grid region where the
  catalog has firm generation (``firm_gen_mw > 0``), and a third of them depend on an earlier
  firm-generation project of their region (as a campus larger than its region's headroom needs
  the firm generation beside it);
* dependencies (8%) on an earlier project of the same sector, so the graph is acyclic by
  construction (ids are ordered); exclusions (5%) between two projects of one sector, listed on
  both rows, never between a project and one it depends on;
* every project is a candidate with the template's fund-share bounds (committed templates get
  the candidates' usual [0.2, 0.8]); sponsors are drawn from a pool of ``max(8, N / 6)`` names,
  so the per-sponsor cap binds now and then.

Chokepoints are the bundled ones. **Gap rule**: with :math:`C'_k = \\sum_i \\mathrm{cap}_{ik}`
the synthetic candidates' total capacity in chokepoint k,

.. math:: \\mathrm{gap}'_k = \\min\\big(\\mathrm{gap}_k,\\ \\tfrac12 C'_k\\big),

the real gap, lowered to half the candidates' capacity where they bring less than twice it, so
that every chokepoint can be saturated (and its coverage term is a real ``min(1, ·)``) while a
project's share of its gap follows the bundled catalog. Chokepoints that no synthetic project
serves are dropped. Ids are ``syn_<sector>_<n>`` with unique Philox entities (a colliding id gets
a suffix).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from portopt.catalog import (
    CAPACITY,
    CHOKEPOINTS,
    PROJECTS,
    Catalog,
    load_catalog,
    project_entity,
)
from portopt.config import quarter_index
from portopt.outputs import staged_output
from portopt.vocabulary import SECTORS

COST_SIGMA = 0.35
REVENUE_SIGMA = 0.15
CAPACITY_SIGMA = 0.25
SHARE_SD = 0.05
DEPENDENCY_RATE = 0.08
EXCLUSION_RATE = 0.05
POWER_LINK_RATE = 1 / 3
LATEST_START = "2029Q1"
MAX_PROJECTS = 100_000
"""The most candidates ``portopt synth`` writes: a tool limit, not a fact. 10,000 take 6.6 s
and 0.3 GiB to write; the largest plan measured is 1,000 projects (bench/RESULTS.md, "Scale"),
and the engine and the model grow with the catalog."""
_SECTOR_TAG = {
    "semiconductors": "semi",
    "pharmaceuticals": "pharma",
    "critical_minerals": "minerals",
    "metals": "metals",
    "shipbuilding": "ships",
    "energy": "energy",
    "ai_infrastructure": "ai",
    "quantum": "quantum",
}


def _quarter_label(index: int, start: str) -> str:
    y, q = int(start[:4]), int(start[5])
    total = y * 4 + (q - 1) + index
    return f"{total // 4}Q{total % 4 + 1}"


def _unique_id(base: str, entities: set[int]) -> str:
    pid, n = base, 0
    while project_entity(pid) in entities:
        n += 1
        pid = f"{base}_{n}"
    entities.add(project_entity(pid))
    return pid


def synth_tables(
    projects: int, seed: int = 0, template: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three tables (projects, chokepoints, capacity) of a synthetic catalog, as CSV columns.

    ``template`` is the catalog folder whose per-sector distributions are followed (the bundled
    one by default). Deterministic in (``projects``, ``seed``, template).
    """
    if projects < 1:
        raise ValueError("a synthetic catalog needs at least one project")
    base = load_catalog(template)
    rng = np.random.default_rng(seed)
    tp = base.projects
    cap = base.capacity_matrix()
    cost = tp["base_cost_usd"].to_numpy(float)
    per_dollar = cap / cost[:, None]
    sector = tp["sector"].to_numpy(str)
    present = [s for s in SECTORS if (sector == s).any()]
    freq = np.array([(sector == s).sum() for s in present], float)
    chosen = list(present) + list(
        rng.choice(present, size=max(0, projects - len(present)), p=freq / freq.sum())
    )
    chosen = chosen[:projects]
    gen_regions = sorted(set(tp.loc[tp["firm_gen_mw"] > 0, "grid_region"]))
    n_sponsors = max(8, projects // 6)
    start0 = "2026Q1"
    latest = quarter_index(LATEST_START, start0)

    rows, cap_rows = [], []
    entities: set[int] = set()
    for n, sec in enumerate(chosen):
        members = np.flatnonzero(sector == sec)
        t = int(rng.choice(members))
        src = tp.iloc[t]
        row = {c: src[c] for c in tp.columns}
        pid = _unique_id(f"syn_{_SECTOR_TAG[sec]}_{n:05d}", entities)
        scale = float(np.exp(COST_SIGMA * rng.standard_normal()))
        k_new = cost[t] * scale
        row.update(
            id=pid,
            name=f"Synthetic {sec.replace('_', ' ')} project {n} (after {tp.index[t]})",
            sponsor=f"Synthetic sponsor {int(rng.integers(n_sponsors)):03d}",
            status="candidate",
            base_cost_usd=round(k_new, -3),
            revenue_usd_per_year=round(
                src["revenue_usd_per_year"] * scale * np.exp(REVENUE_SIGMA * rng.standard_normal()),
                -3,
            ),
            workers_per_year=round(src["workers_per_year"] * scale, 1),
            dc_load_mw=round(src["dc_load_mw"] * scale, 1),
            firm_gen_mw=round(src["firm_gen_mw"] * scale, 1),
            delay_median_quarters=round(
                src["delay_median_quarters"] * np.exp(0.2 * rng.standard_normal()), 3
            ),
            depends_on=(),
            excludes=(),
            source=f"synthetic (portopt synth, seed {seed}) after {tp.index[t]}",
            basis="illustrative",
            notes="",
        )
        for c in ("opex_share", "offtake_share", "japan_content", "failure_prob"):
            row[c] = round(float(np.clip(src[c] + SHARE_SD * rng.standard_normal(), 0, 1)), 4)
        med = (1 + src["overrun_median"]) * np.exp(0.2 * rng.standard_normal()) - 1
        med = float(np.clip(med, -0.5, 10))
        spread_p90 = max(src["overrun_p90"] - src["overrun_median"], 0.0)
        row["overrun_median"] = round(med, 4)
        row["overrun_p90"] = round(med + spread_p90 * np.exp(0.2 * rng.standard_normal()), 4)
        q0 = max(0, quarter_index(src["earliest_start"], start0))
        row["earliest_start"] = _quarter_label(min(latest, q0 + int(rng.integers(0, 5))), start0)
        if src["status"] == "committed":
            row["min_fund_share"], row["max_fund_share"] = 0.2, 0.8
        if row["dc_load_mw"] > 0 and gen_regions:
            row["grid_region"] = str(rng.choice(gen_regions))
        for k in np.flatnonzero(cap[t] > 0):
            peers = per_dollar[members, k]
            draw = float(rng.choice(peers[peers > 0]))
            value = draw * k_new * np.exp(CAPACITY_SIGMA * rng.standard_normal())
            cap_rows.append((pid, base.chokepoint_ids[k], float(f"{value:.6g}")))
        rows.append(row)

    out = pd.DataFrame(rows)
    _link(out, rng)
    return _finish(out, cap_rows, base, seed)


def _link(out: pd.DataFrame, rng: np.random.Generator) -> None:
    """Dependencies, exclusions and power links, in place (only on earlier rows: acyclic)."""
    deps: list[list[str]] = [[] for _ in range(len(out))]
    excl: list[list[str]] = [[] for _ in range(len(out))]
    ids = out["id"].tolist()
    sector = out["sector"].to_numpy(str)
    region = out["grid_region"].to_numpy(str)
    gen = out["firm_gen_mw"].to_numpy(float) > 0
    for i in range(1, len(out)):
        if out["dc_load_mw"].iat[i] > 0 and rng.random() < POWER_LINK_RATE:
            firm = np.flatnonzero(gen[:i] & (region[:i] == region[i]))
            if firm.size:
                deps[i].append(ids[int(rng.choice(firm))])
        same = np.flatnonzero(sector[:i] == sector[i])
        if same.size and rng.random() < DEPENDENCY_RATE:
            j = ids[int(rng.choice(same))]
            if j not in deps[i]:
                deps[i].append(j)
        if same.size and rng.random() < EXCLUSION_RATE:
            j = int(rng.choice(same))
            if ids[j] not in deps[i] and ids[i] not in deps[j] and ids[j] not in excl[i]:
                excl[i].append(ids[j])
                excl[j].append(ids[i])
    out["depends_on"] = [";".join(d) for d in deps]
    out["excludes"] = [";".join(e) for e in excl]


def _finish(
    out: pd.DataFrame, cap_rows: list[tuple[str, str, float]], base: Catalog, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three tables in contract column order, chokepoints with the gap rule applied."""
    capacity = pd.DataFrame(cap_rows, columns=["project_id", "chokepoint_id", "capacity"])
    total = capacity.groupby("chokepoint_id")["capacity"].sum()
    ch = base.chokepoints.loc[[c for c in base.chokepoint_ids if c in total.index]].copy()
    new_gap = np.minimum(ch["us_gap"].to_numpy(float), 0.5 * total.loc[ch.index].to_numpy())
    lowered = new_gap < ch["us_gap"].to_numpy(float)
    ch["notes"] = np.where(
        lowered,
        "synthetic: gap lowered to half the candidates' total capacity (saturable)",
        "synthetic: the bundled gap",
    )
    ch["us_gap"] = [float(f"{g:.6g}") for g in new_gap]
    for bound in ("us_gap_low", "us_gap_high"):  # the sources' range was for the real gap
        ch[bound] = np.where(lowered, np.nan, ch[bound].to_numpy(float))
    ch["basis"] = "illustrative"
    ch = ch.reset_index()
    capacity["source"] = f"synthetic (portopt synth, seed {seed})"
    capacity["basis"] = "illustrative"
    ch["china_exposed"] = ch["china_exposed"].map(lambda b: "true" if b else "false")
    return (
        out[list(PROJECTS.names)],
        ch[list(CHOKEPOINTS.names)],
        capacity[list(CAPACITY.names)],
    )


def write_synth(
    projects: int, seed: int, out: str | Path, template: str | Path | None = None
) -> Path:
    """Write a synthetic catalog folder at ``out`` atomically (temporary folder, then rename)."""
    target = Path(out)
    tables = synth_tables(projects, seed, template)
    with staged_output(target) as tmp:
        for name, table in zip(("projects", "chokepoints", "capacity"), tables, strict=True):
            table.to_csv(tmp / f"{name}.csv", index=False, float_format="%.10g")
    return target
