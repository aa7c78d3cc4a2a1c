"""The run configuration: every shipped config validates; bad keys are named by full path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from portopt.cli.main import app
from portopt.config import RunConfig, bundled_configs, find_config, load_config, parse_overrides
from portopt.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_validates(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)


def test_there_are_the_three_configs() -> None:
    assert {p.name for p in CONFIGS} >= {"default.yaml", "stress_coercion.yaml", "gpu_large.yaml"}


def _leaf_keys(tree: dict, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out |= _leaf_keys(value, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


def test_default_yaml_states_the_schema_defaults() -> None:
    # the file lists every key; the schema's own defaults are the same numbers
    assert load_config(ROOT / "configs" / "default.yaml") == RunConfig()
    # and lists every key, but for a constraint group's section left out whole (a new group's
    # keys take the schema's defaults: docs/adding-a-group.md)
    text = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    listed = _leaf_keys(text)
    schema = _leaf_keys(RunConfig().model_dump(mode="json"))
    groups = set(text["model"]["groups"])
    missing = {
        k
        for k in schema - listed
        if not (k.startswith("model.groups.") and k.split(".")[2] not in groups)
    }
    assert missing == set() and listed <= schema


def test_dotted_override_sets_nested_value() -> None:
    cfg = load_config(ROOT / "configs" / "default.yaml", ["model.budget_usd=4e11", "seed=7"])
    assert cfg.model.budget_usd == 4e11
    assert cfg.seed == 7


def test_override_of_nested_group() -> None:
    cfg = load_config(None, ["model.groups.recoupment.enabled=false"])
    assert cfg.model.groups.recoupment.enabled is False


def _problems(exc: ConfigError) -> str:
    return "\n".join(str(p) for p in exc.problems)


def test_unknown_key_named_by_full_path(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  groups:\n    recoupment:\n      epsilon: 0.2\n")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert "model.groups.recoupment.epsilon" in _problems(info.value)
    assert str(f) in _problems(info.value)


def test_wrong_type_named_by_full_path() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["scenarios.optimisation=many"])
    assert "scenarios.optimisation" in _problems(info.value)


def test_every_problem_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["scenarios.optimisation=-1", "model.nonsense=1", "solver.name=gurobi"])
    text = _problems(info.value)
    assert "scenarios.optimisation" in text
    assert "model.nonsense" in text
    assert "solver.name" in text


@pytest.mark.parametrize(
    "override, key",
    [
        ("scenarios.correlation=[[1,0],[0,1]]", "scenarios.correlation"),
        ("scenarios.window=[2030Q1,2029Q1]", "scenarios.window"),
        ("scenarios.start=2026-01", "scenarios.start"),
        ("model.min_deployment_usd=9e11", "model"),
        ("model.groups.sector_shares.bounds.energy=[0.8,0.2]", "model.groups.sector_shares"),
        ("model.groups.sector_shares.bounds.tourism=[0,1]", "model.groups.sector_shares"),
        ("scenarios.backlog.sectors=[tourism]", "scenarios.backlog.sectors"),
    ],
)
def test_impossible_values_rejected(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert key in _problems(info.value)


def test_malformed_override_rejected() -> None:
    with pytest.raises(ConfigError):
        parse_overrides(["model.budget_usd"])
    with pytest.raises(ConfigError):
        parse_overrides(["=3"])


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("model:\n  budget_usd: [1,\n")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert "broken.yaml" in _problems(info.value)


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/nonexistent/config.yaml")
    assert "no such config file" in _problems(info.value)


def test_digest_changes_with_config() -> None:
    assert RunConfig().digest() != load_config(None, ["seed=1"]).digest()


def test_cli_validate_unknown_key_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("scenarios:\n  optimisation: 100\n  turbo: true\n")
    result = CliRunner().invoke(app, ["validate", str(f)])
    assert result.exit_code == 2, result.output
    assert "scenarios.turbo" in result.output
    assert "Traceback" not in result.output


def test_overrides_merge_into_defaults_key_by_key(tmp_path: Path) -> None:
    # overriding one volatility keeps the federal multiplier at its default, 1.5 (not 1.0)
    cfg = load_config(None, ["scenarios.permitting.federal.vol=0.7"])
    assert cfg.scenarios.permitting["federal"].vol == 0.7
    assert cfg.scenarios.permitting["federal"].multiplier == 1.5
    assert cfg.scenarios.permitting["state"] == RunConfig().scenarios.permitting["state"]
    f = tmp_path / "c.yaml"
    f.write_text("scenarios:\n  factors:\n    power:\n      vol: 0.3\n")
    from_file = load_config(f, ["scenarios.factors.power.reversion=0.9"])
    power = from_file.scenarios.factors["power"]
    assert (power.vol, power.reversion) == (0.3, 0.9)
    assert power.coercion_jump == RunConfig().scenarios.factors["power"].coercion_jump
    assert from_file.scenarios.factors["gas"] == RunConfig().scenarios.factors["gas"]


def test_later_override_wins_and_is_named() -> None:
    assert load_config(None, ["seed=1", "seed=2"]).seed == 2
    with pytest.raises(ConfigError) as info:
        load_config(None, ["seed=1", "seed=-2"])
    assert _problems(info.value).startswith("--set seed=-2: key 'seed'")


def test_bundled_config_by_name() -> None:
    assert load_config(find_config("gpu_large")) == load_config(ROOT / "configs" / "gpu_large.yaml")
    assert set(bundled_configs()) == {p.stem for p in CONFIGS}
    with pytest.raises(ConfigError) as info:
        find_config("gpu_largest")
    assert ", ".join(sorted(p.stem for p in CONFIGS)) in _problems(info.value)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "model.groups.workforce.available_per_region_year={PJM: -5}",
            "greater than or equal to 0",
        ),
        ("model.groups.power_balance.headroom_mw={PJM: -100}", "greater than or equal to 0"),
        ("model.groups.power_balance.headroom_mw={ERCT: 100}", "did you mean 'ERCOT'"),
        ("model.groups.workforce.available_per_region_year={'NOPE:2028': 5}", "'NOPE' is not a"),
    ],
)
def test_a_per_region_limit_must_be_a_known_region_and_not_negative(item: str, message: str):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [item])
    assert message in str(caught.value)


def test_a_per_region_limit_of_a_known_region_and_year_is_taken() -> None:
    cfg = load_config(None, ["model.groups.workforce.available_per_region_year={'PJM:2028': 5}"])
    assert cfg.model.groups.workforce.available_per_region_year == {"PJM:2028": 5.0}


def test_a_ragged_correlation_matrix_is_named_by_its_rows() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["scenarios.correlation=[[1,0],[0,1,0]]"])
    text = str(caught.value)
    assert "got 2 rows of 2, 3 values" in text and "inhomogeneous" not in text


@pytest.mark.parametrize("item", ["scenarios.optimisation=true", "model.budget_usd=false"])
def test_true_or_false_is_not_a_number(item: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, [item])
    assert "expected a number, not true or false" in str(caught.value)


def test_a_key_given_twice_in_the_file_is_refused_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "twice.yaml"
    f.write_text("seed: 1\nscenarios:\n  optimisation: 50\nseed: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_config(f)
    problem = caught.value.problems[0]
    assert problem.row == 4 and "'seed' is given twice" in problem.message


def test_overrides_as_one_string_or_of_the_wrong_type() -> None:
    """The Python API: one ``KEY=VALUE`` string is one override (it was read letter by letter,
    each refused), and an override that is not a string is named as such (it raised an
    AttributeError)."""
    assert load_config(None, "scenarios.optimisation=60").scenarios.optimisation == 60
    for wrong in ([5], [None], ["seed=1", 2.5]):
        with pytest.raises(ConfigError, match="expected 'KEY=VALUE' strings"):
            load_config(None, wrong)  # type: ignore[arg-type]
