"""Typed errors. Each message says what to change; the CLI prints it and exits with the error's
``exit_code``:

- :data:`EXIT_BAD_INPUT` (2): a malformed catalog, config, ``--set`` override or option, or a
  missing file;
- :data:`EXIT_INFEASIBLE` (3): a well-formed configuration that no portfolio satisfies;
- :data:`EXIT_INTERNAL` (4): the solver or the scenario engine failed, or portopt hit a bug;
- :data:`EXIT_INTERRUPTED` (130): Ctrl-C or SIGTERM (:mod:`portopt.interrupts`); nothing written.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

EXIT_BAD_INPUT = 2
EXIT_INFEASIBLE = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` with the closest of ``choices`` to a mistyped ``word``, or ""
    when none is close: the hint every "unknown ..." message ends with."""
    near = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


class PortoptError(Exception):
    """Base of every error portopt raises for a user's input or a solver's verdict."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Problem:
    """One problem found in an input: where it is and what was expected there."""

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


class InputError(PortoptError):
    """One or more problems in a user's file; ``problems`` lists each of them."""

    def __init__(self, problems: Sequence[Problem], summary: str = "") -> None:
        self.problems = list(problems)
        head = summary or f"{len(self.problems)} problem(s) found"
        super().__init__(head + "\n" + "\n".join(str(p) for p in self.problems))


class CatalogError(InputError):
    """The candidate catalog is malformed."""


class ConfigError(InputError):
    """The run configuration is malformed (unknown key, wrong type, impossible value)."""


class ScenarioError(PortoptError):
    """Generated scenarios hold NaN or infinity, or the engine was asked for the impossible."""

    exit_code = EXIT_INTERNAL


class InfeasibleError(PortoptError):
    """No portfolio satisfies every enabled constraint group; ``explanation`` says which gave."""

    exit_code = EXIT_INFEASIBLE

    def __init__(self, message: str, explanation: list[str] | None = None) -> None:
        self.explanation = explanation or []
        super().__init__(message + ("\n" + "\n".join(self.explanation) if self.explanation else ""))


class SolverError(PortoptError):
    """Every solver in the chain failed; the message names each and why."""

    exit_code = EXIT_INTERNAL


class BackendError(PortoptError):
    """The requested backend is not available (e.g. ``cupy`` without CuPy or a device)."""
