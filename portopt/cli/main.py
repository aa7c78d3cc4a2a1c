"""The ``portopt`` command line: one typer app, each command in its own module."""

from __future__ import annotations

import errno
import functools
import importlib
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import click
import typer
from rich.console import Console
from rich.text import Text

from portopt._version import __version__
from portopt.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, PortoptError
from portopt.interrupts import handling_signals, interrupted

app = typer.Typer(
    name="portopt",
    help="Select and size projects for the US-Japan strategic investment fund.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

COMMANDS = (
    "validate",
    "init-config",
    "scenarios",
    "plan",
    "run",
    "frontier",
    "robustness",
    "whatif",
    "synth",
    "bankable",
)
debug_mode = {"on": False}
"""Whether ``--debug`` was given: an internal error then prints its traceback."""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"portopt {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="On an internal error (exit code 4), print its traceback."
    ),
) -> None:
    """portopt: which candidate projects to finance, and with how much.

    Exit codes: 0 done; 2 bad input (catalog, config, --set override, option, missing file);
    3 infeasible configuration; 4 internal error (solver or engine failure, or a bug);
    130 interrupted (Ctrl-C or SIGTERM: nothing written, an earlier output folder kept).
    """
    debug_mode["on"] = debug


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an error into one message on stderr and its exit code, never a traceback.

    A :class:`PortoptError` exits with its own code (2 or 3, or 4 for a solver or engine
    failure); any other exception is a bug in portopt: one line saying so, exit code 4, and the
    traceback only under ``--debug``. Ctrl-C or SIGTERM (:mod:`portopt.interrupts`) exits 130,
    whatever error the interrupted work ended in.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with handling_signals():
            return _guarded(fn, *args, **kwargs)

    return wrapper


def _guarded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if interrupted():  # e.g. a solve the signal aborted, reported as failed
            _interrupted()
        if isinstance(exc, PortoptError):
            _print_error(str(exc))
            raise typer.Exit(code=exc.exit_code) from None
        refused = _refused_path(exc)
        if refused is not None:
            _print_error(refused)
            raise typer.Exit(code=EXIT_BAD_INPUT) from None
        if debug_mode["on"]:
            err_console.print(traceback.format_exc(), highlight=False, markup=False)
        hint = "Please report it" if debug_mode["on"] else "Rerun with --debug and report it"
        _print_error(
            f"internal error (a bug in portopt): {type(exc).__name__}: {exc}. {hint}"
            " with the command you ran."
        )
        raise typer.Exit(code=EXIT_INTERNAL) from None


PATH_REFUSALS = {
    errno.ENAMETOOLONG: "is too long for this system",
    errno.ELOOP: "runs through a loop of symbolic links",
}
"""The operating system's refusals of a path the user gave (an input error, exit 2)."""


def _refused_path(exc: BaseException) -> str | None:
    """The message for a path the operating system refuses as given, else None."""
    if not isinstance(exc, OSError) or exc.errno not in PATH_REFUSALS:
        return None
    name = str(exc.filename or "")
    shown = name if len(name) <= 80 else f"{name[:60]}...{name[-16:]} ({len(name):,} characters)"
    return f"the path '{shown}' {PATH_REFUSALS[exc.errno]}; give a shorter or plain path"


def _interrupted() -> NoReturn:
    err_console.print(
        "interrupted: stopped before publishing, an earlier output folder is as it was",
        highlight=False,
    )
    raise typer.Exit(code=EXIT_INTERRUPTED) from None


def _print_error(message: str) -> None:
    err_console.print(
        Text("error: ", style="bold red") + Text(message), highlight=False, soft_wrap=True
    )


for _name in COMMANDS:
    _module = importlib.import_module(f"portopt.cli.{_name.replace('-', '_')}")
    app.command(_name)(user_errors(_module.command))


def run() -> None:  # pragma: no cover - console entry for ``python -m portopt``
    sys.exit(app())
