"""A user's value that does not parse (an impossible date, a number too large to be finite) is
exit 2 naming the key and where it was set, in a ``--set``, a config file and ``portopt validate
--config``; never an internal error (exit 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from portopt.cli.main import app
from portopt.config import load_config
from portopt.errors import EXIT_BAD_INPUT, ConfigError

BAD_VALUES = [
    ("plan.deadline", "2029-02-30", "not a calendar date"),
    ("plan.deadline", "2029-13-01", "not a calendar date"),
    ("model.budget_usd", "1e999", "finite number"),
]


@pytest.mark.parametrize(("key", "value", "words"), BAD_VALUES)
def test_a_bad_value_in_set_names_the_override(key: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        load_config(None, [f"{key}={value}"])
    assert info.value.problems[0].file == f"--set {key}={value}"
    assert key in info.value.problems[0].message


@pytest.mark.parametrize(("key", "value", "words"), BAD_VALUES)
@pytest.mark.parametrize("how", ["plan", "validate --config", "validate --set"])
def test_a_bad_value_exits_2_through_the_cli(
    key: str, value: str, words: str, how: str, tmp_path: Path
) -> None:
    section, field = key.split(".")
    config = tmp_path / "bad.yaml"
    config.write_text(f"{section}:\n  {field}: {value}\n")
    out = tmp_path / "out"
    args = {
        "plan": ["plan", str(config), "--out", str(out)],
        "validate --config": ["validate", "--config", str(config)],
        "validate --set": ["validate", "--set", f"{key}={value}"],
    }[how]
    result = CliRunner().invoke(app, args)
    text = result.output.replace("\n", "")
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert words in text and key in text
    assert ("--set" in text) if how == "validate --set" else (str(config) in text)
    assert "internal error" not in text and not out.exists()


def test_an_unquoted_date_in_a_file_still_reads(tmp_path: Path) -> None:
    config = tmp_path / "ok.yaml"
    config.write_text("plan:\n  deadline: 2028-12-31\n")
    assert load_config(config).plan.deadline == "2028-12-31"
