"""API.md section 5: storing, lazy reloading, the documented HDF5 layout and safety."""
from __future__ import annotations

import json
import os
import pathlib

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import explorer as ex
from layers import opened_layers

# ------------------------------------------------------------------ value types
PARAMETER_VALUES = {
    "py_bool": True,
    "py_int": -7,
    "py_float": 2.5,
    "py_complex": 1.5 - 2j,
    "py_str": "héllo wörld",
    "empty_str": "",
    "np_float64": np.float64(1.25),
    "np_float32": np.float32(0.5),
    "np_int32": np.int32(-3),
    "np_uint8": np.uint8(200),
    "np_bool": np.bool_(True),
    "np_complex64": np.complex64(1 + 1j),
    "np_str": np.str_("text"),
    "int_array": np.arange(6, dtype=np.int16).reshape(2, 3),
    "float_array": np.linspace(0.0, 1.0, 7),
    "bool_array": np.array([True, False, True]),
    "str_array": np.array(["a", "bcd"]),
    "zero_d_array": np.array(3.0),
    "empty_array": np.zeros((0, 3)),
    "large_array": np.arange(20000, dtype=np.float64),   # compressed on disk
    "int_list": [1, 2, 3],
    "float_tuple": (1.0, 2.0),
    "str_list": ["x", "yz"],
    "empty_list": [],
    "csr_matrix": sp.csr_matrix(np.array([[0.0, 1.0], [2.0, 0.0]])),
    "csc_array": sp.csc_array(np.eye(3)),
    "coo_matrix": sp.coo_matrix(np.array([[0, 4], [5, 0]], dtype=np.int64)),
}

FRAME = pd.DataFrame({"i": [1, 2, 3], "f": [0.5, np.nan, 2.0], "s": ["a", "b", "c"],
                      "b": [True, False, True]},
                     index=pd.Index([10, 20, 30], name="key"))
SERIES = pd.Series([1.0, 2.0], index=pd.Index(["u", "v"], name="k"), name="values")
RESULT_ONLY_VALUES = {
    "dataframe": FRAME,
    "dated_frame": pd.DataFrame({"t": pd.to_datetime(["2020-01-01", "2021-06-01"]),
                                 "v": [1, 2]}),
    "series": SERIES,
    "dict_of_frames": {"frame": FRAME, "series": SERIES},
    "none": None,
}


def assert_same(got, expected):
    """Equal value and the same type (recursively for dicts, elementwise for sequences)."""
    assert type(got) is type(expected), (type(got), type(expected))
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(got, expected)
    elif isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            assert_same(got[key], expected[key])
    elif sp.issparse(expected):
        assert got.format == expected.format
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got.toarray(), expected.toarray())
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert got.dtype == expected.dtype
        assert np.shape(got) == np.shape(expected)
        np.testing.assert_array_equal(got, expected)
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same(g, e)
    else:
        assert got == expected


@pytest.mark.parametrize("name", sorted(PARAMETER_VALUES))
def test_parameter_types_round_trip(name, h5path):
    value = PARAMETER_VALUES[name]
    traj = ex.Trajectory("Types")
    traj.add_parameter(f"values.{name}", value, comment=f"a {name}")
    traj.store(h5path)
    loaded = ex.load_trajectory(h5path, "Types")
    node = loaded.get(f"values.{name}")
    assert isinstance(node, ex.Parameter)
    assert node.comment == f"a {name}"
    assert_same(node.value, value)
    assert_same(loaded[f"values.{name}"], value)


@pytest.mark.parametrize("name", sorted(PARAMETER_VALUES) + sorted(RESULT_ONLY_VALUES))
def test_result_item_types_round_trip(name, h5path):
    value = {**PARAMETER_VALUES, **RESULT_ONLY_VALUES}[name]
    traj = ex.Trajectory("Types")
    traj.add_result("summary.item", value=value, comment="one item")
    traj.store(h5path)
    loaded = ex.load_trajectory(h5path)
    assert_same(loaded.res.summary.item.value, value)


@pytest.mark.parametrize("values", [
    [1, 2.5],
    [1, "a"],
    [True, 1, 0.5],
    (1, "x", 2.0),
], ids=["int-float", "int-str", "bool-int-float", "tuple-int-str-float"])
def test_mixed_scalar_sequences_keep_their_item_types(values, h5path):
    # API.md: "lists/tuples of scalars" are parameter values; a round trip keeps types
    traj = ex.Trajectory("Types")
    traj.add_parameter("mixed", values)
    traj.add_result("summary.sequence", value=values)
    traj.store(h5path)
    loaded = ex.load_trajectory(h5path)
    assert_same(loaded.par.mixed, values)
    assert_same(loaded.res.summary.sequence.value, values)


def test_python_int_beyond_int64_round_trips(h5path):
    traj = ex.Trajectory("Types")
    traj.add_parameter("big", 2 ** 70)
    traj.store(h5path)
    assert_same(ex.load_trajectory(h5path).big, 2 ** 70)


def _per_run_items(idx: int) -> dict:
    """Items of every supported type whose values (and some shapes) vary by run."""
    return {
        "flag": bool(idx % 2), "count": idx, "rate": idx + 0.5, "phase": complex(idx, 1),
        "label": "s" * (idx + 1), "np_count": np.int32(idx),
        "trace": np.arange(4.0) * idx,                  # same shape every run
        "spikes": np.arange(idx + 1),                   # shape varies by run
        "pair": [idx, idx + 1], "tags": ["a"] * (idx + 1),
        "matrix": sp.csr_matrix(np.eye(2) * idx),
        "frame": FRAME * (idx + 1), "series": SERIES * idx,
        "bundle": {"trace": np.arange(2) + idx, "frame": FRAME},
        "nothing": None,
    }


def _store_per_run_items(make_env, items):
    env = make_env("PerRun")
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 1, 2]})

    def run(view):
        view.add_result("out.$", **items(view.idx))
        return view.idx

    env.run(run)
    env.close()
    return env.filename


def test_per_run_items_of_every_type_round_trip(make_env):
    filename = _store_per_run_items(make_env, _per_run_items)
    loaded = ex.load_trajectory(filename)
    for idx in loaded.iter_runs():
        expected = _per_run_items(idx)
        stored = loaded.res.out.crun
        assert sorted(stored.keys()) == sorted(expected)
        for item, value in expected.items():
            assert_same(stored[item], value)


@pytest.mark.parametrize("make_items", [
    lambda idx: list(range(idx + 1)),
    lambda idx: tuple(float(i) for i in range(idx + 1)),
], ids=["list", "tuple"])
def test_per_run_sequences_of_varying_length_keep_their_type(make_env, make_items):
    filename = _store_per_run_items(make_env, lambda idx: {"seq": make_items(idx)})
    loaded = ex.load_trajectory(filename)
    for idx in loaded.iter_runs():
        assert_same(loaded.res.out.crun.seq, make_items(idx))


def _returned(x):
    """A return value of another kind for each run, so that the returns column gets a
    segment per kind (fixed, ragged, strings and nodes encodings)."""
    kinds = [lambda: (float(x), x / 2), lambda: [x, x + 1], lambda: np.arange(3.0) + x,
             lambda: np.arange(x + 1.0), lambda: f"run {x}", lambda: {"x": x}, lambda: None,
             lambda: np.int16(x), lambda: float(x), lambda: tuple(range(x % 4))]
    return kinds[x % len(kinds)]()


def test_env_run_returns_values_of_every_kind_by_run(make_env):
    env = make_env("Returns", on_error="record")
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": list(range(60))})

    def run(view):
        if view.x in (5, 17, 18):
            raise ValueError("no value for this one")
        return _returned(view.x)

    results = env.run(run)
    expected = [(x, _returned(x)) for x in range(60) if x not in (5, 17, 18)]
    assert [idx for idx, _ in results] == [idx for idx, _ in expected]
    for (_, got), (_, value) in zip(results, expected):
        assert_same(got, value)


def test_a_column_reads_the_same_values_in_stretches_and_row_by_row(h5path):
    from explorer.storage.hdf5.columns import ColumnIndex

    traj = ex.Trajectory("Column")
    traj.add_parameter("x", 0)
    traj.explore({"x": list(range(300))})
    traj.store(h5path)
    # one chunk: a segment for each kind, whose rows the reads below pick from
    with ex.Environment.resume(h5path, "Column", progress=False, chunk_size=300) as env:
        env.run(lambda view: (view.x, -view.x) if view.x % 7 else [view.x] * (view.x % 3 + 1))
    with opened_layers(h5path) as layers:  # the column's parts in the file's layers
        index = ColumnIndex([handle.get_node("/Column/returns/value") for handle in layers
                             if "/Column/returns/value" in handle])
        dense = index.values(range(300))
        far_apart = index.values([298, 3, 150, 0, 400])  # read row by row
        one_by_one = {run: index.read(run, False) for run in range(300)}
        with pytest.raises(KeyError):
            index.read(300, False)
    assert list(dense) and sorted(dense) == list(range(300))
    for run, value in one_by_one.items():
        assert_same(dense[run], value)
        assert_same(value, (run, -run) if run % 7 else [run] * (run % 3 + 1))
    assert sorted(far_apart) == [0, 3, 150, 298]
    for run, value in far_apart.items():
        assert_same(value, one_by_one[run])


@pytest.mark.parametrize("default, values", [
    (0, [1, 2]),
    (0.0, [0.5, 1.5]),
    (False, [True, False]),
    (0j, [1j, 2 + 1j]),
    ("", ["ab", "c"]),
    (np.int16(0), [np.int16(3), np.int16(4)]),
    (np.zeros(2), [np.ones(2), np.arange(2.0)]),
    (np.zeros(2), [np.ones(3), np.arange(2.0)]),
    (np.array(["a"]), [np.array(["x"]), np.array(["yy", "z"])]),
    ([0, 0], [[1, 2], [3, 4]]),
    ([0], [[1, 2], [3]]),
    ((0.0,), [(1.0,), (2.0, 3.0)]),
    (["a"], [["x"], ["y", "z"]]),
    (sp.csr_matrix(np.eye(2)), [sp.csr_matrix(np.eye(2) * 2), sp.csr_matrix(np.eye(2) * 3)]),
], ids=["int", "float", "bool", "complex", "str", "npscalar", "array", "ragged-array",
        "str-array", "list", "ragged-list", "ragged-tuple", "str-list", "sparse"])
def test_explored_values_round_trip(default, values, h5path):
    traj = ex.Trajectory("Explored")
    traj.add_parameter("p", default)
    traj.explore({"p": values})
    traj.store(h5path)
    loaded = ex.load_trajectory(h5path)
    assert loaded.explored_parameters == ["parameters.p"]
    assert len(loaded) == len(values)
    assert_same(loaded.get("p").default, default)
    for got, expected in zip(loaded.get("p").range, values):
        assert_same(got, expected)


# ------------------------------------------------------------------ store and load
def test_store_and_load_the_api_example(neuron_traj, grid, h5path):
    neuron_traj.explore(grid)
    neuron_traj.store(h5path)
    loaded = ex.load_trajectory(h5path, "FiringRate")
    assert loaded.name == "FiringRate"
    assert loaded.comment == "LIF firing rates"
    assert len(loaded) == len(neuron_traj)
    assert loaded.explored_parameters == neuron_traj.explored_parameters
    assert loaded.get("neuron.tau_V").comment == "membrane time constant in ms"
    assert loaded.get("simulation").comment == "dt and duration"
    assert loaded.conf.seed == 42 and loaded.dpar.neuron.steps == 10000
    loaded.set_run(13)
    assert loaded.I == grid["neuron.I"][13]
    assert loaded.tau_ref == grid["neuron.tau_ref"][13]
    loaded.restore_default()
    assert loaded.I == 0.0
    assert ex.load_trajectory(h5path).name == "FiringRate"    # the name is optional


def test_store_again_after_changes_and_to_another_file(tmp_path):
    first, second = str(tmp_path / "first.h5"), str(tmp_path / "second.h5")
    traj = ex.Trajectory("T")
    traj.add_parameter("a", 1)
    traj.add_result("one", v=np.arange(3))
    traj.store(first)
    traj.par.a = 5
    traj.add_result("two", w=2.5)
    traj.store()
    loaded = ex.load_trajectory(first)
    assert loaded.a == 5
    assert loaded.res.two.w == 2.5
    np.testing.assert_array_equal(loaded.res.one.v, np.arange(3))
    loaded.add_result("three", z="new")
    loaded.store(second)
    copy = ex.load_trajectory(second)
    assert (copy.a, copy.res.two.w, copy.res.three.z) == (5, 2.5, "new")
    np.testing.assert_array_equal(copy.res.one.v, np.arange(3))
    # the first file did not get the result added after loading
    assert "three" not in ex.load_trajectory(first).res


def test_store_without_a_file_names_the_trajectory():
    traj = ex.Trajectory("Unstored")
    with pytest.raises(ex.ExplorerError, match="Unstored"):
        traj.store()


def test_lazy_loading_reads_an_item_on_first_access(h5path):
    traj = ex.Trajectory("T")
    traj.add_parameter("a", 1)
    traj.add_result("summary.rates", frame=FRAME, trace=np.arange(5.0))
    traj.store(h5path)
    loaded = ex.load_trajectory(h5path)
    result = loaded.get("summary.rates")
    assert isinstance(result, ex.Result)
    assert sorted(result.keys()) == ["frame", "trace"]
    assert not result.is_loaded("frame")
    assert not result.is_loaded("trace")
    pd.testing.assert_frame_equal(loaded.res.summary.rates.frame, FRAME)
    assert result.is_loaded("frame")
    assert not result.is_loaded("trace")


def test_load_all_reads_every_result_now(h5path):
    traj = ex.Trajectory("T")
    traj.add_result("summary.rates", frame=FRAME, trace=np.arange(5.0))
    traj.store(h5path)
    loaded = ex.load_trajectory(h5path, load="all")
    result = loaded.get("summary.rates")
    assert result.is_loaded("frame") and result.is_loaded("trace")
    os.remove(h5path)          # nothing is left to read from the file
    pd.testing.assert_frame_equal(result.frame, FRAME)
    np.testing.assert_array_equal(result.trace, np.arange(5.0))


def test_load_parameters_reads_no_results(h5path, make_env, square_run):
    env = make_env("T", filename=h5path)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [1, 2]})
    env.trajectory.add_result("summary.total", v=3)
    env.run(square_run)
    env.close()
    loaded = ex.load_trajectory(h5path, load="parameters")
    assert loaded.get("x").range == [1, 2]
    assert list(loaded.res) == []
    assert loaded.run_templates == {}
    with pytest.raises(AttributeError, match="summary"):
        loaded.res.summary


def test_several_trajectories_in_one_file(h5path):
    for name, value in (("First", 1), ("Second", 2), ("Third", 3)):
        traj = ex.Trajectory(name, comment=f"number {value}")
        traj.add_parameter("value", value)
        traj.add_result("summary.twice", v=2 * value)
        traj.store(h5path)
    assert sorted(ex.trajectory_names(h5path)) == ["First", "Second", "Third"]
    for name, value in (("First", 1), ("Second", 2), ("Third", 3)):
        loaded = ex.load_trajectory(h5path, name)
        assert (loaded.name, loaded.comment, loaded.value) == (name, f"number {value}", value)
        assert loaded.res.summary.twice.v == 2 * value
    with pytest.raises(ex.ExplorerError, match="First"):
        ex.load_trajectory(h5path)   # several: the name is needed, and the error lists them


def test_per_run_results_reload_lazily_with_crun(make_env, h5path, square_run):
    env = make_env("T")
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [2, 3, 4]})
    env.run(square_run)
    env.close()
    loaded = ex.load_trajectory(h5path)
    assert loaded.run_templates == {"results.square.$": "x squared"}
    assert loaded.res.square.run_00000001.value == 9
    loaded.set_run(2)
    assert loaded.res.square.crun.value == 16
    assert loaded["square.crun.value"] == 16


def test_to_frame_contents(make_env, h5path):
    env = make_env("T", on_error="record")
    traj = env.trajectory
    traj.add_parameter("grid.x", 0)
    traj.add_parameter("grid.y", 0.0)
    traj.explore(ex.cartesian_product({"x": [1, 2, 3], "y": [0.5, 1.5]}))

    def run(view):
        if view.x == 2 and view.y == 1.5:
            raise RuntimeError("planned failure")
        view.add_result("out.$", product=view.x * view.y, trace=np.ones(3), label="text")
        return view.x + view.y

    env.run(run)
    traj.expand({"x": [9], "y": [9.0]})      # one run that never ran
    traj.store()
    for frame in (traj.to_frame(), ex.load_trajectory(h5path).to_frame()):
        assert len(frame) == 7
        assert list(frame.index) == list(range(7))
        assert frame["x"].tolist() == traj.get("x").range
        assert frame["y"].tolist() == traj.get("y").range
        completed = [i for i in range(6) if not (traj.get("x").range[i] == 2
                                                   and traj.get("y").range[i] == 1.5)]
        failed = [i for i in range(6) if i not in completed]
        assert frame["status"].tolist() == ["completed" if i in completed else
                                            "failed" if i in failed else "pending"
                                            for i in range(7)]
        for i in completed:
            x, y = traj.get("x").range[i], traj.get("y").range[i]
            assert frame.loc[i, "product"] == x * y
            assert frame.loc[i, "return_value"] == x + y
            assert frame.loc[i, "label"] == "text"  # scalar strings are columns
            assert pd.isna(frame.loc[i, "error"])
        for i in failed + [6]:
            assert pd.isna(frame.loc[i, "product"])
            assert pd.isna(frame.loc[i, "return_value"])
            assert pd.isna(frame.loc[i, "label"])
        assert frame.loc[failed, "error"].tolist() == ["RuntimeError: planned failure"]
        assert pd.isna(frame.loc[6, "error"])
        # arrays are not table columns
        assert "trace" not in frame.columns


def test_to_frame_of_an_unexplored_stored_run(make_env, h5path):
    env = make_env("T")
    env.trajectory.add_parameter("x", 4)
    env.run(lambda view: view.x * 2)
    frame = env.trajectory.to_frame()
    assert len(frame) == 1
    assert frame.loc[0, "return_value"] == 8
    assert frame.loc[0, "status"] == "completed"


# ------------------------------------------------------------------ plain h5py
def test_layout_is_readable_with_plain_h5py(make_env, h5path):
    env = make_env("Layout", complevel=0, on_error="record")
    traj = env.trajectory
    traj.add_parameter("neuron.I", 0.0, comment="applied current")
    traj.add_parameter("neuron.tau", 1.0)
    traj.explore({"neuron.I": [0.0, 0.5, 1.0, 1.5], "neuron.tau": [1.0, 2.0, 3.0, 4.0]})

    def run(view):
        if view.I == 1.0:
            raise ValueError("current too large")
        view.add_result("neuron.$", V=np.full(5, view.I), nspikes=int(10 * view.I))
        view.add_result("plain", doubled=2 * view.I)
        return view.I * view.tau

    env.run(run)
    env.close()
    with h5py.File(h5path, "r") as f:
        assert _text(f.attrs["explorer_format"]) == "explorer-hdf5/1"
        group = f["Layout"]
        assert _text(group.attrs["explorer_node"]) == "trajectory"
        assert int(group.attrs["n_runs"]) == 4
        explored = json.loads(_text(group.attrs["explored"]))
        assert explored == ["parameters.neuron.I", "parameters.neuron.tau"]
        # parameters are value nodes with kind and comment
        leaf = group["parameters/neuron/I"]
        assert _text(leaf.attrs["kind"]) == "float"
        assert _text(leaf.attrs["comment"]) == "applied current"
        assert leaf[()] == 0.0
        # exploration columns in the order of 'explored'
        for i, name in enumerate(explored):
            segment = group[f"exploration/p{i}/s0"]
            by_run = dict(zip(segment["runs"][:].tolist(), segment["data"][:].tolist()))
            assert [by_run[r] for r in range(4)] == traj.get(name).range
        # the run table
        runs = group["runs"][:]
        status = dict(zip(runs["idx"].tolist(), runs["status"].tolist()))
        assert status == {0: 1, 1: 1, 2: 2, 3: 1}
        # per-run results stacked: results/<group>/$/<item>/s0/{runs,data}
        runs_node = group["results/neuron/$"]
        assert _text(runs_node.attrs["explorer_node"]) == "runs"
        seg = group["results/neuron/$/V/s0"]
        rows = seg["runs"][:].tolist()
        assert sorted(rows) == [0, 1, 3]
        assert seg["data"].shape == (3, 5)
        for row, run_idx in enumerate(rows):
            expected = np.full(5, traj.get("I").range[run_idx])
            np.testing.assert_array_equal(seg["data"][row], expected)
        nspikes = group["results/neuron/$/nspikes/s0"]
        assert dict(zip(nspikes["runs"][:].tolist(), nspikes["data"][:].tolist())) == {
            r: int(10 * traj.get("I").range[r]) for r in (0, 1, 3)}
        # a result added in a run without $ lives in results/runs/$/<name>/
        doubled = group["results/runs/$/plain/doubled/s0"]
        assert sorted(doubled["runs"][:].tolist()) == [0, 1, 3]
        # return values and errors
        returns = group["returns/value/s0"]
        assert dict(zip(returns["runs"][:].tolist(), returns["data"][:].tolist())) == {
            r: traj.get("I").range[r] * traj.get("tau").range[r] for r in (0, 1, 3)}
        errors = group["errors/error/s0"]
        assert errors["runs"][:].tolist() == [2]
        assert "current too large" in _text(errors["data"][0])
        assert "ValueError" in _text(errors["data"][0])
        traceback = _text(group["errors/traceback/s0/data"][0])
        assert traceback.startswith("Traceback") and "current too large" in traceback


def test_compressed_default_layout_is_readable_with_h5py_and_hdf5plugin(make_env, h5path):
    import hdf5plugin  # noqa: F401  (a test dependency: h5py reads blosc through it)
    env = make_env("Packed")
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": list(range(5))})
    env.run(lambda view: view.add_result("out.$", trace=np.arange(1000.0) * view.x))
    env.close()
    with h5py.File(h5path, "r") as f:
        seg = f["Packed/results/out/$/trace/s0"]
        rows = seg["runs"][:].tolist()
        # rows with run index -1 pad the last compressed chunk of a batch
        assert sorted(r for r in rows if r >= 0) == list(range(5))
        assert len(rows) == seg["data"].shape[0]
        for row, run_idx in enumerate(rows):
            if run_idx >= 0:
                np.testing.assert_array_equal(seg["data"][row], np.arange(1000.0) * run_idx)


def _text(value) -> str:
    if isinstance(value, np.ndarray):
        value = value.tobytes()
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


# ------------------------------------------------------------------ pickles
class WritesAFile:
    """Unpickling this calls ``Path.write_text`` on ``marker``: code run from a file."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (self.marker.write_text, ("code from the file ran",))


def test_pickled_result_needs_allow_pickle_and_runs_no_code(tmp_path, h5path):
    marker = tmp_path / "side_effect.txt"
    traj = ex.Trajectory("Pickles", allow_pickle=True)
    traj.add_parameter("safe", 1)
    traj.add_result("stuff", evil=WritesAFile(marker), fine=np.arange(3))
    traj.store(h5path)
    assert not marker.exists()
    loaded = ex.load_trajectory(h5path)
    assert loaded.safe == 1
    np.testing.assert_array_equal(loaded.res.stuff.fine, np.arange(3))
    with pytest.raises(ex.UnsafeDataError) as info:
        loaded.res.stuff.evil
    assert "evil" in str(info.value) and h5path in str(info.value)
    assert not marker.exists()
    with pytest.raises(ex.UnsafeDataError):
        ex.load_trajectory(h5path, load="all")
    assert not marker.exists()
    # with allow_pickle the item is read (and its code runs)
    trusted = ex.load_trajectory(h5path, allow_pickle=True)
    trusted.res.stuff.evil
    assert marker.read_text() == "code from the file ran"


def test_pickled_per_run_result_needs_allow_pickle(tmp_path, make_env, h5path):
    marker = tmp_path / "side_effect.txt"
    env = make_env("Pickles", allow_pickle=True)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [1, 2]})
    env.run(lambda view: view.add_result("out.$", evil=WritesAFile(marker), x=view.x))
    env.close()
    assert not marker.exists()
    loaded = ex.load_trajectory(h5path)
    assert loaded.res.out.run_00000001.x == 2
    with pytest.raises(ex.UnsafeDataError, match="evil"):
        loaded.res.out.run_00000001.evil
    assert not marker.exists()


def test_pickled_parameter_needs_allow_pickle(tmp_path, h5path):
    marker = tmp_path / "side_effect.txt"
    traj = ex.Trajectory("Pickles", allow_pickle=True)
    traj.add_parameter("model", WritesAFile(marker))
    traj.store(h5path)
    with pytest.raises(ex.UnsafeDataError, match="model"):
        ex.load_trajectory(h5path)
    assert not marker.exists()
    loaded = ex.load_trajectory(h5path, allow_pickle=True)
    assert isinstance(loaded.model, int)       # what Path.write_text returned
    assert marker.exists()


def test_allow_pickle_round_trips_other_objects(h5path):
    traj = ex.Trajectory("Pickles", allow_pickle=True)
    traj.add_parameter("settings", {"a": 1, "b": (2, 3)})
    traj.add_result("summary.sets", value={1, 2, 3})
    traj.store(h5path)
    loaded = ex.load_trajectory(h5path, allow_pickle=True)
    assert loaded.settings == {"a": 1, "b": (2, 3)}
    assert loaded.res.summary.sets.value == {1, 2, 3}


# ------------------------------------------------------------------ wrong files
def test_plain_hdf5_file_is_not_an_explorer_file(tmp_path):
    path = str(tmp_path / "plain.h5")
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ex.ExplorerError, match="plain.h5"):
        ex.load_trajectory(path)
    with pytest.raises(ex.ExplorerError, match="plain.h5"):
        ex.load_trajectory(path, "T")
    traj = ex.Trajectory("T")
    traj.add_parameter("a", 1)
    with pytest.raises(ex.ExplorerError, match="plain.h5"):
        traj.store(path)
    with h5py.File(path, "r") as f:          # the file is left as it was
        assert list(f) == ["x"]
        np.testing.assert_array_equal(f["x"][:], np.arange(3))


def test_text_file_is_not_an_explorer_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("just some text\n")
    with pytest.raises(ex.ExplorerError, match="notes.h5"):
        ex.load_trajectory(str(path))
    traj = ex.Trajectory("T")
    traj.add_parameter("a", 1)
    with pytest.raises(ex.ExplorerError, match="notes.h5"):
        traj.store(str(path))
    assert path.read_text() == "just some text\n"


def test_missing_file_names_the_file(tmp_path):
    path = str(tmp_path / "absent.h5")
    with pytest.raises(ex.ExplorerError, match="absent.h5"):
        ex.load_trajectory(path)
    assert not os.path.exists(path)


def test_missing_trajectory_names_it_and_the_file(h5path):
    traj = ex.Trajectory("Present")
    traj.add_parameter("a", 1)
    traj.store(h5path)
    with pytest.raises(ex.ExplorerError) as info:
        ex.load_trajectory(h5path, "Absent")
    assert "Absent" in str(info.value)
    assert h5path in str(info.value)


# ------------------------------------------------------------------ overwriting
def _filled_file(make_env, h5path, square_run):
    other = ex.Trajectory("Other")
    other.add_parameter("b", 2)
    other.store(h5path)
    env = make_env("Main")
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [1, 2, 3]})
    env.trajectory.add_result("summary.total", v=6)
    env.run(square_run)
    env.close()


def _assert_main_intact(h5path):
    main = ex.load_trajectory(h5path, "Main")
    assert main.get("x").range == [1, 2, 3]
    assert main.res.summary.total.v == 6
    assert [main.res.square[name].value for name in main.run_names] == [1, 4, 9]
    assert main.to_frame()["status"].tolist() == ["completed"] * 3
    assert ex.load_trajectory(h5path, "Other").b == 2


def test_storing_over_an_existing_trajectory_is_refused(make_env, h5path, square_run):
    _filled_file(make_env, h5path, square_run)
    intruder = ex.Trajectory("Main")
    intruder.add_parameter("x", 100)
    with pytest.raises(ex.ExplorerError) as info:
        intruder.store(h5path)
    assert "Main" in str(info.value) and h5path in str(info.value)
    with pytest.raises(ex.ExplorerError, match="Main"):
        ex.Environment("Main", h5path, progress=False)
    _assert_main_intact(h5path)


def test_overwrite_file_replaces_only_that_trajectory(make_env, h5path, square_run):
    _filled_file(make_env, h5path, square_run)
    env = make_env("Main", overwrite_file=True)
    env.trajectory.add_parameter("y", 7)
    env.run(lambda view: view.y)
    env.close()
    main = ex.load_trajectory(h5path, "Main")
    assert main.y == 7
    assert "x" not in main
    assert main.to_frame()["return_value"].tolist() == [7]
    assert ex.load_trajectory(h5path, "Other").b == 2
    assert sorted(ex.trajectory_names(h5path)) == ["Main", "Other"]


def test_a_loaded_trajectory_stores_back_into_its_file(make_env, h5path, square_run):
    _filled_file(make_env, h5path, square_run)
    loaded = ex.load_trajectory(h5path, "Main")
    loaded.add_result("summary.extra", v=1)
    loaded.store()
    _assert_main_intact(h5path)
    assert ex.load_trajectory(h5path, "Main").res.summary.extra.v == 1


def test_a_run_stored_again_reads_its_latest_value_whatever_its_type(h5path):
    # each value after the first goes to a column segment after the one it replaces, and
    # the segments (more than ten: s10 sorts before s2 by name) are read in their order
    traj = ex.Trajectory("Again")
    traj.add_parameter("x", 0)
    traj.explore({"x": list(range(8))})
    traj.store(h5path)
    values = [1.5, 7, 2.5, "text", 3.5, None, 4.5, 8, 5.5, "more", 6.5, 9, 7.5, 10, 8.5]
    for value in values:
        traj.set_run(5)
        traj.add_result("out.$", v=value)
        traj.restore_default()
        traj.store()
        loaded = ex.load_trajectory(h5path, "Again")
        stored = loaded.res.out[loaded.run_names[5]].v
        assert stored == value and type(stored) is type(value), (value, stored)
        loaded.close()
