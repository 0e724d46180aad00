"""API.md section 2: cartesian products, explore/expand, runs, set_run and iter_runs."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import explorer as ex


def _traj(**defaults) -> ex.Trajectory:
    traj = ex.Trajectory("T")
    for name, value in defaults.items():
        traj.add_parameter(f"grid.{name}", value)
    return traj


# ---------------------------------------------------------------- cartesian_product
def test_cartesian_product_last_name_in_order_varies_fastest():
    values = {"a": [1, 2, 3], "b": [10.0, 20.0], "c": ["x", "y"]}
    product = ex.cartesian_product(values, order=("b", "a", "c"))
    expected = list(itertools.product(values["b"], values["a"], values["c"]))
    assert set(product) == {"a", "b", "c"}
    points = list(zip(product["b"], product["a"], product["c"]))
    assert points == expected
    # the last name changes from one point to the next, the first only every 6 points
    assert product["c"][:4] == ["x", "y", "x", "y"]
    assert product["b"] == [10.0] * 6 + [20.0] * 6


def test_cartesian_product_default_order_is_the_mapping_order():
    product = ex.cartesian_product({"a": [1, 2], "b": [3, 4, 5]})
    assert list(zip(product["a"], product["b"])) == list(itertools.product([1, 2], [3, 4, 5]))


def test_cartesian_product_of_the_api_example(grid):
    currents = np.arange(0, 1.01, 0.05).tolist()
    assert len(grid["neuron.I"]) == len(grid["neuron.tau_ref"]) == 3 * len(currents)
    assert grid["neuron.I"][:len(currents)] == currents
    assert grid["neuron.tau_ref"][:len(currents)] == [5.0] * len(currents)
    assert grid["neuron.tau_ref"][len(currents)] == 7.5


def test_cartesian_product_order_must_name_every_key_once():
    with pytest.raises(ValueError, match="c"):
        ex.cartesian_product({"a": [1], "b": [2]}, order=("a", "c"))
    with pytest.raises(ValueError, match="b"):
        ex.cartesian_product({"a": [1], "b": [2]}, order=("a",))


# ---------------------------------------------------------------- explore
def test_len_is_one_when_nothing_is_explored():
    traj = _traj(x=0)
    assert len(traj) == 1
    assert traj.run_names == ["run_00000000"]
    assert traj.explored_parameters == []


def test_explore_zips_lists_point_by_point():
    traj = _traj(x=0, y=0.0, z="a")
    traj.explore({"x": [1, 2, 3], "grid.y": [0.5, 1.5, 2.5]})
    assert len(traj) == 3
    assert traj.run_names == ["run_00000000", "run_00000001", "run_00000002"]
    assert traj.explored_parameters == ["parameters.grid.x", "parameters.grid.y"]
    assert traj.get("x").range == [1, 2, 3]
    assert traj.get("y").range == [0.5, 1.5, 2.5]
    assert not traj.get("z").is_explored
    seen = []
    for idx in traj.iter_runs():
        seen.append((idx, traj.x, traj.y, traj.z))
    assert seen == [(0, 1, 0.5, "a"), (1, 2, 1.5, "a"), (2, 3, 2.5, "a")]


def test_explore_a_cartesian_product(neuron_traj, grid):
    neuron_traj.explore(grid)
    assert len(neuron_traj) == len(grid["neuron.I"])
    assert sorted(neuron_traj.explored_parameters) == ["parameters.neuron.I",
                                                        "parameters.neuron.tau_ref"]
    assert neuron_traj.run_names[13] == "run_00000013"
    assert neuron_traj.run_names[-1] == f"run_{len(grid['neuron.I']) - 1:08d}"


def test_run_names_are_run_and_eight_digits():
    traj = _traj(x=0)
    traj.explore({"x": list(range(12))})
    assert traj.run_names == [f"run_{idx:08d}" for idx in range(12)]


def test_expand_appends_points(neuron_traj, grid):
    neuron_traj.explore(grid)
    before = len(neuron_traj)
    neuron_traj.expand({"neuron.I": [1.05], "neuron.tau_ref": [5.0]})
    assert len(neuron_traj) == before + 1
    assert neuron_traj.run_names[-1] == f"run_{before:08d}"
    neuron_traj.set_run(before)
    assert (neuron_traj.I, neuron_traj.tau_ref) == (1.05, 5.0)
    assert neuron_traj.get("neuron.I").range == grid["neuron.I"] + [1.05]


def test_expand_on_unexplored_trajectory_explores():
    traj = _traj(x=0)
    traj.expand({"x": [4, 5]})
    assert len(traj) == 2
    assert traj.explored_parameters == ["parameters.grid.x"]


def test_explore_twice_is_refused_and_keeps_the_first():
    traj = _traj(x=0)
    traj.explore({"x": [1, 2]})
    with pytest.raises(ex.ExplorerError, match="expand"):
        traj.explore({"x": [3]})
    assert traj.get("x").range == [1, 2]


def test_int_values_are_accepted_for_a_float_parameter():
    traj = _traj(y=0.0)
    traj.explore({"y": [1, 2.5]})
    assert traj.get("y").range == [1.0, 2.5]
    assert all(type(v) is float for v in traj.get("y").range)


@pytest.mark.parametrize("default, values", [
    (True, [False, True]),
    (1 + 0j, [2j, 3 + 1j]),
    ("a", ["b", "c"]),
    (np.float32(0), [np.float32(1.5), np.float32(2.5)]),
    (np.zeros(3), [np.ones(3), np.arange(3.0)]),
    ([0, 0], [[1, 2], [3, 4]]),
    ((0.0,), [(1.0,), (2.0,)]),
])
def test_explore_each_parameter_type(default, values):
    traj = _traj(p=default)
    traj.explore({"p": values})
    for idx in traj.iter_runs():
        got = traj.p
        assert type(got) is type(values[idx])
        np.testing.assert_array_equal(got, values[idx])


# ---------------------------------------------------------------- set_run and friends
def test_set_run_by_index_or_name_and_restore_default(neuron_traj, grid):
    neuron_traj.explore(grid)
    neuron_traj.set_run(13)
    assert neuron_traj.current_run == 13
    assert neuron_traj.I == grid["neuron.I"][13]
    neuron_traj.set_run("run_00000040")
    assert neuron_traj.current_run == 40
    assert neuron_traj.I == grid["neuron.I"][40]
    assert neuron_traj.tau_ref == grid["neuron.tau_ref"][40]
    neuron_traj.restore_default()
    assert neuron_traj.current_run is None
    assert neuron_traj.I == 0.0
    assert neuron_traj.tau_ref == 5.0


def test_set_run_out_of_range_names_the_run():
    traj = _traj(x=0)
    traj.explore({"x": [1, 2]})
    with pytest.raises(ex.ExplorerError, match="5"):
        traj.set_run(5)
    with pytest.raises(ex.ExplorerError, match="9"):
        traj.set_run("run_00000009")
    with pytest.raises(ValueError, match="not_a_run"):
        traj.set_run("not_a_run")
    assert traj.current_run is None


def test_iter_runs_sets_each_run_and_restores_defaults(neuron_traj, grid):
    neuron_traj.explore(grid)
    seen = [(idx, neuron_traj.I, neuron_traj.tau_ref, neuron_traj.current_run)
            for idx in neuron_traj.iter_runs()]
    assert seen == [(i, I, tau, i) for i, (I, tau) in
                    enumerate(zip(grid["neuron.I"], grid["neuron.tau_ref"]))]
    assert neuron_traj.current_run is None
    assert neuron_traj.I == 0.0


def test_iter_runs_restores_defaults_after_break():
    traj = _traj(x=0)
    traj.explore({"x": [1, 2, 3]})
    runs = traj.iter_runs()
    for idx in runs:
        if idx == 1:
            break
    runs.close()
    assert traj.current_run is None
    assert traj.x == 0


def test_iter_runs_on_unexplored_trajectory_gives_one_run():
    traj = _traj(x=7)
    assert [(idx, traj.x) for idx in traj.iter_runs()] == [(0, 7)]


# ---------------------------------------------------------------- $ and crun outside runs
def test_dollar_and_crun_outside_an_environment():
    traj = _traj(x=0)
    traj.explore({"x": [2, 3, 4]})
    for idx in traj.iter_runs():
        traj.add_result("square.$", value=traj.x ** 2)
    assert traj.res.square.run_00000001.value == 9
    assert traj["square.run_00000002.value"] == 16
    traj.set_run(0)
    assert traj.res.square.crun.value == 4
    assert traj["res.square.crun.value"] == 4
    traj.set_run("run_00000002")
    assert traj.res.square.crun.value == 16


def test_dollar_without_a_current_run_is_refused():
    traj = _traj(x=0)
    traj.explore({"x": [2, 3]})
    with pytest.raises(ValueError, match=r"\$"):
        traj.add_result("square.$", value=1)


def test_crun_without_a_current_run_names_crun():
    traj = _traj(x=0)
    traj.explore({"x": [2, 3]})
    traj.set_run(0)
    traj.add_result("square.$", value=1)
    traj.restore_default()
    with pytest.raises(LookupError, match="crun"):
        traj.res.square.crun


def test_explicit_run_name_in_a_result_name():
    traj = _traj(x=0)
    traj.explore({"x": [2, 3]})
    traj.add_result("square.run_00000001", value=9)
    traj.set_run(1)
    assert traj.res.square.crun.value == 9


def test_a_run_without_results_under_a_template_names_the_missing_item():
    traj = _traj(x=0)
    traj.explore({"x": [2, 3]})
    traj.set_run(0)
    traj.add_result("square.$", value=4)
    with pytest.raises(AttributeError, match="value"):
        traj.res.square.run_00000001.value
