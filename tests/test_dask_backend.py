"""API.md section 4 on dask.distributed: real clusters, both storage modes, same files.

Every test here runs on real ``distributed.LocalCluster`` processes. Tests that
only need ``client=`` (or ``scheduler=``) share one two-worker cluster per module;
tests of ``workers=N`` start and close their own.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import logging
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import tables

import explorer as ex
from explorer.storage.hdf5 import Hdf5Store
from layers import column_runs, leftovers, run_rows
from processes import alive as _alive

distributed = pytest.importorskip("distributed")

N_RUNS = 24
SEED = 7
FAILING = {5, 17}


# ------------------------------------------------------------------ shared cluster
@pytest.fixture(scope="module")
def cluster():
    """One real two-worker cluster (processes, one thread each) for the module."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as made:
        yield made


@pytest.fixture(scope="module")
def client(cluster):
    """A client of the shared cluster (a default client, but not made current with ``with``;
    see the tests of other clients below)."""
    made = distributed.Client(cluster)
    made.wait_for_workers(2)
    yield made
    made.close()


def _worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


# ------------------------------------------------------------------ the run function
def varied_run(traj):
    """Stores items of every encoding; some runs fail; draws come from ``traj.rng``."""
    x = traj.x
    traj.add_result("where.$", pid=os.getpid(), comment="process that ran the run")
    if x in FAILING:
        raise ValueError(f"run with x={x} fails on purpose")
    draws = traj.rng.normal(size=8)
    traj.add_result("out.$", draws=draws,                          # small fixed array
                    big=np.arange(1024, dtype=np.float64) * x + draws[0],  # packed chunks
                    ragged=np.full(x % 4 + 1, x, dtype=np.int32),  # shape varies
                    n=x * 3, f=x * traj.scale, label=f"run {x}", pair=[x, x + 1],
                    frame=pd.DataFrame({"a": [x, x + 1], "b": [0.5 * x, draws[1]]}),
                    comment="outputs of every run")
    traj.add_result("out.$.deep", flag=bool(x % 2))
    if x % 3 == 0:
        traj.add_result("sometimes.$", only=float(x))
    return float(draws.sum())


def _explore(env, n=N_RUNS):
    traj = env.trajectory
    traj.add_parameter("x", 0, comment="explored")
    traj.add_parameter("scale", 1.5)
    traj.explore({"x": list(range(n))})
    return traj


# ------------------------------------------------------------------ reading files back
def _column_runs(filename: str, name: str) -> dict[str, np.ndarray]:
    """Run index of every row of every stacked column over all the file's layers
    (padding rows left out), keyed by the column's path inside the trajectory."""
    return {path[len(name) + 2:]: runs for path, runs in column_runs(filename, name).items()}


def _snapshot(filename: str, name: str, skip=("results.where.$",)) -> dict:
    """Every stored per-run item, status, return value and error of every run."""
    traj = ex.load_trajectory(filename, name)
    frame = traj.to_frame()
    store = traj._store
    errors = store.run_results()
    templates = sorted(t for t in traj.run_templates if t not in skip)
    runs = {}
    for idx, run in enumerate(traj.run_names):
        items = {}
        for template in templates:
            items[template] = traj[template.replace("$", run)].to_dict()
        error = None
        if frame["status"][idx] == "failed":
            error = (errors.get("errors", "error", idx), errors.get("errors", "traceback", idx))
        runs[idx] = {"status": frame["status"][idx], "return": frame["return_value"][idx],
                     "items": items, "error": error}
    return {"templates": templates, "runs": runs, "n": len(traj),
            "seed": traj.conf.environment.seed}


def _assert_same_value(got, expected, where):
    assert type(got) is type(expected), where
    if isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype and got.shape == expected.shape, where
        np.testing.assert_array_equal(got, expected, err_msg=where)
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected, obj=where)
    elif isinstance(expected, float) and np.isnan(expected):
        assert np.isnan(got), where
    else:
        assert got == expected, where


def _assert_same_files(got: dict, expected: dict):
    assert got["n"] == expected["n"]
    assert got["seed"] == expected["seed"]
    assert got["templates"] == expected["templates"]
    for idx, run in expected["runs"].items():
        other = got["runs"][idx]
        assert other["status"] == run["status"], f"run {idx}"
        _assert_same_value(other["return"], run["return"], f"return value of run {idx}")
        if run["error"] is not None:
            assert other["error"][0] == run["error"][0], f"error of run {idx}"
            assert "Traceback" in other["error"][1] and "varied_run" in other["error"][1]
        assert sorted(other["items"]) == sorted(run["items"]), f"run {idx}"
        for template, items in run["items"].items():
            assert sorted(other["items"][template]) == sorted(items), f"{template} of run {idx}"
            for item, value in items.items():
                _assert_same_value(other["items"][template][item], value,
                                   f"{template}.{item} of run {idx}")


def _leftovers(filename: str) -> list[str]:
    """Unfinished files of writers (``*.tmp``) beside ``filename`` or in its segments."""
    return leftovers(filename)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The file ``workers=1`` writes, read back item by item."""
    filename = str(tmp_path_factory.mktemp("reference") / "reference.h5")
    with ex.Environment("Ref", filename, progress=False, seed=SEED, on_error="record") as env:
        _explore(env)
        results = env.run(varied_run)
    return {"results": results, "snapshot": _snapshot(filename, "Ref")}


def test_reference_covers_what_the_comparison_needs(reference):
    snapshot = reference["snapshot"]
    statuses = [run["status"] for run in snapshot["runs"].values()]
    assert statuses == ["failed" if i in FAILING else "completed" for i in range(N_RUNS)]
    assert snapshot["templates"] == ["results.out.$", "results.out.$.deep",
                                     "results.sometimes.$"]
    assert snapshot["runs"][0]["items"]["results.out.$"]["big"].shape == (1024,)
    assert snapshot["runs"][3]["items"]["results.sometimes.$"] == {"only": 3.0}
    assert snapshot["runs"][4]["items"]["results.sometimes.$"] == {}


# ------------------------------------------------------------------ same file on every back end
@pytest.mark.parametrize("backend", [pytest.param("workers", marks=pytest.mark.slow),  # a cluster
                                     pytest.param("scheduler", marks=pytest.mark.slow), "client"])
@pytest.mark.parametrize("storage", ["queue", pytest.param("lock", marks=pytest.mark.slow)])
def test_every_back_end_writes_the_same_file(backend, storage, reference, cluster, client,
                                             h5path):
    options = {"workers": {"workers": 2}, "scheduler": {"scheduler": cluster.scheduler_address},
               "client": {"client": client}}[backend]
    with ex.Environment("Ref", h5path, progress=False, seed=SEED, on_error="record",
                        storage=storage, **options) as env:
        _explore(env)
        pids = _worker_pids(env._backend().client)
        assert len(pids) == 2
        results = env.run(varied_run)
    assert results == reference["results"]
    _assert_same_files(_snapshot(h5path, "Ref"), reference["snapshot"])
    # the runs really ran in the cluster's worker processes, not here
    ran_in = set(ex.load_trajectory(h5path, "Ref").to_frame()["pid"].dropna().astype(int))
    assert ran_in <= pids and os.getpid() not in ran_in
    assert _leftovers(h5path) == []


@pytest.mark.parametrize("second", ["overwrite the trajectory", "another trajectory"])
def test_lock_mode_on_a_shared_cluster_after_the_file_was_rewritten(second, client, h5path):
    """Workers that wrote a file before must not write the next exploration to a stale copy.

    The first exploration's workers have read the file; the second one replaces the
    file (a new trajectory uid, or a new trajectory group) before its runs start.
    """
    with ex.Environment("First", h5path, client=client, storage="lock",
                        progress=False) as env:
        _explore(env, 8)
        assert env.run(square) == [(i, i * i) for i in range(8)]
    name = "First" if second == "overwrite the trajectory" else "Second"
    with ex.Environment(name, h5path, client=client, storage="lock", overwrite_file=True,
                        progress=False, on_error="record") as env:
        _explore(env, 8)
        results = env.run(square)
    frame = ex.load_trajectory(h5path, name).to_frame()
    assert frame["status"].tolist() == ["completed"] * 8
    assert results == [(i, i * i) for i in range(8)]
    assert _leftovers(h5path) == []


# ------------------------------------------------------------------ reproducible randomness
def draw_run(traj):
    traj.add_result("noise.$", normal=traj.rng.normal(size=50),
                    ints=traj.rng.integers(0, 1000, size=7))
    return float(traj.rng.random())


@pytest.mark.slow
def test_same_seed_same_draws_with_one_and_two_workers(tmp_path):
    frames = {}
    draws = {}
    for workers in (1, 2):
        filename = str(tmp_path / f"w{workers}.h5")
        with ex.Environment("Seeded", filename, workers=workers, seed=1234,
                            progress=False) as env:
            _explore(env, 30)
            env.run(draw_run)
        traj = ex.load_trajectory(filename, "Seeded")
        assert traj.conf.environment.seed == 1234
        frames[workers] = traj.to_frame()["return_value"].tolist()
        draws[workers] = [(traj.res.noise[run].normal, traj.res.noise[run].ints)
                          for run in traj.run_names]
    assert frames[1] == frames[2]
    for (normal1, ints1), (normal2, ints2) in zip(draws[1], draws[2]):
        np.testing.assert_array_equal(normal1, normal2)
        np.testing.assert_array_equal(ints1, ints2)
    # and every run has its own stream
    assert len({normal.tobytes() for normal, _ in draws[1]}) == 30


# ------------------------------------------------------------------ failures in workers
def failing_helper(x):
    raise ZeroDivisionError(f"cannot do x={x}")


def fails_on_two_and_five(traj):
    if traj.x in (2, 5):
        failing_helper(traj.x)
    traj.add_result("ok.$", pid=os.getpid())
    return traj.x * 10


def test_run_raising_in_a_worker_is_recorded_and_the_others_go_on(client, h5path):
    env = ex.Environment("F", h5path, client=client, progress=False)
    _explore(env, 12)
    with pytest.raises(ex.RunsFailedError) as info:
        env.run(fails_on_two_and_five)
    assert sorted(idx for idx, _ in info.value.failed) == [2, 5]
    assert "ZeroDivisionError: cannot do x=2" in str(info.value)
    env.close()

    traj = ex.load_trajectory(h5path, "F")
    frame = traj.to_frame()
    assert frame["status"].tolist() == ["failed" if i in (2, 5) else "completed"
                                        for i in range(12)]
    completed = frame["status"] == "completed"
    assert frame.loc[completed, "return_value"].tolist() == \
        [i * 10 for i in range(12) if i not in (2, 5)]
    assert set(frame.loc[completed, "pid"]) <= _worker_pids(client)
    stored = traj._store.run_results()
    for idx in (2, 5):
        assert stored.get("errors", "error", idx) == f"ZeroDivisionError: cannot do x={idx}"
        traceback = stored.get("errors", "traceback", idx)
        assert traceback.startswith("Traceback")
        assert "failing_helper" in traceback and "fails_on_two_and_five" in traceback


def slow_marked_run(traj, directory):
    """60 ms of work; leaves a file per execution and returns where and when it started."""
    started = time.time()
    with open(os.path.join(directory, f"{traj.x}-{os.getpid()}-{started!r}"), "w"):
        pass
    time.sleep(0.06)
    return [os.getpid(), started]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["workers=1", "client"])
def test_time_boxed_chunks_hand_back_the_runs_they_did_not_reach(backend, client, h5path,
                                                                 tmp_path):
    # 80 runs a slot: each of the first chunks (two a slot, carrying half the runs) holds
    # 20 runs, 1.2 s of work; its 1 s budget stops it after 17 and the other 3 go out again
    slots = 1 if backend == "workers=1" else 2
    options = {"workers": 1} if slots == 1 else {"client": client}
    n = 80 * slots
    env = ex.Environment("B", h5path, progress=False, **options)
    _explore(env, n)
    marks = tmp_path / "executions"
    marks.mkdir()
    results = env.run(slow_marked_run, str(marks))
    env.close()

    executions = sorted(int(name.split("-")[0]) for name in os.listdir(marks))
    assert executions == list(range(n))                   # every run ran once
    assert [idx for idx, _ in results] == list(range(n))
    frame = ex.load_trajectory(h5path, "B").to_frame()
    assert (frame["status"] == "completed").all() and len(frame) == n
    assert frame["return_value"].map(tuple).tolist() == [tuple(v) for _, v in results]
    if slots == 2:
        # a worker ran runs handed back after higher runs of its second chunk
        order: dict[int, list[int]] = {}
        for idx, (pid, started) in sorted(results, key=lambda item: item[1][1]):
            order.setdefault(pid, []).append(idx)
        assert any(runs != sorted(runs) for runs in order.values())


def test_results_come_straight_from_workers_on_this_host(client):
    from explorer.execution.dask import _host, _loopback, _workers_reachable

    assert _workers_reachable(client)                     # this cluster: 127.0.0.1
    workers = client.scheduler_info()["workers"]
    assert workers and all(_loopback(_host(address)) for address in workers)
    # a worker on another host than the scheduler's may not be reachable from here
    assert not _loopback(_host("tcp://10.1.2.3:40000"))
    assert _host("tls://[::1]:8786") == "::1" and _loopback("::1")


class _CountsUnpickling:
    """A shared value that counts, in each process, how often one was unpickled."""

    unpickled = 0

    def __init__(self, payload: bytes):
        self.payload = payload

    def __reduce__(self):
        return _unpickle_counted, (self.payload,)


def _unpickle_counted(payload: bytes) -> _CountsUnpickling:
    _CountsUnpickling.unpickled += 1
    return _CountsUnpickling(payload)


def _shared_on_worker(shared, chunk):
    """On a worker: where it ran, the worker's count of unpickled shared values, and
    which object the chunk was given."""
    return distributed.get_worker().address, _CountsUnpickling.unpickled, id(shared)


@pytest.mark.parametrize("size", [1_000_000, 5_000_000])  # in each chunk's task; a task
def test_the_shared_value_reaches_each_worker_once_per_map_and_is_dropped_after(client, size):
    from explorer.execution.dask import DaskExecutor
    from explorer.execution.onworker import jobs_kept
    from explorer.execution.tasks import INLINE_JOBS_BYTES

    assert (4 * size <= INLINE_JOBS_BYTES) == (size == 1_000_000)  # 2 workers: 4 chunks first
    shared = _CountsUnpickling(os.urandom(size))
    executor = DaskExecutor(client=client)
    counts = []
    for _ in range(2):
        outcomes = [out for _, out in executor.map_chunks(
            _shared_on_worker, shared, iter([[i] for i in range(12)]))]
        by_worker: dict[str, set] = {}
        for address, unpickled, identity in outcomes:
            by_worker.setdefault(address, set()).add((unpickled, identity))
        assert len(by_worker) == 2
        # one copy per worker: every chunk there saw the same object, unpickled once
        assert all(len(seen) == 1 for seen in by_worker.values()), by_worker
        counts.append({address: next(iter(seen))[0] for address, seen in by_worker.items()})
    assert {address: counts[1][address] - counts[0][address] for address in counts[0]} == \
        dict.fromkeys(counts[0], 1)
    deadline = time.monotonic() + 10  # and the workers let go of it once the map is done
    while any(client.run(jobs_kept).values()):
        assert time.monotonic() < deadline, client.run(jobs_kept)
        time.sleep(0.05)


def _slow_marked(directory, chunk):
    open(os.path.join(directory, str(chunk[0])), "w").close()
    time.sleep(2.5)
    return chunk[0]


@pytest.mark.slow
def test_chunks_waiting_on_a_worker_do_not_run_after_a_stop(client, tmp_path):
    from explorer.execution.dask import DaskExecutor
    from explorer.execution.tasks import POLL_SECONDS

    executor = DaskExecutor(client=client)
    started = time.monotonic()
    looks = iter(range(1 << 20))
    done = list(executor.map_chunks(_slow_marked, str(tmp_path), iter([[i] for i in range(8)]),
                                    stop=lambda: next(looks) >= 1))  # after handing out
    assert done == [] and time.monotonic() - started < 2.5  # stopped at the next look
    time.sleep(2.5 + POLL_SECONDS + 1)  # the first chunks end; the ones behind them would start
    # each worker had two chunks: at most the first started (and ran to its end), the
    # one waiting never starts
    assert len(os.listdir(tmp_path)) <= 2


@contextlib.contextmanager
def _own_cluster(threads: int):
    """A one-worker cluster of this test's own, and a client of it that is not the
    default client."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=threads, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as made, \
            distributed.Client(made, set_as_default=False) as own:
        yield made, own


def _sleeps_and_tells_where(seconds, chunk):
    started = time.monotonic()
    time.sleep(seconds)
    return distributed.get_worker().address, started, time.monotonic()


@pytest.mark.slow
def test_a_worker_with_two_threads_runs_two_chunks_at_once():
    from explorer.execution.dask import DaskExecutor

    with _own_cluster(threads=2) as (made, own):
        executor = DaskExecutor(client=own)
        assert executor.slots == 2
        spans = sorted(out[1:] for _, out in executor.map_chunks(
            _sleeps_and_tells_where, 0.5, iter([[i] for i in range(4)])))
    # chunks ran in pairs: each of the first two started before the other ended
    assert spans[1][0] < spans[0][1] and spans[3][0] < spans[2][1], spans


@pytest.mark.slow
def test_chunks_wait_for_a_worker_busy_with_another_task_and_then_run():
    from explorer.execution.dask import DaskExecutor
    from explorer.execution.tasks import POLL_SECONDS

    with _own_cluster(threads=1) as (made, own):
        busy = own.submit(time.sleep, 2 * POLL_SECONDS + 0.5, pure=False)
        while busy.status == "pending" and not own.processing()[next(iter(own.nthreads()))]:
            time.sleep(0.01)  # the task holds the worker's only thread
        started = time.monotonic()
        done = [out for _, out in DaskExecutor(client=own).map_chunks(
            _sleeps_and_tells_where, 0.0, iter([[i] for i in range(6)]))]
        assert len(done) == 6 and busy.done()
        assert all(begun >= started + 2 * POLL_SECONDS for _, begun, _ in done)


@pytest.mark.slow
def test_a_worker_joining_during_a_map_gets_chunks():
    from explorer.execution.dask import DaskExecutor
    from explorer.execution.tasks import RECOUNT_SECONDS

    with _own_cluster(threads=1) as (made, own):
        executor = DaskExecutor(client=own)
        first = set(own.nthreads())
        chunks = iter([[i] for i in range(int(4 * RECOUNT_SECONDS / 0.25) + 8)])
        ran_on = []
        for _, (address, _, _) in executor.map_chunks(_sleeps_and_tells_where, 0.25, chunks):
            ran_on.append(address)
            if len(ran_on) == 2:
                made.scale(2)
    joined = set(ran_on) - first
    assert len(joined) == 1, ran_on
    # after it joined, it took about half of the chunks left
    assert ran_on[-8:].count(joined.pop()) >= 3, ran_on


# ------------------------------------------------------------------ cluster ownership
def _reachable(address: str) -> bool:
    host, port = address.rsplit("/", 1)[-1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


def square(traj):
    return traj.x ** 2


def _worker_settings(dask_worker):
    import dask

    callbacks = dask_worker.periodic_callbacks
    return (os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "profile" in callbacks or dask.config.get("distributed.worker.profile.enabled"),
            callbacks["tick"].callback_time, callbacks["memory_monitor"].callback_time)


_STARTED = threading.Event()


def _takes_runs_slowly(shared, chunk):
    """Takes the chunk's runs one at a time, 20 ms each, until it is cut short."""
    taken = []
    for idx, _ in chunk:
        _STARTED.set()
        taken.append(idx)
        time.sleep(0.02)
    return taken


def test_a_running_chunk_gives_up_half_the_runs_it_has_not_started():
    from explorer.execution.chunking import Points
    from explorer.execution.onworker import Opaque, give_up_runs, run_chunk

    chunk = Points.select(range(40), {"x": list(range(40))}, splittable=True)
    assert give_up_runs("t", [0], 0.0) == {}               # not running here yet
    done = {}
    runner = threading.Thread(target=lambda: done.update(
        taken=run_chunk("t", 0, Opaque((_takes_runs_slowly, None)), Opaque(chunk))))
    _STARTED.clear()
    runner.start()
    assert _STARTED.wait(5)
    time.sleep(0.05)
    assert give_up_runs("t", [1], 0.0) == {}               # another chunk: nothing
    assert give_up_runs("t", [0], 100.0) == {}             # too little work left to split
    [(number, kept)] = give_up_runs("t", [0], 0.0).items()
    runner.join(5)
    assert number == 0 and done["taken"] == list(range(kept))
    # it keeps the one under way and the larger half of those it had not started
    assert 2 <= kept <= 25
    assert give_up_runs("t", [0], 0.0) == {}               # ended: nothing held


def _slow_pid(traj):
    time.sleep(0.02)
    return os.getpid()


def test_runs_a_busy_worker_has_not_started_are_split_off_for_an_idle_one(client, h5path):
    n = 60  # one chunk of 60 runs of 20 ms: the other worker would sit idle without a split
    env = ex.Environment("S", h5path, progress=False, chunk_size=n, client=client)
    _explore(env, n)
    results = env.run(_slow_pid)
    env.close()
    assert [idx for idx, _ in results] == list(range(n))
    ran_on = [pid for _, pid in results]
    assert len(set(ran_on)) == 2                          # both workers ran some of them
    assert set(ran_on) <= set(client.run(os.getpid).values())
    frame = ex.load_trajectory(h5path, "S").to_frame()    # each run stored once, completed
    assert len(frame) == n and (frame["status"] == "completed").all()
    assert frame["return_value"].tolist() == ran_on
    assert all(sorted(runs.tolist()) == list(range(n))
               for runs in _column_runs(h5path, "S").values())


def _uneven_run(traj):
    """1 ms of work in the first half of 300 runs, 20-30 ms in the second; stores and
    returns the run's index."""
    time.sleep(0.001 if traj.x < 150 else 0.02 + (traj.x * 7919 % 11) / 1000)
    traj.add_result("marks.$", idx=traj.x, pid=os.getpid())
    return traj.x


@pytest.mark.slow
@pytest.mark.parametrize("chunk_size", [None, 37, 150])
def test_every_run_is_stored_once_however_chunks_are_split(client, h5path, chunk_size):
    # big chunks of uneven runs: the worker given quick runs asks for the other's again
    # and again, and answers may cross results on their way back
    n = 300
    env = ex.Environment("U", h5path, progress=False, chunk_size=chunk_size, client=client)
    _explore(env, n)
    results = env.run(_uneven_run)
    env.close()
    assert results == [(idx, idx) for idx in range(n)]
    traj = ex.load_trajectory(h5path, "U")
    frame = traj.to_frame()
    assert len(frame) == n and (frame["status"] == "completed").all()
    assert traj.res.marks.idx[:].tolist() == list(range(n))
    assert traj.sessions()["runs"].tolist() == [n]      # each run reported once
    assert all(sorted(runs.tolist()) == list(range(n))
               for runs in _column_runs(h5path, "U").values())
    if chunk_size == 150:  # the slow chunk was split: both workers ran some of it
        assert len(set(traj.res.marks.pid[150:].tolist())) == 2


def _long_pid(traj):
    time.sleep(0.5)
    return os.getpid()


def test_the_last_run_waiting_behind_a_long_one_goes_to_an_idle_worker(client, h5path):
    env = ex.Environment("L", h5path, progress=False, chunk_size=2, client=client)
    _explore(env, 2)                                      # one chunk: two runs of 0.5 s
    results = env.run(_long_pid)
    env.close()
    assert [idx for idx, _ in results] == [0, 1]
    assert len({pid for _, pid in results}) == 2          # the second ran on the other worker


def _kills_its_worker_at_five(traj, markers):
    with open(os.path.join(markers, str(traj.idx)), "a") as stream:
        stream.write(f"{os.getpid()}\n")
    if traj.idx == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return traj.idx


@pytest.mark.slow
def test_a_run_that_kills_its_worker_is_found_and_recorded_failed_alone(h5path, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    with ex.Environment("Dies", h5path, workers=2, chunk_size=4, on_error="record",
                        progress=False) as env:
        _explore(env, 16)
        results = env.run(_kills_its_worker_at_five, str(markers))
    # its chunk (runs 4-7) was lost twice, then ran run by run: run 5 alone failed
    assert results == [(idx, idx) for idx in range(16) if idx != 5]
    traj = ex.load_trajectory(h5path, "Dies")
    frame = traj.to_frame()
    assert frame["status"].tolist() == ["failed" if idx == 5 else "completed"
                                        for idx in range(16)]
    error = traj._store.run_results().get("errors", "error", 5)
    assert error.startswith("the chunk running this run was lost: KilledWorker"), error
    assert "explorer-run-" in error and "2 different workers" in error, error
    # run 5 ran four times (twice in its chunk, twice alone), each time in a new process
    killers = (markers / "5").read_text().split()
    assert len(killers) == 4 and len(set(killers)) == 4
    for innocent in (4, 6, 7):  # ran at most three times, the last time to completion
        assert 1 <= len((markers / str(innocent)).read_text().split()) <= 3


@pytest.mark.slow
def test_workers_n_starts_a_cluster_that_close_shuts_down(h5path):
    env = ex.Environment("Own", h5path, workers=2, progress=False)
    _explore(env, 8)
    own = env._backend().client
    address = own.scheduler_info()["address"]
    pids = _worker_pids(own)
    assert len(pids) == 2 and os.getpid() not in pids
    # its workers keep glibc's own memory settings and do little housekeeping
    settings = own.run(_worker_settings)
    assert list(settings.values()) == [(None, False, 200.0, 200.0)] * 2
    assert env.run(square) == [(i, i * i) for i in range(8)]
    assert _reachable(address)
    env.close()
    assert own.status == "closed"
    assert not _reachable(address)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "worker processes outlived env.close()"


@pytest.mark.parametrize("how", ["client", "scheduler"])
def test_given_cluster_stays_running_after_close(how, cluster, client, h5path):
    options = {"client": client} if how == "client" else \
        {"scheduler": cluster.scheduler_address}
    before = _worker_pids(client)
    with ex.Environment("Given", h5path, progress=False, **options) as env:
        _explore(env, 8)
        used = env._backend().client
        assert env.run(square) == [(i, i * i) for i in range(8)]
        if how == "scheduler":  # its workers are on this host: chunks go to them directly
            assert used.direct_to_workers is True
    if how == "client":
        assert used is client
    else:
        assert used is not client and used.status == "closed"  # its own connection only
    assert client.status == "running"
    assert _reachable(cluster.scheduler_address)
    assert client.submit(lambda value: value + 1, 1).result() == 2
    assert _worker_pids(client) == before


NOT_DEFAULT_CLIENT = """
import json
import logging
import sys

import dask
import distributed

import explorer as ex


def square(traj):
    return traj.x ** 2


def _worker_settings(dask_worker):
    import dask

    callbacks = dask_worker.periodic_callbacks
    return (os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "profile" in callbacks or dask.config.get("distributed.worker.profile.enabled"),
            callbacks["tick"].callback_time, callbacks["memory_monitor"].callback_time)


if __name__ == "__main__":
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster:
        own = distributed.Client(cluster, set_as_default=False)
        with ex.Environment("NotDefault", sys.argv[1], client=own, progress=False) as env:
            env.trajectory.add_parameter("x", 0)
            env.trajectory.explore({"x": list(range(10))})
            results = env.run(square)
        print(json.dumps({"results": results, "status": own.status}))
        own.close()
"""


@pytest.mark.slow
def test_client_that_is_not_the_default_client(tmp_path, h5path):
    """``client=`` is used as given, even when it is not dask's default client.

    Run in a fresh process: there, this client is the only one (the module's shared
    client would otherwise be the default that dask falls back on).
    """
    script = tmp_path / "not_default.py"
    script.write_text(NOT_DEFAULT_CLIENT)
    done = subprocess.run([sys.executable, str(script), h5path], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"results": [[i, i * i] for i in range(10)], "status": "running"}
    assert ex.load_trajectory(h5path, "NotDefault").to_frame()["status"].tolist() == \
        ["completed"] * 10


@pytest.mark.parametrize("how", ["workers", "scheduler"])
@pytest.mark.slow
def test_runs_complete_while_another_client_is_current(how, cluster, h5path):
    """A user's ``with Client(...)`` block around an environment that makes its own client.

    dask's ``default_client()`` is then the user's client, running its own event loop.
    """
    options = {"workers": 2} if how == "workers" else {"scheduler": cluster.scheduler_address}
    with distributed.Client(cluster) as current:
        assert distributed.default_client() is current
        with ex.Environment("Current", h5path, progress=False, chunk_size=1,
                            **options) as env:
            _explore(env, 120)
            assert env._backend().client is not current
            for _ in range(3):      # each env.run waits on 120 chunk futures of its own client
                n_runs = len(env.trajectory)
                assert env.run(square) == [(i, i * i) for i in range(n_runs)]
                env.trajectory.expand({"x": list(range(n_runs, n_runs + 120))})
        assert current.status == "running"


# ------------------------------------------------------------------ segments
@pytest.mark.parametrize("storage", ["queue", "lock"])
def test_no_unfinished_segment_is_left_after_a_completed_run(storage, client, h5path):
    with ex.Environment("J", h5path, client=client, storage=storage, progress=False,
                        chunk_size=3) as env:
        _explore(env, 30)
        assert env.run(square) == [(i, i * i) for i in range(30)]
        assert _leftovers(h5path) == []
    assert _leftovers(h5path) == []
    assert ex.load_trajectory(h5path, "J").to_frame()["status"].tolist() == ["completed"] * 30
    returns = _column_runs(h5path, "J")["returns/value"]
    assert sorted(returns.tolist()) == list(range(30))
    rows = run_rows(h5path, "J")
    assert sorted(rows["idx"][rows["status"] == 1].tolist()) == list(range(30))


# ------------------------------------------------------------------ file claims
def test_second_environment_on_a_file_being_written_is_refused(client, h5path):
    first = ex.Environment("A", h5path, client=client, progress=False)
    _explore(first, 4)
    first.run(square)
    for make in (lambda: ex.Environment("A", h5path, progress=False),
                 lambda: ex.Environment("B", h5path, progress=False),
                 lambda: ex.Environment("A", h5path, overwrite_file=True, client=client,
                                        progress=False)):
        with pytest.raises(ex.FileLockedError) as info:
            make()
        assert h5path in str(info.value)
        assert f"pid {os.getpid()}" in str(info.value)
    first.close()
    # released: the file can be resumed and another trajectory added
    with ex.Environment.resume(h5path, "A", progress=False) as again:
        assert again.run(square) == [(i, i * i) for i in range(4)]
    with ex.Environment("B", h5path, progress=False) as other:
        other.trajectory.add_parameter("x", 2)
        assert other.run(square) == [(0, 4)]
    assert sorted(ex.trajectory_names(h5path)) == ["A", "B"]


def _slow_square(traj):
    time.sleep(0.01)
    return traj.x ** 2


def test_lock_mode_workers_commit_their_own_segments_without_a_lock(client, h5path):
    """In lock mode each worker commits its runs as segments of its own, while the
    environment holds the file's claim; no writers' lock file is ever made."""
    folder = f"{os.path.realpath(h5path)}.segments"
    directory = os.path.dirname(os.path.realpath(h5path))
    seen: set[str] = set()
    beside: set[str] = set()
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                seen.update(os.listdir(folder))
            beside.update(os.listdir(directory))
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch, daemon=True)
    with ex.Environment("W", h5path, client=client, storage="lock", progress=False,
                        chunk_size=2) as env:
        _explore(env, 60)
        pids = _worker_pids(env._backend().client)
        watcher.start()
        try:
            assert env.run(_slow_square) == [(i, i * i) for i in range(60)]
        finally:
            stop.set()
            watcher.join(timeout=10)
    # committed segments: <time_ns>-<host>-<pid>-<n>.h5 (a merged one ends in "m.h5")
    writers = {int(name.split("-")[2]) for name in seen
               if name.endswith(".h5") and not name.endswith("m.h5")}
    assert writers & pids, f"no segment committed by a worker: {sorted(seen)}"
    assert writers <= pids | {os.getpid()}, sorted(seen)
    assert not [name for name in beside if "writer" in name or name.endswith(".journal")]
    assert sorted(os.listdir(directory)) in (["data.h5"], ["data.h5", "data.h5.segments"])
    assert _leftovers(h5path) == []
    frame = ex.load_trajectory(h5path, "W").to_frame()
    assert frame["return_value"].tolist() == [i * i for i in range(60)]
    assert sorted(_column_runs(h5path, "W")["returns/value"].tolist()) == list(range(60))


# ------------------------------------------------------------------ provenance
def _git(directory, *args):
    return subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.org",
                           *args], cwd=directory, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_session_log_records_versions_host_times_command_and_git(tmp_path, monkeypatch,
                                                                 client):
    (tmp_path / "model.py").write_text("A = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "model.py")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    monkeypatch.chdir(tmp_path)

    with ex.Environment("P", "runs.h5", client=client, progress=False, seed=3) as env:
        _explore(env, 6)
        env.run(square)
    (tmp_path / "model.py").write_text("A = 2\n")   # a tracked change: dirty
    with ex.Environment("Q", "runs.h5", progress=False) as env:
        env.trajectory.add_parameter("x", 1)
        env.run(square)

    sessions = Hdf5Store("runs.h5", "P").sessions()
    assert len(sessions) == 1
    session = sessions[0]
    versions = session["versions"]
    assert versions["explorer"] == ex.__version__
    assert versions["python"] == platform.python_version()
    assert versions["numpy"] == np.__version__
    assert versions["tables"] == tables.__version__
    for package in ("numba", "dask", "distributed"):
        assert versions[package] == importlib.metadata.version(package)
    assert session["host"] == socket.gethostname()
    assert session["command"][0] == sys.executable
    assert session["git"] == {"commit": head, "dirty": False}
    assert session["runs"] == 6 and not session["interrupted"]
    start = pd.Timestamp(session["start"])
    end = pd.Timestamp(session["end"])
    assert start <= end and start.tzinfo is not None
    assert abs((pd.Timestamp.now(tz=start.tzinfo) - end).total_seconds()) < 120
    # the same log through the loaded trajectory; the seed is stored with it
    traj = ex.load_trajectory("runs.h5", "P")
    assert traj._store.sessions() == sessions
    assert traj.conf.environment.seed == 3

    dirty = ex.load_trajectory("runs.h5", "Q")._store.sessions()
    assert [s["git"] for s in dirty] == [{"commit": head, "dirty": True}]


def test_session_log_outside_a_git_repository_has_no_commit(tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with ex.Environment("N", "runs.h5", progress=False) as env:
        env.trajectory.add_parameter("x", 1)
        env.run(square)
    assert Hdf5Store("runs.h5", "N").sessions()[0]["git"] is None


# ------------------------------------------------------------------ progress
class _Terminal(io.StringIO):
    """A stream that says it is a terminal, so that the progress bar draws on it."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_runs_done_on_a_cluster(client, h5path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with ex.Environment("Bar", h5path, client=client, progress=True) as env:
        _explore(env, 17)
        env.run(square)
    drawn = terminal.getvalue()
    assert "17/17" in drawn
    assert re.search(r"\brun", drawn)
    assert "Bar" in drawn
