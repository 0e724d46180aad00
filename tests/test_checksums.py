"""explorer's own checksums (attribute ``crc``): damage and edits are reported, older files read.

The damaged-files suite (``test_damaged_files.py``) flips bytes everywhere; here
the checksum's contract is checked directly on real files: a value or a name
changed outside explorer is a ``FileFormatError`` naming the file and the node,
and a file without checksums (as older explorer wrote) reads, and can be
written again, as before.
"""
from __future__ import annotations

import glob
import pathlib
import shutil
import types

import h5py
import hdf5plugin  # noqa: F401 - h5py reads the blosc-compressed datasets
import numpy as np
import pandas as pd
import pytest

import explorer as ex


def _run(traj):
    traj.add_result("sim.$", trace=np.arange(5.0) * traj.x, label=f"run {traj.x}")
    return traj.x * 2


@pytest.fixture()
def stored(tmp_path) -> pathlib.Path:
    path = tmp_path / "data.h5"
    with ex.Environment("T", filename=str(path), progress=False) as env:
        traj = env.trajectory
        traj.add_parameter("x", 1.0)
        traj.add_parameter("kinds.word", "spike", comment="a word")
        traj.add_parameter("kinds.small", np.arange(6).reshape(2, 3))
        traj.add_parameter("kinds.seq", [1, "a", 2.0])
        traj.explore({"x": [1.0, 2.0, 3.0]})
        traj.add_result("summary", frame=pd.DataFrame({"a": [1.0, 2.0]}), note="kept")
        env.run(_run)
    return path


def _contents(path: pathlib.Path) -> tuple:
    traj = ex.load_trajectory(str(path), "T", load="all")
    parameters = {name: repr(p.default) for name, p in traj.parameters_dict().items()}
    frame = traj.to_frame().drop(columns=["duration"])
    traj.set_run(1)
    trace = traj.res.sim.crun.trace.tolist()
    traj.restore_default()
    return parameters, frame.to_dict(), trace, traj.res.summary.note, \
        traj.res.summary.frame.to_dict()


def _strip_checksums(path: pathlib.Path) -> int:
    """Remove every ``crc`` and the root's list of trajectories, as older explorer wrote."""
    removed = []
    with h5py.File(path, "r+") as handle:
        def strip(name, obj):
            if "crc" in obj.attrs:
                del obj.attrs["crc"]
                removed.append(name)
        handle.visititems(strip)
        del handle.attrs["crc"], handle.attrs["trajectories"]
    return len(removed)


def test_every_node_explorer_reads_is_sealed(stored):
    unsealed = []
    with h5py.File(stored, "r") as handle:
        assert "crc" in handle.attrs and handle.attrs["trajectories"] == b'["T"]'

        def check(name, obj):
            meaning = "explorer_node" in obj.attrs or "kind" in obj.attrs or \
                "encoding" in obj.attrs
            if meaning and "crc" not in obj.attrs:
                unsealed.append(name)
        handle.visititems(check)
    assert not unsealed, unsealed


@pytest.mark.parametrize("change, node", [
    (lambda h: h["T/parameters/kinds/small"].__setitem__((0, 0), 99), "parameters/kinds/small"),
    (lambda h: h["T/parameters/kinds/word"].attrs.__setitem__("comment", "edited"),
     "parameters/kinds/word"),
    (lambda h: h.move("T/parameters/kinds/word", "T/parameters/kinds/ward"), "parameters/kinds"),
    (lambda h: h["T"].attrs.__setitem__("explorer_node", "group"), "the list of trajectories"),
    (lambda h: h["T/results/sim/$/label/s0"].attrs.__setitem__("kind", "bytes"), "label/s0"),
])
def test_a_change_outside_explorer_is_reported(stored, change, node):
    with h5py.File(stored, "r+") as handle:
        change(handle)
    with pytest.raises(ex.FileFormatError, match=r"data\.h5") as caught:
        _contents(stored)
    assert node in str(caught.value)


def test_files_without_checksums_read_and_are_written_again(stored, tmp_path):
    older = tmp_path / "older.h5"
    shutil.copyfile(stored, older)
    assert _strip_checksums(older) > 20
    assert _contents(older) == _contents(stored)  # an older file reads as before
    stored = older
    traj = ex.load_trajectory(str(stored), "T")
    traj.add_result("later", value=3)
    traj.store()
    with ex.Environment.resume(str(stored), "T", progress=False) as env:
        env.trajectory.expand({"x": [4.0]})
        env.run(_run)
    again = ex.load_trajectory(str(stored), "T", load="all")
    assert again.res.later.value == 3 and len(again) == 4
    assert again.to_frame()["x"].tolist() == [1.0, 2.0, 3.0, 4.0]
    # what the new writes touched is sealed now, in the layer holding it last
    assert "crc" in _latest(stored, "T").attrs
    assert "crc" in _latest(stored, "T/results/later/value").attrs
    assert "crc" not in _latest(stored, "T/results/summary/note").attrs


def _latest(path, node: str) -> dict:
    """The attributes of ``node`` in the last of the file's layers (base, segments) holding it."""
    layers = [str(path)] + sorted(glob.glob(f"{path}.segments/*.h5"))
    found = None
    for layer in layers:
        with h5py.File(layer, "r") as handle:
            if node in handle:
                found = dict(handle[node].attrs)
    assert found is not None, node
    return types.SimpleNamespace(attrs=found)
