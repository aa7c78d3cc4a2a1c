"""The ``portopt`` command line: one typer app, each command in its own module."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from portopt._version import __version__
from portopt.errors import PortoptError

app = typer.Typer(
    name="portopt",
    help="Select and size projects for the US-Japan strategic investment fund.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

COMMANDS = ("validate", "scenarios", "run", "frontier", "robustness", "synth")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"portopt {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """portopt: which candidate projects to finance, and with how much."""


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a PortoptError into its message on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PortoptError as exc:
            err_console.print(
                Text("error: ", style="bold red") + Text(str(exc)), highlight=False, soft_wrap=True
            )
            raise typer.Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(code=130) from None

    return wrapper


for _name in COMMANDS:
    try:
        _module = importlib.import_module(f"portopt.cli.{_name}")
    except ModuleNotFoundError as _exc:  # build phase: a command not written yet
        if _exc.name != f"portopt.cli.{_name}":
            raise
        continue
    app.command(_name)(user_errors(_module.command))


def run() -> None:  # pragma: no cover - console entry for ``python -m portopt``
    sys.exit(app())
