"""API.md section 3: results added in runs (``$``, ``crun``, ``runs.<run>``) and outside."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import explorer as ex


def euler_neuron(V_init, I, tau_V, tau_ref, dt, duration):
    """A leaky integrate-and-fire neuron (the tutorial's model), small and exact."""
    steps = int(round(duration / dt))
    V = np.zeros(steps)
    V[0] = V_init
    spikes = []
    refractory_until = -1.0
    for i in range(1, steps):
        t = i * dt
        if t < refractory_until:
            V[i] = 0.0
            continue
        V[i] = V[i - 1] + dt * (-V[i - 1] / tau_V + I)
        if V[i] >= 1.0:
            V[i] = 0.0
            spikes.append(i)
            refractory_until = t + tau_ref
    return V, np.array(spikes, dtype=np.int64), np.arange(steps) * dt


def run_neuron(traj):
    V, spikes, times = euler_neuron(traj.V_init, traj.I, traj.tau_V, traj.tau_ref,
                                    traj.dt, traj.duration)
    traj.add_result("neuron.$", V=V, times=times, nspikes=len(spikes),
                    comment="membrane potential and spike count")
    return len(spikes) / traj.duration * 1000.0


@pytest.fixture
def small_neuron(neuron_traj):
    neuron_traj.par.simulation.duration = 50.0
    neuron_traj.explore(ex.cartesian_product({"neuron.I": [0.0, 0.1, 0.2, 0.3],
                                              "neuron.tau_ref": [5.0, 10.0]},
                                             order=("neuron.tau_ref", "neuron.I")))
    return neuron_traj


def test_run_results_under_dollar_and_crun(small_neuron, make_env):
    env = make_env(small_neuron)
    results = env.run(run_neuron)
    traj = env.trajectory
    assert [idx for idx, _ in results] == list(range(len(traj)))
    for idx in traj.iter_runs():
        V, spikes, times = euler_neuron(0.0, traj.I, 12.0, traj.tau_ref, 0.1, 50.0)
        node = traj.res.neuron[traj.run_names[idx]]
        np.testing.assert_array_equal(node.V, V)
        np.testing.assert_array_equal(node.times, times)
        assert node.nspikes == len(spikes)
        np.testing.assert_array_equal(traj.res.neuron.crun.V, V)
        assert results[idx][1] == pytest.approx(len(spikes) / 50.0 * 1000.0)
    # the exploration makes the neuron fire in some runs and not others
    assert len({n for n in (traj.res.neuron[r].nspikes for r in traj.run_names)}) > 1


def test_run_result_named_by_attribute_and_by_index(small_neuron, make_env):
    env = make_env(small_neuron)
    env.run(run_neuron)
    traj = env.trajectory
    V, _, _ = euler_neuron(0.0, traj.get("I").range[5], 12.0, traj.get("tau_ref").range[5],
                           0.1, 50.0)
    np.testing.assert_array_equal(traj.res.neuron.run_00000005.V, V)
    np.testing.assert_array_equal(traj["neuron.run_00000005.V"], V)
    np.testing.assert_array_equal(traj["results.neuron.run_00000005.V"], V)
    traj.set_run(5)
    np.testing.assert_array_equal(traj["res.neuron.crun.V"], V)
    assert traj.run_templates == {"results.neuron.$": "membrane potential and spike count"}


def test_results_without_dollar_go_under_runs_run_name(make_env):
    env = make_env("T")
    traj = env.trajectory
    traj.add_parameter("x", 0)
    traj.explore({"x": [3, 4, 5]})

    def run(view):
        view.add_result("stats", doubled=2 * view.x, label=f"x is {view.x}")
        view.add_result("deep.inside", tripled=3 * view.x)

    env.run(run)
    for idx in traj.iter_runs():
        name = traj.run_names[idx]
        assert traj.res.runs[name].stats.doubled == 2 * traj.x
        assert traj.res.runs[name].stats.label == f"x is {traj.x}"
        assert traj.res.runs.crun.deep.inside.tripled == 3 * traj.x
        assert traj[f"results.runs.{name}.stats.doubled"] == 2 * traj.x
    assert set(traj.run_templates) == {"results.runs.$.stats", "results.runs.$.deep.inside"}


def test_dollar_in_the_middle_of_a_name(make_env):
    env = make_env("T")
    traj = env.trajectory
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [1.0, 2.0]})

    def run(view):
        samples = np.full(4, view.x)
        view.add_result("neuron.$.stats", mean=samples.mean(), samples=samples)

    env.run(run)
    assert traj.res.neuron.run_00000001.stats.mean == 2.0
    traj.set_run(0)
    np.testing.assert_array_equal(traj.res.neuron.crun.stats.samples, np.full(4, 1.0))


def test_run_name_of_the_current_run_is_the_same_as_dollar(make_env):
    env = make_env("T")
    traj = env.trajectory
    traj.add_parameter("x", 0)
    traj.explore({"x": [1, 2]})
    names = []

    def run(view):
        names.append(view.run_name)
        view.add_result(f"out.{view.run_name}", x=view.x)

    env.run(run)
    assert names == traj.run_names
    assert traj.res.out.run_00000001.x == 2


def test_a_run_may_not_add_results_of_another_run(make_env):
    env = make_env("T", on_error="record")
    traj = env.trajectory
    traj.add_parameter("x", 0)
    traj.explore({"x": [1, 2]})
    errors = []

    def run(view):
        other = traj.run_names[1 - view.idx]
        try:
            view.add_result(f"out.{other}", x=view.x)
        except ValueError as err:
            errors.append(str(err))
        return view.idx

    assert env.run(run) == [(0, 0), (1, 1)]
    assert len(errors) == 2 and "run_00000001" in errors[0] and "run_00000000" in errors[1]


def test_result_outside_runs_with_a_dataframe(small_neuron, make_env):
    env = make_env(small_neuron)
    results = env.run(run_neuron)
    traj = env.trajectory
    rates = pd.DataFrame({"I": traj.get("I").range, "tau_ref": traj.get("tau_ref").range,
                          "rate": [value for _, value in results]})
    node = traj.add_result("summary.firing_rates", rates_frame=rates, comment="rates table")
    assert isinstance(node, ex.Result)
    assert node.comment == "rates table"
    assert node.keys() == ["rates_frame"]
    pd.testing.assert_frame_equal(traj.res.summary.firing_rates.rates_frame, rates)
    traj.store()
    loaded = ex.load_trajectory(traj.filename, "FiringRate")
    pd.testing.assert_frame_equal(loaded.res.summary.firing_rates.rates_frame, rates)
    assert loaded.get("summary.firing_rates").comment == "rates table"


def test_result_holds_several_items_and_a_dict_of_frames():
    traj = ex.Trajectory("T")
    frame = pd.DataFrame({"a": [1, 2]})
    series = pd.Series([0.5, 1.5], name="s")
    node = traj.add_result("summary.all", frame=frame, tables={"f": frame, "s": series},
                           count=3, comment="bundle")
    assert sorted(node.keys()) == ["count", "frame", "tables"]
    everything = node.to_dict()
    assert everything["count"] == 3
    pd.testing.assert_frame_equal(everything["tables"]["f"], frame)
    pd.testing.assert_series_equal(everything["tables"]["s"], series)


def test_a_result_is_not_replaced_silently():
    traj = ex.Trajectory("T")
    traj.add_result("summary.value", v=1)
    with pytest.raises(ex.ExplorerError, match="summary.value"):
        traj.add_result("summary.value", v=2)
    assert traj.res.summary.value.v == 1
    traj.add_result("summary.value", v=2, overwrite=True)
    assert traj.res.summary.value.v == 2


def test_result_needs_items_and_valid_item_names():
    traj = ex.Trajectory("T")
    with pytest.raises(ValueError, match="summary.empty"):
        traj.add_result("summary.empty")
    with pytest.raises(ValueError, match="_hidden"):
        traj.add_result("summary.bad", _hidden=1)
    assert "summary.empty" not in traj and "summary.bad" not in traj


def test_results_only_go_in_the_results_branch():
    traj = ex.Trajectory("T")
    with pytest.raises(ValueError, match="par.x"):
        traj.add_result("par.x", v=1)


def test_run_function_result_with_unsupported_type_fails_that_run(make_env):
    env = make_env("T", on_error="record")
    traj = env.trajectory
    traj.add_parameter("x", 0)
    traj.explore({"x": [1, 2]})

    def run(view):
        if view.x == 2:
            view.add_result("out.$", thing=object())
        else:
            view.add_result("out.$", value=view.x)
        return view.x

    assert env.run(run) == [(0, 1)]
    frame = traj.to_frame()
    assert frame["status"].tolist() == ["completed", "failed"]
    assert traj.res.out.run_00000000.value == 1
