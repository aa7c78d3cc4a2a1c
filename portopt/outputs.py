"""The output folder of a run: deterministic tables, summaries and an all-or-nothing write.

Everything is written into a hidden sibling folder (``.NAME.tmp-XXXX``) and renamed into place
with :func:`os.replace` only when every file is complete, so a run that fails at any stage leaves
no half-written output (README.md, "Outputs"). A run that was killed leaves its staging folder
behind; the next run into the same folder removes it (:func:`remove_stale_staging`). Folders and
files get the permissions the umask gives, as any other program's would.

The CSV files carry no timestamps and write every number in plain positional notation (money
to the cent, other floats to a fixed number of significant digits), so the same seed gives
byte-identical files. A text cell that a spreadsheet would run as a formula gets a leading ``'``
(:func:`spreadsheet_safe`). Column names come from :mod:`portopt.schema`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.errors import ConfigError, InputError, Problem
from portopt.interrupts import raise_if_interrupted, signals_deferred
from portopt.schema import ALLOCATION_FILE as ALLOCATION_FILE
from portopt.schema import COVERAGE_FILE as COVERAGE_FILE
from portopt.schema import PLAN_FILE as PLAN_FILE
from portopt.schema import conform

METRICS_FILE = "metrics.json"
SCENARIOS_DIR = "scenarios"
REPORT_FILE = "report.html"

SIGNIFICANT = 10
"""Significant digits of every float written to CSV and JSON: far below solver noise, far above
what a reader needs, and stable across platforms (``%.10g``)."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a text cell as a formula (OWASP, "CSV
Injection")."""
STAGING_MARK = ".portopt-staging"
"""The file inside each staging folder that says it is portopt's, and which process made it."""
OUTPUT_NAMES = frozenset(
    {
        "allocation.csv",
        "alternatives.csv",
        "bankable.csv",
        "bankable.json",
        "batches.csv",
        "bench.csv",
        "capacity.csv",
        "chokepoints.csv",
        "chokepoints.parquet",
        "compare.csv",
        "coverage.csv",
        "frontier.csv",
        "frontier.html",
        "metrics.json",
        "plan.csv",
        "projects.csv",
        "projects.parquet",
        "report.html",
        "robustness.csv",
        "robustness.html",
        "scenarios",
        "scenarios.parquet",
        "whatif.csv",
        "whatif.json",
    }
)
"""The names portopt writes into an output folder (every command's; a synthetic catalog's
CSV files; ``portopt scenarios``' tables). An existing folder is replaced whole only when it
is empty or holds one of them (:func:`check_target`): never a folder of the user's own."""

HISTOGRAM_BINS = 60
QUANTILES = (0.1, 0.5, 0.9)


def format_float(x: float | None) -> str:
    """A float in positional notation to :data:`SIGNIFICANT` significant digits (never
    ``3.33e+10``; empty for None or NaN), with ``-0`` written as ``0``."""
    if x is None or math.isnan(x):
        return ""
    text = np.format_float_positional(
        float(x), precision=SIGNIFICANT, unique=False, fractional=False, trim="-"
    )
    return "0" if text == "-0" else text


def format_usd(x: float | None) -> str:
    """Dollars as a plain number to the cent (``33300000000``, ``6338336076.5``); empty for
    None or NaN. Money is summed and compared, so it keeps every digit a float carries."""
    if x is None or math.isnan(x):
        return ""
    text = f"{round(float(x), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` (index dropped) with pandas: ``\n`` line ends, minimal quoting, booleans
    as ``true``/``false``, money columns (``*_usd``) by :func:`format_usd`, other floats by
    :func:`format_float`, missing values empty and formula-like text quoted
    (:func:`spreadsheet_safe`), so one seed gives byte-identical files."""
    cells = pd.DataFrame(
        {name: _csv_column(str(name), table[name]) for name in table.columns}, index=table.index
    )
    cells.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def _csv_column(name: str, column: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(column):
        return column.map(lambda v: "true" if v else "false")
    if pd.api.types.is_integer_dtype(column) and not isinstance(column.dtype, pd.BooleanDtype):
        return column.map(lambda v: "" if pd.isna(v) else str(int(v)))
    as_float = format_usd if name.endswith("_usd") else format_float
    return column.map(lambda v: _cell(v, as_float))


def _cell(value: Any, as_float: Any) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return as_float(float(value))
    return spreadsheet_safe(str(value))


def write_table(table: pd.DataFrame, folder: Path, file: str) -> pd.DataFrame:
    """Write ``table`` as ``folder/file`` under the file's schema (:func:`portopt.schema.conform`);
    the table as written."""
    written = conform(table, file)
    write_csv(written, Path(folder) / file)
    return written


def read_output_csv(
    path: Path,
    what: str,
    text: Sequence[str],
    numbers: Sequence[str],
    may_be_blank: Sequence[str] = (),
    optional: Sequence[str] = (),
    check: Callable[[pd.DataFrame], list[Problem]] | None = None,
) -> pd.DataFrame:
    """``path``, a table portopt wrote (``what``: "a plan", "a frontier"), as the report reads
    it: the ``text`` columns as strings (empty cells ""), the ``numbers`` as numbers (a blank
    cell NaN where the column is in ``may_be_blank``), the ``optional`` number columns too when
    present (blank: NaN); ``check(table)``: the caller's own problems with the cells.

    Raises :class:`~portopt.errors.InputError` naming the file and each missing column, or
    the file, row and column of each cell that is not a number and each problem ``check``
    finds, all in one error (rows are CSV lines, the header being line 1)."""
    table = pd.read_csv(path, keep_default_na=False, dtype=dict.fromkeys(text, str))
    missing = [c for c in (*text, *numbers) if c not in table.columns]
    if missing:
        raise InputError(
            [Problem(str(path), None, c, "missing column") for c in missing],
            f"{path} is not {what} written by portopt",
        )
    problems = []
    for column in [*numbers, *(c for c in optional if c in table.columns)]:
        values = pd.to_numeric(table[column], errors="coerce")
        blank = table[column].astype(str) == ""
        bad = values.isna() & ~(blank & (column in may_be_blank or column in optional))
        problems += [
            Problem(str(path), i + 2, column, f"'{table.at[i, column]}' is not a number")
            for i in np.flatnonzero(bad)
        ]
        table[column] = values
    if check is not None:
        problems += check(table)
    if problems:
        raise InputError(problems, f"{len(problems)} problem(s) in {path}")
    return table


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading ``'`` when it starts like a formula (:data:`FORMULA_STARTS`), so
    that a spreadsheet shows it as text instead of running it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays turned into JSON types, floats rounded to
    :data:`SIGNIFICANT` digits and NaN/infinity written as ``null``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        x = float(value)
        return float(format_float(x)) if math.isfinite(x) else None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write ``data`` as indented JSON with a trailing newline."""
    path.write_text(json.dumps(jsonable(data), indent=2) + "\n", encoding="utf-8")


def check_target(target: Path, overwrite: bool) -> None:
    """Fail before any work when ``target`` exists and may not be replaced; remove the staging
    folders a killed run left next to it (:func:`remove_stale_staging`)."""
    _check_place(target)
    if target.parent.is_dir():
        remove_stale_staging(target)
    if target.exists() and not overwrite:
        raise ConfigError(
            [
                Problem(
                    "output.dir",
                    None,
                    None,
                    f"'{target}' exists; choose another folder with"
                    " --out or set output.overwrite=true",
                )
            ],
            "output folder exists",
        )
    if target.exists() and not target.is_dir():
        raise ConfigError(
            [Problem("output.dir", None, None, f"'{target}' is a file, not a folder")],
            "output folder is a file",
        )
    if target.is_dir():
        names = sorted(p.name for p in target.iterdir() if not p.name.startswith("."))
        if names and not set(names) & OUTPUT_NAMES:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise ConfigError(
                [
                    Problem(
                        "output.dir",
                        None,
                        None,
                        f"'{target}' holds files portopt did not write ({shown}), and portopt"
                        " replaces its output folder whole: choose another folder, or empty"
                        " this one",
                    )
                ],
                "output folder not portopt's",
            )


def _check_place(target: Path) -> None:
    """Fail before any work when ``target`` cannot be an output folder: the folder this process
    is in, one above it or the root (replacing it whole would fail, or worse); a path under a
    file; or a place where no folder can be made (read-only, or not a real file system)."""

    def bad(message: str) -> ConfigError:
        return ConfigError([Problem("output.dir", None, None, message)], "bad output folder")

    here = Path.cwd().resolve()
    whole = target.resolve()
    if whole == here or whole in here.parents or whole == Path(whole.anchor):
        raise bad(
            f"'{target}' is the current folder, one above it or the root: portopt replaces its"
            " output folder whole; name a folder of its own (e.g. --out runs/mine)"
        )
    above = whole.parent
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        raise bad(f"'{above}' is a file, not a folder, so '{target}' cannot be made")
    try:
        Path(tempfile.mkdtemp(prefix=".portopt-probe-", dir=above)).rmdir()
    except OSError as exc:
        raise bad(f"cannot make a folder in '{above}': {exc.strerror or exc}") from None


@contextmanager
def staged_output(target: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target``; on success rename it to ``target``.

    If the body raises, the temporary folder (and any parent folder created for it) is removed
    and ``target`` is left as it was. An existing ``target`` is replaced only when ``overwrite``:
    it is first moved aside, then the new folder takes its name, then the old one is deleted.
    Staging folders that a killed run left next to ``target`` are removed first.
    """
    target = Path(target)
    check_target(target, overwrite)
    created = _missing_parents(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    staging = _staging_folder(target, "tmp")
    try:
        yield staging
        raise_if_interrupted()
        with signals_deferred():
            _publish(staging, target, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # deepest first; only the ones this run made, and only if empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary file name beside ``path``; on success rename the file to ``path``.

    If the body raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove the staging folders of killed runs next to ``target``; the folders removed.

    Only folders named like portopt's (``.NAME.tmp-*``, ``.NAME.old-*``) that hold its
    :data:`STAGING_MARK` are touched, and only when the process that made them is gone and
    they are older than now: a run still writing next to ``target`` keeps its folder.
    """
    target = Path(target)
    now = time.time()
    removed = []
    for kind in ("tmp", "old"):
        for folder in target.parent.glob(f".{target.name}.{kind}-*"):
            mark = folder / STAGING_MARK
            if not mark.is_file() or folder.stat().st_mtime >= now or _alive(mark):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _staging_folder(target: Path, kind: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-", dir=target.parent))
    os.chmod(folder, 0o777 & ~_umask())  # mkdtemp makes the folder private
    (folder / STAGING_MARK).write_text(f"{os.getpid()}\n", encoding="utf-8")
    return folder


def _alive(mark: Path) -> bool:
    """Whether the process named in a staging mark still runs (unreadable: assume it does)."""
    try:
        pid = int(mark.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _missing_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _publish(staging: Path, target: Path, overwrite: bool) -> None:
    check_target(target, overwrite)
    (staging / STAGING_MARK).unlink()
    if not target.exists():
        os.replace(staging, target)
        return
    aside = _staging_folder(target, "old")
    os.replace(target, aside / "old")
    os.replace(staging, target)
    shutil.rmtree(aside, ignore_errors=True)


def histogram(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Counts of ``values`` in ``bins`` equal bins between the 0.5th and 99.5th percentiles
    (the extremes fold into the end bins), with the quantiles a reader quotes."""
    lo, hi = np.quantile(values, [0.005, 0.995])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))
    q = np.quantile(values, QUANTILES)
    return {
        "edges": edges,
        "counts": counts,
        "mean": float(values.mean()),
        **{f"p{round(100 * a)}": float(v) for a, v in zip(QUANTILES, q, strict=True)},
    }


BANDS_BLOCK_BYTES = 64 * 2**20
"""The most :func:`bands` copies at a time: a quantile partitions a copy of its input, and the
cash paths of a million scenarios over a few hundred quarters are gigabytes."""


def bands(paths: np.ndarray) -> dict[str, np.ndarray]:
    """Per-column P10, P50, P90 and mean of an (n, quarters) array, a block of columns at a
    time (each column's quantiles are its own, so the blocks change none; the mean is
    accumulated in float64, equal to a whole-array mean to rounding)."""
    n, width = paths.shape
    step = max(1, BANDS_BLOCK_BYTES // max(1, n * paths.itemsize))
    q = np.empty((len(QUANTILES), width))
    mean = np.empty(width)
    for a in range(0, width, step):
        block = paths[:, a : a + step]
        q[:, a : a + step] = np.quantile(block, QUANTILES, axis=0)
        mean[a : a + step] = block.mean(axis=0, dtype=np.float64)
    return {**{f"p{round(100 * a)}": q[j] for j, a in enumerate(QUANTILES)}, "mean": mean}


def headline(part: dict[str, Any], alpha: float) -> dict[str, float | None]:
    """The four figures a reader quotes, from an ``in_sample`` or ``out_of_sample`` block of
    metrics.json (:func:`portopt.evaluate.portfolio_figures`): mean coverage score, mean
    recovery ratio, P(recovery ratio >= 1) and CVaR_alpha of Japan's shortfall / capital."""
    return {
        "coverage_score": (part.get("coverage") or {}).get("mean"),
        "recovery_ratio": (part.get("recovery_ratio") or {}).get("mean"),
        "p_recoup": part.get("p_recoup"),
        "cvar_shortfall_share": part.get(f"shortfall_cvar_{alpha:g}_share"),
    }
