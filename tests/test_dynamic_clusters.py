"""Clusters whose workers come and go, on real LocalClusters given as ``client=``.

An adaptive cluster grows for an exploration's work and shrinks after it;
workers that join late take chunks; a worker retired gracefully in the middle
of ``env.run`` loses no run; after ``env.close()`` nothing of explorer keeps a
worker from being retired. On explorer's own cluster too, the runs are tasks
that the dashboard's task stream shows.
"""
from __future__ import annotations

import collections
import threading
import time

import pytest

import explorer as ex

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def sleepy_run(view):
    """A run of 10-40 ms that records which worker ran it."""
    time.sleep(view.pause)
    view.add_result("where.$", worker=distributed.get_worker().address)
    return view.idx


def exploration(n: int, pause: float) -> ex.Trajectory:
    traj = ex.Trajectory("T")
    traj.add_parameter("idx", 0)
    traj.add_parameter("pause", pause)
    traj.explore({"idx": list(range(n))})
    return traj


def local_cluster(workers: int) -> distributed.LocalCluster:
    return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                    dashboard_address=":0")


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def check_stored_once(filename: str, n: int) -> collections.Counter:
    """Every run completed, reported once, none failed: runs per worker."""
    traj = ex.load_trajectory(filename)
    assert traj._status_counts() == {"completed": n, "failed": 0, "pending": 0}
    assert traj.failures().empty
    assert traj.sessions()["runs"].tolist() == [n]  # each run reported exactly once
    assert sorted(traj.to_frame()["return_value"].tolist()) == list(range(n))
    return collections.Counter(traj.res.where.worker[:])


def test_an_adaptive_cluster_grows_for_the_work_and_shrinks_after(tmp_path):
    filename = str(tmp_path / "adapt.h5")
    with local_cluster(1) as cluster:
        cluster.adapt(minimum=1, maximum=2)
        with distributed.Client(cluster) as client:
            env = ex.Environment(exploration(200, 0.04), filename=filename, client=client,
                                 progress=False)
            env.run(sleepy_run)
            env.close()
            workers = check_stored_once(filename, 200)
            assert len(workers) == 2, workers  # the second worker ran chunks too
            assert wait_until(lambda: len(client.nthreads()) == 1, 30), client.nthreads()


def test_workers_that_join_late_take_chunks(tmp_path):
    filename = str(tmp_path / "late.h5")
    with local_cluster(1) as cluster, distributed.Client(cluster) as client:
        first = set(client.nthreads())
        env = ex.Environment(exploration(400, 0.01), filename=filename, client=client,
                             progress=False)
        timer = threading.Timer(2.0, lambda: cluster.scale(3))
        timer.start()
        try:
            env.run(sleepy_run)
        finally:
            timer.cancel()
        env.close()
        workers = check_stored_once(filename, 400)
        late = set(workers) - first
        assert len(late) == 2, workers  # each of the two late workers ran chunks


def test_a_worker_retired_mid_run_loses_no_run(tmp_path):
    filename = str(tmp_path / "retire.h5")
    with local_cluster(3) as cluster, distributed.Client(cluster) as client:
        victim = sorted(client.nthreads())[0]
        env = ex.Environment(exploration(400, 0.01), filename=filename, client=client,
                             progress=False)
        retired: dict = {}
        timer = threading.Timer(0.8, lambda: retired.update(client.retire_workers([victim])))
        timer.start()
        try:
            env.run(sleepy_run)
        finally:
            timer.join()
        env.close()
        assert victim in retired and victim not in client.nthreads()
        check_stored_once(filename, 400)


def test_after_close_every_worker_of_a_users_client_can_be_retired(tmp_path):
    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        for name in ("a", "b"):  # two environments on one client
            env = ex.Environment(exploration(60, 0.01), filename=str(tmp_path / f"{name}.h5"),
                                 client=client, progress=False)
            env.run(sleepy_run)
            env.close()
        workers = list(client.nthreads())
        assert client.who_has() == {} or not any(client.who_has().values())
        client.retire_workers(workers)
        assert wait_until(lambda: not client.nthreads(), 15), client.nthreads()


def test_runs_on_explorers_own_cluster_show_in_the_task_stream(tmp_path):
    filename = str(tmp_path / "own.h5")
    with ex.Environment(exploration(60, 0.01), filename=filename, workers=2,
                        progress=False) as env:
        client = env._backend().client
        with distributed.get_task_stream(client=client) as stream:
            env.run(sleepy_run)
        workers = check_stored_once(filename, 60)
    ran = [task for task in stream.data if str(task["key"]).startswith("explorer-run-")]
    assert ran, [task["key"] for task in stream.data]
    assert {task["worker"] for task in ran} == set(workers)  # both workers' chunks are there
