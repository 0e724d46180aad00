"""A full disk: a clear error, every committed run intact, and resume once there is space.

Each test mounts a small tmpfs of its own (root only; skipped otherwise) and fills
it with an exploration of incompressible per-run arrays. HDF5 does not report every
failed write, so these tests are what shows that explorer notices.

A write adds a segment to the file (``<file>.segments/``) under a temporary name,
renamed into place only once it is whole: a write that fails leaves the base and
the committed segments as they were, and no unfinished ``*.tmp`` file. The
stored bytes are read over every layer (``tests/layers.py``).
"""
from __future__ import annotations

import errno
import glob
import os
import pathlib
import subprocess
import time
import warnings

import h5py
import hdf5plugin  # noqa: F401  (the blosc filter, for h5py)
import numpy as np
import pytest

import explorer as ex
from layers import column_runs, layer_files, leftovers

pytestmark = pytest.mark.slow

SAMPLES = 2000  # 16 KB of random floats per run: blosc cannot shrink them


def _mount(directory: str, size: str, remount: bool = False) -> None:
    options = f"remount,size={size}" if remount else f"size={size}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", directory],
                   check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MB tmpfs; ``grow()`` gives it room again."""
    directory = str(tmp_path / "disk")
    os.mkdir(directory)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        _mount(directory, "8m")
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    try:
        yield directory, lambda: _mount(directory, "256m", remount=True)
    finally:
        subprocess.run(["umount", "-l", directory], check=False, capture_output=True)


def expected(idx: int) -> np.ndarray:
    return np.random.default_rng(idx).random(SAMPLES)


def noisy_run(traj):
    time.sleep(0.005)
    traj.add_result("out.$", data=expected(traj.x))
    return traj.x


def _check_stored(filename: str, n_runs: int | None = None) -> int:
    """Every completed run's array is exactly its own; the number of completed runs."""
    with warnings.catch_warnings():  # lock mode: segments that cannot be merged on a full disk
        warnings.simplefilter("ignore", UserWarning)
        traj = ex.load_trajectory(filename, "T")
    frame = traj.to_frame()
    completed = frame.index[frame["status"] == "completed"].tolist()
    for idx in completed:
        traj.set_run(idx)
        np.testing.assert_array_equal(traj.res.out.crun.data, expected(traj.x))
    if n_runs is not None:
        assert completed == list(range(n_runs))
        # every run stored once: one completed row over all layers' run tables (read
        # with plain h5py, as docs/storage.md tells), one real row in each column
        rows = []
        for layer in layer_files(filename):
            with h5py.File(layer, "r") as f:
                if "T/runs" in f:
                    rows.append(f["T/runs"][:])
        rows = np.concatenate(rows)
        done = np.sort(rows["idx"][rows["status"] == 1])
        np.testing.assert_array_equal(done, np.arange(n_runs))
        columns = column_runs(filename, "T")
        for column in ("/T/returns/value", "/T/results/out/$/data"):
            np.testing.assert_array_equal(np.sort(columns[column]), np.arange(n_runs),
                                          err_msg=column)
    traj.close()
    return len(completed)


@pytest.mark.parametrize("workers,storage", [(1, "queue"), (2, "queue"), (2, "lock")],
                         ids=["serial", "queue", "lock"])
def test_a_full_disk_stops_cleanly_and_resume_finishes(small_disk, workers, storage):
    directory, grow = small_disk
    filename = os.path.join(directory, "full.h5")
    with pytest.raises(ex.DiskFullError) as info:
        with ex.Environment("T", filename, progress=False, workers=workers,
                            storage=storage) as env:
            env.trajectory.add_parameter("x", 0)
            env.trajectory.explore({"x": list(range(20))})
            env.run(noisy_run)  # fits: these runs are committed
            env.trajectory.expand({"x": list(range(20, 1000))})  # 16 MB: does not fit
            env.run(noisy_run)
    error = info.value
    assert isinstance(error, OSError) and isinstance(error, ex.ExplorerError)
    assert error.errno == errno.ENOSPC
    message = str(error)
    assert "full" in message and filename in message
    assert "ex.Environment.resume(" in message and "are completed and stored" in message
    # nothing half-written is left on the full disk
    assert not glob.glob(os.path.join(directory, "**", "*.tmp"), recursive=True)
    committed = _check_stored(filename)
    assert committed >= 20

    grow()
    with ex.Environment.resume(filename, "T", progress=False, workers=workers,
                               storage=storage) as env:
        results = env.run(noisy_run)
    assert results == [(idx, idx) for idx in range(1000)]
    assert _check_stored(filename, 1000) == 1000
    assert leftovers(filename) == []


def test_storing_a_trajectory_on_a_full_disk_keeps_the_file(small_disk):
    directory, grow = small_disk
    filename = os.path.join(directory, "store.h5")
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 1.0)
    traj.add_result("small", values=np.arange(10.0))
    traj.store(filename)
    before = pathlib.Path(filename).read_bytes()
    layers = layer_files(filename)
    segments = f"{os.path.realpath(filename)}.segments"
    traj.add_derived_parameter("y", 2.0)  # the failed store rewrites the parameter tree too
    traj.add_result("big", values=np.random.default_rng(0).random(1_500_000))  # 12 MB
    with pytest.raises(ex.DiskFullError) as info:
        traj.store()
    assert "full" in str(info.value)
    assert pathlib.Path(filename).read_bytes() == before  # the file was not touched:
    assert layer_files(filename) == layers                # no segment was committed
    assert leftovers(filename) == []                      # the partial segment was removed
    # nothing else is left on the disk (the segments folder may stay, empty)
    assert sorted(os.listdir(directory)) in (["store.h5"], ["store.h5", "store.h5.segments"])
    assert not os.path.isdir(segments) or os.listdir(segments) == []
    grow()
    traj.store()
    again = ex.load_trajectory(filename)
    np.testing.assert_array_equal(again.res.big.values,
                                  np.random.default_rng(0).random(1_500_000))
    assert again.y == 2.0
