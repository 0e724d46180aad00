"""Synthetic pypet files: the layout pypet 0.7 writes (as in the fixture
``pypet_tutorial.hdf5``), written with PyTables alone, of any number of runs.

Used by ``tests/test_import_pypet.py`` and ``benchmarks/bench_import.py``. Each
run ``i`` has a trace ``V`` of ``trace`` floats and a spike count (a per-run
``Result``), and a per-run derived parameter ``runinfo.$.steps``; ``neuron.I``
and the array parameter ``neuron.weights`` are explored; the last ``pending``
runs did not complete (no results, ``completed`` 0 in pypet's run table).
:func:`expected_run` gives what each run holds.
"""
from __future__ import annotations

import io
import os
import pathlib

import numpy as np
import pandas as pd
import scipy.sparse
import tables

__all__ = ["current", "expected_run", "fixture_folder", "weights", "write_pypet_file"]

#: Where the pypet-written fixtures may be: ``$EXPLORER_PYPET_FIXTURES``, beside the
#: repository (``../shared/fixtures/pypet``), or the shared folder of this machine.
_BESIDE = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "pypet"
_FIXTURE_PLACES = (os.environ.get("EXPLORER_PYPET_FIXTURES", ""), str(_BESIDE),
                   "/work/shared/fixtures/pypet")


def fixture_folder() -> pathlib.Path:
    """The folder of the pypet-written fixtures (the first place holding them), or the
    place beside the repository when none does (tests then skip, naming it)."""
    for place in _FIXTURE_PLACES:
        if place and (pathlib.Path(place) / "pypet_tutorial.hdf5").exists():
            return pathlib.Path(place)
    return pathlib.Path(_FIXTURE_PLACES[1])


_FILTERS = tables.Filters(complevel=9, complib="zlib", shuffle=True)
_START = 1.7e9  # seconds since the epoch of run 0's start


def current(n_runs: int) -> list[float]:
    """The explored ``neuron.I`` values."""
    return np.linspace(0.0, 1.0, n_runs).tolist()


def weights(idx: int) -> np.ndarray:
    """The explored ``neuron.weights`` of run ``idx``."""
    return np.array([1.0, float(idx)])


def expected_run(idx: int, trace: int) -> dict[str, object]:
    """What run ``idx`` stored: ``V``, ``nspikes``, ``steps``, start and duration."""
    return {"V": np.sin(np.arange(trace) * 0.01 + idx), "nspikes": idx % 17,
            "steps": 1000 + idx, "started": _START + idx, "duration": 0.25 + (idx % 5) / 100}


def _set(node: tables.Node, **attrs: object) -> None:
    for key, value in attrs.items():
        node._v_attrs[key] = value


def _group(handle: tables.File, where: str, name: str, comment: str = "",
           leaf: str | None = None) -> tables.Group:
    group = handle.create_group(where, name, filters=_FILTERS)
    if comment:
        _set(group, SRVC_INIT_COMMENT=comment)
    if leaf is not None:
        _set(group, SRVC_INIT_CLASS_NAME=leaf, SRVC_LEAF=True)
    return group


def _data_table(handle: tables.File, where: tables.Group, name: str, values: list,
                scalar_type: str) -> None:
    """A pypet ObjectTable of one column ``data`` (a Parameter's value or range)."""
    array = np.array(values, dtype={"float": "f8", "int": "i4", "bool": "?"}[scalar_type])
    table = handle.create_table(where, name, np.rec.fromarrays([array], names="data"),
                                filters=_FILTERS)
    _set(table, SRVC_COLUMN_data_COLL_TYPE="COLL_SCALAR",
         SRVC_COLUMN_data_SCALAR_TYPE=scalar_type, SRVC_STORE="TABLE")


def _parameter(handle: tables.File, where: str, name: str, value: object, scalar_type: str,
               comment: str = "", explored: list | None = None) -> None:
    group = _group(handle, where, name, comment, leaf="Parameter")
    _data_table(handle, group, "data", [value], scalar_type)
    if explored is not None:
        _data_table(handle, group, "explored_data", explored, scalar_type)


def _carray(handle: tables.File, where: tables.Group, name: str, value: np.ndarray) -> None:
    node = handle.create_carray(where, name, obj=value, filters=_FILTERS)
    _set(node, SRVC_DATA_COLL_TYPE="COLL_NDARRAY", SRVC_STORE="CARRAY")


def _scalar(handle: tables.File, where: tables.Group, name: str, value: object,
            scalar_type: str) -> None:
    node = handle.create_array(where, name, obj=value)
    _set(node, SRVC_DATA_COLL_TYPE="COLL_SCALAR", SRVC_DATA_SCALAR_TYPE=scalar_type,
         SRVC_STORE="ARRAY")


def write_pypet_file(path: str, n_runs: int, *, trace: int = 1000, name: str = "Synthetic",
                     pending: int = 0) -> None:
    """Write a pypet-layout file of one trajectory of ``n_runs`` runs at ``path``."""
    completed = n_runs - pending
    with tables.open_file(path, "w", title=name, filters=_FILTERS) as handle:
        top = _group(handle, "/", name, "synthetic pypet trajectory")
        for branch in ("config", "derived_parameters", "parameters", "results"):
            _group(handle, top, branch)
        par = f"/{name}/parameters"
        _group(handle, par, "neuron", "the neuron")
        _parameter(handle, f"{par}/neuron", "I", 0.0, "float", "applied current",
                   explored=current(n_runs))
        _parameter(handle, f"{par}/neuron", "tau_V", 10.0, "float", "membrane time constant")
        weights_group = _group(handle, f"{par}/neuron", "weights", "array param",
                               leaf="ArrayParameter")
        _carray(handle, weights_group, "data__rr__", np.array([1.0, 2.0]))
        table = handle.create_table(weights_group, "explored_data__rr__",
                                    np.rec.fromarrays([np.arange(n_runs, dtype="i4")],
                                                      names="idx"))
        _set(table, SRVC_COLUMN_idx_COLL_TYPE="COLL_SCALAR",
             SRVC_COLUMN_idx_SCALAR_TYPE="int", SRVC_STORE="TABLE")
        nested = _group(handle, weights_group, "explored__rr__")
        _set(nested, SRVC_STORE="NESTED_GROUP")
        for idx in range(n_runs):
            if idx % 1000 == 0:
                block = _group(handle, nested, f"set_{idx // 1000:05d}")
                _set(block, SRVC_STORE="NESTED_GROUP")
            _carray(handle, block, f"xa_{idx:08d}", weights(idx))
        _group(handle, par, "network")
        conn = _group(handle, f"{par}/network", "conn", "sparse param", leaf="SparseParameter")
        buffer = io.BytesIO()
        scipy.sparse.save_npz(buffer, scipy.sparse.csr_matrix(np.eye(3)))
        _scalar(handle, conn, "data__spsp__", buffer.getvalue().hex().encode(), "str")
        _group(handle, f"/{name}/config", "setup")
        _parameter(handle, f"/{name}/config/setup", "seed", 42, "int")

        runinfo = _group(handle, f"/{name}/derived_parameters", "runinfo")
        neuron = _group(handle, f"/{name}/results", "neuron")
        for idx in range(completed):
            expected = expected_run(idx, trace)
            result = _group(handle, neuron, f"run_{idx:08d}", leaf="Result")
            _carray(handle, result, "V", expected["V"])
            _scalar(handle, result, "nspikes", expected["nspikes"], "int")
            run_group = _group(handle, runinfo, f"run_{idx:08d}")
            _parameter(handle, run_group, "steps", expected["steps"], "int")

        overview = _group(handle, top, "overview")
        _set(overview, TITLE="overview")
        runs = np.zeros(n_runs, dtype=[("idx", "i4"), ("name", "S128"), ("time", "S20"),
                                       ("timestamp", "f8"), ("finish_timestamp", "f8"),
                                       ("runtime", "S18"), ("parameter_summary", "S512"),
                                       ("short_environment_hexsha", "S7"),
                                       ("completed", "i4")])
        runs["idx"] = np.arange(n_runs)
        runs["name"] = [f"run_{idx:08d}".encode() for idx in range(n_runs)]
        for idx in range(completed):
            expected = expected_run(idx, trace)
            runs["timestamp"][idx] = expected["started"]
            runs["finish_timestamp"][idx] = expected["started"] + expected["duration"]
        runs["completed"][:completed] = 1
        handle.create_table(overview, "runs", runs)
        explored = ["parameters.neuron.I", "parameters.neuron.weights"]
        handle.create_table(overview, "explorations",
                            np.array([(x.encode(),) for x in explored],
                                     dtype=[("explorations", "S37")]))
        handle.create_table(overview, "info", np.array(
            [(name.encode(), b"2026_12_06_05h17m16s", n_runs, _START,
              b"synthetic pypet trajectory", b"3.12.1", b"0.7.0")],
            dtype=[("name", "S512"), ("time", "S20"), ("length", "i4"), ("timestamp", "f8"),
                   ("comment", "S512"), ("python", "S128"), ("version", "S128")]))
        summary = _group(handle, f"/{name}/results", "summary")
        _group(handle, summary, "firing_rates", "rates table", leaf="Result")
    frame = pd.DataFrame({"rate": np.arange(completed, dtype=float)},
                         index=pd.Index(np.arange(completed), name=None))
    with pd.HDFStore(path, mode="a") as store:
        store.put(f"/{name}/results/summary/firing_rates/rates_frame", frame, format="fixed",
                  track_times=False)
    with tables.open_file(path, "a") as handle:
        node = handle.get_node(f"/{name}/results/summary/firing_rates/rates_frame")
        node._v_attrs["SRVC_STORE"] = "FRAME"
