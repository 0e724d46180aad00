"""Files from elsewhere run no code: pickles hidden in HDF5 attributes and object arrays.

PyTables unpickles, by itself, every bytes attribute ending in ``.`` and every row of
a ``VLArray`` marked ``PSEUDOATOM = "object"``. Each file here is a real explorer
file into which h5py put pickles whose loading would create a marker file; every
public entry point that opens a file must then give values or an ``ExplorerError``,
and the marker must never appear.
"""
from __future__ import annotations

import pathlib
import pickle
import shutil
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest

import explorer as ex


class _Marker:
    """Unpickling this creates ``path``: proof that code from the file ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _pickle(marker: pathlib.Path) -> np.bytes_:
    payload = pickle.dumps(_Marker(str(marker)), protocol=0)
    assert payload.endswith(b".")  # what PyTables takes for a pickle
    return np.bytes_(payload)


def _run(traj):
    if traj.x == 3:
        raise ValueError("three fails")
    traj.add_result("neuron.$", V=np.arange(5.0) * traj.x, label=f"run {traj.x}",
                    n=traj.x)
    return {"rate": traj.x / 2}


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> pathlib.Path:
    """A file with every kind of node explorer writes."""
    path = tmp_path_factory.mktemp("untrusted") / "original.h5"
    traj = ex.Trajectory("T", comment="a trajectory")
    traj.add_parameter("x", 0, comment="explored")
    traj.add_parameter("kinds.text", "hello")
    traj.add_parameter("kinds.array", np.arange(4.0))
    traj.add_parameter("kinds.mixed", [1, "a", 2.0])
    traj.add_config("seed", 3)
    traj.explore({"x": list(range(6))})
    with ex.Environment(traj, str(path), progress=False, on_error="record") as env:
        env.run(_run)
        env.trajectory.add_result("summary.table", frame=pd.DataFrame({"a": [1, 2]}),
                                  comment="a frame")
    return path


def _attributes(path: pathlib.Path) -> dict[str, list[str]]:
    """``{attribute name: [node paths]}`` of every attribute in the file."""
    found: dict[str, list[str]] = {}

    def collect(node: str, obj) -> None:  # visititems stops at the first non-None
        for key in obj.attrs:
            found.setdefault(key, []).append(node)

    with h5py.File(path, "r") as f:
        collect("/", f["/"])
        f.visititems(lambda node, obj: collect("/" + node, obj))
    return found


def _variants(original: pathlib.Path, directory: pathlib.Path,
              marker: pathlib.Path) -> dict[str, pathlib.Path]:
    """Copies of ``original``, each with pickles in another place."""
    variants = {}

    def variant(label: str, change) -> None:
        path = directory / f"{len(variants):03d}.h5"
        shutil.copyfile(original, path)
        with h5py.File(path, "r+") as f:
            change(f)
        variants[label] = path

    for name, nodes in sorted(_attributes(original).items()):
        def replace(f, name=name, nodes=nodes):
            for node in nodes:
                f[node].attrs[name] = _pickle(marker)
        variant(f"attribute {name} on {len(nodes)} node(s)", replace)

    def everywhere(f):
        f["/"].attrs["extra"] = _pickle(marker)
        f.visititems(lambda node, obj: obj.attrs.__setitem__("extra", _pickle(marker)))
        # (__setitem__ returns None, so every node is visited)
    variant("an extra attribute on every node", everywhere)

    with h5py.File(original, "r") as f:
        arrays: list[str] = []
        f.visititems(lambda node, obj: None if not isinstance(obj, h5py.Dataset) or
                     obj.attrs.get("CLASS") != b"VLARRAY" else arrays.append("/" + node))
    assert arrays, "the file has variable-length arrays to replace"
    for node in arrays:
        def objects(f, node=node):
            attrs = dict(f[node].attrs)
            del f[node]
            data = f.create_dataset(node, (1,), dtype=h5py.vlen_dtype(np.uint8))
            data[0] = np.frombuffer(pickle.dumps(_Marker(str(marker))), dtype=np.uint8)
            for key, value in attrs.items():
                data.attrs[key] = value
            data.attrs["PSEUDOATOM"] = np.bytes_(b"object")
        variant(f"object array at {node}", objects)
    return variants


def _open_every_way(path: pathlib.Path) -> list[str]:
    """Use ``path`` through every public entry point; what each gave."""
    outcomes = []

    def attempt(what, action):
        try:
            with warnings.catch_warnings():  # PyTables warns of attributes it cannot use
                warnings.simplefilter("ignore")
                action()
            outcomes.append(f"{what}: ok")
        except ex.ExplorerError as error:
            outcomes.append(f"{what}: {type(error).__name__}")

    filename = str(path)
    attempt("trajectory_names", lambda: ex.trajectory_names(filename))

    def load_all():
        traj = ex.load_trajectory(filename, "T", load="all")
        traj.to_frame()
        traj.res.summary.table.frame
    attempt("load_trajectory(load='all')", load_all)

    def lazy():
        traj = ex.load_trajectory(filename, "T")
        traj.to_frame()
        for idx in traj.iter_runs():
            traj.res.neuron.crun.V
        traj.add_result("summary.note", text="checked")
        traj.store()
    attempt("load_trajectory + to_frame + results + store", lazy)

    def resume():
        with ex.Environment.resume(filename, "T", progress=False, on_error="record") as env:
            env.run(_run)
    attempt("Environment.resume + run", resume)
    return outcomes


@pytest.mark.slow
def test_pickles_in_attributes_and_object_arrays_run_no_code(original, tmp_path):
    marker = tmp_path / "code-ran"
    variants = _variants(original, tmp_path, marker)
    names = {label.split()[1] for label in variants if label.startswith("attribute")}
    # every attribute explorer reads is among those replaced
    assert {"explorer_format", "explorer_node", "kind", "comment", "explored",
            "explored_runs", "n_runs", "uid", "encoding", "dtype", "shape"} <= names
    refused = 0
    for label, path in variants.items():
        outcomes = _open_every_way(path)
        assert not marker.exists(), f"{label}: unpickling ran code ({outcomes})"
        refused += sum(not outcome.endswith(": ok") for outcome in outcomes)
    assert len(variants) >= 30
    assert refused > 0  # pickles where explorer expects its own attributes are refused


def test_a_pickled_attribute_reads_as_its_bytes_not_as_the_object(original, tmp_path):
    path = tmp_path / "comment.h5"
    shutil.copyfile(original, path)
    marker = tmp_path / "code-ran"
    with h5py.File(path, "r+") as f:
        f["T/parameters/x"].attrs["comment"] = _pickle(marker)
    with pytest.raises(ex.FileFormatError, match="parameters/x"):  # its checksum fails
        ex.load_trajectory(str(path))
    with h5py.File(path, "r+") as f:  # as in a file without checksums
        del f["T/parameters/x"].attrs["crc"]
    traj = ex.load_trajectory(str(path))
    assert traj.get("x").comment == bytes(_pickle(marker)).decode("ascii")
    assert traj.x == 0 and len(traj) == 6
    assert not marker.exists()


def test_pytables_outside_explorer_is_left_as_it_was(original, tmp_path):
    """The refusal holds only while explorer works with a file."""
    import tables

    path = str(tmp_path / "own.h5")
    with tables.open_file(path, "w") as handle:
        handle.root._v_attrs.obj = {"a": [1, 2]}  # PyTables pickles it
    assert ex.trajectory_names(str(original)) == ["T"]  # explorer's guard is in place
    with tables.open_file(path, "r") as handle:
        assert handle.root._v_attrs.obj == {"a": [1, 2]}
