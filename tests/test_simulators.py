"""API.md section 4, compiled simulators: ``env.run(njit_function, outputs=..., result=...)``.

Every test runs real numba compilation and writes a real HDF5 file; the
2-worker tests run on a real ``distributed.LocalCluster``. Stored outputs are
compared run by run with what the same model stores as a plain run function.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

import explorer as ex
import sim_models as models

distributed = pytest.importorskip("distributed")

CURRENTS = np.linspace(0.0, 0.6, 9).tolist()
REFRACTORY = [1.0, 4.0, 9.0]


def lif_trajectory(name: str = "lif", duration: float = 100.0) -> ex.Trajectory:
    traj = ex.Trajectory(name)
    traj.add_parameter("neuron.V_init", 0.0)
    traj.add_parameter("neuron.I", 0.0)
    traj.add_parameter("neuron.tau_V", 12.0)
    traj.add_parameter("neuron.tau_ref", 5.0)
    traj.add_parameter("simulation.dt", 0.1)
    traj.add_parameter("simulation.duration", duration)
    traj.explore(ex.cartesian_product({"neuron.I": CURRENTS, "neuron.tau_ref": REFRACTORY}))
    return traj


def run(tmp_path, name: str, func, traj: ex.Trajectory | None = None, **options):
    """Run ``func`` over a fresh LIF trajectory in its own file; the reloaded trajectory."""
    traj = traj or lif_trajectory()
    path = str(tmp_path / f"{name}.h5")
    run_options = {key: options.pop(key) for key in ("outputs", "result") if key in options}
    with ex.Environment(traj, path, progress=False, **options) as env:
        results = env.run(func, **run_options)
        timings = dict(env.timings)
    assert [idx for idx, _ in results] == list(range(len(traj)))
    return ex.load_trajectory(path), timings


def assert_same_outputs(left: ex.Trajectory, right: ex.Trajectory, group: str,
                        items: tuple[str, ...]) -> None:
    assert len(left) == len(right)
    for idx in range(len(left)):
        left.set_run(idx)
        right.set_run(idx)
        for item in items:
            a = left[f"results.{group}.crun.{item}"]
            b = right[f"results.{group}.crun.{item}"]
            assert type(a) is type(b), (idx, item, type(a), type(b))
            if isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and np.array_equal(a, b), (idx, item)
            else:
                assert a == b, (idx, item)


@pytest.fixture(scope="module")
def client():
    """A real two-worker cluster for the module."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as made:
        made.wait_for_workers(2)
        yield made


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The model run as a plain Python run function, in this process."""
    return run(tmp_path_factory.mktemp("reference"), "reference", models.run_lif)[0]


# ------------------------------------------------------------------ same outputs
def test_simulator_stores_what_the_run_function_stores(tmp_path, reference):
    stored, timings = run(tmp_path, "sim", models.lif, outputs=("V", "nspikes"),
                          result="neuron")
    assert_same_outputs(reference, stored, "neuron", ("V", "nspikes"))
    stored.set_run(20)
    assert stored.res.neuron.crun.nspikes > 0  # the grid really spikes
    assert timings["run_seconds"] > 0
    assert timings["compile_seconds"] > 0  # chunks went through the compiled batch loop


def test_unbatched_simulator_compiles_no_loop(tmp_path, reference):
    stored, timings = run(tmp_path, "unbatched",
                          ex.Simulator(models.lif, ("V", "nspikes"), "neuron", batch=False))
    assert timings["compile_seconds"] == 0 and timings["run_seconds"] > 0
    assert_same_outputs(reference, stored, "neuron", ("V", "nspikes"))


@pytest.mark.slow
def test_simulator_on_two_workers(tmp_path, reference, client):
    stored, timings = run(tmp_path, "sim2", models.lif, outputs=("V", "nspikes"),
                          result="neuron", client=client, chunk_size=5)
    assert timings["compile_seconds"] > 0
    assert_same_outputs(reference, stored, "neuron", ("V", "nspikes"))


@pytest.mark.slow
def test_simulator_on_two_workers_lock_mode(tmp_path, reference, client):
    stored, _ = run(tmp_path, "sim2lock", models.declared_lif, client=client, chunk_size=4,
                    storage="lock")
    assert_same_outputs(reference, stored, "neuron", ("V", "nspikes"))


@pytest.mark.parametrize("declared", [models.declared_lif, models.parallel_lif,
                                      ex.Simulator(models.lif, ("V", "nspikes"), "neuron",
                                                   batch=False)],
                         ids=["decorator", "prange", "unbatched"])
def test_declared_simulators_store_the_same(tmp_path, reference, declared):
    stored, _ = run(tmp_path, "declared", declared, chunk_size=7)
    assert_same_outputs(reference, stored, "neuron", ("V", "nspikes"))


def test_frame_and_return_values_of_simulator_runs(tmp_path, reference):
    stored, _ = run(tmp_path, "frame", models.declared_lif)
    frame = stored.to_frame()
    assert len(frame) == len(CURRENTS) * len(REFRACTORY)
    assert (frame["status"] == "completed").all()
    assert frame["return_value"].isna().all()
    expected = []
    for idx in range(len(reference)):
        reference.set_run(idx)
        expected.append(reference.res.neuron.crun.nspikes)
    assert frame["nspikes"].tolist() == expected


def test_outputs_whose_shape_varies_are_stored_per_run(tmp_path):
    def traj():
        made = ex.Trajectory("spikes")
        made.add_parameter("I", 0.0)
        made.add_parameter("tau_V", 10.0)
        made.add_parameter("dt", 0.1)
        made.add_parameter("duration", 200.0)
        made.explore({"I": np.linspace(0.0, 0.5, 11).tolist()})
        return made

    plain, _ = run(tmp_path, "plain", models.run_spike_times, traj())
    stored, _ = run(tmp_path, "sim", models.spike_times, traj(), outputs=("times", "count"),
                    result="spikes")
    assert_same_outputs(plain, stored, "spikes", ("times", "count"))
    counts = [plain.res.spikes[f"run_{i:08d}"].count for i in range(len(plain))]
    assert len(set(counts)) > 2  # the shapes really differ


def test_failing_runs_are_recorded_and_the_others_stored(tmp_path):
    traj = ex.Trajectory("picky")
    traj.add_parameter("I", 0.0)
    traj.add_parameter("tau_V", 10.0)
    currents = np.linspace(0.0, 1.0, 11).tolist()
    traj.explore({"I": currents})
    path = str(tmp_path / "picky.h5")
    with ex.Environment(traj, path, progress=False, on_error="record") as env:
        results = env.run(models.picky, outputs=("x",), result="out")
    failing = [i for i, current in enumerate(currents) if current > 0.5]
    assert [idx for idx, _ in results] == [i for i in range(11) if i not in failing]
    loaded = ex.load_trajectory(path)
    frame = loaded.to_frame()
    assert frame.index[frame["status"] == "failed"].tolist() == failing
    for i in range(11):
        if i not in failing:
            loaded.set_run(i)
            assert loaded.res.out.crun.x == pytest.approx(currents[i] * 10.0)
    with pytest.raises(ex.RunsFailedError) as raised:
        with ex.Environment.resume(path, progress=False) as env:
            env.run(models.picky, outputs=("x",), result="out")
    assert [idx for idx, _ in raised.value.failed] == failing
    assert "current too large" in str(raised.value)


def test_array_parameter_and_bare_single_output(tmp_path):
    traj = ex.Trajectory("weights")
    traj.add_parameter("I", 0.0)
    traj.add_parameter("weights", np.array([1.0, 2.0, 3.5]))
    traj.explore({"I": [0.0, 0.5, 2.0]})
    stored, _ = run(tmp_path, "weights", models.weighted, traj, outputs="y", result="out")
    assert [stored.res.out[f"run_{i:08d}"].y for i in range(3)] == [0.0, 3.25, 13.0]


def test_default_argument_used_when_no_parameter_matches(tmp_path):
    traj = ex.Trajectory("defaults")
    traj.add_parameter("I", 0.0)
    traj.explore({"I": [1.0, 3.0]})
    stored, _ = run(tmp_path, "defaults", models.with_default, traj, outputs=("y",),
                    result="out")
    assert [stored.res.out[f"run_{i:08d}"].y for i in range(2)] == [2.0, 6.0]


# ------------------------------------------------------------------ clear errors
def small_env(tmp_path, **parameters) -> ex.Environment:
    traj = ex.Trajectory("errors")
    traj.add_parameter("I", 0.0)
    for name, value in parameters.items():
        traj.add_parameter(name, value)
    traj.explore({"I": [0.1, 0.2]})
    return ex.Environment(traj, str(tmp_path / "errors.h5"), progress=False)


def test_argument_matching_no_parameter_is_named(tmp_path):
    with small_env(tmp_path) as env:
        with pytest.raises(ex.ExplorationError, match="argument 'gain' of simulator "
                                                      "'needs_gain' matches no parameter"):
            env.run(models.needs_gain, outputs=("y",), result="out")
        assert len(env.trajectory) == 2
    assert (ex.load_trajectory(str(tmp_path / "errors.h5")).to_frame()["status"]
            == "pending").all()


def test_ambiguous_argument_is_named(tmp_path):
    traj = ex.Trajectory("ambiguous")
    traj.add_parameter("a.I", 0.0)
    traj.add_parameter("b.I", 1.0)
    traj.add_parameter("gain", 1.0)
    traj.explore({"a.I": [0.1, 0.2]})
    with ex.Environment(traj, str(tmp_path / "a.h5"), progress=False) as env:
        with pytest.raises(ex.ExplorationError, match="'I' .*ambiguous.*a.I.*b.I"):
            env.run(models.needs_gain, outputs=("y",), result="out")


def test_wrong_number_of_outputs_is_named(tmp_path):
    with small_env(tmp_path) as env:
        with pytest.raises(ex.ExplorationError,
                           match=r"'three' returned 3 values, but outputs= names 2: V, n"):
            env.run(models.three, outputs=("V", "n"), result="out")


def test_single_output_declared_for_a_tuple_is_named(tmp_path):
    with small_env(tmp_path) as env:
        with pytest.raises(ex.ExplorationError, match="returned 3 values, but outputs= names 1"):
            env.run(models.three, outputs=("V",), result="out")


def test_numba_function_needs_outputs(tmp_path):
    with small_env(tmp_path, gain=2.0) as env:
        with pytest.raises(ex.ExplorationError, match="outputs="):
            env.run(models.needs_gain)


def test_outputs_are_only_for_simulators(tmp_path):
    with small_env(tmp_path) as env:
        with pytest.raises(ex.ExplorationError, match="only|for numba simulators"):
            env.run(models.run_lif, outputs=("V",))


def test_simulator_takes_no_extra_arguments(tmp_path):
    with small_env(tmp_path, gain=2.0) as env:
        with pytest.raises(ex.ExplorationError, match="extra arguments"):
            env.run(models.needs_gain, 3.0, outputs=("y",), result="out")


def test_simulator_that_does_not_compile_is_named(tmp_path):
    with small_env(tmp_path, gain="loud") as env:
        with pytest.raises(ex.ExplorationError, match="'needs_gain' does not compile"):
            env.run(models.needs_gain, outputs=("y",), result="out")


def test_simulator_declaration_errors():
    with pytest.raises(TypeError, match="numba.njit"):
        ex.Simulator(models.run_lif, ("V",), "neuron")
    with pytest.raises(ValueError, match="repeat"):
        ex.Simulator(models.lif, ("V", "V"), "neuron")
    with pytest.raises(ex.InvalidNameError):
        ex.Simulator(models.lif, ("V", "n spikes"), "neuron")
