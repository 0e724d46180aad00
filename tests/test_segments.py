"""Segments and compaction on real files: what each commit adds, how layers merge.

- A commit adds one segment holding what it adds; the base is not rewritten.
- Merges keep a file to a few layers: at most ``FAN_IN - 1`` segments per size class.
- A lock-mode chunk written twice (its worker died after writing) is read once.
- A file's content reads the same before and after every merge.
"""
from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest

import explorer as ex
from explorer.records import RunRecord, RunStatus
from explorer.storage.hdf5.compaction import FAN_IN, compact, level
from explorer.storage.hdf5.encode import EncodeSettings
from explorer.storage.hdf5.store import SegmentWriter
from explorer.storage.lockfile import claimed
from layers import layer_files, run_rows

BIG = np.random.default_rng(0).random(1_000_000)  # 8 MB: small commits stay segments


def _big_file(path: str) -> ex.Trajectory:
    traj = ex.Trajectory("S")
    traj.add_parameter("x", 0)
    traj.explore({"x": list(range(4))})
    traj.add_result("big", values=BIG)
    traj.store(path)
    return traj


def _contents(path: str) -> dict:
    traj = ex.load_trajectory(path, "S", load="all")
    frame = traj.to_frame()
    notes = {name: traj.get(f"results.notes.{name}").value
             for name in traj.res.notes.children} if "notes" in traj.res.children else {}
    return {"frame": frame.drop(columns=["duration"]).to_dict(), "notes": notes,
            "x": traj.get("x").range}


def test_a_commit_adds_a_segment_and_leaves_the_base_alone(tmp_path):
    path = str(tmp_path / "s.h5")
    traj = _big_file(path)
    base = os.stat(path)
    traj.add_result("notes.n0", value=0)
    traj.store()
    layers = layer_files(path)
    assert len(layers) == 2 and os.path.getsize(layers[1]) < 200_000
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == \
        (base.st_ino, base.st_mtime_ns, base.st_size)
    assert _contents(path)["notes"] == {"n0": 0}


@pytest.mark.slow
def test_merges_keep_few_layers_and_change_no_value(tmp_path):
    path = str(tmp_path / "s.h5")
    traj = _big_file(path)
    seen = []
    for number in range(3 * FAN_IN * FAN_IN // 2):
        traj.add_result(f"notes.n{number}", value=number)
        traj.store()
        levels = [level(os.path.getsize(layer)) for layer in layer_files(path)[1:]]
        for size_class in set(levels):  # at most FAN_IN - 1 segments of a size wait
            assert levels.count(size_class) < FAN_IN, levels
        seen.append(len(levels))
    assert max(seen) == FAN_IN - 1 and min(seen[FAN_IN:]) < FAN_IN - 1  # merges happened
    contents = _contents(path)
    assert contents["notes"] == {f"n{n}": n for n in range(3 * FAN_IN * FAN_IN // 2)}
    with claimed(path, "the test"):
        assert compact(path, everything=True)
    assert layer_files(path) == [os.path.realpath(path)]
    assert _contents(path) == contents


def _batch(runs: list[int], value: float):
    encoder = EncodeSettings().encoder()
    for idx in runs:
        encoder.add(RunRecord(idx, RunStatus.COMPLETED, value=value + idx, started=1.0,
                              duration=0.5))
    return encoder.finish()


def test_a_chunk_written_again_replaces_its_first_segment(tmp_path):
    path = str(tmp_path / "s.h5")
    _big_file(path)
    writer = SegmentWriter(path, "S", EncodeSettings())
    writer(_batch([0, 1], 10.0), "token-000000000000-2")
    writer(_batch([2, 3], 20.0), "token-000000000002-2")
    writer(_batch([0, 1], 30.0), "token-000000000000-2")  # the first chunk run again
    rows = ex.load_trajectory(path, "S").to_frame()
    assert rows["return_value"].tolist() == [30.0, 31.0, 22.0, 23.0]
    assert sorted(run_rows(path, "S")["idx"].tolist()) == [0, 1, 2, 3]  # once each


def test_an_environment_removes_what_a_dead_unreaped_writer_left(tmp_path):
    # a writer killed with its parent (a driver's workers) may stay a zombie a while
    path = str(tmp_path / "z.h5")
    with ex.Environment("Z", path, progress=False) as env:
        env.trajectory.add_parameter("x", 0)
        env.run(lambda traj: traj.x)
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # dead, not reaped
    try:
        time.sleep(0.2)
        host = socket.gethostname().replace("-", "_").replace(os.sep, "_")
        os.makedirs(f"{os.path.realpath(path)}.segments", exist_ok=True)
        left = os.path.join(f"{os.path.realpath(path)}.segments", f"{host}-{pid}-1-0.tmp")
        with open(left, "wb") as stream:
            stream.write(b"\x89HDF\r\n\x1a\n" + bytes(100))
        ex.Environment.resume(path, "Z", progress=False).close()
        assert not os.path.exists(left)
    finally:
        os.waitpid(pid, 0)


def test_per_run_items_added_while_a_store_waits_for_its_commit_are_kept(tmp_path):
    # inside commits_every a store is committed later: what is added meanwhile stays
    # in memory until a store hands it over, and the commit forgets only what it holds
    path = str(tmp_path / "m.h5")
    with ex.Environment("M", path, progress=False) as env:
        traj = env.trajectory
        traj.add_parameter("x", 0)
        traj.explore({"x": [0, 1, 2]})
        env.run(lambda view: view.x)
        with env.commits_every(60):
            traj.set_run(0)
            traj.add_result("extra.$", v=10)
            traj.store()                       # handed over, committed with the block
            traj.set_run(1)
            traj.add_result("extra.$", v=11)   # after the hand-over, before the commit
            traj.restore_default()
    loaded = ex.load_trajectory(path)
    assert [loaded.res.extra[loaded.run_names[idx]].v for idx in (0, 1)] == [10, 11]
