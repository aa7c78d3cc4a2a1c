"""Ctrl-C and SIGTERM: the command stops, exits 130 and publishes nothing.

The CLI runs every command inside :func:`handling_signals`: SIGINT and SIGTERM then raise
:class:`KeyboardInterrupt` in the main thread, and are remembered. A library that catches the
interrupt where it lands (HiGHS aborts its solve when a Python callback raises, and returns an
error status instead) cannot hide it: every stage boundary and the publication of the output
folder call :func:`raise_if_interrupted`, which raises it again. Inside
:func:`signals_deferred` (the two renames that publish a folder) a signal is only recorded, and
raised when the block ends, so the folder is the old one or the new one, never neither.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_requested = threading.Event()
_deferring = [0]


def _handler(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    if not _deferring[0]:
        raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def handling_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`KeyboardInterrupt` and are
    remembered; the handlers before it are restored after it (main thread only: elsewhere the
    block changes nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    _requested.clear()
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def interrupted() -> bool:
    """Whether a signal came since :func:`handling_signals` began."""
    return _requested.is_set()


def raise_if_interrupted() -> None:
    """Raise :class:`KeyboardInterrupt` when a signal came, even if something swallowed it."""
    if _requested.is_set():
        raise KeyboardInterrupt("interrupted")


@contextmanager
def signals_deferred() -> Iterator[None]:
    """A block no signal cuts in two: one that comes is raised when the block ends."""
    _deferring[0] += 1
    try:
        yield
    finally:
        _deferring[0] -= 1
    raise_if_interrupted()
