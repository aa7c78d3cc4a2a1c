"""What makes each project bankable (portopt/bankable.py, ``portopt bankable``): each lever's
least level is checked against the support lever itself (``support.projects``, run through the
plan's own :func:`~portopt.plan.support.with_support` and the engine), one grid step apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import portopt
from portopt.bankable import CAPEX_STEP, COLUMNS, FLOOR_STEP, bankable
from portopt.catalog import load_catalog
from portopt.cli.main import app
from portopt.config import load_config
from portopt.engine.generate import generate_scenarios
from portopt.errors import EXIT_BAD_INPUT
from portopt.plan.support import with_support

S = 120
SETS = [f"scenarios.optimisation={S}", "scenarios.threads=1"]
# below 0.95 alone on the bundled catalog, each lifted by both levers within their grids
SHORT = ["mitra_chem_lfp", "graphite_anode_natural", "reactor_forging_press"]
MET = "murata_mlcc"


def _recovery(pid: str, *sets: str) -> float:
    """Japan's expected recovery on ``pid`` alone with ``support.projects`` ``sets``, through
    the plan's support lever and the engine (not portopt.bankable's own catalog edits)."""
    config = load_config(None, [*SETS, *(f"support.projects.{pid}.{s}" for s in sets)])
    catalog = with_support(load_catalog(), config)
    one = catalog.projects.loc[[pid]]
    sub = type(catalog)(one, catalog.chokepoints, catalog.capacity, catalog.source)
    out = generate_scenarios(sub, config, backend="numpy", scenarios=range(S))
    return float(out.project["pv_japan"].mean() / out.project["pv_draw"].mean())


@pytest.fixture(scope="module")
def result() -> Any:
    config = load_config(None, SETS)
    return bankable(load_catalog(), config, projects=[*SHORT, MET], backend="numpy")


def test_each_levers_least_level_is_one_grid_step_from_failing(result: Any) -> None:
    table = result.table.set_index("project_id")
    target = 0.95
    for pid in SHORT:
        row = table.loc[pid]
        assert row["recovery"] < target
        share, floor = float(row["capex_reduction"]), float(row["price_floor"])
        assert 0 < share <= 0.95 and 0 < floor <= 3.0
        got = _recovery(pid, f"capex_reduction={share}")
        assert got >= target
        assert got == pytest.approx(row["capex_recovery"], rel=1e-12)
        assert _recovery(pid, f"capex_reduction={round(share - CAPEX_STEP, 2)}") < target
        assert row["capex_cost_usd"] == pytest.approx(share * row["base_cost_usd"])
        got = _recovery(pid, f"price_floor={floor}")
        assert got >= target
        assert got == pytest.approx(row["price_floor_recovery"], rel=1e-12)
        below = round(floor - FLOOR_STEP, 2)
        if below > 0:
            assert _recovery(pid, f"price_floor={below}") < target
        assert row["price_floor_cost_usd"] > 0
        assert row["cheaper"] in ("capex", "price floor")
        assert row["replaces_offtake"] is None or "paid by" in row["replaces_offtake"]


def test_a_project_that_meets_the_target_needs_nothing(result: Any) -> None:
    row = result.table.set_index("project_id").loc[MET]
    assert row["recovery"] >= 0.95
    assert row["capex_reduction"] == 0 and row["capex_cost_usd"] == 0
    assert row["price_floor"] == 0 and row["price_floor_cost_usd"] == 0
    assert row["cheaper"] == "none needed"
    assert row["recovery"] == pytest.approx(_recovery(MET), rel=1e-12)


def test_a_projects_answer_does_not_depend_on_the_others_analysed(result: Any) -> None:
    alone = bankable(load_catalog(), load_config(None, SETS), projects=[SHORT[1]], backend="numpy")
    pd.testing.assert_frame_equal(
        alone.table.reset_index(drop=True),
        result.table[result.table["project_id"] == SHORT[1]].reset_index(drop=True),
    )


def test_out_of_reach_and_the_summary() -> None:
    config = load_config(None, SETS)
    far = bankable(load_catalog(), config, target=40.0, projects=SHORT[:1], backend="numpy")
    row = far.table.iloc[0]
    assert pd.isna(row["capex_reduction"]) and pd.isna(row["price_floor"])
    assert row["cheaper"] == "out of reach"
    assert far.summary["out_of_reach"] == {
        "projects": 1,
        "base_cost_usd": float(row["base_cost_usd"]),
        "ids": [SHORT[0]],
    }
    assert far.summary["target"] == 40.0


def test_the_target_defaults_to_the_configs_floor(result: Any) -> None:
    assert result.summary["target"] == 0.95
    config = load_config(None, [*SETS, "model.groups.recoupment.min_expected_recovery=null"])
    one = bankable(load_catalog(), config, projects=[MET], backend="numpy")
    assert one.summary["target"] == 1.0


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_cli_writes_the_files_and_the_api_matches(tmp_path: Path, result: Any) -> None:
    out = tmp_path / "b"
    args = ["bankable", "default", "--out", str(out), "--backend", "numpy"]
    for pid in [*SHORT, MET]:
        args += ["--project", pid]
    for s in SETS:
        args += ["--set", s]
    done = cli(*args)
    assert done.exit_code == 0, done.output
    table = pd.read_csv(out / "bankable.csv")
    assert list(table.columns) == list(COLUMNS)
    assert table["project_id"].tolist() == result.table["project_id"].tolist()
    np.testing.assert_allclose(table["recovery"], result.table["recovery"], rtol=1e-9)
    summary = json.loads((out / "bankable.json").read_text())
    assert summary["projects"] == 4 and summary["meet_target"]["projects"] == 1
    api = portopt.bankability(overrides=SETS, projects=[MET], backend="numpy")
    assert api.table.iloc[0]["cheaper"] == "none needed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "alaska_lgn"], "--project: 'alaska_lgn' is not a catalog project"),
        (["--target", "0"], "--target: must be a finite number above 0, got 0.0"),
        (["--target", "inf"], "--target: must be a finite number above 0, got inf"),
        (["--set", "support.projects.nope.capex_reduction=0.2"], "support.projects.nope"),
        (["--set", "plan.target=hard"], "plan.target: 'hard' is an input of `portopt plan`"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, args: list[str], message: str):
    out = tmp_path / "b"
    done = cli("bankable", "default", "--out", str(out), "--set", SETS[0], *args)
    assert done.exit_code == EXIT_BAD_INPUT, done.output
    assert message in done.output
    assert "Traceback" not in done.output
    assert not out.exists()


def test_a_target_that_is_not_a_number_is_named() -> None:
    """The Python API: ``target="x"`` is refused naming the target (a NumPy TypeError before)."""
    from portopt.errors import InputError

    with pytest.raises(InputError, match="--target: must be a finite number above 0, got 'x'"):
        portopt.bankability(overrides=SETS, projects=[MET], target="x")  # type: ignore[arg-type]
