"""Scripts without ``if __name__ == "__main__":``: worker processes import them again.

The end-to-end tests run real scripts in real ``python`` processes with a real
2-worker dask cluster; the others re-run a script in this process the way a
spawned worker imports it (``runpy.run_path(..., run_name="__mp_main__")``).
"""
from __future__ import annotations

import os
import pathlib
import runpy
import subprocess
import sys
import textwrap
import types

import pytest

import explorer as ex
from explorer.execution.mainguard import REPORT_VARIABLE, importing_main_script

GUARD = 'if __name__ == "__main__":'
REPO = pathlib.Path(__file__).resolve().parents[1]

SETUP = """\
import explorer as ex


def double(traj):
    return traj.x * 2


def build():
    traj = ex.Trajectory("guard")
    traj.add_parameter("x", 1.0)
    traj.explore({"x": [1.0, 2.0, 3.0]})
    return traj
"""

RUN = """\
env = ex.Environment(build(), filename="out.h5", workers=2, progress=False)
print("RESULT", env.run(double))
env.close()
"""


def python(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``python *args`` in ``tmp_path`` with this checkout's explorer."""
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    environ.pop(REPORT_VARIABLE, None)
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=60)


def script(tmp_path: pathlib.Path, body: str) -> str:
    path = tmp_path / "explore.py"
    path.write_text(SETUP + "\n\n" + body)
    return str(path)


# ------------------------------------------------------------ real processes
@pytest.mark.slow
def test_unguarded_script_ends_with_the_guard_message(tmp_path):
    done = python(tmp_path, script(tmp_path, RUN))
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "MainGuardError" in done.stderr and GUARD in done.stderr
    assert "explore.py" in done.stderr  # the script is named
    assert "FileLockedError" not in output and "Nanny failed" not in output
    assert done.stderr.count("Traceback") == 1  # the main process's only; workers stay quiet
    assert "RESULT" not in done.stdout


@pytest.mark.slow
def test_unguarded_call_through_a_function_is_caught_too(tmp_path):
    body = "def main():\n" + textwrap.indent(RUN, "    ") + "\n\nmain()\n"
    done = python(tmp_path, script(tmp_path, body))
    assert done.returncode != 0
    assert "MainGuardError" in done.stderr and GUARD in done.stderr
    assert "FileLockedError" not in done.stdout + done.stderr


@pytest.mark.slow
def test_guarded_script_runs(tmp_path):
    done = python(tmp_path, script(tmp_path, GUARD + "\n" + textwrap.indent(RUN, "    ")))
    assert done.returncode == 0, done.stderr
    assert "RESULT [(0, 2.0), (1, 4.0), (2, 6.0)]" in done.stdout


@pytest.mark.slow
def test_session_without_a_script_runs(tmp_path):
    """``python -c`` (and a notebook, which replaces ``__main__``): nothing to import."""
    code = ("import sys, types\n"
            "sys.modules['__main__'] = types.ModuleType('__main__')  # as IPython does\n"
            + SETUP + RUN)
    done = python(tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr
    assert "RESULT [(0, 2.0), (1, 4.0), (2, 6.0)]" in done.stdout


# ------------------------------------------------------------ in this process
def test_not_importing_a_script_here():
    assert not importing_main_script()


def test_stale_main_alias_is_no_script_import(monkeypatch):
    """A notebook replaces ``__main__`` after multiprocessing aliased it as ``__mp_main__``."""
    monkeypatch.setitem(sys.modules, "__mp_main__", types.ModuleType("__main__"))
    assert not importing_main_script()


def test_worker_import_raises_main_guard_error(tmp_path, monkeypatch):
    monkeypatch.delenv(REPORT_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    path = script(tmp_path, RUN)
    with pytest.raises(ex.MainGuardError, match="explore.py") as caught:
        runpy.run_path(path, run_name="__mp_main__")
    assert GUARD in str(caught.value)
    assert isinstance(caught.value, ex.ExplorerError) and isinstance(caught.value, RuntimeError)
    assert not (tmp_path / "out.h5").exists()
    assert not importing_main_script()  # once imported, a worker runs functions freely


def test_worker_import_refuses_resume(tmp_path, monkeypatch):
    monkeypatch.delenv(REPORT_VARIABLE, raising=False)
    path = script(tmp_path, f"ex.Environment.resume({str(tmp_path / 'none.h5')!r})\n")
    with pytest.raises(ex.MainGuardError, match="resume"):
        runpy.run_path(path, run_name="__mp_main__")


def test_worker_of_explorer_cluster_reports_and_exits(tmp_path, monkeypatch):
    report = tmp_path / "report.txt"
    report.write_text("")
    monkeypatch.setenv(REPORT_VARIABLE, str(report))
    with pytest.raises(SystemExit) as caught:
        runpy.run_path(script(tmp_path, RUN), run_name="__mp_main__")
    assert caught.value.code == 1
    assert GUARD in report.read_text()


def test_worker_does_not_recreate_a_removed_report(tmp_path, monkeypatch):
    monkeypatch.setenv(REPORT_VARIABLE, str(tmp_path / "gone.txt"))
    with pytest.raises(ex.MainGuardError):
        runpy.run_path(script(tmp_path, RUN), run_name="__mp_main__")
    assert not (tmp_path / "gone.txt").exists()
