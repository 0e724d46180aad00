"""Conformance tests of the execution interface (``explorer/execution/base.py``).

:class:`ExecutorTests` holds what every back end's :class:`~explorer.execution.base.Executor`
does, tested through the interface alone (``slots``, ``map_chunks``, ``close``; no
back end's internals); each back end runs it in a subclass that supplies the
fixture ``executor`` (closed after the test) and the attribute ``expected_slots``.
The serial back end runs in this process; the dask back end runs on one real
two-worker ``distributed.LocalCluster`` (processes, one thread each) shared by
the module, through ``DaskExecutor(client=...)``.

The run functions are module-level, so that they pickle for the workers; they
leave marker files in the test's own directory where a test must know which
chunks ran.
"""
from __future__ import annotations

import collections
import logging
import pathlib
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from explorer.execution.base import Executor
from explorer.execution.chunking import Points
from explorer.execution.serial import SerialExecutor

#: A ``shared`` larger than a dask task's inline job (it then travels as a task of its own).
LARGE = 200 * 1024


# ----------------------------------------------------------------------- helpers
class Source:
    """An iterator of chunks that may run dry and be refilled (:meth:`add`); it
    records every chunk it handed out, in order."""

    def __init__(self, chunks: Iterable[Any] = ()) -> None:
        self.waiting: collections.deque[Any] = collections.deque(chunks)
        self.handed: list[Any] = []

    def __iter__(self) -> Source:
        return self

    def __next__(self) -> Any:
        if not self.waiting:
            raise StopIteration
        chunk = self.waiting.popleft()
        self.handed.append(chunk)
        return chunk

    def add(self, *chunks: Any) -> None:
        self.waiting.extend(chunks)


class ChunkFailed(Exception):
    """What :func:`failing` raises for its chosen chunks."""


class MeanwhileFailed(Exception):
    """What a ``meanwhile`` raises."""


def _division_message() -> str:
    try:
        return str(1 // 0)
    except ZeroDivisionError as error:
        return str(error)


#: What ``1 // 0`` says in this Python.
DIVISION_MESSAGE = _division_message()


def make_shared(size: int) -> dict[str, Any]:
    return {"token": uuid.uuid4().hex, "blob": b"x" * size}


def echo(shared: dict[str, Any], chunk: Any) -> tuple[str, int, list[Any]]:
    """What reached the task: ``shared``'s token and size, and the chunk's items."""
    return shared["token"], len(shared["blob"]), list(chunk)


def failing(shared: dict[str, Any], chunk: list[int]) -> list[int]:
    """Raises for a chunk holding one of ``shared["fail"]`` (divides by zero for
    one of ``shared["divide"]``), else returns the chunk's items doubled."""
    if set(chunk) & shared["fail"]:
        raise ChunkFailed(f"chunk {chunk} fails on purpose")
    if set(chunk) & shared["divide"]:
        return [1 // 0]
    return [2 * item for item in chunk]


def marking(shared: tuple[str, float], chunk: list[int]) -> list[int]:
    """Leaves a marker file for each item of the chunk when it starts, then sleeps."""
    directory, pause = shared
    for item in chunk:
        (pathlib.Path(directory) / f"ran-{item}").touch()
    time.sleep(pause)
    return list(chunk)


def run_by_run(shared: float, chunk: Points) -> list[int]:
    """Takes the runs of a chunk one at a time, ``shared`` seconds each."""
    done = []
    for idx, _ in chunk:
        time.sleep(shared)
        done.append(idx)
    return done


def waiting_for_others(shared: tuple[str, int], chunk: list[int]) -> bool:
    """Leaves a marker, then waits (a few seconds at most) until ``shared[1]``
    chunks have left theirs: whether they all did, i.e. ran at the same time."""
    directory, count = shared
    (pathlib.Path(directory) / f"ran-{chunk[0]}").touch()
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if len(list(pathlib.Path(directory).glob("ran-*"))) >= count:
            return True
        time.sleep(0.005)
    return False


def ran(directory: pathlib.Path) -> set[int]:
    """The items whose marker files :func:`marking` left in ``directory``."""
    return {int(path.name.removeprefix("ran-")) for path in directory.glob("ran-*")}


def key(chunk: Any) -> tuple[int, ...]:
    """A chunk's items, as something hashable (lists and :class:`Points` alike)."""
    return tuple(chunk.indices if isinstance(chunk, Points) else chunk)


def collect(pairs: Iterator[tuple[Any, Any]]) -> dict[tuple[int, ...], Any]:
    """``{chunk: result}`` of a map, every chunk yielded once."""
    results: dict[tuple[int, ...], Any] = {}
    for chunk, result in pairs:
        assert key(chunk) not in results, f"chunk {key(chunk)} yielded twice"
        results[key(chunk)] = result
    return results


# ------------------------------------------------------------------------ the tests
class ExecutorTests:
    """What every back end's executor does. Subclasses supply the fixture
    ``executor`` (closed after the test) and the attribute ``expected_slots``."""

    expected_slots: int

    def test_slots_is_a_positive_int(self, executor: Executor):
        assert type(executor.slots) is int
        assert executor.slots == self.expected_slots >= 1

    @pytest.mark.parametrize("size", [10, LARGE], ids=["small-shared", "large-shared"])
    def test_every_list_chunk_comes_back_once_with_its_own_result(self, executor, size):
        shared = make_shared(size)
        chunks = [[3 * i, 3 * i + 1, 3 * i + 2] for i in range(7)] + [[100]]
        source = Source(list(chunk) for chunk in chunks)
        results = collect(executor.map_chunks(echo, shared, source))
        assert sorted(results) == sorted(map(tuple, chunks))
        for chunk in chunks:
            assert results[tuple(chunk)] == (shared["token"], size, chunk)
        assert source.handed == chunks  # each handed out once, in the iterator's order

    def test_every_points_chunk_comes_back_once_with_its_own_result(self, executor):
        shared = make_shared(10)
        ranges = {"x": [0.5 * i for i in range(20)], "name": [f"n{i}" for i in range(20)]}
        selections = [[0, 1, 2, 3], [7], [4, 5, 6], [19, 8, 12], list(range(9, 12)) + [13]]
        chunks = [Points.select(indices, ranges) for indices in selections]
        results = collect(executor.map_chunks(echo, shared, iter(chunks)))
        assert sorted(results) == sorted(map(tuple, selections))
        for indices in selections:
            expected = [(i, {"x": ranges["x"][i], "name": ranges["name"][i]}) for i in indices]
            assert results[tuple(indices)] == (shared["token"], 10, expected)

    def test_splittable_points_each_run_comes_back_once_with_its_chunk(self, executor):
        """A back end may cut a splittable chunk short while it runs and hand the
        rest out as a chunk of its own: whatever it does, each run is done once,
        in the chunk yielded with its result."""
        ranges = {"x": list(range(30))}
        chunks = [Points.select(range(1, 30), ranges, splittable=True),
                  Points.select([0], ranges, splittable=True)]
        done: list[int] = []
        for chunk, result in executor.map_chunks(run_by_run, 0.01, iter(chunks)):
            assert not isinstance(result, Exception), result
            assert result == list(chunk.indices)
            done += result
        assert sorted(done) == list(range(30))

    def test_a_failing_chunk_yields_its_exception_and_the_others_complete(self, executor):
        shared = {"fail": {1, 9}, "divide": {4}}
        chunks = [[i] for i in range(10)]
        results = collect(executor.map_chunks(failing, shared, Source(chunks)))
        assert sorted(results) == [(i,) for i in range(10)]
        for i in range(10):
            result = results[(i,)]
            if i in shared["fail"]:
                assert type(result) is ChunkFailed
                assert str(result) == f"chunk [{i}] fails on purpose"
            elif i in shared["divide"]:
                assert type(result) is ZeroDivisionError
                assert str(result) == DIVISION_MESSAGE
            else:
                assert result == [2 * i]

    def test_meanwhile_is_called_once_before_the_first_result(self, executor, tmp_path):
        events: list[str] = []
        chunks = [[i] for i in range(5)]
        pairs = executor.map_chunks(marking, (str(tmp_path), 0.01), Source(chunks),
                                    meanwhile=lambda: events.append("meanwhile"))
        for chunk, result in pairs:
            assert result == chunk
            events.append("result")
        assert events == ["meanwhile"] + ["result"] * 5

    def test_an_exception_of_meanwhile_propagates(self, executor, tmp_path):
        def meanwhile() -> None:
            raise MeanwhileFailed("meanwhile fails on purpose")

        source = Source([[i] for i in range(6)])
        yielded = []
        with pytest.raises(MeanwhileFailed, match="^meanwhile fails on purpose$"):
            for pair in executor.map_chunks(marking, (str(tmp_path), 0.01), source,
                                            meanwhile=meanwhile):
                yielded.append(pair)
        assert yielded == []  # it is called before any result
        # the executor still maps afterwards, and only the new map's chunks come back
        shared = make_shared(10)
        results = collect(executor.map_chunks(echo, shared, Source([[7], [8]])))
        assert results == {(7,): (shared["token"], 10, [7]), (8,): (shared["token"], 10, [8])}

    def test_an_empty_iterator_yields_nothing(self, executor):
        assert list(executor.map_chunks(echo, make_shared(10), Source())) == []

    @pytest.mark.parametrize("initial", [1, 3])
    def test_chunks_added_to_a_dry_iterator_after_a_result_run_too(self, executor, initial):
        """The iterator runs dry, and after each of the first results (the last
        one out, for ``initial=1``) one more chunk is added: those run too."""
        shared = make_shared(10)
        source = Source([[i] for i in range(initial)])
        added = collections.deque([100 + i] for i in range(4))
        results: dict[tuple[int, ...], Any] = {}
        for chunk, result in executor.map_chunks(echo, shared, source):
            assert key(chunk) not in results
            results[key(chunk)] = result
            if added:
                source.add(added.popleft())
        expected = [[i] for i in range(initial)] + [[100 + i] for i in range(4)]
        assert sorted(results) == sorted(map(tuple, expected))
        for chunk in expected:
            assert results[tuple(chunk)] == (shared["token"], 10, chunk)

    def test_chunks_are_taken_as_workers_free_up_not_all_at_once(self, executor, tmp_path):
        source = Source([[i] for i in range(30)])
        handed = []  # chunks taken from the iterator, as each result is yielded
        for _ in executor.map_chunks(marking, (str(tmp_path), 0.0), source):
            handed.append(len(source.handed))
        assert 1 <= handed[0] < 30
        assert len(handed) == 30 and source.handed == [[i] for i in range(30)]

    @pytest.mark.parametrize("k", [1, 3])
    def test_once_stop_is_true_no_chunk_is_handed_out_and_the_map_ends(self, executor,
                                                                       tmp_path, k):
        """``stop()`` turns true as the k-th result is taken: the map yields no more,
        takes no chunk from the iterator after that, and only chunks it had taken
        before (some perhaps abandoned) ever run."""
        pause = 0.02
        source = Source([[i] for i in range(40)])
        seen: list[Any] = []
        handed_at_stop: list[Any] = []
        for chunk, result in executor.map_chunks(marking, (str(tmp_path), pause), source,
                                                 stop=lambda: len(seen) >= k):
            assert result == chunk
            seen.append(chunk)
            if len(seen) == k:
                handed_at_stop = list(source.handed)
        assert len(seen) == k
        assert source.handed == handed_at_stop
        assert len(handed_at_stop) < 40
        time.sleep(pause + 0.2)  # chunks abandoned while running have ended by now
        handed = {item for chunk in handed_at_stop for item in chunk}
        assert {item for chunk in seen for item in chunk} <= ran(tmp_path) <= handed

    def test_a_stop_before_the_start_hands_out_nothing_but_meanwhile_runs(self, executor,
                                                                          tmp_path):
        source = Source([[i] for i in range(8)])
        called = []
        pairs = list(executor.map_chunks(marking, (str(tmp_path), 0.0), source,
                                         stop=lambda: True,
                                         meanwhile=lambda: called.append(True)))
        assert pairs == [] and source.handed == [] and called == [True]
        time.sleep(0.2)
        assert ran(tmp_path) == set()

    def test_a_map_after_a_stopped_one_yields_only_its_own_chunks(self, executor, tmp_path):
        first = Source([[i] for i in range(20)])
        seen = []
        for chunk, _ in executor.map_chunks(marking, (str(tmp_path), 0.02), first,
                                            stop=lambda: bool(seen)):
            seen.append(chunk)
        assert len(seen) == 1
        shared = make_shared(10)
        results = collect(executor.map_chunks(echo, shared, Source([[50], [51], [52]])))
        assert results == {(i,): (shared["token"], 10, [i]) for i in (50, 51, 52)}

    def test_as_many_chunks_as_slots_run_at_once(self, executor, tmp_path):
        count = executor.slots
        pairs = executor.map_chunks(waiting_for_others, (str(tmp_path), count),
                                    Source([[i] for i in range(count)]))
        assert collect(pairs) == {(i,): True for i in range(count)}


class TestSerialExecutor(ExecutorTests):
    expected_slots = 1

    @pytest.fixture
    def executor(self) -> Iterator[Executor]:
        made = SerialExecutor()
        yield made
        made.close()


# ------------------------------------------------------------- the shared cluster
@pytest.fixture(scope="module")
def cluster():
    """One real two-worker cluster (processes, one thread each) for the module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as made:
        yield made


@pytest.fixture(scope="module")
def client(cluster):
    import distributed

    made = distributed.Client(cluster)
    made.wait_for_workers(2)
    yield made
    made.close()


class TestDaskExecutor(ExecutorTests):
    expected_slots = 2

    @pytest.fixture
    def executor(self, client) -> Iterator[Executor]:
        from explorer.execution.dask import DaskExecutor

        made = DaskExecutor(client=client)
        yield made
        made.close()

