"""``ex.merge``: trajectories of several real files (cluster jobs) into one new file.

Inputs are written by real environments (in this process, and by two dask
workers in lock mode); the merged file is read back through the public API.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import subprocess
import sys

import distributed
import numpy as np
import pytest

import explorer as ex

FAILING_X = 3  # runs with x == 3 and y == 1.0 fail


def run_point(traj):
    """A run that stores an array, a scalar and a record; one point fails."""
    if traj.x == FAILING_X and traj.y == 1.0:
        raise ValueError(f"x={traj.x} fails on purpose")
    traj.add_result("neuron.$", V=np.full(50, traj.x * 10 + traj.y), n=traj.x,
                    comment="trace and count")
    return {"rate": traj.x * traj.y, "pid": os.getpid()}


def write_job(path: str, xs: list[int], *, tau: float = 5.0, run: bool = True,
              summary: int = 0, **options) -> None:
    """One cluster job's file: the grid x in ``xs`` times y in (1, 2)."""
    options.setdefault("progress", False)
    with ex.Environment(trajectory="Grid", filename=path, comment="a job of the grid",
                        on_error="record", **options) as env:
        traj = env.trajectory
        traj.add_parameter("x", 0, comment="explored x")
        traj.add_parameter("y", 0.0)
        traj.add_parameter("neuron.tau", tau, comment="fixed")
        traj.add_config("seed", 1)
        traj.explore(ex.cartesian_product({"x": xs, "y": [1.0, 2.0]}))
        if run:
            env.run(run_point)
        traj.add_result("summary", total=np.arange(3) + summary, comment="job summary")


def digest(path: str) -> dict[str, str]:
    """SHA-256 of a file and of everything beside it (its segments)."""
    found = {}
    base = pathlib.Path(path)
    for entry in [base, *sorted(base.parent.glob(base.name + ".*/*")),
                  *sorted(base.parent.glob(base.name + ".*"))]:
        if entry.is_file():
            found[str(entry)] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return found


@pytest.fixture
def jobs(tmp_path):
    """Three job files: x in 0..3, 3..5 (x=3 twice, with the point that fails) and 6..7."""
    paths = [str(tmp_path / f"job{k}.h5") for k in range(3)]
    write_job(paths[0], [0, 1, 2, 3])
    write_job(paths[1], [3, 4, 5], summary=10)
    write_job(paths[2], [6, 7], summary=20)
    return paths


def test_two_files_keep_every_run_with_its_data(jobs, tmp_path):
    before = {path: digest(path) for path in jobs[:2]}
    out = str(tmp_path / "all.h5")
    with pytest.warns(ex.combine.merge.MergeWarning, match="results.summary of .*job1.h5"):
        assert ex.merge(out, jobs[:2]) == 14
    traj = ex.load_trajectory(out)
    assert len(traj) == 14
    frame = traj.to_frame()
    assert frame["x"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5]
    assert frame["y"].tolist() == [1.0, 2.0] * 7
    completed = frame["status"] == "completed"
    assert frame.loc[completed, "rate"].tolist() == \
        (frame.loc[completed, "x"] * frame.loc[completed, "y"]).tolist()
    # per-run arrays under their new index; the second file's runs follow the first's
    for idx in range(14):
        x, y = frame.loc[idx, "x"], frame.loc[idx, "y"]
        if x == FAILING_X and y == 1.0:
            continue
        np.testing.assert_array_equal(traj.res.neuron.V[idx], np.full(50, x * 10 + y))
        assert traj.res.neuron[idx].n == x
    assert list(traj.res.neuron) == ["V", "n"]
    # failed runs stay failed, with their errors and tracebacks
    failures = traj.failures()
    assert failures.index.tolist() == [6, 8]
    assert (failures["error"] == f"ValueError: x={FAILING_X} fails on purpose").all()
    assert failures["traceback"].str.contains("run_point").all()
    # status, start and duration as each input had them
    for k, path in enumerate(jobs[:2]):
        source = ex.load_trajectory(path).to_frame()
        merged = frame.iloc[8 * k:8 * k + len(source)].reset_index(drop=True)
        assert merged["duration"].tolist() == source["duration"].tolist()
        assert merged["status"].tolist() == source["status"].tolist()
    # parameters and config of the inputs, results outside runs from the first input
    assert traj.par.neuron.tau == 5.0 and traj.conf.seed == 1
    assert traj.get("x").comment == "explored x"
    np.testing.assert_array_equal(traj.res.summary.total, np.arange(3))
    # provenance: each input's session, then the merge's own
    sessions = traj.sessions()
    assert sessions["runs"].tolist() == [8, 6, 14]
    assert sessions["merged"].iloc[-1] == jobs[:2]
    # the inputs are byte-identical afterwards
    assert {path: digest(path) for path in jobs[:2]} == before


def test_three_files_and_duplicate_points_kept_once(jobs, tmp_path):
    out = str(tmp_path / "all.h5")
    with pytest.warns(ex.combine.merge.MergeWarning):
        assert ex.merge(out, jobs, name="Grid") == 18
    with pytest.warns(ex.combine.merge.MergeWarning):
        assert ex.merge(tmp_path / "unique.h5", jobs, remove_duplicates=True) == 16
    traj = ex.load_trajectory(tmp_path / "unique.h5")
    frame = traj.to_frame()
    points = list(zip(frame["x"], frame["y"]))
    assert points == [(x, y) for x in range(8) for y in (1.0, 2.0)]
    assert traj.failures().index.tolist() == [6]  # the failing point, once
    np.testing.assert_array_equal(traj.res.neuron.V[15], np.full(50, 72.0))


def test_a_completed_duplicate_wins_over_a_failed_or_pending_one(tmp_path):
    first, second = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    write_job(first, [1, 2], run=False)  # every run pending
    write_job(second, [2, 3])
    with pytest.warns(ex.combine.merge.MergeWarning):
        ex.merge(tmp_path / "out.h5", [first, second], remove_duplicates=True)
    traj = ex.load_trajectory(tmp_path / "out.h5")
    frame = traj.to_frame()
    assert list(zip(frame["x"], frame["y"])) == [(1, 1.0), (1, 2.0), (2, 1.0), (2, 2.0),
                                                  (3, 1.0), (3, 2.0)]
    assert frame["status"].tolist() == ["pending", "pending", "completed", "completed",
                                        "failed", "completed"]
    np.testing.assert_array_equal(traj.res.neuron.V[3], np.full(50, 22.0))


def test_pending_runs_of_a_merged_file_resume(tmp_path):
    first, second = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    write_job(first, [0, 1])
    write_job(second, [4, 5], run=False)  # a job that never ran
    out = str(tmp_path / "out.h5")
    with pytest.warns(ex.combine.merge.MergeWarning):
        ex.merge(out, [first, second])
    env = ex.Environment.resume(out, "Grid", progress=False)
    with env:
        values = env.run(run_point)
    assert [idx for idx, _ in values] == list(range(8))
    assert [value["rate"] for _, value in values] == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 5.0, 10.0]
    sessions = ex.load_trajectory(out).sessions()
    assert sessions["runs"].tolist() == [4, 8, 4]  # a's env.run, the merge, the resume


def test_a_differing_parameter_is_named_and_nothing_is_written(tmp_path):
    first, second = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    write_job(first, [0, 1])
    write_job(second, [2, 3], tau=7.5)
    out = tmp_path / "out.h5"
    with pytest.raises(ex.IncompatibleTrajectoriesError,
                       match=r"parameter 'parameters.neuron.tau' differs: 5.0 in .*a.h5.*, "
                             r"7.5 in .*b.h5"):
        ex.merge(out, [first, second])
    assert not any(name.startswith(("out.h5", ".out.h5")) for name in os.listdir(tmp_path))


def test_other_explored_parameters_are_refused(tmp_path):
    first, second = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    write_job(first, [0, 1])
    with ex.Environment(trajectory="Grid", filename=second, progress=False) as env:
        traj = env.trajectory
        traj.add_parameter("x", 0, comment="explored x")
        traj.add_parameter("y", 0.0)
        traj.add_parameter("neuron.tau", 5.0, comment="fixed")
        traj.add_config("seed", 1)
        traj.explore({"x": [5, 6]})
    with pytest.raises(ex.IncompatibleTrajectoriesError, match="explores parameters.x, "):
        ex.merge(tmp_path / "out.h5", [first, second])


def test_bad_inputs_give_clear_errors_and_write_nothing(jobs, tmp_path):
    out = tmp_path / "out.h5"
    text = tmp_path / "notes.txt"
    text.write_text("not HDF5\n")
    with pytest.raises(ex.FileFormatError, match="notes.txt"):
        ex.merge(out, [jobs[0], str(text)])
    with pytest.raises(ex.FileFormatError, match="missing.h5.*does not exist"):
        ex.merge(out, [jobs[0], str(tmp_path / "missing.h5")])
    with pytest.raises(ex.TrajectoryNotFoundError, match="no trajectory named 'Other'"):
        ex.merge(out, jobs[:2], name="Other")
    with pytest.raises(ValueError, match="given twice"):
        ex.merge(out, [jobs[0], jobs[0]])
    with pytest.raises(ValueError, match="at least one input"):
        ex.merge(out, [])
    assert not any(name.startswith(("out.h5", ".out.h5")) for name in os.listdir(tmp_path))
    out.write_bytes(b"precious")
    with pytest.raises(ex.OutputExistsError, match="out.h5.*exists already"):
        ex.merge(out, jobs[:2])
    assert out.read_bytes() == b"precious"


def test_pickled_items_are_copied_only_when_allowed(tmp_path):
    paths = [str(tmp_path / f"p{k}.h5") for k in range(2)]
    for k, path in enumerate(paths):
        with ex.Environment(trajectory="P", filename=path, progress=False,
                            allow_pickle=True) as env:
            env.trajectory.add_parameter("x", 0)
            env.trajectory.explore({"x": [2 * k, 2 * k + 1]})
            env.run(pickled_result)
    with pytest.raises(ex.UnsafeDataError):
        ex.merge(tmp_path / "out.h5", paths)
    assert not (tmp_path / "out.h5").exists()
    ex.merge(tmp_path / "out.h5", paths, allow_pickle=True)
    traj = ex.load_trajectory(tmp_path / "out.h5", allow_pickle=True)
    assert [traj.res.obj[idx].thing for idx in range(4)] == [Thing(x) for x in range(4)]


class Thing:
    """An object only pickle can store."""

    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return isinstance(other, Thing) and other.x == self.x


def pickled_result(traj):
    traj.add_result("obj.$", thing=Thing(traj.x))


@pytest.mark.slow
def test_files_written_by_the_workers_of_one_cluster_job(tmp_path):
    """Each job's file written by two dask workers storing their own runs (lock mode)."""
    paths = [str(tmp_path / f"job{k}.h5") for k in range(2)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        write_job(paths[0], list(range(0, 20)), client=client, storage="lock")
        write_job(paths[1], list(range(20, 40)), client=client, storage="lock")
        pids = set(client.run(os.getpid).values())
    with pytest.warns(ex.combine.merge.MergeWarning):
        assert ex.merge(tmp_path / "out.h5", paths) == 80
    traj = ex.load_trajectory(tmp_path / "out.h5")
    frame = traj.to_frame()
    assert frame["x"].tolist() == [x for x in range(40) for _ in (1.0, 2.0)]
    assert set(frame["pid"].dropna().astype(int)) == pids  # runs of both workers
    assert traj.failures().index.tolist() == [2 * FAILING_X]
    for idx in (0, 41, 79):
        x, y = frame.loc[idx, "x"], frame.loc[idx, "y"]
        np.testing.assert_array_equal(traj.res.neuron.V[idx], np.full(50, x * 10 + y))


@pytest.mark.slow
def test_the_command_line_merges(jobs, tmp_path):
    out = tmp_path / "cli.h5"
    done = subprocess.run([sys.executable, "-m", "explorer", "merge", str(out), *jobs[:2],
                           "--remove-duplicates"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "12 runs" in done.stdout
    assert len(ex.load_trajectory(out)) == 12
    again = subprocess.run([sys.executable, "-m", "explorer", "merge", str(out), *jobs[:2]],
                           capture_output=True, text=True)
    assert again.returncode == 1
    assert again.stderr.startswith("error: ") and "exists already" in again.stderr
    assert "Traceback" not in again.stderr


def test_trajectories_exploring_nothing_merge_only_into_one_run(tmp_path):
    paths = [str(tmp_path / f"single{k}.h5") for k in range(3)]
    for k, path in enumerate(paths):
        with ex.Environment(trajectory="One", filename=path, progress=False,
                            on_error="record") as env:
            env.trajectory.add_parameter("x", 4)
            env.run(run_single, fail=k == 0)
    with pytest.raises(ex.IncompatibleTrajectoriesError, match="explore nothing.*"
                       "remove_duplicates=True"):
        ex.merge(tmp_path / "all.h5", paths)
    assert not (tmp_path / "all.h5").exists()
    assert ex.merge(tmp_path / "once.h5", paths, remove_duplicates=True) == 1
    traj = ex.load_trajectory(tmp_path / "once.h5")
    assert len(traj) == 1
    assert traj.to_frame()["status"].tolist() == ["completed"]  # the first completed run


def run_single(traj, fail):
    if fail:
        raise ValueError("the first job's run fails")
    return traj.x * 2
