"""Reload and inspect: what a stored file holds, through the public API.

Failures with their tracebacks, per-run items over all runs, records returned
by runs, the N-d view (xarray), provenance, locked parameters and the "did you
mean" of lookups, each on real files written by real environments.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tables

import explorer as ex

FAILING = (4, 9)


def neuron_run(traj):
    """A run that stores a trace, a count and a label, fails for two runs and
    returns a record."""
    if traj.idx in FAILING:
        raise ValueError(f"run {traj.idx} diverged")
    trace = np.arange(6.0) * traj.I + traj.tau
    traj.add_result("neuron.$", V=trace, nspikes=int(traj.idx % 3), label=f"r{traj.idx}",
                    comment="membrane potential")
    return {"rate": traj.I * 2.0, "cv": traj.tau / 10}


@pytest.fixture
def stored(tmp_path):
    """A 3 x 4 cartesian grid run with two failures, stored and closed: the file name."""
    filename = str(tmp_path / "grid.h5")
    traj = ex.Trajectory("Grid", comment="a grid")
    traj.add_parameter("neuron.tau", 10.0, comment="time constant")
    traj.add_parameter("neuron.I", 0.0, comment="input")
    traj.explore(ex.cartesian_product({"tau": [10.0, 20.0, 30.0],
                                       "I": [0.0, 0.5, 1.0, 1.5]}))
    env = ex.Environment(traj, filename=filename)
    with pytest.raises(ex.RunsFailedError, match=r"traj\.failures\(\)"):
        env.run(neuron_run)
    env.close()
    return filename


def expected_trace(idx: int) -> np.ndarray:
    tau = [10.0, 20.0, 30.0][idx // 4]
    current = [0.0, 0.5, 1.0, 1.5][idx % 4]
    return np.arange(6.0) * current + tau


# ---------------------------------------------------------------------- failures
def test_failures_after_reload(stored):
    traj = ex.load_trajectory(stored)
    failures = traj.failures()
    assert failures.index.name == "run"
    assert failures.index.tolist() == list(FAILING)
    assert failures.columns.tolist() == ["error", "traceback"]
    assert failures.loc[4, "error"] == "ValueError: run 4 diverged"
    assert "Traceback (most recent call last)" in failures.loc[9, "traceback"]
    assert "raise ValueError" in failures.loc[9, "traceback"]


def test_no_failures_is_an_empty_frame(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 1.0)
    assert traj.failures().empty  # not stored yet
    env = ex.Environment(traj, filename=str(tmp_path / "t.h5"))
    env.run(lambda view: view.x)
    failures = ex.load_trajectory(str(tmp_path / "t.h5")).failures()
    assert failures.empty and failures.columns.tolist() == ["error", "traceback"]
    assert "error" not in traj.to_frame().columns


def test_a_run_that_failed_then_completed_is_no_failure(tmp_path):
    filename = str(tmp_path / "t.h5")
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 0)
    traj.explore({"x": [0, 1, 2]})
    flaky = {"fail": True}

    def run(view):
        if view.x == 1 and flaky["fail"]:
            raise RuntimeError("flaky")
        return view.x

    env = ex.Environment(traj, filename=filename)
    with pytest.raises(ex.RunsFailedError):
        env.run(run)
    env.close()
    assert ex.load_trajectory(filename).failures().index.tolist() == [1]
    flaky["fail"] = False
    env = ex.Environment.resume(filename)
    env.run(run)
    env.close()
    traj = ex.load_trajectory(filename)
    assert traj.failures().empty
    assert "error" not in traj.to_frame().columns


# ----------------------------------------------------------------------- frames
def test_frame_has_errors_strings_and_record_columns(stored):
    frame = ex.load_trajectory(stored).to_frame()
    assert {"error", "label", "rate", "cv", "nspikes"} <= set(frame.columns)
    assert "return_value" not in frame.columns  # every value was a record
    for idx in range(12):
        if idx in FAILING:
            assert frame.loc[idx, "error"] == f"ValueError: run {idx} diverged"
            assert frame.loc[idx, "status"] == "failed"
            assert pd.isna(frame.loc[idx, "label"]) and pd.isna(frame.loc[idx, "rate"])
        else:
            assert pd.isna(frame.loc[idx, "error"])
            assert frame.loc[idx, "label"] == f"r{idx}"
            assert frame.loc[idx, "rate"] == frame.loc[idx, "I"] * 2.0
            assert frame.loc[idx, "cv"] == frame.loc[idx, "tau"] / 10


def test_record_keys_that_clash_get_long_names(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 1.0)
    traj.explore({"x": [1.0, 2.0]})
    env = ex.Environment(traj, filename=str(tmp_path / "t.h5"))
    values = env.run(lambda view: {"x": view.x * 3, "status": "fine", "y": view.idx})
    assert [value for _, value in values] == [{"status": "fine", "x": 3.0, "y": 0},
                                              {"status": "fine", "x": 6.0, "y": 1}]
    frame = ex.load_trajectory(str(tmp_path / "t.h5")).to_frame()
    assert frame["x"].tolist() == [1.0, 2.0]
    assert frame["return_value.x"].tolist() == [3.0, 6.0]
    assert frame["return_value.status"].tolist() == ["fine", "fine"]
    assert frame["y"].tolist() == [0, 1]
    assert frame["status"].tolist() == ["completed", "completed"]


def test_records_mixed_with_other_values(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 0)
    traj.explore({"x": [0, 1, 2, 3]})
    returns = {0: {"a": 1.0}, 1: 2.5, 2: {"a": 3.0, "b": "z"}, 3: {"nested": {"no": 1}}}
    env = ex.Environment(traj, filename=str(tmp_path / "t.h5"))
    env.run(lambda view: returns[view.x])
    env.close()
    traj = ex.load_trajectory(str(tmp_path / "t.h5"))
    frame = traj.to_frame()
    assert frame["a"].tolist()[0] == 1.0 and frame["a"].tolist()[2] == 3.0
    assert frame.loc[1, "return_value"] == 2.5
    assert frame.loc[3, "return_value"] == {"nested": {"no": 1}}  # not a record: kept whole
    assert frame.loc[2, "b"] == "z"


def test_records_are_stacked_columns_not_groups_per_run(tmp_path):
    filename = str(tmp_path / "t.h5")
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(i) for i in range(300)]})
    env = ex.Environment(traj, filename=filename)
    env.run(lambda view: {"a": view.x, "b": 2.0, "c": 3})
    env.close()
    nodes = 0
    for path in [filename, *sorted(map(str, (tmp_path / "t.h5.segments").glob("*.h5")))]:
        with tables.open_file(path) as handle:
            if "/T/returns" in handle:
                nodes += sum(1 for _ in handle.walk_nodes("/T/returns"))
    assert 0 < nodes < 40  # a few columns, not 300 groups of nodes
    frame = ex.load_trajectory(filename).to_frame()
    assert frame["a"].tolist() == [float(i) for i in range(300)]
    assert frame["c"].tolist() == [3] * 300


# --------------------------------------------------------------- per-run items
def test_a_group_lists_its_per_run_items_after_reload(stored):
    traj = ex.load_trajectory(stored)
    assert sorted(traj.res.neuron) == ["V", "label", "nspikes"]
    assert "V" in traj.res.neuron and "W" not in traj.res.neuron
    assert "V" in repr(traj.res.neuron)
    assert sorted(traj.res.neuron.run_items()) == ["V", "label", "nspikes"]


def test_an_item_over_all_runs(stored):
    traj = ex.load_trajectory(stored)
    V = traj.res.neuron.V
    completed = [idx for idx in range(12) if idx not in FAILING]
    assert len(V) == 10
    assert V.runs.tolist() == completed
    assert V.dtype == np.float64 and V.shape == (6,)
    np.testing.assert_array_equal(V[5], expected_trace(5))
    np.testing.assert_array_equal(V[[1, 5]], np.array([expected_trace(1), expected_trace(5)]))
    everything = V[:]
    assert isinstance(everything, np.ndarray) and everything.shape == (10, 6)
    np.testing.assert_array_equal(everything, np.array([expected_trace(i) for i in completed]))
    np.testing.assert_array_equal(V[2:6], np.array([expected_trace(i) for i in (2, 3, 5)]))
    np.testing.assert_array_equal(V[-1], expected_trace(11))
    np.testing.assert_array_equal(V["run_00000007"], expected_trace(7))
    assert traj.res.neuron.nspikes[:].tolist() == [idx % 3 for idx in completed]
    assert traj.res.neuron.label[[0, 2]] == ["r0", "r2"]  # strings: a list
    assert traj.res.neuron["V"].runs.tolist() == completed


def test_an_item_refuses_runs_without_a_value(stored):
    V = ex.load_trajectory(stored).res.neuron.V
    with pytest.raises(ex.NodeNotFoundError, match="run 4 has no value"):
        V[4]
    with pytest.raises(ex.NodeNotFoundError, match="run 9"):
        V[[1, 9]]
    with pytest.raises(IndexError, match="12 run"):
        V[12]
    with pytest.raises(TypeError):
        V[1.5]


def test_rows_far_apart_in_the_stacked_dataset(tmp_path):
    # 8 KB rows in batches of two runs: each batch's rows are padded to a chunk,
    # so the rows of runs 0 and 3 lie a chunk apart
    filename = str(tmp_path / "t.h5")
    with ex.Environment("T", filename, progress=False, chunk_size=2) as env:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(6))})
        env.run(lambda view: view.add_result("neuron.$", V=np.full(1000, float(view.x))))
    V = ex.load_trajectory(filename).res.neuron.V
    for runs in ([0, 3], [5, 0, 3, 0], [1], list(range(6))):
        got = V[runs]
        assert got.shape == (len(runs), 1000)
        np.testing.assert_array_equal(got[:, 0], runs)
        np.testing.assert_array_equal(got[:, -1], runs)
    np.testing.assert_array_equal(V[::2][:, 500], [0.0, 2.0, 4.0])


def test_ragged_items_come_as_a_list(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("n", 1)
    traj.explore({"n": [1, 3, 2]})
    env = ex.Environment(traj, filename=str(tmp_path / "t.h5"))
    env.run(lambda view: view.add_result("spikes.$", times=np.arange(float(view.n))))
    env.close()
    times = ex.load_trajectory(str(tmp_path / "t.h5")).res.spikes.times
    assert times.shape is None and times.dtype == np.float64
    got = times[:]
    assert isinstance(got, list) and [len(a) for a in got] == [1, 3, 2]
    np.testing.assert_array_equal(got[1], np.arange(3.0))


def test_one_run_of_a_group(stored):
    traj = ex.load_trajectory(stored)
    run = traj.res.neuron[5]
    assert sorted(run.keys()) == ["V", "label", "nspikes"]
    assert run.to_dict()["label"] == "r5"
    np.testing.assert_array_equal(run.V, expected_trace(5))
    assert traj.res.neuron[4].keys() == []  # failed
    with pytest.raises(ex.NodeNotFoundError, match="failed or not run yet"):
        traj.res.neuron[4].V
    with pytest.raises(ex.ExplorerError):
        traj.res.neuron[99]


def test_items_before_and_after_storing(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 0)
    traj.explore({"x": [0, 1, 2]})
    for idx in range(3):
        traj.set_run(idx)
        traj.add_result("out.$", y=np.full(2, float(idx)))
    traj.restore_default()
    np.testing.assert_array_equal(traj.res.out.y[:], [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    traj.store(str(tmp_path / "t.h5"))
    traj.set_run(1)
    traj.add_result("out.$", z=7)  # in memory only, beside the stored y
    traj.restore_default()
    assert sorted(traj.res.out) == ["y", "z"]
    assert traj.res.out.z[1] == 7 and len(traj.res.out.z) == 1
    np.testing.assert_array_equal(traj.res.out.y[[2, 0]], [[2.0, 2.0], [0.0, 0.0]])


def test_items_of_results_named_without_dollar(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 0)
    traj.explore({"x": [0, 1]})
    env = ex.Environment(traj, filename=str(tmp_path / "t.h5"))
    env.run(lambda view: view.add_result("stats", mean=float(view.x)))
    env.close()
    traj = ex.load_trajectory(str(tmp_path / "t.h5"))
    assert "stats" in list(traj.res.runs)
    assert list(traj.res.runs.stats) == ["mean"]
    assert traj.res.runs.stats.mean[:].tolist() == [0.0, 1.0]


# ----------------------------------------------------------------------- xarray
def test_to_xarray_of_a_cartesian_grid(stored):
    ds = ex.load_trajectory(stored).to_xarray()
    assert ds.sizes["tau"] == 3 and ds.sizes["I"] == 4 and ds.sizes["V_dim_0"] == 6
    assert ds["tau"].values.tolist() == [10.0, 20.0, 30.0]
    assert ds["I"].values.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert ds["V"].dims == ("tau", "I", "V_dim_0")
    np.testing.assert_array_equal(ds["V"].sel(tau=20.0, I=1.5).values, expected_trace(7))
    assert np.isnan(ds["V"].sel(tau=20.0, I=0.0).values).all()  # run 4 failed
    assert float(ds["rate"].sel(tau=30.0, I=1.0)) == 2.0  # run 10
    assert np.isnan(float(ds["rate"].sel(tau=30.0, I=0.5)))  # run 9 failed
    assert ds["status"].sel(tau=30.0, I=1.0).item() == "completed"
    assert ds["error"].sel(tau=30.0, I=0.5).item() == "ValueError: run 9 diverged"
    assert ds["label"].sel(tau=10.0, I=1.5).item() == "r3"


def test_to_xarray_keeps_the_products_order(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("a", 0)
    traj.add_parameter("b", 0.0)
    traj.explore(ex.cartesian_product({"a": [1, 2, 3], "b": [0.5, 1.5]}, order=("b", "a")))
    env = ex.Environment(traj, filename=str(tmp_path / "t.h5"))
    env.run(lambda view: view.a * view.b)
    ds = traj.to_xarray()
    assert ds["return_value"].dims == ("b", "a")
    assert ds["return_value"].sel(a=3, b=1.5).item() == 4.5


def test_to_xarray_of_a_zipped_exploration(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("a", 0)
    traj.add_parameter("b", 0.0)
    traj.explore({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})
    env = ex.Environment(traj, filename=str(tmp_path / "t.h5"))
    env.run(lambda view: view.add_result("o.$", y=np.ones(2) * view.a))
    ds = ex.load_trajectory(str(tmp_path / "t.h5")).to_xarray()
    assert ds["y"].dims == ("run", "y_dim_0")
    assert ds["a"].dims == ("run",) and ds["a"].values.tolist() == [1, 2, 3]
    assert ds["b"].values.tolist() == [0.5, 1.5, 2.5]
    np.testing.assert_array_equal(ds["y"].values[2], [3.0, 3.0])


def test_to_xarray_after_an_expansion_off_the_grid(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("a", 0)
    traj.add_parameter("b", 0)
    traj.explore(ex.cartesian_product({"a": [1, 2], "b": [1, 2]}))
    traj.expand({"a": [5], "b": [5]})
    env = ex.Environment(traj, filename=str(tmp_path / "t.h5"))
    env.run(lambda view: float(view.a + view.b))
    ds = traj.to_xarray()
    assert ds["return_value"].dims == ("run",)
    assert ds["return_value"].values.tolist() == [2.0, 3.0, 3.0, 4.0, 10.0]


def test_to_xarray_without_xarray_says_how_to_install_it(stored):
    code = ("import sys; sys.modules['xarray'] = None\n"
            "import explorer as ex\n"
            f"traj = ex.load_trajectory({stored!r})\n"
            "try:\n    traj.to_xarray()\n"
            "except ex.ExplorerError as error:\n    print(error)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'explorer[xarray]'" in out.stdout


# ------------------------------------------------------------------- provenance
def test_sessions_is_one_row_per_run_call(tmp_path):
    filename = str(tmp_path / "t.h5")
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 0)
    traj.explore({"x": [0, 1]})
    env = ex.Environment(traj, filename=filename)
    env.run(lambda view: view.x)
    traj.expand({"x": [2]})
    env.run(lambda view: view.x)
    env.close()
    sessions = ex.load_trajectory(filename).sessions()
    assert len(sessions) == 2
    assert {"host", "versions", "start", "end", "runs"} <= set(sessions.columns)
    assert sessions["versions"][0]["explorer"] == ex.__version__
    assert ex.Trajectory("U").sessions().empty


# ------------------------------------------------------------- locked parameters
def test_a_reloaded_trajectory_with_completed_runs_keeps_its_parameters(stored):
    traj = ex.load_trajectory(stored)
    with pytest.raises(ex.ParameterLockedError, match="expand"):
        traj.par.neuron.tau = 99.0
    with pytest.raises(ex.ParameterLockedError):
        traj.par.neuron.I = 1.0
    with pytest.raises(ex.ParameterLockedError):
        traj.get("neuron.tau").value = 99.0  # the node itself keeps it too
    assert traj.get("neuron.tau").default == 10.0
    traj.expand({"tau": [40.0], "I": [0.0]})  # adding points is fine
    traj.store()
    assert len(ex.load_trajectory(stored)) == 13
    traj.add_config("note", "more")  # config is not what runs computed with
    traj.store()


def test_a_reloaded_trajectory_without_completed_runs_can_change(tmp_path):
    filename = str(tmp_path / "t.h5")
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 1.0)
    traj.store(filename)
    traj = ex.load_trajectory(filename)
    traj.par.x = 2.0
    traj.explore({"x": [1.0, 3.0]})
    traj.store()
    assert ex.load_trajectory(filename).get("x").range == [1.0, 3.0]


def test_a_reloaded_single_run_cannot_be_explored(tmp_path):
    filename = str(tmp_path / "t.h5")
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 1.0)
    env = ex.Environment(traj, filename=filename)
    env.run(lambda view: view.x)
    env.close()
    traj = ex.load_trajectory(filename)
    with pytest.raises(ex.ParameterLockedError, match="new trajectory"):
        traj.explore({"x": [1.0, 2.0]})


# ------------------------------------------------------------------ did you mean
def test_unknown_names_get_suggestions(neuron_traj, tmp_path):
    with pytest.raises(ex.NodeNotFoundError, match="did you mean 'tau_ref'"):
        neuron_traj.tua_ref
    with pytest.raises(ex.NodeNotFoundError, match="did you mean 'tau_V'"):
        neuron_traj.par.neuron.tau_v
    neuron_traj.explore({"I": [0.0, 1.0]})
    env = ex.Environment(neuron_traj, filename=str(tmp_path / "t.h5"))
    with pytest.raises(ex.RunsFailedError, match="did you mean 'tau_ref'"):
        env.run(lambda view: view.tua_ref)


def test_explore_refuses_single_values_by_name():
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 1.0)
    for single in (1.0, np.array(1.0), "abc"):
        with pytest.raises(ex.ExplorationError, match="values for 'x' must be a list"):
            traj.explore({"x": single})
