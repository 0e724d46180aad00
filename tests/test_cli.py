"""The ``explorer`` command line on real files, run as real processes.

A module fixture runs a small LIF-like exploration through the public API (22
runs, two of which raise) into an HDF5 file; every subcommand is then run on it
with ``python -m explorer`` or the installed ``explorer`` script, and on files
it must refuse in one line. A few checks call the click group in-process
(``CliRunner``) where starting a process would only cost time.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import explorer as ex
from explorer import cli

SCRIPT = os.path.join(os.path.dirname(sys.executable), "explorer")
CURRENTS = [round(0.1 * k, 1) for k in range(11)]
REFRACTORY = [5.0, 10.0]
N_RUNS = len(CURRENTS) * len(REFRACTORY)
FAILED = {9: "ValueError: current too high: I=0.9", 10: "ValueError: current too high: I=1.0"}


def lif_run(traj):
    """Store a trace and a spike count per run; raise for high currents at tau_ref 5."""
    if traj.I > 0.85 and traj.tau_ref == 5.0:
        raise ValueError(f"current too high: I={traj.I}")
    traj.add_result("neuron.$", V=np.linspace(0.0, traj.I, 1000), nspikes=int(traj.I * 100),
                    comment="membrane potential and number of spikes")
    return traj.I * 2.0


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, pathlib.Path]:
    """The explored file, and files the command must refuse."""
    folder = tmp_path_factory.mktemp("cli")
    good = folder / "FiringRate.h5"
    env = ex.Environment("FiringRate", str(good), comment="LIF firing rates", progress=False)
    traj = env.trajectory
    traj.add_parameter("neuron.V_init", 0.25, comment="initial membrane potential")
    traj.add_parameter("neuron.I", 0.0, comment="applied current")
    traj.par.neuron.tau_V = 12.0, "membrane time constant in ms"
    traj.par.neuron.tau_ref = 5.0, "refractory period in ms"
    traj.add_parameter("neuron.kernel", np.arange(5000.0), comment="a long array")
    traj.add_config("seed_label", "lif-demo")
    traj.explore(ex.cartesian_product({"neuron.I": CURRENTS, "neuron.tau_ref": REFRACTORY},
                                      order=("neuron.tau_ref", "neuron.I")))
    with pytest.raises(ex.RunsFailedError):
        env.run(lif_run)
    traj.add_result("summary.rates", rates=np.array([1.5, 2.5]), comment="summary of rates")
    traj.store()
    env.close()

    two = folder / "two.h5"
    env = ex.Environment("A", str(two), progress=False)
    env.trajectory.add_parameter("x", 1.0)
    env.trajectory.explore({"x": [1.0, 2.0, 3.0]})
    env.run(lambda traj: traj.x * 10)
    env.close()
    other = ex.Trajectory("B", comment="not run yet")
    other.add_parameter("y", 1)
    other.store(str(two))
    other.close()

    text = folder / "notes.h5"
    text.write_text("not an HDF5 file\n")
    foreign = folder / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["data"] = np.arange(10)
    damaged = folder / "damaged.h5"
    damaged.write_bytes(good.read_bytes()[:4096])
    return {"good": good, "two": two, "text": text, "foreign": foreign, "damaged": damaged,
            "missing": folder / "missing.h5", "folder": folder}


def run(*args, script: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m explorer ARGS`` (or the installed ``explorer`` script)."""
    command = [SCRIPT] if script else [sys.executable, "-m", "explorer"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def refused(proc: subprocess.CompletedProcess | object) -> str:
    """Exit status 1, nothing on stdout, one ``error: ...`` line on stderr: that line."""
    code = proc.exit_code if hasattr(proc, "exit_code") else proc.returncode
    assert code == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# ---------------------------------------------------------------------- a good file
@pytest.mark.slow
def test_ls_with_the_installed_script(files):
    assert os.path.exists(SCRIPT), "the `explorer` console script is not installed"
    out = ok(run("ls", files["good"], script=True))
    assert re.search(r"FiringRate\s+22 runs \(20 completed, 2 failed\)\s+"
                     r"explored: neuron\.tau_ref, neuron\.I\s+# LIF firing rates", out)
    size = os.path.getsize(files["good"]) + sum(
        path.stat().st_size for path in files["good"].parent.glob("FiringRate.h5.segments/*"))
    assert f"{files['good']}: 1 trajectory, {cli.human_size(size)} on disk" in out


def test_show_prints_the_tree_with_values_and_comments(files):
    out = ok(run("show", files["good"]))
    lines = out.splitlines()
    assert lines[0] == "FiringRate  # LIF firing rates"
    assert lines[1] == "22 runs (20 completed, 2 failed); explored: neuron.tau_ref, neuron.I"
    assert re.search(r"^    V_init\s+0\.25\s+# initial membrane potential$", out, re.MULTILINE)
    assert re.search(r"^    tau_V\s+12\.0\s+# membrane time constant in ms$", out, re.MULTILINE)
    assert re.search(r"^    I\s+explored over 22 runs, 11 values: \[0\.0, 0\.1, 0\.2, .*\]"
                     r"\s+# applied current$", out, re.MULTILINE)
    assert "explored over 22 runs, 2 values: [5.0, 10.0]" in out
    assert re.search(r"kernel\s+ndarray float64 \(5000,\) \[0 1 \.\.\. 4998 4999\]\s+# a long",
                     out)
    assert re.search(r"^  seed_label\s+'lif-demo'$", out, re.MULTILINE)
    assert re.search(r"^    \$\s+per run: V, nspikes\s+# membrane potential and number of "
                     r"spikes$", out, re.MULTILINE)
    assert re.search(r"^    rates\s+# summary of rates$", out, re.MULTILINE)
    assert re.search(r"^      rates\s+ndarray float64 \(2,\) \[1\.5 2\.5\]$", out, re.MULTILINE)
    for branch in ("parameters", "config", "results"):
        assert branch in lines
    assert max(map(len, lines)) < 160  # no array dumped in full


def test_show_one_completed_run(files):
    out = ok(run("show", files["good"], "FiringRate", "--run", 13))
    assert out.splitlines()[0] == "FiringRate: run 13 of 22 (run_00000013)"
    assert re.search(r"^status\s+completed$", out, re.MULTILINE)
    assert re.search(r"^  neuron\.tau_ref\s+10\.0$", out, re.MULTILINE)
    assert re.search(r"^  neuron\.I\s+0\.2$", out, re.MULTILINE)
    assert re.search(r"^  return_value\s+0\.4$", out, re.MULTILINE)
    assert "results.neuron.run_00000013  # membrane potential and number of spikes" in out
    assert re.search(r"^  V\s+ndarray float64 \(1000,\) \[0 0\.\d+ \.\.\. 0\.\d+ 0\.2\]$", out,
                     re.MULTILINE)
    assert re.search(r"^  nspikes\s+20$", out, re.MULTILINE)
    assert "error" not in out


def test_show_one_failed_run(files):
    out = ok(run("show", files["good"], "--run", 9))
    assert re.search(r"^status\s+failed$", out, re.MULTILINE)
    assert re.search(rf"^error\s+{re.escape(FAILED[9])}$", out, re.MULTILINE)
    assert "(nothing stored: the run failed)" in out
    assert "Traceback (most recent call last)" in out and "in lif_run" in out


@pytest.mark.slow
def test_frame_to_csv_matches_to_frame(files):
    out_csv = files["folder"] / "runs.csv"
    assert ok(run("frame", files["good"], "-o", out_csv)) == ""
    traj = ex.load_trajectory(files["good"])
    expected = traj.to_frame()
    traj.close()
    written = pd.read_csv(out_csv, index_col="run")
    assert list(written.columns) == list(expected.columns)
    assert list(written.index) == list(range(N_RUNS))
    assert list(written["status"]) == list(expected["status"])
    for column in ("tau_ref", "I", "nspikes", "return_value", "duration"):
        np.testing.assert_array_equal(written[column].to_numpy(float),
                                      expected[column].to_numpy(float))
    assert written["error"].dropna().to_dict() == FAILED


@pytest.mark.slow
def test_failures_lists_the_errors(files):
    out = ok(run("failures", files["good"], "--traceback"))
    assert out.splitlines()[0] == "FiringRate: 2 of 22 runs failed"
    assert re.search(r"^run\s+neuron\.tau_ref\s+neuron\.I\s+error$", out, re.MULTILINE)
    for idx, error in FAILED.items():
        current = CURRENTS[idx]
        assert re.search(rf"^{idx}\s+5\.0\s+{current}\s+{re.escape(error)}$", out, re.MULTILINE)
        assert f"run {idx}:" in out
    assert out.count("Traceback (most recent call last)") == 2


@pytest.mark.slow
def test_sessions_lists_the_provenance(files):
    out = ok(run("sessions", files["good"]))
    assert out.splitlines()[0] == "FiringRate: 1 session(s)"
    assert "session 1" in out
    assert re.search(rf"^  pid\s+{os.getpid()}$", out, re.MULTILINE)  # the fixture ran here
    assert re.search(r"^  versions\s+\{.*'explorer': '0\.1\.0'", out, re.MULTILINE)


# ---------------------------------------------------------------------- refusals
REFUSALS = [
    (("ls", "{text}"), (r"'.*notes\.h5' cannot be opened as an HDF5 file \(file signature "
                        r"not found")),
    (("show", "{foreign}"), r"is an HDF5 file but not an explorer file"),
    (("frame", "{damaged}"), r"'.*damaged\.h5' cannot be opened as an HDF5 file"),
    (("failures", "{missing}"), r"no file '.*missing\.h5'"),
    (("sessions", "{good}", "Nope"), r"holds no trajectory named 'Nope'; it holds: FiringRate"),
    (("show", "{good}", "--run", "22"), r"has no run 22: it has 22 run\(s\), 0\.\.21"),
    (("frame", "{good}", "-o", "{folder}/runs.xyz"), r"must end in \.csv or \.parquet"),
]
REFUSAL_IDS = ["text", "foreign-hdf5", "damaged", "missing", "no-such-name", "bad-run",
               "bad-suffix"]
FAST_REFUSALS = ("text", "bad-run")   # the others run with the slow tests


@pytest.mark.parametrize("args, message", [
    pytest.param(*case, id=name, marks=() if name in FAST_REFUSALS else pytest.mark.slow)
    for case, name in zip(REFUSALS, REFUSAL_IDS)])
def test_refused_in_one_line(files, args, message):
    proc = run(*(arg.format(**files) for arg in args))
    assert re.search(message, refused(proc))
    assert not (files["folder"] / "runs.xyz").exists()


@pytest.mark.slow
def test_every_command_refuses_bad_files_and_names(files):
    # every subcommand, in its own process, on a text file, a foreign HDF5 file, a
    # missing file and a missing trajectory name (run four at a time)
    cases = [(command, bad) for command in ("ls", "show", "frame", "failures", "sessions")
             for bad in ("text", "foreign", "missing", "name")]
    expected = {"text": "cannot be opened as an HDF5 file", "foreign": "not an explorer file",
                "missing": "no file", "name": "holds no trajectory named 'Nope'"}
    for start in range(0, len(cases), 4):
        procs = []
        for command, bad in cases[start:start + 4]:
            args = [files["good"], "Nope"] if bad == "name" else [files[bad]]
            if command == "ls" and bad == "name":
                args = [files["good"], "--", "Nope"]  # ls takes no name: a usage error
            procs.append((command, bad, subprocess.Popen(
                [sys.executable, "-m", "explorer", command, *map(str, args)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        for command, bad, proc in procs:
            out, err = proc.communicate(timeout=120)
            assert "Traceback" not in out + err, (command, bad, err)
            if command == "ls" and bad == "name":
                assert proc.returncode == 2 and "Usage:" in err
                continue
            assert proc.returncode == 1, (command, bad, out, err)
            assert out == "" and len(err.splitlines()) == 1, (command, bad, err)
            assert err.startswith("error: ") and expected[bad] in err, (command, bad, err)


# ---------------------------------------------------------------------- in-process
def test_help_of_every_command_has_an_example():
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["--help"])
    assert result.exit_code == 0
    for command in ("ls", "show", "frame", "failures", "sessions"):
        assert command in result.output
        sub = runner.invoke(cli.cli, [command, "--help"])
        assert sub.exit_code == 0
        assert re.search(rf"Examples?:\n\s+explorer {command} hdf5/FiringRate\.h5", sub.output)


def test_two_trajectories_need_a_name(files):
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["ls", str(files["two"])])
    assert result.exit_code == 0, result.output
    assert re.search(r"^A\s+3 runs \(3 completed\)\s+explored: x$", result.stdout, re.MULTILINE)
    assert re.search(r"^B\s+1 run \(1 pending\)\s+explored: nothing\s+# not run yet$",
                     result.stdout, re.MULTILINE)
    assert "2 trajectories" in result.stdout
    assert "holds 2 trajectories (A, B)" in refused(
        runner.invoke(cli.cli, ["show", str(files["two"])]))
    shown = runner.invoke(cli.cli, ["frame", str(files["two"]), "A"])
    assert shown.exit_code == 0
    assert re.search(r"^2\s+3\.0\s+30\.0\s+completed", shown.stdout, re.MULTILINE)
    none = runner.invoke(cli.cli, ["failures", str(files["two"]), "B"])
    assert none.exit_code == 0 and none.stdout == "B: 0 of 1 run failed\n"


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None,
                    reason="pyarrow is installed")
def test_parquet_without_pyarrow_says_what_to_do(files):
    result = CliRunner().invoke(cli.cli, ["frame", str(files["good"]), "-o",
                                          str(files["folder"] / "runs.parquet")])
    assert "needs pyarrow: pip install pyarrow, or write a .csv" in refused(result)


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="needs pyarrow")
def test_parquet_with_pyarrow(files):
    out = files["folder"] / "runs.parquet"
    result = CliRunner().invoke(cli.cli, ["frame", str(files["good"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert list(pd.read_parquet(out)["status"]).count("failed") == 2


def test_brief_keeps_values_short():
    assert cli.brief(np.zeros((1000, 1000))).startswith("ndarray float64 (1000, 1000) [[0 0 ...")
    assert len(cli.brief(list(range(10 ** 5)))) <= cli.VALUE_WIDTH
    assert cli.brief(0.1 + 0.2) == "0.3" and cli.brief(5.0) == "5.0"
    assert cli.brief(np.float64(2.5)) == "2.5"
    assert cli.brief(pd.DataFrame({"a": [1, 2]})) == "DataFrame 2x1 [a]"
    assert cli.one_line("x (HDF5 error back trace\n\n  File a\n    why\n\nEnd of HDF5 error "
                        "back trace\n\nrest) y") == "x (why; rest) y"
