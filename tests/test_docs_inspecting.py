"""docs/inspecting.md: its code runs, and says what explorer does.

The page's ``python`` blocks run in order, in one namespace, in a fresh
directory (they write ``inspect.h5`` there). Where a block is followed by a
``text`` block, that is what the block printed, and the test compares it
(but for outputs that hold durations, times, hosts or paths: tracebacks, the
xarray summary, the session record). The ``explorer`` commands of the
``console`` blocks run at their place on the page, between the blocks before
and after them, and what they print is compared the same way, leaving out
sizes, durations, tracebacks and session records. Then the facts the page
states in comments are checked on the namespace the blocks left.
"""
from __future__ import annotations

import contextlib
import io
import pathlib
import re
import shlex

import numpy as np
import pandas as pd
from click.testing import CliRunner

import explorer as ex
from explorer.cli import cli

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "inspecting.md"
#: Outputs holding these vary from one session to the next: not compared.
VOLATILE = ("Traceback", "<xarray.Dataset>", "versions")


def fenced_blocks() -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block of the page, in order."""
    text = DOC.read_text()
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def stable(text: str) -> list[str]:
    """The lines of a command's output that do not change between sessions."""
    kept = []
    for line in lines(text):
        if line == "traceback":  # a failed run's traceback ends `show --run`
            break
        if not (line.endswith("on disk") or line.startswith("duration")):
            kept.append(line)
    return kept


def run_console(block: str, expected: str | None) -> None:
    """Run the ``explorer`` command of a console block and compare its output."""
    command = block.strip().removeprefix("$ ")
    status_echo = '; echo "exit status $?"'
    echoes_status = command.endswith(status_echo)
    command = command.removesuffix(status_echo)
    args = shlex.split(command)
    args = args[3:] if args[:3] == ["python", "-m", "explorer"] else args[1:]
    result = CliRunner().invoke(cli, args)
    if echoes_status:
        assert result.exit_code == 1, (command, result.output)
        error = result.stderr.strip()
        assert error.startswith("error: ") and "\n" not in error
        assert lines(expected or "") == [error, "exit status 1"]
        return
    assert result.exit_code == 0, (command, result.output, result.exception)
    if args[0] == "sessions":
        assert lines(result.stdout)[0] == lines(expected or "")[0] == "LIF: 1 session(s)"
        assert {"host", "pid", "git", "start", "runs"} <= {
            line.split()[0] for line in lines(result.stdout)[3:]}
    elif args[0] == "frame":
        if "-o" in args:
            written = pd.read_csv(args[args.index("-o") + 1], index_col="run")
            assert len(written) == 18 and written.loc[1, "status"] == "failed"
        else:  # the doc shows its first and last rows; durations differ
            shown = [line.rsplit(None, 1)[0] if "completed" in line else line
                     for line in lines(result.stdout)]
            documented = [line for line in lines(expected or "") if line != "..."]
            assert all(any(_same_row(doc, got) for got in shown) for doc in documented)
    else:
        assert stable(result.stdout) == stable(expected or ""), command


def _same_row(documented: str, got: str) -> bool:
    """A row of ``explorer frame`` as documented, but for its duration."""
    strip = re.compile(r"\s+\d\.\d+(\s+(IndexError.*|NaN))?$")
    return strip.sub("", documented) == strip.sub("", got)


def test_the_page_runs_and_shows_what_explorer_prints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = fenced_blocks()
    assert sum(language == "python" for language, _ in blocks) >= 15
    assert {language for language, _ in blocks} <= {"python", "text", "console"}
    namespace: dict = {"__name__": "__main__"}
    commands = 0
    for number, (language, body) in enumerate(blocks):
        following = blocks[number + 1] if number + 1 < len(blocks) else ("", "")
        expected = following[1] if following[0] == "text" else None
        if language == "console":
            run_console(body, expected)
            commands += 1
        elif language == "python":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(body, f"{DOC}: block {number}", "exec"), namespace)
            if expected is not None and not any(word in expected for word in VOLATILE):
                assert lines(printed.getvalue()) == lines(expected), f"block {number}"
    assert commands >= 10
    check_stated_facts(namespace)


def check_stated_facts(ns: dict) -> None:
    """What the page's comments say, on the namespace its blocks left."""
    # failures, as first run
    failures = ns["failures"]
    assert failures.index.name == "run" and failures.index.tolist() == [0, 1, 6]
    assert failures.columns.tolist() == ["error", "traceback"]
    frame = ns["frame"]
    assert frame.columns.tolist() == ["tau", "I", "nspikes", "first_spike", "rate",
                                      "status", "duration", "error"]
    assert frame.index.name == "run" and len(frame) == 18
    # one result over all runs
    V, completed = ns["V"], [2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    assert (V.dtype, V.shape, len(V)) == (np.dtype("float64"), (1000,), 15)
    assert V.runs.tolist() == completed
    assert V[13].shape == (1000,) and V[[2, 13]].shape == (2, 1000)
    assert V[:].shape == (15, 1000) and V[2:10].shape == (7, 1000)
    np.testing.assert_array_equal(V[[2, 13]][1], V[13])
    np.testing.assert_array_equal(V[2:10], V[:][:7])
    assert ns["peak"].index.tolist() == completed
    assert ns["nspikes"].dtype.kind == "i" and ns["nspikes"].tolist() == \
        frame.loc[completed, "nspikes"].astype(int).tolist()
    run13 = ns["run13"]
    assert run13.keys() == ["V", "nspikes"] and run13.nspikes == 6
    assert run13.to_dict()["nspikes"] == 6 and run13.V.shape == (1000,)
    times = ns["times"]
    np.testing.assert_array_equal(times[13], [11.5, 28.0, 44.5, 61.0, 77.5, 94.0])
    assert isinstance(times[:], list) and len(times[:]) == 15 and times.shape is None
    # the grid
    trace = ns["trace"]
    assert trace.dims == ("V_dim_0",) and trace.shape == (1000,)
    assert ns["sessions"].columns.tolist() == [
        "versions", "host", "pid", "command", "cwd", "git", "start", "end", "runs",
        "interrupted", "run_seconds", "compile_seconds"]
    # after the rerun
    traj, results = ns["traj"], ns["results"]
    assert traj.failures().empty and len(traj) == 21 and len(traj.sessions()) == 2
    assert [idx for idx, _ in results] == list(range(21))
    ds = ns["ds"]
    assert dict(ds.sizes) == {"run": 21, "V_dim_0": 1000}
    assert set(ds.coords) >= {"run", "tau", "I"}


def test_the_grid_view_has_the_parameters_as_dimensions(tmp_path, monkeypatch):
    """The page's first block, then its xarray statements: dims in the product's order,
    failed runs NaN."""
    monkeypatch.chdir(tmp_path)
    python = [body for language, body in fenced_blocks() if language == "python"]
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(python[0], f"{DOC}: block 0", "exec"), namespace)
    traj = ex.load_trajectory("inspect.h5")
    ds = traj.to_xarray()
    assert ds.V.dims == ("tau", "I", "V_dim_0")
    assert ds.rate.dims == ("tau", "I")
    assert ds.V.sel(tau=20.0).dims == ("I", "V_dim_0")
    assert np.isnan(ds.rate.sel(tau=10.0, I=0.05)) and np.isnan(ds.V.sel(tau=20.0, I=0.05)).all()
    assert ds.status.sel(tau=10.0, I=0.1).item() == "failed"
    assert ds.rate.sel(tau=40.0, I=0.3).item() == 120.0
    traj.close()

