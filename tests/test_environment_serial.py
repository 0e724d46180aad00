"""API.md section 4 with ``workers=1``: running, postprocessing, failures, resume, locks."""
from __future__ import annotations

import io
import sys

import pytest

import explorer as ex


def _explored_env(make_env, values, name="T", **options):
    env = make_env(name, **options)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": list(values)})
    return env


# ------------------------------------------------------------------ basics
def test_context_manager_runs_stores_and_closes(h5path, square_run):
    with ex.Environment("T", h5path, comment="a test", progress=False) as env:
        traj = env.trajectory
        assert isinstance(traj, ex.Trajectory)
        assert (traj.name, traj.comment) == ("T", "a test")
        traj.add_parameter("x", 0)
        traj.explore({"x": [1, 2, 3]})
        results = env.run(square_run)
    assert results == [(0, 10), (1, 20), (2, 30)]
    with pytest.raises(ex.ExplorerError, match="closed"):
        env.run(square_run)
    loaded = ex.load_trajectory(h5path, "T")
    assert loaded.comment == "a test"
    assert [loaded.res.square[name].value for name in loaded.run_names] == [1, 4, 9]


def test_environment_takes_an_existing_trajectory(h5path, neuron_traj, grid):
    neuron_traj.explore(grid)
    with ex.Environment(trajectory=neuron_traj, filename=h5path, progress=False) as env:
        assert env.trajectory is neuron_traj
        results = env.run(lambda view: view.I * view.tau_ref)
    assert results == [(i, I * tau) for i, (I, tau) in
                       enumerate(zip(grid["neuron.I"], grid["neuron.tau_ref"]))]
    assert ex.trajectory_names(h5path) == ["FiringRate"]


def test_default_filename_is_hdf5_slash_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ex.Environment("Defaulted", progress=False) as env:
        env.trajectory.add_parameter("x", 1)
        env.run(lambda view: view.x)
    assert (tmp_path / "hdf5" / "Defaulted.h5").is_file()
    assert ex.load_trajectory("hdf5/Defaulted.h5").to_frame()["return_value"].tolist() == [1]


def test_run_passes_args_and_kwargs_and_returns_by_index(make_env):
    env = _explored_env(make_env, [5, 3, 8, 1])
    calls = []

    def run(view, factor, offset=0, *, label):
        calls.append((view.idx, factor, offset, label))
        return view.x * factor + offset

    results = env.run(run, 2, offset=1, label="L")
    assert results == [(0, 11), (1, 7), (2, 17), (3, 3)]
    assert sorted(calls) == [(i, 2, 1, "L") for i in range(4)]


def test_unexplored_trajectory_runs_once(make_env):
    env = make_env("T")
    env.trajectory.add_parameter("x", 21)
    calls = []
    results = env.run(lambda view: calls.append(view.idx) or view.x * 2)
    assert results == [(0, 42)]
    assert calls == [0]


def test_run_view_sees_every_parameter_branch(make_env, neuron_traj):
    neuron_traj.explore({"neuron.I": [0.5, 1.0]})
    env = make_env(neuron_traj)
    seen = []

    def run(view):
        seen.append((view.idx, view.I, view.par.neuron.I, view["neuron.I"], view.tau_V,
                     view.conf.seed, view.seed, view.dpar.neuron.steps, view.simulation.dt,
                     len(view)))

    env.run(run)
    assert seen == [(0, 0.5, 0.5, 0.5, 12.0, 42, 42, 10000, 0.1, 2),
                    (1, 1.0, 1.0, 1.0, 12.0, 42, 42, 10000, 0.1, 2)]


def test_every_status_and_return_value_is_in_the_file(make_env, h5path):
    env = _explored_env(make_env, [1, 2, 3, 4], on_error="record")

    def run(view):
        if view.x == 3:
            raise ArithmeticError("three is bad")
        return view.x ** 3

    results = env.run(run)
    assert results == [(0, 1), (1, 8), (3, 64)]
    env.close()
    frame = ex.load_trajectory(h5path).to_frame()
    assert frame["status"].tolist() == ["completed", "completed", "failed", "completed"]
    assert frame.loc[[0, 1, 3], "return_value"].tolist() == [1, 8, 64]
    assert (frame.loc[[0, 1, 3], "duration"] >= 0).all()


# ------------------------------------------------------------------ postprocessing
def test_postprocessing_gets_the_results(make_env, square_run):
    env = _explored_env(make_env, [1, 2, 3])
    calls = []

    def post(traj, result_list, tag, *, scale):
        calls.append((len(traj), list(result_list), tag, scale))
        traj.add_result("summary.total", total=sum(v for _, v in result_list) * scale)

    env.add_postprocessing(post, "first", scale=2)
    results = env.run(square_run)
    assert results == [(0, 10), (1, 20), (2, 30)]
    assert calls == [(3, [(0, 10), (1, 20), (2, 30)], "first", 2)]
    assert env.trajectory.res.summary.total.total == 120


def test_postprocessing_expansion_runs_new_points(make_env, h5path, square_run):
    env = _explored_env(make_env, [1, 2])
    calls = []

    def post(traj, result_list):
        calls.append((len(traj), list(result_list)))
        if len(traj) < 4:     # one new point: the first new result's x plus 10
            first_idx = result_list[0][0]
            traj.expand({"x": [traj.get("x").range[first_idx] + 10]})

    env.add_postprocessing(post)
    results = env.run(square_run)
    # first call: runs 0, 1; expanded by x=11 -> run 2; second call: run 2 only;
    # expanded by x=21 -> run 3; third call: run 3 only, no expansion.
    assert calls == [(2, [(0, 10), (1, 20)]), (3, [(2, 110)]), (4, [(3, 210)])]
    assert results == [(0, 10), (1, 20), (2, 110), (3, 210)]
    env.close()
    loaded = ex.load_trajectory(h5path)
    assert len(loaded) == 4
    assert loaded.get("x").range == [1, 2, 11, 21]
    frame = loaded.to_frame()
    assert frame["status"].tolist() == ["completed"] * 4
    assert frame["return_value"].tolist() == [10, 20, 110, 210]
    assert [loaded.res.square[name].value for name in loaded.run_names] == [1, 4, 121, 441]


def test_postprocessing_that_expands_once(make_env, h5path):
    env = _explored_env(make_env, [0, 1, 2])
    runs_seen = []
    post_calls = []

    def run(view):
        runs_seen.append(view.idx)
        return view.x * 2

    def post(traj, result_list):
        post_calls.append([idx for idx, _ in result_list])
        if len(post_calls) == 1:
            traj.expand({"x": [5, 6]})

    env.add_postprocessing(post)
    results = env.run(run)
    assert runs_seen == [0, 1, 2, 3, 4]
    assert post_calls == [[0, 1, 2], [3, 4]]
    assert results == [(0, 0), (1, 2), (2, 4), (3, 10), (4, 12)]
    env.close()
    assert ex.load_trajectory(h5path).to_frame()["return_value"].tolist() == [0, 2, 4, 10, 12]


def test_postprocessing_must_be_callable(make_env):
    env = make_env("T")
    with pytest.raises(TypeError, match="42"):
        env.add_postprocessing(42)


# ------------------------------------------------------------------ failures
def _fails_on_odd(calls):
    def run(view):
        calls.append(view.idx)
        if view.x % 2:
            raise ValueError(f"odd value {view.x}")
        view.add_result("out.$", half=view.x // 2)
        return view.x
    return run


def test_failed_runs_raise_runs_failed_error_listing_them(make_env, h5path):
    env = _explored_env(make_env, [0, 1, 2, 3, 4])
    calls = []
    with pytest.raises(ex.RunsFailedError) as info:
        env.run(_fails_on_odd(calls))
    assert calls == [0, 1, 2, 3, 4]          # the other runs went on
    error = info.value
    assert isinstance(error, RuntimeError)
    message = str(error)
    assert "run 1" in message and "run 3" in message
    assert "odd value 1" in message and "odd value 3" in message
    assert [idx for idx, _ in error.failed] == [1, 3]
    assert "ValueError" in error.failed[0][1]
    env.close()
    frame = ex.load_trajectory(h5path).to_frame()
    assert frame["status"].tolist() == ["completed", "failed", "completed", "failed",
                                        "completed"]


def test_failed_run_error_and_traceback_are_in_the_file(make_env, h5path):
    env = _explored_env(make_env, [0, 1], on_error="record", complevel=0)

    def run(view):
        if view.x == 1:
            helper_that_fails(view.x)
        return view.x

    env.run(run)
    env.close()
    import h5py

    with h5py.File(h5path, "r") as f:
        errors = f["T/errors/error/s0"]
        assert errors["runs"][:].tolist() == [1]
        error = errors["data"][0].tobytes().decode()
        traceback = f["T/errors/traceback/s0/data"][0].tobytes().decode()
        runs = f["T/runs"][:]
    assert error == "KeyError: 'missing key for 1'"
    assert "helper_that_fails" in traceback and "Traceback" in traceback
    assert dict(zip(runs["idx"].tolist(), runs["status"].tolist())) == {0: 1, 1: 2}


def helper_that_fails(x):
    raise KeyError(f"missing key for {x}")


def test_on_error_record_returns_completed_runs(make_env):
    env = _explored_env(make_env, [0, 1, 2, 3], on_error="record")
    calls = []
    results = env.run(_fails_on_odd(calls))
    assert results == [(0, 0), (2, 2)]
    assert calls == [0, 1, 2, 3]
    assert env.trajectory.to_frame()["status"].tolist() == ["completed", "failed"] * 2


def test_resume_runs_only_what_did_not_complete(make_env, h5path):
    env = _explored_env(make_env, [0, 1, 2, 3, 4, 5], on_error="record")
    first_calls = []
    assert env.run(_fails_on_odd(first_calls)) == [(0, 0), (2, 2), (4, 4)]
    env.close()
    assert first_calls == [0, 1, 2, 3, 4, 5]

    second_calls = []

    def fixed(view):
        second_calls.append(view.idx)
        view.add_result("out.$", half=view.x // 2)
        return view.x

    with ex.Environment.resume(h5path, "T", progress=False) as resumed:
        results = resumed.run(fixed)
    assert second_calls == [1, 3, 5]
    assert results == [(i, i) for i in range(6)]
    loaded = ex.load_trajectory(h5path)
    assert loaded.to_frame()["status"].tolist() == ["completed"] * 6
    assert [loaded.res.out[name].half for name in loaded.run_names] == [0, 0, 1, 1, 2, 2]

    third_calls = []
    with ex.Environment.resume(h5path, progress=False) as again:   # name optional
        assert again.run(fixed) == [(i, i) for i in range(6)]
    assert third_calls == [] and second_calls == [1, 3, 5]


def test_resume_after_expanding_runs_the_new_points(make_env, h5path, square_run):
    env = _explored_env(make_env, [1, 2])
    env.run(square_run)
    env.close()
    loaded = ex.load_trajectory(h5path)
    loaded.expand({"x": [3]})
    loaded.store()
    calls = []

    def run(view):
        calls.append(view.idx)
        return square_run(view)

    with ex.Environment.resume(h5path, "T", progress=False) as resumed:
        assert resumed.run(run) == [(0, 10), (1, 20), (2, 30)]
    assert calls == [2]


# ------------------------------------------------------------------ locks
def test_run_function_cannot_set_parameters(make_env):
    env = _explored_env(make_env, [1, 2], on_error="record")
    errors = []

    def run(view):
        for assign in (lambda: setattr(view, "x", 5),
                       lambda: setattr(view.par, "x", 5)):
            try:
                assign()
            except ex.ParameterLockedError as err:
                errors.append(str(err))
        return view.x

    assert env.run(run) == [(0, 1), (1, 2)]
    assert len(errors) == 4
    assert all("x" in message for message in errors)


def test_uncaught_parameter_change_fails_the_run(make_env):
    env = _explored_env(make_env, [1, 2])

    def run(view):
        view.x = 10

    with pytest.raises(ex.RunsFailedError) as info:
        env.run(run)
    assert [idx for idx, _ in info.value.failed] == [0, 1]
    assert all("ParameterLockedError" in text for _, text in info.value.failed)


def test_trajectory_parameters_are_locked_during_run(make_env):
    env = _explored_env(make_env, [1, 2])
    traj = env.trajectory
    traj.add_parameter("other", 1.0)
    attempts = {
        "natural naming": lambda: setattr(traj.par, "other", 2.0),
        "node value": lambda: setattr(traj.get("other"), "value", 2.0),
        "add_parameter": lambda: traj.add_parameter("late", 1),
        "expand": lambda: traj.expand({"x": [9]}),
    }
    outcomes = []

    def run(view):
        outcomes.append(traj.is_locked)
        for what, attempt in attempts.items():
            try:
                attempt()
            except ex.ParameterLockedError as err:
                outcomes.append((what, "locked", str(err)))
            else:
                outcomes.append((what, "changed", ""))
        return view.x

    assert env.run(run) == [(0, 1), (1, 2)]
    assert outcomes[0] is True
    for what, state, message in outcomes[1:5]:
        assert state == "locked", what
    assert "other" in outcomes[1][2] and "other" in outcomes[2][2]
    assert "late" in outcomes[3][2]
    assert traj.get("other").value == 1.0
    assert len(traj) == 2 and "late" not in traj
    # after the runs parameters can change again
    assert not traj.is_locked
    traj.par.other = 3.0
    assert traj.other == 3.0


# ------------------------------------------------------------------ progress
class _Terminal(io.StringIO):
    """A text stream that says it is a terminal, so a progress bar would draw on it."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("progress", [True, False])
def test_progress_flag(make_env, monkeypatch, capfd, progress):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    env = _explored_env(make_env, range(20), progress=progress)
    env.run(lambda view: view.x)
    drawn = terminal.getvalue()
    out, err = capfd.readouterr()
    if progress:
        assert "20/20" in drawn
    else:
        assert drawn == "" and out == "" and err == ""


def test_seed_gives_each_run_a_reproducible_generator(make_env, h5path):
    env = _explored_env(make_env, [0, 1, 2], seed=1234)
    draws = dict(env.run(lambda view: view.rng.random(3).tolist()))
    env.close()
    assert len({tuple(v) for v in draws.values()}) == 3
    again = _explored_env(make_env, [0, 1, 2], name="Again", seed=1234)
    assert dict(again.run(lambda view: view.rng.random(3).tolist())) == draws
    assert ex.load_trajectory(h5path, "T").conf.environment.seed == 1234


def test_resume_reuses_the_stored_seed(make_env, h5path):
    reference = _explored_env(make_env, [0, 1, 2], name="Reference", seed=99)
    expected = dict(reference.run(lambda view: view.rng.random(2).tolist()))
    reference.close()  # one environment writes a file at a time

    env = _explored_env(make_env, [0, 1, 2], seed=99, on_error="record")

    def first(view):
        if view.idx == 1:
            raise RuntimeError("fails the first time")
        return view.rng.random(2).tolist()

    env.run(first)
    env.close()
    with ex.Environment.resume(h5path, "T", progress=False) as resumed:
        results = dict(resumed.run(lambda view: view.rng.random(2).tolist()))
    assert results == expected


def test_runs_returning_none_store_one_column_not_a_node_per_run(make_env, h5path):
    import tables

    env = make_env("Quiet")
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.explore({"x": [float(i) for i in range(50)]})
    results = env.run(lambda traj: traj.add_result("r.$", y=traj.x * 2) if traj.x < 45 else 7)
    assert results[:2] == [(0, None), (1, None)] and results[-1] == (49, 7)
    env.close()
    with tables.open_file(h5path) as handle:
        column = handle.get_node("/Quiet/returns/value")
        kinds = sorted(g._v_attrs.kind for g in column._f_iter_nodes("Group"))
        assert kinds == ["int", "none"]
        assert handle.get_node("/Quiet/returns/value/s0/data").nrows == 45
    frame = ex.load_trajectory(h5path).to_frame()
    assert frame["return_value"].isna().tolist() == [True] * 45 + [False] * 5
    assert frame["return_value"].iloc[45:].tolist() == [7] * 5
