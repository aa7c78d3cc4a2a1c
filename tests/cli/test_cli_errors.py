"""Bad input, infeasible plans and bugs through the CLI: each exits with its documented code
(2, 3, 4), names where the problem is (the file and key, or the ``--set`` override, or the
constraint group that must give) and never shows a traceback unless ``--debug`` asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from portopt.cli.main import app
from portopt.errors import EXIT_BAD_INPUT, EXIT_INFEASIBLE, EXIT_INTERNAL

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = str(ROOT / "configs" / "default.yaml")
SMALL = ["--set", "scenarios.optimisation=100", "--set", "scenarios.evaluation=10"]

MALFORMED_FILES = [
    # (id, YAML text, key or words the message must hold)
    ("unknown-top-key", "turbo: 1\n", "unknown key 'turbo'"),
    ("unknown-nested-key", "scenarios:\n  turbo: true\n", "scenarios.turbo"),
    ("misspelt-key", "model:\n  budget_usdd: 1e11\n", "did you mean 'model.budget_usd'"),
    (
        "misspelt-factor-field",
        "scenarios:\n  factors:\n    power:\n      vols: 0.2\n",
        "did you mean 'scenarios.factors.power.vol'",
    ),
    ("a-list-as-key", "? [a, b]\n: 1\n", "a key must be a name, got a list"),
    (
        "nested-too-deep",
        "".join(f"{' ' * k}k{k}:\n" for k in range(500)) + " " * 500 + "x: 1\n",
        "nested more than",
    ),
    ("seed-not-a-number", "seed: many\n", "key 'seed'"),
    ("seed-negative", "seed: -1\n", "key 'seed'"),
    ("seed-a-section", "seed:\n  x: 1\n", "key 'seed'"),
    ("no-optimisation-scenarios", "scenarios:\n  optimisation: 0\n", "scenarios.optimisation"),
    ("evaluation-text", "scenarios:\n  evaluation: lots\n", "scenarios.evaluation"),
    ("start-not-a-quarter", "scenarios:\n  start: 2026-01\n", "scenarios.start"),
    ("window-reversed", "scenarios:\n  window: [2030Q1, 2029Q1]\n", "scenarios.window"),
    (
        "max-delay-negative",
        "scenarios:\n  max_delay_quarters: -1\n",
        "scenarios.max_delay_quarters",
    ),
    ("window-before-start", "scenarios:\n  window: [2025Q1, 2030Q4]\n", "begins before"),
    ("removed-horizon-key", "scenarios:\n  horizon_quarters: 80\n", "scenarios.horizon_quarters"),
    ("correlation-2x2", "scenarios:\n  correlation: [[1, 0], [0, 1]]\n", "must be 7x7"),
    ("unknown-factor", "scenarios:\n  factors:\n    oil:\n      vol: 0.2\n", "unknown ['oil']"),
    (
        "unknown-permitting-track",
        "scenarios:\n  permitting:\n    tribal:\n      vol: 0.2\n",
        "scenarios.permitting",
    ),
    ("backlog-unknown-sector", "scenarios:\n  backlog:\n    sectors: [tourism]\n", "tourism"),
    ("sofr-vol-negative", "scenarios:\n  sofr:\n    vol: -0.1\n", "scenarios.sofr.vol"),
    (
        "coercion-rate-too-high",
        "scenarios:\n  coercion:\n    rate_per_year: 100\n",
        "scenarios.coercion.rate_per_year",
    ),
    ("tax-rate-above-one", "scenarios:\n  tax_rate: 1.5\n", "scenarios.tax_rate"),
    (
        "sector-bounds-reversed",
        "model:\n  groups:\n    sector_shares:\n      bounds:\n        energy: [0.8, 0.2]\n",
        "0 <= min <= max <= 1",
    ),
    (
        "sector-bounds-unknown-sector",
        "model:\n  groups:\n    sector_shares:\n      bounds:\n        tourism: [0, 1]\n",
        "unknown sector 'tourism'",
    ),
    ("alpha-one", "model:\n  groups:\n    recoupment:\n      alpha: 1.0\n", "recoupment.alpha"),
    ("deployment-above-budget", "model:\n  min_deployment_usd: 9e11\n", "exceeds budget_usd"),
    (
        "project-limit-negative",
        "model:\n  groups:\n    max_projects:\n      limit: -1\n",
        "max_projects.limit",
    ),
    (
        "group-switch-not-bool",
        "model:\n  groups:\n    capital:\n      enabled: sometimes\n",
        "capital.enabled",
    ),
    ("sponsor-cap-zero", "model:\n  groups:\n    sponsor_cap:\n      max_usd: 0\n", "max_usd"),
    ("unknown-solver", "solver:\n  name: gurobi\n", "solver.name"),
    ("time-limit-zero", "solver:\n  time_limit_s: 0\n", "solver.time_limit_s"),
    ("overwrite-not-bool", "output:\n  overwrite: maybe\n", "output.overwrite"),
    ("unknown-backend", "backend: tpu\n", "key 'backend'"),
    ("catalog-a-number", "catalog: 5\n", "key 'catalog'"),
    ("top-level-a-list", "- a\n- b\n", "the top level must be a mapping"),
    ("yaml-syntax", "model:\n  budget_usd: [1,\n", "not valid YAML"),
]

MALFORMED_OVERRIDES = [
    # (id, --set items, the override the message must name, key or words it must hold)
    (
        "misspelt-override",
        ["model.groups.recoupment.alhpa=0.9"],
        "--set model.groups.recoupment.alhpa=0.9",
        "did you mean 'model.groups.recoupment.alpha'",
    ),
    ("inside-a-value", ["seed.x=1"], "--set seed.x=1", "'seed' holds a value"),
    (
        "window-before-start",
        ["scenarios.start=2029Q1"],
        "--set scenarios.start=2029Q1",
        "begins before",
    ),
    ("budget-negative", ["model.budget_usd=-1"], "--set model.budget_usd=-1", "budget_usd"),
    ("unknown-solver", ["solver.name=gurobi"], "--set solver.name=gurobi", "solver.name"),
    ("unknown-key", ["model.nonsense=1"], "--set model.nonsense=1", "model.nonsense"),
    ("no-equals", ["model.budget_usd"], "--set", "is not KEY=VALUE"),
    ("empty-catalog", ['catalog=""'], '--set catalog=""', "an empty path"),
    ("a-list-as-key", ["scenarios={[a]: 1}"], "--set scenarios={[a]: 1}", "scenarios"),
    ("nested-too-deep", ["seed=" + "[" * 3000 + "]" * 3000], "--set seed=[[[", "seed"),
    ("no-key", ["=3"], "--set", "is not KEY=VALUE"),
    ("empty-key-part", ["model..budget_usd=1"], "--set", "is not KEY=VALUE"),
    (
        "window-reversed",
        ["scenarios.window=[2030Q1,2029Q1]"],
        "--set scenarios.window=[2030Q1,2029Q1]",
        "scenarios.window",
    ),
    (
        "factor-vol-too-high",
        ["scenarios.factors.power.vol=9"],
        "--set scenarios.factors.power.vol=9",
        "scenarios.factors.power.vol",
    ),
    (
        "sector-bounds-reversed",
        ["model.groups.sector_shares.bounds.energy=[0.8,0.2]"],
        "--set model.groups.sector_shares.bounds.energy=[0.8,0.2]",
        "0 <= min <= max <= 1",
    ),
    (
        "the-bad-one-of-two",
        ["seed=3", "scenarios.optimisation=-5"],
        "--set scenarios.optimisation=-5",
        "scenarios.optimisation",
    ),
]

INFEASIBLE = [
    # (--set override, the constraint group that must give)
    ("model.groups.max_projects={enabled: true, limit: 2}", "max_projects"),
    ("model.budget_usd=1e9", "capital"),
    ("model.min_deployment_usd=5e11", "capital"),
    ("model.groups.capital.annual_commitment_cap_usd=1e8", "capital"),
    ("model.groups.recoupment.max_shortfall_share=0.0", "recoupment"),
    ("model.groups.recoupment.min_expected_recovery=3.0", "recoupment"),
    ("model.groups.japan_content.floor=1.0", "japan_content"),
    ("model.groups.sector_shares.bounds.semiconductors=[0.9,1.0]", "sector_shares"),
    ("model.groups.sector_shares.bounds.energy=[0,0]", "sector_shares"),
    ("model.groups.review_capacity.per_quarter=0", "review_capacity"),
    ("model.groups.sponsor_cap.max_usd=1e8", "sponsor_cap"),
    ("model.groups.workforce.default_available=0", "workforce"),
]


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _error_lines(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    return lines[start:]


@pytest.mark.parametrize(
    "text, needle", [c[1:] for c in MALFORMED_FILES], ids=[c[0] for c in MALFORMED_FILES]
)
def test_malformed_config_file_names_file_and_key(text: str, needle: str, tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(text)
    result = cli("validate", "--config", str(config))
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    problems = _error_lines(result.output)[1:]
    assert any(line.startswith(f"{config}") and needle in line for line in problems), problems
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "sets, source, needle",
    [c[1:] for c in MALFORMED_OVERRIDES],
    ids=[c[0] for c in MALFORMED_OVERRIDES],
)
def test_malformed_override_names_the_override_not_the_file(
    sets: list[str], source: str, needle: str
) -> None:
    args = [a for item in sets for a in ("--set", item)]
    result = cli("validate", "--config", DEFAULT, *args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    problems = _error_lines(result.output)
    assert any(line.startswith(source) and needle in line for line in problems), problems
    assert "default.yaml" not in "\n".join(problems)
    assert "Traceback" not in result.output


BAD_COMMANDS = [
    # (id, arguments, the source the message must start with)
    ("missing-file", ["run", "/nonexistent/config.yaml"], "/nonexistent/config.yaml"),
    ("unknown-bundled", ["validate", "--config", "no_such_name"], "no_such_name"),
    ("no-evaluation", ["run", "default", "--set", "scenarios.evaluation=0"], "scenarios.eval"),
    ("no-scenarios", ["scenarios", "default", "--out", "x", "--scenarios", "0"], "--scenarios"),
    (
        "more-than-the-index-space",
        ["scenarios", "default", "--out", "x", "--scenarios", "100000000000"],
        "--scenarios",
    ),
    (
        "past-last-index",
        ["scenarios", "default", "--out", "x", "--first", "4294967290", "--scenarios", "10"],
        "--first",
    ),
    ("one-batch", ["robustness", "default", "--batches", "1"], "--batches"),
    ("negative-alternatives", ["plan", "default", "--alternatives", "-1"], "--alternatives"),
    ("slack-not-a-share", ["plan", "default", "--alternatives", "2", "--slack", "abc"], "--slack"),
    ("vary-without-values", ["frontier", "default", "--vary", "model.budget_usd"], "--vary"),
    (
        "vary-misspelt",
        ["frontier", "default", "--vary", "model.budgett=1e11,2e11"],
        "--vary model.budgett=",
    ),
    ("init-unknown", ["init-config", "no_such_name"], "no_such_name"),
    (
        "vary-no-evaluation",
        ["frontier", "default", "--vary", "scenarios.evaluation=0,40", "--workers", "1"],
        "--vary point scenarios.evaluation=0",
    ),
    ("init-onto-a-folder", ["init-config", "default", "--out", ".", "--force"], ".: is a folder"),
    ("catalog-path-too-long", ["validate", "a" * 5000], "error: the path 'aaaa"),
    ("out-path-too-long", ["plan", "default", "--out", "b" * 5000], "error: the path 'bbbb"),
]


@pytest.mark.parametrize(
    "args, source", [c[1:] for c in BAD_COMMANDS], ids=[c[0] for c in BAD_COMMANDS]
)
def test_bad_command_input_exits_2(
    args: list[str], source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert any(line.startswith(source) for line in _error_lines(result.output)), result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("override, group", INFEASIBLE, ids=[g for _, g in INFEASIBLE])
def test_infeasible_set_exits_3_naming_the_group(override: str, group: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("run", DEFAULT, "--out", str(out), *SMALL, "--set", override)
    assert result.exit_code == EXIT_INFEASIBLE, result.output
    lines = _error_lines(result.output)
    assert "no portfolio satisfies" in lines[0]
    assert any(line.startswith(f"{group}: ") for line in lines[1:]), lines
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_run_that_would_not_fit_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("portopt.memory.available_bytes", lambda: 2**30)
    out = tmp_path / "out"
    result = cli("run", DEFAULT, "--out", str(out), "--set", "scenarios.evaluation=2000000")
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    lines = _error_lines(result.output)
    assert "would not fit in memory" in lines[0]
    assert lines[1].startswith("scenarios.optimisation=2000, scenarios.evaluation=2000000")
    assert "evaluation aggregates" in lines[1] and "than the 1.00 GiB" in lines[1]
    assert "Generating" not in result.output
    assert not out.exists()


def _boom(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("disk on fire")


def test_an_unexpected_exception_is_a_bug_with_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("portopt.pipeline.load_catalog", _boom)
    result = cli("run", DEFAULT, "--out", str(tmp_path / "out"))
    assert result.exit_code == EXIT_INTERNAL, result.output
    (line,) = _error_lines(result.output)
    assert "internal error (a bug in portopt): RuntimeError: disk on fire" in line
    assert "--debug" in line and "Traceback" not in result.output
    debug = cli("--debug", "run", DEFAULT, "--out", str(tmp_path / "out"))
    assert debug.exit_code == EXIT_INTERNAL
    assert "Traceback" in debug.output and "_boom" in debug.output


def test_a_solver_failure_exits_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from portopt.errors import SolverError

    def fail(*args: Any, **kwargs: Any) -> None:
        raise SolverError("every solver failed: highs ended with status error")

    monkeypatch.setattr("portopt.pipeline.optimize", fail)
    result = cli("run", DEFAULT, "--out", str(tmp_path / "out"), *SMALL)
    assert result.exit_code == EXIT_INTERNAL, result.output
    assert "every solver failed" in result.output and "Traceback" not in result.output


def test_robustness_batches_past_the_scenario_index_space_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "rb"
    result = cli("robustness", "default", "--batches", "1000000000", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "--batches" in result.output and "2^32" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("item", "code", "said"),
    [
        ("plan.first_quarter=2030Q1", 2, "no round is open"),
        ("plan.commitments=/nonexistent/c.csv", 2, "commitments file not found"),
        ("support.projects.nope.capex_reduction=0.2", 2, "'nope' is not a catalog project"),
        ("model.budget_usd=1e10", 0, "`portopt plan` would refuse this config"),
        ("seed=3", 0, "plan inputs OK"),
        ("scenarios.evaluation=0", 2, "scenarios.evaluation: must be at least 1"),
    ],
)
def test_validate_runs_the_plans_own_checks(item: str, code: int, said: str) -> None:
    result = cli("validate", "--config", "default", "--set", item)
    assert result.exit_code == code, result.output
    assert said in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["plan", "default", "--slack", "1%"], "--slack: is the alternatives' slack, but none"),
        (["whatif", "default", "--force-in", "alaska_lng@"], "'alaska_lng@' is not ID[@QUARTER]"),
    ],
)
def test_an_option_that_would_be_ignored_exits_2(tmp_path: Path, args: list[str], said: str):
    out = tmp_path / "o"
    result = cli(*args, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())
    assert not out.exists()
