"""The ``explorer`` command: look into stored trajectories from a shell, and combine files.

The inspecting subcommands open an explorer HDF5 file read-only through the
public loading functions, print plain aligned text and close the file; ``merge``
and ``import-pypet`` write a new file through :mod:`explorer.combine`. Errors a user
can cause (a missing, foreign or damaged file, an unknown trajectory, a run that
does not exist) print one line ``error: ...`` on stderr and exit with status 1.
"""
from __future__ import annotations

import contextlib
import os
import re
import reprlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import click
import numpy as np

from . import load_trajectory, trajectory_names
from .combine.merge import merge
from .combine.pypet import import_pypet
from .errors import ExplorerError, NodeNotFoundError
from .naming import BRANCHES, RUN_WILDCARD, run_name
from .parameters import Parameter
from .results import Result
from .trajectory import Trajectory
from .tree import Group

__all__ = ["cli", "main"]

#: Width of a value in the printed tree; longer ones end in "...".
VALUE_WIDTH = 60
#: Statuses in the order they are listed.
STATUSES = ("completed", "failed", "pending")
#: Suffixes ``explorer frame -o`` writes.
FRAME_SUFFIXES = (".csv", ".parquet")
#: Columns of ``to_frame()`` that describe the run rather than its values.
RUN_COLUMNS = ("status", "duration", "error")
#: Why a run may have stored no items, by its status.
NOTHING_STORED = {"failed": "the run failed", "pending": "the run has not run yet",
                  "completed": "the run added no items here"}

_HDF5_TRACE = re.compile(r"HDF5 error back trace\s*(.*?)\s*End of HDF5 error back trace\s*",
                         re.DOTALL)


class _ShortRepr(reprlib.Repr):
    """``reprlib`` limits, and floats to 12 significant digits (``0.3``, not
    ``0.30000000000000004``)."""

    def __init__(self) -> None:
        super().__init__()  # keyword arguments need Python 3.12
        self.maxlevel, self.maxdict, self.maxstring, self.maxother = 2, 4, VALUE_WIDTH, VALUE_WIDTH
        self.maxtuple = self.maxlist = self.maxset = 6

    def repr_float(self, value: float, level: int) -> str:
        short = f"{value:.12g}"
        if not np.isfinite(value) or float(short) == value:
            return repr(value)  # already the shortest exact form: 5.0, 0.1, nan
        return short if any(c in short for c in ".e") else f"{short}.0"


_REPR = _ShortRepr()


# ---------------------------------------------------------------------- errors
class CommandError(click.ClickException):
    """A failure explained in one line: ``error: <message>`` on stderr, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def one_line(text: str) -> str:
    """``text`` on one line; an HDF5 library back trace shrinks to its last reason.

    Parameters
    ----------
    text : str
        An exception's message, possibly spread over lines.
    """
    def reason(match: re.Match) -> str:
        lines = [line.strip() for line in match.group(1).splitlines() if line.strip()]
        return f"{lines[-1]}; " if lines else ""

    text = _HDF5_TRACE.sub(reason, text)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class ExplorerGroup(click.Group):
    """A click group that turns explorer's and the OS's errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
        except (ExplorerError, OSError) as error:
            if ctx.params.get("debug"):
                raise
            raise CommandError(one_line(str(error)) or type(error).__name__) from None
        except Exception as error:  # a bug: still one line, the traceback on request
            if ctx.params.get("debug"):
                raise
            raise CommandError(
                f"unexpected {type(error).__name__}: {one_line(str(error))} (rerun with "
                "`explorer --debug ...` for the traceback and please report it)") from None


# ---------------------------------------------------------------------- formatting
def clip(text: str, width: int = VALUE_WIDTH) -> str:
    """``text`` cut to ``width`` characters, ending in ``...`` when cut."""
    return text if len(text) <= width else text[:width - 3] + "..."


def brief(value: Any, width: int = VALUE_WIDTH) -> str:
    """A short, one-line description of a value: arrays by type, dtype, shape and a few values.

    Parameters
    ----------
    value : object
        A parameter's or result item's value.
    width : int
        Longest text returned.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        head = f"ndarray {value.dtype} {value.shape}"
        if value.dtype.kind in "biufcUSM m":
            with np.printoptions(threshold=6, edgeitems=2, linewidth=10 ** 6,
                                 formatter={"float_kind": "{:.6g}".format}):
                shown = " ".join(np.array2string(value).split())
            return clip(f"{head} {shown}", width)
        return head
    kind = type(value)
    if kind.__module__.split(".")[0] == "pandas" and hasattr(value, "shape"):
        if hasattr(value, "columns"):
            columns = ", ".join(map(str, list(value.columns)[:6]))
            more = ", ..." if len(value.columns) > 6 else ""
            return clip(f"{kind.__name__} {value.shape[0]}x{value.shape[1]} "
                        f"[{columns}{more}]", width)
        return clip(f"{kind.__name__} {value.dtype} {value.shape}", width)
    if hasattr(value, "nnz") and hasattr(value, "shape"):  # a scipy.sparse matrix
        return clip(f"{kind.__name__} {value.shape} nnz={value.nnz}", width)
    return clip(" ".join(_REPR.repr(value).split()), width)


def explored_brief(values: list[Any], width: int = VALUE_WIDTH) -> str:
    """``explored over N runs: [...]``, listing distinct values when there are fewer."""
    head = f"explored over {len(values)} runs"
    try:
        distinct = list(dict.fromkeys(values))
    except TypeError:  # arrays: not hashable
        distinct = values
    if len(distinct) < len(values):
        head += f", {len(distinct)} values"
    for count in (8, 6, 4, 3, 2, 1):  # as many values as fit
        shown = ", ".join(brief(value, 24) for value in distinct[:count])
        text = f"{head}: [{shown}{', ...' if len(distinct) > count else ''}]"
        if len(text) <= width:
            break
    return clip(text, width)


def short_name(full_name: str) -> str:
    """A parameter's name without its ``parameters.`` branch."""
    branch, _, rest = full_name.partition(".")
    return rest if branch == "parameters" and rest else full_name


def aligned(rows: Sequence[tuple[str, ...]], indent: str = "") -> list[str]:
    """Rows of cells as lines with every column but the last padded to its widest cell."""
    if not rows:
        return []
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def tree_lines(rows: list[tuple[int, str, str, str]]) -> list[str]:
    """``(depth, name, value, comment)`` rows as an indented tree; values and comments aligned."""
    names = ["  " * depth + name for depth, name, _, _ in rows]
    filled = [name for name, (_, _, value, comment) in zip(names, rows) if value or comment]
    name_width = max(map(len, filled), default=0)
    value_width = max((len(value) for _, _, value, _ in rows), default=0)
    lines = []
    for name, (_, _, value, comment) in zip(names, rows):
        if not (value or comment):
            lines.append(name)
            continue
        line = f"{name.ljust(name_width)}  {value.ljust(value_width)}"
        if comment:
            line += f"  # {comment}"
        lines.append(line.rstrip())
    return lines


def runs_summary(n_runs: int, counts: dict[str, int]) -> str:
    """``63 runs (60 completed, 3 failed)``: statuses with no run are left out."""
    known = [status for status in STATUSES if status in counts]
    order = known + sorted(set(counts) - set(known))
    parts = [f"{counts[status]} {status}" for status in order if counts[status]]
    noun = "run" if n_runs == 1 else "runs"
    return f"{n_runs} {noun} ({', '.join(parts)})" if parts else f"{n_runs} {noun}"


def human_size(size: float) -> str:
    """A byte count in B, kB, MB, GB or TB (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def disk_size(filename: str) -> int:
    """Bytes that ``filename`` and its ``<filename>.segments/`` folder take."""
    total = os.path.getsize(filename)
    for root, _, files in os.walk(f"{filename}.segments"):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a writer may be tidying
                total += os.path.getsize(os.path.join(root, name))
    return total


# ---------------------------------------------------------------------- reading
@contextlib.contextmanager
def opened(filename: str, name: str | None, load: str = "lazy") -> Iterator[Trajectory]:
    """Load a trajectory and close its file afterwards."""
    traj = load_trajectory(filename, name, load=load)
    try:
        yield traj
    finally:
        traj.close()


def run_results(traj: Trajectory, template: str, idx: int) -> dict[str, Any]:
    """The items one run stored under a per-run result template (empty if none)."""
    try:
        return traj.get(template.replace(RUN_WILDCARD, run_name(idx))).to_dict()
    except NodeNotFoundError:
        return {}


def item_brief(result: Result, item: str) -> str:
    """``brief`` of a result's item, read now, or why it could not be read."""
    try:
        return brief(result[item])
    except ExplorerError as error:  # a pickled item (allow_pickle is off), a damaged one
        return f"<not read: {clip(one_line(str(error)), VALUE_WIDTH)}>"


def split_template(template: str) -> tuple[str, str]:
    """``("results.neuron", "$")`` of ``"results.neuron.$"``: the group and the rest."""
    segments = template.split(".")
    position = segments.index(RUN_WILDCARD)
    return ".".join(segments[:position]), ".".join(segments[position:])


def node_rows(group: Group, depth: int,
              per_run: dict[str, list[tuple[str, str, str]]]) -> list[tuple[int, str, str, str]]:
    """Tree rows of everything below ``group``.

    ``per_run`` maps a group's full name to its per-run results, each as
    ``(name with $, item names, comment)``.
    """
    rows: list[tuple[int, str, str, str]] = []
    for name, node in group.children.items():
        if isinstance(node, Group):
            rows.append((depth, name, "", node.comment))
            rows += node_rows(node, depth + 1, per_run)
        elif isinstance(node, Parameter):
            explored = node.range
            value = explored_brief(explored) if explored is not None else brief(node.default)
            rows.append((depth, name, value, node.comment))
        elif isinstance(node, Result):
            rows.append((depth, name, "", node.comment))
            rows += [(depth + 1, item, item_brief(node, item), "") for item in node.keys()]
    rows += [(depth, name, f"per run: {items}", comment)
             for name, items, comment in per_run.get(group.full_name, [])]
    return rows


def show_tree(traj: Trajectory) -> list[str]:
    """The lines of ``explorer show`` without ``--run``."""
    explored = ", ".join(map(short_name, traj.explored_parameters)) or "nothing"
    lines = [f"{traj.name}" + (f"  # {traj.comment}" if traj.comment else ""),
             f"{runs_summary(len(traj), traj._status_counts())}; explored: {explored}"]
    per_run: dict[str, list[tuple[str, str, str]]] = {}
    for template, comment in traj.run_templates.items():
        group, rest = split_template(template)
        items = list(traj.get(template[:-2]).run_items()) if rest == RUN_WILDCARD else \
            list(traj.get(f"{group}.{rest.split('.')[1]}"))
        per_run.setdefault(group, []).append(
            (rest, ", ".join(items) or "(no completed run)", comment))
    rows: list[tuple[int, str, str, str]] = []
    for branch in BRANCHES:
        below = node_rows(traj.get(branch), 1, per_run)
        if below:
            rows += [(0, branch, "", "")] + below
    return lines + [""] + tree_lines(rows)


def show_run(traj: Trajectory, idx: int) -> list[str]:
    """The lines of ``explorer show --run N``: one run's values, results, status and error."""
    traj.set_run(idx)  # raises for a run that does not exist
    frame = traj.to_frame()
    row = frame.loc[idx]
    explored = traj.explored_parameters
    lines = [f"{traj.name}: run {idx} of {len(traj)} ({run_name(idx)})"]
    head = [("status", str(row["status"]))]
    if not _missing(row["duration"]):
        head.append(("duration", f"{row['duration']:.3g} s"))
    if "error" in row.index and not _missing(row["error"]):
        head.append(("error", one_line(str(row["error"]))))
    lines += aligned(head)
    if explored:
        lines += ["", "explored parameters"]
        lines += aligned([(short_name(full), brief(traj.get(full).value)) for full in explored],
                         indent="  ")
    labels = {label for template in traj.run_templates if template.endswith(RUN_WILDCARD)
              for item in traj.get(template[:-2]).run_items()
              for label in (item, f"{template.split('.', 1)[1][:-2]}.{item}")}
    values = [column for column in frame.columns[len(explored):]
              if column not in RUN_COLUMNS and column not in labels]
    if values:
        lines += ["", "return value (as in `explorer frame`)"]
        lines += aligned([(str(column), brief(row[column])) for column in values], indent="  ")
    for template, comment in traj.run_templates.items():
        items = run_results(traj, template, idx)
        title = template.replace(RUN_WILDCARD, run_name(idx))
        lines += ["", title + (f"  # {comment}" if comment else "")]
        if items:
            lines += aligned([(item, brief(value)) for item, value in items.items()],
                             indent="  ")
        else:
            lines.append(f"  (nothing stored: {NOTHING_STORED.get(row['status'], '')})")
    failures = traj.failures() if row["status"] == "failed" else None
    if failures is not None and idx in failures.index and failures.loc[idx, "traceback"]:
        lines += ["", "traceback"]
        lines += ["  " + line for line in str(failures.loc[idx, "traceback"]).splitlines()]
    traj.restore_default()
    return lines


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def echo_lines(lines: Sequence[str]) -> None:
    """Print lines to stdout."""
    click.echo("\n".join(lines))


# ---------------------------------------------------------------------- commands
FILE = click.argument("file", type=click.Path())
NAME = click.argument("name", required=False)


@click.group(cls=ExplorerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="EXPLORER_DEBUG",
              help="Show the full traceback of an error instead of one line.")
@click.version_option(package_name="explorer", message="explorer %(version)s")
def cli(debug: bool) -> None:
    """Look into the trajectories stored in an explorer HDF5 file.

    NAME (a trajectory's name) may be left out when the file holds only one.
    A missing, damaged or foreign file, an unknown NAME or run prints one line
    "error: ..." and exits with status 1.

    \b
    Examples:
      explorer ls hdf5/FiringRate.h5
      explorer show hdf5/FiringRate.h5 FiringRate --run 13
      explorer frame hdf5/FiringRate.h5 -o rates.csv
      explorer failures hdf5/FiringRate.h5 --traceback
      explorer merge all.h5 job1.h5 job2.h5
      explorer import-pypet old_pypet.hdf5 new.h5
    """


@cli.command("ls", short_help="List the trajectories in a file.")
@FILE
def ls_command(file: str) -> None:
    """List the trajectories in FILE: runs, their statuses, explored parameters.

    The last line gives the file's size on disk, its segments folder included.

    \b
    Example:
      explorer ls hdf5/FiringRate.h5
    """
    names = trajectory_names(file)
    rows = []
    for name in names:
        with opened(file, name, load="parameters") as traj:
            explored = ", ".join(map(short_name, traj.explored_parameters)) or "nothing"
            rows.append((name, runs_summary(len(traj), traj._status_counts()),
                         f"explored: {explored}",
                         f"# {clip(traj.comment)}" if traj.comment else ""))
    noun = "trajectory" if len(names) == 1 else "trajectories"
    echo_lines(aligned(rows) +
               [f"{file}: {len(names)} {noun}, {human_size(disk_size(file))} on disk"])


@cli.command("show", short_help="Print a trajectory's tree, or one run.")
@FILE
@NAME
@click.option("--run", "run", type=int, metavar="N",
              help="Show run N: its explored values, results, status and error.")
def show_command(file: str, name: str | None, run: int | None) -> None:
    """Print a trajectory's tree: values and comments, per-run results, runs.

    Explored parameters show the values they take; arrays show their dtype,
    shape and a few values. With --run N, print that run's explored values,
    the results it stored, its return value, status and error.

    \b
    Examples:
      explorer show hdf5/FiringRate.h5
      explorer show hdf5/FiringRate.h5 FiringRate --run 13
    """
    with opened(file, name) as traj:
        echo_lines(show_tree(traj) if run is None else show_run(traj, run))


@cli.command("frame", short_help="Print or write the table of runs.")
@FILE
@NAME
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="OUT",
              help="Write to OUT (.csv, or .parquet with pyarrow) instead of printing.")
def frame_command(file: str, name: str | None, output: str | None) -> None:
    """Print the table of runs (traj.to_frame()) or write it to a file.

    One row per run: explored parameters, scalar results, return value,
    status, duration and error.

    \b
    Examples:
      explorer frame hdf5/FiringRate.h5
      explorer frame hdf5/FiringRate.h5 FiringRate -o runs.csv
    """
    suffix = os.path.splitext(output)[1].lower() if output is not None else None
    if suffix is not None and suffix not in FRAME_SUFFIXES:
        raise CommandError(f"cannot write {output!r}: the name must end in "
                           f"{' or '.join(FRAME_SUFFIXES)}")
    with opened(file, name) as traj:
        frame = traj.to_frame()
    if output is None:
        click.echo(frame.to_string())
    elif suffix == ".csv":
        frame.to_csv(output)
    else:
        try:
            frame.to_parquet(output)
        except ImportError:
            raise CommandError(f"writing {output!r} needs pyarrow: pip install pyarrow, "
                               "or write a .csv") from None


@cli.command("failures", short_help="List the failed runs and their errors.")
@FILE
@NAME
@click.option("--traceback", "tracebacks", is_flag=True,
              help="Also print each failed run's traceback.")
def failures_command(file: str, name: str | None, tracebacks: bool) -> None:
    """List the failed runs: their explored values and errors.

    \b
    Examples:
      explorer failures hdf5/FiringRate.h5
      explorer failures hdf5/FiringRate.h5 FiringRate --traceback
    """
    with opened(file, name) as traj:
        failures = traj.failures()
        explored = traj.explored_parameters
        ranges = [traj.get(full).range for full in explored]
        lines = [f"{traj.name}: {len(failures)} of {runs_summary(len(traj), {})} failed"]
        rows = [("run", *map(short_name, explored), "error")]
        for idx, error in failures["error"].items():
            rows.append((str(idx), *(brief(values[idx]) for values in ranges),
                         one_line(str(error))))
        if len(failures):
            lines += aligned(rows)
        if tracebacks:
            for idx, text in failures["traceback"].items():
                lines += ["", f"run {idx}:"] + ["  " + line for line in str(text).splitlines()]
    echo_lines(lines)


@cli.command("sessions", short_help="List the sessions that ran a trajectory.")
@FILE
@NAME
def sessions_command(file: str, name: str | None) -> None:
    """List the sessions that ran the trajectory: when, where, which versions.

    \b
    Example:
      explorer sessions hdf5/FiringRate.h5
    """
    with opened(file, name) as traj:
        sessions = traj.sessions()
        lines = [f"{traj.name}: {len(sessions)} session(s)"]
        for number, (_, session) in enumerate(sessions.iterrows(), start=1):
            lines += ["", f"session {number}"]
            lines += aligned([(str(key), clip(value, 100) if isinstance(value, str)
                               else brief(value, 100)) for key, value in session.items()],
                             indent="  ")
    echo_lines(lines)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Print each warning raised in the block as one line ``warning: ...`` on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                click.echo(f"warning: {one_line(str(warning.message))}", err=True)


@cli.command("merge", short_help="Merge a trajectory of several files into a new file.")
@click.argument("out", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path(), metavar="IN...")
@click.option("--name", help="The trajectory's name (needed if the first input holds several).")
@click.option("--remove-duplicates", is_flag=True,
              help="Keep each point (same explored values) once: its first completed run.")
@click.option("--allow-pickle", is_flag=True,
              help="Copy pickled items (reading them runs code from the inputs).")
def merge_command(out: str, inputs: tuple[str, ...], name: str | None,
                  remove_duplicates: bool, allow_pickle: bool) -> None:
    """Merge the trajectory of the files IN... (say, cluster jobs) into the new file OUT.

    Runs keep their results, status, errors and provenance; the inputs are not
    changed, and OUT must not exist.

    \b
    Example:
      explorer merge all.h5 job1.h5 job2.h5 job3.h5 --remove-duplicates
    """
    with warnings_as_lines():
        runs = merge(out, list(inputs), name, remove_duplicates=remove_duplicates,
                     allow_pickle=allow_pickle)
    click.echo(f"{out}: {runs} runs merged from {len(inputs)} files")


@cli.command("import-pypet", short_help="Import the trajectories of a pypet file.")
@click.argument("old", type=click.Path())
@click.argument("new", type=click.Path())
@click.option("--allow-pickle", is_flag=True,
              help="Import pickled items (unpickling runs code from the file: trust it).")
def import_pypet_command(old: str, new: str, allow_pickle: bool) -> None:
    """Import every trajectory of the pypet (0.6-0.7) file OLD into the new explorer file NEW.

    What explorer has no equivalent for (links, annotations) is listed as a
    warning and in each trajectory's comment. pypet need not be installed.

    \b
    Example:
      explorer import-pypet old_pypet.hdf5 new.h5
    """
    with warnings_as_lines():
        names = import_pypet(old, new, allow_pickle=allow_pickle)
    noun = "trajectory" if len(names) == 1 else "trajectories"
    click.echo(f"{new}: {len(names)} {noun} imported from {old}: {', '.join(names)}")


def main(args: Sequence[str] | None = None) -> None:
    """Run the ``explorer`` command (``args`` default to the command line)."""
    cli.main(args=args)
