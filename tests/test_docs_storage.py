"""docs/storage.md, "Reading with h5py": its code runs, and reads what explorer reads.

The test builds, in its own directory, the file the block reads
(``hdf5/FiringRate.h5``, trajectory ``FiringRate``) with its data spread over
several layers, the way real use spreads it: an exploration, then a resumed one
that expands the grid and in which run 13 fails, then a resume that runs it
again (so run 13 has two rows in the run tables and its values sit in a later
layer than the others), and ``traj.store()`` of results outside runs. The file
holds more than 4 MB, so that its commits stay segments (smaller files are
merged into one after every commit) until one of the stores merges 8 of them
(a compaction); the segments that merge replaced are then put back beside the
file, as a crash between the merge's commit and their removal leaves them, and
the block must skip them. Then it runs the block and compares what it computed
with what ``ex.load_trajectory`` gives.
"""
from __future__ import annotations

import json
import os
import pathlib
import re

import h5py
import numpy as np

import explorer as ex
from layers import layer_files, run_rows

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "storage.md"
FILENAME, NAME = "hdf5/FiringRate.h5", "FiringRate"
SAMPLES = 1000  # 8 KB rows: stored as compressed chunks, with padding rows (run -1)
NOISE = 700_000  # 5.6 MB of random floats (blosc shrinks them little)
FAILING: set[int] = set()


def run_neuron(traj):
    if traj.idx in FAILING:
        raise RuntimeError(f"run {traj.idx} fails this time")
    V = np.random.default_rng(traj.idx).normal(traj.I, 1.0, SAMPLES)
    nspikes = int(10 * traj.I + traj.tau_ref)
    traj.add_result("neuron.$", V=V, nspikes=nspikes,
                    comment="membrane potential and the number of spikes")
    return nspikes


def code_blocks(section: str) -> list[str]:
    """The python code blocks of a section (``## <section>``) of docs/storage.md."""
    text = DOC.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end >= 0 else len(text)]
    return re.findall(r"^```python\n(.*?)^```", body, flags=re.S | re.M)


def _segment_files(folder: str) -> dict[str, bytes]:
    return {name: pathlib.Path(folder, name).read_bytes() for name in os.listdir(folder)
            if name.endswith(".h5")} if os.path.isdir(folder) else {}


def build() -> list[str]:
    """Write the file; the names of the merged segments put back beside it."""
    with ex.Environment(NAME, FILENAME, progress=False, overwrite_file=True) as env:
        traj = env.trajectory
        traj.add_parameter("neuron.I", 0.0, comment="applied current")
        traj.add_parameter("neuron.tau_ref", 5.0)
        traj.explore(ex.cartesian_product({"neuron.I": [0.0, 0.25, 0.5, 0.75, 1.0],
                                           "neuron.tau_ref": [5.0, 10.0]},
                                          order=("neuron.tau_ref", "neuron.I")))
        # a file of up to 4 MB is merged into one file after every commit: this one
        # is larger, so its later commits stay segments until 8 of them are merged
        traj.add_result("stimulus.noise", noise=np.random.default_rng(0).random(NOISE))
        env.run(run_neuron)
    # results outside runs, one store (one commit) each, until one merges segments
    folder = f"{os.path.realpath(FILENAME)}.segments"
    traj = ex.load_trajectory(FILENAME, NAME)
    merged: dict[str, bytes] = {}
    for number in range(20):
        before = _segment_files(folder)
        traj.add_result(f"notes.n{number}", number=number, comment="a note")
        traj.store()
        merged = {name: data for name, data in before.items()
                  if not os.path.exists(os.path.join(folder, name))}
        if merged:
            break
    assert merged, "no store merged segments"
    traj.close()
    FAILING.add(13)
    try:
        with ex.Environment.resume(FILENAME, NAME, progress=False, on_error="record") as env:
            env.trajectory.expand({"neuron.I": [1.5, 2.0, 2.5] * 2,
                                   "neuron.tau_ref": [5.0] * 3 + [10.0] * 3})
            results = env.run(run_neuron)                  # run 13's failure recorded
        assert [idx for idx, _ in results] == [idx for idx in range(16) if idx != 13]
    finally:
        FAILING.clear()
    with ex.Environment.resume(FILENAME, NAME, progress=False) as env:
        assert [idx for idx, _ in env.run(run_neuron)] == list(range(16))
    traj = ex.load_trajectory(FILENAME, NAME)
    traj.add_result("summary.total", total=42, comment="a result outside runs")
    traj.store()
    traj.close()
    # what a crash right after the merge's commit leaves (had no environment removed it)
    for name, data in merged.items():
        pathlib.Path(folder, name).write_bytes(data)
    return sorted(name[:-3] for name in merged)


def test_the_h5py_block_reads_what_explorer_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    restored = build()
    layers = layer_files(FILENAME)
    assert len(layers) >= 2, "the file has no segment besides its base"
    folder = f"{layers[0]}.segments"
    assert all(os.path.exists(f"{folder}/{name}.h5") and f"{folder}/{name}.h5" not in layers
               for name in restored)
    # the data is spread: run tables in several layers, run 13 in two rows of them
    with_runs = []
    for layer in layers:
        with h5py.File(layer, "r") as f:
            if f"{NAME}/runs" in f and len(f[f"{NAME}/runs"]):
                with_runs.append(layer)
    assert len(with_runs) >= 2, "the runs are all in one layer"
    assert run_rows(FILENAME, NAME)["idx"].tolist().count(13) == 2

    blocks = code_blocks("Reading with h5py")
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], f"{DOC}: Reading with h5py", "exec"), namespace)

    # it found the layers tests/layers.py finds: the segments put back are skipped
    found = [namespace["real"]] + [f"{folder}/{name}.h5" for name in namespace["names"]
                                   if name not in namespace["gone"]]
    assert found == layers and len(namespace["layers"]) == len(layers)
    assert set(restored) <= namespace["gone"]
    traj = ex.load_trajectory(FILENAME, NAME)
    frame = traj.to_frame()
    assert namespace["completed"] == \
        frame.index[frame["status"] == "completed"].tolist() == list(range(16))
    assert namespace["status"][13] == 1               # its failed row came first
    np.testing.assert_array_equal(namespace["V13"], traj.res.neuron.run_00000013.V)
    np.testing.assert_array_equal(namespace["V13"],
                                  np.random.default_rng(13).normal(1.5, 1.0, SAMPLES))
    nspikes = {int(run): int(value) for run, value in namespace["nspikes"].items()}
    assert nspikes == {idx: int(frame["nspikes"][idx]) for idx in range(16)} == \
        {idx: int(10 * frame["I"][idx] + frame["tau_ref"][idx]) for idx in range(16)}
    assert [namespace["I"][run] for run in range(len(traj))] == traj.get("neuron.I").range
    # the attributes of the last layer holding them: earlier ones say 10 runs
    attrs = namespace["attrs"]
    assert attrs["n_runs"] == attrs["explored_runs"] == len(traj) == 16
    states = []
    for layer in layers:
        with h5py.File(layer, "r") as f:
            if NAME in f and "uid" in f[NAME].attrs:
                states.append((f[NAME].attrs["uid"], int(f[NAME].attrs["n_runs"])))
    assert {uid for uid, _ in states} == {attrs["uid"]} and states[0][1] == 10
    assert json.loads(attrs["explored"]) == ["parameters.neuron.tau_ref", "parameters.neuron.I"]
    assert traj.res.summary.total.total == 42 and traj.res.notes.n0.number == 0
    traj.close()
    # the block had padding rows to skip
    padding = []
    for layer in layers:
        with h5py.File(layer, "r") as f:
            column = f.get(f"{NAME}/results/neuron/$/V", {})
            padding += [(column[seg]["runs"][:] == -1).any() for seg in column]
    assert any(padding)
