"""Synthetic catalogs (portopt/synth.py, ``portopt synth``): valid, deterministic, shaped like the
bundled catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from portopt.catalog import load_catalog, project_entity, validate_catalog
from portopt.cli.main import app
from portopt.synth import synth_tables, write_synth
from portopt.vocabulary import SECTORS

runner = CliRunner()


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("synth")
    return {n: write_synth(n, 7, root / f"syn{n}") for n in (50, 200, 1000)}


@pytest.mark.parametrize("n", [50, 200, 1000])
def test_passes_validation(catalogs: dict[int, Path], n: int) -> None:
    assert validate_catalog(catalogs[n]) == []
    cat = load_catalog(catalogs[n])
    assert len(cat.projects) == n
    assert set(cat.projects["sector"]) == set(SECTORS)
    entities = [project_entity(i) for i in cat.project_ids]
    assert len(set(entities)) == n


def test_links_are_acyclic_symmetric_and_power_linked(catalogs: dict[int, Path]) -> None:
    cat = load_catalog(catalogs[1000])
    p = cat.projects
    order = {pid: k for k, pid in enumerate(cat.project_ids)}
    deps = [(i, j) for i, js in zip(p.index, p["depends_on"], strict=True) for j in js]
    assert deps and all(order[j] < order[i] for i, j in deps)  # only on earlier ids
    excl = {(i, j) for i, js in zip(p.index, p["excludes"], strict=True) for j in js}
    assert excl and all((j, i) in excl for i, j in excl)
    assert not set(deps) & excl
    gen_regions = set(p.loc[p["firm_gen_mw"] > 0, "grid_region"])
    campuses = p[p["dc_load_mw"] > 0]
    assert len(campuses) > 0 and set(campuses["grid_region"]) <= gen_regions
    power_deps = [
        (i, j) for i, j in deps if p.at[i, "dc_load_mw"] > 0 and p.at[j, "firm_gen_mw"] > 0
    ]
    assert power_deps
    assert all(p.at[i, "grid_region"] == p.at[j, "grid_region"] for i, j in power_deps)


def test_follows_bundled_distributions(catalogs: dict[int, Path]) -> None:
    base, cat = load_catalog(), load_catalog(catalogs[1000])
    for sector in ("energy", "critical_minerals", "ai_infrastructure"):
        b = base.projects.loc[base.projects["sector"] == sector, "base_cost_usd"]
        s = cat.projects.loc[cat.projects["sector"] == sector, "base_cost_usd"]
        # lognormal noise of 0.35 on resampled templates: medians agree within a factor 2
        assert 0.5 < np.median(s) / np.median(b) < 2.0
    share_b = base.projects["sector"].value_counts(normalize=True)
    share_s = cat.projects["sector"].value_counts(normalize=True)
    assert abs(share_s["energy"] - share_b["energy"]) < 0.08
    for col in ("opex_share", "offtake_share", "japan_content", "failure_prob"):
        assert cat.projects[col].between(0, 1).all()
    assert (cat.projects["overrun_p90"] >= cat.projects["overrun_median"]).all()


def test_gap_rule_makes_saturation_possible(catalogs: dict[int, Path]) -> None:
    base = load_catalog()
    for n in (50, 1000):
        cat = load_catalog(catalogs[n])
        total = cat.capacity.sum(axis=0)
        gap = cat.chokepoints["us_gap"]
        assert (gap <= base.chokepoints.loc[gap.index, "us_gap"] * (1 + 1e-6)).all()
        assert (gap <= 0.5 * total * (1 + 1e-5)).all()  # the candidates can close every gap


def test_deterministic_and_seed_dependent() -> None:
    a, b, c = synth_tables(60, 3), synth_tables(60, 3), synth_tables(60, 4)
    for x, y in zip(a, b, strict=True):
        assert x.equals(y)
    assert not a[0].equals(c[0])


def test_cli_writes_atomically(tmp_path: Path) -> None:
    out = tmp_path / "cat"
    result = runner.invoke(app, ["synth", "--projects", "30", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    first = (out / "projects.csv").read_bytes()
    result = runner.invoke(app, ["synth", "--projects", "30", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0
    assert (out / "projects.csv").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"]  # no temporary folder left
    assert validate_catalog(out) == []


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--projects", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "--projects" in result.output
    # 10^8 candidates would run for hours and fill the disk: refused before any work
    result = runner.invoke(app, ["synth", "--projects", "100000000", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2
    assert "--projects" in result.output and "100,000" in result.output
    assert not (tmp_path / "y").exists()
    afile = tmp_path / "file"
    afile.write_text("")
    result = runner.invoke(app, ["synth", "--projects", "5", "--out", str(afile)])
    assert result.exit_code == 2
