"""API.md section 1: the trajectory tree, its branches, names and natural naming."""
from __future__ import annotations

import numpy as np
import pytest

import explorer as ex

BRANCH_ALIASES = {"parameters": "par", "derived_parameters": "dpar", "config": "conf",
                  "results": "res"}


# ---------------------------------------------------------------- branches
def test_four_branches_and_their_aliases_are_the_same_groups():
    traj = ex.Trajectory("T")
    for branch, alias in BRANCH_ALIASES.items():
        full = getattr(traj, branch)
        short = getattr(traj, alias)
        assert isinstance(full, ex.Group)
        assert full is short
        assert full.full_name == branch
        assert traj.get(branch) is full and traj.get(alias) is full


def test_each_add_method_puts_the_node_in_its_branch(neuron_traj):
    traj = neuron_traj
    assert traj.get("neuron.V_init").full_name == "parameters.neuron.V_init"
    assert traj.get("seed").full_name == "config.seed"
    assert traj.get("neuron.steps").full_name == "derived_parameters.neuron.steps"
    assert traj.conf.seed == 42
    assert traj.config.seed == 42
    assert traj.dpar.neuron.steps == 10000
    assert traj.derived_parameters.neuron.steps == 10000
    traj.add_result("summary.rates", r=np.arange(3))
    assert traj.get("summary.rates").full_name == "results.summary.rates"
    assert traj.res.summary.rates is traj.results.summary.rates


@pytest.mark.parametrize("name", ["neuron.tau", "parameters.neuron.tau", "par.neuron.tau"])
def test_parameter_names_with_or_without_branch_prefix(name):
    traj = ex.Trajectory("T")
    node = traj.add_parameter(name, 3.5)
    assert node.full_name == "parameters.neuron.tau"
    for lookup in ("neuron.tau", "parameters.neuron.tau", "par.neuron.tau", "tau"):
        assert traj[lookup] == 3.5
        assert traj.get(lookup) is node


@pytest.mark.parametrize("adder, prefixes, branch", [
    ("add_config", ("config.", "conf.", ""), "config"),
    ("add_derived_parameter", ("derived_parameters.", "dpar.", ""), "derived_parameters"),
])
def test_other_branches_accept_their_prefix_or_none(adder, prefixes, branch):
    for i, prefix in enumerate(prefixes):
        traj = ex.Trajectory("T")
        node = getattr(traj, adder)(f"{prefix}group.value{i}", i)
        assert node.full_name == f"{branch}.group.value{i}"
        assert traj[f"{branch}.group.value{i}"] == i


def test_result_names_with_or_without_branch_prefix():
    traj = ex.Trajectory("T")
    first = traj.add_result("a.one", v=1)
    second = traj.add_result("results.a.two", v=2)
    third = traj.add_result("res.a.three", v=3)
    assert [first.full_name, second.full_name, third.full_name] == [
        "results.a.one", "results.a.two", "results.a.three"]
    assert traj.res.a.three.v == 3


def test_add_parameter_refuses_a_name_in_another_branch():
    traj = ex.Trajectory("T")
    with pytest.raises(ValueError, match="conf.x"):
        traj.add_parameter("conf.x", 1)
    assert "config.x" not in traj and "parameters.conf" not in traj


# ---------------------------------------------------------------- groups and comments
def test_groups_carry_comments(neuron_traj):
    group = neuron_traj.get("simulation")
    assert isinstance(group, ex.Group)
    assert group.comment == "dt and duration"
    assert group.full_name == "parameters.simulation"
    assert sorted(group) == ["dt", "duration"]
    made = neuron_traj.add_group("results.summary", comment="overall numbers")
    assert neuron_traj.get("res.summary") is made
    assert made.comment == "overall numbers"


def test_add_parameter_group_can_comment_an_existing_group(neuron_traj):
    neuron_traj.add_parameter_group("neuron", comment="the LIF neuron")
    assert neuron_traj.get("par.neuron").comment == "the LIF neuron"
    # the group's parameters are untouched
    assert neuron_traj.par.neuron.tau_V == 12.0


def test_value_comment_pair_through_natural_naming(neuron_traj):
    node = neuron_traj.get("neuron.tau_V")
    assert node.value == 12.0
    assert node.comment == "membrane time constant in ms"
    # a plain value keeps no comment
    assert neuron_traj.get("neuron.tau_ref").comment == ""
    assert neuron_traj.par.neuron.tau_ref == 5.0
    # reassigning an existing parameter with a pair changes value and comment
    neuron_traj.par.neuron.tau_ref = 7.5, "refractory period in ms"
    assert neuron_traj.get("neuron.tau_ref").value == 7.5
    assert neuron_traj.get("neuron.tau_ref").comment == "refractory period in ms"
    # pairs work in the other parameter branches too
    neuron_traj.conf.threads = 4, "how many threads"
    assert neuron_traj.get("config.threads").comment == "how many threads"
    assert neuron_traj.conf.threads == 4


def test_a_two_tuple_without_str_second_item_is_a_value():
    traj = ex.Trajectory("T")
    traj.par.pair = (1.0, 2.0)
    assert traj.par.pair == (1.0, 2.0)
    assert traj.get("pair").comment == ""


# ---------------------------------------------------------------- access styles
def test_natural_naming_index_and_get(neuron_traj):
    traj = neuron_traj
    assert traj.par.neuron.tau_V == 12.0
    assert traj["neuron.tau_V"] == 12.0
    assert traj["par.neuron.tau_V"] == 12.0
    assert traj.par["neuron.tau_V"] == 12.0
    assert traj.par.neuron["tau_V"] == 12.0
    node = traj.get("neuron.tau_V")
    assert isinstance(node, ex.Parameter)
    assert (node.value, node.default, node.range, node.is_explored) == (12.0, 12.0, None, False)
    assert node.comment == "membrane time constant in ms"


def test_get_returns_group_result_and_parameter_nodes(neuron_traj):
    neuron_traj.add_result("summary.rates", rates=np.arange(4.0), comment="rates per run")
    assert isinstance(neuron_traj.get("simulation"), ex.Group)
    assert isinstance(neuron_traj.get("simulation.dt"), ex.Parameter)
    result = neuron_traj.get("summary.rates")
    assert isinstance(result, ex.Result)
    assert result.comment == "rates per run"
    np.testing.assert_array_equal(result.rates, np.arange(4.0))
    np.testing.assert_array_equal(result["rates"], np.arange(4.0))
    # natural naming of a result gives the node (its items are reached below it)
    assert neuron_traj.res.summary.rates is result
    np.testing.assert_array_equal(neuron_traj["summary.rates.rates"], np.arange(4.0))


def test_unique_leaf_shortcuts(neuron_traj):
    traj = neuron_traj
    assert traj.tau_V == 12.0
    assert traj.dt == 0.1
    assert traj.duration == 1000.0
    assert traj.seed == 42
    assert traj.steps == 10000
    assert traj["tau_V"] == 12.0
    assert traj.get("tau_V") is traj.get("parameters.neuron.tau_V")
    # a unique group is reachable by its short name too
    assert traj.simulation.dt == 0.1


def test_shortcut_reaches_a_result_leaf(neuron_traj):
    result = neuron_traj.add_result("summary.firing_rates", rates=np.ones(2))
    assert neuron_traj.firing_rates is result
    assert neuron_traj.get("firing_rates") is result


def test_ambiguous_shortcut_lists_full_names(neuron_traj):
    neuron_traj.add_parameter("synapse.tau_V", 3.0)
    with pytest.raises(ex.AmbiguousNameError) as info:
        neuron_traj.tau_V
    assert isinstance(info.value, LookupError)
    message = str(info.value)
    assert "parameters.neuron.tau_V" in message
    assert "parameters.synapse.tau_V" in message
    # the same through [] and get
    with pytest.raises(LookupError, match="parameters.synapse.tau_V"):
        neuron_traj["tau_V"]
    with pytest.raises(ex.AmbiguousNameError, match="parameters.neuron.tau_V"):
        neuron_traj.get("tau_V")
    # full names still work
    assert neuron_traj["synapse.tau_V"] == 3.0


def test_ambiguous_across_branches_lists_full_names():
    traj = ex.Trajectory("T")
    traj.add_parameter("model.gain", 1.0)
    traj.add_config("gain", 2.0)
    with pytest.raises(ex.AmbiguousNameError) as info:
        traj.gain
    assert "parameters.model.gain" in str(info.value)
    assert "config.gain" in str(info.value)


def test_missing_shortcut_raises_attribute_error_naming_it(neuron_traj):
    with pytest.raises(AttributeError, match="tau_X"):
        neuron_traj.tau_X
    assert not hasattr(neuron_traj, "tau_X")
    assert getattr(neuron_traj, "tau_X", "fallback") == "fallback"


def test_missing_child_raises_attribute_error_naming_it(neuron_traj):
    with pytest.raises(AttributeError, match="tau_X"):
        neuron_traj.par.neuron.tau_X


def test_missing_name_raises_key_error_naming_it(neuron_traj):
    with pytest.raises(KeyError, match="tau_X"):
        neuron_traj["simulation.tau_X"]
    with pytest.raises(KeyError, match="tau_X"):
        neuron_traj["par.neuron.tau_X"]
    with pytest.raises(KeyError, match="nowhere"):
        neuron_traj.get("nowhere")
    with pytest.raises(KeyError, match="tau_X"):
        neuron_traj.get("parameters.simulation.tau_X")
    assert "neuron.tau_X" not in neuron_traj
    assert "neuron.tau_V" in neuron_traj


def test_missing_name_below_a_group_shared_by_two_branches_is_a_key_error(neuron_traj):
    # 'neuron' is a group in both parameters and derived_parameters; a child that is
    # in neither is missing (KeyError naming it), not ambiguous.
    assert neuron_traj["neuron.tau_V"] == 12.0
    assert neuron_traj["neuron.steps"] == 10000
    with pytest.raises(KeyError, match="tau_X"):
        neuron_traj["neuron.tau_X"]


def test_missing_result_item_names_it():
    traj = ex.Trajectory("T")
    traj.add_result("summary.rates", rates=np.ones(2))
    with pytest.raises(AttributeError, match="nope"):
        traj.res.summary.rates.nope
    with pytest.raises(KeyError, match="nope"):
        traj.res.summary.rates["nope"]


def test_setting_an_unknown_attribute_on_the_trajectory_is_refused():
    traj = ex.Trajectory("T")
    with pytest.raises(AttributeError, match="x"):
        traj.x = 1
    assert "x" not in traj


def test_adding_an_existing_parameter_is_refused_and_keeps_the_first(neuron_traj):
    with pytest.raises(ex.ExplorerError, match="tau_V"):
        neuron_traj.add_parameter("neuron.tau_V", 99.0)
    assert neuron_traj.tau_V == 12.0


def test_a_group_cannot_be_given_a_value(neuron_traj):
    with pytest.raises(ex.ExplorerError, match="simulation"):
        neuron_traj.par.simulation = 5.0
    assert isinstance(neuron_traj.get("simulation"), ex.Group)
    assert neuron_traj.dt == 0.1


# ---------------------------------------------------------------- value types
def test_parameter_value_can_change_outside_runs(neuron_traj):
    neuron_traj.par.neuron.I = 0.5
    node = neuron_traj.get("neuron.I")
    assert node.value == node.default == 0.5
    node.value = 0.25
    assert neuron_traj.I == 0.25


def test_unsupported_parameter_type_is_a_type_error_naming_the_parameter():
    traj = ex.Trajectory("T")

    class Thing:
        pass

    with pytest.raises(TypeError, match="neuron.model"):
        traj.add_parameter("neuron.model", Thing())
    with pytest.raises(TypeError, match="weird"):
        traj.par.weird = Thing()
    with pytest.raises(TypeError, match="nested"):
        traj.add_parameter("nested", [[1, 2], [3, 4]])   # a list of lists is not of scalars
    with pytest.raises(TypeError, match="mapping"):
        traj.add_parameter("mapping", {"a": 1})          # dicts are for results only
    assert "neuron.model" not in traj and "weird" not in traj and "mapping" not in traj


def test_unsupported_result_type_is_a_type_error_naming_the_item():
    traj = ex.Trajectory("T")
    with pytest.raises(TypeError, match="thing"):
        traj.add_result("summary.bad", thing=object())
    with pytest.raises(TypeError, match="inner"):
        traj.add_result("summary.bad", d={"inner": object()})
    assert "summary.bad" not in traj


def test_allow_pickle_accepts_other_objects():
    traj = ex.Trajectory("T", allow_pickle=True)
    traj.add_parameter("model.params", {"a": 1, "b": [1, 2]})
    traj.add_result("summary.obj", obj={1, 2, 3})
    assert traj.par.model.params == {"a": 1, "b": [1, 2]}
    assert traj.res.summary.obj.obj == {1, 2, 3}


def test_set_run_shows_explored_values_on_nodes(neuron_traj, grid):
    neuron_traj.explore(grid)
    node = neuron_traj.get("neuron.I")
    assert node.is_explored
    assert node.range == grid["neuron.I"]
    assert node.default == 0.0
    neuron_traj.set_run(13)
    assert node.value == grid["neuron.I"][13]
    assert neuron_traj.I == grid["neuron.I"][13]
    assert neuron_traj.par.neuron.I == grid["neuron.I"][13]
    assert neuron_traj["neuron.tau_ref"] == grid["neuron.tau_ref"][13]
    assert node.default == 0.0
    # unexplored parameters still show their value
    assert neuron_traj.tau_V == 12.0
    assert not neuron_traj.get("tau_V").is_explored
