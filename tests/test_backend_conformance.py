"""Conformance tests of the storage interface (``explorer/storage/base.py``).

:class:`StoreTests` holds what every back end must do, tested through the
interface alone (no back end's internals); each back end runs it in a
subclass that supplies the fixture ``make_store(name="T")`` (a store of
trajectory ``name`` in the test's file, closed after the test) and
``missing_filename`` (a file that does not exist). As zarr's
``zarr/testing/store.py`` does for its stores.
"""
from __future__ import annotations

import ast
import contextlib
import pathlib
import pickle
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from explorer.errors import (
    FileFormatError,
    OutputExistsError,
    TrajectoryExistsError,
    TrajectoryNotFoundError,
)
from explorer.records import RunRecord, RunStatus
from explorer.results import LazyItem
from explorer.storage.base import (
    ResultRecord,
    StoredTrajectory,
    TrajectoryChanges,
    TrajectoryStore,
    TreeRecord,
    backend,
)
from explorer.values import parameter_kind, result_kind

NEURON = "results.neuron.$"
COMPLETED, FAILED = int(RunStatus.COMPLETED), int(RunStatus.FAILED)


# ----------------------------------------------------------------------- helpers
def assert_same(got: Any, expected: Any, where: str = "value") -> None:
    """``got`` is ``expected``'s equal, of the same type (and dtype), recursively."""
    assert type(got) is type(expected), f"{where}: {type(got)} is not {type(expected)}"
    if isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype and got.shape == expected.shape, where
        np.testing.assert_array_equal(got, expected, err_msg=where)
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, np.generic):
        assert got.dtype == expected.dtype and got == expected, where
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def loaded(value: Any) -> Any:
    return value.load() if isinstance(value, LazyItem) else value


def changes(**fields: Any) -> TrajectoryChanges:
    """A :class:`TrajectoryChanges` that changes nothing but ``fields``."""
    base = dict(comment="", n_runs=0, tree=None, branch_comments={}, explored=[],
                exploration={}, start=0, results=[], run_items=[])
    base.update(fields)
    return TrajectoryChanges(**base)


def value(name: str, default: Any, comment: str = "") -> TreeRecord:
    return TreeRecord(name, comment, parameter_kind(name, default), default)


def group(name: str, comment: str = "") -> TreeRecord:
    return TreeRecord(name, comment)


#: A parameter tree with values of many kinds, parents first.
TREE = [
    group("parameters.neuron", "the neuron"),
    value("parameters.neuron.tau", 12.5, "membrane time constant"),
    value("parameters.neuron.n", 3),
    value("parameters.neuron.name", "lif", "its model"),
    value("parameters.neuron.on", True),
    value("parameters.neuron.z", 1 + 2j),
    value("parameters.neuron.weights", np.arange(6, dtype=np.float32).reshape(2, 3)),
    value("parameters.neuron.delays", [1, 2, 3]),
    value("parameters.neuron.pair", (0.5, 1.5)),
    value("parameters.neuron.small", np.int16(7)),
    group("parameters.neuron.deep", "a group in a group"),
    value("parameters.neuron.deep.x", 0.0),
    group("derived_parameters.steps", "derived"),
    value("derived_parameters.steps.count", 10000),
    value("config.seed", 42, "the seed"),
]

#: Result items of many kinds.
ITEMS = {"rate": 1.5, "count": 4, "label": "ok", "trace": np.linspace(0, 1, 5),
         "spikes": [1, 5, 9], "meta": {"a": 1, "b": "two", "c": np.arange(3)}, "nothing": None}


def result(full_name: str, comment: str, items: dict[str, Any]) -> ResultRecord:
    for item, item_value in items.items():
        result_kind(item, item_value)  # only values a trajectory would hand over
    parts = full_name.split(".")
    groups = [(".".join(parts[:i]), f"group {'.'.join(parts[:i])}")  # the branch's root first
              for i in range(1, len(parts))]
    return ResultRecord(full_name, comment, dict(items), groups)


def completed(idx: int, value: Any = None, rate: float | None = None, **extra: Any) -> RunRecord:
    items = {"rate": float(idx) if rate is None else rate, "spikes": idx,
             "trace": np.arange(3.0) + idx, **extra}
    return RunRecord(idx, RunStatus.COMPLETED, idx * 10 if value is None else value,
                     {NEURON: ("per neuron", items)}, started=1000.0 + idx, duration=0.5 + idx)


def failed(idx: int, message: str = "bad") -> RunRecord:
    return RunRecord(idx, RunStatus.FAILED, error=f"ValueError: {message}",
                     traceback=f"Traceback ...\nValueError: {message}", started=2000.0 + idx,
                     duration=0.25)


def encode(store: TrajectoryStore, *records: RunRecord) -> Any:
    encoder = store.encoding.encoder()
    for record in records:
        encoder.add(record)
    return encoder.finish()


def append(store: TrajectoryStore, *records: RunRecord) -> None:
    """Write ``records`` as one batch through an appender, committed."""
    commit_batch(store, encode(store, *records))


def commit_batch(store: TrajectoryStore, batch: Any) -> None:
    """Write an encoded ``batch`` through an appender, committed."""
    appender = store.appender(60.0)
    try:
        appender.add(batch)
        appender.commit()
    finally:
        appender.close()


def created(store: TrajectoryStore, comment: str = "a trajectory",
            allow_pickle: bool = False) -> TrajectoryStore:
    store.create(comment, allow_pickle, overwrite=False)
    return store


class Calls:
    """A ``stored`` callback that counts its calls."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def write(store: TrajectoryStore, **fields: Any) -> Calls:
    calls = Calls()
    store.write(changes(**fields), calls)
    return calls


def by_name(stored: StoredTrajectory) -> dict[str, ResultRecord]:
    return {record.full_name: record for record in stored.results}


def tree_of(stored: StoredTrajectory) -> dict[str, TreeRecord]:
    # the branches' roots are no nodes: a trajectory cannot add them
    assert all("." in record.full_name for record in stored.tree)
    assert all("." in name for name, _ in stored.result_groups)
    return {record.full_name: record for record in stored.tree}


def fill(store: TrajectoryStore) -> None:
    """Give ``store`` (created) some of everything: tree, exploration, results,
    per-run items, runs (one run again), sessions."""
    write(store, comment="filled", n_runs=3, tree=TREE, explored=["parameters.neuron.n"],
          exploration={"parameters.neuron.n": [1, 2, 3]},
          results=[result("results.summary.rates", "the rates", ITEMS)],
          run_items=[("results.extra.$", "extra items", 1, {"w": 0.5})])
    append(store, completed(0), failed(1), completed(2))
    append(store, completed(1, rate=7.0), failed(2, "worse"))
    store.add_session({"host": "here", "runs": 3})


def assert_same_content(got: TrajectoryStore, expected: TrajectoryStore) -> None:
    """The two stores hold the same, as the interface shows it."""
    a, b = got.read("all", allow_pickle=True), expected.read("all", allow_pickle=True)
    assert a.comment == b.comment
    assert tree_of(a).keys() == tree_of(b).keys()
    for name, record in tree_of(b).items():
        assert tree_of(a)[name].comment == record.comment
        assert tree_of(a)[name].kind == record.kind
        assert_same(tree_of(a)[name].value, record.value, name)
    assert_same(a.exploration, b.exploration, "exploration")
    assert by_name(a).keys() == by_name(b).keys()
    for name, record in by_name(b).items():
        assert by_name(a)[name].comment == record.comment
        # item order is not kept by every back end (HDF5 lists a group's children by name)
        assert_same(dict(sorted(by_name(a)[name].items.items())),
                    dict(sorted(record.items.items())), name)
    assert a.templates == b.templates
    ta, tb = got.run_table(), expected.run_table()
    for column in ("idx", "status", "started", "duration"):
        np.testing.assert_array_equal(getattr(ta, column), getattr(tb, column))
    runs = tb.idx.tolist()
    assert_same(got.return_values(runs), expected.return_values(runs), "return values")
    assert got.run_errors(runs) == expected.run_errors(runs)
    ra, rb = got.run_results(), expected.run_results()
    assert ra.templates() == rb.templates()
    for template in rb.templates():
        assert sorted(ra.items(template)) == sorted(rb.items(template))
        for item in rb.items(template):
            assert sorted(map(int, ra.runs(template, item))) == \
                sorted(map(int, rb.runs(template, item)))
            for idx in rb.runs(template, item):
                assert_same(ra.get(template, item, int(idx)), rb.get(template, item, int(idx)),
                            f"{template} {item} {idx}")
    assert got.sessions() == expected.sessions()


# ------------------------------------------------------------------------ the tests
class StoreTests:
    """What every back end's store does. Subclasses supply the fixtures
    ``make_store`` (``make_store(name="T")``: a store of that trajectory in the
    test's file) and ``missing_filename``, and the attribute ``backend_name``."""

    backend_name = ""

    # -------------------------------------------------------------- the back end
    def test_backend_is_found_by_name(self):
        found = backend(self.backend_name)
        assert found.name == self.backend_name
        with pytest.raises(ValueError):
            backend("no such back end")

    def test_store_knows_its_file(self, make_store):
        store = make_store("T")
        assert store.name == "T"
        assert store.same_file(store.filename)
        assert not store.same_file(store.filename + "-other")

    def test_publish_moves_a_finished_file_and_never_replaces_one(self, make_store):
        store = make_store("T")
        created(store)
        fill(store)
        source = store.filename
        target = source + "-published"
        store.close()
        found = backend(self.backend_name)
        found.publish(source, target)
        with opening(self.backend_name, target) as make, \
                opening(self.backend_name, source + "-reference") as make_reference:
            reference = created(make_reference("T"))
            fill(reference)
            assert_same_content(make("T"), reference)
        with pytest.raises(FileFormatError):
            found.trajectory_names(source)  # gone from where it was written
        other = make_store("U")  # written at the source's name again
        created(other)
        other.close()
        with pytest.raises(OutputExistsError, match="exists already"):
            found.publish(source, target)
        assert found.trajectory_names(target) == ["T"]  # left as it was
        found.discard(source)
        found.discard(target)
        with pytest.raises(FileFormatError):
            found.trajectory_names(target)

    def test_add_column_encodes_many_runs_of_one_item(self, make_store):
        store = created(make_store("T"))
        write(store, comment="", n_runs=4, tree=TREE)
        encoder = store.encoding.encoder()
        for idx in range(4):
            encoder.add_row(idx, int(RunStatus.COMPLETED), 0.0, 1.0)
        runs = np.array([0, 1, 2, 3])
        encoder.add_column("results.neuron.$", "stacked", "V", runs,
                           np.arange(4 * 600, dtype=float).reshape(4, 600))
        encoder.add_column("results.neuron.$", "stacked", "label", runs, ["a", "b", "c", "d"])
        encoder.add_column("results.neuron.$", "stacked", "n", runs[::2], np.array([5, 7]))
        commit_batch(store, encoder.finish())
        source = store.run_results()
        assert source.templates() == {"results.neuron.$": "stacked"}
        stacked = source.read("results.neuron.$", "V", runs)
        assert_same(np.asarray(stacked), np.arange(2400, dtype=float).reshape(4, 600))
        assert [source.get("results.neuron.$", "label", idx) for idx in range(4)] == \
            ["a", "b", "c", "d"]
        assert source.runs("results.neuron.$", "n").tolist() == [0, 2]
        assert source.get("results.neuron.$", "n", 2) == 7

    def test_trajectory_names(self, make_store, missing_filename):
        created(make_store("T"))
        created(make_store("U"))
        assert sorted(backend(self.backend_name).trajectory_names(make_store().filename)) == \
            ["T", "U"]
        with pytest.raises(FileFormatError):
            backend(self.backend_name).trajectory_names(missing_filename)

    def test_tidy_leaves_the_trajectory(self, make_store):
        fill(created(make_store()))
        backend(self.backend_name).tidy(make_store().filename)
        assert make_store().run_table().idx.tolist() == [0, 1, 2]

    # ----------------------------------------------------------------- creating
    def test_create(self, make_store):
        store = make_store()
        assert not store.exists()
        created(store, "made here")
        assert store.exists()
        assert store.is_unused()
        stored = store.read("lazy", allow_pickle=False)
        assert stored.comment == "made here"
        assert tree_of(stored) == {} and stored.exploration == {} and stored.results == []
        assert store.run_table().idx.tolist() == []
        assert store.sessions() == []
        assert not make_store("Other").exists()

    def test_create_refuses_a_trajectory_with_data(self, make_store):
        store = created(make_store())
        write(store, comment="kept", tree=[value("parameters.x", 1)])
        assert not store.is_unused()
        with pytest.raises(TrajectoryExistsError):
            make_store().create("again", False, overwrite=False)
        assert make_store().read("all", allow_pickle=False).comment == "kept"

    def test_create_over_an_unused_trajectory(self, make_store):
        created(make_store(), "first")
        created(make_store(), "second")  # nothing lost: no error
        assert make_store().read("lazy", allow_pickle=False).comment == "second"

    def test_overwrite_starts_afresh(self, make_store):
        fill(created(make_store()))
        store = make_store()
        store.create("fresh", False, overwrite=True)
        assert store.is_unused()
        stored = store.read("all", allow_pickle=False)
        assert stored.comment == "fresh"
        assert tree_of(stored) == {} and stored.exploration == {} and stored.results == []
        assert store.run_table().idx.tolist() == []
        assert store.return_values([0, 1, 2]) == {}
        assert store.run_results().templates() == {}
        assert store.scalar_columns() == {}
        # the exploration can be written again, over other parameters
        write(store, n_runs=1, tree=[value("parameters.y", 0.0)], explored=["parameters.y"],
              exploration={"parameters.y": [1.0]})
        assert store.read("lazy", allow_pickle=False).exploration == {"parameters.y": [1.0]}

    @pytest.mark.parametrize("what", ["parameter", "derived", "config", "exploration", "result",
                                      "run items", "runs"])
    def test_is_unused_until_something_is_kept(self, make_store, what):
        store = created(make_store())
        write(store, comment="a comment is nothing to keep")
        # an Environment's seed, stored first, is nothing to keep either
        write(store, tree=[group("config.environment"),
                           value("config.environment.seed", 7, "seed of traj.rng")])
        store.add_session({"host": "here"})
        assert store.is_unused()
        seed = [group("config.environment"), value("config.environment.seed", 7)]
        if what == "parameter":
            write(store, tree=seed + [value("parameters.x", 1)])
        elif what == "derived":
            write(store, tree=seed + [value("derived_parameters.x", 1)])
        elif what == "config":
            write(store, tree=seed + [value("config.other", 1)])
        elif what == "exploration":
            write(store, n_runs=1, tree=seed + [value("parameters.x", 1)],
                  explored=["parameters.x"], exploration={"parameters.x": [2]})
        elif what == "result":
            write(store, results=[result("results.r", "", {"v": 1})])
        elif what == "run items":
            write(store, run_items=[(NEURON, "", 0, {"v": 1})])
        else:
            append(store, completed(0))
        assert not store.is_unused()

    def test_copy_from_a_store_of_this_back_end(self, make_store):
        source = created(make_store("Source"))
        fill(source)
        target = make_store("Copy")
        target.create("copy", False, overwrite=False, copy_from=source)
        assert target.exists()
        assert_same_content(target, source)
        assert_same_content(source, make_store("Source"))  # the source is unchanged

    def test_copy_from_a_store_of_the_memory_back_end(self, make_store):
        source = backend("memory").open(f"conformance-{uuid.uuid4().hex}", "Source")
        try:
            created(source)
            fill(source)
            target = make_store("Copy")
            target.create("copy", False, overwrite=False, copy_from=source)
            assert_same_content(target, source)
        finally:
            backend("memory").remove(source.filename)

    def test_copy_into_a_store_of_the_memory_back_end(self, make_store):
        source = created(make_store("Source"))
        fill(source)
        target = backend("memory").open(f"conformance-{uuid.uuid4().hex}", "Copy")
        try:
            target.create("copy", False, overwrite=False, copy_from=source)
            assert_same_content(target, source)
        finally:
            backend("memory").remove(target.filename)

    def test_copy_from_a_missing_trajectory_creates_an_empty_one(self, make_store):
        store = make_store("Copy")
        store.create("empty", False, overwrite=False, copy_from=make_store("Nothing"))
        assert store.exists() and store.is_unused()

    # ------------------------------------------------------------------ writing
    def test_tree_round_trip(self, make_store):
        store = created(make_store())
        calls = write(store, comment="with a tree", tree=TREE,
                      branch_comments={"parameters": "all parameters"})
        assert calls.count == 1
        for load in ("lazy", "parameters", "all"):
            stored = make_store().read(load, allow_pickle=False)
            assert stored.comment == "with a tree"
            tree = tree_of(stored)
            assert sorted(tree) == sorted(record.full_name for record in TREE)
            for record in TREE:
                got = tree[record.full_name]
                assert (got.comment, got.kind) == (record.comment, record.kind), record.full_name
                assert_same(got.value, record.value, record.full_name)
            seen: set[str] = set()
            for record in stored.tree:  # parents first
                parent = record.full_name.rpartition(".")[0]
                assert "." not in parent or parent in seen, record.full_name
                seen.add(record.full_name)

    def test_tree_is_replaced_whole_or_kept(self, make_store):
        store = created(make_store())
        write(store, tree=TREE)
        write(store, comment="tree unchanged")  # tree=None
        assert sorted(tree_of(store.read("lazy", allow_pickle=False))) == \
            sorted(record.full_name for record in TREE)
        smaller = [value("parameters.neuron.tau", 20.0, "changed"), value("config.seed", 1)]
        write(store, tree=[group("parameters.neuron", "the neuron")] + smaller)
        tree = tree_of(store.read("lazy", allow_pickle=False))
        assert sorted(tree) == ["config.seed", "parameters.neuron", "parameters.neuron.tau"]
        assert tree["parameters.neuron.tau"].value == 20.0
        assert tree["parameters.neuron.tau"].comment == "changed"

    def test_written_values_are_copies(self, make_store):
        store = created(make_store())
        array = np.zeros(3)
        items = {"a": np.ones(2)}
        write(store, tree=[value("parameters.a", array)],
              results=[result("results.r", "", items)])
        array[:] = 5
        items["a"][:] = 5
        stored = store.read("all", allow_pickle=False)
        assert_same(tree_of(stored)["parameters.a"].value, np.zeros(3))
        assert_same(by_name(stored)["results.r"].items["a"], np.ones(2))

    def test_exploration_in_two_pieces(self, make_store):
        store = created(make_store())
        tree = [value("parameters.x", 0), value("parameters.label", ""),
                value("parameters.v", np.zeros(2))]
        explored = ["parameters.x", "parameters.label", "parameters.v"]
        write(store, n_runs=2, tree=tree, explored=explored,
              exploration={"parameters.x": [1, 2], "parameters.label": ["a", "b"],
                           "parameters.v": [np.zeros(2), np.ones(2)]})
        assert_same(store.read("lazy", allow_pickle=False).exploration,
                    {"parameters.x": [1, 2], "parameters.label": ["a", "b"],
                     "parameters.v": [np.zeros(2), np.ones(2)]})
        write(store, n_runs=4, explored=explored, start=2,
              exploration={"parameters.x": [3, 4], "parameters.label": ["c", "d"],
                           "parameters.v": [np.full(2, 2.0), np.full(2, 3.0)]})
        stored = make_store().read("parameters", allow_pickle=False)
        assert list(stored.exploration) == explored
        assert_same(stored.exploration, {
            "parameters.x": [1, 2, 3, 4], "parameters.label": ["a", "b", "c", "d"],
            "parameters.v": [np.zeros(2), np.ones(2), np.full(2, 2.0), np.full(2, 3.0)]})
        assert not store.is_unused()

    def test_explored_names_must_match(self, make_store):
        store = created(make_store())
        tree = [value("parameters.x", 0), value("parameters.y", 0)]
        write(store, n_runs=1, tree=tree, explored=["parameters.x", "parameters.y"],
              exploration={"parameters.x": [1], "parameters.y": [2]})
        calls = Calls()
        with pytest.raises(FileFormatError):
            store.write(changes(comment="not stored", n_runs=2,
                                explored=["parameters.y", "parameters.x"], start=1,
                                exploration={"parameters.x": [3], "parameters.y": [4]}), calls)
        assert calls.count == 0
        stored = store.read("lazy", allow_pickle=False)
        assert stored.exploration == {"parameters.x": [1], "parameters.y": [2]}
        assert stored.comment != "not stored"

    def test_results_round_trip(self, make_store):
        store = created(make_store())
        write(store, results=[result("results.summary.rates", "the rates", ITEMS),
                              result("results.top", "at the top", {"x": 1})])
        for load in ("lazy", "all"):
            stored = make_store().read(load, allow_pickle=False)
            results = by_name(stored)
            assert sorted(results) == ["results.summary.rates", "results.top"]
            rates = results["results.summary.rates"]
            assert rates.comment == "the rates"
            assert sorted(rates.items) == sorted(ITEMS)
            for item, expected in ITEMS.items():
                got = rates.items[item]
                if load == "all":
                    assert not isinstance(got, LazyItem), item
                assert_same(loaded(got), expected, item)
            tree_of(stored)  # no branch root among the groups
            groups = dict(stored.result_groups)
            assert groups["results.summary"] == "group results.summary"
        assert make_store().read("parameters", allow_pickle=False).results == []

    def test_lazy_items_read_written_values(self, make_store):
        store = created(make_store())
        write(store, results=[result("results.r", "", {"v": np.arange(4)})])
        item = store.read("lazy", allow_pickle=False).results[0].items["v"]
        assert_same(loaded(item), np.arange(4))
        assert_same(loaded(item), np.arange(4))  # again

    def test_a_result_is_replaced_whole(self, make_store):
        store = created(make_store())
        write(store, results=[result("results.summary.rates", "old", {"a": 1, "b": 2})])
        write(store, results=[result("results.other", "", {"c": 3})])
        write(store, results=[result("results.summary.rates", "new", {"b": np.arange(2)})])
        results = by_name(make_store().read("all", allow_pickle=False))
        assert sorted(results) == ["results.other", "results.summary.rates"]
        assert results["results.summary.rates"].comment == "new"
        assert_same(results["results.summary.rates"].items, {"b": np.arange(2)})
        assert_same(results["results.other"].items, {"c": 3})

    def test_run_items(self, make_store):
        store = created(make_store())
        write(store, run_items=[(NEURON, "per neuron", 0, {"V": np.arange(3.0), "n": 3}),
                                (NEURON, "per neuron", 2, {"V": np.ones(3), "n": 5}),
                                ("results.other.$", "other", 1, {"s": "x"})])
        assert store.run_table().idx.tolist() == []  # items only: no run ran
        results = make_store().run_results()
        assert results.templates() == {NEURON: "per neuron", "results.other.$": "other"}
        assert sorted(results.items(NEURON)) == ["V", "n"]
        assert sorted(map(int, results.runs(NEURON, "n"))) == [0, 2]
        assert_same(results.get(NEURON, "V", 2), np.ones(3))
        assert_same(results.get(NEURON, "n", 0), 3)
        assert_same(results.get("results.other.$", "s", 1), "x")
        assert make_store().read("lazy", allow_pickle=False).templates == \
            {NEURON: "per neuron", "results.other.$": "other"}
        # written again: the later value wins
        write(store, run_items=[(NEURON, "per neuron", 0, {"n": 30})])
        assert_same(make_store().run_results().get(NEURON, "n", 0), 30)

    # -------------------------------------------------------- stored() callbacks
    def test_stored_is_called_at_once_without_an_appender(self, make_store):
        store = created(make_store())
        seen = []
        store.write(changes(comment="now"), lambda: seen.append(
            make_store().read("lazy", allow_pickle=False).comment))
        assert seen == ["now"]  # once, when a reader sees the write

    def test_stored_waits_for_the_appenders_commit(self, make_store):
        store = created(make_store())
        appender = store.appender(60.0)
        try:
            calls = write(store, comment="with the runs", tree=[value("parameters.x", 1)])
            appender.add(encode(store, completed(0)))
            assert calls.count == 0
            appender.commit()
            assert calls.count == 1
            appender.add(encode(store, completed(1)))
            appender.commit()
            assert calls.count == 1
        finally:
            appender.close()
        assert calls.count == 1
        other = make_store()
        assert other.read("lazy", allow_pickle=False).comment == "with the runs"
        assert other.run_table().idx.tolist() == [0, 1]

    def test_writes_of_other_stores_of_the_file_join_the_appender(self, make_store):
        created(make_store("T"))
        created(make_store("U"))
        appender = make_store("T").appender(60.0)
        try:
            same = write(make_store("T"), comment="same trajectory")
            other = write(make_store("U"), comment="other trajectory")
            assert (same.count, other.count) == (0, 0)
            appender.commit()
            assert (same.count, other.count) == (1, 1)
        finally:
            appender.close()
        assert make_store("U").read("lazy", allow_pickle=False).comment == "other trajectory"

    def test_an_appender_closed_uncommitted_drops_its_writes(self, make_store):
        store = created(make_store(), "before")
        append(store, completed(0))
        appender = store.appender(60.0)
        try:
            calls = write(store, comment="dropped", tree=[value("parameters.x", 1)])
            appender.add(encode(store, completed(1), failed(0)))
            appender.add_session({"dropped": True})
        finally:
            appender.close()
        assert calls.count == 0
        for reader in (store, make_store()):
            assert reader.read("lazy", allow_pickle=False).comment == "before"
            assert tree_of(reader.read("lazy", allow_pickle=False)) == {}
            table = reader.run_table()
            assert table.idx.tolist() == [0] and table.status.tolist() == [COMPLETED]
            assert reader.sessions() == []
        # the store writes at once again
        calls = write(store, comment="after")
        assert calls.count == 1
        assert make_store().read("lazy", allow_pickle=False).comment == "after"

    def test_reads_see_what_an_open_appender_holds(self, make_store):
        # within the process, as the optimizer reads its generation's losses
        store = created(make_store())
        other = make_store()  # another store of the file, in this process
        appender = store.appender(60.0)
        try:
            appender.add(encode(store, completed(0, value=1.5)))
            for reader in (store, other):
                assert reader.return_values([0, 1]) == {0: 1.5}
                assert reader.run_table().idx.tolist() == [0]
            appender.add(encode(store, completed(1, value=2.5)))
            for reader in (store, other):
                assert reader.return_values([0, 1]) == {0: 1.5, 1: 2.5}
                assert reader.run_table().idx.tolist() == [0, 1]
            appender.commit()
        finally:
            appender.close()
        for reader in (store, other):
            assert reader.return_values([0, 1]) == {0: 1.5, 1: 2.5}

    def test_reads_after_an_appender_dropped_what_they_saw(self, make_store):
        store = created(make_store())
        append(store, completed(0, value=1.5))
        appender = store.appender(60.0)
        try:
            appender.add(encode(store, completed(1, value=2.5)))
            assert store.return_values([0, 1]) == {0: 1.5, 1: 2.5}
            assert make_store().return_values([0, 1]) == {0: 1.5, 1: 2.5}
        finally:
            appender.close()
        for reader in (store, make_store()):  # dropped
            assert reader.return_values([0, 1]) == {0: 1.5}
            assert reader.run_table().idx.tolist() == [0]

    # --------------------------------------------------------- runs and batches
    def test_encoding(self, make_store):
        store = make_store()
        store.create("", True, overwrite=False)
        assert store.encoding.allow_pickle is True
        encoding = pickle.loads(pickle.dumps(store.encoding))  # goes to the workers
        assert encoding.allow_pickle is True
        encoder = encoding.encoder()
        encoder.add(completed(0))
        batch = pickle.loads(pickle.dumps(encoder.finish()))  # comes back
        appender = store.appender(60.0)
        try:
            appender.add(batch)
            appender.commit()
        finally:
            appender.close()
        assert store.return_values([0]) == {0: 0}
        other = make_store("Other")
        other.create("", False, overwrite=False)
        assert other.encoding.allow_pickle is False

    def test_an_abandoned_encoder(self, make_store):
        store = created(make_store())
        encoder = store.encoding.encoder()
        encoder.add(completed(0))
        encoder.abandon()
        assert store.run_table().idx.tolist() == []

    def test_run_table_latest_row_wins(self, make_store):
        store = created(make_store())
        append(store, completed(2), failed(0), completed(1))
        table = store.run_table()
        assert table.idx.tolist() == [0, 1, 2]  # sorted by run
        assert table.status.tolist() == [FAILED, COMPLETED, COMPLETED]
        assert table.started.tolist() == [2000.0, 1001.0, 1002.0]
        assert table.duration.tolist() == [0.25, 1.5, 2.5]
        append(store, completed(0), failed(2), completed(1, value=99))
        table = make_store().run_table()
        assert table.idx.tolist() == [0, 1, 2]
        assert table.status.tolist() == [COMPLETED, COMPLETED, FAILED]
        assert table.started.tolist() == [1000.0, 1001.0, 2002.0]
        assert table.with_status(FAILED).tolist() == [2]
        assert table.with_status(COMPLETED).tolist() == [0, 1]
        assert np.issubdtype(table.idx.dtype, np.integer)

    def test_return_values(self, make_store):
        store = created(make_store())
        values = {0: 7, 1: 2.5, 2: "text", 3: np.arange(3), 4: None, 5: {"a": 1, "b": [1, 2]},
                  6: [1.0, 2.0], 7: True}
        append(store, *(completed(idx, value=v) for idx, v in values.items() if v is not None),
               RunRecord(4, RunStatus.COMPLETED, None, started=1.0, duration=1.0), failed(8))
        got = store.return_values([5, 3, 0, 4, 8, 99, 1, 2, 6, 7])
        assert list(got) == [5, 3, 0, 4, 1, 2, 6, 7]  # in the order asked; none for 8, 99
        for idx, expected in values.items():
            assert_same(got[idx], expected, f"run {idx}")
        assert store.return_values([]) == {}
        assert store.return_values(np.array([1, 0])) == {1: 2.5, 0: 7}

    def test_records_are_returned_whole(self, make_store):
        store = created(make_store())
        records = {0: {"rate": 1.5, "cv": 0.25, "n": 3}, 1: {"rate": 2.5, "cv": 0.5, "n": 4},
                   2: {"label": "x", "ok": True, "z": None}, 3: 7.5,
                   4: {"rate": 9.0}}  # keys come back sorted
        append(store, *(completed(idx, value=v) for idx, v in records.items()))
        got = store.return_values(range(6))
        assert list(got) == [0, 1, 2, 3, 4]
        for idx, expected in records.items():
            if isinstance(expected, dict):
                expected = dict(sorted(expected.items()))
            assert_same(got[idx], expected, f"run {idx}")
        assert store.run_results().templates() == {NEURON: "per neuron"}  # not a result
        copy = make_store("Copy")
        copy.create("", False, overwrite=False, copy_from=store)
        assert copy.return_values(range(6)) == got

    def test_run_failures(self, make_store):
        store = created(make_store())
        append(store, failed(0, "zero"), completed(1), failed(2, "two"))
        assert store.run_failures([2, 1, 0]) == {
            2: ("ValueError: two", "Traceback ...\nValueError: two"),
            0: ("ValueError: zero", "Traceback ...\nValueError: zero")}
        append(store, completed(0))
        assert list(store.run_failures(range(3))) == [2]

    def test_run_item_reads(self, make_store):
        store = created(make_store())
        append(store, completed(0), failed(1), completed(2, label="two"), completed(3))
        results = store.run_results()
        assert [results.has(NEURON, "trace", idx) for idx in range(5)] == \
            [True, False, True, True, False]
        assert not results.has(NEURON, "nothing", 0)
        kind, dtype, shape = results.info(NEURON, "trace")
        assert (kind, dtype, shape) == ("ndarray", np.dtype(float), (3,))
        assert results.info(NEURON, "rate")[1:] == (np.dtype(float), ())
        assert results.info(NEURON, "label")[0] == "str"
        stacked = results.read(NEURON, "trace", np.array([3, 0]))
        assert_same(stacked, np.array([np.arange(3.0) + 3, np.arange(3.0)]))
        assert_same(results.read(NEURON, "rate", np.array([0, 2])), np.array([0.0, 2.0]))
        assert results.read(NEURON, "label", np.array([2])) == ["two"]
        with pytest.raises(KeyError):
            results.read(NEURON, "trace", np.array([0, 1]))

    def test_run_errors(self, make_store):
        store = created(make_store())
        append(store, failed(0, "zero"), failed(1, "one"), completed(2))
        assert store.run_errors([0, 1, 2]) == {0: "ValueError: zero", 1: "ValueError: one"}
        append(store, completed(1), failed(2, "two"))  # 1 ran again and completed
        errors = store.run_errors([2, 1, 0, 5])
        assert errors == {2: "ValueError: two", 0: "ValueError: zero"}
        assert list(errors) == [2, 0]
        assert store.run_errors([1]) == {}

    def test_run_results(self, make_store):
        store = created(make_store())
        append(store, completed(0), failed(1), completed(2, label="two"))
        results = store.run_results()
        assert results.templates() == {NEURON: "per neuron"}  # not returns, not errors
        assert sorted(results.items(NEURON)) == ["label", "rate", "spikes", "trace"]
        assert sorted(map(int, results.runs(NEURON, "rate"))) == [0, 2]
        assert sorted(map(int, results.runs(NEURON, "label"))) == [2]
        assert_same(results.get(NEURON, "rate", 2), 2.0)
        assert_same(results.get(NEURON, "spikes", 0), 0)
        assert_same(results.get(NEURON, "trace", 2), np.arange(3.0) + 2)
        assert_same(results.get(NEURON, "label", 2), "two")
        for missing in [(NEURON, "rate", 1), (NEURON, "label", 0), (NEURON, "nothing", 0),
                        ("results.nothing.$", "rate", 0)]:
            with pytest.raises(KeyError):
                results.get(*missing)
        assert results.items("results.nothing.$") == []
        # run again: the later value wins, runs added
        append(store, completed(0, rate=100.0), completed(1))
        assert_same(results.get(NEURON, "rate", 0), 100.0)
        assert sorted(map(int, results.runs(NEURON, "rate"))) == [0, 1, 2]
        assert 1 in results.runs(NEURON, "rate")
        assert make_store().read("lazy", allow_pickle=False).templates == {NEURON: "per neuron"}

    def test_add_items_without_a_row(self, make_store):
        store = created(make_store())
        encoder = store.encoding.encoder()
        encoder.add_items("results.extra.$", "extra", 3, {"w": 1.5, "v": np.ones(2)})
        commit_batch(store, encoder.finish())
        assert store.run_table().idx.tolist() == []
        results = store.run_results()
        assert results.templates() == {"results.extra.$": "extra"}
        assert_same(results.get("results.extra.$", "w", 3), 1.5)
        assert_same(results.get("results.extra.$", "v", 3), np.ones(2))

    def test_add_block(self, make_store):
        store = created(make_store())
        encoder = store.encoding.encoder()
        runs = np.array([5, 6, 7])
        encoder.add_block(runs, 100.0, 3.0, "results.block.$", "block",
                          {"x": np.array([1.0, 2.0, 3.0]),
                           "v": np.arange(6, dtype=np.int32).reshape(3, 2)})
        commit_batch(store, encoder.finish())
        table = store.run_table()
        assert table.idx.tolist() == [5, 6, 7]
        assert table.status.tolist() == [COMPLETED] * 3
        assert table.started.tolist() == [100.0, 101.0, 102.0]
        assert table.duration.tolist() == [1.0, 1.0, 1.0]
        assert store.return_values(runs) == {5: None, 6: None, 7: None}
        results = store.run_results()
        assert results.templates() == {"results.block.$": "block"}
        assert results.get("results.block.$", "x", 6) == 2.0
        assert_same(results.get("results.block.$", "v", 7), np.array([4, 5], dtype=np.int32))
        runs_x, values_x = store.scalar_columns()[("results.block.$", "x")]
        assert runs_x.tolist() == [5, 6, 7] and values_x.tolist() == [1.0, 2.0, 3.0]

    def test_scalar_columns(self, make_store):
        store = created(make_store())
        append(store, completed(2, flag=True), completed(0, flag=False), failed(1),
               completed(3, flag=True))
        append(store, completed(0, rate=100.0, flag=True))  # run 0 again
        columns = store.scalar_columns()
        assert (NEURON, "trace") not in columns  # arrays are not scalars
        assert (NEURON, "flag") in columns
        for item, expected in [("rate", [100.0, 2.0, 3.0]), ("spikes", [0, 2, 3]),
                               ("flag", [True, True, True])]:
            runs, values = columns[(NEURON, item)]
            assert isinstance(runs, np.ndarray) and isinstance(values, np.ndarray)
            assert runs.tolist() == [0, 2, 3], item
            assert values.tolist() == expected, item
        assert all(template.startswith("results.") for template, _ in columns)
        append(store, completed(4, label="four"), completed(5, label="five"))
        runs, values = store.scalar_columns()[(NEURON, "label")]  # strings are columns too
        assert runs.tolist() == [4, 5] and values.tolist() == ["four", "five"]

    def test_appender_due(self, make_store):
        store = created(make_store())
        appender = store.appender(3600.0)
        try:
            assert not appender.due() and not appender.due(0.0)  # nothing waits
            appender.add(encode(store, completed(0)))
            assert not appender.due()  # an hour has not passed
            assert appender.due(0.0)
            appender.commit()
            assert not appender.due(0.0)
        finally:
            appender.close()

    def test_one_appender_at_a_time(self, make_store):
        store = created(make_store())
        appender = store.appender(60.0)
        try:
            with pytest.raises(RuntimeError):
                make_store().appender(60.0)
        finally:
            appender.close()
        store.appender(60.0).close()  # once closed, another may open

    def test_batch_writer_is_picklable_or_refused(self, make_store):
        store = created(make_store())
        try:
            writer = store.batch_writer()
        except NotImplementedError:
            return
        pickle.loads(pickle.dumps(writer))(encode(store, completed(0)))
        assert make_store().run_table().idx.tolist() == [0]

    # ----------------------------------------------------------------- sessions
    def test_sessions(self, make_store):
        store = created(make_store())
        store.add_session({"host": "a", "runs": 3, "versions": {"numpy": "2"}})
        appender = store.appender(60.0)
        try:
            appender.add_session({"host": "b", "runs": 0, "interrupted": None})
            appender.commit()
        finally:
            appender.close()
        store.add_session({"host": "c", "when": [1, 2]})
        assert make_store().sessions() == [
            {"host": "a", "runs": 3, "versions": {"numpy": "2"}},
            {"host": "b", "runs": 0, "interrupted": None}, {"host": "c", "when": [1, 2]}]

    # ------------------------------------------------------------------ reading
    def test_a_second_store_sees_commits(self, make_store):
        first, second = created(make_store()), make_store()
        assert second.exists() and second.run_table().idx.tolist() == []
        write(first, comment="one", tree=[value("parameters.x", 1)])
        assert second.read("lazy", allow_pickle=False).comment == "one"
        append(first, completed(0))
        assert second.run_table().idx.tolist() == [0]
        assert second.return_values([0]) == {0: 0}
        write(second, comment="two")
        assert first.read("lazy", allow_pickle=False).comment == "two"

    def test_snapshot_sees_one_commit(self, make_store):
        store, other = created(make_store()), make_store()
        append(store, completed(0))
        with store.snapshot():
            assert store.run_table().idx.tolist() == [0]
            append(other, completed(1))
            write(other, comment="changed", run_items=[(NEURON, "per neuron", 0, {"rate": 5.0})])
            with store.snapshot():  # nested: still the outer block's commit
                assert store.run_table().idx.tolist() == [0]
            assert store.run_table().idx.tolist() == [0]
            assert store.return_values([0, 1]) == {0: 0}
            assert store.run_results().get(NEURON, "rate", 0) == 0.0
            assert store.scalar_columns()[(NEURON, "rate")][0].tolist() == [0]
            assert store.read("lazy", allow_pickle=False).comment != "changed"
        assert store.run_table().idx.tolist() == [0, 1]
        assert store.return_values([0, 1]) == {0: 0, 1: 10}
        assert store.run_results().get(NEURON, "rate", 0) == 5.0
        assert store.read("lazy", allow_pickle=False).comment == "changed"

    def test_read_of_a_missing_trajectory(self, make_store):
        created(make_store("T"))
        with pytest.raises(TrajectoryNotFoundError):
            make_store("Missing").read("lazy", allow_pickle=False)

    def test_write_of_a_missing_trajectory(self, make_store):
        created(make_store("T"))
        calls = Calls()
        with pytest.raises(TrajectoryNotFoundError):
            make_store("Missing").write(changes(comment="nowhere"), calls)
        assert calls.count == 0
        assert not make_store("Missing").exists()

    def test_read_refuses_unknown_loads(self, make_store):
        store = created(make_store())
        with pytest.raises(ValueError):
            store.read("bogus", allow_pickle=False)

    def test_reads_give_copies(self, make_store):
        store = created(make_store())
        write(store, tree=[value("parameters.a", np.zeros(2))],
              results=[result("results.r", "", {"v": np.zeros(2)})])
        append(store, completed(0, value=np.zeros(2)))
        stored = store.read("all", allow_pickle=False)
        tree_of(stored)["parameters.a"].value[:] = 1
        by_name(stored)["results.r"].items["v"][:] = 1
        store.return_values([0])[0][:] = 1
        store.run_results().get(NEURON, "trace", 0)[:] = 9
        again = store.read("all", allow_pickle=False)
        assert_same(tree_of(again)["parameters.a"].value, np.zeros(2))
        assert_same(by_name(again)["results.r"].items["v"], np.zeros(2))
        assert_same(store.return_values([0])[0], np.zeros(2))
        assert_same(store.run_results().get(NEURON, "trace", 0), np.arange(3.0))

    def test_everything_survives_a_new_store(self, make_store):
        store = created(make_store())
        fill(store)
        store.close()
        again = make_store()
        stored = again.read("all", allow_pickle=False)
        assert stored.comment == "filled"
        assert stored.exploration == {"parameters.neuron.n": [1, 2, 3]}
        assert again.run_table().status.tolist() == [COMPLETED, COMPLETED, FAILED]
        assert again.return_values([0, 1]) == {0: 0, 1: 10}
        assert again.run_errors([0, 1, 2]) == {2: "ValueError: worse"}
        assert again.run_results().get("results.extra.$", "w", 1) == 0.5
        assert again.sessions() == [{"host": "here", "runs": 3}]


@contextlib.contextmanager
def opening(backend_name: str, filename: str) -> Iterator[Callable[..., TrajectoryStore]]:
    """``make(name="T")``, opening stores of ``filename``; they are closed at the end."""
    stores: list[TrajectoryStore] = []

    def make(name: str = "T") -> TrajectoryStore:
        stores.append(backend(backend_name).open(filename, name))
        return stores[-1]

    try:
        yield make
    finally:
        for store in stores:
            store.close()


class TestMemoryStore(StoreTests):
    backend_name = "memory"

    @pytest.fixture
    def make_store(self):
        filename = f"conformance-{uuid.uuid4().hex}"
        with opening("memory", filename) as make:
            yield make
        backend("memory").remove(filename)

    @pytest.fixture
    def missing_filename(self):
        return f"conformance-missing-{uuid.uuid4().hex}"


class TestHdf5Store(StoreTests):
    backend_name = "hdf5"

    @pytest.fixture
    def make_store(self, tmp_path):
        with opening("hdf5", str(tmp_path / "f.h5")) as make:
            yield make

    @pytest.fixture
    def missing_filename(self, tmp_path):
        return str(tmp_path / "missing.h5")


# ------------------------------------------------------------------- the imports
def _imported_modules(path: pathlib.Path, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every module that the file at ``path`` imports
    (``from a import b`` gives ``a`` and ``a.b``: ``b`` may be a module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".")
               for name in ("tables", "explorer.storage.hdf5"))


def test_only_the_hdf5_back_end_imports_tables():
    root = pathlib.Path(__file__).resolve().parents[1] / "explorer"
    hdf5 = root / "storage" / "hdf5"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if hdf5 in path.parents:
            continue
        relative = path.relative_to(root.parent).with_suffix("")
        package = ".".join(relative.parts[:-1])  # of a package's __init__ too
        offenders += [f"{relative}.py:{line} imports {module}"
                      for line, module in _imported_modules(path, package)
                      if _forbidden(module)]
    assert not offenders, "\n".join(offenders)


def test_import_resolution():
    """The resolution of relative imports that the test above relies on."""
    source = pathlib.Path(__file__).resolve().parents[1] / "explorer" / "storage" / "base.py"
    modules = {module for _, module in _imported_modules(source, "explorer.storage")}
    assert {"explorer.records", "explorer.results.RunResultSource"} <= modules
