"""API.md section 6: fitting parameters, every evaluation a stored run.

The rate neuron of example 1 (r = a I + b under two current steps) is fitted by
every method, from recorded data (a = 0.8, b = 2) and from another neuron
(a = 6, b = 0), with real runs in a real HDF5 file; one test runs on a real
two-worker dask cluster, one kills the optimizing process and resumes.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import explorer as ex
import fit_models as models

TRUTHS = {"data": (models.DATA, (0.8, 2.0)), "other": (models.OTHER, (6.0, 0.0))}
#: Evaluations and tolerance per method: local and evolutionary methods converge,
#: sampling methods get as close as their sampling allows.
BUDGETS = {"cmaes": (200, 0.05), "nelder-mead": (150, 0.01), "slsqp": (150, 0.01),
           "l-bfgs-b": (150, 0.01), "de": (600, 0.05), "ga": (1000, 0.1), "tpe": (300, 0.3),
           "random": (2000, 1.0), "grid": (441, 1.0)}


def optimize(path, method, targets=models.DATA, max_evals=100, name="fit", **options):
    with ex.Environment(name, str(path), overwrite_file=True, progress=False,
                        workers=options.pop("workers", 1),
                        client=options.pop("client", None)) as env:
        optimizer = ex.Optimizer(env, options.pop("experiment", models.experiment),
                                 bounds=models.BOUNDS, loss=models.TraceLoss(targets),
                                 method=method, seed=options.pop("seed", 3), **options)
        return optimizer.run(max_evals=max_evals)


@pytest.mark.parametrize("target", sorted(TRUTHS))
@pytest.mark.parametrize("method", [pytest.param(method, marks=pytest.mark.slow)
                                    if method in ("cmaes", "tpe") else method  # fast loop
                                    for method in sorted(BUDGETS)])
def test_every_method_fits_the_rate_neuron(tmp_path, method, target):
    targets, (a, b) = TRUTHS[target]
    budget, tolerance = BUDGETS[method]
    fit = optimize(tmp_path / "fit.h5", method, targets, max_evals=budget)
    assert fit.evaluations <= budget
    assert fit.best_params["neuron.a"] == pytest.approx(a, abs=tolerance)
    assert fit.best_params["neuron.b"] == pytest.approx(b, abs=tolerance)
    history = fit.history
    # bounds respected, best_loss and best_params agree with the history
    for name, (low, high) in models.BOUNDS.items():
        assert history[name].between(low, high).all()
    assert fit.best_loss == history["loss"].min()
    best = history.loc[history["loss"].idxmin()]
    assert fit.best_params == {"neuron.a": best["neuron.a"], "neuron.b": best["neuron.b"]}
    np.testing.assert_allclose(history["loss"], history["loss_0"] + history["loss_1"])


@pytest.mark.slow
def test_every_evaluation_is_a_run_in_the_file(tmp_path):
    path = tmp_path / "fit.h5"
    fit = optimize(path, "cmaes", max_evals=60)
    traj = ex.load_trajectory(str(path), "fit")
    assert len(traj) == fit.evaluations == len(fit.history)
    frame = traj.to_frame()
    assert (frame["status"] == "completed").all()
    np.testing.assert_array_equal(frame["return_value"].astype(float), fit.history["loss"])
    np.testing.assert_array_equal(frame["a"], fit.history["neuron.a"])
    np.testing.assert_array_equal(frame["loss_1"], fit.history["loss_1"])
    assert frame["generation"].tolist() == fit.history["generation"].tolist()
    # a later session re-scores a stored candidate from its parameters
    traj.set_run(int(fit.history["loss"].idxmin()))
    outputs = [traj.neuron.a * c + traj.neuron.b for c in models.CURRENTS]
    assert sum(models.TraceLoss(models.DATA)(outputs)) == pytest.approx(fit.best_loss)
    assert traj["config.optimizer.method"] == "cmaes" and traj["config.optimizer.seed"] == 3


@pytest.mark.slow
def test_same_seed_same_search(tmp_path):
    first = optimize(tmp_path / "a.h5", "cmaes", max_evals=40, seed=9).history
    second = optimize(tmp_path / "b.h5", "cmaes", max_evals=40, seed=9).history
    other = optimize(tmp_path / "c.h5", "cmaes", max_evals=40, seed=10).history
    columns = ["neuron.a", "neuron.b", "loss", "generation"]
    assert first[columns].equals(second[columns])
    assert not first[columns].equals(other[columns])


@pytest.mark.slow
def test_starts_run_side_by_side(tmp_path):
    fit = optimize(tmp_path / "fit.h5", "nelder-mead", max_evals=480, starts=4)
    history = fit.history
    assert sorted(history["start"].unique()) == [0, 1, 2, 3]
    first = history[history["generation"] == 0]
    assert first["start"].tolist() == [0, 1, 2, 3]          # one point per start, together
    assert len({(a, b) for a, b in first[["neuron.a", "neuron.b"]].values}) == 4
    for start in range(4):
        mine = history[history["start"] == start]
        assert mine["loss"].min() < 0.05                     # each local search converges
    assert fit.best_params["neuron.a"] == pytest.approx(0.8, abs=0.01)


def test_starts_with_gradients_batch_the_finite_differences(tmp_path):
    fit = optimize(tmp_path / "fit.h5", "l-bfgs-b", max_evals=150, starts=2)
    sizes = fit.history.groupby("generation").size()
    assert sizes.iloc[0] == 2 * 3                            # (x, x + h e_a, x + h e_b) per start
    assert fit.best_params["neuron.b"] == pytest.approx(2.0, abs=0.01)


def test_validation_loss_and_best_by_validation(tmp_path):
    fit = optimize(tmp_path / "fit.h5", "cmaes", max_evals=80, validation_loss=models.validation)
    history = fit.history
    assert history["validation_loss"].notna().all()
    per_generation = history.loc[history.groupby("generation")["loss"].idxmin()]
    chosen = per_generation.loc[per_generation["validation_loss"].idxmin()]
    assert fit.best_by_validation == {"neuron.a": chosen["neuron.a"],
                                      "neuron.b": chosen["neuron.b"]}
    assert fit.best_by_validation_run == chosen.name
    assert fit.best_run == history["loss"].idxmin()
    assert optimize(tmp_path / "plain.h5", "cmaes", max_evals=20).best_by_validation is None


def test_failing_experiment_gets_an_infinite_loss_and_the_search_goes_on(tmp_path):
    path = tmp_path / "fit.h5"
    fit = optimize(path, "cmaes", max_evals=120, experiment=models.fragile_experiment)
    failed = fit.history[fit.history["status"] == "failed"]
    assert len(failed) > 0 and (failed["neuron.a"] < 0).all()
    assert np.isinf(failed["loss"]).all()
    assert failed["error"].str.startswith("ValueError: negative gain").all()
    assert fit.best_params["neuron.a"] == pytest.approx(0.8, abs=0.1)
    assert (ex.load_trajectory(str(path)).to_frame()["status"] == "failed").sum() == len(failed)


@pytest.mark.slow
def test_optimization_on_two_workers_is_the_same_search(tmp_path):
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        on_cluster = optimize(tmp_path / "two.h5", "cmaes", max_evals=50, client=client)
    alone = optimize(tmp_path / "one.h5", "cmaes", max_evals=50)
    columns = ["neuron.a", "neuron.b", "loss", "generation"]
    assert on_cluster.history[columns].equals(alone.history[columns])


# ------------------------------------------------------------------ resume
DRIVER = textwrap.dedent('''
    import sys
    sys.path.insert(0, sys.argv[3])
    import explorer as ex
    import fit_models as models

    if __name__ == "__main__":
        filename, method = sys.argv[1], sys.argv[2]
        with ex.Environment("fit", filename, progress=False) as env:
            optimizer = ex.Optimizer(env, models.slow_experiment, bounds=models.BOUNDS,
                                     loss=models.TraceLoss(models.DATA), method=method, seed=5)
            optimizer.run(max_evals=int(sys.argv[4]))
''')


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cmaes", "nelder-mead"])
def test_resume_after_a_kill_ends_where_an_uninterrupted_search_ends(tmp_path, method):
    budget = 60
    reference = optimize(tmp_path / "reference.h5", method, max_evals=budget, seed=5).history
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    path = tmp_path / "fit.h5"
    tests = os.path.dirname(os.path.abspath(__file__))
    driver = subprocess.Popen([sys.executable, str(script), str(path), method, tests,
                               str(budget)],
                              env={**os.environ, "EXPLORER_TEST_DELAY": "0.05"})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:   # wait until some generations are in the file
            time.sleep(0.2)
            try:
                done = (ex.load_trajectory(str(path), "fit").to_frame()["status"]
                        == "completed").sum()
            except (ex.ExplorerError, OSError):
                continue
            if done >= 12:
                break
        assert driver.poll() is None, "the search ended before it could be killed"
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    killed = ex.load_trajectory(str(path), "fit").to_frame()
    assert 12 <= (killed["status"] == "completed").sum() < budget
    with ex.Environment.resume(str(path), "fit", progress=False) as env:
        optimizer = ex.Optimizer(env, models.experiment, bounds=models.BOUNDS,
                                 loss=models.TraceLoss(models.DATA), method=method)
        resumed = optimizer.run(max_evals=budget).history
    columns = ["neuron.a", "neuron.b", "loss", "generation", "start"]
    assert resumed[columns].equals(reference[columns])
    assert (resumed["status"] == "completed").all()


def test_resume_refuses_other_settings(tmp_path):
    path = tmp_path / "fit.h5"
    optimize(path, "cmaes", max_evals=20, seed=1)
    for options, message in (({"method": "de", "seed": 1}, "method=cmaes"),
                             ({"method": "cmaes", "seed": 2}, "seed 1")):
        with ex.Environment.resume(str(path), "fit", progress=False) as env:
            with pytest.raises(ex.ExplorationError, match=message):
                ex.Optimizer(env, models.experiment, bounds=models.BOUNDS,
                             loss=models.TraceLoss(models.DATA), **options)


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("options, error, message", [
    ({"bounds": {}}, ValueError, "non-empty"),
    ({"bounds": {"neuron.a": (1.0, -1.0)}}, ValueError, "neuron.a.*low < high"),
    ({"bounds": {"neuron.a": 3.0}}, ValueError, "neuron.a.*\\(low, high\\)"),
    ({"method": "simplex"}, ValueError, "unknown method 'simplex'"),
    ({"method": "de", "starts": 3}, ValueError, "starts=3"),
    ({"loss": "rmse"}, TypeError, "loss must be callable"),
])
def test_bad_optimizer_settings_are_named(tmp_path, options, error, message):
    settings = {"bounds": models.BOUNDS, "loss": models.TraceLoss(models.DATA),
                "method": "cmaes", **options}
    with ex.Environment("bad", str(tmp_path / "bad.h5"), progress=False) as env:
        with pytest.raises(error, match=message):
            ex.Optimizer(env, models.experiment, **settings)


def test_grid_needs_two_points_per_axis(tmp_path):
    with pytest.raises(ValueError, match="at least 4 evaluations"):
        optimize(tmp_path / "g.h5", "grid", max_evals=3)


def test_losses():
    assert ex.losses.mse([1.0, 2.0], [1.0, 4.0]) == 2.0
    assert ex.losses.rmse([1.0, 2.0], [1.0, 4.0]) == pytest.approx(math.sqrt(2.0))
    with pytest.raises(ValueError, match="shape"):
        ex.losses.rmse([1.0, 2.0], [1.0])
    loss = ex.losses.feature_loss({"ppr": 0.9, "rise": 2.5}, {"ppr": 0.8, "rise": 2.0},
                                  weights={"ppr": 3.0})
    assert loss == pytest.approx(3 * 0.01 + 0.25)
    assert ex.losses.feature_loss({"ppr": float("nan")}, {"ppr": 0.8}) == math.inf
    with pytest.raises(ValueError, match="no value for the target feature.*decay"):
        ex.losses.feature_loss({"ppr": 1.0}, {"ppr": 0.8, "decay": 9.0})
