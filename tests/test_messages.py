"""Error messages that name the thing and the fix: suggestions, types, how to go on."""
from __future__ import annotations

import numpy as np
import pytest

import explorer as ex
from explorer.suggest import did_you_mean


# ---------------------------------------------------------------- did you mean
def test_did_you_mean_one_close_name():
    assert did_you_mean("tua_ref", ["tau_ref", "tau_V", "I"]) == "; did you mean 'tau_ref'?"


def test_did_you_mean_nothing_close():
    assert did_you_mean("xyz", ["tau_ref", "duration"]) == ""
    assert did_you_mean("tau_ref", []) == ""


def test_did_you_mean_two_names_closest_first():
    assert did_you_mean("tau_re", ["tau_refr", "duration", "tau_ref"]) == \
        "; did you mean 'tau_ref' or 'tau_refr'?"


def test_did_you_mean_at_most_three_names():
    suffix = did_you_mean("tau", ["tau_a", "tau_b", "tau_c", "tau_d"])
    assert suffix.startswith("; did you mean ") and suffix.endswith("?")
    assert suffix.count("'") == 6 and ", " in suffix and " or " in suffix


def test_did_you_mean_takes_any_iterable_once_per_name():
    names = (name for name in ["tau_ref", "tau_ref", "dt"])
    assert did_you_mean("tau_rf", names) == "; did you mean 'tau_ref'?"


@pytest.mark.parametrize("name", ["", "I"])
def test_did_you_mean_short_names(name):
    assert did_you_mean(name, ["I", "V"]) in ("", "; did you mean 'I'?")


# ---------------------------------------------------------------- value types
def _traj() -> ex.Trajectory:
    traj = ex.Trajectory("T")
    traj.add_parameter("model.n", 2)
    traj.add_parameter("model.x", 1.0)
    traj.add_parameter("model.on", True)
    traj.add_parameter("model.label", "a")
    traj.add_parameter("model.w", np.zeros(3))
    return traj


def test_array_of_another_dtype_names_both_dtypes_and_shapes():
    traj = _traj()
    with pytest.raises(ex.UnsupportedTypeError) as info:
        traj.explore({"w": [np.arange(3)]})
    message = str(info.value)
    assert message.startswith("parameters.model.w: explored value array([0, 1, 2])")
    assert "an ndarray of int64 (shape (3,))" in message
    assert "default array([0., 0., 0.]) is an ndarray of float64 (shape (3,))" in message
    assert "dtype='float64'" in message


def test_array_of_other_dimensions_says_how_many():
    traj = _traj()
    with pytest.raises(ex.UnsupportedTypeError, match=r"shape \(2, 3\).*1 dimension$"):
        traj.explore({"w": [np.zeros((2, 3))]})


@pytest.mark.parametrize("value, said", [
    (1.5, "is a float, but the parameter's default 2 is an int"),
    ("3", "is a str, but the parameter's default 2 is an int"),
    (True, "is a bool, but the parameter's default 2 is an int; a bool is not taken"),
    (np.float32(1.5), "is a numpy float32, but the parameter's default 2 is an int"),
    (np.zeros(2), "is an ndarray of float64 (shape (2,)), but"),
])
def test_type_mismatch_names_both_types_with_their_article(value, said):
    traj = _traj()
    with pytest.raises(ex.UnsupportedTypeError) as info:
        traj.explore({"n": [value]})
    assert said in str(info.value)
    assert "a int" not in str(info.value) and "a ndarray" not in str(info.value)


def test_unsupported_type_message_uses_an():
    traj = _traj()
    with pytest.raises(ex.UnsupportedTypeError, match="cannot hold an object"):
        traj.add_parameter("model.thing", object())


# ---------------------------------------------------------------- lists needed
SINGLE_VALUES = [1.0, np.float64(1.0), np.array(1.0), "ab", None, 3, {"a": 1}]


@pytest.mark.parametrize("value", SINGLE_VALUES, ids=repr)
def test_cartesian_product_of_a_single_value_says_a_list_is_needed(value):
    with pytest.raises(ex.ExplorationError) as info:
        ex.cartesian_product({"x": [1.0, 2.0], "tau": value})
    assert "'tau'" in str(info.value) and "must be a list" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_cartesian_product_shows_the_fix_for_one_value():
    with pytest.raises(ex.ExplorationError, match=r"write \{'x': \[1.0\]\}"):
        ex.cartesian_product({"x": 1.0})


def test_cartesian_product_names_are_str_and_order_a_list():
    with pytest.raises(ex.ExplorationError, match="names are str"):
        ex.cartesian_product({1: [1.0]})
    with pytest.raises(ex.ExplorationError, match="order must be a list of names"):
        ex.cartesian_product({"x": [1.0]}, order="x")
    with pytest.raises(ex.ExplorationError, match="got a list"):
        ex.cartesian_product([("x", [1.0])])


@pytest.mark.parametrize("value", [1.0, "ab", None, 3], ids=repr)
def test_explore_with_a_single_value_says_a_list_is_needed(value):
    traj = _traj()
    with pytest.raises(ex.ExplorerError) as info:
        traj.explore({"x": value})
    assert "'x'" in str(info.value) and "list" in str(info.value)
    with pytest.raises(ex.ExplorerError) as info:
        traj.explore(ex.cartesian_product({"x": value}))
    assert "'x'" in str(info.value) and "list" in str(info.value)


# ---------------------------------------------------------------- assignment
def test_int_parameter_refuses_a_float_by_natural_naming():
    traj = _traj()
    with pytest.raises(ex.UnsupportedTypeError) as info:
        traj.par.model.n = 2.5
    message = str(info.value)
    assert "parameters.model.n" in message and "2.5 is a float" in message
    assert "default 2 is an int" in message
    assert traj.par.model.n == 2  # unchanged


def test_int_parameter_takes_ints():
    traj = _traj()
    traj.par.model.n = 3
    assert traj.par.model.n == 3 and type(traj.par.model.n) is int
    traj.par.model.n = np.int64(4)
    assert traj.par.model.n == 4 and type(traj.par.model.n) is int


def test_float_parameter_takes_an_int_as_explore_does():
    traj = _traj()
    traj.par.model.x = 2
    assert traj.par.model.x == 2.0 and type(traj.par.model.x) is float
    traj.explore({"x": [3]})
    assert [type(v) for v in traj.get("model.x").range] == [float]


@pytest.mark.parametrize("name, value", [("on", 1), ("label", 3), ("x", "1.0"), ("x", True),
                                         ("w", np.arange(3)), ("w", [0.0, 0.0, 0.0])])
def test_assignment_of_another_type_is_refused_like_explore(name, value):
    traj = _traj()
    with pytest.raises(ex.UnsupportedTypeError, match=f"parameters.model.{name}: value "):
        setattr(traj.par.model, name, value)
    with pytest.raises(ex.UnsupportedTypeError, match=f"parameters.model.{name}: explored value "):
        traj.explore({name: [value]})


def test_assignment_with_a_comment_is_checked_too():
    traj = _traj()
    with pytest.raises(ex.UnsupportedTypeError):
        traj.par.model.n = 2.5, "a comment"
    traj.par.model.n = 5, "five"
    assert traj.par.model.n == 5 and traj.get("model.n").comment == "five"


# ---------------------------------------------------------------- failed runs
def _fails_above_one(traj):
    if traj.x > 1:
        raise ValueError(f"x={traj.x} is too large")
    return traj.x


def test_runs_failed_error_says_how_to_read_the_errors(h5path):
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 1.0)
    traj.explore({"x": [1.0, 2.0]})
    with ex.Environment(traj, h5path, progress=False) as env:
        with pytest.raises(ex.RunsFailedError) as info:
            env.run(_fails_above_one)
    message = str(info.value)
    assert "run 1: ValueError: x=2.0 is too large" in message
    assert "traj.failures()" in message
    assert f"ex.load_trajectory({h5path!r}, 'T')" in message
    assert f"explorer failures {h5path}" in message
    assert f"ex.Environment.resume({h5path!r}, 'T')" in message
    failures = ex.load_trajectory(h5path).failures()  # what the message promises
    assert list(failures.index) == [1] and "too large" in failures.loc[1, "traceback"]


def test_adding_parameters_inside_a_run_points_to_per_run_results(tmp_path):
    with ex.Environment(trajectory="T", filename=str(tmp_path / "t.h5"), progress=False,
                        on_error="record") as env:
        env.trajectory.add_parameter("x", 1)
        env.run(lambda traj: traj.add_derived_parameter("runinfo.steps", 3))
        error = env.trajectory.failures()["error"][0]
    assert error.startswith("NodeNotFoundError: run 0: add_derived_parameter() is not "
                            "available inside a run")
    assert "traj.add_result('<name>.$', item=value)" in error
