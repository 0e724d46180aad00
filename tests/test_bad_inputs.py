"""Every bad input API.md names: the error class it names, and a message naming the culprit.

API.md section 7: every explorer exception derives from ``ex.ExplorerError`` and
from the matching builtin, and every message names the thing that was wrong.
"""
from __future__ import annotations

import inspect
import pathlib

import h5py
import numpy as np
import pytest

import explorer as ex

# ------------------------------------------------------------------ the hierarchy
EXPECTED_BUILTINS = {
    "InvalidNameError": (ValueError,),
    "DuplicateNameError": (ValueError,),
    "NodeNotFoundError": (AttributeError, KeyError),
    "AmbiguousNameError": (LookupError,),
    "UnsupportedTypeError": (TypeError,),
    "ExplorationError": (ValueError,),
    "ParameterLockedError": (RuntimeError,),
    "RunsFailedError": (RuntimeError,),
    "UnsafeDataError": (ValueError,),
    "FileFormatError": (ValueError,),
    "TrajectoryNotFoundError": (KeyError,),
    "TrajectoryExistsError": (FileExistsError,),
}


def _exported_errors():
    return {name: obj for name, obj in vars(ex).items()
            if inspect.isclass(obj) and issubclass(obj, BaseException)
            and not issubclass(obj, Warning)}


def test_every_exported_warning_is_a_user_warning():
    warnings = {name: obj for name, obj in vars(ex).items()
                if inspect.isclass(obj) and issubclass(obj, Warning)}
    assert {"MergeWarning", "PypetImportWarning"} <= set(warnings)
    for name, cls in warnings.items():
        assert issubclass(cls, UserWarning) and not issubclass(cls, ex.ExplorerError), name


def test_every_exported_error_derives_from_explorer_error_and_a_builtin():
    errors = _exported_errors()
    assert set(EXPECTED_BUILTINS) <= set(errors)
    for name, cls in errors.items():
        assert issubclass(cls, ex.ExplorerError), name
        if cls is ex.ExplorerError:
            continue
        builtins = [base for base in cls.__mro__
                    if base.__module__ == "builtins" and base not in (object, BaseException,
                                                                      Exception)]
        assert builtins, f"{name} derives from no builtin error"
    for name, bases in EXPECTED_BUILTINS.items():
        for base in bases:
            assert issubclass(errors[name], base), (name, base)


# ------------------------------------------------------------------ names
@pytest.mark.parametrize("segment", ["1abc", "_x", "a-b", "a b", "é-1"])
@pytest.mark.parametrize("where", ["alone", "first", "last"])
def test_invalid_name_segment_is_a_value_error_naming_the_segment(segment, where):
    name = {"alone": segment, "first": f"{segment}.ok", "last": f"group.{segment}"}[where]
    traj = ex.Trajectory("T")
    with pytest.raises(ValueError) as info:
        traj.add_parameter(name, 1)
    assert isinstance(info.value, ex.ExplorerError)
    assert repr(segment) in str(info.value) or f'"{segment}"' in str(info.value)
    assert len(list(traj.par.walk())) == 0


@pytest.mark.parametrize("name", ["a..b", ".a", "a.", "group..leaf"])
def test_empty_segment_is_a_value_error_naming_it(name):
    traj = ex.Trajectory("T")
    with pytest.raises(ex.InvalidNameError) as info:
        traj.add_parameter(name, 1)
    assert isinstance(info.value, ValueError)
    assert "''" in str(info.value) or "empty" in str(info.value)
    assert name in str(info.value)


def test_empty_name_is_a_value_error():
    traj = ex.Trajectory("T")
    with pytest.raises(ValueError, match="empty"):
        traj.add_parameter("", 1)


@pytest.mark.parametrize("call", [
    lambda traj: traj.add_config("conf.bad-name", 1),
    lambda traj: traj.add_derived_parameter("_private", 1),
    lambda traj: traj.add_parameter_group("9lives"),
    lambda traj: traj.add_result("summary.3d", v=1),
    lambda traj: traj.add_result("summary.ok", **{"bad-item": 1}),
], ids=["config", "derived", "group", "result", "result-item"])
def test_every_adder_validates_names(call):
    traj = ex.Trajectory("T")
    with pytest.raises(ex.InvalidNameError) as info:
        call(traj)
    assert any(bad in str(info.value) for bad in ("'bad-name'", "'_private'", "'9lives'",
                                                   "'3d'", "'bad-item'"))


def test_invalid_trajectory_name_names_it():
    with pytest.raises(ValueError, match="my-traj"):
        ex.Trajectory("my-traj")


def test_ambiguous_shortcut_is_a_lookup_error_listing_full_names():
    traj = ex.Trajectory("T")
    traj.add_parameter("left.gain", 1.0)
    traj.add_parameter("right.gain", 2.0)
    with pytest.raises(ex.AmbiguousNameError) as info:
        traj.gain
    assert isinstance(info.value, LookupError)
    assert "parameters.left.gain" in str(info.value)
    assert "parameters.right.gain" in str(info.value)


def test_missing_name_is_an_attribute_and_key_error_naming_it():
    traj = ex.Trajectory("T")
    traj.add_parameter("neuron.tau", 1.0)
    with pytest.raises(AttributeError, match="'gain'") as by_attribute:
        traj.gain
    with pytest.raises(KeyError, match="gain") as by_key:
        traj["neuron.gain"]
    for error in (by_attribute.value, by_key.value):
        assert isinstance(error, ex.ExplorerError)


# ------------------------------------------------------------------ values
def test_unsupported_value_type_is_a_type_error_naming_parameter_and_type():
    traj = ex.Trajectory("T")

    class Custom:
        pass

    with pytest.raises(TypeError) as info:
        traj.add_parameter("model.custom", Custom())
    assert isinstance(info.value, ex.ExplorerError)
    assert "model.custom" in str(info.value)
    assert "Custom" in str(info.value)


def test_unsupported_result_type_is_a_type_error_naming_the_item():
    traj = ex.Trajectory("T")
    with pytest.raises(ex.UnsupportedTypeError) as info:
        traj.add_result("summary.r", handle=open)
    assert isinstance(info.value, TypeError)
    assert "handle" in str(info.value)


# ------------------------------------------------------------------ exploration
def _grid_traj():
    traj = ex.Trajectory("T")
    traj.add_parameter("grid.x", 0)
    traj.add_parameter("grid.y", 0.0)
    return traj


def test_unequal_lengths_name_parameters_and_lengths():
    traj = _grid_traj()
    with pytest.raises(ex.ExplorerError) as info:
        traj.explore({"x": [1, 2, 3], "y": [0.5, 1.5]})
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "grid.x" in message and "grid.y" in message
    assert "3" in message and "2" in message
    assert len(traj) == 1 and traj.explored_parameters == []


def test_unequal_lengths_in_expand_are_refused():
    traj = _grid_traj()
    traj.explore({"x": [1], "y": [0.5]})
    with pytest.raises(ex.ExplorerError) as info:
        traj.expand({"x": [2, 3], "y": [1.5]})
    assert "grid.x" in str(info.value) and "grid.y" in str(info.value)
    assert len(traj) == 1
    assert traj.get("x").range == [1]


def test_unknown_name_in_explore_is_named():
    traj = _grid_traj()
    with pytest.raises(ex.ExplorerError) as info:
        traj.explore({"x": [1, 2], "zeta": [1, 2]})
    assert isinstance(info.value, (ValueError, LookupError))
    assert "zeta" in str(info.value)
    assert len(traj) == 1 and not traj.get("x").is_explored


def test_expand_with_other_names_than_explored_is_refused():
    traj = _grid_traj()
    traj.explore({"x": [1, 2]})
    with pytest.raises(ex.ExplorerError) as info:
        traj.expand({"y": [1.0]})
    assert "grid.y" in str(info.value) or "grid.x" in str(info.value)
    assert len(traj) == 2


def test_exploring_a_config_value_is_refused_naming_it():
    traj = _grid_traj()
    traj.add_config("threads", 1)
    with pytest.raises(ex.ExplorerError, match="threads"):
        traj.explore({"threads": [1, 2]})


@pytest.mark.parametrize("name, bad", [
    ("x", "a"),          # str for an int parameter
    ("x", 1.5),          # float for an int parameter
    ("x", True),         # bool for an int parameter
    ("y", "a"),          # str for a float parameter
    ("y", [1.0]),        # list for a float parameter
])
def test_wrong_value_type_in_explore_is_a_type_error_naming_parameter_and_value(name, bad):
    traj = _grid_traj()
    good = {"x": 1, "y": 1.0}[name]
    with pytest.raises(TypeError) as info:
        traj.explore({name: [good, bad]})
    assert isinstance(info.value, ex.ExplorerError)
    assert f"grid.{name}" in str(info.value)
    assert repr(bad) in str(info.value)
    assert len(traj) == 1 and not traj.get(name).is_explored


def test_wrong_array_dtype_in_explore_is_refused():
    traj = ex.Trajectory("T")
    traj.add_parameter("weights", np.zeros(3))
    with pytest.raises(TypeError, match="weights"):
        traj.explore({"weights": [np.zeros(3), np.array(["a", "b", "c"])]})


def test_bad_exploration_is_refused_before_anything_runs(h5path):
    calls = []
    with ex.Environment("T", h5path, progress=False) as env:
        env.trajectory.add_parameter("x", 0)
        with pytest.raises(TypeError, match="x"):
            env.trajectory.explore({"x": [1, "two"]})
        with pytest.raises(ex.ExplorerError, match="nope"):
            env.trajectory.explore({"nope": [1]})
        assert env.run(lambda view: calls.append(view.x) or view.x) == [(0, 0)]
    assert calls == [0]


# ------------------------------------------------------------------ running
def test_parameter_change_while_running_is_a_runtime_error_naming_it(h5path):
    caught = []
    with ex.Environment("T", h5path, progress=False) as env:
        traj = env.trajectory
        traj.add_parameter("neuron.gain", 1.0)

        def run(view):
            try:
                traj.par.neuron.gain = 2.0
            except Exception as err:      # recorded to be checked outside the run
                caught.append(err)

        env.run(run)
    assert len(caught) == 1
    assert isinstance(caught[0], ex.ParameterLockedError)
    assert isinstance(caught[0], RuntimeError)
    assert "neuron.gain" in str(caught[0])


def test_failed_runs_are_a_runtime_error_listing_them(h5path):
    with ex.Environment("T", h5path, progress=False) as env:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": [0, 1, 2]})

        def run(view):
            if view.x == 2:
                raise ZeroDivisionError("divided by two")

        with pytest.raises(ex.RunsFailedError) as info:
            env.run(run)
    assert isinstance(info.value, RuntimeError)
    assert "run 2" in str(info.value)
    assert "divided by two" in str(info.value)
    assert info.value.failed == [(2, "ZeroDivisionError: divided by two")]


# ------------------------------------------------------------------ files
class _Marker:
    def __init__(self, path: pathlib.Path):
        self.path = path

    def __reduce__(self):
        return (self.path.write_text, ("ran",))


def test_pickled_data_without_allow_pickle_names_the_item_and_file(tmp_path, h5path):
    marker = tmp_path / "ran.txt"
    traj = ex.Trajectory("T", allow_pickle=True)
    traj.add_result("summary.obj", payload=_Marker(marker))
    traj.store(h5path)
    loaded = ex.load_trajectory(h5path)
    with pytest.raises(ex.UnsafeDataError) as info:
        loaded.res.summary.obj.payload
    assert isinstance(info.value, ex.ExplorerError)
    assert "payload" in str(info.value)
    assert h5path in str(info.value)
    assert "allow_pickle" in str(info.value)
    assert not marker.exists()


def test_not_an_explorer_file_names_the_file(tmp_path):
    plain = tmp_path / "foreign.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("data", data=np.arange(4))
    with pytest.raises(ex.ExplorerError) as info:
        ex.load_trajectory(str(plain))
    assert "foreign.h5" in str(info.value)
    assert "explorer" in str(info.value)


def test_text_file_is_not_an_explorer_file_and_is_named(tmp_path):
    text = tmp_path / "readme.txt"
    text.write_text("not hdf5")
    with pytest.raises(ex.ExplorerError) as info:
        ex.load_trajectory(str(text), "T")
    assert "readme.txt" in str(info.value)


def test_missing_trajectory_names_it(h5path):
    traj = ex.Trajectory("Stored")
    traj.add_parameter("a", 1)
    traj.store(h5path)
    with pytest.raises(ex.ExplorerError) as info:
        ex.load_trajectory(h5path, "Missing")
    assert isinstance(info.value, LookupError)
    assert "Missing" in str(info.value) and h5path in str(info.value)
    assert "Stored" in str(info.value)          # it says what the file does hold
    with pytest.raises(ex.ExplorerError, match="Missing"):
        ex.Environment.resume(h5path, "Missing", progress=False)


def test_overwrite_refused_names_trajectory_and_file(h5path):
    first = ex.Trajectory("Same")
    first.add_parameter("a", 1)
    first.store(h5path)
    second = ex.Trajectory("Same")
    second.add_parameter("a", 2)
    with pytest.raises(ex.ExplorerError) as info:
        second.store(h5path)
    assert "Same" in str(info.value) and h5path in str(info.value)
    assert "overwrite_file" in str(info.value)
    assert ex.load_trajectory(h5path, "Same").a == 1


def test_bad_load_mode_is_named(h5path):
    traj = ex.Trajectory("T")
    traj.add_parameter("a", 1)
    traj.store(h5path)
    with pytest.raises(ValueError, match="everything"):
        ex.load_trajectory(h5path, load="everything")
